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


def _colmax(values: np.ndarray) -> np.ndarray:
    """Column-wise maximum ignoring NaN; NaN for a column without any number."""
    if values.shape[0] == 0:
        return np.full(values.shape[1], math.nan)
    out = np.full(values.shape[1], -math.inf)
    for row in values:
        out = np.fmax(out, row)
    return np.where(np.isneginf(out), math.nan, out)


def _merge(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-empty half-open spans, sorted, with overlapping or adjacent ones merged."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted((float(s), float(e)) for s, e in spans if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


_NO_VALUE = {"", "N/A"}


def _numbers(path: Path, frame: pd.DataFrame, column: str, *, na: bool = False,
             count: bool = False) -> np.ndarray:
    """A column as floats; raises LocustCsvError on anything that is not a number.

    ``na``: empty cells and ``N/A`` are allowed and read as NaN. ``count``: values must be
    whole numbers >= 0.
    """
    text = frame[column].fillna("").astype(str).str.strip()
    blank = text.isin(_NO_VALUE).to_numpy()
    values = pd.to_numeric(text.where(~blank, "nan"), errors="coerce").to_numpy(float)
    bad = (~np.isfinite(values) & ~blank) | (blank & (not na))
    if count:
        bad |= np.isfinite(values) & ((values < 0) | (values != np.round(values)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise LocustCsvError(f"{path}: line {row + 2}: column {column!r} is "
                             f"{frame[column].iloc[row]!r}, not a "
                             f"{'count' if count else 'number'}")
    return values


def _read(path: Path, prefix: str | Path, needed: set[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except FileNotFoundError as exc:
        raise LocustCsvError(f"{exc.filename}: no such file (run locust with --csv "
                             f"{prefix} --csv-full-history)") from exc
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError,
            UnicodeDecodeError) as exc:
        raise LocustCsvError(f"{path}: cannot read Locust CSV: {exc}") from exc
    missing = needed - set(frame.columns)
    if missing:
        raise LocustCsvError(f"{path}: not a Locust CSV (missing {sorted(missing)})")
    if "Type" not in frame.columns:
        frame["Type"] = ""
    frame["Type"] = frame["Type"].fillna("").astype(str)
    frame["Name"] = frame["Name"].fillna("").astype(str)
    return frame


def _is_total(frame: pd.DataFrame) -> np.ndarray:
    """Locust's own "Aggregated" rows (empty Type), as opposed to request names."""
    return ((frame["Name"] == "Aggregated") & (frame["Type"] == "")).to_numpy()


@dataclasses.dataclass
class _Series:
    """One request name's history, all its methods merged, one row per timestamp."""

    t: np.ndarray
    total: np.ndarray           # cumulative requests
    failed: np.ndarray          # cumulative failures
    time_sum: np.ndarray        # cumulative sum of response times (ms)
    percentiles: np.ndarray     # rows x PERCENTILE_COLUMNS of Locust's window; NaN = no data

    @classmethod
    def of(cls, rows: pd.DataFrame) -> "_Series":
        times = np.unique(rows["t"].to_numpy(float))
        total = np.zeros(len(times))
        failed = np.zeros(len(times))
        time_sum = np.zeros(len(times))
        percentiles = np.full((len(times), len(PERCENTILE_COLUMNS)), math.nan)
        for _, method in rows.groupby("Type", sort=False):
            # One row per timestamp (the last written); cumulative figures of a method carried
            # forward over the timestamps where only other methods have a row.
            method = method.drop_duplicates("t", keep="last").sort_values("t")
            t = method["t"].to_numpy(float)
            idx = np.searchsorted(t, times, side="right") - 1
            seen = idx >= 0
            at = np.maximum(idx, 0)
            for out, column in ((total, "n"), (failed, "f"), (time_sum, "s")):
                out += np.where(seen, method[column].to_numpy(float)[at], 0.0)
            rows_here = np.searchsorted(times, t)
            percentiles[rows_here] = np.fmax(
                percentiles[rows_here], method[list(PERCENTILE_COLUMNS.values())].to_numpy(float))
        return cls(times, total, failed, time_sum, percentiles)


class LocustCsv:
    """Reads ``PREFIX_stats.csv`` and ``PREFIX_stats_history.csv``.

    Raises LocustCsvError when either file is missing or malformed.
    """

    precision = PRECISION

    def __init__(self, prefix: str | Path):
        stats_path = Path(f"{prefix}_stats.csv")
        history_path = Path(f"{prefix}_stats_history.csv")
        columns = list(PERCENTILE_COLUMNS.values())
        stats = _read(stats_path, prefix, {
            "Name", "Request Count", "Failure Count", "Average Response Time",
            "Min Response Time", "Max Response Time", *columns})
        history = _read(history_path, prefix, {
            "Timestamp", "Name", "Total Request Count", "Total Failure Count",
            "Total Average Response Time", *columns})

        # Whole run, from the stats file: request names only (the Aggregated row is optional).
        stats = stats[~_is_total(stats)]
        self._stats = pd.DataFrame({
            "Name": stats["Name"],
            "n": _numbers(stats_path, stats, "Request Count", count=True),
            "f": _numbers(stats_path, stats, "Failure Count", count=True),
            "avg": _numbers(stats_path, stats, "Average Response Time", na=True),
            "min": _numbers(stats_path, stats, "Min Response Time", na=True),
            "max": _numbers(stats_path, stats, "Max Response Time", na=True),
            **{c: _numbers(stats_path, stats, c, na=True) for c in columns},
        }, index=stats.index)
        if (self._stats["f"] > self._stats["n"]).any():
            raise LocustCsvError(f"{stats_path}: more failures than requests")

        # Per second, from the history file.
        stamp = _numbers(history_path, history, "Timestamp")
        t0 = float(stamp.min()) if len(stamp) else 0.0
        n = _numbers(history_path, history, "Total Request Count", count=True)
        f = _numbers(history_path, history, "Total Failure Count", count=True)
        if (f > n).any():
            raise LocustCsvError(f"{history_path}: more failures than requests")
        average = _numbers(history_path, history, "Total Average Response Time")
        window = np.column_stack([_numbers(history_path, history, c, na=True) for c in columns])
        # Locust writes 0 for every percentile when it has no usable window yet (and N/A when
        # the entry has no request): no data, not 0 ms. A row has data when its 100% column is
        # positive; then a lower column's 0 is a real (rounded) 0 ms.
        window[~(window[:, -1] > 0)] = math.nan
        frame = pd.DataFrame(window, columns=columns, index=history.index).assign(
            Type=history["Type"], Name=history["Name"], t=stamp - t0, n=n, f=f, s=average * n)
        requests = frame[~_is_total(history)]
        if requests.empty and not self._stats.empty:
            raise LocustCsvError(f"{history_path}: no per-request rows; run locust with "
                                 "--csv-full-history")
        self._history = {str(name): _Series.of(rows)
                         for name, rows in requests.groupby("Name", sort=False)}
        self.duration = float(frame["t"].max()) + 1 if len(frame) else 0.0

    def steps(self) -> list[str]:
        return sorted(set(self._stats["Name"][self._stats["n"] > 0]))

    def _whole(self, step: str) -> LocustSelection:
        rows = self._stats[self._stats["Name"] == step]
        count = int(rows["n"].sum())
        if not count:
            return LocustSelection(0, 0, {}, math.nan, math.nan, math.nan)
        rows = rows[rows["n"] > 0]
        columns = list(PERCENTILE_COLUMNS.values())
        # Several methods under one name: percentiles are bounded by the worst of them.
        percentiles = dict(zip(columns, _colmax(rows[columns].to_numpy(float)).tolist()))
        mean = float((rows["avg"] * rows["n"]).sum() / count)
        minimum = -_colmax(-rows[["min"]].to_numpy(float))[0]
        maximum = _colmax(rows[["max"]].to_numpy(float))[0]
        return LocustSelection(count, int(rows["f"].sum()), percentiles, mean,
                               float(minimum), float(maximum))

    def select(self, step: str, spans: Spans = None, link: str | None = None) -> LocustSelection:
        if link is not None:
            raise LocustCsvError("Locust CSV output has no mobile-link dimension; "
                                 f"drop 'link: {link}' from the budget")
        if spans is None:
            return self._whole(step)
        series = self._history.get(step)
        if series is None:
            return LocustSelection(0, 0, {}, math.nan, math.nan, math.nan)
        spans = _merge(spans)
        t = series.t
        count = errors = 0
        weighted = 0.0
        for start, end in spans:
            before = np.searchsorted(t, start, side="left") - 1
            last = np.searchsorted(t, end, side="left") - 1
            if last < 0:
                continue
            n0, f0, s0 = ((series.total[before], series.failed[before], series.time_sum[before])
                          if before >= 0 else (0.0, 0.0, 0.0))
            count += int(series.total[last] - n0)
            errors += int(series.failed[last] - f0)
            weighted += series.time_sum[last] - s0
        inside = series.percentiles[span_mask(t, spans)]
        percentiles = dict(zip(PERCENTILE_COLUMNS.values(), _colmax(inside).tolist()))
        return LocustSelection(count, errors, percentiles, weighted / count if count else math.nan,
                               math.nan, percentiles["100%"])

    def sliding_quantile(self, step: str, q: float, window_s: float, start: float, end: float,
                         link: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        # Locust's own window (~10 s) replaces window_s: its CSV holds nothing finer.
        if link is not None:
            raise LocustCsvError("Locust CSV output has no mobile-link dimension; "
                                 f"drop 'link: {link}' from the budget")
        series = self._history.get(step)
        times = np.arange(math.ceil(start), math.floor(end) + 1, dtype=float)
        if series is None:
            return times, np.full(len(times), math.nan)
        _, level = _column_for(q)
        value = series.percentiles[:, list(PERCENTILE_COLUMNS).index(level)]
        idx = np.searchsorted(series.t, times, side="right") - 1
        return times, np.where(idx >= 0, value[np.maximum(idx, 0)], math.nan)

    def write_outage(self, steps: Sequence[str], start: float, end: float) -> float | None:
        seconds, ok, bad = [], [], []
        for step in dict.fromkeys(steps):
            series = self._history.get(step)
            if series is None:
                continue
            total = np.diff(series.total, prepend=0.0)
            failed = np.diff(series.failed, prepend=0.0)
            seconds.append(series.t)
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
