"""The run directory: the one contract between the producers of a run and everything that reads it.

Layout (``schema_version`` 1), as in DESIGN.md::

    runs/<UTC timestamp>-<scenario>-<sim|real>/
      scenario.yaml          the fully resolved scenario, already scaled to run time
      meta.json              schema_version, mode, versions, seed, host, start/end, compress,
                             load_scale, requests_format ("exact" | "histogram")
      requests.parquet       exact: one row per request or push (see reports.requests)
      requests_hist.parquet  or, at full scale, per-second log-bucket histograms (≤ 1 % error)
      timeline.csv           per second: ``t`` then any of users, rps, errors, rps.<step>,
                             instances.<service>.<zone>, utilisation.<service>.<zone>,
                             queue.<service>.<zone>, cache_hit_ratio.<cache>, chaos_active,
                             cost (so far)
      events.jsonl           one JSON object per line with ``t`` (run seconds) and ``kind``
                             (chaos_start, chaos_end, scale, reconciliation, …)
      summary.json           written by the verdict engine

All times inside a run directory are seconds of run time from the run's start; ``meta.json``
records ``compress`` so readers can convert to match time (× compress).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from reports.metrics import MetricSource
from reports.requests import EXACT_COLUMNS, HISTOGRAM_COLUMNS, ExactRequests, HistogramRequests
from scenarios import InputError, Scenario, dump_scenario
from scenarios.loader import scenario_from_text

SCHEMA_VERSION = 1
MODES = ("sim", "real")


class RunDirError(Exception):
    """A run directory that cannot be read: missing files, bad JSON, unknown schema."""


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("matchday", "simpy", "locust", "numpy", "pandas", "pyarrow"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def new_run_path(root: Path, scenario: str, mode: str, now: dt.datetime | None = None) -> Path:
    """``root/<UTC timestamp>-<scenario>-<mode>``, made unique with a counter if it exists."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    path = root / f"{stamp}-{scenario}-{mode}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{scenario}-{mode}-{n}"
    return path


class RunWriter:
    """Writes one run directory; the producer calls the ``write_*`` methods, then :meth:`finish`."""

    def __init__(self, path: Path, scenario: Scenario, *, mode: str, seed: int | None,
                 compress: float = 1.0, load_scale: float = 1.0, **extra: Any):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.path = path
        path.mkdir(parents=True, exist_ok=False)
        (path / "scenario.yaml").write_text(dump_scenario(scenario), encoding="utf-8")
        self.meta: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "mode": mode,
            "scenario": scenario.name,
            "seed": seed,
            "compress": compress,
            "load_scale": load_scale,
            "duration": scenario.duration,
            "host": socket.gethostname(),
            "platform": platform.platform(),
            "argv": sys.argv,
            "versions": _versions(),
            "started_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "ended_at": None,
            "requests_format": None,
            **extra,
        }
        self._write_meta()

    def _write_meta(self) -> None:
        (self.path / "meta.json").write_text(json.dumps(self.meta, indent=2) + "\n")

    def write_requests(self, frame: pd.DataFrame) -> None:
        """Store exact requests (columns of ``reports.requests.EXACT_COLUMNS``)."""
        frame = _typed(frame, EXACT_COLUMNS)
        frame.to_parquet(self.path / "requests.parquet", index=False)
        self.meta["requests_format"] = "exact"

    def write_request_histogram(self, frame: pd.DataFrame) -> None:
        """Store per-second histograms (columns of ``reports.requests.HISTOGRAM_COLUMNS``)."""
        frame = _typed(frame, HISTOGRAM_COLUMNS)
        frame.to_parquet(self.path / "requests_hist.parquet", index=False)
        self.meta["requests_format"] = "histogram"

    def write_timeline(self, frame: pd.DataFrame) -> None:
        """Store the per-second timeline; its first column must be ``t``."""
        if "t" not in frame.columns:
            raise ValueError("a timeline needs a 't' column")
        frame = frame[["t", *[c for c in frame.columns if c != "t"]]]
        frame.to_csv(self.path / "timeline.csv", index=False)

    def write_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Store events, each a JSON object with ``t`` and ``kind``, sorted by time."""
        rows = sorted(events, key=lambda e: e["t"])
        for event in rows:
            if "t" not in event or "kind" not in event:
                raise ValueError(f"an event needs 't' and 'kind': {event}")
        with open(self.path / "events.jsonl", "w", encoding="utf-8") as out:
            for event in rows:
                out.write(json.dumps(event, default=_json_default) + "\n")

    def finish(self) -> Path:
        """Record the end time; the run directory is complete (summary.json comes from gating)."""
        if self.meta["requests_format"] is None:
            raise ValueError("a run needs requests (exact or histogram) before it finishes")
        self.meta["ended_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
        self._write_meta()
        return self.path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for name, dtype in columns.items():
        if name in frame.columns and dtype == "string" and isinstance(
                frame[name].dtype, pd.CategoricalDtype):
            # Categories are strings already, and far cheaper to store for millions of rows.
            out[name] = frame[name].cat.rename_categories(
                [str(c) for c in frame[name].cat.categories])
        elif name in frame.columns:
            out[name] = frame[name].astype(dtype)
        elif dtype == "string":
            out[name] = pd.Series(pd.NA, index=frame.index, dtype="string")
        else:
            raise ValueError(f"missing column {name!r}")
    return out.reset_index(drop=True)


class Run:
    """A run directory opened for reading. Raises :class:`RunDirError` if it is not one."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: not a directory")
        self.meta = self._json("meta.json")
        version = self.meta.get("schema_version")
        if version != SCHEMA_VERSION:
            raise RunDirError(f"{self.path / 'meta.json'}: schema_version {version!r} is not "
                              f"{SCHEMA_VERSION} (written by another matchday version?)")
        try:
            text = (self.path / "scenario.yaml").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{self.path / 'scenario.yaml'}: cannot read: {exc}") from exc
        try:
            self.scenario: Scenario = scenario_from_text(text, str(self.path / "scenario.yaml"))
        except InputError as exc:
            raise RunDirError(str(exc)) from exc

    def _json(self, name: str) -> dict[str, Any]:
        try:
            data = json.loads((self.path / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{self.path / name}: cannot read: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{self.path / name}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise RunDirError(f"{self.path / name}: expected a JSON object")
        return data

    @property
    def duration(self) -> float:
        """Run length in seconds of run time."""
        return float(self.meta.get("duration") or self.scenario.duration)

    def metrics(self) -> MetricSource:
        """The requests as a metric source (exact or histogram, whichever the run stored)."""
        exact, hist = self.path / "requests.parquet", self.path / "requests_hist.parquet"
        try:
            if exact.exists():
                return ExactRequests(pd.read_parquet(exact), self.duration)
            if hist.exists():
                return HistogramRequests(pd.read_parquet(hist), self.duration)
        except Exception as exc:  # pyarrow raises many types for a damaged file
            raise RunDirError(f"{self.path}: cannot read requests: {exc}") from exc
        raise RunDirError(f"{self.path}: no requests.parquet or requests_hist.parquet")

    def events(self) -> list[dict[str, Any]]:
        """Events in time order; an absent events.jsonl means none."""
        path = self.path / "events.jsonl"
        if not path.exists():
            return []
        out = []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{path}: cannot read: {exc}") from exc
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RunDirError(f"{path}:{n}: invalid JSON: {exc.msg}") from exc
            if not isinstance(event, dict) or "kind" not in event or not isinstance(
                    event.get("t"), (int, float)) or isinstance(event.get("t"), bool):
                raise RunDirError(f"{path}:{n}: an event needs a numeric 't' and a 'kind'")
            out.append(event)
        return sorted(out, key=lambda e: e["t"])

    def timeline(self) -> pd.DataFrame | None:
        """The per-second timeline, or None if the run has none."""
        path = self.path / "timeline.csv"
        return pd.read_csv(path, dtype={"chaos_active": str}, keep_default_na=False,
                           na_values=[""]) if path.exists() else None

    def write_summary(self, summary: dict[str, Any]) -> Path:
        """Store the verdict engine's summary as summary.json."""
        path = self.path / "summary.json"
        path.write_text(json.dumps(summary, indent=2, allow_nan=False,
                                   default=_json_default) + "\n", encoding="utf-8")
        return path


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity: store them as null."""
    return None if value is None or not math.isfinite(value) else float(value)
