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
from typing import Iterator

import numpy as np
import pandas as pd
import simpy

from reports import histogram
from scenarios import Scenario
from simulator import policy
from simulator.calls import Hop, databases_of, step_plans
from simulator.kernel import fifo_starts
from simulator.network import Links, StepTable, latencies_ms
from simulator.workload import Workload
from simulator.world import Instance, World

SAMPLED_INSTANCES = 2
MAX_ARRIVALS = 400
SAMPLES = 48
BUFFER = 1 << 16
_BACKOFF = sum(policy.BACKOFF_S) / 2


@dataclasses.dataclass
class Station:
    """A queue in the flow model: a pool of identical instances (or a database's connections)."""

    kind: str
    name: str
    zone: str
    servers: int
    mean_s: float
    row: int  # first row of its sampled instances in the shared free-at array
    key: tuple[str, str] = ("", "")  # (kind, name): which service-time distribution
    instances: int = 0
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
                "service", service, zone, spec.concurrency, spec.service_time_ms.mean / 1000, row,
                key=("service", service))
            row += SAMPLED_INSTANCES
        for name, db in topo.databases.items():
            self.stations[("db", name, "")] = Station(
                "db", name, "", db.max_connections, db.service_time_ms.mean / 1000, row,
                key=("db", name), instances=1)
            row += 1
        width = max(s.servers for s in self.stations.values())
        self.free_at = np.zeros((row, width))
        self.usable = np.zeros(row, dtype=np.int64)
        self._mean_of_row = np.zeros(row)
        for st in self.stations.values():
            count = 1 if st.kind == "db" else SAMPLED_INSTANCES
            self.usable[st.row:st.row + count] = st.servers
            self._mean_of_row[st.row:st.row + count] = st.mean_s
        self.service_dists = {("service", n): s.service_time_ms for n, s in topo.services.items()}
        self.service_dists.update({("db", n): d.service_time_ms for n, d in topo.databases.items()})
        self.cache_dists = {n: c.service_time_ms for n, c in topo.caches.items()}
        self._buffers: dict[tuple[str, str], np.ndarray] = {}
        self._empty = np.zeros(0)
        self.arrived: collections.Counter[str] = collections.Counter()
        self.completed: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self._rows: list[tuple[np.ndarray, ...]] = []
        self._zones = [""] + list(world.zones)
        self._zone_index = {z: i for i, z in enumerate(self._zones)}
        self._step_index = {s: i for i, s in enumerate(self.steps)}
        self._step_table = StepTable.of([topo.steps[s] for s in self.steps])
        self._writes = [databases_of(self.plans[s]) if topo.steps[s].write else None
                        for s in self.steps]

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
                out[("service", hop.name, self._home(hop.name, zone))] += m
            elif hop.kind == "db":
                out[("db", hop.name, "")] += m * hop.queries
            else:
                hit = self.world.caches[hop.name].hit(self.env.now)
                self._visits(hop.on_miss, zone, m * (1 - hit), out)
            self._visits(hop.calls, zone, m, out)

    # -- one tick --------------------------------------------------------------------------------
    def _queue_tick(self, now: float, visits: collections.Counter) -> None:
        """Feed this tick's arrivals to every station's sampled instances through the kernel."""
        live: list[tuple[Station, int]] = []
        rows, rates = [], []
        for key, st in self.stations.items():
            expected = visits.get(key, 0.0)
            n = st.instances if st.kind == "service" else 1
            st.sojourn = self._empty
            if n == 0 or expected <= 0:
                st.utilisation = 0.0 if expected <= 0 else 1.0
                continue
            sampled = min(n, SAMPLED_INSTANCES) if st.kind == "service" else 1
            per_instance = expected / n
            st.utilisation = min(1.0, per_instance * st.mean_s / st.servers)
            live.append((st, sampled))
            rows.extend(range(st.row, st.row + sampled))
            rates.extend([per_instance] * sampled)
        if not live:
            return
        pool_rows = np.array(rows, dtype=np.int64)
        counts = self.rng.poisson(np.array(rates))
        fraction = np.where(counts > MAX_ARRIVALS, MAX_ARRIVALS / np.maximum(counts, 1), 1.0)
        taken = np.minimum(counts, MAX_ARRIVALS)
        total = int(taken.sum())
        pool = np.repeat(pool_rows, taken)
        arrivals = now + self._sorted_uniforms(taken) * np.repeat(fraction, taken)
        services = np.empty(total)
        ends = np.cumsum(taken)
        bounds: list[tuple[Station, int, int]] = []
        i = 0
        for st, sampled in live:
            start = int(ends[i - 1]) if i else 0
            end = int(ends[i + sampled - 1])
            services[start:end] = self._service_draws(st, end - start)
            bounds.append((st, start, end))
            i += sampled
        starts = fifo_starts(arrivals, services, pool, self.free_at, self.usable, validate=False)
        sojourn = starts - arrivals + services
        # Past MAX_ARRIVALS only the first part of the tick was simulated. The rest of it joins
        # the next window: a backlog the window left is kept (successive windows then form one
        # sample path at this tick's rate, which is what stationary waits need), grows by the
        # fluid excess when the rest of the tick is overloaded, and drains at the fluid rate
        # when it is far above the waits the window saw (after an overload).
        for p in np.flatnonzero(fraction < 1.0):
            row = pool_rows[p]
            width = self.usable[row]
            window_end = now + fraction[p]
            gap = now + 1 - window_end
            work = (counts[p] - taken[p]) * self._mean_of_row[row] / width
            segment = slice(int(ends[p] - taken[p]), int(ends[p]))
            typical = 4 * float(np.mean(starts[segment] - arrivals[segment] + services[segment]))
            servers = self.free_at[row, :width]
            # Measured from the window's last arrival: the next window's first arrival then
            # follows it by one interarrival time, as in an unbroken path.
            backlog = servers - arrivals[segment][-1]
            if work >= gap:
                carried = np.maximum(backlog, 0.0) + (work - gap)
            else:
                carried = np.maximum(backlog - (gap - work), np.minimum(backlog, typical))
            servers[:] = now + 1 + carried
        for st in self.stations.values():
            st.backlog = 0.0
        for st, start, end in bounds:
            st.sojourn = sojourn[start:end]
            # Requests waiting (not in service) at the end of the tick, per sampled pod, scaled
            # to the pool: residual work in mean service times, less one per busy worker.
            rows = 1 if st.kind == "db" else min(st.instances, SAMPLED_INSTANCES)
            left = np.maximum(self.free_at[st.row:st.row + rows, : st.servers] - (now + 1), 0.0)
            waiting = np.maximum(left.sum(axis=1) / st.mean_s - (left > 0).sum(axis=1), 0.0)
            st.backlog = float(waiting.mean()) * (st.instances if st.kind == "service" else 1)

    def _sorted_uniforms(self, sizes: np.ndarray) -> np.ndarray:
        """Sorted uniforms on [0, 1) for each segment of ``sizes``, without sorting: normalised
        partial sums of exponentials (the spacings of uniform order statistics)."""
        seg = sizes + 1
        e = self.rng.standard_exponential(int(seg.sum()))
        csum = np.cumsum(e)
        ends = np.cumsum(seg)
        before = csum[ends - seg] - e[ends - seg]
        span = csum[ends - 1] - before
        values = (csum - np.repeat(before, seg)) / np.repeat(span, seg)
        last = np.zeros(len(e), dtype=bool)
        last[ends - 1] = True
        return values[~last]

    def _service_draws(self, st: Station, k: int) -> np.ndarray:
        """``k`` service times (s) of a station, sliced from a long pre-drawn buffer."""
        buffer = self._buffers.get(st.key)
        if buffer is None:
            dist = self.service_dists[st.key]
            buffer = self._buffers[st.key] = dist.sample(self.rng, BUFFER) / 1000
        start = int(self.rng.integers(0, BUFFER - k)) if k < BUFFER else 0
        return buffer[start:start + k]

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
            st = self.stations[("service", hop.name, self._home(hop.name, zone))]
            if st.instances == 0:
                return np.full(n, policy.REFUSED_S), np.ones(n, dtype=bool)
            lat = self._draw(st, n)
            bad = np.zeros(n, dtype=bool)
        if hop.calls:
            extra, extra_bad = self._compose(hop.calls, zone, n, hop.parallel)
            lat, bad = lat + extra, bad | extra_bad
        return lat, bad

    def _home(self, service: str, zone: str) -> str:
        """The zone whose pods of ``service`` serve calls from ``zone``: its own, or — for a
        service deployed in some regions only — the first serving zone that has it."""
        if ("service", service, zone) in self.stations:
            return zone
        for other in self.world.routed_zones():
            st = self.stations.get(("service", service, other))
            if st is not None and st.instances and self.world.zones[other].up:
                return other
        return next(z for (k, s, z) in self.stations if k == "service" and s == service)

    def _draw(self, st: Station, n: int) -> np.ndarray:
        if len(st.sojourn):
            return st.sojourn[self.rng.integers(0, len(st.sojourn), n)]
        dist = self.service_dists[(st.kind, st.name)]
        return dist.sample(self.rng, n) / 1000  # idle station: no wait

    def _tick(self, now: float) -> None:
        self._table = self.links.table(now)
        zones = self.world.routed_zones()
        rates = self.workload.rates(now + 0.5)
        batch: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]] = []
        per_zone: dict[tuple[str, str], int] = {}
        for step, rate in rates.items():
            count = int(self.rng.poisson(rate)) if rate > 0 else 0
            self.arrived[step] += count
            if not zones:
                if count:  # nowhere to send it: every request fails at once
                    batch.append((self._step_index[step], 0, np.zeros(1),
                                  np.ones(1, dtype=bool), np.array([count])))
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
        # Stations are fed at the expected rates: their arrivals are drawn (Poisson) once, in
        # _queue_tick; feeding them the realised counts would draw twice and over-disperse them.
        visits: collections.Counter = collections.Counter()
        if zones:
            targets = up or zones
            for step, rate in rates.items():
                for zone in targets:
                    self._visits(self.plans[step], zone, rate / len(targets), visits)
        self._queue_tick(now, visits)
        for (step, zone), (first, retried) in effective.items():
            total = first + retried
            if total == 0:
                continue
            m = min(total, SAMPLES)
            lat, bad = self._compose(self.plans[step], zone, m, False)
            weights = np.full(m, total // m)
            weights[: total % m] += 1  # samples are random, so which ones carry the +1 is too
            # The share of requests that first hit a dead zone waited for an attempt timeout.
            delay = np.where(self.rng.random(m) < retried / total,
                             policy.ATTEMPT_TIMEOUT_S + _BACKOFF, 0.0)
            # A failed attempt is retried once; a database that refuses refuses again.
            delay = delay + np.where(bad, policy.REFUSED_S + _BACKOFF, 0.0)
            batch.append((self._step_index[step], self._zone_index[zone], lat + delay, bad,
                          weights))
        if batch:
            self._record(now, batch)

    def _record(self, now: float, batch: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]
                ) -> None:
        """Add the mobile link to a tick's samples and keep them as weighted histogram rows."""
        sizes = [len(b[2]) for b in batch]
        step = np.repeat([b[0] for b in batch], sizes)
        zone = np.repeat([b[1] for b in batch], sizes)
        latency_s = np.concatenate([b[2] for b in batch])
        ok = ~np.concatenate([b[3] for b in batch])
        weights = np.concatenate([b[4] for b in batch])
        links = self.rng.choice(len(self.links.names), len(latency_s), p=self.links.shares)
        total_ms = latency_s * 1000 + latencies_ms(self._table, links, self._step_table, step,
                                                   self.rng)
        timeout = total_ms > policy.CLIENT_TIMEOUT_S * 1000
        total_ms = np.where(timeout, policy.CLIENT_TIMEOUT_S * 1000, total_ms)
        ok &= ~timeout
        good = np.bincount(step, weights=weights * ok, minlength=len(self.steps))
        every = np.bincount(step, weights=weights, minlength=len(self.steps))
        for i in np.flatnonzero(every):
            name = self.steps[i]
            self.completed[name] += int(good[i])
            self.failed[name] += int(every[i] - good[i])
            if self._writes[i] is not None and good[i]:
                self.world.record_writes(self._writes[i], int(good[i]), now + 0.5)  # mid-tick
        # One row per weighted sample: the histogram reader merges equal buckets, so there is
        # no need to aggregate here (per-tick pandas work would dominate the run time).
        keep = weights > 0
        self._rows.append((np.full(int(keep.sum()), int(now)), step[keep], zone[keep],
                           links[keep], ok[keep], histogram.bucket_of(total_ms[keep]),
                           weights[keep]))

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
