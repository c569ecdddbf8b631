"""Flow fidelity: a full match day in seconds, one simulated second (tick) at a time.

Per tick, the arrivals of every step are counted (Poisson at the wave's rate), routed to zones
and turned into arrivals at every station (service pool, database) through the call paths and
cache hit ratios. Each pool of N identical instances is represented by a few sampled instances,
each fed its 1/N share of the arrivals; the Kiefer–Wolfowitz kernel (simulator.kernel) gives
their exact FIFO waits, and their free-at state carries over between ticks, so an overloaded
pool builds a backlog instead of breaking a closed form. At high rates only the first part of a
tick is simulated discretely (at most ``MAX_ARRIVALS`` per sampled instance) and the rest of the
tick's work is added to the servers as fluid, which conserves work exactly.

Step latencies are then composed from the stations' sojourn samples along each call path
(sequential hops add, parallel ones and fan-outs take the maximum, caches hit or miss), plus the
mobile link, on ``SAMPLES`` draws per step and zone, weighted so the counts are exact. They are
stored as per-second log-bucket histograms (≤ 1 % resolution). Hops are treated as independent
given the tick, as in a Jackson network; the request fidelity has no such assumption, and the
tests hold the two to each other.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Iterator

import numpy as np
import pandas as pd
import simpy

from reports import histogram
from scenarios import Scenario
from simulator import policy
from simulator.calls import Hop, step_plans
from simulator.kernel import fifo_starts
from simulator.network import Links, link_latency_ms
from simulator.workload import Workload
from simulator.world import Instance, World

SAMPLED_INSTANCES = 2
MAX_ARRIVALS = 192
SAMPLES = 48


@dataclasses.dataclass
class Station:
    """A queue in the flow model: a pool of identical instances (or a database's connections)."""

    kind: str
    name: str
    zone: str
    servers: int
    mean_s: float
    row: int  # first row of its sampled instances in the shared free-at array
    instances: int = 0
    arrivals: float = 0.0  # this tick
    sojourn: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    utilisation: float = 0.0
    backlog: float = 0.0


class FlowEngine:
    """The per-tick data plane; implements :class:`simulator.world.Engine`."""

    fidelity = "flow"

    def __init__(self, scenario: Scenario, world: World, rng: np.random.Generator):
        self.scenario, self.world, self.env, self.rng = scenario, world, world.env, rng
        self.workload = Workload.of(scenario)
        self.links = Links(scenario)
        self.plans = step_plans(scenario)
        self.steps = list(scenario.topology.steps)
        topo = scenario.topology
        self.stations: dict[tuple[str, str, str], Station] = {}
        row = 0
        for (service, zone) in world.instances:
            spec = topo.services[service]
            self.stations[("service", service, zone)] = Station(
                "service", service, zone, spec.concurrency, spec.service_time_ms.mean / 1000, row)
            row += SAMPLED_INSTANCES
        for name, db in topo.databases.items():
            self.stations[("db", name, "")] = Station(
                "db", name, "", db.max_connections, db.service_time_ms.mean / 1000, row,
                instances=1)
            row += 1
        width = max(s.servers for s in self.stations.values())
        self.free_at = np.zeros((row, width))
        self.usable = np.zeros(row, dtype=np.int64)
        for st in self.stations.values():
            count = 1 if st.kind == "db" else SAMPLED_INSTANCES
            self.usable[st.row:st.row + count] = st.servers
        self.service_dists = {("service", n): s.service_time_ms for n, s in topo.services.items()}
        self.service_dists.update({("db", n): d.service_time_ms for n, d in topo.databases.items()})
        self.cache_dists = {n: c.service_time_ms for n, c in topo.caches.items()}
        self.arrived: collections.Counter[str] = collections.Counter()
        self.completed: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self._rows: list[tuple[np.ndarray, ...]] = []
        self._zones = [""] + list(world.zones)
        self._zone_index = {z: i for i, z in enumerate(self._zones)}
        self._step_index = {s: i for i, s in enumerate(self.steps)}
        self._pending_fluid: list[tuple[int, float, float]] = []

    # -- Engine protocol -------------------------------------------------------------------------
    def instance_ready(self, inst: Instance) -> None:
        self.stations[("service", inst.service, inst.zone)].instances += 1

    def instance_gone(self, inst: Instance, lost: bool) -> None:
        st = self.stations[("service", inst.service, inst.zone)]
        st.instances = max(0, st.instances - 1)
        # Requests in flight in a lost instance are not modelled one by one here: the requests
        # routed to a lost zone until the edge ejects it (policy.ZONE_DETECTION_S) time out and
        # are retried, which is where nearly all of a zone loss's failed attempts are.
        if st.instances == 0:
            self.free_at[st.row:st.row + SAMPLED_INSTANCES] = 0.0

    def utilisation(self, inst: Instance, since: float) -> float | None:
        return self.stations[("service", inst.service, inst.zone)].utilisation

    def database_down(self, name: str) -> None:
        st = self.stations[("db", name, "")]
        self.free_at[st.row] = 0.0  # queued queries die with the primary

    # -- visit rates --------------------------------------------------------------------------
    def _visits(self, hops: tuple[Hop, ...], zone: str, mult: float,
                out: collections.Counter) -> None:
        """Expected station visits per request along ``hops`` (cache hits at their current ratio)."""
        for hop in hops:
            m = mult * hop.fanout
            if hop.kind == "service":
                out[("service", hop.name, zone)] += m
            elif hop.kind == "db":
                out[("db", hop.name, "")] += m * hop.queries
            else:
                hit = self.world.caches[hop.name].hit(self.env.now)
                self._visits(hop.on_miss, zone, m * (1 - hit), out)
            self._visits(hop.calls, zone, m, out)

    # -- one tick --------------------------------------------------------------------------------
    def _queue_tick(self, now: float, visits: collections.Counter) -> None:
        arrivals, services, pools = [], [], []
        tick_starts: list[tuple[Station, int, int, int]] = []
        offset = 0
        for key, st in self.stations.items():
            expected = visits.get(key, 0.0)
            st.arrivals = float(self.rng.poisson(expected)) if expected > 0 else 0.0
            n = st.instances if st.kind == "service" else 1
            st.sojourn = np.zeros(0)
            if n == 0 or st.arrivals == 0:
                st.utilisation = 0.0 if st.arrivals == 0 else 1.0
                continue
            sampled = min(n, SAMPLED_INSTANCES) if st.kind == "service" else 1
            per_instance = st.arrivals / n
            st.utilisation = min(1.0, per_instance * st.mean_s / st.servers)
            dist = self.service_dists[(st.kind, st.name)]
            for j in range(sampled):
                count = int(self.rng.poisson(per_instance))
                fraction = min(1.0, MAX_ARRIVALS / count) if count else 1.0
                k = int(round(count * fraction))
                if k == 0:
                    continue
                times = now + np.sort(self.rng.random(k)) * fraction
                arrivals.append(times)
                services.append(dist.sample(self.rng, k) / 1000)
                pools.append(np.full(k, st.row + j, dtype=np.int64))
                tick_starts.append((st, offset, k, st.row + j))
                offset += k
                if fraction < 1.0:
                    # The rest of the tick's arrivals, as fluid work per server.
                    rest = (count - k) * st.mean_s / st.servers
                    self._pending_fluid.append((st.row + j, now + fraction, rest))
        if not arrivals:
            return
        a = np.concatenate(arrivals)
        s = np.concatenate(services)
        p = np.concatenate(pools)
        # The kernel takes arrivals in time order (each pool's order is what matters).
        order = np.argsort(a, kind="stable")
        starts = np.empty_like(a)
        starts[order] = fifo_starts(a[order], s[order], p[order], self.free_at, self.usable)
        for row, window_end, rest in self._pending_fluid:
            # Fluid queue over the rest of the tick: the backlog left by the sampled window plus
            # the remaining work, less the time there is to serve it (work is conserved).
            servers = self.free_at[row, : self.usable[row]]
            backlog = np.maximum(servers - window_end, 0.0) + rest - (now + 1 - window_end)
            servers[:] = now + 1 + np.maximum(backlog, 0.0)
        self._pending_fluid.clear()
        sojourn = starts - a + s
        by_station: dict[int, list[np.ndarray]] = collections.defaultdict(list)
        for st, start, k, _row in tick_starts:
            by_station[id(st)].append(sojourn[start:start + k])
        for st in self.stations.values():
            parts = by_station.get(id(st))
            if parts:
                st.sojourn = np.concatenate(parts)
                waits = np.maximum(self.free_at[st.row:st.row + 1, : st.servers] - (now + 1), 0)
                st.backlog = float(waits.sum() / st.mean_s) * max(1, st.instances)

    def _compose(self, hops: tuple[Hop, ...], zone: str, n: int, parallel: bool,
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(latency s, failed) of ``n`` samples through ``hops``."""
        total = np.zeros(n)
        failed = np.zeros(n, dtype=bool)
        for hop in hops:
            lat, bad = self._hop(hop, zone, n)
            for _ in range(hop.fanout - 1):
                more, more_bad = self._hop(hop, zone, n)
                lat, bad = np.maximum(lat, more), bad | more_bad
            total = np.maximum(total, lat) if parallel else total + lat
            failed |= bad
        return total, failed

    def _hop(self, hop: Hop, zone: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        if hop.kind == "cache":
            cache = self.world.caches[hop.name]
            lat = self.cache_dists[hop.name].sample(rng, n) / 1000
            miss = rng.random(n) >= cache.hit(self.env.now)
            if not cache.available:
                lat[:] = 0.0
            bad = np.zeros(n, dtype=bool)
            if hop.on_miss and miss.any():
                extra, extra_bad = self._compose(hop.on_miss, zone, n, hop.parallel)
                lat = lat + np.where(miss, extra, 0.0)
                bad |= miss & extra_bad
        elif hop.kind == "db":
            st = self.stations[("db", hop.name, "")]
            if not self.world.databases[hop.name].up:
                return np.full(n, policy.REFUSED_S), np.ones(n, dtype=bool)
            lat = sum(self._draw(st, n) for _ in range(hop.queries))
            bad = np.zeros(n, dtype=bool)
        else:
            st = self.stations[("service", hop.name, zone)]
            if st.instances == 0:
                return np.full(n, policy.REFUSED_S), np.ones(n, dtype=bool)
            lat = self._draw(st, n)
            bad = np.zeros(n, dtype=bool)
        if hop.calls:
            extra, extra_bad = self._compose(hop.calls, zone, n, hop.parallel)
            lat, bad = lat + extra, bad | extra_bad
        return lat, bad

    def _draw(self, st: Station, n: int) -> np.ndarray:
        if len(st.sojourn):
            return st.sojourn[self.rng.integers(0, len(st.sojourn), n)]
        dist = self.service_dists[(st.kind, st.name)]
        return dist.sample(self.rng, n) / 1000  # idle station: no wait

    def _tick(self, now: float) -> None:
        zones = self.world.routed_zones()
        rates = {s: self.workload.rate(s, now + 0.5) for s in self.steps}
        counts = {s: int(self.rng.poisson(r)) if r > 0 else 0 for s, r in rates.items()}
        per_zone: dict[tuple[str, str], int] = {}
        for step, count in counts.items():
            self.arrived[step] += count
            if not zones:
                if count:
                    self._record(step, "", now, count, np.full(1, 0.0), np.ones(1, dtype=bool))
                continue
            split = self.rng.multinomial(count, [1 / len(zones)] * len(zones))
            for zone, c in zip(zones, split):
                per_zone[(step, zone)] = int(c)
        # Requests routed to a zone that is lost but not yet ejected are retried elsewhere.
        up = [z for z in zones if self.world.zones[z].up]
        effective: dict[tuple[str, str], tuple[int, int]] = {}
        for (step, zone), c in per_zone.items():
            if self.world.zones[zone].up or not up:
                key = (step, zone)
                first, retried = effective.get(key, (0, 0))
                effective[key] = (first + c, retried)
            else:
                split = self.rng.multinomial(c, [1 / len(up)] * len(up))
                for other, r in zip(up, split):
                    first, retried = effective.get((step, other), (0, 0))
                    effective[(step, other)] = (first, retried + int(r))
        visits: collections.Counter = collections.Counter()
        for (step, zone), (first, retried) in effective.items():
            if first + retried:
                self._visits(self.plans[step], zone, float(first + retried), visits)
        self._queue_tick(now, visits)
        for (step, zone), (first, retried) in effective.items():
            total = first + retried
            if total == 0:
                continue
            m = min(total, SAMPLES)
            lat, bad = self._compose(self.plans[step], zone, m, False)
            weights = self.rng.multinomial(total, [1 / m] * m)
            # The share of requests that first hit a dead zone waited for an attempt timeout.
            delay = np.where(self.rng.random(m) < retried / total,
                             policy.ATTEMPT_TIMEOUT_S + np.mean(policy.BACKOFF_S), 0.0)
            # A failed attempt is retried once; a database that refuses refuses again.
            delay = delay + np.where(bad, policy.REFUSED_S + np.mean(policy.BACKOFF_S), 0.0)
            self._record(step, zone, now, None, lat + delay, bad, weights=weights)

    def _record(self, step: str, zone: str, now: float, count: int | None, latency_s: np.ndarray,
                failed: np.ndarray, weights: np.ndarray | None = None) -> None:
        if weights is None:
            weights = np.full(len(latency_s), count // len(latency_s))
            weights[: count % len(latency_s)] += 1
        spec = self.scenario.topology.steps[step]
        links = self.rng.choice(len(self.links.names), len(latency_s), p=self.links.shares)
        total_ms = latency_s * 1000
        for li in np.unique(links):
            mask = links == li
            profile = self.links.profile(self.links.names[li], now)
            total_ms[mask] += link_latency_ms(profile, spec, self.rng, int(mask.sum()))
        ok = ~failed
        timeout = total_ms > policy.CLIENT_TIMEOUT_S * 1000
        total_ms = np.where(timeout, policy.CLIENT_TIMEOUT_S * 1000, total_ms)
        ok &= ~timeout
        good = int(weights[ok].sum())
        self.completed[step] += good
        self.failed[step] += int(weights.sum()) - good
        if spec.write:
            self.world.writes_acknowledged += good
        # One row per weighted sample: the histogram reader merges equal buckets, so there is
        # no need to aggregate here (and per-tick pandas work would dominate the run time).
        keep = weights > 0
        n = int(keep.sum())
        self._rows.append((np.full(n, int(now)), np.full(n, self._step_index[step]),
                           np.full(n, self._zone_index[zone]), links[keep], ok[keep],
                           histogram.bucket_of(total_ms[keep]), weights[keep]))

    # -- processes ---------------------------------------------------------------------------
    def arrivals(self, until: float) -> Iterator[simpy.Event]:
        """SimPy process: one tick per simulated second."""
        while self.env.now < until:
            self._tick(self.env.now)
            yield self.env.timeout(1.0)

    def pool_stats(self, service: str, zone: str) -> tuple[float, int]:
        st = self.stations[("service", service, zone)]
        return st.utilisation, int(round(st.backlog))

    def time_out_stragglers(self) -> None:
        """Nothing is left in flight between ticks in the flow model."""

    def conservation(self) -> dict[str, int]:
        return {"arrived": sum(self.arrived.values()), "completed": sum(self.completed.values()),
                "failed": sum(self.failed.values()), "in_flight": 0}

    def write_requests(self, writer) -> None:
        """Store the per-second histograms (``requests_hist.parquet``)."""
        cols = [np.concatenate(c) if self._rows else np.zeros(0, dtype=int)
                for c in zip(*self._rows)] if self._rows else [np.zeros(0, dtype=int)] * 7
        second, step, zone, link, ok, bucket, count = cols
        frame = pd.DataFrame({
            "second": second.astype(np.int64),
            "step": pd.Categorical.from_codes(step.astype(int), self.steps),
            "zone": pd.Categorical.from_codes(zone.astype(int), self._zones),
            "link": pd.Categorical.from_codes(link.astype(int), self.links.names),
            "ok": ok.astype(bool), "bucket": bucket.astype(np.int32),
            "count": count.astype(np.int64)})
        writer.write_request_histogram(frame)
