"""A metric source over plain Locust CSV output (``--csv PREFIX --csv-full-history``).

Locust rounds every response time into buckets (1 ms below 100 ms, 10 ms below 1 s, 100 ms
below 10 s, 1 s above) before it computes percentiles, so the figures read here are only as
precise as those buckets: up to about 5 % off. Whole-run percentiles come from
``PREFIX_stats.csv``; scoped ones from ``PREFIX_stats_history.csv``, whose per-second rows carry
percentiles of Locust's own trailing window (about 10 s): a scoped percentile is the largest of
those rows, an upper bound rather than an exact value. Counts and means are exact (cumulative
columns). Steps are Locust request names.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from reports.metrics import Spans, span_mask

PERCENTILE_COLUMNS = {0.5: "50%", 0.66: "66%", 0.75: "75%", 0.8: "80%", 0.9: "90%", 0.95: "95%",
                      0.98: "98%", 0.99: "99%", 0.999: "99.9%", 0.9999: "99.99%", 1.0: "100%"}
PRECISION = ("Locust CSV: percentiles from Locust's rounded buckets (up to ~5 % off); scoped "
             "percentiles are the maximum of Locust's ~10 s windows")


class LocustCsvError(Exception):
    """The Locust CSV files are missing or not in the expected format."""


def _column_for(q: float) -> tuple[str, float]:
    """The smallest reported percentile at or above ``q`` (an upper bound for it)."""
    for level, column in PERCENTILE_COLUMNS.items():
        if level >= q - 1e-12:
            return column, level
    return "100%", 1.0


@dataclasses.dataclass
class LocustSelection:
    """What Locust's CSV says about one request name in some spans."""

    count: int
    errors: int
    _percentiles: dict[str, float]
    _mean: float
    _min: float
    _max: float

    def quantile(self, q: float) -> float:
        column, _ = _column_for(q)
        return self._percentiles.get(column, math.nan) if self.count else math.nan

    def mean(self) -> float:
        return self._mean if self.count else math.nan

    def minimum(self) -> float:
        return self._min if self.count else math.nan

    def maximum(self) -> float:
        return self._max if self.count else math.nan


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(float)


class LocustCsv:
    """Reads ``PREFIX_stats.csv`` and ``PREFIX_stats_history.csv``."""

    precision = PRECISION

    def __init__(self, prefix: str | Path):
        stats_path = Path(f"{prefix}_stats.csv")
        history_path = Path(f"{prefix}_stats_history.csv")
        try:
            self._stats = pd.read_csv(stats_path, keep_default_na=False, dtype={"Type": str})
            history = pd.read_csv(history_path, keep_default_na=False, dtype={"Type": str})
        except FileNotFoundError as exc:
            raise LocustCsvError(f"{exc.filename}: no such file (run locust with --csv "
                                 f"{prefix} --csv-full-history)") from exc
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise LocustCsvError(f"{prefix}: cannot parse Locust CSV: {exc}") from exc
        needed = {"Name", "Request Count", "Failure Count", *PERCENTILE_COLUMNS.values()}
        for path, frame, cols in (
            (stats_path, self._stats, needed),
            (history_path, history, {"Timestamp", "Name", "Total Request Count",
                                     "Total Failure Count", "Total Average Response Time"}),
        ):
            missing = cols - set(frame.columns)
            if missing:
                raise LocustCsvError(f"{path}: not a Locust CSV (missing {sorted(missing)})")
        names = history["Name"][history["Name"] != "Aggregated"]
        if names.empty and len(self._stats) > 1:
            raise LocustCsvError(f"{history_path}: no per-request rows; run locust with "
                                 "--csv-full-history")
        t0 = float(history["Timestamp"].min()) if len(history) else 0.0
        history = history.assign(t=pd.to_numeric(history["Timestamp"]) - t0)
        self._history = {str(n): rows.sort_values("t") for n, rows in history.groupby("Name")}
        self.duration = float(history["t"].max()) + 1 if len(history) else 0.0

    def steps(self) -> list[str]:
        return sorted(n for n in self._stats["Name"].astype(str) if n != "Aggregated")

    def _whole(self, step: str) -> LocustSelection:
        rows = self._stats[self._stats["Name"].astype(str) == step]
        if rows.empty:
            return LocustSelection(0, 0, {}, math.nan, math.nan, math.nan)
        count = int(_num(rows, "Request Count").sum())
        # Several methods under one name: percentiles are bounded by the worst of them.
        percentiles = {c: float(np.nanmax(_num(rows, c))) for c in PERCENTILE_COLUMNS.values()}
        weights = _num(rows, "Request Count")
        mean = float((_num(rows, "Average Response Time") * weights).sum() / max(count, 1))
        return LocustSelection(count, int(_num(rows, "Failure Count").sum()), percentiles, mean,
                               float(np.nanmin(_num(rows, "Min Response Time"))),
                               float(np.nanmax(_num(rows, "Max Response Time"))))

    def select(self, step: str, spans: Spans = None, link: str | None = None) -> LocustSelection:
        if link is not None:
            raise LocustCsvError("Locust CSV output has no mobile-link dimension; "
                                 f"drop 'link: {link}' from the budget")
        if spans is None:
            return self._whole(step)
        rows = self._history.get(step)
        if rows is None:
            return LocustSelection(0, 0, {}, math.nan, math.nan, math.nan)
        t = rows["t"].to_numpy(float)
        total = _num(rows, "Total Request Count")
        failed = _num(rows, "Total Failure Count")
        average = _num(rows, "Total Average Response Time")
        count = errors = 0
        weighted = 0.0
        for start, end in spans:
            before = np.searchsorted(t, start, side="left") - 1
            last = np.searchsorted(t, end, side="left") - 1
            if last < 0:
                continue
            n0, f0, a0 = (total[before], failed[before], average[before]) if before >= 0 else (
                0.0, 0.0, 0.0)
            count += int(total[last] - n0)
            errors += int(failed[last] - f0)
            weighted += average[last] * total[last] - a0 * n0
        inside = rows[span_mask(t, spans)]
        percentiles = {c: float(np.nanmax(_num(inside, c), initial=0.0))
                       for c in PERCENTILE_COLUMNS.values()} if len(inside) else {}
        maximum = percentiles.get("100%", math.nan)
        return LocustSelection(count, errors, percentiles, weighted / count if count else math.nan,
                               math.nan, maximum)

    def sliding_quantile(self, step: str, q: float, window_s: float, start: float, end: float,
                         link: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        # Locust's own window (~10 s) replaces window_s: its CSV holds nothing finer.
        rows = self._history.get(step)
        times = np.arange(math.ceil(start), math.floor(end) + 1, dtype=float)
        if rows is None:
            return times, np.full(len(times), math.nan)
        t = rows["t"].to_numpy(float)
        column, _ = _column_for(q)
        value = _num(rows, column)
        total = _num(rows, "Total Request Count")
        recent = total - np.concatenate([np.zeros(10), total])[: len(total)]
        value = np.where(recent > 0, value, math.nan)
        idx = np.searchsorted(t, times, side="right") - 1
        return times, np.where(idx >= 0, value[np.maximum(idx, 0)], math.nan)

    def write_outage(self, steps: Sequence[str], start: float, end: float) -> float | None:
        seconds, ok, bad = [], [], []
        for step in steps:
            rows = self._history.get(step)
            if rows is None:
                continue
            total = np.diff(_num(rows, "Total Request Count"), prepend=0.0)
            failed = np.diff(_num(rows, "Total Failure Count"), prepend=0.0)
            seconds.append(rows["t"].to_numpy(float))
            ok.append(total - failed)
            bad.append(failed)
        if not seconds:
            return 0.0
        t, good, fails = (np.concatenate(x) for x in (seconds, ok, bad))
        failing = (fails > 0) & (t >= math.floor(start)) & (t < end)
        if not failing.any():
            return 0.0
        last = t[failing].max()
        after = t[(good > 0) & (t > last)]
        return float(after.min() - start) if len(after) else None
