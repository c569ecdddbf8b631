"""The verdict engine against numpy percentiles, on exact and histogram run directories."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import requests_frame, with_budgets
from reports.rundir import Run
from reports.verdict import evaluate, recovery_seconds
from scenarios import parse_threshold

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

samples = st.lists(st.floats(min_value=0.1, max_value=5000, allow_nan=False), min_size=1,
                   max_size=300)


def _one_budget(tiny, budget: str, *extra: dict):
    return with_budgets(tiny, {"fetch_odds": [budget, *extra]})


@given(values=samples, q=st.sampled_from([50, 90, 95, 99, 99.9]))
@SETTINGS
def test_percentile_budget_measures_numpy_percentile(make_run, tiny, values, q):
    scenario = _one_budget(tiny, f"p({q})<1000")
    t = np.linspace(0, 99, len(values))
    run = Run(make_run(requests_frame(t, values), scenario=scenario))
    verdict = evaluate(run.scenario, run.metrics(), run.events())
    (result,) = verdict.results
    expected = np.percentile(values, q)
    assert result.measured == pytest.approx(expected, rel=1e-12)
    assert result.verdict == ("pass" if expected < 1000 else "fail")


@given(values=samples, q=st.sampled_from([50, 95, 99]))
@SETTINGS
def test_histogram_run_within_one_percent(make_run, tiny, values, q):
    scenario = _one_budget(tiny, f"p({q})<1000")
    t = np.linspace(0, 99, len(values))
    run = Run(make_run(requests_frame(t, values), scenario=scenario, as_histogram=True))
    (result,) = evaluate(run.scenario, run.metrics()).results
    expected = np.percentile(values, q)
    assert abs(result.measured - expected) <= 0.01 * expected * (1 + 1e-9)


@given(oks=st.lists(st.booleans(), min_size=1, max_size=200))
@SETTINGS
def test_error_rate(make_run, tiny, oks):
    scenario = _one_budget(tiny, "error_rate<0.1")
    run = Run(make_run(requests_frame(np.arange(len(oks)) * 0.5, 10.0, ok=oks), scenario=scenario))
    (result,) = evaluate(run.scenario, run.metrics()).results
    rate = oks.count(False) / len(oks)
    assert result.measured == pytest.approx(rate)
    assert result.verdict == ("pass" if rate < 0.1 else "fail")


def test_window_phase_during_and_link_scopes(make_run, tiny):
    scenario = _one_budget(tiny, "max<100000",
                           {"pass": "p(50)<100", "window": [10, 20]},
                           {"pass": "p(50)<100", "phase": "hot"},
                           {"pass": "p(50)<100", "during": "zone-a-down"},
                           {"pass": "p(50)<100", "link": "devtools_fast_4g"})
    t = np.arange(0, 100, 0.25)
    latency = t.copy()  # latency equals start time: each scope's median is easy to compute
    link = np.where(t >= 80, "devtools_fast_4g", "wifi")
    frame = requests_frame(t, latency)
    frame["link"] = link
    run = Run(make_run(frame, scenario=scenario))
    results = evaluate(run.scenario, run.metrics()).results
    measured = [r.measured for r in results[1:]]
    assert measured == pytest.approx([np.median(t[(t >= 10) & (t < 20)]),
                                      np.median(t[t >= 50]),
                                      np.median(t[(t >= 40) & (t < 50)]),
                                      np.median(t[t >= 80])])
    assert [r.verdict for r in results[1:]] == ["pass", "pass", "pass", "pass"]
    assert results[2].scope == "phase hot"


def test_pass_warn_fail_levels():
    passing, warning = parse_threshold("p(95)<100"), parse_threshold("p(95)<150")
    from reports.verdict import level_of
    assert level_of(99, passing, warning) == "pass"
    assert level_of(120, passing, warning) == "warn"
    assert level_of(150, passing, warning) == "fail"
    assert level_of(None, passing, warning) == "fail"
    assert level_of(math.nan, passing, None) == "fail"


def test_no_requests_in_scope_fails(make_run, tiny):
    scenario = _one_budget(tiny, "p(95)<100")
    run = Run(make_run(requests_frame([1.0], 5.0, step="login"), scenario=scenario))
    (result,) = evaluate(run.scenario, run.metrics()).results
    assert result.verdict == "fail" and result.detail == "no requests in scope"


def test_recovery_seconds_rules():
    target = parse_threshold("p(99)<100")
    t = np.arange(50, 60, dtype=float)
    assert recovery_seconds(t, np.full(10, 50.0), target, 50) == 0.0
    values = np.array([500, 400, 300, np.nan, 90, 200, 90, 80, 70, 60], dtype=float)
    assert recovery_seconds(t, values, target, 50) == 6.0  # last breach at 55 -> back at 56
    values[-1] = 150
    assert recovery_seconds(t, values, target, 50) is None


@pytest.mark.parametrize("as_histogram", [False, True])
def test_recovery_time_on_constructed_run(make_run, tiny, as_histogram):
    # Zone a dies at 40 s and is back at 50 s; latencies stay high until 62 s, then drop.
    t = np.arange(0, 100, 0.1)
    latency = np.where((t >= 40) & (t < 62), 800.0, 20.0)
    run = Run(make_run(requests_frame(t, latency), as_histogram=as_histogram))
    verdict = evaluate(run.scenario, run.metrics(), run.events())
    recovery = next(r for r in verdict.results if r.budget.startswith("recovery_time"))
    # The 30 s sliding window ending at s holds only good requests once s - 30 >= 62: s = 92.
    assert recovery.measured == pytest.approx(92 - 50)
    assert recovery.verdict == "fail"  # budget is 20 s
    assert "zone-a-down: 42s" in recovery.detail


def test_recovery_never_back_is_a_failure(make_run, tiny):
    t = np.arange(0, 100, 0.1)
    latency = np.where(t >= 40, 800.0, 20.0)
    run = Run(make_run(requests_frame(t, latency)))
    recovery = next(r for r in evaluate(run.scenario, run.metrics()).results
                    if r.budget.startswith("recovery_time"))
    assert recovery.measured is None and recovery.verdict == "fail"
    assert "not back under p(99)<200" in recovery.detail


def test_dr_budgets_rto_and_lost_bets(make_run, tiny):
    scenario = with_budgets(tiny, {"dr": {"rto_s": 15, "lost_bets": 0}})
    t = np.arange(0, 100, 0.5)
    ok = ~((t >= 40) & (t < 52))  # writes fail from 40 s until 52 s
    frame = requests_frame(t, 30.0, step="place_bet", ok=ok)
    events = [{"t": 99, "kind": "reconciliation", "acknowledged_bets": 180,
               "persisted_bets": 180, "lost_bets": 0}]
    run = Run(make_run(frame, scenario=scenario, events=events))
    rto, lost = evaluate(run.scenario, run.metrics(), run.events()).results
    assert rto.measured == pytest.approx(52 + 0.030 - 40)
    assert rto.verdict == "pass"
    assert lost.measured == 0 and lost.verdict == "pass"
    events[0] = {**events[0], "persisted_bets": 178, "lost_bets": 2}
    run = Run(make_run(frame, scenario=scenario, events=events))
    assert evaluate(run.scenario, run.metrics(), run.events()).results[1].verdict == "fail"
    run = Run(make_run(frame, scenario=scenario, events=[]))
    missing = evaluate(run.scenario, run.metrics(), run.events()).results[1]
    assert missing.verdict == "fail" and "no reconciliation" in missing.detail


def test_summary_has_no_nan_and_overall_verdict(make_run, tiny):
    import json
    run = Run(make_run(requests_frame(np.arange(0, 100, 0.5), 20.0)))
    verdict = evaluate(run.scenario, run.metrics(), run.events())
    path = run.write_summary(verdict.to_summary(run.meta))
    summary = json.loads(path.read_text())
    assert summary["verdict"] == "fail"  # place_bet has no requests, so its budget fails
    assert summary["steps"]["fetch_odds"]["p99_ms"] == 20.0
    assert summary["counts"] == {"pass": 3, "warn": 0, "fail": 1}
