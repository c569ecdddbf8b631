"""Request fidelity speed: simulated requests per wall-second, matchday's engine vs naive SimPy.

Topology: three hops in tandem, gateway → odds → store, each one pod with ``c`` workers
(8, 4, 2) and exponential service times whose means are set from the arrival rate so that every
hop runs at utilisation ρ = 0.65. Poisson arrivals at ``--rate`` requests/s for ``--duration``
simulated seconds, no network delay, the system starting empty. Both designs simulate this same
queueing network with the same seed:

(a) matchday: ``simulator.request_engine.RequestEngine`` on a scenario built with
    ``Scenario.model_validate`` — per-request events as callbacks on SimPy timeouts, FIFO
    ``Server`` objects, no process per request. The setup of ``simulator.run.simulate`` (World,
    engine, arrival and timeline processes) is reproduced here and only ``env.run`` is timed, so
    writing the run directory and judging it are left out. A second row times ``simulate()``
    end to end (the same run, plus requests.parquet, timeline, summary and verdict) for context.
(b) naive: one SimPy process per request, a ``simpy.Resource(capacity=c)`` per hop, and
    ``with res.request() as r: yield r; yield env.timeout(s)`` for each hop in turn; Poisson
    arrivals from one generator process; random draws taken from numpy in blocks, as (a) does.

Each design runs once. The sanity line compares their mean end-to-end latencies (completed
requests), which must agree within 3 %: the same network must give the same answer.
Usage: python bench/bench_request.py [--duration S] [--rate R]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from scenarios import Scenario  # noqa: E402
from simlab import chain_scenario  # noqa: E402  (the tests' laboratory scenarios)
from simulator.request_engine import RequestEngine  # noqa: E402
from simulator.run import simulate  # noqa: E402
from simulator.timeline import Timeline  # noqa: E402
from simulator.world import World  # noqa: E402

HOPS: tuple[tuple[str, int], ...] = (("gateway", 8), ("odds", 4), ("store", 2))
"""(service, workers) of each hop, in call order."""
RHO = 0.65
SEED = 11
AGREEMENT = 0.03  # mean end-to-end latencies of (a) and (b) must agree within 3 %


def service_means_s(rate: float) -> list[float]:
    """Mean service time (s) of each hop so that it runs at utilisation ``RHO``: S = ρ·c/λ."""
    return [RHO * workers / rate for _, workers in HOPS]


def bench_scenario(rate: float, duration: float) -> Scenario:
    """One zone, a step calling gateway → odds → store, ``rate`` Poisson requests/s, no network."""
    hops = [(name, workers, {"dist": "exponential", "mean": 1000 * mean})
            for (name, workers), mean in zip(HOPS, service_means_s(rate))]
    return chain_scenario(rate, hops, duration, name="bench-chain")


def run_engine(scenario: Scenario) -> tuple[int, float, float]:
    """(a) as ``simulate()`` sets it up: (arrived, wall seconds of env.run, mean latency ms)."""
    rng = np.random.default_rng(scenario.seed)
    env = simpy.Environment()
    world = World(scenario, env, rng)
    engine = RequestEngine(scenario, world, rng)
    world.engine = engine
    world.start()
    timeline = Timeline(world, engine)
    env.process(engine.arrivals(scenario.duration))
    env.process(timeline.run(scenario.duration))
    start = time.perf_counter()
    env.run(until=scenario.duration + 1e-9)
    wall = time.perf_counter() - start
    engine.time_out_stragglers()
    latency = engine.finished_latencies_ms()
    return engine.conservation()["arrived"], wall, float(latency.mean())


def run_simulate(scenario: Scenario) -> tuple[int, float]:
    """(a) through ``simulate()`` end to end: (arrived from meta.json, wall seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        simulate(scenario, fidelity="request", out=out)
        wall = time.perf_counter() - start
        arrived = json.loads((out / "meta.json").read_text())["arrived"]
    return int(arrived), wall


def draws(rng: np.random.Generator, mean: float, block: int = 4096) -> Iterator[float]:
    """Exponential draws with ``mean``, taken from numpy in blocks."""
    while True:
        yield from rng.exponential(mean, block).tolist()


def run_naive(rate: float, duration: float) -> tuple[int, float, float]:
    """(b) one SimPy process per request: (arrived, wall seconds of env.run, mean latency ms)."""
    rng = np.random.default_rng(SEED)
    env = simpy.Environment()
    hops = [(simpy.Resource(env, capacity=workers), draws(rng, mean))
            for (_, workers), mean in zip(HOPS, service_means_s(rate))]
    latencies: list[float] = []
    arrived = 0

    def request() -> Iterator[simpy.Event]:
        t0 = env.now
        for resource, service in hops:
            with resource.request() as slot:
                yield slot
                yield env.timeout(next(service))
        latencies.append(env.now - t0)

    def source() -> Iterator[simpy.Event]:
        nonlocal arrived
        gaps = draws(rng, 1 / rate)
        while True:
            yield env.timeout(next(gaps))
            arrived += 1
            env.process(request())

    env.process(source())
    start = time.perf_counter()
    env.run(until=duration)
    wall = time.perf_counter() - start
    return arrived, wall, 1000 * float(np.mean(latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=400.0, help="simulated seconds")
    parser.add_argument("--rate", type=float, default=1000.0, help="arrivals per second")
    args = parser.parse_args()

    scenario = bench_scenario(args.rate, args.duration)
    engine_n, engine_s, engine_ms = run_engine(scenario)
    whole_n, whole_s = run_simulate(scenario)
    naive_n, naive_s, naive_ms = run_naive(args.rate, args.duration)

    means = ", ".join(f"{name} {1000 * s:.2f} ms × {c}"
                      for (name, c), s in zip(HOPS, service_means_s(args.rate)))
    print(f"3-hop tandem, ρ = {RHO} per hop ({means}); λ = {args.rate:g}/s for "
          f"{args.duration:g} simulated s; Python {platform.python_version()}, "
          f"SimPy {simpy.__version__}")
    naive_rps = naive_n / naive_s
    rows = [("(a) matchday RequestEngine, env.run only", engine_n, engine_s),
            ("(a) matchday simulate() end to end", whole_n, whole_s),
            ("(b) naive SimPy, process per request", naive_n, naive_s)]
    print(f"{'design':44s} {'requests':>10s} {'wall s':>8s} {'requests/s':>11s} {'vs (b)':>7s}")
    for name, n, seconds in rows:
        print(f"{name:44s} {n:>10,} {seconds:>8.2f} {n / seconds:>11,.0f} "
              f"{n / seconds / naive_rps:>6.2f}x")
    gap = abs(engine_ms - naive_ms) / naive_ms
    verdict = "ok" if gap <= AGREEMENT else f"MISMATCH (> {AGREEMENT:.0%})"
    print(f"sanity: mean end-to-end latency (a) {engine_ms:.3f} ms, (b) {naive_ms:.3f} ms, "
          f"difference {gap:.2%}: {verdict}")


if __name__ == "__main__":
    main()
