"""Baseline gates: criterion expressions, criteria files, and verdicts on constructed runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import requests_frame
from reports.baseline import (
    DEFAULT_CRITERIA, METRICS, baseline_verdict, compare_to_baseline, criteria_from_data,
    load_criteria, objective, parse_criterion,
)
from reports.rundir import Run
from scenarios import InputError

N = 1000
T = np.linspace(0, 99, N)
BASE_LATENCY = np.linspace(10, 200, N)


def frame(factor: float = 1.0, errors: int = 0, n: int = N, steps=("fetch_odds", "place_bet"),
          latency: np.ndarray | None = None) -> pd.DataFrame:
    """``n`` requests per step over the 100 s run, latencies ``BASE_LATENCY`` × ``factor``,
    the first ``errors`` of them failed."""
    lat = (np.linspace(10, 200, n) if latency is None else latency) * factor
    ok = np.arange(n) >= errors
    return pd.concat([requests_frame(np.linspace(0, 99, n), lat, step=s, ok=ok) for s in steps],
                     ignore_index=True)


def by_key(results):
    return {(r.step, r.budget.split()[0]): r for r in results}


# --- expressions -------------------------------------------------------------------------------

@pytest.mark.parametrize("metric,text,baseline,limit", [
    ("p99", "+10%", 120.0, 132.0),
    ("p99", "+50ms", 120.0, 170.0),
    ("p99", "+1s", 120.0, 1120.0),
    ("p95", "max(*1.3, +50ms)", 100.0, 150.0),   # +50 ms is looser for fast steps
    ("p95", "max(*1.3, +50ms)", 300.0, 390.0),   # ×1.3 is looser for slow ones
    ("p95", "max(×1.3, +50ms)", 300.0, 390.0),
    ("p95", "min(*1.3, +50ms)", 100.0, 130.0),
    ("p95", "min(+10%, max(+5ms, *1.2))", 100.0, 110.0),
    ("p99", "<=+10%", 120.0, 132.0),              # Keptn's spelling
    ("p99", "+0%", 120.0, 120.0),
    ("mean", "*1", 80.0, 80.0),
    ("error_rate", "+0.1pp", 0.002, 0.003),
    ("error_rate", "+50%", 0.002, 0.003),
    ("rps", "-10%", 50.0, 45.0),
    ("rps", ">=-10%", 50.0, 45.0),
    ("rps", "-5rps", 50.0, 45.0),
    ("rps", "*0.9", 50.0, 45.0),
    ("rps", "min(-10%, -20rps)", 50.0, 30.0),
])
def test_criterion_limits(metric, text, baseline, limit):
    assert parse_criterion(text, metric).limit(baseline) == pytest.approx(limit)


def test_criterion_direction_decides_pass():
    latency, throughput = parse_criterion("+10%", "p99"), parse_criterion("-10%", "rps")
    assert latency.holds(132.0, 120.0) and not latency.holds(132.1, 120.0)
    assert latency.holds(50.0, 120.0)  # faster is never a regression
    assert throughput.holds(45.0, 50.0) and not throughput.holds(44.9, 50.0)
    assert throughput.holds(500.0, 50.0)
    assert not latency.holds(math.nan, 120.0) and not latency.holds(100.0, math.nan)


@pytest.mark.parametrize("metric,text,needle", [
    ("p99", "-10%", "p99 is higher-is-worse, so a tolerance is written '+10%'"),
    ("rps", "+10%", "rps is lower-is-worse, so a tolerance is written '-10%'"),
    ("p99", "*0.9", "a factor is at least 1"),
    ("rps", "*1.1", "a factor is at most 1"),
    ("p99", "10%", "give the sign of the allowed change, e.g. '+10%'"),
    ("p99", "+0.1pp", "'pp' does not apply to p99"),
    ("error_rate", "+5ms", "'ms' does not apply to error_rate"),
    ("rps", "-5ms", "'ms' does not apply to rps"),
    ("p99", "max(*1.3, +50ms", "expected ',' or ')' in max(…)"),
    ("p99", "max()", "is not a baseline criterion for p99"),
    ("p99", "+10% +5ms", "unexpected '+5ms' after the criterion"),
    ("p99", ">=+10%", "compares with <=, not >="),
    ("rps", "-150%", "cannot fall by more than 100%"),
    ("p99", "*0", "a factor must be positive"),
    ("p99", "fast", "is not a baseline criterion for p99"),
    ("p42", "+10%", "unknown metric 'p42'"),
])
def test_bad_criteria_are_explained(metric, text, needle):
    with pytest.raises(ValueError) as info:
        parse_criterion(text, metric)
    assert needle in str(info.value)


def test_non_string_criterion():
    with pytest.raises(ValueError, match="expected a criterion expression"):
        parse_criterion(10, "p99")  # type: ignore[arg-type]


def test_default_criteria():
    objectives = {o.metric: o for o in DEFAULT_CRITERIA.for_step("any")}
    assert list(objectives) == ["p95", "p99", "error_rate", "rps"]
    assert (objectives["p99"].passing.text, objectives["p99"].warning.text) == ("+10%", "+25%")
    assert (objectives["p95"].passing.text, objectives["p95"].warning.text) == ("+10%", "+25%")
    assert objectives["error_rate"].passing.text == "+0.1pp"
    assert objectives["error_rate"].warning.text == "+0.5pp"
    assert (objectives["rps"].passing.text, objectives["rps"].warning.text) == ("-10%", "-20%")


# --- verdicts on run directories ---------------------------------------------------------------

@pytest.mark.parametrize("factor,level", [(1.0, "pass"), (1.08, "pass"), (1.2, "warn"),
                                          (1.5, "fail")])
def test_latency_regression_levels(make_run, factor, level):
    baseline = Run(make_run(frame()))
    run = Run(make_run(frame(factor)))
    results = by_key(compare_to_baseline(run, baseline))
    p99 = results[("fetch_odds", "p99")]
    expected = np.percentile(BASE_LATENCY * factor, 99)
    assert p99.verdict == level
    assert p99.measured == pytest.approx(expected)
    assert p99.budget == "p99 <= +10% of baseline" and p99.warn == "p99 <= +25% of baseline"
    assert p99.scope == "vs baseline" and p99.unit == "ms" and p99.samples == N
    base = np.percentile(BASE_LATENCY, 99)
    assert p99.detail.startswith(
        f"baseline {base:,.1f} ms -> {expected:,.1f} ms ({factor - 1:+.1%})")
    assert f"limit {base * 1.1:,.1f} ms, warn limit {base * 1.25:,.1f} ms" in p99.detail
    # Both steps got the same treatment, and every default objective was checked.
    assert results[("place_bet", "p99")].verdict == level
    assert {k[1] for k in results} == {"p95", "p99", "error_rate", "rps"}
    assert results[("fetch_odds", "rps")].verdict == "pass"
    assert results[("fetch_odds", "error_rate")].verdict == "pass"


@given(factor=st.floats(min_value=0.5, max_value=2.0),
       values=st.lists(st.floats(min_value=1, max_value=5000), min_size=5, max_size=200))
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_latency_level_follows_the_factor(make_run, factor, values):
    # Away from the boundaries, where float rounding of the quantiles would decide.
    assume(all(abs(factor - edge) > 1e-6 for edge in (1.1, 1.25)))
    lat = np.asarray(values)
    t = np.linspace(0, 99, len(lat))
    baseline = Run(make_run(requests_frame(t, lat)))
    run = Run(make_run(requests_frame(t, lat * factor)))
    p99 = by_key(compare_to_baseline(run, baseline))[("fetch_odds", "p99")]
    assert p99.verdict == ("pass" if factor < 1.1 else "warn" if factor < 1.25 else "fail")


def test_histogram_runs(make_run):
    baseline = Run(make_run(frame(), as_histogram=True))
    same = Run(make_run(frame(), as_histogram=True))
    slower = Run(make_run(frame(1.5), as_histogram=True))
    assert {r.verdict for r in compare_to_baseline(same, baseline)} == {"pass"}
    assert by_key(compare_to_baseline(slower, baseline))[("fetch_odds", "p99")].verdict == "fail"


@pytest.mark.parametrize("n,level", [(N, "pass"), (950, "pass"), (850, "warn"), (700, "fail")])
def test_throughput_drop(make_run, n, level):
    baseline = Run(make_run(frame()))
    run = Run(make_run(frame(n=n)))
    rps = by_key(compare_to_baseline(run, baseline))[("fetch_odds", "rps")]
    assert rps.verdict == level
    assert rps.measured == pytest.approx(n / 100)  # requests over the 100 s run
    assert rps.unit == "req/s" and rps.budget == "rps >= -10% of baseline"
    assert rps.detail.startswith(f"baseline 10.0 req/s -> {n / 100:.1f} req/s "
                                 f"({n / N - 1:+.1%})")


def test_throughput_rise_is_no_regression(make_run):
    baseline = Run(make_run(frame()))
    run = Run(make_run(frame(n=2 * N)))
    assert by_key(compare_to_baseline(run, baseline))[("fetch_odds", "rps")].verdict == "pass"


@pytest.mark.parametrize("errors,level", [(0, "pass"), (1, "pass"), (3, "warn"), (10, "fail")])
def test_error_rate_rise_in_percentage_points(make_run, errors, level):
    baseline = Run(make_run(frame()))  # no error at all
    run = Run(make_run(frame(errors=errors)))
    rate = by_key(compare_to_baseline(run, baseline))[("place_bet", "error_rate")]
    # 1 of 1000 is exactly +0.1pp: the limit is inclusive.
    assert rate.verdict == level
    assert rate.measured == pytest.approx(errors / N)
    assert rate.unit == "" and rate.budget == "error_rate <= +0.1pp of baseline"
    assert f"({errors / 10:+.2f}pp)" in rate.detail


def test_criteria_file_with_step_overrides(make_run, tmp_path):
    path = tmp_path / "criteria.yaml"
    path.write_text(
        "baseline:\n"
        "  p99: {pass: '+10%', warn: '+20%'}\n"
        "  p50: max(*1.1, +1000ms)\n"
        "  steps:\n"
        "    place_bet:\n"
        "      p99: {pass: '+50%'}\n"
        "      p50: null\n", encoding="utf-8")
    criteria = load_criteria(path)
    baseline = Run(make_run(frame()))
    run = Run(make_run(frame(1.3)))
    results = compare_to_baseline(run, baseline, criteria)
    got = {(r.step, r.budget): r.verdict for r in results}
    # The file's metrics replace the defaults: no p95, error_rate or rps check.
    assert got == {
        ("fetch_odds", "p50 <= max(*1.1, +1000ms) of baseline"): "pass",
        ("fetch_odds", "p99 <= +10% of baseline"): "fail",
        ("place_bet", "p99 <= +50% of baseline"): "pass",
    }
    assert next(r for r in results if r.step == "place_bet").warn is None


def test_criteria_from_data_matches_the_file_format():
    criteria = criteria_from_data({"baseline": {"rps": "-5%", "steps": {"x": {"rps": None}}}})
    assert [o.metric for o in criteria.for_step("y")] == ["rps"]
    assert criteria.for_step("x") == []
    with pytest.raises(InputError, match="baseline.rps: '\\+5%': rps is lower-is-worse"):
        criteria_from_data({"baseline": {"rps": "+5%"}})


@pytest.mark.parametrize("content,needles", [
    ("baseline:\n  p99: {pass: '-10%'}\n",
     ["criteria.yaml:2: baseline.p99.pass: '-10%': p99 is higher-is-worse"]),
    ("baseline:\n  p95: '+10%'\n  p99: -10%\n",
     ["criteria.yaml:3: baseline.p99: '-10%': p99 is higher-is-worse"]),
    ("baseline:\n  p42: '+1%'\n", ["criteria.yaml:2: baseline.p42: unknown metric"]),
    ("baseline:\n  p99: {warn: '+5%'}\n",
     ["criteria.yaml:2: baseline.p99.pass: required key is missing"]),
    ("baseline:\n  p99: {pass: '+5%', fail: '+9%'}\n",
     ["criteria.yaml:2: baseline.p99.fail: unknown key"]),
    ("baseline:\n  p99: 10\n", ["criteria.yaml:2: baseline.p99: expected a criterion"]),
    ("baseline:\n  p99: '+10%'\n  steps:\n    place_bet:\n      rps:\n        pass: '+5%'\n",
     ["criteria.yaml:6: baseline.steps.place_bet.rps.pass: '+5%': rps is lower-is-worse"]),
    ("baseline:\n  steps:\n    place_bet: '+5%'\n",
     ["criteria.yaml:3: baseline.steps.place_bet: must map metrics to criteria"]),
    ("baseline:\n  steps: [a]\n", ["criteria.yaml:2: baseline.steps: must map step names"]),
    ("baseline: 3\n", ["criteria.yaml:1: baseline: must be a mapping"]),
    ("baseline: {}\nbudgets: {}\n", ["criteria.yaml:2: budgets: unknown key"]),
    ("p99: '+10%'\n", ["criteria.yaml:1: baseline: a criteria file has a 'baseline:' mapping"]),
    ("baseline:\n  p99: [\n", ["criteria.yaml", "invalid YAML"]),
    ("baseline:\n  p99: '+1%'\n  p99: '+2%'\n", ["criteria.yaml:3: baseline.p99: duplicate key"]),
    # Every problem at once, in line order.
    ("baseline:\n  p42: '+1%'\n  rps: '+1%'\n  p99: {pass: 'max(*1.3'}\n",
     ["criteria.yaml:2: baseline.p42: unknown metric",
      "criteria.yaml:3: baseline.rps: '+1%'",
      "criteria.yaml:4: baseline.p99.pass: 'max(*1.3': expected ',' or ')'"]),
])
def test_bad_criteria_files_point_at_the_line(tmp_path, content, needles):
    path = tmp_path / "criteria.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_criteria(path)
    text = str(info.value)
    positions = [text.find(n) for n in needles]
    assert all(p >= 0 for p in positions), text
    assert positions == sorted(positions), text


def test_missing_criteria_file(tmp_path):
    with pytest.raises(InputError, match="nope.yaml: cannot read"):
        load_criteria(tmp_path / "nope.yaml")


def test_steps_in_only_one_run_fail(make_run):
    baseline = Run(make_run(frame(steps=("fetch_odds", "login"))))
    run = Run(make_run(frame(steps=("fetch_odds", "place_bet"))))
    criteria = criteria_from_data({"baseline": {"p99": "+10%",
                                                "steps": {"plcae_bet": {"p99": "+5%"}}}})
    results = {r.step: r for r in compare_to_baseline(run, baseline, criteria)}
    assert results["fetch_odds"].verdict == "pass"
    new, gone, typo = results["place_bet"], results["login"], results["plcae_bet"]
    assert (new.verdict, new.measured, new.samples) == ("fail", None, N)
    assert "not in the baseline run" in new.detail
    assert gone.verdict == "fail" and "no request in this run, 1,000 in the baseline" in gone.detail
    assert typo.verdict == "fail" and "in neither run" in typo.detail


def test_nan_metric_fails_with_detail(make_run):
    baseline = Run(make_run(frame()))
    run = Run(make_run(frame(latency=np.full(N, np.nan))))
    results = by_key(compare_to_baseline(run, baseline))
    p99 = results[("fetch_odds", "p99")]
    assert p99.verdict == "fail" and p99.measured is None
    assert p99.detail == "p99 has no value in this run"
    # Throughput and errors are still measurable, and unchanged.
    assert results[("fetch_odds", "rps")].verdict == "pass"


def test_verdict_exit_codes_and_notes(make_run):
    baseline_dir = make_run(frame())
    baseline = Run(baseline_dir)
    warned = baseline_verdict(Run(make_run(frame(1.2))), baseline)
    assert warned.overall == "warn" and warned.exit_code == 0
    assert f"baseline: {baseline_dir.name}" in warned.notes
    failed = baseline_verdict(Run(make_run(frame(1.5))), baseline)
    assert failed.overall == "fail" and failed.exit_code == 1
    assert set(failed.steps) == {"fetch_odds", "place_bet"}
    assert failed.steps["fetch_odds"].p99 == pytest.approx(np.percentile(BASE_LATENCY * 1.5, 99))
    passed = baseline_verdict(Run(make_run(frame())), baseline)
    assert passed.overall == "pass" and passed.exit_code == 0
    assert passed.notes == [f"baseline: {baseline_dir.name}"]  # nothing differs


def test_verdict_notes_incomparable_runs(make_run):
    baseline_dir = make_run(frame())
    meta = json.loads((baseline_dir / "meta.json").read_text())
    meta["load_scale"] = 0.5
    (baseline_dir / "meta.json").write_text(json.dumps(meta))
    verdict = baseline_verdict(Run(make_run(frame())), Run(baseline_dir))
    assert any(n.startswith("load_scale differs (this run: 1.0, the baseline: 0.5)")
               for n in verdict.notes), verdict.notes


def test_objective_levels_without_warn():
    o = objective("p99", "+10%")
    assert o.level(105.0, 100.0) == "pass" and o.level(111.0, 100.0) == "fail"
    assert o.level(math.nan, 100.0) == "fail"
    assert set(METRICS) == {"p50", "p95", "p99", "max", "mean", "error_rate", "rps"}
