"""Laboratory scenarios for the simulator's validation tests: one queue, no network delay.

``queue_scenario`` builds a scenario whose only step visits one service pool, with Poisson
arrivals at a constant rate and a link that adds nothing, so a request's recorded latency is its
sojourn at that queue. ``batch_means`` gives the estimate and the 95 % CI half-width used by the
tolerance max(3 × half-width, 2 %) (REFERENCE.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scenarios import Scenario

T_975_19 = 2.093  # Student t, 97.5 % quantile, 19 degrees of freedom (20 batches)


def chain_scenario(rate: float, hops: list[tuple[str, int, dict[str, Any]]], duration: float,
                   instances: int = 1, name: str = "lab",
                   wave: list[dict[str, Any]] | None = None, zones: tuple[str, ...] = ("a",),
                   chaos: list[dict[str, Any]] | None = None) -> Scenario:
    """λ = ``rate`` requests/s through services called in a chain: ``hops`` lists each one's
    name, workers per pod and service-time distribution (ms); no network delay. ``wave`` (as
    in a scenario file) varies the rate; by default it is constant."""
    call: dict[str, Any] = {}
    for service, _, _ in reversed(hops):
        call = {"service": service, "calls": [call] if call else []}
    return Scenario.model_validate({
        "name": name, "duration": duration, "seed": 11,
        "traffic": {
            "peak_users": rate,  # one request per user per second
            "wave": wave or [{"at": 0, "users": 1.0}],
            "journeys": {"probe": {"weight": 1, "steps": [{"step": "work", "think_s": 1.0}]}},
        },
        "links": {"mix": {"lab": 1.0}, "profiles": {"lab": {
            "down_kbps": 1e12, "up_kbps": 1e12, "rtt_ms": 0, "source": "test: no network",
            "verified": False}}},
        "topology": {
            "regions": {"r": {"zones": list(zones)}},
            "services": {service: {"instances": instances, "concurrency": workers,
                                   "service_time_ms": dist}
                         for service, workers, dist in hops},
            "steps": {"work": {"endpoint": "GET /work", "request_bytes": 0, "response_bytes": 0,
                               "calls": [call]}},
        },
        "chaos": chaos or [],
    })


def queue_scenario(rate: float, service_ms: dict[str, Any], servers: int, duration: float,
                   instances: int = 1, name: str = "lab") -> Scenario:
    """λ = ``rate`` requests/s into ``instances`` pods of ``servers`` workers each (service s)."""
    return chain_scenario(rate, [("s", servers, service_ms)], duration, instances, name)


def batch_means(t: np.ndarray, values: np.ndarray, start: float, end: float,
                weights: np.ndarray | None = None, batches: int = 20) -> tuple[float, float]:
    """(mean, 95 % CI half-width) of ``values`` over ``[start, end)`` from ``batches`` batch
    means by time (the first part of the run is dropped by the caller as warm-up)."""
    w = np.ones_like(values, dtype=float) if weights is None else weights.astype(float)
    edges = np.linspace(start, end, batches + 1)
    means = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (t >= lo) & (t < hi)
        means.append(np.sum(values[mask] * w[mask]) / np.sum(w[mask]))
    means = np.array(means)
    return float(means.mean()), float(T_975_19 * means.std(ddof=1) / math.sqrt(batches))


def within(estimate: float, half_width: float, expected: float) -> bool:
    """The project's tolerance: |estimate − expected| ≤ max(3 × half-width, 2 % of expected)."""
    return abs(estimate - expected) <= max(3 * half_width, 0.02 * abs(expected))


def latencies(run_dir) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(t, low_ms, high_ms, weight) of every recorded request, exact or histogram.

    Exact rows have low == high; a histogram bucket i spans (γ^(i−1), γ^i] ms.
    """
    import pandas as pd

    from reports import histogram

    exact = run_dir / "requests.parquet"
    if exact.exists():
        df = pd.read_parquet(exact)
        v = df["latency_ms"].to_numpy(float)
        return df["t"].to_numpy(float), v, v, np.ones(len(v))
    df = pd.read_parquet(run_dir / "requests_hist.parquet")
    b = df["bucket"].to_numpy(np.int64)
    return (df["second"].to_numpy(float), histogram.GAMMA ** (b - 1.0), histogram.GAMMA ** b,
            df["count"].to_numpy(float))


def share_above(low: np.ndarray, high: np.ndarray, t_ms: float) -> np.ndarray:
    """Per row, the share of its requests above ``t_ms`` (uniform within a histogram bucket)."""
    span = np.maximum(high - low, 1e-300)
    return np.where(low >= t_ms, 1.0, np.where(high <= t_ms, 0.0, (high - t_ms) / span))
