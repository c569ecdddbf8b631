"""The verdict engine: every budget of a scenario evaluated over its scope, pass / warn / fail.

Works on any :class:`~reports.metrics.MetricSource`, so a simulated run, a real run and a plain
Locust run are judged by the same code.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, Protocol, Sequence

import numpy as np

from reports.metrics import MetricSource, Selection, Spans, StepStats, stats_of
from scenarios import BudgetItem, Budgets, Scenario, Threshold, parse_threshold

Level = Literal["pass", "warn", "fail"]
_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}
DR_ACTIONS = ("db_failover", "region_failover", "zone_outage")
"""Chaos actions an RTO is measured after."""


@dataclasses.dataclass(frozen=True)
class BudgetResult:
    """One budget's outcome. ``measured`` is None when nothing could be measured (a failure)."""

    step: str
    budget: str
    warn: str | None
    scope: str
    measured: float | None
    unit: str
    samples: int
    verdict: Level
    detail: str = ""

    def measured_text(self) -> str:
        """The measured value with its unit, or the reason there is none."""
        if self.measured is None:
            return "—"
        if self.unit == "":
            return f"{self.measured:.4%}" if self.measured < 0.1 else f"{self.measured:.2%}"
        return f"{self.measured:,.1f} {self.unit}"


@dataclasses.dataclass
class Verdict:
    """All budget results of a run plus each step's headline figures."""

    scenario: str
    precision: str
    results: list[BudgetResult]
    steps: dict[str, StepStats]
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def overall(self) -> Level:
        """fail if any budget failed, warn if any warned, else pass (also with no budget)."""
        worst = max((_RANK[r.verdict] for r in self.results), default=0)
        return next(level for level, rank in _RANK.items() if rank == worst)  # type: ignore

    @property
    def exit_code(self) -> int:
        """0 when every budget passed (warnings allowed), 1 when one failed."""
        return 1 if self.overall == "fail" else 0

    def to_summary(self, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """The summary.json document (no NaN: missing numbers are null)."""
        def clean(x: float) -> float | None:
            return None if x is None or not math.isfinite(x) else round(float(x), 4)

        counts = {level: sum(r.verdict == level for r in self.results) for level in _RANK}
        return {
            "schema_version": 1,
            "scenario": self.scenario,
            "mode": (meta or {}).get("mode"),
            "verdict": self.overall,
            "counts": counts,
            "precision": self.precision,
            "notes": self.notes,
            "steps": {
                step: {"count": s.count, "errors": s.errors, "error_rate": clean(s.error_rate),
                       "mean_ms": clean(s.mean), "p50_ms": clean(s.p50), "p95_ms": clean(s.p95),
                       "p99_ms": clean(s.p99), "max_ms": clean(s.max)}
                for step, s in self.steps.items()
            },
            "budgets": [
                {**dataclasses.asdict(r), "measured": clean(r.measured) if r.measured is not None
                 else None}
                for r in self.results
            ],
        }


def level_of(measured: float | None, passing: Threshold, warning: Threshold | None) -> Level:
    """pass if ``passing`` holds, warn if only ``warning`` holds, fail otherwise (or no value)."""
    if measured is None or math.isnan(measured):
        return "fail"
    if passing.holds(measured):
        return "pass"
    return "warn" if warning is not None and warning.holds(measured) else "fail"


def metric_value(selection: Selection, threshold: Threshold) -> float:
    """The value of a latency or error-rate threshold's metric over ``selection``."""
    if threshold.metric == "p":
        assert threshold.quantile is not None
        return selection.quantile(threshold.quantile / 100)
    if threshold.metric == "med":
        return selection.quantile(0.5)
    if threshold.metric == "avg":
        return selection.mean()
    if threshold.metric == "min":
        return selection.minimum()
    if threshold.metric == "max":
        return selection.maximum()
    if threshold.metric == "error_rate":
        return selection.errors / selection.count if selection.count else math.nan
    raise ValueError(f"{threshold.metric} is not a per-request metric")


class Context(Protocol):
    """What budgets are resolved against: phases and the chaos schedule (a Scenario has both)."""

    name: str
    chaos: Sequence[Any]

    def phase_windows(self) -> dict[str, list[tuple[float, float]]]: ...

    def chaos_windows(self, ref: str) -> list[tuple[float, float]]: ...


@dataclasses.dataclass
class PlainContext:
    """The context of a run that has no scenario (a plain Locust run): no phases, no chaos."""

    name: str
    chaos: Sequence[Any] = ()

    def phase_windows(self) -> dict[str, list[tuple[float, float]]]:
        return {}

    def chaos_windows(self, ref: str) -> list[tuple[float, float]]:
        return []


class _Evaluator:
    def __init__(self, scenario: Context, source: MetricSource, events: list[dict[str, Any]]):
        self.scenario = scenario
        self.source = source
        self.events = events

    def spans(self, item: BudgetItem) -> Spans:
        if item.window is not None:
            return [(item.window.start, item.window.end)]
        if item.phase is not None:
            return self.scenario.phase_windows()[item.phase]
        if item.during is not None:
            return self.scenario.chaos_windows(item.during)
        return None

    def horizon(self, after: float) -> float:
        """End of the quiet period after ``after``: the next chaos action's start, or the end."""
        later = [a.at for a in self.scenario.chaos if a.at > after]
        return min(later, default=self.source.duration)

    def budget(self, step: str, item: BudgetItem, items: list[BudgetItem]) -> BudgetResult:
        passing, warning = item.threshold, item.warn_threshold
        base = dict(step=step, budget=item.pass_, warn=item.warn, scope=item.scope_text,
                    unit=passing.unit)
        if passing.metric == "recovery_time":
            return self.recovery(step, item, items, base)
        selection = self.source.select(step, self.spans(item), item.link)
        if selection.count == 0:
            return BudgetResult(**base, measured=None, samples=0, verdict="fail",
                                detail="no requests in scope")
        measured = metric_value(selection, passing)
        return BudgetResult(**base, measured=measured, samples=selection.count,
                            verdict=level_of(measured, passing, warning))

    def recovery(self, step: str, item: BudgetItem, items: list[BudgetItem],
                 base: dict[str, Any]) -> BudgetResult:
        target = parse_threshold(item.of) if item.of else next(
            o.threshold for o in items
            if o.threshold.metric == "p" and o.threshold.quantile == 99
            and o.scope_text == "whole run")
        assert target.quantile is not None and item.after is not None
        worst: float | None = 0.0
        details = []
        for action in [a for a in self.scenario.chaos if item.after in (a.id, a.action)]:
            end, horizon = action.end, self.horizon(action.end)
            times, values = self.source.sliding_quantile(
                step, target.quantile / 100, item.sliding_window_s, end, horizon, item.link)
            recovered = recovery_seconds(times, values, target, end)
            label = action.id or f"{action.action}@{action.at:g}s"
            if recovered is None:
                details.append(f"{label}: no request after it" if np.isnan(values).all()
                               else f"{label}: not back under {target.text} by {horizon:g}s")
                worst = None
            else:
                details.append(f"{label}: {recovered:g}s")
                worst = None if worst is None else max(worst, recovered)
        verdict = level_of(worst, item.threshold, item.warn_threshold)
        return BudgetResult(**base, measured=worst, samples=len(details), verdict=verdict,
                            detail=f"back under {target.text}: " + "; ".join(details))

    def dr(self, budgets: Budgets) -> list[BudgetResult]:
        dr = budgets.dr
        if dr is None:
            return []
        out = []
        if dr.rto_s is not None:
            rto = parse_threshold(f"recovery_time<={dr.rto_s:g}s")
            worst: float | None = 0.0
            details = []
            for a in [a for a in self.scenario.chaos if a.action in DR_ACTIONS]:
                outage = self.source.write_outage(dr.write_steps, a.at, self.horizon(a.at))
                details.append(f"{a.id or a.action}: "
                               + ("no write succeeded after it" if outage is None
                                  else f"{outage:g}s"))
                worst = None if outage is None or worst is None else max(worst, outage)
            if not details:
                worst, details = None, ["no db_failover, region_failover or zone_outage to time"]
            out.append(BudgetResult(step="dr", budget=f"rto<={dr.rto_s:g}s", warn=None,
                                    scope="writes: " + ", ".join(dr.write_steps),
                                    measured=worst, unit="s", samples=len(details),
                                    verdict=level_of(worst, rto, None),
                                    detail="; ".join(details)))
        if dr.lost_bets is not None:
            recon = [e for e in self.events if e["kind"] == "reconciliation"]
            limit = parse_threshold(f"max<={dr.lost_bets}")
            if not recon:
                out.append(BudgetResult(step="dr", budget=f"lost_bets<={dr.lost_bets}",
                                        warn=None, scope="reconciliation", measured=None,
                                        unit="", samples=0, verdict="fail",
                                        detail="the run has no reconciliation event"))
            else:
                last = recon[-1]
                lost = _lost_bets(last)
                out.append(BudgetResult(
                    step="dr", budget=f"lost_bets<={dr.lost_bets}", warn=None,
                    scope="reconciliation", measured=lost, unit="bets",
                    samples=int(last["acknowledged_bets"])
                    if isinstance(last.get("acknowledged_bets"), int) else 0,
                    verdict=level_of(lost, limit, None),
                    detail=f"{last.get('acknowledged_bets', '?')} acknowledged, "
                           f"{last.get('persisted_bets', '?')} persisted"))
        return out


def _lost_bets(event: dict[str, Any]) -> float:
    """Lost bets of a reconciliation event: its ``lost_bets``, else acknowledged − persisted."""
    def number(key: str) -> float | None:
        value = event.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else None

    lost = number("lost_bets")
    if lost is None:
        acknowledged, persisted = number("acknowledged_bets"), number("persisted_bets")
        if acknowledged is not None and persisted is not None:
            lost = acknowledged - persisted
    return math.nan if lost is None else lost


def recovery_seconds(times: np.ndarray, values: np.ndarray, target: Threshold,
                     end: float) -> float | None:
    """Seconds after ``end`` from which every (non-empty) window meets ``target``.

    0 when no window breached; None when the last window still breaches or every window is
    empty. Empty windows (NaN) carry no evidence either way.
    """
    if np.isnan(values).all():
        return None  # no request after the action: no evidence of recovery
    breach = np.array([not math.isnan(v) and not target.holds(v) for v in values], dtype=bool)
    if not breach.any():
        return 0.0
    last = int(np.flatnonzero(breach)[-1])
    if last == len(times) - 1:
        return None
    return float(times[last + 1] - end)


def evaluate(scenario: Context, source: MetricSource, events: list[dict[str, Any]] | None = None,
             budgets: Budgets | None = None) -> Verdict:
    """Judge every budget (the scenario's, or ``budgets``) against ``source``."""
    if budgets is None:
        if not isinstance(scenario, Scenario):
            raise ValueError("budgets are needed when the context is not a scenario")
        budgets = scenario.budgets
    ev = _Evaluator(scenario, source, events or [])
    results = [ev.budget(step, item, items)
               for step, items in budgets.steps.items() for item in items]
    results += ev.dr(budgets)
    steps = {step: stats_of(source.select(step)) for step in source.steps()}
    return Verdict(scenario=scenario.name, precision=source.precision, results=results,
                   steps=steps)
