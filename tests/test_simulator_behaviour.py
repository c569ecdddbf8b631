"""The simulator's behaviour: fidelities agree, requests are conserved, Little's law holds, a lost
zone hurts and the autoscaler heals it, runs are deterministic, and the outputs fit the contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.rundir import Run
from scenarios import load_scenario
from simlab import latencies, queue_scenario
from simulator.run import simulate

FIXTURES = Path(__file__).parent / "fixtures" / "scenarios"


@pytest.fixture(scope="module")
def step_load_runs(tmp_path_factory):
    """step-load.yaml simulated at both fidelities with the same seed."""
    scenario = load_scenario(FIXTURES / "step-load.yaml")
    root = tmp_path_factory.mktemp("step-load")
    return {f: simulate(scenario, fidelity=f, out=root / f) for f in ("request", "flow")}


def _scale_events(path: Path) -> list[dict]:
    return [e for e in Run(path).events() if e["kind"] == "scale"]


def test_request_and_flow_agree_on_p95_within_10_percent(step_load_runs):
    request, flow = (step_load_runs[f].verdict.steps for f in ("request", "flow"))
    assert set(request) == set(flow) == {"fetch_odds", "place_bet"}
    for step in request:
        assert flow[step].p95 == pytest.approx(request[step].p95, rel=0.10), step
        assert flow[step].count == pytest.approx(request[step].count, rel=0.01), step


def test_request_and_flow_make_the_same_scaling_decisions(step_load_runs):
    request = _scale_events(step_load_runs["request"].path)
    flow = _scale_events(step_load_runs["flow"].path)
    assert len(request) == len(flow) >= 4  # up at the step, down after the stabilisation window
    key = lambda e: (e["service"], e["zone"], e["current"], e["desired"])  # noqa: E731
    assert sorted(map(key, request)) == sorted(map(key, flow))
    period = load_scenario(FIXTURES / "step-load.yaml").autoscaling["odds"].sync_period_s
    for r in request:
        match = [f for f in flow if key(f) == key(r)]
        assert min(abs(f["t"] - r["t"]) for f in match) <= period
    ups = [e for e in request if e["desired"] > e["current"]]
    downs = [e for e in request if e["desired"] < e["current"]]
    assert ups and downs
    # Scale-down waits for the 300 s stabilisation window after the load drops at 900 s.
    assert min(e["t"] for e in downs) >= 900 + 300


@pytest.mark.parametrize("fidelity", ["request", "flow"])
def test_requests_are_conserved_through_a_zone_loss(tmp_path, fidelity):
    result = simulate(load_scenario(FIXTURES / "zone-loss.yaml"), fidelity=fidelity,
                      out=tmp_path / fidelity)
    meta = Run(result.path).meta
    assert meta["arrived"] == meta["completed"] + meta["failed"] + meta["in_flight"]
    assert meta["arrived"] > 400_000
    _, _, _, weight = latencies(result.path)
    assert weight.sum() == meta["completed"] + meta["failed"]


def test_littles_law_on_the_timeline(tmp_path):
    # L (time-average requests at the pool, from the timeline) = λ × W (from the requests).
    lam, mean_ms, c = 400.0, 20.0, 10
    result = simulate(queue_scenario(lam, {"dist": "exponential", "mean": mean_ms}, c, 600.0),
                      fidelity="request", out=tmp_path / "lab")
    timeline = Run(result.path).timeline()
    steady = timeline[timeline["t"] > 60]
    in_system = steady["queue.s.r-a"] + steady["utilisation.s.r-a"] * c
    t, low, _high, _w = latencies(result.path)
    late = t > 60
    arrivals_per_s = late.sum() / (600 - 60)
    assert in_system.mean() == pytest.approx(arrivals_per_s * low[late].mean() / 1000, rel=0.05)


@pytest.mark.parametrize("fidelity", ["request", "flow"])
def test_lost_zone_fails_its_budget_and_the_autoscaler_recovers(tmp_path, fidelity):
    result = simulate(load_scenario(FIXTURES / "zone-loss.yaml"), fidelity=fidelity,
                      out=tmp_path / fidelity)
    by_scope = {(r.budget, r.scope): r for r in result.verdict.results}
    assert by_scope[("p(99)<400", "during zone-c-lost")].verdict == "fail"
    ups = [e for e in _scale_events(result.path)
           if e["desired"] > e["current"] and 300 <= e["t"] <= 360]
    assert {e["zone"] for e in ups} == {"eu-a", "eu-b"}  # the survivors grow
    # Within a minute of the loss, the survivors' p99 is back under budget until zone c returns.
    times, p99 = Run(result.path).metrics().sliding_quantile("fetch_odds", 0.99, 30, 360, 700)
    assert np.nanmax(p99) < 400


@pytest.mark.parametrize("fidelity", ["request", "flow"])
def test_same_seed_same_run_other_seed_other_run(tmp_path, fidelity):
    scenario = queue_scenario(200.0, {"dist": "exponential", "mean": 3.0}, 2, 60.0)
    runs = [simulate(scenario, fidelity=fidelity, seed=s, out=tmp_path / f"{fidelity}-{i}")
            for i, s in enumerate((7, 7, 8))]
    summaries = [json.loads((r.path / "summary.json").read_text())["steps"] for r in runs]
    assert summaries[0] == summaries[1]
    assert summaries[0] != summaries[2]


def test_run_directory_holds_the_timeline_events_and_cost(step_load_runs):
    run = Run(step_load_runs["request"].path)
    timeline = run.timeline()
    assert len(timeline) == 1500 and timeline["t"].iloc[-1] == 1500
    for column in ("users", "rps", "errors", "rps.fetch_odds", "instances.odds.eu-a",
                   "utilisation.odds.eu-a", "queue.odds.eu-a", "cache_hit_ratio.odds_cache",
                   "chaos_active", "cost"):
        assert column in timeline.columns, column
    assert timeline["rps"].iloc[400] > 2.5 * timeline["rps"].iloc[100]  # the step at 300 s
    # Cost: every pod (6 services x 2 zones at 2 pods, more while scaled) at 0.107 USD/h.
    pods = timeline.filter(like="instances.").sum(axis=1)
    assert timeline["cost"].iloc[-1] == pytest.approx((pods * 0.107 / 3600).sum(), rel=1e-3)
    assert run.meta["fidelity"] == "request" and run.meta["mode"] == "sim"
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["steps"]["fetch_odds"]["count"] > 0 and summary["verdict"] in ("pass", "warn")
