"""Flow fidelity at full scale: the cup final (3 h, 400k users, a zone lost) end to end.

Prints the wall time of the whole `simulate` call (SimPy model, run directory, verdict) and of
the simulation alone, the requests simulated and the peak request rate. Target (issue 3):
under 60 s wall on a 2-core machine with a peak of at least 50k requests/s and at least 250M
requests. Usage: python bench/bench_flow.py [SCENARIO]   (default cup-final-zone-loss)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from reports.rundir import Run
from scenarios import find_scenario, load_scenario
from simulator.kernel import BACKEND
from simulator.run import simulate


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "cup-final-zone-loss"
    scenario = load_scenario(find_scenario(name))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = simulate(scenario, fidelity="flow", out=Path(tmp) / "run")
        wall = time.perf_counter() - started
        run = Run(result.path)
        timeline = run.timeline()
        steps = scenario.topology.steps
        requests = [c for c in timeline.columns
                    if c.startswith("rps.") and steps[c[4:]].kind == "request"]
        peak_requests = timeline[requests].sum(axis=1).max()
        meta = run.meta
    print(f"scenario: {name}, kernel backend: {BACKEND}")
    print(f"simulated: {meta['arrived']:,} requests and pushes "
          f"({timeline[requests].to_numpy().sum():,.0f} requests)")
    print(f"peak: {peak_requests:,.0f} requests/s, {timeline['rps'].max():,.0f} incl. pushes")
    print(f"wall: {wall:.1f} s in all, {meta['simulation_seconds']:.1f} s simulating, "
          f"verdict {result.verdict.overall}")


if __name__ == "__main__":
    main()
