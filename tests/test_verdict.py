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


@given(oks=st.lists(st.booleans(), min_size=1, max_size=200), as_histogram=st.booleans())
@SETTINGS
def test_error_rate(make_run, tiny, oks, as_histogram):
    scenario = _one_budget(tiny, "error_rate<0.1")
    run = Run(make_run(requests_frame(np.arange(len(oks)) * 0.5, 10.0, ok=oks), scenario=scenario,
                       as_histogram=as_histogram))
    (result,) = evaluate(run.scenario, run.metrics()).results
    rate = oks.count(False) / len(oks)
    assert result.measured == pytest.approx(rate)
    assert result.verdict == ("pass" if rate < 0.1 else "fail")


@pytest.mark.parametrize("as_histogram", [False, True])
def test_window_phase_during_and_link_scopes(make_run, tiny, as_histogram):
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
    run = Run(make_run(frame, scenario=scenario, as_histogram=as_histogram))
    results = evaluate(run.scenario, run.metrics()).results
    measured = [r.measured for r in results[1:]]
    assert measured == pytest.approx([np.median(t[(t >= 10) & (t < 20)]),
                                      np.median(t[t >= 50]),
                                      np.median(t[(t >= 40) & (t < 50)]),
                                      np.median(t[t >= 80])], rel=0.01 if as_histogram else 1e-12)
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
    # Windows start at the end of the outage (50 s); the one ending at s holds only good
    # requests once s - 30 >= 62: s = 92. A sliding p99 lags by its window.
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


@pytest.mark.parametrize("as_histogram", [False, True])
def test_dr_budgets_rto_and_lost_bets(make_run, tiny, as_histogram):
    scenario = with_budgets(tiny, {"dr": {"rto_s": 15, "lost_bets": 0}})
    t = np.arange(0, 100, 0.5)
    ok = ~((t >= 40) & (t < 52))  # writes fail from 40 s until 52 s
    frame = requests_frame(t, 30.0, step="place_bet", ok=ok)
    events = [{"t": 99, "kind": "reconciliation", "acknowledged_bets": 180,
               "persisted_bets": 180, "lost_bets": 0}]
    run = Run(make_run(frame, scenario=scenario, events=events, as_histogram=as_histogram))
    rto, lost = evaluate(run.scenario, run.metrics(), run.events()).results
    # Exact: the first write after the last failure (51.5 s) starts at 52 s and takes 30 ms.
    # Histogram: second resolution, a write that started in second 52 counts as done by 53.
    assert rto.measured == pytest.approx(53 - 40 if as_histogram else 52 + 0.030 - 40)
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


def test_recovery_windows_start_at_the_end_of_the_action(make_run, tiny):
    # Slow only while the zone is down: the windows after the outage hold no slow request.
    t = np.arange(0, 100, 0.1)
    latency = np.where((t >= 40) & (t < 50), 800.0, 20.0)
    run = Run(make_run(requests_frame(t, latency)))
    recovery = next(r for r in evaluate(run.scenario, run.metrics()).results
                    if r.budget.startswith("recovery_time"))
    assert recovery.measured == 0.0 and recovery.verdict == "pass"


@pytest.mark.parametrize("as_histogram", [False, True])
def test_recovery_without_requests_after_the_action_fails(make_run, tiny, as_histogram):
    t = np.arange(0, 40, 0.1)  # the service stopped answering (and recording) at 40 s
    run = Run(make_run(requests_frame(t, 20.0), as_histogram=as_histogram))
    recovery = next(r for r in evaluate(run.scenario, run.metrics()).results
                    if r.budget.startswith("recovery_time"))
    assert recovery.measured is None and recovery.verdict == "fail"
    assert "no request after it" in recovery.detail


def _with_chaos(tiny, chaos: list[dict], budgets: dict):
    from scenarios.model import Scenario

    data = tiny.to_yaml_data()
    data["chaos"] = chaos
    data["budgets"] = budgets
    return Scenario.model_validate(data)


@pytest.mark.parametrize("as_histogram", [False, True])
def test_recovery_horizon_stops_at_the_next_action(make_run, tiny, as_histogram):
    # Outage 1 at 20-30 s, outage 2 at 60-70 s; slow during 30-45 s and again from 60 s on.
    scenario = _with_chaos(tiny, [
        {"id": "one", "at": 20, "duration": 10, "action": "zone_outage", "zone": "eu-a"},
        {"id": "two", "at": 60, "duration": 10, "action": "zone_outage", "zone": "eu-b"},
    ], {"fetch_odds": ["p(99)<200", {"pass": "recovery_time<30s", "after": "one",
                                     "sliding_window_s": 5}]})
    t = np.arange(0, 100, 0.1)
    latency = np.where(((t >= 30) & (t < 45)) | (t >= 60), 800.0, 20.0)
    run = Run(make_run(requests_frame(t, latency), scenario=scenario, as_histogram=as_histogram))
    recovery = next(r for r in evaluate(run.scenario, run.metrics()).results
                    if r.budget.startswith("recovery_time"))
    # Back at 45 + 5 = 50 s, 20 s after the end; the second outage's slowness does not count.
    assert recovery.measured == pytest.approx(20.0)
    assert recovery.verdict == "pass"


def test_rto_after_a_db_failover_and_without_writes(make_run, tiny):
    scenario = _with_chaos(tiny, [
        {"id": "db", "at": 30, "duration": 20, "action": "db_failover", "database": "db"},
    ], {"dr": {"rto_s": 10}})
    t = np.arange(0, 100, 0.5)
    ok = ~((t >= 30) & (t < 38))
    run = Run(make_run(requests_frame(t, 10.0, step="place_bet", ok=ok), scenario=scenario))
    (rto,) = evaluate(run.scenario, run.metrics()).results
    assert rto.measured == pytest.approx(38.010 - 30) and rto.verdict == "pass"
    run = Run(make_run(requests_frame(np.arange(0, 30, 0.5), 10.0, step="place_bet"),
                       scenario=scenario))
    (rto,) = evaluate(run.scenario, run.metrics()).results
    assert rto.measured is None and rto.verdict == "fail"  # no write after the failover


def test_lost_bets_reads_the_last_reconciliation(make_run, tiny):
    scenario = with_budgets(tiny, {"dr": {"lost_bets": 0}})
    events = [{"t": 50, "kind": "reconciliation", "acknowledged_bets": 10, "persisted_bets": 8},
              {"t": 99, "kind": "reconciliation", "acknowledged_bets": 20,
               "persisted_bets": 20, "lost_bets": 0}]
    run = Run(make_run(requests_frame([1.0], 5.0), scenario=scenario, events=events))
    (lost,) = evaluate(run.scenario, run.metrics(), run.events()).results
    assert lost.verdict == "pass"
    run = Run(make_run(requests_frame([1.0], 5.0), scenario=scenario, events=events[:1]))
    (lost,) = evaluate(run.scenario, run.metrics(), run.events()).results
    assert lost.measured == 2 and lost.verdict == "fail"  # acknowledged - persisted


def test_histogram_sliding_window_excludes_the_current_second(make_run, tiny):
    t = np.arange(0, 100, 0.1)
    latency = np.where((t >= 70) & (t < 71), 900.0, 10.0)
    run = Run(make_run(requests_frame(t, latency), as_histogram=True))
    times, values = run.metrics().sliding_quantile("fetch_odds", 1.0, 5, 60, 80)
    by_time = dict(zip(times, values))
    assert by_time[70] < 20 and by_time[71] > 800 and by_time[75] > 800 and by_time[76] < 20
