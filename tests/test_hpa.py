"""Golden cases for the HPA decision logic (simulator/hpa.py), one per rule, plus properties.

Every expected number is computed by hand in the comment next to it, the way the Kubernetes
controller computes it (cpu utilisation as an integer percent, other metrics as integer
milli-values, ``ceil(ratio × pods)``).
"""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.autoscaling import ScalingPolicy, ScalingRule, ScheduledScale
from simulator.hpa import Autoscaler, PodSample, group_pods

LONG_AGO = -10_000.0  # pods started and ready long before t=0: past every initialisation period


def make_rule(**overrides: object) -> ScalingRule:
    fields: dict[str, object] = {"metric": "cpu", "target": 0.6, "min": 1, "max": 40}
    fields.update(overrides)
    return ScalingRule(**fields)


def ready(metric: float | None, n: int = 1) -> list[PodSample]:
    return [PodSample(LONG_AGO, LONG_AGO + 5, metric) for _ in range(n)]


def starting(n: int = 1) -> list[PodSample]:
    return [PodSample(0.0, None, None) for _ in range(n)]


NO_DOWN_WINDOW = ScalingPolicy(stabilization_s=0, max_percent=100)


# --------------------------------------------------------------------------- replica calculator


def test_scale_up_is_ceil_of_ratio_times_pods() -> None:
    # 4 pods at 90 % cpu, target 60 %: ratio 90/60 = 1.5 -> ceil(1.5 × 4) = 6.
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 4, ready(0.9, 4))
    assert (d.recommendation, d.desired, d.ratio) == (6, 6, 1.5)
    assert d.reason == "cpu above target"


def test_within_tolerance_keeps_current() -> None:
    # 63/60 = 1.05: |1.05 - 1| <= 0.1 -> no change.
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 4, ready(0.63, 4))
    assert (d.recommendation, d.desired, d.ratio, d.reason) == (4, 4, 1.05, "within tolerance")
    # 54/60 = 0.9 is on the edge and still inside (1 - 0.9 = 0.0999... <= 0.1 in float64, as in Go).
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 4, ready(0.54, 4))
    assert (d.desired, d.reason) == (4, "within tolerance")


def test_unready_pods_count_as_zero_on_scale_up() -> None:
    # 3 ready at 120 %: raw ratio 2.0; with an unready pod on a scale-up, it counts as 0:
    # (3 × 1200m + 0) / 4000m = 90 % -> 1.5 -> ceil(1.5 × 4) = 6.
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 4, ready(1.2, 3) + starting(1))
    assert (d.raw_ratio, d.ratio, d.recommendation, d.desired) == (2.0, 1.5, 6, 6)
    assert (d.pods_ready, d.pods_unready) == (3, 1)


def test_unready_substitution_that_flips_direction_keeps_current() -> None:
    # Just scaled to 6: 3 ready at 80 % (ratio 80/60 = 1.33, scale up) + 3 starting as 0:
    # 2400m / 6000m = 40 % -> 0.667, now below 1 -> direction flipped -> keep 6
    # (ignoring the starting pods would have recommended ceil(1.33 × 3) = 4).
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 6, ready(0.8, 3) + starting(3))
    assert (d.recommendation, d.desired) == (6, 6)
    assert d.reason == "direction flipped after substitution"


def test_missing_cpu_pod_counts_as_full_request_on_scale_down() -> None:
    # 5 pods at 20 % + 1 without a sample; ratio 20/60 = 0.33 (scale-down), so the missing pod
    # counts as 100 % of its request (k8s: max(100 %, target) of the request):
    # (5 × 200m + 1000m) / 6000m = 33 % -> 0.55 -> ceil(0.55 × 6) = ceil(3.3) = 4
    # (without it: ceil(0.33 × 5) = 2).
    rule = make_rule(scale_down=NO_DOWN_WINDOW)
    d = Autoscaler(rule, "bets", "a").decide(0.0, 6, ready(0.2, 5) + ready(None))
    assert (d.ratio, d.recommendation, d.desired) == (0.55, 4, 4)
    assert (d.pods_ready, d.pods_missing) == (5, 1)
    assert d.reason == "all metrics below target"


def test_missing_plain_metric_counts_as_target_on_scale_down() -> None:
    # rps target 100: 3 pods at 50 + 1 missing as 100 -> 250/4 = 62.5 -> 0.625 -> ceil(2.5) = 3.
    rule = make_rule(metric="rps", target=100, scale_down=NO_DOWN_WINDOW)
    d = Autoscaler(rule, "odds", "a").decide(0.0, 4, ready(50, 3) + ready(None))
    assert (d.raw_ratio, d.ratio, d.recommendation, d.desired) == (0.5, 0.625, 3, 3)


def test_missing_pod_counts_as_zero_on_scale_up() -> None:
    # rps target 100: 3 at 200 (ratio 2) + 1 missing as 0 -> 600/4 = 150 -> 1.5 -> ceil(6.0) = 6.
    rule = make_rule(metric="rps", target=100)
    d = Autoscaler(rule, "odds", "a").decide(0.0, 4, ready(200, 3) + ready(None))
    assert (d.ratio, d.recommendation, d.desired) == (1.5, 6, 6)


def test_substitution_into_tolerance_keeps_current() -> None:
    # 3 at 50 % (50/60 = 0.83, scale-down) + 1 missing as 100 %: 2500m/4000m = 62 % -> 1.033.
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 4, ready(0.5, 3) + ready(None))
    assert (d.desired, d.reason) == (4, "within tolerance after substitution")


def test_missing_substitution_that_flips_direction_keeps_current() -> None:
    # 2 at 40 % (0.667, scale-down) + 2 missing as 100 %: 2800m/4000m = 70 % -> 1.167 > 1.
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 4, ready(0.4, 2) + ready(None, 2))
    assert (d.desired, d.reason) == (4, "direction flipped after substitution")


def test_replica_count_against_the_ratio_keeps_current() -> None:
    # 10 replicas but 4 pods: 3 at 200 rps + 1 missing as 0 -> ratio 1.5 (scale up), yet
    # ceil(1.5 × 4) = 6 < 10 would scale down -> keep 10.
    rule = make_rule(metric="rps", target=100)
    d = Autoscaler(rule, "odds", "a").decide(0.0, 10, ready(200, 3) + ready(None))
    assert (d.desired, d.reason) == (10, "pod count would reverse the direction")


def test_cpu_initialisation_period_and_metric_window() -> None:
    now = 1000.0
    young_fresh = PodSample(900.0, 990.0, 3.0)  # in its cpu-init period, Ready 10 s < one window
    young_settled = PodSample(900.0, 980.0, 0.9)  # in its init period, Ready 20 s >= 15 s window
    young_edge = PodSample(900.0, 985.0, 0.9)  # Ready exactly one window ago: counted
    old_fresh = PodSample(0.0, 995.0, 0.9)  # started 1000 s ago (> 300 s): counted at once
    pods = [young_fresh, young_settled, young_edge, old_fresh]
    cpu = group_pods(pods, now, make_rule())
    assert (cpu.ready, cpu.unready) == (3, 1)
    # Only cpu has the initialisation rule: for rps the fresh pod's sample counts.
    rps = group_pods(pods, now, make_rule(metric="rps", target=100))
    assert (rps.ready, rps.unready) == (4, 0)
    # The ignored start-up burst does not drive scaling: 3 × 90 % -> 1.5; one unready pod on a
    # scale-up counts as 0: 2700m / 4000m = 67 % -> 1.1167 -> ceil(4.47) = 5 (not 160 % -> 11).
    d = Autoscaler(make_rule(), "bets", "a").decide(now, 4, pods)
    assert (d.ratio, d.recommendation) == (67 / 60, 5)


def test_not_ready_pods_are_unready_for_every_metric() -> None:
    pods = [PodSample(0.0, None, 5.0), PodSample(0.0, 20.0, 5.0)]  # ready_at in the future too
    for rule in (make_rule(), make_rule(metric="latency", target=200)):
        groups = group_pods(pods, 10.0, rule)
        assert (groups.ready, groups.unready, groups.missing) == (0, 2, 0)


def test_terminating_pods_are_ignored_entirely() -> None:
    # 4 pods at 90 % + 2 terminating idle ones: neither counted nor substituted -> 6.
    pods = ready(0.9, 4) + [PodSample(LONG_AGO, LONG_AGO, 0.0, terminating=True)] * 2
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 4, pods)
    assert (d.recommendation, d.desired, d.pods_ignored) == (6, 6, 2)


def test_negative_metric_is_rejected() -> None:
    with pytest.raises(ValueError):
        Autoscaler(make_rule(), "bets", "a").decide(0.0, 1, ready(-0.1))


# --------------------------------------------------------------------------- behaviour


def test_scale_up_rate_limit_is_max_of_pods_and_percent_per_period() -> None:
    rule = make_rule(metric="rps", target=100)
    hpa = Autoscaler(rule, "odds", "a")
    # 2 pods at 1500 rps: ratio 15 -> 30 recommended; allowed max(2 + 4, ceil(2 × 2)) = 6.
    d = hpa.decide(0.0, 2, ready(1500, 2))
    assert (d.recommendation, d.desired) == (30, 6)
    assert d.reason == "scale-up limited to max(+4, +100%)"
    # 5 s later, same period: the period started at 6 - 4 = 2 replicas -> still at most 6.
    # (4 new pods starting count as 0: 3000/6 = 500 rps -> ratio 5 -> ceil(30).)
    d = hpa.decide(5.0, 6, ready(1500, 2) + starting(4))
    assert (d.recommendation, d.desired) == (30, 6)
    assert d.reason == "scale-up limited to max(+4, +100%)"
    # One period (15 s) after the event it no longer counts: max(6 + 4, 12) = 12.
    d = hpa.decide(15.0, 6, ready(1500, 2) + starting(4))
    assert d.desired == 12


def test_scale_up_percent_only_policy() -> None:
    # Unset max_pods does not apply: 3 -> ceil(3 × 1.5) = 5 (rounded up, as k8s does).
    rule = make_rule(scale_up=ScalingPolicy(stabilization_s=0, max_percent=50))
    d = Autoscaler(rule, "bets", "a").decide(0.0, 3, ready(1.8, 3))
    assert (d.recommendation, d.desired, d.reason) == (9, 5, "scale-up limited to +50%")


def test_scale_down_rate_limit_uses_period_history() -> None:
    down = ScalingPolicy(stabilization_s=0, max_percent=50, period_s=60)
    hpa = Autoscaler(make_rule(scale_down=down), "bets", "a")
    # 10 pods at 12 %: 0.2 -> ceil(2.0) = 2; allowed int(10 × 0.5) = 5.
    d = hpa.decide(0.0, 10, ready(0.12, 10))
    assert (d.recommendation, d.desired, d.reason) == (2, 5, "scale-down limited to -50%")
    # 15 s later the 60 s period started at 5 + 5 = 10 -> floor of the limit stays 5.
    # 5 pods at 12 %: 0.2 -> ceil(1.0) = 1.
    d = hpa.decide(15.0, 5, ready(0.12, 5))
    assert (d.recommendation, d.desired, d.reason) == (1, 5, "scale-down limited to -50%")
    # At 60 s the event at 0 is out of the period: int(5 × 0.5) = 2.
    d = hpa.decide(60.0, 5, ready(0.12, 5))
    assert (d.desired, d.reason) == (2, "scale-down limited to -50%")


def test_scale_down_stabilisation_keeps_max_of_window_then_drops() -> None:
    hpa = Autoscaler(make_rule(), "bets", "a")
    # t=0: 8 pods at 75 % -> 1.25 -> 10 (seeded window: 8; scale-up has no window).
    assert hpa.decide(0.0, 8, ready(0.75, 8)).desired == 10
    # Load falls: 10 pods at 12 % -> 0.2 -> 2, but the window (t-300, t] holds 10 from t=0.
    for t in range(15, 300, 15):
        pods = ready(0.36, 10) if t == 150 else ready(0.12, 10)  # t=150: 0.6 -> recommends 6
        d = hpa.decide(float(t), 10, pods)
        assert d.desired == 10, t
        assert d.reason == "scale-down stabilised (max of last 300s)"
    # t=300: the t=0 samples are out; the highest left is 6 (from t=150).
    d = hpa.decide(300.0, 10, ready(0.12, 10))
    assert (d.recommendation, d.stabilized, d.desired) == (2, 6, 6)
    # 6 pods at 20 %: 0.333 -> 2; still 6 in the window until t=150 drops out at t=450.
    for t in range(315, 450, 15):
        assert hpa.decide(float(t), 6, ready(0.2, 6)).desired == 6, t
    d = hpa.decide(450.0, 6, ready(0.2, 6))
    assert (d.desired, d.reason) == (2, "all metrics below target")


def test_fresh_autoscaler_does_not_scale_down_within_first_window() -> None:
    # recordInitialRecommendation seeds the window with the current count.
    hpa = Autoscaler(make_rule(), "bets", "a")
    assert hpa.decide(100.0, 10, ready(0.12, 10)).desired == 10
    assert hpa.decide(399.0, 10, ready(0.12, 10)).desired == 10
    assert hpa.decide(400.0, 10, ready(0.12, 10)).desired == 2


def test_scale_up_stabilisation_takes_min_of_window() -> None:
    rule = make_rule(scale_up=ScalingPolicy(stabilization_s=60, max_pods=4, max_percent=100))
    hpa = Autoscaler(rule, "bets", "a")
    # Seeded with 4 at t=0: any scale-up waits until every recommendation of the last 60 s agrees.
    d = hpa.decide(0.0, 4, ready(0.9, 4))
    assert (d.recommendation, d.desired) == (6, 4)
    assert d.reason == "scale-up stabilised (min of last 60s)"
    for t in (15.0, 30.0, 45.0):
        assert hpa.decide(t, 4, ready(0.9, 4)).desired == 4
    assert hpa.decide(60.0, 4, ready(0.9, 4)).desired == 6


# --------------------------------------------------------------------------- bounds and schedule


def test_scheduled_floor_raises_min_and_holds_it() -> None:
    rule = make_rule(min=2, schedule=[ScheduledScale(at=3600, min=12)])
    hpa = Autoscaler(rule, "bets", "a")
    assert (hpa.floor_at(3599.0), hpa.floor_at(3600.0), hpa.ceiling_at(3600.0)) == (2, 12, 40)
    # Below the new floor: straight to it, no rate limit (k8s: current < minReplicas).
    d = hpa.decide(3600.0, 4, ready(0.6, 4))
    assert (d.desired, d.reason) == (12, "scheduled floor 12")
    # Idle afterwards: 12 pods at 12 % -> 0.2 -> 3 recommended, held at the scheduled floor.
    d = hpa.decide(3615.0, 12, ready(0.12, 12))
    assert (d.recommendation, d.desired, d.reason) == (3, 12, "scheduled floor 12")


def test_schedule_latest_entry_wins_and_may_set_ceiling() -> None:
    rule = make_rule(
        min=2,
        max=40,
        schedule=[ScheduledScale(at=100, min=10, max=20), ScheduledScale(at=200, min=4)],
    )
    hpa = Autoscaler(rule, "bets", "a")
    assert (hpa.floor_at(150.0), hpa.ceiling_at(150.0)) == (10, 20)
    assert (hpa.floor_at(250.0), hpa.ceiling_at(250.0)) == (4, 40)
    d = hpa.decide(150.0, 30, ready(0.6, 30))
    assert (d.desired, d.reason) == (20, "scheduled ceiling 20")
    # A scheduled floor above the ceiling raises the ceiling with it.
    high = Autoscaler(make_rule(max=10, schedule=[ScheduledScale(at=0, min=15)]), "b", "a")
    assert (high.floor_at(0.0), high.ceiling_at(0.0)) == (15, 15)


def test_clamped_to_max() -> None:
    # 30 pods at 180 %: 3.0 -> 90; rate limit max(34, 60) = 60 is above max 40 -> 40.
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 30, ready(1.8, 30))
    assert (d.recommendation, d.desired, d.reason) == (90, 40, "clamped to max")
    # Above max already: straight to max, whatever the metrics.
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 50, ready(0.6, 50))
    assert (d.desired, d.reason) == (40, "clamped to max")


def test_clamped_to_min() -> None:
    rule = make_rule(min=3, scale_down=NO_DOWN_WINDOW)
    # 6 pods at 6 %: 0.1 -> ceil(0.6) = 1, below min 3.
    d = Autoscaler(rule, "bets", "a").decide(0.0, 6, ready(0.06, 6))
    assert (d.recommendation, d.desired, d.reason) == (1, 3, "clamped to min")


def test_no_metrics_keeps_current_but_clamps() -> None:
    for pods in ([], ready(None, 3), starting(3)):
        d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 3, pods)
        assert (d.desired, d.ratio, d.reason) == (3, None, "no metrics")
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 45, ready(None, 45))
    assert (d.desired, d.reason) == (40, "clamped to max")
    d = Autoscaler(make_rule(min=5), "bets", "a").decide(0.0, 2, [])
    assert (d.desired, d.reason) == (5, "clamped to min")


def test_zero_replicas_disables_autoscaling() -> None:
    # k8s: a target scaled to 0 with minReplicas > 0 switches its HPA off.
    d = Autoscaler(make_rule(), "bets", "a").decide(0.0, 0, [])
    assert (d.desired, d.reason) == (0, "scaling disabled (replicas = 0)")


def test_time_must_not_go_backwards() -> None:
    hpa = Autoscaler(make_rule(), "bets", "a")
    hpa.decide(30.0, 2, ready(0.6, 2))
    with pytest.raises(ValueError):
        hpa.decide(15.0, 2, ready(0.6, 2))


def test_event_is_json_with_all_inputs() -> None:
    d = Autoscaler(make_rule(), "bets", "eu-west-a").decide(15.0, 4, ready(0.9, 3) + starting(1))
    event = json.loads(json.dumps(d.as_event()))
    assert event["t"] == 15.0 and event["kind"] == "scale"
    assert (event["service"], event["zone"], event["metric"], event["target"]) == (
        "bets",
        "eu-west-a",
        "cpu",
        0.6,
    )
    assert event["pods"] == {"ready": 3, "unready": 1, "missing": 0, "ignored": 0}
    assert {"current", "desired", "recommendation", "stabilized", "ratio"} <= set(event)
    assert {"raw_ratio"} <= set(event)
    assert {"floor", "ceiling", "reason", "changed", "usage"} <= set(event)


def test_decision_does_not_depend_on_pod_order() -> None:
    pods = ready(0.9, 3) + ready(None) + starting(2) + ready(0.3, 2)
    shuffled = pods[:]
    random.Random(7).shuffle(shuffled)
    a = Autoscaler(make_rule(), "bets", "a").decide(0.0, 8, pods)
    b = Autoscaler(make_rule(), "bets", "a").decide(0.0, 8, shuffled)
    assert a == b


# --------------------------------------------------------------------------- properties

pod_samples = st.builds(
    PodSample,
    started_at=st.floats(-1000, 1000),
    ready_at=st.one_of(st.none(), st.floats(-1000, 1000)),
    metric=st.one_of(st.none(), st.floats(0, 5)),
    terminating=st.booleans(),
)


@st.composite
def rules(draw: st.DrawFn) -> ScalingRule:
    metric = draw(st.sampled_from(["cpu", "rps", "latency"]))
    target = draw(st.floats(0.2, 1.0)) if metric == "cpu" else draw(st.floats(1, 500))
    lo = draw(st.integers(1, 5))
    hi = draw(st.integers(lo, 60))
    schedule = draw(
        st.lists(
            st.builds(
                ScheduledScale,
                at=st.floats(0, 2000),
                min=st.integers(0, 30),
                max=st.one_of(st.none(), st.integers(1, 60)),
            ),
            max_size=3,
        )
    )
    up = ScalingPolicy(
        stabilization_s=draw(st.sampled_from([0, 30, 60])),
        max_pods=draw(st.one_of(st.none(), st.integers(1, 8))),
        max_percent=draw(st.one_of(st.none(), st.sampled_from([10, 50, 100, 200]))),
        period_s=draw(st.sampled_from([15, 60])),
    )
    down = ScalingPolicy(
        stabilization_s=draw(st.sampled_from([0, 60, 300])),
        max_pods=draw(st.one_of(st.none(), st.integers(1, 8))),
        max_percent=draw(st.one_of(st.none(), st.sampled_from([10, 50, 100]))),
        period_s=draw(st.sampled_from([15, 60])),
    )
    tolerance = draw(st.sampled_from([0.0, 0.05, 0.1, 0.2]))
    return ScalingRule(
        metric=metric,
        target=target,
        min=lo,
        max=hi,
        tolerance=tolerance,
        schedule=schedule,
        scale_up=up,
        scale_down=down,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=rules(),
    steps=st.lists(
        st.tuples(st.floats(0, 200), st.integers(1, 80), st.lists(pod_samples, max_size=12)),
        min_size=1,
        max_size=15,
    ),
)
def test_desired_always_within_floor_and_ceiling(rule: ScalingRule, steps: list) -> None:
    hpa = Autoscaler(rule, "svc", "z")
    now = 0.0
    for dt, current, pods in steps:
        now += dt
        d = hpa.decide(now, current, pods)
        floor, ceiling = hpa.floor_at(now), hpa.ceiling_at(now)
        assert floor <= d.desired <= ceiling, d
        assert (d.floor, d.ceiling) == (floor, ceiling)


def closed_loop(rule: ScalingRule, demand: float, start: int, periods: int, startup: float) -> list:
    """Constant load of ``demand`` target-sized pods, spread over the Ready pods; new pods are
    Ready ``startup`` s after creation; a scale-down removes the newest pods."""
    hpa = Autoscaler(rule, "svc", "z")
    pods: list[tuple[float, float]] = [(LONG_AGO, LONG_AGO + 5)] * start
    current = start
    decisions = []
    for k in range(periods):
        now = k * rule.sync_period_s
        n_ready = sum(1 for _, r in pods if r <= now)
        share = demand * rule.target / n_ready if n_ready else 0.0
        samples = [PodSample(s, r, share if r <= now else None) for s, r in pods]
        d = hpa.decide(now, current, samples)
        decisions.append(d)
        if d.desired > current:
            pods = pods + [(now, now + startup)] * (d.desired - current)
        else:
            pods = pods[: d.desired]
        current = d.desired
    return decisions


@settings(max_examples=200, deadline=None)
@given(
    metric=st.sampled_from(["cpu", "rps"]),
    target_fraction=st.floats(0.3, 1.0),
    demand=st.floats(0.5, 60),
    bounds=st.tuples(st.integers(1, 4), st.integers(10, 80)),
    start_fraction=st.floats(0, 1),
    startup=st.floats(1, 14),
)
def test_constant_load_converges_without_oscillation(
    metric: str,
    target_fraction: float,
    demand: float,
    bounds: tuple[int, int],
    start_fraction: float,
    startup: float,
) -> None:
    lo, hi = bounds
    target = target_fraction if metric == "cpu" else 100 * target_fraction
    rule = make_rule(metric=metric, target=target, min=lo, max=hi)
    start = lo + round(start_fraction * (hi - lo))
    periods = 70  # 17.5 min: two 300 s scale-down windows plus quiet periods
    decisions = closed_loop(rule, demand, start, periods, startup)
    changes = [d for d in decisions if d.changed]
    ups = [d.desired > d.current for d in changes]
    switches = sum(1 for a, b in zip(ups, ups[1:]) if a != b)
    # No oscillation: at most one reversal, and only a small correction. It comes from the
    # controller's integer-percent cpu utilisation (truncated, as in k8s), which can read a load
    # just inside the tolerance as just outside it once the new pods count.
    assert switches <= 1, changes
    if switches:
        turn = ups.index(not ups[0])
        peak = changes[turn].current
        correction = sum(abs(d.desired - d.current) for d in changes[turn:])
        assert correction <= max(1, math.ceil(0.05 * peak)), changes
    # Settled: scale-ups within a few periods; a scale-down waits one 300 s window (20 periods)
    # per step, and takes at most two steps (the second when a near-idle deployment's integer
    # utilisation of 1-2 % overstates the load); nothing moves in the last periods.
    if changes:
        last = decisions.index(changes[-1])
        only_up = not switches and ups[0]
        assert last <= (8 if only_up else 8 + 2 * (300 // 15 + 2)), (last, changes)
    final = decisions[-1].desired
    # At rest: a bound, within tolerance of the load, or ceil(load) — possibly one pod more,
    # because metrics are integer milli-values / percents (as in k8s) and ceil(ratio × pods)
    # is taken in float64 (1.000005 -> 2).
    assert (
        final in (lo, hi)
        or abs(demand / final - 1) <= rule.tolerance + 0.02
        or final - math.ceil(demand) in (0, 1)
    ), (final, demand, decisions[-1])
