"""Shared fixtures: a tiny scenario and a builder of run directories from hand-made requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

from reports import histogram
from reports.rundir import RunWriter
from scenarios import Budgets, Scenario
from scenarios.checks import check_scenario
from scenarios.loader import scenario_from_text

TINY = """
name: tiny
duration: 100
traffic:
  peak_users: 100
  wave:
    - {at: 0, users: 0.5, phase: warm}
    - {at: 50, users: 1.0, phase: hot}
  journeys: {bettor: 1}
links: {mix: {wifi: 0.5, devtools_fast_4g: 0.5}}
topology:
  regions: {eu: {zones: [a, b]}}
  services:
    api: {instances: 1, concurrency: 4, service_time_ms: {dist: exponential, mean: 5}}
  databases:
    db: {region: eu, pool_size: 4, max_connections: 20, service_time_ms: 1}
  steps:
    login: {endpoint: POST /login, calls: [{service: api}]}
    fetch_odds: {endpoint: GET /odds, calls: [{service: api}]}
    update_slip: {endpoint: POST /slip, calls: [{service: api}]}
    place_bet: {endpoint: POST /bets, write: true, calls: [{service: api, calls: [{db: db}]}]}
    odds_push: {kind: push, endpoint: WS /odds, rate_hz: 1, calls: [{service: api}]}
chaos:
  - {id: zone-a-down, at: 40, duration: 10, action: zone_outage, zone: eu-a}
budgets:
  fetch_odds:
    - {pass: "p(95)<100", warn: "p(95)<150"}
    - "p(99)<200"
    - {pass: "recovery_time<20s", after: zone-a-down}
  place_bet:
    - "error_rate<0.05"
"""


@pytest.fixture
def tiny() -> Scenario:
    """A small valid scenario (100 s, two zones, a zone outage at 40-50 s) with budgets."""
    return scenario_from_text(TINY, "tiny.yaml")


def to_histogram(frame: pd.DataFrame) -> pd.DataFrame:
    """Exact requests → the per-second histogram table a run directory may store instead."""
    h = frame.assign(second=np.floor(frame["t"]).astype("int64"),
                     bucket=histogram.bucket_of(frame["latency_ms"].to_numpy()))
    keys = ["second", "step", "zone", "link", "ok", "bucket"]
    return h.groupby(keys, as_index=False, observed=True).size().rename(columns={"size": "count"})


def requests_frame(t: Any, latency_ms: Any, step: str = "fetch_odds", ok: Any = True,
                   link: str = "wifi", zone: str = "eu-a") -> pd.DataFrame:
    """A requests table of one step from arrays (scalars broadcast)."""
    t = np.asarray(t, dtype=float)
    n = len(t)
    ok_arr = np.broadcast_to(np.asarray(ok, dtype=bool), (n,))
    return pd.DataFrame({
        "t": t, "step": step, "endpoint": step, "zone": zone, "link": link,
        "latency_ms": np.broadcast_to(np.asarray(latency_ms, dtype=float), (n,)),
        "ok": ok_arr, "error": np.where(ok_arr, None, "HTTP 503"),
    })


def with_budgets(scenario: Scenario, budgets: dict[str, Any]) -> Scenario:
    """``scenario`` with its budgets replaced by ``budgets`` (YAML-shaped data), cross-checked."""
    replaced = scenario.model_copy(update={"budgets": Budgets.model_validate(budgets)})
    problems = check_scenario(replaced)
    assert not problems, problems
    return replaced


@pytest.fixture
def make_run(tmp_path: Path, tiny: Scenario) -> Callable[..., Path]:
    """Build a run directory: ``make_run(frame, scenario=tiny, events=[], histogram=False)``."""
    counter = iter(range(1_000_000))

    def build(frame: pd.DataFrame, scenario: Scenario | None = None,
              events: list[dict[str, Any]] | None = None, as_histogram: bool = False) -> Path:
        path = tmp_path / f"run-{next(counter)}"
        writer = RunWriter(path, scenario or tiny, mode="sim", seed=1)
        if as_histogram:
            writer.write_request_histogram(to_histogram(frame))
        else:
            writer.write_requests(frame)
        writer.write_events(events or [])
        return writer.finish()

    return build


def unavailable(what: str) -> None:
    """Skip a test whose outside dependency is missing; in CI (MATCHDAY_REQUIRE_SERVICES=1),
    where .ci/run installs and starts everything, fail instead."""
    import os

    if os.environ.get("MATCHDAY_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required in CI (MATCHDAY_REQUIRE_SERVICES=1) but unavailable")
    pytest.skip(f"{what} is not available on this machine")
