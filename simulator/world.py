"""The simulated infrastructure and its control plane, shared by both fidelities.

``World`` holds what exists — zones, service instances and their lifecycle, caches, databases —
and runs, as SimPy processes, everything that changes it: instance start-up, the autoscalers,
scheduled scaling and the chaos schedule. The data plane (an :class:`Engine`: per request, or per
tick) serves the requests; it is told when instances appear or vanish and is asked for their
utilisation, and that is all the two know of each other.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import simpy

from scenarios import Scenario
from scenarios.chaos import (CacheLoss, DbFailover, RegionFailover, RollingDeploy, ZoneOutage)
from scenarios.distributions import Dist
from simulator import policy
from simulator.hpa import Autoscaler, PodSample


@dataclasses.dataclass(eq=False)
class Instance:
    """One pod of a service in a zone."""

    id: int
    service: str
    zone: str
    started_at: float
    ready_at: float | None = None
    state: str = "starting"  # starting → ready (⇄ unreachable) → draining | dead

    @property
    def serving(self) -> bool:
        """Receives new requests."""
        return self.state == "ready"


@dataclasses.dataclass
class Zone:
    """An availability zone: powered, reachable, and when the edge noticed it was lost."""

    name: str
    region: str
    active: bool
    powered: bool = True
    reachable: bool = True
    lost_at: float | None = None
    faults: int = 0  # chaos actions holding the zone down now (they may overlap)

    @property
    def up(self) -> bool:
        return self.powered and self.reachable

    def routed(self, now: float) -> bool:
        """Whether the edge still sends this zone traffic at ``now`` (a loss takes time to see)."""
        if not self.active:
            return False
        return self.up or (self.lost_at is not None
                           and now < self.lost_at + policy.ZONE_DETECTION_S)


@dataclasses.dataclass
class CacheState:
    """A cache's availability and warmth; after a loss it refills with time constant ``ttl_s``."""

    hit_ratio: float
    ttl_s: float
    available: bool = True
    cold_since: float | None = None

    def hit(self, now: float) -> float:
        if not self.available:
            return 0.0
        if self.cold_since is None:
            return self.hit_ratio
        return self.hit_ratio * (1 - math.exp(-(now - self.cold_since) / self.ttl_s))


@dataclasses.dataclass
class DatabaseState:
    """Where a database's primary is and whether it answers."""

    name: str
    region: str
    up: bool = True
    failovers: int = 0


class Engine(Protocol):
    """What the control plane needs from a data plane."""

    def instance_ready(self, inst: Instance) -> None: ...

    def instance_gone(self, inst: Instance, lost: bool) -> None:
        """``inst`` takes no new work; if ``lost``, its in-flight work fails now."""

    def utilisation(self, inst: Instance, since: float) -> float | None:
        """Busy share of ``inst``'s workers since ``since`` (None if it cannot be measured)."""

    def database_down(self, name: str) -> None:
        """In-flight queries to database ``name`` fail now."""


class World:
    """State plus control plane. Create it, attach an engine, then ``start()`` and run the env."""

    def __init__(self, scenario: Scenario, env: simpy.Environment, rng: np.random.Generator):
        self.scenario = scenario
        self.env = env
        self.rng = rng
        self.engine: Engine | None = None
        self.events: list[dict[str, Any]] = []
        topo = scenario.topology
        self.zones = {f"{r}-{z}": Zone(f"{r}-{z}", r, reg.role == "active")
                      for r, reg in topo.regions.items() for z in reg.zones}
        self.instances: dict[tuple[str, str], list[Instance]] = {}
        self._ids = itertools.count()
        self.caches = {name: CacheState(c.hit_ratio, c.ttl_s) for name, c in topo.caches.items()}
        self.databases = {name: DatabaseState(name, d.region) for name, d in topo.databases.items()}
        self.autoscalers: dict[tuple[str, str], Autoscaler] = {}
        self._ready_count: dict[tuple[str, str], int] = {}
        self._routed: list[str] | None = None
        self._zone_pools: dict[str, list[tuple[str, str]]] = {z: [] for z in self.zones}
        self.desired: dict[tuple[str, str], int] = {}
        self.writes_acknowledged = 0
        self.writes_lost = 0
        self._recent_writes: dict[str, list[tuple[float, int]]] = {
            name: [] for name in topo.databases}
        for service, spec in topo.services.items():
            regions = spec.regions or list(topo.regions)
            for zone in self.zones.values():
                if zone.region in regions:
                    key = (service, zone.name)
                    self.instances[key] = []
                    self._ready_count[key] = 0
                    self._zone_pools[zone.name].append(key)
                    self.desired[key] = spec.instances
                    if service in scenario.autoscaling:
                        self.autoscalers[key] = Autoscaler(scenario.autoscaling[service],
                                                           service, zone.name)

    # -- events ---------------------------------------------------------------------------------
    def emit(self, kind: str, **fields: Any) -> None:
        """Record an event at the current simulated time."""
        self.events.append({"t": round(float(self.env.now), 6), "kind": kind, **fields})

    # -- instances --------------------------------------------------------------------------------
    def _startup(self, service: str) -> Dist:
        rule = self.scenario.autoscaling.get(service)
        return rule.startup_s if rule else Dist.model_validate(policy.DEFAULT_STARTUP)

    def start_instance(self, service: str, zone: str, *, ready_now: bool = False) -> Instance:
        """Create a pod; it becomes ready after its start-up delay (at once at time 0)."""
        inst = Instance(next(self._ids), service, zone, started_at=self.env.now)
        self.instances[(service, zone)].append(inst)
        if ready_now:
            self._ready(inst)
        else:
            delay = float(self._startup(service).sample(self.rng, 1)[0])
            self.env.process(self._become_ready(inst, delay))
        return inst

    def _become_ready(self, inst: Instance, delay: float) -> Iterator[simpy.Event]:
        yield self.env.timeout(delay)
        if inst.state == "starting" and self.zones[inst.zone].powered:
            self._ready(inst)

    def _ready(self, inst: Instance) -> None:
        self._reroute()
        inst.state = "ready"
        self._ready_count[(inst.service, inst.zone)] += 1
        if inst.ready_at is None:
            inst.ready_at = self.env.now
        assert self.engine is not None
        self.engine.instance_ready(inst)

    def stop_instance(self, inst: Instance, *, lost: bool) -> None:
        """Remove a pod: drained gracefully, or ``lost`` with its in-flight work."""
        if inst.state in ("dead", "draining"):
            return
        self._reroute()
        was_serving = inst.state == "ready"
        inst.state = "dead" if lost else "draining"
        if was_serving:
            self._ready_count[(inst.service, inst.zone)] -= 1
            assert self.engine is not None
            self.engine.instance_gone(inst, lost)
        if not lost:
            inst.state = "dead"  # a drained pod finishes its work off the books of routing

    def live(self, service: str, zone: str) -> list[Instance]:
        """Pods that exist (starting or ready) in a pool."""
        return [i for i in self.instances[(service, zone)]
                if i.state in ("starting", "ready", "unreachable")]

    def ready(self, service: str, zone: str) -> list[Instance]:
        return [i for i in self.instances[(service, zone)] if i.state == "ready"]

    def _resize(self, service: str, zone: str, target: int) -> None:
        live = self.live(service, zone)
        for _ in range(target - len(live)):
            self.start_instance(service, zone)
        # Scale-in removes the youngest pods first (the ReplicaSet controller prefers
        # not-ready and newer pods).
        for inst in sorted(live, key=lambda i: (i.state == "ready", -i.started_at))[
                : max(0, len(live) - target)]:
            self.stop_instance(inst, lost=False)

    # -- routing facts the engines use -----------------------------------------------------------
    def routed_zones(self) -> list[str]:
        """Zones the edge sends requests to now: a live zone once each of its pools has a ready
        pod (its health checks pass), and a lost zone until the loss is detected.

        Cached until something it depends on changes (the data plane asks per request).
        """
        if self._routed is None:
            now = self.env.now
            self._routed = [z.name for z in self.zones.values()
                            if z.routed(now) and (not z.up or self._serving(z.name))]
        return self._routed

    def _reroute(self, _event: Any = None) -> None:
        self._routed = None

    def _serving(self, zone: str) -> bool:
        return all(self._ready_count[key] > 0 for key in self._zone_pools[zone])

    def record_writes(self, databases: frozenset[str], count: int, done_at: float) -> None:
        """``count`` acknowledged writes (bets, payments) to ``databases`` at ``done_at``:
        counted for the end-of-run reconciliation, and lost if a primary dies before an
        asynchronous standby has them."""
        self.writes_acknowledged += count
        for name in databases:
            recent = self._recent_writes[name]
            recent.append((done_at, count))
            if len(recent) > 100_000:
                horizon = done_at - 60.0
                self._recent_writes[name] = [w for w in recent if w[0] >= horizon]

    # -- processes --------------------------------------------------------------------------------
    def start(self) -> None:
        """Create the initial pods (ready at time 0) and start every control process."""
        for (service, zone), count in self.desired.items():
            for _ in range(count):
                self.start_instance(service, zone, ready_now=True)
        for key, scaler in self.autoscalers.items():
            self.env.process(self._autoscale(key, scaler))
        for action in self.scenario.chaos:
            handler = self._chaos_handlers().get(action.action)
            self.env.process(self._chaos(action, handler))

    def _autoscale(self, key: tuple[str, str], scaler: Autoscaler) -> Iterator[simpy.Event]:
        service, zone = key
        period = scaler.rule.sync_period_s
        while True:
            yield self.env.timeout(period)
            z = self.zones[zone]
            if not z.powered or not z.active and not self.live(service, zone):
                continue  # nothing is rescheduled into a dead zone (AWS FIS power interruption)
            assert self.engine is not None
            since = self.env.now - period
            pods = [PodSample(i.started_at, i.ready_at,
                              self.engine.utilisation(i, since) if z.reachable and i.serving
                              else None)
                    for i in self.live(service, zone)]
            # Like the HPA, compare with the deployment's replica count, not the pods alive.
            decision = scaler.decide(self.env.now, self.desired[key], pods)
            if decision.desired != decision.current:
                self.events.append(decision.as_event())
                self.desired[key] = decision.desired
                self._resize(service, zone, decision.desired)

    def _chaos(self, action: Any, handler: Callable[[Any, bool], None] | None
               ) -> Iterator[simpy.Event]:
        yield self.env.timeout(action.at)
        self.emit("chaos_start", action=action.action, id=action.ref)
        if handler:
            handler(action, True)
        yield self.env.timeout(action.duration)
        if handler:
            handler(action, False)
        self.emit("chaos_end", action=action.action, id=action.ref)

    def _chaos_handlers(self) -> dict[str, Callable[[Any, bool], None]]:
        return {"zone_outage": self._zone_outage, "cache_loss": self._cache_loss,
                "db_failover": self._db_failover, "region_failover": self._region_failover,
                "rolling_deploy": self._rolling_deploy}

    def _lose_zone(self, zone: Zone, power: bool) -> None:
        zone.faults += 1
        if zone.lost_at is None:
            zone.lost_at = self.env.now
        self._reroute()
        # The edge ejects the zone when it notices the loss: routing changes again then.
        self.env.timeout(policy.ZONE_DETECTION_S).callbacks.append(self._reroute)
        if power:
            zone.powered = False
        else:
            zone.reachable = False
        for (service, z), pods in self.instances.items():
            if z == zone.name:
                for inst in list(pods):
                    if inst.state in ("starting", "ready", "unreachable"):
                        # A partitioned pod keeps running but nothing reaches it; a powered-off
                        # one is gone. Either way its in-flight work is lost.
                        self.stop_instance(inst, lost=True) if power else self._cut(inst)

    def _cut(self, inst: Instance) -> None:
        self._reroute()
        assert self.engine is not None
        if inst.state == "ready":
            self._ready_count[(inst.service, inst.zone)] -= 1
            self.engine.instance_gone(inst, True)
            inst.state = "unreachable"  # still running (and billed); back when the partition heals

    def _restore_zone(self, zone: Zone) -> None:
        zone.faults = max(0, zone.faults - 1)
        if zone.faults:
            return  # another chaos action still holds the zone down
        self._reroute()
        zone.powered = zone.reachable = True
        zone.lost_at = None
        for (service, z), pods in self.instances.items():
            if z != zone.name:
                continue
            for inst in pods:
                if inst.state == "unreachable":
                    self._ready(inst)  # partition healed
            # After a power loss the deployment recreates its pods, which start from scratch.
            missing = self.desired[(service, z)] - len(self.live(service, z))
            for _ in range(max(0, missing)):
                self.start_instance(service, z)

    def _zone_outage(self, action: ZoneOutage, begin: bool) -> None:
        zone = self.zones[action.zone]
        if begin:
            self._lose_zone(zone, power=action.mode == "power")
        else:
            self._restore_zone(zone)

    def _cache_loss(self, action: CacheLoss, begin: bool) -> None:
        cache = self.caches[action.cache]
        cache.available = not begin
        cache.cold_since = None if begin else self.env.now

    def _db_failover(self, action: DbFailover, begin: bool) -> None:
        if begin:
            # The standby lives in standby_region when one is given (cross-region DR), else
            # beside the primary (another zone of its region).
            spec = self.scenario.topology.databases[action.database]
            current = self.databases[action.database].region
            standby = spec.standby_region if spec.standby_region not in (None, current) else None
            self._fail_primary(action.database, standby or current)

    def _fail_primary(self, name: str, new_region: str) -> None:
        db = self.databases[name]
        spec = self.scenario.topology.databases[name]
        db.up = False
        assert self.engine is not None
        self.engine.database_down(name)
        if spec.replication == "async":
            # Acknowledged writes younger than the replication lag never reached the standby.
            horizon = self.env.now - spec.replication_lag_ms / 1000
            lost = sum(n for t, n in self._recent_writes[name] if t >= horizon)
            self.writes_lost += lost
        self.emit("db_primary_lost", database=name)
        self.env.process(self._promote(db, new_region, spec.failover_s))

    def _promote(self, db: DatabaseState, region: str, delay: float) -> Iterator[simpy.Event]:
        yield self.env.timeout(delay)
        db.up, db.region = True, region
        db.failovers += 1
        self.emit("db_promoted", database=db.name, region=region)

    def _region_failover(self, action: RegionFailover, begin: bool) -> None:
        source = [z for z in self.zones.values() if z.region == action.source]
        target = [z for z in self.zones.values() if z.region == action.target]
        self._reroute()
        if begin:
            for zone in target:
                zone.active = True
            for zone in source:
                self._lose_zone(zone, power=True)
            for name, spec in self.scenario.topology.databases.items():
                if self.databases[name].region == action.source:
                    self._fail_primary(name, spec.standby_region or action.target)
        else:
            for zone in source:
                self._restore_zone(zone)
            self.env.process(self._fail_back(source, target))

    def _fail_back(self, source: list[Zone], target: list[Zone]) -> Iterator[simpy.Event]:
        # The standby region keeps serving until the source region's zones pass their health
        # checks again: failing back must not leave a moment with nowhere to go.
        def back() -> list[Zone]:
            return [z for z in source if z.up]

        # (A source zone still down for another reason is not waited for.)
        while not back() or not all(self._serving(z.name) for z in back()):
            yield self.env.timeout(1.0)
        self._reroute()
        for zone in target:
            zone.active = self.scenario.topology.regions[zone.region].role == "active"

    def _rolling_deploy(self, action: RollingDeploy, begin: bool) -> None:
        if begin:
            self.env.process(self._roll(action))

    def _roll(self, action: RollingDeploy) -> Iterator[simpy.Event]:
        # Surge first, as a Deployment with maxSurge does: a batch's new pods start, and only
        # when they are ready are the old ones drained, so capacity never drops below normal.
        zones = [z for (s, z) in self.instances if s == action.service]
        old = {z: list(self.live(action.service, z)) for z in zones}
        batches = max(1, max(math.ceil(len(old[z]) / action.max_unavailable) for z in zones))
        gap = action.duration / batches
        for b in range(batches):
            started = self.env.now
            replaced = {z: old[z][b * action.max_unavailable:(b + 1) * action.max_unavailable]
                        for z in zones}
            fresh = [self.start_instance(action.service, z)
                     for z, pods in replaced.items() for _ in pods]
            while any(i.state == "starting" for i in fresh):
                yield self.env.timeout(0.5)
            for pods in replaced.values():
                for inst in pods:
                    if inst.state in ("starting", "ready"):
                        self.stop_instance(inst, lost=False)
            yield self.env.timeout(max(0.0, gap - (self.env.now - started)))

    # -- accounting -----------------------------------------------------------------------------
    def hourly_cost(self) -> tuple[float, float]:
        """Price per hour of every pod that exists now (starting pods are billed too): at each
        class's blend of spot and on-demand, and all on-demand."""
        prices = self.scenario.cost.classes
        services = self.scenario.topology.services
        blended = on_demand = 0.0
        for (service, zone) in self.instances:
            pods = len(self.live(service, zone))
            cls = prices[services[service].cost_class]
            blended += pods * cls.hourly()
            on_demand += pods * cls.on_demand
        return blended, on_demand
