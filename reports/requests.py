"""Metric sources over a run directory's requests: exact latencies or log-bucket histograms.

Exact requests (``requests.parquet``) have one row per request or push:
``t`` (start, seconds of run time), ``step``, ``endpoint``, ``zone``, ``link``, ``latency_ms``,
``ok``, ``error``. Histograms (``requests_hist.parquet``) have one row per second, step, zone,
link, outcome and bucket: ``second``, ``step``, ``zone``, ``link``, ``ok``, ``bucket``, ``count``
(see :mod:`reports.histogram`). Percentiles interpolate like ``numpy.percentile``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from reports import histogram
from reports.metrics import Spans, span_mask

EXACT_COLUMNS = {
    "t": "float64", "step": "string", "endpoint": "string", "zone": "string", "link": "string",
    "latency_ms": "float64", "ok": "bool", "error": "string",
}
HISTOGRAM_COLUMNS = {
    "second": "int64", "step": "string", "zone": "string", "link": "string", "ok": "bool",
    "bucket": "int32", "count": "int64",
}


def _step_rows(by_step: dict[str, pd.DataFrame], step: str, link: str | None,
               columns: dict[str, str]) -> pd.DataFrame:
    """A step's rows (over one link, if given); an empty table of ``columns`` if it has none."""
    rows = by_step.get(step)
    if rows is None:
        return pd.DataFrame({c: pd.Series(dtype=d) for c, d in columns.items()})
    return rows if link is None else rows[rows["link"] == link]


class ExactSelection:
    """Exact latencies of a set of requests (sorted once, for repeated quantiles)."""

    def __init__(self, latency_ms: np.ndarray, ok: np.ndarray):
        self.latency_ms = np.sort(latency_ms)
        self.count = len(latency_ms)
        self.errors = int((~ok).sum())

    def quantile(self, q: float) -> float:
        if not self.count:
            return math.nan
        # numpy's default (linear) interpolation, on the already sorted latencies.
        position = q * (self.count - 1)
        low = math.floor(position)
        high = min(low + 1, self.count - 1)
        a, b = self.latency_ms[low], self.latency_ms[high]
        return float(a + (b - a) * (position - low))

    def mean(self) -> float:
        return float(self.latency_ms.mean()) if self.count else math.nan

    def minimum(self) -> float:
        return float(self.latency_ms[0]) if self.count else math.nan

    def maximum(self) -> float:
        return float(self.latency_ms[-1]) if self.count else math.nan


class ExactRequests:
    """A metric source over one row per request."""

    precision = "exact latencies"

    def __init__(self, frame: pd.DataFrame, duration: float):
        missing = set(EXACT_COLUMNS) - set(frame.columns) - {"endpoint", "zone", "error"}
        if missing:
            raise ValueError(f"requests table lacks columns: {', '.join(sorted(missing))}")
        frame = frame.sort_values("t", kind="stable")
        self.duration = duration
        self._by_step: dict[str, pd.DataFrame] = {
            str(step): part for step, part in frame.groupby("step", observed=True, sort=True)
        }

    def steps(self) -> list[str]:
        return list(self._by_step)

    def _rows(self, step: str, link: str | None) -> pd.DataFrame:
        return _step_rows(self._by_step, step, link, EXACT_COLUMNS)

    def select(self, step: str, spans: Spans = None, link: str | None = None) -> ExactSelection:
        rows = self._rows(step, link)
        mask = span_mask(rows["t"].to_numpy(float), spans)
        return ExactSelection(rows["latency_ms"].to_numpy(float)[mask],
                              rows["ok"].to_numpy(bool)[mask])

    def sliding_quantile(self, step: str, q: float, window_s: float, start: float, end: float,
                         link: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows(step, link)
        t = rows["t"].to_numpy(float)
        latency = rows["latency_ms"].to_numpy(float)
        times = np.arange(math.ceil(start), math.floor(end) + 1, dtype=float)
        lo = np.searchsorted(t, np.maximum(times - window_s, start), side="left")
        hi = np.searchsorted(t, times, side="left")
        values = np.array([np.quantile(latency[a:b], q) if b > a else math.nan
                           for a, b in zip(lo, hi)])
        return times, values

    def write_outage(self, steps: Sequence[str], start: float, end: float) -> float | None:
        frames = [self._rows(s, None) for s in steps]
        rows = pd.concat(frames) if frames else self._rows("", None)
        t = rows["t"].to_numpy(float)
        ok = rows["ok"].to_numpy(bool)
        done = t + rows["latency_ms"].to_numpy(float) / 1000
        inside = (t >= start) & (t < end)
        failed = (~ok) & inside
        if not failed.any():
            return 0.0 if (ok & inside).any() else None
        last_failure = t[failed].max()
        recovered = ok & (t > last_failure)
        if not recovered.any():
            return None
        return float(done[recovered].min() - start)


class HistogramSelection:
    """Log-bucket counts of a set of requests, merged by bucket once."""

    def __init__(self, buckets: np.ndarray, counts: np.ndarray, ok: np.ndarray):
        used = counts > 0
        self.count = int(counts[used].sum())
        self.errors = int(counts[used & ~ok].sum())
        self.buckets, inverse = np.unique(buckets[used], return_inverse=True)
        self.counts = np.bincount(inverse, weights=counts[used]).astype(np.int64) \
            if len(self.buckets) else np.zeros(0, dtype=np.int64)

    def quantile(self, q: float) -> float:
        return histogram.quantile(self.buckets, self.counts, q)

    def mean(self) -> float:
        return histogram.mean(self.buckets, self.counts)

    def minimum(self) -> float:
        return float(histogram.bucket_value(self.buckets[0])) if len(self.buckets) else math.nan

    def maximum(self) -> float:
        return float(histogram.bucket_value(self.buckets[-1])) if len(self.buckets) else math.nan


class HistogramRequests:
    """A metric source over per-second log-bucket histograms (≤ 1 % relative error)."""

    precision = f"log-bucket histograms, ≤ {histogram.RELATIVE_ACCURACY:.0%} relative error"

    def __init__(self, frame: pd.DataFrame, duration: float):
        missing = {"second", "step", "link", "ok", "bucket", "count"} - set(frame.columns)
        if missing:
            raise ValueError(f"histogram table lacks columns: {', '.join(sorted(missing))}")
        self.duration = duration
        self._by_step = {str(s): part for s, part in frame.groupby("step", observed=True)}

    def steps(self) -> list[str]:
        return sorted(self._by_step)

    def _rows(self, step: str, link: str | None) -> pd.DataFrame:
        return _step_rows(self._by_step, step, link, HISTOGRAM_COLUMNS)

    def select(self, step: str, spans: Spans = None,
               link: str | None = None) -> HistogramSelection:
        rows = self._rows(step, link)
        # A request is counted in the second it started in, so a span keeps whole seconds.
        mask = span_mask(rows["second"].to_numpy(float), spans)
        return HistogramSelection(rows["bucket"].to_numpy(np.int64)[mask],
                                  rows["count"].to_numpy(np.int64)[mask],
                                  rows["ok"].to_numpy(bool)[mask])

    def sliding_quantile(self, step: str, q: float, window_s: float, start: float, end: float,
                         link: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows(step, link)
        times = np.arange(math.ceil(start), math.floor(end) + 1, dtype=float)
        seconds = rows["second"].to_numpy(np.int64)
        first, last = math.floor(start), math.floor(end)
        keep = (seconds >= first) & (seconds < last) & (rows["count"].to_numpy() > 0)
        if not keep.any() or not len(times):
            return times, np.full(len(times), math.nan)
        seconds = seconds[keep] - first
        buckets = rows["bucket"].to_numpy(np.int64)[keep]
        low_bucket = int(buckets.min())
        width = int(buckets.max()) - low_bucket + 1
        span = last - first
        # A dense (second × bucket) matrix, then window sums from its running total.
        grid = np.bincount(seconds * width + (buckets - low_bucket),
                           weights=rows["count"].to_numpy(np.int64)[keep],
                           minlength=span * width).reshape(span, width)
        running = np.vstack([np.zeros((1, width)), np.cumsum(grid, axis=0)])
        lo = np.clip(np.maximum(times - window_s, start) - first, 0, span).astype(np.int64)
        hi = np.clip(times - first, 0, span).astype(np.int64)
        windows = running[hi] - running[lo]
        return times, histogram.quantile_rows(windows.round().astype(np.int64), low_bucket, q)

    def write_outage(self, steps: Sequence[str], start: float, end: float) -> float | None:
        frames = [self._rows(s, None) for s in steps]
        rows = pd.concat(frames)
        second = rows["second"].to_numpy(np.int64)
        ok = rows["ok"].to_numpy(bool)
        count = rows["count"].to_numpy(np.int64)
        inside = (count > 0) & (second >= math.floor(start)) & (second < end)
        failed = (~ok) & inside
        if not failed.any():
            return 0.0 if (ok & inside).any() else None
        last_failure = second[failed].max()
        recovered = ok & (count > 0) & (second > last_failure)
        if not recovered.any():
            return None
        # Second resolution: a write that started in second s is taken to succeed by s + 1.
        return float(second[recovered].min() + 1 - start)
