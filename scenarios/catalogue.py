"""The scenario catalogue: the ``*.yaml`` files shipped beside this module."""

from __future__ import annotations

from pathlib import Path

CATALOGUE_DIR = Path(__file__).resolve().parent


def catalogue() -> dict[str, Path]:
    """Catalogue scenarios by name (file stem), sorted."""
    return {p.stem: p for p in sorted(CATALOGUE_DIR.glob("*.yaml"))}


def find_scenario(name_or_path: str) -> Path:
    """A path as given if it exists, else the catalogue scenario of that name.

    Raises FileNotFoundError naming the catalogue when neither exists.
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    known = catalogue()
    if name_or_path in known:
        return known[name_or_path]
    raise FileNotFoundError(
        f"no scenario file {name_or_path!r} and no catalogue scenario of that name "
        f"(catalogue: {', '.join(known) or 'empty'})"
    )
