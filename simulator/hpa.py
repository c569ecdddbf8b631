"""Decision logic of one Kubernetes HorizontalPodAutoscaler (one service in one zone).

Pure and deterministic: no SimPy, no I/O, no clock of its own. The simulator calls
:meth:`Autoscaler.decide` every ``rule.sync_period_s`` seconds of simulated time with the
deployment's replica count and a snapshot of its pods, and applies ``Decision.desired``.

The rules mirror the Kubernetes controller (``pkg/controller/podautoscaler``, autoscaling/v2
with ``behavior`` set, as the API server defaults it), step by step:

1. ``replica_calculator.go`` — ``groupPods`` sorts pods into ignored / unready / missing / ready;
   ``GetResourceReplicas`` (cpu) and ``calcPlainMetricReplicas`` (rps, latency) turn the ready
   pods' metrics into a usage ratio, substitute missing and unready pods, and propose
   ``ceil(ratio × pods)``. See :func:`recommend`.
2. ``horizontal.go`` ``reconcileAutoscaler`` — a replica count outside [min, max] is moved to the
   bound at once, before any metric is read; otherwise the metric proposal goes through
   ``stabilizeRecommendationWithBehaviors`` (stabilisation windows) and
   ``convertDesiredReplicasWithBehaviorRate`` (per-period rate limits, then min / max).
   ``storeScaleEvent`` keeps the history the rate limits are computed from.

Scheduled scaling (not a Kubernetes HPA feature; KEDA's cron scaler and a patched
``minReplicas`` behave like this) replaces min / max from an instant on: see
:meth:`Autoscaler.floor_at`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from scenarios.autoscaling import ScalingPolicy, ScalingRule, ScheduledScale

# A cpu metric is a utilisation fraction of the pod's request. Kubernetes works in millicores:
# usage and request are integer milli-values, and utilisation is an integer percent
# (GetResourceUtilizationRatio). A nominal 1000m request per pod keeps 0.1 % resolution; the
# request size cancels out of every ratio, so its value is otherwise irrelevant.
_CPU_REQUEST_MILLI = 1000


@dataclasses.dataclass(frozen=True)
class PodSample:
    """One pod of the deployment as the HPA sees it at a sync.

    Contract: times are simulated seconds; ``ready_at`` is None (or in the future) while the pod
    is still starting; ``metric`` is >= 0 (cpu: utilisation fraction of the pod's request; rps:
    requests/s; latency: ms) or None when no sample was scraped. ``terminating`` marks a pod
    that is being deleted or has failed (k8s: DeletionTimestamp set or phase Failed).
    """

    started_at: float
    ready_at: float | None
    metric: float | None
    terminating: bool = False


@dataclasses.dataclass(frozen=True)
class PodGroups:
    """How ``groupPods`` sorted the pods; ``values`` are the ready pods' metrics in milli-units."""

    values: tuple[int, ...]
    unready: int
    missing: int
    ignored: int

    @property
    def ready(self) -> int:
        """Pods whose metric is counted as is (k8s ``readyPodCount``)."""
        return len(self.values)


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """The replica calculator's answer for one sync (before stabilisation, limits and clamp)."""

    replicas: int
    ratio: float  # the usage ratio the answer was computed from (after substitutions)
    raw_ratio: float  # the ready pods' usage ratio, before substitutions
    usage: float  # ready pods' mean metric in the rule's unit (cpu: fraction of request)
    reason: str


@dataclasses.dataclass(frozen=True)
class Decision:
    """One sync of the autoscaler: what it saw, what it recommended and what it asks for.

    ``desired`` is what the deployment's replica count should become; ``recommendation`` is the
    replica calculator's raw answer; ``stabilized`` is that answer after the stabilisation
    windows (None when the metrics were not consulted); ``ratio`` is the usage ratio used after
    substitutions (None without any usable metric); ``reason`` names the rule that decided.
    """

    time: float
    current: int
    desired: int
    recommendation: int
    ratio: float | None
    reason: str
    service: str = ""
    zone: str = ""
    metric: str = "cpu"
    target: float = 0.0
    floor: int = 0
    ceiling: int = 0
    stabilized: int | None = None
    raw_ratio: float | None = None
    usage: float | None = None
    pods_ready: int = 0
    pods_unready: int = 0
    pods_missing: int = 0
    pods_ignored: int = 0

    @property
    def changed(self) -> bool:
        """True when the decision rescales the deployment."""
        return self.desired != self.current

    def as_event(self) -> dict[str, Any]:
        """A JSON-able record for ``events.jsonl``: ``t``, ``kind="scale"`` and every input."""
        return {
            "t": self.time,
            "kind": "scale",
            "service": self.service,
            "zone": self.zone,
            "current": self.current,
            "desired": self.desired,
            "changed": self.changed,
            "recommendation": self.recommendation,
            "stabilized": self.stabilized,
            "ratio": self.ratio,
            "raw_ratio": self.raw_ratio,
            "usage": self.usage,
            "metric": self.metric,
            "target": self.target,
            "floor": self.floor,
            "ceiling": self.ceiling,
            "pods": {
                "ready": self.pods_ready,
                "unready": self.pods_unready,
                "missing": self.pods_missing,
                "ignored": self.pods_ignored,
            },
            "reason": self.reason,
        }


# --------------------------------------------------------------------------- replica calculator


def _milli(value: float) -> int:
    """A metric as an integer milli-value (k8s Quantity.MilliValue).

    Rounded to nearest rather than up, so float noise (0.6 * 1000 = 600.0000000000001) does not
    shift a value by one milli-unit.
    """
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"a pod metric must be >= 0, got {value!r}")
    return round(value * 1000)


def group_pods(pods: list[PodSample], now: float, rule: ScalingRule) -> PodGroups:
    """Sort pods as ``groupPods`` (replica_calculator.go) does, in the same order of checks.

    - terminating pods are *ignored*: they neither count nor get a substitute value;
    - a pod that is not Ready yet is still starting — k8s sees it as phase Pending — and is
      *unready* for every metric (its sample, if any, says nothing about steady load);
    - a running pod without a sample is *missing*;
    - cpu only: a Ready pod still inside ``cpu_initialization_s`` of its start is *unready*
      until one full metric window (``sync_period_s``) has been collected since it became
      Ready, because its first samples include start-up cpu. After the initialisation period
      k8s only drops a not-Ready pod that has never been Ready, and every not-Ready pod was
      already sorted out as starting above.
    """
    values: list[int] = []
    unready = missing = ignored = 0
    window = rule.sync_period_s
    for pod in pods:
        if pod.terminating:
            ignored += 1
            continue
        if pod.ready_at is None or pod.ready_at > now:
            unready += 1
            continue
        if pod.metric is None:
            missing += 1
            continue
        if rule.metric == "cpu":
            in_initialisation = pod.started_at + rule.cpu_initialization_s > now
            # metric.Timestamp.Before(LastTransitionTime + Window): the sample is taken now.
            if in_initialisation and now < pod.ready_at + window:
                unready += 1
                continue
        values.append(_milli(pod.metric))
    return PodGroups(tuple(values), unready, missing, ignored)


def _target_units(rule: ScalingRule) -> float:
    """The target in the units the ratio is computed in (cpu: percent; others: milli-units)."""
    if rule.metric == "cpu":
        # k8s target.averageUtilization is an int32 percent, so a finer target (0.655) is taken
        # to the nearest percent. A fractional percent would also make ceil(ratio × pods)
        # overshoot on float noise (ratio 0.5000050 × 2 pods -> 2).
        return float(max(1, math.floor(rule.target * 100 + 0.5)))
    # target.averageValue is a Quantity, used as an integer milli-value.
    return float(max(1, math.floor(rule.target * 1000 + 0.5)))


def _usage_ratio(rule: ScalingRule, values: list[int]) -> tuple[float, float]:
    """(usage ratio, mean metric in the rule's unit) over ``values`` (milli-units, non-empty).

    cpu: ``GetResourceUtilizationRatio`` — integer percent utilisation of the summed requests;
    rps / latency: ``GetMetricUsageRatio`` — integer mean of milli-values over the target.
    """
    target = _target_units(rule)
    if rule.metric == "cpu":
        utilisation = (sum(values) * 100) // (_CPU_REQUEST_MILLI * len(values))
        return float(utilisation) / float(target), utilisation / 100
    mean = sum(values) // len(values)
    return float(mean) / float(target), mean / 1000


def recommend(rule: ScalingRule, current: int, groups: PodGroups) -> Recommendation | None:
    """The replica calculator (``GetResourceReplicas`` / ``calcPlainMetricReplicas``).

    Returns None when no ready pod has a metric (k8s: "did not receive metrics for any ready
    pods" — the sync fails and nothing changes). Otherwise, with tolerance ``t``:

    - no missing pods and no unready pods on a scale-up: ``current`` if ``|ratio-1| <= t``,
      else ``ceil(ratio × ready)``;
    - otherwise substitute: missing pods count as 100 % (cpu: 100 % of the request, as k8s does
      for a target <= 100 %; other metrics: the target) on a scale-down and 0 on a scale-up;
      unready pods count as 0 on a scale-up; recompute the ratio over all of them; keep
      ``current`` if the new ratio is within tolerance or on the other side of 1, or if
      ``ceil(new ratio × pods)`` would move against the ratio's direction.
    """
    if not groups.values:
        return None
    tol = rule.tolerance
    values = list(groups.values)
    ratio, usage = _usage_ratio(rule, values)

    scale_up_with_unready = groups.unready > 0 and ratio > 1.0
    if not scale_up_with_unready and groups.missing == 0:
        if abs(1.0 - ratio) <= tol:
            return Recommendation(current, ratio, ratio, usage, "within tolerance")
        replicas = math.ceil(ratio * float(groups.ready))
        reason = _direction_reason(rule, replicas, current)
        return Recommendation(replicas, ratio, ratio, usage, reason)

    if groups.missing:
        if ratio < 1.0:
            # Scale-down: assume the silent pods are busy, so we do not remove capacity that
            # may be in use. cpu: max(100 %, target) of the request (target <= 100 % here).
            fallback = _CPU_REQUEST_MILLI if rule.metric == "cpu" else int(_target_units(rule))
            values += [fallback] * groups.missing
        elif ratio > 1.0:
            # Scale-up: assume the silent pods are idle, so we do not over-scale on them.
            values += [0] * groups.missing
        # ratio == 1.0 exactly: k8s adds neither (an `else if`), the pods stay out.
    if scale_up_with_unready:
        # Starting pods will take load soon: count them as idle capacity, dampening scale-up.
        values += [0] * groups.unready

    new_ratio, _ = _usage_ratio(rule, values)

    def keep(reason: str) -> Recommendation:
        return Recommendation(current, new_ratio, ratio, usage, reason)

    if abs(1.0 - new_ratio) <= tol:
        return keep("within tolerance after substitution")
    if (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return keep("direction flipped after substitution")
    replicas = math.ceil(new_ratio * float(len(values)))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        # Fewer pods than replicas (or more) can make ceil(ratio × pods) point the wrong way.
        return keep("pod count would reverse the direction")
    reason = _direction_reason(rule, replicas, current)
    return Recommendation(replicas, new_ratio, ratio, usage, reason)


def _direction_reason(rule: ScalingRule, replicas: int, current: int) -> str:
    # Wording of reconcileAutoscaler's rescaleReason.
    if replicas > current:
        return f"{rule.metric} above target"
    if replicas < current:
        return "all metrics below target"
    return "at target"


# --------------------------------------------------------------------------- rate limits


def _policy_text(sign: str, policy: ScalingPolicy) -> str:
    parts = []
    if policy.max_pods is not None:
        parts.append(f"{sign}{policy.max_pods}")
    if policy.max_percent is not None:
        parts.append(f"{sign}{policy.max_percent:g}%")
    return parts[0] if len(parts) == 1 else f"max({', '.join(parts)})"


@dataclasses.dataclass
class _ScaleEvent:
    """``timestampedScaleEvent``: a replica change in one direction (always positive)."""

    time: float
    change: int
    outdated: bool = False


def _changes_in_period(now: float, period: float, events: list[_ScaleEvent]) -> int:
    """``getReplicasChangePerPeriod``: the changes strictly newer than ``now - period``."""
    cutoff = now - period
    return sum(e.change for e in events if e.time > cutoff)


# --------------------------------------------------------------------------- the autoscaler


class Autoscaler:
    """One HPA: ``rule`` applied to ``service`` in ``zone``, with its own history.

    State (the controller keeps the same, per HPA key): the unstabilised recommendations of the
    stabilisation windows, and the scale-up / scale-down events of the rate-limit periods.
    ``decide`` must be called with non-decreasing ``now``.
    """

    def __init__(self, rule: ScalingRule, service: str, zone: str) -> None:
        self.rule = rule
        self.service = service
        self.zone = zone
        self._recommendations: list[tuple[float, int]] | None = None
        self._up_events: list[_ScaleEvent] = []
        self._down_events: list[_ScaleEvent] = []
        self._last_now = -math.inf
        # Stable sort keeps list order among entries with the same ``at``: the later one wins.
        self._schedule = sorted(rule.schedule, key=lambda s: s.at)

    # -- bounds ------------------------------------------------------------------------------

    def _active_schedule(self, now: float) -> ScheduledScale | None:
        active = None
        for entry in self._schedule:
            if entry.at <= now:
                active = entry
        return active

    def floor_at(self, now: float) -> int:
        """minReplicas at ``now``: ``rule.min``, or the ``min`` of the latest schedule entry."""
        entry = self._active_schedule(now)
        return self.rule.min if entry is None else entry.min

    def ceiling_at(self, now: float) -> int:
        """maxReplicas at ``now``: ``rule.max``, or the latest schedule entry's ``max`` if set.

        Never below :meth:`floor_at`: a scheduled floor above the ceiling raises the ceiling
        (Kubernetes rejects min > max; here the schedule is taken to mean "at least this many").
        """
        entry = self._active_schedule(now)
        ceiling = self.rule.max if entry is None or entry.max is None else entry.max
        return max(ceiling, self.floor_at(now))

    def _bound_reason(self, now: float, which: str, value: int) -> str:
        entry = self._active_schedule(now)
        if which == "floor":
            return f"scheduled floor {value}" if entry is not None else "clamped to min"
        scheduled = entry is not None and (entry.max is not None or value != self.rule.max)
        return f"scheduled ceiling {value}" if scheduled else "clamped to max"

    # -- the sync ----------------------------------------------------------------------------

    def decide(self, now: float, current: int, pods: list[PodSample]) -> Decision:
        """One sync of ``reconcileAutoscaler`` at ``now``.

        ``current`` is the deployment's replica count (spec.replicas), not the number of live
        pods; ``pods`` are the pods that exist now. Returns the replica count to set.

        Contract: ``floor_at(now) <= desired <= ceiling_at(now)`` whenever ``current >= 1``.
        ``current == 0`` with a floor above 0 means autoscaling is disabled (as in Kubernetes,
        where scaling a target to 0 switches its HPA off): the decision keeps 0.
        """
        if now < self._last_now:
            raise ValueError(f"time went backwards: {now} < {self._last_now}")
        if current < 0:
            raise ValueError(f"current replicas must be >= 0, got {current}")
        self._last_now = now
        rule = self.rule
        floor, ceiling = self.floor_at(now), self.ceiling_at(now)
        # recordInitialRecommendation: the first sync seeds the window with the current count,
        # so a fresh HPA does not scale down before one full scale-down window has passed.
        if self._recommendations is None:
            self._recommendations = [(now, current)]

        groups = group_pods(pods, now, rule)
        rec = recommend(rule, current, groups)
        stabilized: int | None = None

        if current == 0 and floor != 0:
            desired, reason = 0, "scaling disabled (replicas = 0)"
        elif current > ceiling:
            # Out-of-range counts move to the bound at once, before metrics or rate limits.
            desired, reason = ceiling, self._bound_reason(now, "ceiling", ceiling)
        elif current < floor:
            desired, reason = floor, self._bound_reason(now, "floor", floor)
        elif rec is None:
            # The metrics sync fails: no recommendation is recorded and nothing changes.
            desired, reason = current, "no metrics"
        else:
            stabilized, reason = self._stabilize(now, current, rec.replicas, rec.reason)
            desired, reason = self._limit(now, current, stabilized, floor, ceiling, reason)

        if desired != current:
            self._store_scale_event(now, current, desired)

        return Decision(
            time=now,
            current=current,
            desired=desired,
            recommendation=rec.replicas if rec is not None else current,
            ratio=rec.ratio if rec is not None else None,
            reason=reason,
            service=self.service,
            zone=self.zone,
            metric=rule.metric,
            target=rule.target,
            floor=floor,
            ceiling=ceiling,
            stabilized=stabilized,
            raw_ratio=rec.raw_ratio if rec is not None else None,
            usage=rec.usage if rec is not None else None,
            pods_ready=groups.ready,
            pods_unready=groups.unready,
            pods_missing=groups.missing,
            pods_ignored=groups.ignored,
        )

    def _stabilize(self, now: float, current: int, desired: int, reason: str) -> tuple[int, str]:
        """``stabilizeRecommendationWithBehaviors``.

        Over the recommendations strictly newer than each window's cutoff (plus this one):
        up = min within the scale-up window, down = max within the scale-down window; the
        result is ``current`` moved into [up, down] — so a scale-up needs every recent
        recommendation to agree, and a scale-down goes only as low as the highest recent one.
        Records the unstabilised ``desired``.
        """
        assert self._recommendations is not None
        up_window = self.rule.scale_up.stabilization_s
        down_window = self.rule.scale_down.stabilization_s
        up_cutoff, down_cutoff = now - up_window, now - down_window
        up, down = desired, desired
        for t, r in self._recommendations:
            if t > up_cutoff:
                up = min(up, r)
            if t > down_cutoff:
                down = max(down, r)
        result = min(max(current, up), down)
        # k8s overwrites one sample older than both windows instead of appending; dropping all
        # of them is equivalent because the cutoffs only move forward.
        self._recommendations = [
            (t, r) for t, r in self._recommendations if not (t < up_cutoff and t < down_cutoff)
        ]
        self._recommendations.append((now, desired))
        if result != desired:
            if desired >= current:
                reason = f"scale-up stabilised (min of last {up_window:g}s)"
            else:
                reason = f"scale-down stabilised (max of last {down_window:g}s)"
        return result, reason

    def _limit(
        self, now: float, current: int, desired: int, floor: int, ceiling: int, reason: str
    ) -> tuple[int, str]:
        """``convertDesiredReplicasWithBehaviorRate``: per-period rate limits, then min / max."""
        if desired > current:
            limit = self._scale_up_limit(now, current)
            limit = max(limit, current)  # never scale *down* because of the scale-up limit
            if ceiling > limit:
                allowed = limit
                limit_reason = f"scale-up limited to {_policy_text('+', self.rule.scale_up)}"
            else:
                allowed, limit_reason = ceiling, self._bound_reason(now, "ceiling", ceiling)
            if desired > allowed:
                return allowed, limit_reason
        elif desired < current:
            limit = self._scale_down_limit(now, current)
            limit = min(limit, current)
            if floor < limit:
                allowed = limit
                limit_reason = f"scale-down limited to {_policy_text('-', self.rule.scale_down)}"
            else:
                allowed, limit_reason = floor, self._bound_reason(now, "floor", floor)
            if desired < allowed:
                return allowed, limit_reason
        return desired, reason

    def _period_start(self, now: float, current: int, period: float) -> int:
        # The replica count at the start of the period, rebuilt from the event history
        # (calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors).
        added = _changes_in_period(now, period, self._up_events)
        deleted = _changes_in_period(now, period, self._down_events)
        return current - added + deleted

    def _scale_up_limit(self, now: float, current: int) -> int | float:
        """Highest count allowed (selectPolicy Max: the larger of the set policies)."""
        policy = self.rule.scale_up
        if policy.max_pods is None and policy.max_percent is None:
            return math.inf  # no policy set: no rate limit
        start = self._period_start(now, current, policy.period_s)
        proposals = []
        if policy.max_pods is not None:
            proposals.append(start + policy.max_pods)
        if policy.max_percent is not None:
            # Rounded up so a small deployment can always grow (k8s comment says the same).
            proposals.append(math.ceil(float(start) * (1 + policy.max_percent / 100)))
        return max(proposals)

    def _scale_down_limit(self, now: float, current: int) -> int | float:
        """Lowest count allowed (selectPolicy Max: the larger change, i.e. the lower bound)."""
        policy = self.rule.scale_down
        if policy.max_pods is None and policy.max_percent is None:
            return -math.inf
        start = self._period_start(now, current, policy.period_s)
        proposals = []
        if policy.max_pods is not None:
            proposals.append(start - policy.max_pods)
        if policy.max_percent is not None:
            # Go's int32() truncates toward zero; so does int().
            proposals.append(int(float(start) * (1 - policy.max_percent / 100)))
        return min(proposals)

    def _store_scale_event(self, now: float, previous: int, desired: int) -> None:
        """``storeScaleEvent``: mark events older than the direction's period as outdated and
        reuse the last outdated slot. Outdated events still count if within the *other*
        direction's (longer) period until overwritten — kept so the two agree exactly."""
        if desired > previous:
            events, policy, change = self._up_events, self.rule.scale_up, desired - previous
        else:
            events, policy, change = self._down_events, self.rule.scale_down, previous - desired
        cutoff = now - policy.period_s
        slot = None
        for i, event in enumerate(events):
            if event.time < cutoff:
                event.outdated = True
            if event.outdated:
                slot = i
        new = _ScaleEvent(now, change)
        if slot is None:
            events.append(new)
        else:
            events[slot] = new
