"""The scenario: one match day described once, read by the simulator, real runs and reports."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from scenarios.autoscaling import ScalingRule
from scenarios.base import Strict
from scenarios.budgets import Budgets
from scenarios.chaos import ChaosAction
from scenarios.cost import Cost
from scenarios.links import Links
from scenarios.scaling import PositiveMatchSeconds, scale_model
from scenarios.topology import Topology
from scenarios.wave import Traffic

SCHEMA_VERSION = 1


class Scenario(Strict):
    """A match day: traffic, links, topology, autoscaling, chaos, budgets and prices."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    duration: PositiveMatchSeconds
    seed: int = 1
    traffic: Traffic
    links: Links
    topology: Topology
    autoscaling: dict[str, ScalingRule] = {}
    chaos: list[ChaosAction] = []
    budgets: Budgets = Budgets()
    cost: Cost = Cost()

    def users_at(self, t: float | np.ndarray) -> float | np.ndarray:
        """Concurrent users at match second ``t`` (see :meth:`Traffic.users_at`)."""
        return self.traffic.users_at(t)

    def scaled(self, *, compress: float = 1.0, load: float = 1.0) -> "Scenario":
        """The same day played ``compress`` times faster with ``load`` times the users.

        The rules are in :mod:`scenarios.scaling`; ``scaled(1, 1)`` returns an equal scenario.
        """
        return scale_model(self, compress=compress, load=load)

    def phase_windows(self) -> dict[str, list[tuple[float, float]]]:
        """Each named phase's spans of match time, ``[start, end)``."""
        marks = [(p.at, p.phase) for p in self.traffic.wave if p.phase is not None]
        out: dict[str, list[tuple[float, float]]] = {}
        for i, (at, name) in enumerate(marks):
            end = marks[i + 1][0] if i + 1 < len(marks) else self.duration
            out.setdefault(name, []).append((at, end))
        return out

    def chaos_windows(self, ref: str) -> list[tuple[float, float]]:
        """The spans of every chaos action whose id or type is ``ref``."""
        return [(a.at, a.end) for a in self.chaos if ref in (a.id, a.action)]

    def to_yaml_data(self) -> dict[str, Any]:
        """Plain data that :func:`scenarios.loader.load_scenario` reads back to an equal scenario."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"budgets"})
        data["budgets"] = self.budgets.to_yaml_data()
        return data
