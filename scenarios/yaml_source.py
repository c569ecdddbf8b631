"""YAML reading that remembers where every key came from (file and line), with ``extends``.

A scenario may start with ``extends: bases/eu-west-3az.yaml`` (a path relative to itself): the
base is read first and the scenario is merged over it, mappings key by key, anything else
replaced whole; the caller may name mappings that are replaced whole too (shares such as a link
mix, which would not add up if two files were mixed). Every value keeps the file and line it was written at, so an error in a merged
scenario still points at the line a person has to change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a value was written."""

    file: str
    line: int


@dataclasses.dataclass
class Problem:
    """One thing wrong with an input file, in the form ``file:line: field.path: message``."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class InputError(Exception):
    """Raised with every problem found in the inputs (not just the first)."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclasses.dataclass
class Located:
    """Plain YAML data plus the position of every mapping key and sequence item in it."""

    data: Any
    positions: dict[Loc, Position]
    file: str


MAX_NODES = 200_000
"""A scenario has a few thousand nodes; more means aliases expanding without end (a YAML bomb)."""


class _TooLarge(Exception):
    pass


def _construct(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, file: str,
               positions: dict[Loc, Position], problems: list[Problem]) -> Any:
    if len(positions) > MAX_NODES:
        raise _TooLarge
    if isinstance(node, yaml.MappingNode):
        written = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor), merged ones first
        out: dict[Any, Any] = {}
        explicit: set[Any] = set()
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Problem(file, line, _dotted(loc), "a key must be a plain value"))
                continue
            key = loader.construct_object(key_node, deep=True)
            # A key written twice is a mistake; a written key overriding a merged one is not.
            if key in explicit and id(key_node) in written:
                problems.append(Problem(file, line, _dotted(loc + (key,)),
                                        "duplicate key (YAML keeps only the last one)"))
            if id(key_node) in written:
                explicit.add(key)
            positions[loc + (key,)] = Position(file, line)
            out[key] = _construct(loader, value_node, loc + (key,), file, positions, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            positions[loc + (i,)] = Position(file, item.start_mark.line + 1)
            items.append(_construct(loader, item, loc + (i,), file, positions, problems))
        return items
    return loader.construct_object(node, deep=True)


def read_located(path: Path) -> Located:
    """Read one YAML file (without following ``extends``); raise InputError on bad YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError([Problem(str(path), 0, "", f"cannot read: {reason}")]) from exc
    return parse_located(text, str(path))


def parse_located(text: str, file: str) -> Located:
    """Parse YAML ``text`` read from ``file``; raise InputError on bad YAML or duplicate keys."""
    loader = yaml.SafeLoader(text)
    positions: dict[Loc, Position] = {(): Position(file, 1)}
    problems: list[Problem] = []
    try:
        root = loader.get_single_node()
        data = {} if root is None else _construct(loader, root, (), file, positions, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        message = " ".join(p for p in (exc.context, exc.problem) if p)
        raise InputError([Problem(file, line, "", f"invalid YAML: {message}")]) from exc
    except yaml.YAMLError as exc:
        raise InputError([Problem(file, 0, "", f"invalid YAML: {exc}")]) from exc
    except (_TooLarge, RecursionError) as exc:
        raise InputError([Problem(file, 0, "", "too large once its aliases are expanded "
                                  f"(more than {MAX_NODES:,} values, or a recursive alias)")]) from exc
    finally:
        loader.dispose()
    if problems:
        raise InputError(problems)
    return Located(data, positions, file)


def _merge(base: Located, over: Located, whole: frozenset[Loc]) -> Located:
    positions = dict(base.positions)

    def merge(a: Any, b: Any, loc: Loc) -> Any:
        if isinstance(a, dict) and isinstance(b, dict) and loc not in whole:
            out = dict(a)
            for key, value in b.items():
                out[key] = merge(a.get(key), value, loc + (key,))
                positions[loc + (key,)] = over.positions.get(loc + (key,), positions[loc])
            return out
        # Replaced whole: forget where the base's version of this subtree was written.
        for p in [p for p in positions if p[: len(loc)] == loc and len(p) > len(loc)]:
            del positions[p]
        positions.update({p: pos for p, pos in over.positions.items()
                          if p[: len(loc)] == loc and len(p) > len(loc)})
        return b

    data = merge(base.data, over.data, ())
    positions[()] = over.positions[()]
    return Located(data, positions, over.file)


def read_with_extends(path: Path, whole: frozenset[Loc] = frozenset(),
                      _seen: tuple[Path, ...] = ()) -> Located:
    """Read ``path`` and, recursively, the files it ``extends``; merge them base-first.

    Mappings at the locations in ``whole`` are replaced, not merged.
    """
    here = read_located(path)
    if not isinstance(here.data, dict):
        raise InputError([Problem(str(path), 1, "", "a scenario file must be a YAML mapping")])
    parent = here.data.pop("extends", None)
    if parent is None:
        return here
    line = here.positions[("extends",)].line
    if not isinstance(parent, str):
        raise InputError([Problem(str(path), line, "extends", "must be a relative file path")])
    parent_path = (path.parent / parent).resolve()
    if parent_path in _seen or parent_path == path.resolve():
        raise InputError([Problem(str(path), line, "extends", f"cycle through {parent}")])
    if not parent_path.is_file():
        raise InputError([Problem(str(path), line, "extends", f"no such file: {parent}")])
    base = read_with_extends(parent_path, whole, _seen + (path.resolve(),))
    if not isinstance(base.data, dict):
        raise InputError([Problem(str(path), line, "extends", f"{parent} is not a mapping")])
    return _merge(base, here, whole)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locate(located: Located, loc: Loc) -> tuple[Position, str]:
    """Map a validation error location onto the YAML: (position, dotted field path).

    Union tags that pydantic adds (a chaos action's type) are skipped; a last part that does not
    exist is kept, since it names a missing or unknown key; a middle part that does not exist
    (a value written in shorthand, or a default) ends the path there. The position is that of
    the deepest key that exists.
    """
    node, path, found = located.data, (), located.positions[()]
    shown: list[str | int] = []
    for i, part in enumerate(loc):
        exists = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if exists:
            node, path = node[part], path + (part,)
            found = located.positions.get(path, found)
            shown.append(part)
        elif isinstance(node, dict) and node.get("action") == part:
            continue  # a union tag (the chaos action type) is not a key
        elif i == len(loc) - 1:
            shown.append(part)  # a missing or unknown key is named
            break
        else:
            break  # written in shorthand (or filled by a default): point at what was written
    return found, _dotted(tuple(shown))
