"""Request fidelity: every request and push is a chain of discrete events on SimPy's clock.

Each pod is a :class:`Server` with ``concurrency`` workers and a FIFO queue. A step's call tree
is compiled once into a flat *program* of operations (visit a service, look up a cache and skip
its miss path on a hit, query a database, run branches in parallel); a request runs it as a
:class:`Thread` that advances until it must wait, and is resumed by a callback on a SimPy
timeout. No generator process per request, no closure per hop: that is what makes this engine
faster than one SimPy process per request (bench/bench_request.py). Latencies are exact: one
row per request.
"""

from __future__ import annotations

import bisect
import collections
from typing import Any, Iterator

import numpy as np
import simpy
from simpy.events import NORMAL

from scenarios import Scenario
from simulator import policy
from simulator.calls import Hop, databases_of, step_plans
from simulator.network import Links, StepTable, latencies_ms
from simulator.sampling import BlockSampler, UniformSampler
from simulator.workload import Workload
from simulator.world import Instance, World

LOST = "instance_lost"
SVC, CACHE, DB, PAR = range(4)
Program = tuple[tuple[Any, ...], ...]


class Server:
    """``slots`` workers and a FIFO queue; counts the work it started, for utilisation."""

    __slots__ = ("env", "slots", "busy", "queue", "running", "work", "marks")

    def __init__(self, env: simpy.Environment, slots: int):
        self.env, self.slots = env, slots
        self.busy = 0
        self.queue: collections.deque[Job] = collections.deque()
        # A dict, not a set: a kill must fail jobs in a reproducible order (the seed's promise).
        self.running: dict[Job, None] = {}
        self.work = 0.0  # service seconds started (utilisation over a window of many jobs)
        self.marks: collections.deque[tuple[float, float]] = collections.deque(maxlen=1024)

    def submit(self, job: "Job") -> None:
        if self.busy < self.slots:
            self._start(job)
        else:
            self.queue.append(job)

    def _start(self, job: "Job") -> None:
        self.busy += 1
        self.running[job] = None
        self.work += job.service
        self.env.schedule(job, NORMAL, job.service)

    def finish(self, job: "Job") -> None:
        self.busy -= 1
        del self.running[job]
        if self.queue:
            self._start(self.queue.popleft())
        job.thread.resume(True, "")

    def kill(self) -> None:
        """Every queued and running job fails now (power loss, partition, primary lost)."""
        jobs = list(self.running) + list(self.queue)
        self.running.clear()
        self.queue.clear()
        self.busy = 0
        for job in jobs:
            job.cancelled = True
        for job in jobs:
            job.thread.resume(False, LOST)

    def mark(self) -> None:
        """Checkpoint the work counter (once a simulated second)."""
        self.marks.append((self.env.now, self.work))

    def utilisation(self, since: float) -> float | None:
        """Busy share since ``since``; None when the server has no history that far back (a
        pod that just started: its metric is missing, not 0 %)."""
        times = [m[0] for m in self.marks]
        i = bisect.bisect_right(times, since) - 1
        if i < 0:
            return None
        t0, work0 = self.marks[i]
        span = self.env.now - t0
        return min(1.0, (self.work - work0) / (self.slots * span)) if span > 0 else 0.0


def _job_done(job: "Job") -> None:
    if not job.cancelled:
        job.server.finish(job)


class Job(simpy.events.Event):
    """One unit of work at a server, and the thread to resume when it ends.

    The job is its own completion event: scheduling it ``service`` seconds ahead costs one
    object instead of a job plus a Timeout plus a bound callback (this is the hot path).
    """

    def __init__(self, service: float, thread: "Thread", server: Server):
        # Event.__init__, inlined as SimPy's own Timeout does, for speed.
        self.env = server.env
        self.callbacks = [_job_done]
        self._value = None
        self._ok = True
        self.service, self.thread, self.server, self.cancelled = service, thread, server, False


def _request_begins(req: "Request") -> None:
    req.engine.arrive(req)


class Request(simpy.events.Event):
    """A bettor's request (or a push); as an event, it fires when the request is made."""

    def __init__(self, engine: "RequestEngine", step: str, link: int, network_ms: float):
        self.env = engine.env
        self.callbacks = [_request_begins]
        self._value = None
        self._ok = True
        self.engine, self.step, self.link, self.network_ms = engine, step, link, network_ms
        self.id = 0
        self.t0 = 0.0
        self.zone = ""
        self.attempts = 0
        self.attempt_start = 0.0
        self.finished = False


class Thread:
    """One attempt of a request running a program (or one parallel branch of it)."""

    __slots__ = ("engine", "req", "attempt", "program", "pc", "parent", "pending", "failure",
                 "queries_left", "db")

    def __init__(self, engine: "RequestEngine", req: Request, attempt: int, program: Program,
                 parent: "Thread | None" = None):
        self.engine, self.req, self.attempt, self.program = engine, req, attempt, program
        self.parent = parent
        self.pc = 0
        self.pending = 0
        self.failure = ""
        self.queries_left = 0
        self.db: Server | None = None

    def run(self) -> None:
        """Advance until the program must wait, fails, or ends."""
        engine, program, req = self.engine, self.program, self.req
        while self.pc < len(program):
            op = program[self.pc]
            self.pc += 1
            kind = op[0]
            if kind == SVC:
                pool = engine.zone_pools[req.zone].get(op[1]) or engine.elsewhere(op[1])
                if not pool:
                    self.end(False, "no_instance")
                    return
                # Each pod gets an even random share (as in the flow model, so the two agree):
                # Envoy's least-request balancing would do a little better than this.
                server = pool[0] if len(pool) == 1 else pool[int(engine.uniform() * len(pool))]
                server.submit(Job(op[2](), self, server))
                return
            if kind == CACHE:
                cache = engine.world.caches[op[1]]
                if not cache.available:
                    continue  # straight to the miss path
                if engine.uniform() < cache.hit(engine.env.now):
                    self.pc += op[3]
                engine.env.timeout(op[2]()).callbacks.append(self.wake)
                return
            if kind == DB:
                if not engine.world.databases[op[1]].up:
                    engine.env.timeout(policy.REFUSED_S).callbacks.append(self.refused)
                    return
                self.db = engine.db_servers[op[1]]
                self.queries_left = op[3] - 1
                self.db.submit(Job(op[2](), self, self.db))
                self.pc -= 1  # resumed at this op while queries are left
                return
            # PAR: run each branch as a child thread; resume when all have ended.
            self.pending = len(op[1])
            for branch in op[1]:
                Thread(engine, req, self.attempt, branch, parent=self).run()
            return
        self.end(True, "")

    def wake(self, _event: simpy.Event) -> None:
        self.run()

    def refused(self, _event: simpy.Event) -> None:
        self.end(False, "db_unavailable")

    def resume(self, ok: bool, error: str) -> None:
        """A job of this thread ended (ok, or failed with ``error``)."""
        if not ok:
            self.end(False, "db_unavailable" if self.db is not None and error == LOST else error)
            return
        if self.db is not None:
            if self.queries_left > 0 and self.engine.world.databases[
                    self.program[self.pc][1]].up:
                self.queries_left -= 1
                self.db.submit(Job(self.program[self.pc][2](), self, self.db))
                return
            self.db = None
            self.pc += 1
            if self.queries_left > 0:  # the primary went away between queries
                self.end(False, "db_unavailable")
                return
        self.run()

    def child_done(self, ok: bool, error: str) -> None:
        if not ok and not self.failure:
            self.failure = error
        self.pending -= 1
        if self.pending == 0:
            if self.failure:
                self.end(False, self.failure)
            else:
                self.run()

    def end(self, ok: bool, error: str) -> None:
        if self.parent is not None:
            self.parent.child_done(ok, error)
        else:
            self.engine.attempt_done(self.req, self.attempt, ok, error)


def compile_program(hops: tuple[Hop, ...], parallel: bool,
                    samplers: dict[tuple[str, str], BlockSampler]) -> Program:
    """A call list as a flat program (see the module docstring)."""
    if parallel and len(hops) > 1:
        return ((PAR, tuple(_compile_hop(h, samplers) for h in hops)),)
    return tuple(op for h in hops for op in _compile_hop(h, samplers))


def _compile_hop(hop: Hop, samplers: dict[tuple[str, str], BlockSampler]) -> Program:
    one = _compile_single(hop, samplers)
    return ((PAR, (one,) * hop.fanout),) if hop.fanout > 1 else one


def _compile_single(hop: Hop, samplers: dict[tuple[str, str], BlockSampler]) -> Program:
    sampler = samplers[(hop.kind, hop.name)]
    calls = compile_program(hop.calls, hop.parallel, samplers)
    if hop.kind == "service":
        return ((SVC, hop.name, sampler),) + calls
    if hop.kind == "cache":
        miss = compile_program(hop.on_miss, hop.parallel, samplers)
        return ((CACHE, hop.name, sampler, len(miss)),) + miss + calls
    return ((DB, hop.name, sampler, hop.queries),) + calls


class RequestEngine:
    """The per-request data plane; implements :class:`simulator.world.Engine`."""

    fidelity = "request"

    def __init__(self, scenario: Scenario, world: World, rng: np.random.Generator):
        self.scenario, self.world, self.env, self.rng = scenario, world, world.env, rng
        topo = scenario.topology
        self.workload = Workload.of(scenario)
        self.links = Links(scenario)
        self.steps = list(topo.steps)
        self._step_table = StepTable.of([topo.steps[s] for s in self.steps])
        plans = step_plans(scenario)
        self._writes = {s: databases_of(plans[s]) for s in self.steps if topo.steps[s].write}
        self.servers: dict[int, Server] = {}
        self.pools: dict[tuple[str, str], list[Server]] = {}
        # The same lists by zone, then service: the hot path looks pools up per hop.
        self.zone_pools: dict[str, dict[str, list[Server]]] = {z: {} for z in world.zones}
        self.db_servers = {name: Server(self.env, d.max_connections)
                           for name, d in topo.databases.items()}
        self.uniform = UniformSampler(rng)
        samplers = {(kind, name): BlockSampler(spec.service_time_ms, rng, 0.001)
                    for kind, specs in (("service", topo.services), ("cache", topo.caches),
                                        ("db", topo.databases))
                    for name, spec in specs.items()}
        self.programs = {step: compile_program(plan, False, samplers)
                         for step, plan in plans.items()}
        self._ids = 0
        self.in_flight: dict[int, Request] = {}
        self.rows: list[tuple[Any, ...]] = []
        self.arrived: collections.Counter[str] = collections.Counter()
        self.completed: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()

    # -- Engine protocol ---------------------------------------------------------------------
    def instance_ready(self, inst: Instance) -> None:
        server = Server(self.env, self.scenario.topology.services[inst.service].concurrency)
        self.servers[inst.id] = server
        pool = self.pools.setdefault((inst.service, inst.zone), [])
        self.zone_pools[inst.zone][inst.service] = pool
        pool.append(server)

    def instance_gone(self, inst: Instance, lost: bool) -> None:
        server = self.servers.pop(inst.id, None)
        if server is None:
            return
        self.pools[(inst.service, inst.zone)].remove(server)
        if lost:
            server.kill()
        # A drained pod takes no new work; what it has queued and running completes.

    def utilisation(self, inst: Instance, since: float) -> float | None:
        server = self.servers.get(inst.id)
        return server.utilisation(since) if server is not None else None

    def database_down(self, name: str) -> None:
        self.db_servers[name].kill()  # the promoted standby starts with empty queues

    def elsewhere(self, service: str) -> list[Server] | None:
        """Pods of ``service`` in another serving zone, for a zone that has none (a service
        deployed in some regions only is called across regions)."""
        for zone in self.world.routed_zones():
            pool = self.zone_pools[zone].get(service)
            if pool and self.world.zones[zone].up:
                return pool
        return None

    # -- requests ---------------------------------------------------------------------------------
    def arrive(self, req: Request) -> None:
        """``req`` starts now."""
        self._ids += 1
        req.id, req.t0 = self._ids, self.env.now
        self.in_flight[req.id] = req
        self.arrived[req.step] += 1
        self._attempt(req, exclude="")

    def _attempt(self, req: Request, exclude: str) -> None:
        zones = self.world.routed_zones()
        if exclude:
            # A retry goes to another zone that answers (as the flow model assumes).
            zones = [z for z in zones if z != exclude and self.world.zones[z].up] or zones
        if not zones:
            self._complete(req, False, "no_zone")
            return
        req.zone = zones[int(self.uniform() * len(zones))] if len(zones) > 1 else zones[0]
        req.attempts += 1
        req.attempt_start = self.env.now
        if not self.world.zones[req.zone].up:
            # Routed to a zone that is gone but not yet ejected: only a timeout tells.
            attempt = req.attempts
            self.env.timeout(policy.ATTEMPT_TIMEOUT_S).callbacks.append(
                lambda _e: self.attempt_done(req, attempt, False, "zone_lost"))
            return
        Thread(self, req, req.attempts, self.programs[req.step]).run()

    def attempt_done(self, req: Request, attempt: int, ok: bool, error: str) -> None:
        """An attempt of ``req`` ended: complete it, or retry it after a failure."""
        if req.finished or attempt != req.attempts:
            return
        if ok:
            self._complete(req, True, "")
            return
        if error == LOST:
            # The phone learns of a lost instance only when the attempt times out.
            wait = req.attempt_start + policy.ATTEMPT_TIMEOUT_S - self.env.now
            if wait > 0:
                self.env.timeout(wait).callbacks.append(
                    lambda _e: self._retry_or_fail(req, attempt, error))
                return
        self._retry_or_fail(req, attempt, error)

    def _retry_or_fail(self, req: Request, attempt: int, error: str) -> None:
        if req.finished or attempt != req.attempts:
            return
        if req.attempts <= policy.RETRIES:
            low, high = policy.BACKOFF_S
            failed_zone = req.zone
            self.env.timeout(low + (high - low) * self.uniform()).callbacks.append(
                lambda _e: self._attempt(req, exclude=failed_zone))
        else:
            self._complete(req, False, error)

    def _complete(self, req: Request, ok: bool, error: str) -> None:
        req.finished = True
        del self.in_flight[req.id]
        latency = (self.env.now - req.t0) * 1000 + req.network_ms
        if latency > policy.CLIENT_TIMEOUT_S * 1000:
            ok, error, latency = False, "timeout", policy.CLIENT_TIMEOUT_S * 1000
        if ok:
            self.completed[req.step] += 1
            if req.step in self._writes:
                self.world.record_writes(self._writes[req.step], 1, self.env.now)
        else:
            self.failed[req.step] += 1
        self.rows.append((req.t0, req.step, req.zone, req.link, latency, ok, error or None))

    def time_out_stragglers(self) -> None:
        """At the end: requests in flight longer than the client timeout are recorded as such."""
        for req in list(self.in_flight.values()):
            if self.env.now - req.t0 > policy.CLIENT_TIMEOUT_S:
                self._complete(req, False, "timeout")

    # -- arrivals --------------------------------------------------------------------------------
    def arrivals(self, until: float) -> Iterator[simpy.Event]:
        """SimPy process: each second, Poisson arrivals per step at that second's rate."""
        steps = self.steps
        while self.env.now < until:
            second = self.env.now
            rate_of = self.workload.rates(second + 0.5)
            counts = self.rng.poisson(np.array([rate_of[s] for s in steps]))
            total = int(counts.sum())
            if total:
                offsets = self.rng.random(total)
                which = np.repeat(np.arange(len(steps)), counts)
                links = self.rng.choice(len(self.links.names), total, p=self.links.shares)
                # The link as it is at the start of this second (degradations start on seconds).
                network = latencies_ms(self.links.table(second), links, self._step_table, which,
                                       self.rng)
                order = np.argsort(offsets)
                for offset, step, link, net in zip(offsets[order].tolist(),
                                                   which[order].tolist(),
                                                   links[order].tolist(),
                                                   network[order].tolist()):
                    self.env.schedule(Request(self, steps[step], link, net), NORMAL,
                                      offset)
            self.mark_servers()
            yield self.env.timeout(1.0)

    def mark_servers(self) -> None:
        for server in self.servers.values():
            server.mark()
        for server in self.db_servers.values():
            server.mark()

    # -- per-second observations for the timeline ------------------------------------------------
    def pool_stats(self, service: str, zone: str) -> tuple[float, int]:
        """(mean utilisation over the last second, queued requests) of a pool."""
        servers = self.pools.get((service, zone), [])
        if not servers:
            return 0.0, 0
        since = self.env.now - 1.0
        known = [u for u in (s.utilisation(since) for s in servers) if u is not None]
        return (float(np.mean(known)) if known else 0.0, sum(len(s.queue) for s in servers))

    # -- results ---------------------------------------------------------------------------------
    def conservation(self) -> dict[str, int]:
        """Request accounting: arrived = completed + failed + in flight."""
        return {"arrived": sum(self.arrived.values()), "completed": sum(self.completed.values()),
                "failed": sum(self.failed.values()), "in_flight": len(self.in_flight)}

    def finished_latencies_ms(self, ok_only: bool = True) -> np.ndarray:
        """Latencies of finished requests (the successful ones by default)."""
        return np.array([r[4] for r in self.rows if r[5] or not ok_only])

    def write_requests(self, writer) -> None:
        """Store one row per finished request (exact latencies)."""
        import pandas as pd

        frame = pd.DataFrame.from_records(
            self.rows, columns=["t", "step", "zone", "link", "latency_ms", "ok", "error"])
        frame["link"] = np.asarray(self.links.names, dtype=object)[frame["link"].to_numpy(int)] \
            if len(frame) else frame["link"]
        frame["endpoint"] = frame["step"].map(
            {name: s.endpoint for name, s in self.scenario.topology.steps.items()})
        writer.write_requests(frame)
