"""FIFO G/G/c kernel speed: compiled vs pure-Python recursion vs naive SimPy, side by side in one run.

Workload: M/M/10 at ρ = 0.8 (μ = 1/s, λ = 8/s), one pool, the system starting empty. All three
consume the same arrival and service streams (prefixes of one draw), and the waits of the shared
prefix are compared, so the figures are for the same answer. The naive design is REFERENCE.md's
baseline: one SimPy process per customer queueing on a ``simpy.Resource(capacity=10)``.
A second table shows single-server pools, where the python backend uses the vectorised Lindley path.

Kernel timings are best of 3 runs; SimPy is timed once.
Usage: python bench/bench_kernel.py [N_NUMBA]   (default 20,000,000; python gets N/10, SimPy N/100)
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator import kernel  # noqa: E402

REPEAT = 3  # kernel timings are best of 3; SimPy (seconds per run) is timed once


def simpy_naive(arrivals: np.ndarray, services: np.ndarray, c: int) -> np.ndarray:
    """One process per customer on a SimPy Resource; returns start times."""
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    starts = np.empty(arrivals.size)

    def customer(i: int, service: float):  # type: ignore[no-untyped-def]
        with servers.request() as req:
            yield req
            starts[i] = env.now
            yield env.timeout(service)

    def source():  # type: ignore[no-untyped-def]
        for i, (a, s) in enumerate(zip(arrivals.tolist(), services.tolist())):
            yield env.timeout(a - env.now)
            env.process(customer(i, s))

    env.process(source())
    env.run()
    return starts


def timed(fn: Callable[[], np.ndarray], repeat: int = 1) -> tuple[np.ndarray, float]:
    """Result and best wall time of ``repeat`` runs (best-of filters out noise from other load
    on a shared 2-core machine; each run starts from fresh state inside ``fn``)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def one_pool(run: Callable[..., np.ndarray], a: np.ndarray, s: np.ndarray, c: int) -> np.ndarray:
    return run(a, s, np.zeros(a.size, np.int64), np.zeros((1, c)))


def table(title: str, c: int, lam: float, n_fast: int, with_simpy: bool) -> None:
    rng = np.random.default_rng(2024)
    arrivals = np.cumsum(rng.exponential(1 / lam, n_fast))
    services = rng.exponential(1.0, n_fast)
    n_py, n_simpy = n_fast // 10, n_fast // 100
    print(f"\n{title}")
    vs = "vs SimPy" if with_simpy else ""
    print(f"{'implementation':44s} {'customers':>11s} {'seconds':>8s} {'customers/s':>12s} {vs:>9s}")
    rows: list[tuple[str, int, float]] = []
    ref = None
    if kernel.NUMBA_AVAILABLE:
        _, compile_s = timed(lambda: one_pool(kernel.fifo_starts_numba, arrivals[:10], services[:10], c))
        starts_nb, dt = timed(lambda: one_pool(kernel.fifo_starts_numba, arrivals, services, c), REPEAT)
        rows.append((f"numba kernel (first call {compile_s:.2f} s, excluded)", n_fast, dt))
        ref = starts_nb
    label = "python fallback (vectorised Lindley)" if c == 1 else "python fallback (heapq loop)"
    starts_py, dt = timed(lambda: one_pool(kernel.fifo_starts_python, arrivals[:n_py], services[:n_py], c),
                          REPEAT)
    rows.append((label, n_py, dt))
    if ref is not None:
        diff = np.abs(starts_py - ref[:n_py]).max()
        print(f"  python vs numba, max |Δstart| on shared {n_py:,}: {diff:.3g} s"
              + (" (bit-identical)" if diff == 0 else ""))
    else:
        ref = starts_py
    if with_simpy:
        starts_sp, dt = timed(lambda: simpy_naive(arrivals[:n_simpy], services[:n_simpy], c))
        rows.append(("SimPy, one process per customer (Resource)", n_simpy, dt))
        diff = np.abs(starts_sp - ref[:n_simpy]).max()
        print(f"  SimPy vs kernel, max |Δstart| on shared {n_simpy:,}: {diff:.3g} s")
    base = rows[-1][1] / rows[-1][2] if with_simpy else None
    for name, n, dt in rows:
        rate = n / dt
        ratio = f"{rate / base:8.0f}×" if base else ""
        print(f"{name:44s} {n:>11,d} {dt:8.2f} {rate:12,.0f} {ratio:>9s}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000_000
    try:
        from numba import __version__ as numba_version
    except ImportError:
        numba_version = "absent"
    print(f"bench_kernel: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, "
          f"numpy {np.__version__}, numba {numba_version}, simpy {simpy.__version__}; "
          f"kernel.BACKEND={kernel.BACKEND}; {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    table("M/M/10, rho = 0.8 (mu = 1, lambda = 8), one pool", c=10, lam=8.0, n_fast=n, with_simpy=True)
    table("M/M/1, rho = 0.8 (single server: python uses the Lindley path)", c=1, lam=0.8, n_fast=n,
          with_simpy=False)


if __name__ == "__main__":
    main()
