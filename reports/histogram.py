"""Log-bucket latency histograms with a guaranteed relative error (DDSketch-style buckets).

Bucket ``i`` holds latencies in ``(γ^(i-1), γ^i]`` ms with ``γ = (1+α)/(1−α)``; its representative
value ``2γ^i/(γ+1)`` is within ``α`` (relative) of every latency in it. With ``α = 0.01`` any
quantile read from a histogram is within 1 % of the same quantile of the exact latencies.
This is the documented summary a run directory may store instead of one row per request.
"""

from __future__ import annotations

import math

import numpy as np

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
MIN_MS = 1e-3
"""Latencies below one microsecond are counted as one microsecond."""


def bucket_of(latency_ms: np.ndarray | float) -> np.ndarray:
    """The bucket index (int32) of each latency in ms."""
    x = np.maximum(np.asarray(latency_ms, dtype=float), MIN_MS)
    return np.ceil(np.log(x) / _LOG_GAMMA - 1e-12).astype(np.int32)


def bucket_value(bucket: np.ndarray | int) -> np.ndarray:
    """The representative latency (ms) of each bucket index."""
    return 2 * np.power(GAMMA, np.asarray(bucket, dtype=float)) / (GAMMA + 1)


def quantile(buckets: np.ndarray, counts: np.ndarray, q: float) -> float:
    """The ``q``-quantile (0 ≤ q ≤ 1) of a histogram, interpolated like ``numpy.percentile``.

    ``buckets`` need not be sorted or unique. Returns NaN for an empty histogram.
    """
    buckets = np.asarray(buckets)
    counts = np.asarray(counts, dtype=np.int64)
    keep = counts > 0
    if not keep.any():
        return math.nan
    uniq, inverse = np.unique(buckets[keep], return_inverse=True)
    merged = np.bincount(inverse, weights=counts[keep]).astype(np.int64)
    cumulative = np.cumsum(merged)
    n = int(cumulative[-1])
    position = q * (n - 1)
    low, high = math.floor(position), math.ceil(position)
    values = bucket_value(uniq[np.searchsorted(cumulative, [low, high], side="right")])
    return float(values[0] + (values[1] - values[0]) * (position - low))


def mean(buckets: np.ndarray, counts: np.ndarray) -> float:
    """The mean latency of a histogram (within α of the exact mean); NaN when empty."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return float((bucket_value(buckets) * counts).sum() / total) if total else math.nan


def quantile_rows(counts: np.ndarray, first_bucket: int, q: float) -> np.ndarray:
    """The ``q``-quantile of each row of a dense histogram matrix, as :func:`quantile` gives it.

    ``counts[r, j]`` counts bucket ``first_bucket + j`` in row ``r``; empty rows give NaN.
    """
    counts = np.asarray(counts, dtype=np.int64)
    cumulative = np.cumsum(counts, axis=1)
    n = cumulative[:, -1] if counts.shape[1] else np.zeros(len(counts), dtype=np.int64)
    position = q * np.maximum(n - 1, 0)
    low, high = np.floor(position), np.ceil(position)
    # The bucket holding rank k (0-based) is the first whose cumulative count exceeds k.
    low_bucket = (cumulative > low[:, None]).argmax(axis=1)
    high_bucket = (cumulative > high[:, None]).argmax(axis=1)
    v_low = bucket_value(first_bucket + low_bucket)
    v_high = bucket_value(first_bucket + high_bucket)
    out = v_low + (v_high - v_low) * (position - low)
    return np.where(n > 0, out, np.nan)
