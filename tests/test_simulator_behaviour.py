"""The simulator's behaviour: fidelities agree, requests are conserved, Little's law holds, a lost
zone hurts and the autoscaler heals it, runs are deterministic, and the outputs fit the contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.rundir import Run
from scenarios import Scenario, load_scenario
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
    assert run.meta["cost"]["on_demand"] == pytest.approx(timeline["cost_on_demand"].iloc[-1],
                                                          abs=0.01)
    assert run.meta["fidelity"] == "request" and run.meta["mode"] == "sim"
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["steps"]["fetch_odds"]["count"] > 0 and summary["verdict"] in ("pass", "warn")


@pytest.mark.parametrize("name", sorted(__import__("scenarios").catalogue()))
def test_every_catalogue_scenario_simulates_into_a_gateable_run(tmp_path, name):
    from typer.testing import CliRunner

    from matchday.cli import app

    scenario = load_scenario(__import__("scenarios").find_scenario(name))
    result = simulate(scenario, fidelity="flow", compress=30, load_scale=0.05,
                      out=tmp_path / name)
    meta = Run(result.path).meta
    assert meta["compress"] == 30 and meta["load_scale"] == 0.05
    assert meta["arrived"] > 0
    gated = CliRunner().invoke(app, ["gate", str(result.path)])
    assert gated.exit_code in (0, 1), gated.output  # judged, not refused
    assert gated.exit_code == result.verdict.exit_code


def test_auto_fidelity_simulates_small_days_per_request_and_big_ones_as_flows():
    from simulator.run import REQUEST_FIDELITY_LIMIT, choose_fidelity

    small = queue_scenario(100.0, {"dist": "exponential", "mean": 1.0}, 1, 600.0)
    big = load_scenario(__import__("scenarios").find_scenario("cup-final-zone-loss"))
    assert choose_fidelity(small, "auto")[0] == "request"
    fidelity, why = choose_fidelity(big, "auto")
    assert fidelity == "flow" and f"{REQUEST_FIDELITY_LIMIT:,}" in why
    assert choose_fidelity(big, "request")[0] == "request"  # an explicit choice is kept


def test_flow_engine_gives_the_same_run_without_the_jit(tmp_path, monkeypatch):
    from simulator import kernel

    if not kernel.NUMBA_AVAILABLE:
        pytest.skip("numba is not installed: only the pure-Python path exists here")
    # Two workers: both backends then run the same loop, bit for bit (a single worker would
    # take the vectorised Lindley path in Python, equal only to within rounding).
    scenario = queue_scenario(600.0, {"dist": "exponential", "mean": 2.5}, 2, 120.0)
    compiled = simulate(scenario, fidelity="flow", out=tmp_path / "numba")
    monkeypatch.setattr(kernel, "BACKEND", "python")
    interpreted = simulate(scenario, fidelity="flow", out=tmp_path / "python")
    a = pd.read_parquet(compiled.path / "requests_hist.parquet")
    b = pd.read_parquet(interpreted.path / "requests_hist.parquet")
    pd.testing.assert_frame_equal(a, b)


def _step_load_with(**changes) -> Scenario:

    data = load_scenario(FIXTURES / "step-load.yaml").to_yaml_data()
    data.update(changes)
    return Scenario.model_validate(data)


def test_scheduled_scaling_raises_the_floor_at_the_next_sync(tmp_path):
    base = load_scenario(FIXTURES / "step-load.yaml").to_yaml_data()
    autoscaling = base["autoscaling"]
    autoscaling["gateway"]["schedule"] = [{"at": 100, "min": 5}, {"at": 200, "min": 2}]
    scenario = _step_load_with(autoscaling=autoscaling)
    result = simulate(scenario, fidelity="flow", out=tmp_path / "run")
    ups = [e for e in _scale_events(result.path)
           if e["service"] == "gateway" and e["desired"] == 5]
    assert {e["zone"] for e in ups} == {"eu-a", "eu-b"}
    assert all(100 <= e["t"] <= 115 for e in ups)  # at the first 15 s sync after the floor rises


@pytest.mark.parametrize("fidelity", ["request", "flow"])
def test_db_failover_rto_is_the_promotion_time(tmp_path, fidelity):
    scenario = _step_load_with(
        chaos=[{"id": "primary-lost", "at": 200, "duration": 100, "action": "db_failover",
                "database": "main"}],
        budgets={"place_bet": ["p(95)<1000"], "dr": {"rto_s": 45, "lost_bets": 0}})
    result = simulate(scenario, fidelity=fidelity, out=tmp_path / fidelity)
    rto = next(r for r in result.verdict.results if r.budget.startswith("rto"))
    failover = scenario.topology.databases["main"].failover_s  # 30 s in this topology
    assert failover <= rto.measured <= failover + 2
    assert rto.verdict == "pass"
    lost = next(r for r in result.verdict.results if r.budget.startswith("lost_bets"))
    assert lost.measured == 0  # synchronous replication: nothing acknowledged is lost
    events = [e["kind"] for e in Run(result.path).events()]
    assert "db_primary_lost" in events and "db_promoted" in events


def test_cache_loss_sends_a_miss_storm_to_the_database_then_warms_up(tmp_path):
    scenario = _step_load_with(chaos=[{"id": "flush", "at": 400, "duration": 60,
                                       "action": "cache_loss", "cache": "odds_cache"}])
    result = simulate(scenario, fidelity="request", out=tmp_path / "run")
    timeline = Run(result.path).timeline().set_index("t")
    hit = timeline["cache_hit_ratio.odds_cache"]
    assert hit[399] == pytest.approx(0.9) and hit[430] == 0.0
    assert 0.5 < hit[461] < 0.9 and hit[470] == pytest.approx(0.9, abs=0.01)  # ttl 1 s refill
    rows = pd.read_parquet(result.path / "requests.parquet")
    odds = rows[rows["step"] == "fetch_odds"]
    during = odds[(odds["t"] >= 400) & (odds["t"] < 460)]["latency_ms"].mean()
    before = odds[(odds["t"] >= 340) & (odds["t"] < 400)]["latency_ms"].mean()
    assert during > before  # every lookup now goes on to the database


def test_flow_builds_and_drains_an_overload_backlog_like_request(tmp_path):
    from simlab import chain_scenario

    # 30 s at 1.25x capacity, then 0.5x: the queue grows ~0.25 s of work per second, then drains.
    mu = 1000 / 2.5  # one worker, 2.5 ms per request
    wave = [{"at": 0, "users": 0.4}, {"at": 60, "users": 1.0, "shape": "step"},
            {"at": 90, "users": 0.4, "shape": "step"}]
    scenario = chain_scenario(1.25 * mu, [("s", 1, {"dist": "exponential", "mean": 2.5})],
                              180.0, wave=wave)
    p95 = {}
    for fidelity in ("request", "flow"):
        run = Run(simulate(scenario, fidelity=fidelity, seed=4, out=tmp_path / fidelity).path)
        times, values = run.metrics().sliding_quantile("work", 0.95, 5, 60, 150)
        p95[fidelity] = dict(zip(times, values))
    # At the end of the overload the backlog is ~30 s x 0.25 = 7.5 s of work.
    assert 5000 < p95["request"][90] < 10000
    for t in (75, 80, 85, 90, 95, 100):
        assert p95["flow"][t] == pytest.approx(p95["request"][t], rel=0.15), t
    # Drained ~15 s after the overload (7.5 s of work at a net 0.5 s per second), in both.
    assert p95["request"][120] < 100 and p95["flow"][120] < 100


def _ci_smoke_with(chaos: list[dict], budgets: dict | None = None):
    from scenarios import find_scenario
    from scenarios.model import Scenario

    data = load_scenario(find_scenario("ci-smoke")).to_yaml_data()
    data["chaos"], data["budgets"] = chaos, budgets or {}
    return Scenario.model_validate(data)


def test_chaos_runs_are_deterministic_per_request(tmp_path):
    # A zone dying kills in-flight jobs: the order they fail in must not depend on memory.
    scenario = load_scenario(FIXTURES / "zone-loss.yaml")
    runs = [simulate(scenario, fidelity="request", out=tmp_path / str(i)) for i in range(2)]
    a, b = (pd.read_parquet(r.path / "requests.parquet") for r in runs)
    pd.testing.assert_frame_equal(a, b)
    assert (a["error"] == "zone_lost").any() or (a["latency_ms"] > 2000).any()


@pytest.mark.parametrize("fidelity", ["request", "flow"])
def test_region_failover_and_failback_leave_no_gap(tmp_path, fidelity):
    scenario = _ci_smoke_with(
        [{"id": "evacuate", "at": 200, "duration": 200, "action": "region_failover",
          "from": "eu-west", "to": "eu-central"}], {"dr": {"rto_s": 60, "lost_bets": 0}})
    result = simulate(scenario, fidelity=fidelity, out=tmp_path / fidelity)
    timeline = Run(result.path).timeline().set_index("t")
    # Failing back: the standby keeps serving until eu-west is ready again, so nothing fails.
    assert timeline.loc[400:420, "errors"].sum() == 0
    rto = next(r for r in result.verdict.results if r.budget.startswith("rto"))
    failover = scenario.topology.databases["main"].failover_s
    assert failover <= rto.measured <= failover + 3  # writes wait for the promoted standby
    assert timeline.loc[250, "instances.odds.eu-central-a"] >= 1


@pytest.mark.parametrize("fidelity", ["request", "flow"])
def test_rolling_deploy_surges_and_drops_nothing(tmp_path, fidelity):
    scenario = _ci_smoke_with([{"id": "release", "at": 200, "duration": 60,
                                "action": "rolling_deploy", "service": "kyc"}])
    result = simulate(scenario, fidelity=fidelity, out=tmp_path / fidelity)
    assert Run(result.path).meta["failed"] == 0
    timeline = Run(result.path).timeline().set_index("t")
    ready = timeline.loc[195:265, [c for c in timeline.columns if c.startswith("ready.kyc.")]]
    assert (ready >= 1).all().all()  # never a moment without a ready kyc pod in a zone
    started = [e for e in Run(result.path).events() if e["kind"] == "chaos_start"]
    assert started and started[0]["id"] == "release"


def test_asynchronous_replication_loses_the_lag_window_at_flow_fidelity(tmp_path):
    base = load_scenario(FIXTURES / "step-load.yaml").to_yaml_data()
    base["topology"]["databases"]["main"].update(replication="async", replication_lag_ms=2000)
    base["chaos"] = [{"id": "primary-lost", "at": 200, "duration": 60, "action": "db_failover",
                      "database": "main"}]
    base["budgets"] = {"dr": {"lost_bets": 0}}
    from scenarios.model import Scenario

    result = simulate(Scenario.model_validate(base), fidelity="flow", out=tmp_path / "run")
    lost = next(r for r in result.verdict.results if r.budget.startswith("lost_bets"))
    # ~900 users at 1 bet per 6 s cycle = 150 bets/s, a 2 s lag: about 300 acknowledged bets.
    assert 200 < lost.measured < 400 and lost.verdict == "fail"


def test_healed_partition_pods_are_not_read_as_idle(tmp_path):
    data = load_scenario(FIXTURES / "zone-loss.yaml").to_yaml_data()
    data["chaos"][0]["mode"] = "network"
    data["autoscaling"]["odds"]["min"] = 1
    from scenarios.model import Scenario

    result = simulate(Scenario.model_validate(data), fidelity="request", out=tmp_path / "run")
    downs = [e for e in _scale_events(result.path)
             if e["zone"] == "eu-c" and e["desired"] < e["current"] and 700 <= e["t"] <= 730]
    # Right after the partition heals its pods have no utilisation history: their metric is
    # missing (not 0 %), so the autoscaler must not scale the zone down on it.
    assert downs == []
    pods = [e["pods"] for e in _scale_events(result.path) if e["zone"] == "eu-c"]
    assert all(p["ready"] + p["unready"] + p["missing"] + p["ignored"] >= 1 for p in pods)


def test_littles_law_through_a_zone_loss(tmp_path):
    # L = λW over a day with chaos: requests in the system (counted by the engine every second)
    # against arrivals × mean time in the system (from the requests, retries and timeouts
    # included). No network delay, so a request's latency is all time in the system.
    from simlab import chain_scenario

    scenario = chain_scenario(
        600.0, [("s", 4, {"dist": "exponential", "mean": 4.0})], 600.0, zones=("a", "b", "c"),
        chaos=[{"id": "lost", "at": 200, "duration": 120, "action": "zone_outage",
                "zone": "r-b"}])
    result = simulate(scenario, fidelity="request", out=tmp_path / "run")
    timeline = Run(result.path).timeline()
    t, latency, _high, _w = latencies(result.path)
    assert (latency > 2000).sum() > 100  # the loss cost attempt timeouts and retries
    inside = (t >= 20) & (t < 580)
    little = inside.sum() / 560 * latency[inside].mean() / 1000
    measured = timeline[(timeline["t"] > 20) & (timeline["t"] <= 580)]["in_flight"].mean()
    assert measured == pytest.approx(little, rel=0.05)


def test_overlapping_chaos_keeps_a_zone_down_until_its_last_fault_ends(tmp_path):
    scenario = _ci_smoke_with([
        {"id": "b-dies", "at": 150, "duration": 250, "action": "zone_outage", "zone": "eu-west-b"},
        {"id": "evacuate", "at": 200, "duration": 100, "action": "region_failover",
         "from": "eu-west", "to": "eu-central"}])
    result = simulate(scenario, fidelity="flow", out=tmp_path / "run")
    timeline = Run(result.path).timeline().set_index("t")
    assert timeline.loc[310:399, "ready.odds.eu-west-b"].max() == 0  # its own outage lasts to 400
    assert timeline.loc[320, "ready.odds.eu-west-a"] >= 1  # the rest of eu-west is back
    assert timeline.loc[430, "ready.odds.eu-west-b"] >= 1
    assert timeline.loc[305:399, "errors"].sum() == 0  # fail-back did not wait for eu-west-b
