"""Gate speed and run-directory size: exact requests vs per-second histograms, side by side.

Builds one synthetic run of N requests (lognormal latencies, 1 % errors, a slow patch after a
zone outage) stored both ways, then times `gate_run` on each and compares quantile error.
Usage: python bench/bench_gate.py [N]   (default 2,000,000)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import TINY, to_histogram  # noqa: E402  (the tests' tiny scenario and converter)
from reports.gate import gate_run  # noqa: E402
from reports.rundir import RunWriter  # noqa: E402
from scenarios.loader import scenario_from_text  # noqa: E402


def synthetic(n: int, rng: np.random.Generator) -> pd.DataFrame:
    t = np.sort(rng.uniform(0, 100, n))
    steps = rng.choice(["fetch_odds", "place_bet", "update_slip", "login", "odds_push"], n)
    latency = rng.lognormal(np.log(40), 0.8, n) * np.where((t >= 40) & (t < 60), 5.0, 1.0)
    return pd.DataFrame({"t": t, "step": steps, "endpoint": steps, "zone": "eu-a",
                         "link": rng.choice(["wifi", "devtools_fast_4g"], n),
                         "latency_ms": latency, "ok": rng.random(n) > 0.01, "error": None})


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    scenario = scenario_from_text(TINY, "tiny.yaml")
    frame = synthetic(n, np.random.default_rng(7))
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for kind in ("exact", "histogram"):
            writer = RunWriter(Path(tmp) / kind, scenario, mode="sim", seed=7)
            if kind == "exact":
                writer.write_requests(frame)
            else:
                writer.write_request_histogram(to_histogram(frame))
            path = writer.finish()
            size = sum(p.stat().st_size for p in path.iterdir())
            start = time.perf_counter()
            verdict, _meta = gate_run(path)
            seconds = time.perf_counter() - start
            results[kind] = (seconds, size, verdict)
        (te, se, ve), (th, sh, vh) = results["exact"], results["histogram"]
        worst = max(abs(vh.steps[s].p99 - ve.steps[s].p99) / ve.steps[s].p99 for s in ve.steps)
        print(f"requests: {n:,}")
        print(f"gate exact:     {te:6.2f} s   run dir {se / 1e6:7.1f} MB")
        print(f"gate histogram: {th:6.2f} s   run dir {sh / 1e6:7.1f} MB")
        print(f"histogram/exact: time {th / te:.2f}x, size {sh / se:.3f}x; "
              f"worst per-step p99 difference {worst:.3%}")


if __name__ == "__main__":
    main()
