"""Offered load: how many requests per second each journey step receives at each match second.

Both fidelities draw arrivals from these rates, so they see the same load. Users are a closed
population (``Scenario.users_at``) looping over their journey; we turn that into open Poisson
arrivals with rate users × visits per cycle / cycle time, where the cycle time is the sum of
the think times (response times are small beside them: an approximation we accept).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from scenarios import Scenario
from scenarios.chaos import BotFlood


@dataclasses.dataclass(frozen=True)
class Workload:
    """Per-step arrival rates of a scenario; ``per_user[step]`` is requests/s per connected user."""

    scenario: Scenario
    per_user: dict[str, float]
    floods: tuple[BotFlood, ...]

    @classmethod
    def of(cls, scenario: Scenario) -> "Workload":
        """Derive the rates from the journeys (and their subscriptions to push steps)."""
        per_user: dict[str, float] = {name: 0.0 for name in scenario.topology.steps}
        for name, share in scenario.traffic.journey_shares().items():
            journey = scenario.traffic.journeys[name]
            visits = {js.step: 0.0 for js in journey.steps}
            cycle = 0.0
            for js in journey.steps:
                done = js.repeat * js.probability
                visits[js.step] += done
                cycle += done * js.think_s.mean
            for step, count in visits.items():
                per_user[step] += share * count / cycle if cycle > 0 else 0.0
            for push in journey.subscribe:
                per_user[push] += share * (scenario.topology.steps[push].rate_hz or 0.0)
        floods = tuple(a for a in scenario.chaos if isinstance(a, BotFlood))
        return cls(scenario, per_user, floods)

    def rate(self, step: str, t: float | np.ndarray) -> float | np.ndarray:
        """Arrivals per second of ``step`` at match second ``t`` (journeys plus bot floods)."""
        rate = self.per_user[step] * np.asarray(self.scenario.users_at(t), dtype=float)
        for flood in self.floods:
            if flood.step == step:
                rate = rate + np.where((np.asarray(t) >= flood.at) & (np.asarray(t) < flood.end),
                                       flood.rps, 0.0)
        return float(rate) if np.ndim(rate) == 0 else rate

    def rates(self, t: float) -> dict[str, float]:
        """Every step's arrival rate at ``t`` (the wave sampled once)."""
        users = float(self.scenario.users_at(t))
        out = {step: users * per_user for step, per_user in self.per_user.items()}
        for flood in self.floods:
            if flood.at <= t < flood.end:
                out[flood.step] += flood.rps
        return out

    def total_requests(self, resolution_s: float = 10.0) -> float:
        """Expected number of requests and pushes over the whole day (for choosing a fidelity)."""
        t = np.arange(0.0, self.scenario.duration, resolution_s) + resolution_s / 2
        return float(sum(np.sum(self.rate(step, t)) for step in self.per_user) * resolution_s)
