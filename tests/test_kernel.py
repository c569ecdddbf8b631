"""The FIFO G/G/c kernel: backends agree bit for bit, state carries over, and it matches queueing theory.

Theory checks use batch means after warm-up deletion with the tolerance from REFERENCE.md:
|estimate − theory| ≤ max(3 × 95 % CI half-width, 2 % of theory). Seeds are fixed.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import kernel, queueing

ROOT = Path(__file__).resolve().parents[1]
needs_numba = pytest.mark.skipif(not kernel.NUMBA_AVAILABLE, reason="numba unavailable or disabled")

# Large samples go through the fastest available backend; the python fallback gets its own cases.
fast = kernel.fifo_starts_numba if kernel.NUMBA_AVAILABLE else kernel.fifo_starts_python

N_BATCHES = 50
T_975_49 = 2.009575  # Student t quantile, 0.975, 49 degrees of freedom (no scipy dependency)
WARMUP = 0.1  # share of customers deleted at the start (the system starts empty)


def check(batch_means: np.ndarray, theory: float, what: str) -> None:
    """|mean of batch means − theory| ≤ max(3 × 95 % CI half-width, 2 % of theory)."""
    est = float(batch_means.mean())
    hw = T_975_49 * float(batch_means.std(ddof=1)) / math.sqrt(len(batch_means))
    tol = max(3 * hw, 0.02 * abs(theory))
    assert abs(est - theory) <= tol, (
        f"{what}: estimate {est:.5g} ± {hw:.3g} vs theory {theory:.5g} (tol {tol:.3g})")


Stat = Callable[[np.ndarray, np.ndarray], np.ndarray]


Sampler = Callable[[np.random.Generator, int], np.ndarray]


def batch_means(run: Callable[..., np.ndarray], *, lam: float, service: Sampler, n: int, seed: int,
                stats: dict[str, Stat], pools: int = 1, c: int = 1) -> dict[str, np.ndarray]:
    """Simulate ``n`` Poisson(λ) customers, randomly routed to ``pools`` pools of ``c`` servers,
    one call per batch with the state carried in ``free_at``; return each statistic's batch means.

    The first WARMUP share is simulated and discarded; the rest is split into N_BATCHES
    consecutive batches (one kernel call each, so memory stays O(n / N_BATCHES)). Statistics are
    functions of (wait, sojourn) returning per-customer values.
    """
    rng = np.random.default_rng(seed)
    per = int(n * (1 - WARMUP)) // N_BATCHES
    n_warm_calls = max(1, round(n * WARMUP / per))
    free = np.zeros((pools, c))
    clock = 0.0
    out: dict[str, list[float]] = {name: [] for name in stats}
    for k in range(n_warm_calls + N_BATCHES):
        arrivals = clock + np.cumsum(rng.exponential(1 / lam, per))
        clock = float(arrivals[-1])
        services = service(rng, per)
        pool = rng.integers(0, pools, per) if pools > 1 else np.zeros(per, np.int64)
        wait = run(arrivals, services, pool, free) - arrivals
        if k >= n_warm_calls:
            for name, f in stats.items():
                out[name].append(float(f(wait, wait + services).mean()))
    return {name: np.array(v) for name, v in out.items()}


@contextmanager
def heap_threshold(value: int) -> Iterator[None]:
    """Force the numba backend's heap path on narrower pools (it is a pure speed switch)."""
    old = kernel.HEAP_MIN_SERVERS
    kernel.HEAP_MIN_SERVERS = value
    try:
        yield
    finally:
        kernel.HEAP_MIN_SERVERS = old


# --- the oracles themselves --------------------------------------------------------------------


def test_erlang_c_recursion_matches_factorial_form() -> None:
    for c, a in [(1, 0.5), (2, 1.5), (10, 8.0), (25, 20.0), (60, 55.0)]:
        terms = sum(a**k / math.factorial(k) for k in range(c))
        last = a**c / math.factorial(c) * c / (c - a)
        assert queueing.erlang_c(c, a) == pytest.approx(last / (terms + last), rel=1e-12)
    assert queueing.erlang_c(1, 0.8) == pytest.approx(0.8)  # M/M/1: P(wait) = ρ
    assert 0 < queueing.erlang_c(1000, 990.0) < 1  # the recursion never overflows


def test_mmc_with_one_server_is_mm1_and_sojourn_limit_is_continuous() -> None:
    t = np.array([0.0, 1.0, 5.0])
    assert queueing.mmc_wq(0.8, 1.0, 1) == pytest.approx(queueing.mm1_wq(0.8, 1.0))
    np.testing.assert_allclose(queueing.mmc_sojourn_sf(t, 0.8, 1.0, 1),
                               queueing.mm1_sojourn_sf(t, 0.8, 1.0))
    np.testing.assert_allclose(queueing.mmc_wait_sf(t, 0.8, 1.0, 1), queueing.mm1_wait_sf(t, 0.8, 1.0))
    # θ = cμ − λ = μ uses the Erlang-2 limit; it must join the general formula continuously.
    near = queueing.mmc_sojourn_sf(2.0, 3.0 + 1e-6, 1.0, 4)
    assert queueing.mmc_sojourn_sf(2.0, 3.0, 1.0, 4) == pytest.approx(near, rel=1e-5)
    assert queueing.mg1_wq(0.8, 1.0, 2.0) == pytest.approx(queueing.mm1_wq(0.8, 1.0))  # exponential S
    with pytest.raises(ValueError):
        queueing.mmc_wq(10.0, 1.0, 10)
    with pytest.raises(ValueError):
        queueing.mg1_wq(1.2, 1.0, 2.0)


# --- backends agree bit for bit; state carries over ----------------------------------------------


@st.composite
def workloads(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                        np.ndarray | None, int]:
    n_pools = draw(st.integers(1, 5))
    width = draw(st.integers(1, 8))
    n = draw(st.integers(0, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # Times on a coarse grid make ties (equal arrivals, equal free-at times) common, so the
    # tie-break — not only the arithmetic — is compared between backends.
    grid = draw(st.sampled_from([0.0, 0.25, 1.0]))
    arrivals = np.sort(rng.exponential(0.3, n).cumsum())
    services = rng.exponential(1.0, n) * draw(st.floats(0.1, 4.0))
    if grid:
        arrivals, services = np.round(arrivals / grid) * grid, np.round(services / grid) * grid
    pool = rng.integers(0, n_pools, n)
    free_at = rng.choice([0.0, 0.0, 1.0, 3.5], size=(n_pools, width))  # idle and busy servers
    servers = None
    if draw(st.booleans()):
        servers = rng.integers(1, width + 1, n_pools)
    split = draw(st.integers(0, n))
    return arrivals, services, pool, free_at, servers, split


@needs_numba
@given(workloads(), st.sampled_from([1, 2, 4, kernel.HEAP_MIN_SERVERS]))
@settings(max_examples=250, deadline=None)
def test_numba_and_python_are_bit_identical_and_state_carries_over(w, heap_min) -> None:
    arrivals, services, pool, free0, servers, k = w
    # One call over everything.
    f_py = free0.copy()
    whole = kernel.fifo_starts_python(arrivals, services, pool, f_py, servers, lindley=False)
    with heap_threshold(heap_min):
        f_nb = free0.copy()
        assert np.array_equal(kernel.fifo_starts_numba(arrivals, services, pool, f_nb, servers), whole)
        assert np.array_equal(f_nb, f_py)
        # Two calls, state carried in free_at, equal the single call — for both backends.
        f2 = free0.copy()
        parts = [kernel.fifo_starts_numba(arrivals[:k], services[:k], pool[:k], f2, servers),
                 kernel.fifo_starts_numba(arrivals[k:], services[k:], pool[k:], f2, servers)]
        assert np.array_equal(np.concatenate(parts), whole) and np.array_equal(f2, f_py)
    f3 = free0.copy()
    parts = [kernel.fifo_starts_python(arrivals[:k], services[:k], pool[:k], f3, servers, lindley=False),
             kernel.fifo_starts_python(arrivals[k:], services[k:], pool[k:], f3, servers, lindley=False)]
    assert np.array_equal(np.concatenate(parts), whole) and np.array_equal(f3, f_py)
    assert np.all(whole >= arrivals)
    # The default python path (vectorised Lindley on single-server pools) agrees to rounding.
    f4 = free0.copy()
    lindley = kernel.fifo_starts_python(arrivals, services, pool, f4, servers)
    np.testing.assert_allclose(lindley, whole, rtol=0, atol=1e-9)
    np.testing.assert_allclose(f4, f_py, rtol=0, atol=1e-9)


@needs_numba
def test_wide_pools_mix_scan_and_heap_and_match_python() -> None:
    rng = np.random.default_rng(11)
    widths = np.array([1, 5, 19, 20, 33, 64])
    n = 200_000
    arrivals = np.round(np.sort(rng.uniform(0, 2000, n)), 2)
    pool = rng.integers(0, len(widths), n)
    rate_per_pool = n / len(widths) / 2000
    services = np.round(rng.exponential(0.8 * widths[pool] / rate_per_pool), 2)  # ρ ≈ 0.8 each
    free_py = np.zeros((len(widths), 64))
    ref = kernel.fifo_starts_python(arrivals, services, pool, free_py, widths, lindley=False)
    free = np.zeros((len(widths), 64))
    got = kernel.fifo_starts_numba(arrivals, services, pool, free, widths)
    assert np.array_equal(got, ref) and np.array_equal(free, free_py)
    assert np.all(free[0, 1:] == 0) and np.all(free[1, 5:] == 0)  # unusable columns untouched


def test_shrinking_and_growing_a_pool_uses_only_the_usable_servers() -> None:
    rng = np.random.default_rng(5)
    arrivals = np.sort(rng.uniform(0, 100, 400))
    services = rng.exponential(2.0, 400)
    pool = np.zeros(400, dtype=np.int64)
    # A 3-wide array restricted to one server behaves exactly like a 1-wide one.
    wide, narrow = np.zeros((1, 3)), np.zeros((1, 1))
    assert np.array_equal(kernel.fifo_starts(arrivals, services, pool, wide, np.array([1])),
                          kernel.fifo_starts(arrivals, services, pool, narrow))
    assert wide[0, 0] == narrow[0, 0] and np.all(wide[0, 1:] == 0)
    # Growing: a new server whose free-at is its ready time is not used before it is ready.
    free = np.array([[1000.0, 50.0]])
    starts = kernel.fifo_starts(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.zeros(2, np.int64),
                                free, np.array([2]))
    assert starts.tolist() == [50.0, 51.0]


def test_lindley_vectorised_matches_loop() -> None:
    rng = np.random.default_rng(3)
    # (λ, μ, customers, initial free-at): match-day scale — 1M customers in ≈ 3.5 h at ρ = 0.8 —
    # plus light load with a busy start, overload, and near-critical load.
    cases = [(80.0, 100.0, 1_000_000, 0.0), (0.5, 1.0, 50_000, 300.0), (1.3, 1.0, 10_000, 0.0),
             (0.99, 1.0, 1_000, 2.0)]
    for lam, mu, n, free in cases:
        arrivals = np.cumsum(rng.exponential(1 / lam, n))
        services = rng.exponential(1 / mu, n)
        starts, f = kernel.lindley_starts(arrivals, services, free)
        out: list[float] = []
        f_loop = kernel._loop_single(arrivals.tolist(), services.tolist(), free, out)
        np.testing.assert_allclose(starts, out, rtol=0, atol=1e-9)
        assert abs(f - f_loop) <= 1e-9 and np.all(starts >= arrivals)


def test_lindley_long_horizon_agrees_to_a_few_ulps() -> None:
    # At 10⁶ s one ulp is 1.2e-10 s and the loop's own sequential additions drift by several, so
    # the two can only be compared relatively there (the loop is not the more exact one).
    rng = np.random.default_rng(4)
    arrivals = np.cumsum(rng.exponential(1 / 0.8, 1_000_000))
    services = rng.exponential(1.0, arrivals.size)
    starts, _ = kernel.lindley_starts(arrivals, services, 0.0)
    out: list[float] = []
    kernel._loop_single(arrivals.tolist(), services.tolist(), 0.0, out)
    np.testing.assert_allclose(starts, out, rtol=1e-13, atol=0)


def test_invalid_inputs_are_refused_before_touching_state() -> None:
    free = np.zeros((2, 2))
    a, s, p = np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([0, 1])
    for backend in (kernel.fifo_starts, kernel.fifo_starts_python):
        with pytest.raises(ValueError, match="time order within each pool"):
            backend(a[::-1].copy(), s, np.array([0, 0]), free)
        with pytest.raises(ValueError, match="pool indices"):
            backend(a, s, np.array([0, 2]), free)
        with pytest.raises(ValueError, match="no usable server"):
            backend(a, s, p, free, np.array([2, 0]))
        with pytest.raises(ValueError, match="in place"):
            backend(a, s, p, np.zeros((2, 4))[:, ::2])
        with pytest.raises(TypeError):
            backend(a, s, p, np.zeros((2, 2), dtype=np.float32))
        assert np.all(free == 0)


def test_no_jit_env_selects_python_backend() -> None:
    code = ("import numpy as np; from simulator import kernel as k; "
            "f = np.zeros((1, 2)); "
            "print(k.BACKEND, k.fifo_starts(np.zeros(3), np.ones(3), np.zeros(3, int), f).tolist())")
    env = dict(os.environ, MATCHDAY_NO_JIT="1")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True)
    assert res.stdout.split(maxsplit=1) == ["python", "[0.0, 0.0, 1.0]\n"]


# --- against queueing theory -------------------------------------------------------------------


def _poisson_arrivals(rng: np.random.Generator, lam: float, n: int) -> np.ndarray:
    return np.cumsum(rng.exponential(1 / lam, n))


def _exp_service(mu: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, k: rng.exponential(1 / mu, k)


BACKENDS = {"fast": fast, "python": kernel.fifo_starts_python}


# The python backend runs the M/M/1 case on its vectorised Lindley path.
@pytest.mark.parametrize("backend, n", [("fast", 10_000_000), ("python", 2_000_000)])
def test_mm1_mean_wait_and_sojourn_tail(backend: str, n: int) -> None:
    lam, mu, ts = 0.8, 1.0, (1.0, 5.0, 10.0)
    stats: dict[str, Stat] = {"wq": lambda w, t: w}
    stats.update({f"T>{t}": (lambda w, s, t=t: s > t) for t in ts})
    res = batch_means(BACKENDS[backend], lam=lam, service=_exp_service(mu), n=n, seed=20240601,
                      stats=stats)
    check(res["wq"], queueing.mm1_wq(lam, mu), "M/M/1 Wq")
    for t in ts:
        check(res[f"T>{t}"], queueing.mm1_sojourn_sf(t, lam, mu), f"M/M/1 P(T>{t})")


# The python backend runs the M/M/10 case on its heapq loop.
@pytest.mark.parametrize("backend, n", [("fast", 20_000_000), ("python", 2_000_000)])
def test_mmc_erlang_c_mean_wait_and_wait_tail(backend: str, n: int) -> None:
    # Four independent M/M/10 pools fed by random (Poisson-splitting) routing: each pool is an
    # M/M/10 at ρ = 0.8, so routing and per-pool state are checked along with the recursion.
    c, mu, lam_pool, pools, ts = 10, 1.0, 8.0, 4, (0.1, 0.5, 1.0)
    stats: dict[str, Stat] = {"wq": lambda w, s: w}
    stats.update({f"W>{t}": (lambda w, s, t=t: w > t) for t in ts})
    res = batch_means(BACKENDS[backend], lam=lam_pool * pools, service=_exp_service(mu), n=n, seed=77,
                      stats=stats, pools=pools, c=c)
    check(res["wq"], queueing.mmc_wq(lam_pool, mu, c), "M/M/c Wq")
    for t in ts:
        check(res[f"W>{t}"], queueing.mmc_wait_sf(t, lam_pool, mu, c), f"M/M/c P(W>{t})")


def test_mg1_lognormal_pollaczek_khinchine() -> None:
    lam, mean, cv = 0.8, 1.0, 2.0
    m, s, es2 = queueing.lognormal_moments(mean, cv)
    res = batch_means(fast, lam=lam, service=lambda rng, k: rng.lognormal(m, s, k), n=60_000_000,
                      seed=4242, stats={"wq": lambda w, _: w})
    check(res["wq"], queueing.mg1_wq(lam, mean, es2), "M/G/1 Wq (P-K)")


def _backlog_at(arrivals: np.ndarray, starts: np.ndarray, t: float) -> int:
    """Customers arrived by ``t`` but not yet in service: the queue length at ``t``."""
    arrived = arrivals <= t
    return int(np.count_nonzero(arrived & (starts > t)))


@pytest.mark.parametrize("backend, c", [("fast", 10), ("python-lindley", 1)])
def test_overload_backlog_grows_like_excess_rate(backend: str, c: int) -> None:
    # ρ = 1.2, fed one 1000 s chunk per call so the backlog must survive in free_at; the queue
    # at each chunk end must track (λ − cμ)·t, and the last one within 3 % (≈ 4 σ here).
    mu, horizon, chunk = 1.0, 100_000.0 * (10 / c), 1000.0 * (10 / c)
    lam = 1.2 * c * mu
    rng = np.random.default_rng(9)
    n = int(lam * horizon * 1.05)
    arrivals = _poisson_arrivals(rng, lam, n)
    arrivals = arrivals[arrivals <= horizon]
    services = rng.exponential(1 / mu, arrivals.size)
    run = fast if backend == "fast" else kernel.fifo_starts_python
    free = np.zeros((1, c))
    edges = np.searchsorted(arrivals, np.arange(chunk, horizon + chunk / 2, chunk), side="right")
    starts, lo = np.empty_like(arrivals), 0
    ts, queue = [], []
    for k, hi in enumerate(edges):
        starts[lo:hi] = run(arrivals[lo:hi], services[lo:hi], np.zeros(hi - lo, np.int64), free)
        lo = hi
        ts.append((k + 1) * chunk)
        queue.append(_backlog_at(arrivals[:hi], starts[:hi], ts[-1]))
    expected = (lam - c * mu) * np.array(ts)
    assert queue[-1] == pytest.approx(expected[-1], rel=0.03)
    slope = np.polyfit(ts, queue, 1)[0]
    assert slope == pytest.approx(lam - c * mu, rel=0.03)
    assert np.all(free[0] > horizon)  # every server is booked beyond the horizon


def test_pools_may_interleave_out_of_global_order() -> None:
    # Only each pool's own order matters: pool 1's customer at t=0 may come after pool 0's at 5.
    free = np.zeros((2, 1))
    starts = kernel.fifo_starts(np.array([5.0, 0.0, 6.0]), np.array([2.0, 1.0, 1.0]),
                                np.array([0, 1, 0]), free)
    np.testing.assert_array_equal(starts, [5.0, 0.0, 7.0])
    np.testing.assert_array_equal(free[:, 0], [8.0, 1.0])
