"""The simulator against queueing theory, at both fidelities (REFERENCE.md's oracles).

Each case is one queue with Poisson arrivals and no network delay, so a request's latency is its
sojourn. Estimates come from 20 batch means after deleting the first 10 % as warm-up; the
tolerance is max(3 × 95 % CI half-width, 2 %).
"""

from __future__ import annotations


import pytest

from simlab import batch_means, latencies, queue_scenario, share_above, within
from simulator import queueing
from simulator.run import simulate

# Request fidelity is exact but costs ~20 µs a request; flow is cheap, so it runs longer and
# gets CIs as tight.
DURATION = {"request": 2400.0, "flow": 9000.0}


def _run(tmp_path, fidelity: str, rate: float, service: dict, servers: int):
    duration = DURATION[fidelity]
    scenario = queue_scenario(rate, service, servers, duration)
    result = simulate(scenario, fidelity=fidelity, out=tmp_path / fidelity)
    t, low, high, weight = latencies(result.path)
    return t, low, high, weight, 0.1 * duration, duration


def _check_mean(t, low, high, weight, start, end, expected_s):
    mean, hw = batch_means(t, (low + high) / 2, start, end, weight)
    assert within(mean, hw, expected_s * 1000), (mean, hw, expected_s * 1000)


def _check_tail(t, low, high, weight, start, end, t_s, expected):
    above = share_above(low, high, t_s * 1000)
    p, hw = batch_means(t, above, start, end, weight)
    assert within(p, hw, expected), (t_s, p, hw, expected)


@pytest.mark.parametrize("fidelity", ["request", "flow"])
def test_mm1_mean_sojourn_and_tail(tmp_path, fidelity):
    lam, mean_ms = 300.0, 8 / 3  # rho = 0.8
    mu = 1000 / mean_ms
    t, low, high, w, start, end = _run(tmp_path, fidelity, lam,
                                       {"dist": "exponential", "mean": mean_ms}, 1)
    _check_mean(t, low, high, w, start, end, queueing.mm1_wq(lam, mu) + 1 / mu)
    for x in (0.005, 0.015, 0.03):
        _check_tail(t, low, high, w, start, end, x, float(queueing.mm1_sojourn_sf(x, lam, mu)))


@pytest.mark.parametrize("fidelity", ["request", "flow"])
def test_mmc_erlang_c(tmp_path, fidelity):
    lam, mean_ms, c = 400.0, 20.0, 10  # rho = 0.8
    mu = 1000 / mean_ms
    t, low, high, w, start, end = _run(tmp_path, fidelity, lam,
                                       {"dist": "exponential", "mean": mean_ms}, c)
    _check_mean(t, low, high, w, start, end, queueing.mmc_wq(lam, mu, c) + 1 / mu)
    for x in (0.02, 0.05, 0.1):
        _check_tail(t, low, high, w, start, end, x,
                    float(queueing.mmc_sojourn_sf(x, lam, mu, c)))


@pytest.mark.parametrize("fidelity", ["request", "flow"])
def test_mg1_pollaczek_khinchine(tmp_path, fidelity):
    lam, mean_ms, cv = 200.0, 3.0, 1.5  # rho = 0.6, lognormal service
    es = mean_ms / 1000
    t, low, high, w, start, end = _run(tmp_path, fidelity, lam,
                                       {"dist": "lognormal", "mean": mean_ms, "cv": cv}, 1)
    _check_mean(t, low, high, w, start, end,
                queueing.mg1_wq(lam, es, es * es * (1 + cv * cv)) + es)


@pytest.mark.parametrize("fidelity", ["request", "flow"])
def test_high_rate_pool_matches_erlang_c(tmp_path, fidelity):
    # 3,000 requests/s into one pod: past the flow engine's per-tick discrete window, so this
    # checks the windows-plus-fluid approximation too.
    lam, mean_ms, c = 3000.0, 20 / 7.5, 10  # rho = 0.8
    mu = 1000 / mean_ms
    if fidelity == "request":
        scenario = queue_scenario(lam, {"dist": "exponential", "mean": mean_ms}, c, 400.0)
        result = simulate(scenario, fidelity=fidelity, out=tmp_path / fidelity)
        t, low, high, w = latencies(result.path)
        start, end = 40.0, 400.0
    else:
        t, low, high, w, start, end = _run(tmp_path, fidelity, lam,
                                           {"dist": "exponential", "mean": mean_ms}, c)
    _check_mean(t, low, high, w, start, end, queueing.mmc_wq(lam, mu, c) + 1 / mu)
