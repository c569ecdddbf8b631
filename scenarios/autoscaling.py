"""Autoscaling rules per service, mirroring the Kubernetes HPA (defaults from REFERENCE.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scenarios.base import Strict
from scenarios.distributions import Dist
from scenarios.scaling import InstanceCount, MatchSeconds, PositiveMatchSeconds


class ScalingPolicy(Strict):
    """How fast one direction may move: a stabilisation window and per-period change limits.

    The allowed change per ``period_s`` is the larger of ``max_pods`` and ``max_percent`` of the
    current count (HPA ``selectPolicy: Max``); an unset limit does not apply.
    """

    stabilization_s: MatchSeconds
    max_pods: int | None = Field(default=None, ge=1)
    max_percent: float | None = Field(default=None, gt=0)
    period_s: PositiveMatchSeconds = 15.0


class ScheduledScale(Strict):
    """From ``at`` on, the rule's floor (and optionally ceiling) become ``min`` / ``max``."""

    at: MatchSeconds
    min: InstanceCount
    max: InstanceCount | None = None


class ScalingRule(Strict):
    """HPA-like rule for one service, per zone (each zone runs its own deployment).

    ``target`` is a utilisation fraction for ``cpu``, requests/s per instance for ``rps`` and a
    p95 in ms for ``latency``.
    """

    metric: Literal["cpu", "rps", "latency"] = "cpu"
    target: float = Field(gt=0)
    min: InstanceCount = 1
    max: InstanceCount
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    sync_period_s: PositiveMatchSeconds = 15.0
    # Kubernetes: pod p99 start <= 5 s without an image pull; a new VM adds 25-30 s.
    startup_s: Dist = Dist(dist="lognormal", mean=3.0, cv=0.3)
    # Physical delays of the metrics pipeline, not policy windows: not compressed.
    readiness_delay_s: float = Field(default=30.0, ge=0)
    cpu_initialization_s: float = Field(default=300.0, ge=0)
    scale_up: ScalingPolicy = ScalingPolicy(stabilization_s=0, max_pods=4, max_percent=100)
    scale_down: ScalingPolicy = ScalingPolicy(stabilization_s=300, max_percent=100)
    schedule: list[ScheduledScale] = []

    @model_validator(mode="after")
    def _bounds(self) -> "ScalingRule":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.metric == "cpu" and self.target > 1:
            raise ValueError("a cpu target is a utilisation fraction in (0, 1]")
        return self
