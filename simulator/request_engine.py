"""Request fidelity: every request and push is a chain of discrete events on SimPy's clock.

Each instance is a :class:`Server` with ``concurrency`` workers and a FIFO queue. A request walks
its step's call tree hop by hop; a hop is a callback on a SimPy timeout, not a process, which is
what makes this engine several times faster than one SimPy process per request (bench/).
Latencies are exact: the recorder keeps one row per request.
"""

from __future__ import annotations

import bisect
import collections
from typing import Callable

import numpy as np
import simpy

from scenarios import Scenario
from simulator import policy
from simulator.calls import Hop, step_plans
from simulator.network import Links, StepTable, latencies_ms
from simulator.sampling import BlockSampler, UniformSampler
from simulator.workload import Workload
from simulator.world import Instance, World

Done = Callable[[bool, str], None]
LOST = "instance_lost"


class Job:
    """One unit of work at a server: its service time and whom to tell when it ends."""

    __slots__ = ("service", "done", "cancelled")

    def __init__(self, service: float, done: Done):
        self.service, self.done, self.cancelled = service, done, False


class Server:
    """``slots`` workers and a FIFO queue; tracks its busy-time integral for utilisation."""

    __slots__ = ("env", "slots", "busy", "queue", "running", "integral", "changed", "marks",
                 "accepting")

    def __init__(self, env: simpy.Environment, slots: int):
        self.env, self.slots = env, slots
        self.busy = 0
        self.queue: collections.deque[Job] = collections.deque()
        self.running: set[Job] = set()
        self.integral = 0.0
        self.changed = env.now
        self.marks: collections.deque[tuple[float, float]] = collections.deque(maxlen=1024)
        self.accepting = True

    def _account(self) -> None:
        now = self.env.now
        self.integral += self.busy * (now - self.changed)
        self.changed = now

    def submit(self, job: Job) -> None:
        if self.busy < self.slots:
            self._start(job)
        else:
            self.queue.append(job)

    def _start(self, job: Job) -> None:
        self._account()
        self.busy += 1
        self.running.add(job)
        self.env.timeout(job.service).callbacks.append(lambda _e, job=job: self._finish(job))

    def _finish(self, job: Job) -> None:
        if job.cancelled:
            return
        self._account()
        self.busy -= 1
        self.running.discard(job)
        if self.queue:
            self._start(self.queue.popleft())
        job.done(True, "")

    def load(self) -> int:
        return self.busy + len(self.queue)

    def kill(self) -> None:
        """Every queued and running job fails now (power loss, partition)."""
        self._account()
        self.accepting = False
        jobs = list(self.running) + list(self.queue)
        self.running.clear()
        self.queue.clear()
        self.busy = 0
        for job in jobs:
            job.cancelled = True
            job.done(False, LOST)

    def mark(self) -> None:
        """Checkpoint the busy integral (once a simulated second)."""
        self._account()
        self.marks.append((self.env.now, self.integral))

    def utilisation(self, since: float) -> float:
        self._account()
        times = [m[0] for m in self.marks]
        i = bisect.bisect_right(times, since) - 1
        t0, integral0 = self.marks[i] if i >= 0 else (self.changed, self.integral)
        span = self.env.now - t0
        return (self.integral - integral0) / (self.slots * span) if span > 0 else 0.0


class Request:
    """A bettor's request (or a push) in flight."""

    __slots__ = ("id", "step", "link", "t0", "zone", "attempts", "attempt_start", "network_ms",
                 "finished")

    def __init__(self, rid: int, step: str, link: int, t0: float, network_ms: float):
        self.id, self.step, self.link, self.t0, self.network_ms = rid, step, link, t0, network_ms
        self.zone = ""
        self.attempts = 0
        self.attempt_start = t0
        self.finished = False


class RequestEngine:
    """The per-request data plane; implements :class:`simulator.world.Engine`."""

    fidelity = "request"

    def __init__(self, scenario: Scenario, world: World, rng: np.random.Generator):
        self.scenario, self.world, self.env, self.rng = scenario, world, world.env, rng
        self.workload = Workload.of(scenario)
        self.links = Links(scenario)
        self.plans = step_plans(scenario)
        self.steps = list(scenario.topology.steps)
        self._step_table = StepTable.of([scenario.topology.steps[s] for s in self.steps])
        self.servers: dict[int, Server] = {}
        self.pools: dict[tuple[str, str], list[Server]] = collections.defaultdict(list)
        self.db_servers = {name: Server(self.env, d.max_connections)
                           for name, d in scenario.topology.databases.items()}
        self.uniform = UniformSampler(rng)
        self._samplers: dict[tuple[str, str], BlockSampler] = {}
        self._ids = 0
        self.in_flight: dict[int, Request] = {}
        self.rows: dict[str, list] = {k: [] for k in ("t", "step", "zone", "link", "latency_ms",
                                                      "ok", "error")}
        self.arrived = collections.Counter()
        self.completed = collections.Counter()
        self.failed = collections.Counter()

    # -- Engine protocol ---------------------------------------------------------------------
    def instance_ready(self, inst: Instance) -> None:
        server = Server(self.env, self.scenario.topology.services[inst.service].concurrency)
        self.servers[inst.id] = server
        self.pools[(inst.service, inst.zone)].append(server)

    def instance_gone(self, inst: Instance, lost: bool) -> None:
        server = self.servers.pop(inst.id, None)
        if server is None:
            return
        self.pools[(inst.service, inst.zone)].remove(server)
        if lost:
            server.kill()
        else:
            server.accepting = False  # drains: queued and running work completes

    def utilisation(self, inst: Instance, since: float) -> float | None:
        server = self.servers.get(inst.id)
        return server.utilisation(since) if server is not None else None

    def database_down(self, name: str) -> None:
        self.db_servers[name].kill()
        self.db_servers[name].accepting = True  # the promoted standby takes new connections

    # -- hops -----------------------------------------------------------------------------------
    def _sampler(self, hop: Hop) -> BlockSampler:
        key = (hop.kind, hop.name)
        sampler = self._samplers.get(key)
        if sampler is None:
            sampler = self._samplers[key] = BlockSampler(hop.service_time_ms, self.rng, 0.001)
        return sampler

    def _run_list(self, req: Request, hops: tuple[Hop, ...], parallel: bool, done: Done) -> None:
        if not hops:
            done(True, "")
        elif parallel:
            self._join(req, [lambda d, h=h: self._run_hop(req, h, d) for h in hops], done)
        else:
            self._run_seq(req, hops, 0, done)

    def _run_seq(self, req: Request, hops: tuple[Hop, ...], i: int, done: Done) -> None:
        if i == len(hops):
            done(True, "")
            return

        def next_hop(ok: bool, error: str) -> None:
            if ok:
                self._run_seq(req, hops, i + 1, done)
            else:
                done(False, error)

        self._run_hop(req, hops[i], next_hop)

    def _join(self, req: Request, branches: list[Callable[[Done], None]], done: Done) -> None:
        state = {"left": len(branches), "ok": True, "error": ""}

        def one(ok: bool, error: str) -> None:
            state["left"] -= 1
            if not ok and state["ok"]:
                state["ok"], state["error"] = False, error
            if state["left"] == 0:
                done(state["ok"], state["error"])

        for branch in branches:
            branch(one)

    def _run_hop(self, req: Request, hop: Hop, done: Done) -> None:
        if hop.fanout > 1:
            self._join(req, [lambda d: self._visit(req, hop, d)] * hop.fanout, done)
        else:
            self._visit(req, hop, done)

    def _visit(self, req: Request, hop: Hop, done: Done) -> None:
        if hop.kind == "service":
            pool = self.pools.get((hop.name, req.zone))
            if not pool:
                done(False, "no_instance")
                return
            a = pool[int(self.uniform() * len(pool))]
            b = pool[int(self.uniform() * len(pool))]
            server = a if a.load() <= b.load() else b  # power of two choices, least requests

            def served(ok: bool, error: str) -> None:
                if ok:
                    self._run_list(req, hop.calls, hop.parallel, done)
                else:
                    done(False, error)

            server.submit(Job(self._sampler(hop)(), served))
        elif hop.kind == "cache":
            cache = self.world.caches[hop.name]
            if not cache.available:
                self._run_list(req, hop.on_miss, hop.parallel, done)
                return
            hit = self.uniform() < cache.hit(self.env.now)
            follow = hop.calls if hit else hop.calls + hop.on_miss
            self.env.timeout(self._sampler(hop)()).callbacks.append(
                lambda _e: self._run_list(req, follow, hop.parallel, done))
        else:
            self._query(req, hop, hop.queries, done)

    def _query(self, req: Request, hop: Hop, left: int, done: Done) -> None:
        if left == 0:
            self._run_list(req, hop.calls, hop.parallel, done)
            return
        if not self.world.databases[hop.name].up:
            self.env.timeout(policy.REFUSED_S).callbacks.append(
                lambda _e: done(False, "db_unavailable"))
            return

        def answered(ok: bool, error: str) -> None:
            if ok:
                self._query(req, hop, left - 1, done)
            else:
                done(False, "db_unavailable" if error == LOST else error)

        self.db_servers[hop.name].submit(Job(self._sampler(hop)(), answered))

    # -- requests ---------------------------------------------------------------------------------
    def arrive(self, step: str, link: int, network: float) -> None:
        """A request of ``step`` from a user on link number ``link`` starts now; the mobile link
        will add ``network`` ms to what the servers take."""
        now = self.env.now
        self._ids += 1
        req = Request(self._ids, step, link, now, network)
        self.in_flight[req.id] = req
        self.arrived[step] += 1
        self._attempt(req, exclude="")

    def _attempt(self, req: Request, exclude: str) -> None:
        zones = self.world.routed_zones()
        choices = [z for z in zones if z != exclude] or zones
        if not choices:
            self._complete(req, False, "no_zone")
            return
        req.zone = choices[int(self.uniform() * len(choices))]
        req.attempts += 1
        req.attempt_start = self.env.now
        attempt = req.attempts
        if not self.world.zones[req.zone].up:
            # Routed to a zone that is gone but not yet ejected: only a timeout tells.
            self.env.timeout(policy.ATTEMPT_TIMEOUT_S).callbacks.append(
                lambda _e: self._attempt_done(req, attempt, False, "zone_lost"))
            return
        self._run_list(req, self.plans[req.step], False,
                       lambda ok, error: self._attempt_done(req, attempt, ok, error))

    def _attempt_done(self, req: Request, attempt: int, ok: bool, error: str) -> None:
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
            if self.scenario.topology.steps[req.step].write:
                self.world.record_write(self.env.now)
        else:
            self.failed[req.step] += 1
        rows = self.rows
        rows["t"].append(req.t0)
        rows["step"].append(req.step)
        rows["zone"].append(req.zone)
        rows["link"].append(self.links.names[req.link])
        rows["latency_ms"].append(latency)
        rows["ok"].append(ok)
        rows["error"].append(error or None)

    def time_out_stragglers(self) -> None:
        """At the end: requests in flight longer than the client timeout are recorded as such."""
        for req in list(self.in_flight.values()):
            if self.env.now - req.t0 > policy.CLIENT_TIMEOUT_S:
                self._complete(req, False, "timeout")

    # -- arrivals --------------------------------------------------------------------------------
    def arrivals(self, until: float):
        """SimPy process: each second, Poisson arrivals per step at that second's rate."""
        steps = self.steps
        while self.env.now < until:
            second = self.env.now
            rate_of = self.workload.rates(second + 0.5)
            rates = np.array([rate_of[s] for s in steps])
            counts = self.rng.poisson(rates)
            total = int(counts.sum())
            if total:
                offsets = self.rng.random(total)
                which = np.repeat(np.arange(len(steps)), counts)
                links = self.rng.choice(len(self.links.names), total, p=self.links.shares)
                # The link as it is at the start of this second (degradations start on seconds).
                network = latencies_ms(self.links.table(second), links, self._step_table, which,
                                       self.rng)
                for i in np.argsort(offsets):
                    self.env.timeout(float(offsets[i])).callbacks.append(
                        lambda _e, s=steps[which[i]], l=int(links[i]), n=float(network[i]):
                        self.arrive(s, l, n))
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
        return (float(np.mean([s.utilisation(since) for s in servers])),
                sum(len(s.queue) for s in servers))

    # -- results ---------------------------------------------------------------------------------
    def conservation(self) -> dict[str, int]:
        """Request accounting: arrived = completed + failed + in flight."""
        return {"arrived": sum(self.arrived.values()), "completed": sum(self.completed.values()),
                "failed": sum(self.failed.values()), "in_flight": len(self.in_flight)}

    def write_requests(self, writer) -> None:
        """Store one row per finished request (exact latencies)."""
        import pandas as pd

        frame = pd.DataFrame(self.rows)
        frame["endpoint"] = frame["step"].map(
            {name: s.endpoint for name, s in self.scenario.topology.steps.items()})
        writer.write_requests(frame)
