"""Call paths compiled for the data plane: each hop of a step with what it needs at run time."""

from __future__ import annotations

import dataclasses

from scenarios import Scenario
from scenarios.distributions import Dist
from scenarios.topology import CallNode


@dataclasses.dataclass(frozen=True)
class Hop:
    """One node of a step's call tree, resolved against the topology."""

    kind: str  # "service" | "cache" | "db"
    name: str
    service_time_ms: Dist
    queries: int
    fanout: int
    parallel: bool
    calls: tuple["Hop", ...]
    on_miss: tuple["Hop", ...]


def compile_calls(scenario: Scenario, nodes: list[CallNode]) -> tuple[Hop, ...]:
    """The hops of a call list, with each target's service-time distribution attached."""
    topo = scenario.topology
    out = []
    for node in nodes:
        kind, name = node.target
        spec = {"service": topo.services, "cache": topo.caches, "db": topo.databases}[kind][name]
        out.append(Hop(kind, name, spec.service_time_ms, node.queries, node.fanout, node.parallel,
                       compile_calls(scenario, node.calls), compile_calls(scenario, node.on_miss)))
    return tuple(out)


def step_plans(scenario: Scenario) -> dict[str, tuple[Hop, ...]]:
    """Every step's compiled call path."""
    return {name: compile_calls(scenario, step.calls)
            for name, step in scenario.topology.steps.items()}


def databases_of(hops: tuple[Hop, ...]) -> frozenset[str]:
    """Every database a call path may reach (its writes land there)."""
    names: set[str] = set()
    for hop in hops:
        if hop.kind == "db":
            names.add(hop.name)
        names |= databases_of(hop.calls) | databases_of(hop.on_miss)
    return frozenset(names)
