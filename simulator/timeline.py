"""The per-second timeline of a simulated run (the run directory's timeline.csv)."""

from __future__ import annotations

from typing import Any, Iterator, Protocol

import pandas as pd
import simpy

from simulator.world import World


class Observed(Protocol):
    """What the timeline reads from a data plane each second."""

    arrived: Any  # Counter of arrivals per step (cumulative)
    failed: Any  # Counter of failures per step (cumulative)

    def pool_stats(self, service: str, zone: str) -> tuple[float, int]: ...


class Timeline:
    """A SimPy process sampling the world and the data plane once a simulated second."""

    def __init__(self, world: World, engine: Observed):
        self.world, self.engine = world, engine
        self.rows: list[dict[str, Any]] = []
        self.cost = 0.0
        self.cost_on_demand = 0.0

    def run(self, until: float) -> Iterator[simpy.Event]:
        env, world = self.world.env, self.world
        steps = list(world.scenario.topology.steps)
        last_arrived = {s: 0 for s in steps}
        last_failed = 0
        chaos = world.scenario.chaos
        while env.now < until:
            yield env.timeout(1.0)
            now = env.now
            blended, on_demand = world.hourly_cost()
            self.cost += blended / 3600.0
            self.cost_on_demand += on_demand / 3600.0
            row: dict[str, Any] = {"t": now, "users": round(float(world.scenario.users_at(now)))}
            arrived = {s: self.engine.arrived[s] for s in steps}
            row["rps"] = sum(arrived[s] - last_arrived[s] for s in steps)
            failed = sum(self.engine.failed.values())
            row["errors"] = failed - last_failed
            for s in steps:
                row[f"rps.{s}"] = arrived[s] - last_arrived[s]
            last_arrived, last_failed = arrived, failed
            for (service, zone) in world.instances:
                util, queue = self.engine.pool_stats(service, zone)
                row[f"instances.{service}.{zone}"] = len(world.live(service, zone))
                row[f"ready.{service}.{zone}"] = len(world.ready(service, zone))
                row[f"utilisation.{service}.{zone}"] = round(util, 4)
                row[f"queue.{service}.{zone}"] = queue
            for name, cache in world.caches.items():
                row[f"cache_hit_ratio.{name}"] = round(cache.hit(now), 4)
            in_flight = getattr(self.engine, "in_flight", None)
            if in_flight is not None:  # per-request engine: requests in the system right now
                row["in_flight"] = len(in_flight)
            row["chaos_active"] = ",".join(a.ref for a in chaos if a.at <= now < a.end)
            row["cost"] = round(self.cost, 4)
            row["cost_on_demand"] = round(self.cost_on_demand, 4)
            self.rows.append(row)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)
