"""``simulate``: one scenario in, one run directory out, at request or flow fidelity."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np
import simpy

from reports.rundir import Run, RunWriter, new_run_path
from reports.verdict import Verdict, evaluate
from scenarios import Scenario
from simulator.request_engine import RequestEngine
from simulator.timeline import Timeline
from simulator.workload import Workload
from simulator.world import World

REQUEST_FIDELITY_LIMIT = 3_000_000
"""``auto`` simulates every request up to this many expected requests, and flows beyond."""

Progress = Callable[[float, float], None]


@dataclasses.dataclass
class SimulationResult:
    """Where the run went, how it was judged, and how it was made."""

    path: Path
    verdict: Verdict
    fidelity: str
    reason: str
    wall_s: float


def choose_fidelity(scenario: Scenario, requested: str) -> tuple[str, str]:
    """(fidelity, why): ``auto`` picks request fidelity when the day is small enough."""
    expected = Workload.of(scenario).total_requests()
    if requested != "auto":
        return requested, f"asked for {requested} ({expected:,.0f} requests expected)"
    if expected <= REQUEST_FIDELITY_LIMIT:
        return "request", f"auto: {expected:,.0f} requests expected <= {REQUEST_FIDELITY_LIMIT:,}"
    return "flow", f"auto: {expected:,.0f} requests expected > {REQUEST_FIDELITY_LIMIT:,}"


def _engine(fidelity: str, scenario: Scenario, world: World, rng: np.random.Generator):
    if fidelity == "request":
        return RequestEngine(scenario, world, rng)
    if fidelity == "flow":
        from simulator.flow_engine import FlowEngine

        return FlowEngine(scenario, world, rng)
    raise ValueError(f"unknown fidelity {fidelity!r} (request, flow or auto)")


def simulate(scenario: Scenario, *, fidelity: str = "auto", seed: int | None = None,
             compress: float = 1.0, load_scale: float = 1.0, out_root: Path = Path("runs"),
             out: Path | None = None, progress: Progress | None = None) -> SimulationResult:
    """Simulate ``scenario`` (scaled by ``compress`` and ``load_scale``) into a run directory.

    Deterministic for a given ``seed`` (default: the scenario's). ``progress(now, duration)`` is
    called as simulated time advances. The run directory includes summary.json.
    """
    started = time.perf_counter()
    scenario = scenario.scaled(compress=compress, load=load_scale)
    seed = scenario.seed if seed is None else seed
    chosen, reason = choose_fidelity(scenario, fidelity)
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    world = World(scenario, env, rng)
    engine = _engine(chosen, scenario, world, rng)
    world.engine = engine
    world.start()
    timeline = Timeline(world, engine)
    duration = scenario.duration
    # The timeline first: at each whole second it then samples before that second's arrivals.
    env.process(timeline.run(duration))
    env.process(engine.arrivals(duration))
    chunk = max(1.0, duration / 100)
    t = 0.0
    while t < duration:
        t = min(duration, t + chunk)
        # Just past t, so what happens at exactly t (the last timeline sample) is included.
        env.run(until=t + 1e-9)
        if progress:
            progress(t, duration)
    engine.time_out_stragglers()
    simulated = time.perf_counter()

    path = out or new_run_path(out_root, scenario.name, "sim")
    writer = RunWriter(path, scenario, mode="sim", seed=seed, compress=compress,
                       load_scale=load_scale, fidelity=chosen,
                       fidelity_reason=reason, **engine.conservation())
    engine.write_requests(writer)
    writer.write_timeline(timeline.frame())
    lost = world.writes_lost
    world.emit("reconciliation", acknowledged_bets=world.writes_acknowledged,
               persisted_bets=world.writes_acknowledged - lost, lost_bets=lost)
    writer.write_events(world.events)
    writer.meta["cost"] = {"currency": scenario.cost.currency,
                           "with_spot": round(timeline.cost, 2),
                           "on_demand": round(timeline.cost_on_demand, 2)}
    writer.meta["simulation_seconds"] = round(simulated - started, 3)
    writer.meta["wall_seconds"] = round(time.perf_counter() - started, 3)  # before gating
    writer.finish()
    run = Run(path)
    verdict = evaluate(run.scenario, run.metrics(), run.events())
    run.write_summary(verdict.to_summary(run.meta))
    return SimulationResult(path, verdict, chosen, reason, time.perf_counter() - started)
