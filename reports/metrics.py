"""What the verdict engine needs from a run's measurements, whatever stores them.

A :class:`MetricSource` answers questions about one step's requests in some spans of run time,
optionally over one mobile link. Run directories answer from exact latencies or from log-bucket
histograms (:mod:`reports.requests`); plain Locust output answers from its CSV files
(:mod:`reports.locust_csv`), with the precision its rounded buckets allow.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol, Sequence

import numpy as np

Spans = Sequence[tuple[float, float]] | None
"""Half-open spans ``[start, end)`` of run time in seconds; ``None`` is the whole run."""


@dataclasses.dataclass(frozen=True)
class StepStats:
    """Headline figures of one step (latencies in ms); NaN where there is no request."""

    count: int
    errors: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    @property
    def error_rate(self) -> float:
        """Failed requests / all requests (NaN when there is none)."""
        return self.errors / self.count if self.count else math.nan


class Selection(Protocol):
    """The requests of one step in some spans (and over one link)."""

    count: int
    errors: int

    def quantile(self, q: float) -> float:
        """Latency (ms) at quantile ``q`` in [0, 1], ok and failed requests alike; NaN if empty."""

    def mean(self) -> float:
        """Mean latency in ms; NaN if empty."""

    def minimum(self) -> float:
        """Smallest latency in ms; NaN if empty."""

    def maximum(self) -> float:
        """Largest latency in ms; NaN if empty."""


class MetricSource(Protocol):
    """A run's measurements, as the verdict engine reads them."""

    precision: str
    """How exact the latencies are, in words, for the verdict output."""

    duration: float
    """Length of the run in seconds of run time."""

    def steps(self) -> list[str]:
        """The steps that have at least one request."""

    def select(self, step: str, spans: Spans = None, link: str | None = None) -> Selection:
        """The requests of ``step`` that started in ``spans`` (over ``link``, if given)."""

    def sliding_quantile(self, step: str, q: float, window_s: float, start: float, end: float,
                         link: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(t, value)`` per whole second ``t`` in ``[start, end]``: the ``q``-quantile of the
        requests that started in ``[max(t − window_s, start), t)`` (windows never reach back
        before ``start``); NaN where that window is empty."""

    def write_outage(self, steps: Sequence[str], start: float, end: float) -> float | None:
        """Seconds from ``start`` until writes succeed again after the last failed write that
        started in ``[start, end)``: 0 when none failed and some succeeded, ``None`` when no
        write succeeded after the last failure (or none was made at all: no evidence)."""


def stats_of(selection: Selection) -> StepStats:
    """The headline figures of a selection."""
    return StepStats(
        count=selection.count,
        errors=selection.errors,
        mean=selection.mean(),
        p50=selection.quantile(0.50),
        p95=selection.quantile(0.95),
        p99=selection.quantile(0.99),
        max=selection.maximum(),
    )


def span_mask(t: np.ndarray, spans: Spans) -> np.ndarray:
    """Boolean mask of the times ``t`` that fall in any of ``spans``."""
    if spans is None:
        return np.ones(len(t), dtype=bool)
    mask = np.zeros(len(t), dtype=bool)
    for start, end in spans:
        mask |= (t >= start) & (t < end)
    return mask
