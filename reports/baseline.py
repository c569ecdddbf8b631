"""Baseline gates: a run judged relative to an earlier run of the same scenario (Keptn style).

"Did this release get slower than the last one?" Each metric of each step is compared with the
same metric of the baseline run, by a criterion that turns the baseline value into a limit.

Metrics and their directions (which way is worse):

=============  ======  ===============  ==========================================
metric         unit    worse when       absolute criteria unit
=============  ======  ===============  ==========================================
p50 p95 p99    ms      higher           ``ms`` or ``s``
max mean       ms      higher           ``ms`` or ``s``
error_rate     ratio   higher           ``pp`` (percentage points)
rps            req/s   lower            ``rps`` (requests per second of the step)
=============  ======  ===============  ==========================================

Criterion expressions (a leading ``<=`` for higher-is-worse or ``>=`` for lower-is-worse metrics,
as Keptn writes them, is accepted and changes nothing):

- ``+10%``: relative, baseline × 1.10; ``-10%`` for ``rps``: baseline × 0.90;
- ``+50ms`` / ``+0.1pp`` / ``-20rps``: absolute, baseline + 50 ms, + 0.1 percentage points, …;
- ``*1.3``: a factor, baseline × 1.3 (``×`` works too);
- ``max(a, b, …)`` / ``min(a, b, …)``: the largest / smallest of the limits (nesting allowed).
  For a higher-is-worse metric ``max`` is the looser one: ``max(*1.3, +50ms)`` reads
  "p95 ≤ max(baseline × 1.3, baseline + 50 ms)". For ``rps`` ``min`` is the looser one.

A sign must point in the metric's worse direction (``+`` for latency and error rate, ``-`` for
throughput) and a factor must be ≥ 1 (≤ 1 for throughput): a criterion is a tolerance, and the
opposite sign would silently demand an improvement, a classic way to make a gate fail on
identical runs. ``+0%`` is allowed (no regression at all). Note that ``%`` is always relative, also
for error rates (0.1 % → +50% is 0.15 %); write ``pp`` for an absolute rise.

A measured value passes a criterion when it is no worse than the limit (≤ for higher-is-worse,
≥ for lower-is-worse). Each metric has a ``pass`` and an optional, looser ``warn`` criterion:
pass if ``pass`` holds, warn if only ``warn`` holds, fail otherwise.

Criteria file (YAML)::

    baseline:
      p99: {pass: "+10%", warn: "+25%"}
      p95: "max(*1.3, +50ms)"          # shorthand: pass only
      error_rate: {pass: "+0.1pp", warn: "+0.5pp"}
      rps: {pass: "-10%"}
      steps:                            # per-step overrides, metric by metric
        place_bet:
          p99: {pass: "+5%"}
          rps: null                     # not checked for this step

The metrics under ``baseline:`` replace :data:`DEFAULT_CRITERIA` entirely (the file is the whole
specification: a metric it does not name is not checked); ``steps:`` then overrides them metric by
metric for the named steps.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Union

from reports.metrics import MetricSource, StepStats, stats_of
from reports.rundir import Run
from reports.verdict import BudgetResult, Level, Verdict
from scenarios.yaml_source import (
    InputError, Loc, Located, Position, Problem, locate, read_located,
)

SCOPE = "vs baseline"

# Relative slack when comparing a value with its limit: decimal arithmetic (120 × 1.1 =
# 132.00000000000003, 0.001 + 0.001) must not flip a verdict exactly at the boundary.
_SLACK = 1e-9


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric a baseline criterion can name, with its unit and which way is worse."""

    name: str
    unit: str
    """The unit of BudgetResult.measured: "ms", "" (a ratio, shown as a percentage) or "req/s"."""
    higher_is_worse: bool
    absolute_units: tuple[str, ...]
    """The units an absolute criterion (``+50ms``) may use for this metric."""

    def value(self, stats: StepStats, duration: float) -> float:
        """This metric of a step whose figures are ``stats`` over a run of ``duration`` s."""
        if self.name == "rps":
            # Requests per second of run time; NaN for a degenerate run rather than a division
            # error, so the gate reports it as a failure with a detail.
            return stats.count / duration if duration > 0 else math.nan
        return float(getattr(stats, self.name))

    @property
    def op(self) -> str:
        """The comparison a passing value satisfies against the limit, as printed."""
        return "<=" if self.higher_is_worse else ">="


_LATENCY_UNITS = ("ms", "s")
METRICS: dict[str, Metric] = {
    **{name: Metric(name, "ms", True, _LATENCY_UNITS) for name in ("p50", "p95", "p99", "max",
                                                                  "mean")},
    "error_rate": Metric("error_rate", "", True, ("pp",)),
    "rps": Metric("rps", "req/s", False, ("rps",)),
}
"""Every metric a criterion may name, in the order results are reported."""


# --- criterion expressions ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Term:
    kind: str  # "rel" (percent), "abs" (metric units: ms, ratio, req/s) or "factor"
    value: float

    def limit(self, baseline: float) -> float:
        if self.kind == "rel":
            return baseline * (1 + self.value / 100)
        if self.kind == "abs":
            return baseline + self.value
        return baseline * self.value


@dataclasses.dataclass(frozen=True)
class _Func:
    name: str  # "max" or "min"
    args: tuple["_Node", ...]

    def limit(self, baseline: float) -> float:
        limits = [a.limit(baseline) for a in self.args]
        return max(limits) if self.name == "max" else min(limits)


_Node = Union[_Term, _Func]

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_SIGNED = re.compile(rf"\s*(?P<sign>[+-])\s*(?P<num>{_NUMBER})\s*(?P<unit>%|ms|s|pp|rps)"
                     r"(?![A-Za-z0-9_])")
_FACTOR = re.compile(rf"\s*[*×]\s*(?P<num>{_NUMBER})")
_FUNC = re.compile(r"\s*(?P<name>max|min)\s*\(")
_EXAMPLES = {True: "'+10%', '+50ms', '*1.3', 'max(*1.3, +50ms)'",
             False: "'-10%', '-20rps', '*0.9', 'min(-10%, -20rps)'"}


@dataclasses.dataclass(frozen=True)
class Criterion:
    """A parsed criterion expression for one metric: baseline value → limit."""

    metric: Metric
    text: str
    node: _Node

    def limit(self, baseline: float) -> float:
        """The worst value that still satisfies the criterion, given the baseline's value."""
        return self.node.limit(baseline)

    def holds(self, measured: float, baseline: float) -> bool:
        """Whether ``measured`` is no worse than the limit (False when either is NaN)."""
        limit = self.limit(baseline)
        if math.isnan(measured) or math.isnan(limit):
            return False
        slack = _SLACK * max(abs(limit), abs(baseline), 1e-12)
        if self.metric.higher_is_worse:
            return measured <= limit + slack
        return measured >= limit - slack


def parse_criterion(text: str, metric: str) -> Criterion:
    """Parse a criterion expression for ``metric`` (a key of :data:`METRICS`).

    Raises ValueError with a message naming the expression, what was expected and why.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (one of: {', '.join(METRICS)})")
    m = METRICS[metric]
    if not isinstance(text, str):
        raise ValueError(f"expected a criterion expression such as {_EXAMPLES[m.higher_is_worse]}"
                         f", not {text!r}")
    body = text.strip()
    if body.startswith(("<=", ">=")):
        if body[:2] != m.op:
            raise ValueError(f"{text!r}: {metric} is {_worse_word(m)}, so its criterion compares "
                             f"with {m.op}, not {body[:2]}")
        body = body[2:]
    node, end = _parse_node(body, 0, text, m)
    if body[end:].strip():
        raise ValueError(f"{text!r}: unexpected {body[end:].strip()!r} after the criterion")
    return Criterion(metric=m, text=text.strip(), node=node)


def _worse_word(m: Metric) -> str:
    return "higher-is-worse" if m.higher_is_worse else "lower-is-worse"


def _parse_node(s: str, i: int, text: str, m: Metric) -> tuple[_Node, int]:
    func = _FUNC.match(s, i)
    if func:
        args: list[_Node] = []
        i = func.end()
        while True:
            node, i = _parse_node(s, i, text, m)
            args.append(node)
            rest = s[i:].lstrip()
            i = len(s) - len(rest)
            if rest.startswith(","):
                i += 1
            elif rest.startswith(")"):
                return _Func(func["name"], tuple(args)), i + 1
            else:
                found = repr(rest[:12]) if rest else "the end"
                raise ValueError(f"{text!r}: expected ',' or ')' in {func['name']}(…), "
                                 f"found {found}")
    factor = _FACTOR.match(s, i)
    if factor:
        value = float(factor["num"])
        if value <= 0:
            raise ValueError(f"{text!r}: a factor must be positive")
        if (value < 1) if m.higher_is_worse else (value > 1):
            bound = "at least 1" if m.higher_is_worse else "at most 1"
            raise ValueError(f"{text!r}: {m.name} is {_worse_word(m)}, so a factor is {bound} "
                             f"(*{value:g} would demand an improvement)")
        return _Term("factor", value), factor.end()
    signed = _SIGNED.match(s, i)
    if signed:
        return _signed_term(signed, text, m), signed.end()
    if re.match(rf"\s*{_NUMBER}\s*(%|ms|s|pp|rps)?\s*$", s[i:]):
        worse = "+" if m.higher_is_worse else "-"
        raise ValueError(f"{text!r}: give the sign of the allowed change, e.g. "
                         f"'{worse}{s[i:].strip()}' ({m.name} is {_worse_word(m)})")
    raise ValueError(f"{text!r} is not a baseline criterion for {m.name} (expected e.g. "
                     f"{_EXAMPLES[m.higher_is_worse]})")


def _signed_term(match: re.Match[str], text: str, m: Metric) -> _Term:
    sign, value, unit = match["sign"], float(match["num"]), match["unit"]
    worse = "+" if m.higher_is_worse else "-"
    if value != 0 and sign != worse:
        raise ValueError(f"{text!r}: {m.name} is {_worse_word(m)}, so a tolerance is written "
                         f"'{worse}{match['num']}{unit}' ('{sign}…' would demand an improvement)")
    if unit == "%":
        if not m.higher_is_worse and value > 100:
            raise ValueError(f"{text!r}: {m.name} cannot fall by more than 100%")
        return _Term("rel", value if sign == "+" else -value)
    if unit not in m.absolute_units:
        allowed = " or ".join(m.absolute_units)
        raise ValueError(f"{text!r}: '{unit}' does not apply to {m.name}; an absolute change of "
                         f"{m.name} is in {allowed} (or use % for a relative one)")
    scale = {"ms": 1.0, "s": 1000.0, "pp": 0.01, "rps": 1.0}[unit]
    return _Term("abs", (value if sign == "+" else -value) * scale)


# --- criteria -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Objective:
    """One metric's ``pass`` criterion and optional looser ``warn`` criterion."""

    metric: str
    passing: Criterion
    warning: Criterion | None = None

    def level(self, measured: float, baseline: float) -> Level:
        """pass if ``passing`` holds, warn if only ``warning`` holds, else (or on NaN) fail."""
        if self.passing.holds(measured, baseline):
            return "pass"
        if self.warning is not None and self.warning.holds(measured, baseline):
            return "warn"
        return "fail"

    def budget_text(self, criterion: Criterion | None = None) -> str:
        """``p99 <= +10% of baseline``: the criterion as reports show it."""
        c = criterion or self.passing
        return f"{self.metric} {c.metric.op} {c.text} of baseline"


@dataclasses.dataclass(frozen=True)
class Criteria:
    """Objectives for every step (``defaults``), overridden metric by metric per step.

    In ``steps``, a metric mapped to None is not checked for that step.
    """

    defaults: Mapping[str, Objective]
    steps: Mapping[str, Mapping[str, Objective | None]] = dataclasses.field(default_factory=dict)

    def for_step(self, step: str) -> list[Objective]:
        """The objectives that apply to ``step``, in the order of :data:`METRICS`."""
        merged: dict[str, Objective | None] = {**self.defaults, **self.steps.get(step, {})}
        return [o for name in METRICS if (o := merged.get(name)) is not None]


def objective(metric: str, passing: str, warning: str | None = None) -> Objective:
    """An objective from expressions; raises ValueError if one does not parse."""
    return Objective(metric, parse_criterion(passing, metric),
                     parse_criterion(warning, metric) if warning is not None else None)


DEFAULT_CRITERIA = Criteria(defaults={
    "p95": objective("p95", "+10%", "+25%"),
    "p99": objective("p99", "+10%", "+25%"),
    "error_rate": objective("error_rate", "+0.1pp", "+0.5pp"),
    "rps": objective("rps", "-10%", "-20%"),
})
"""Used when no criteria file is given."""


def load_criteria(path: str | Path) -> Criteria:
    """Read a criteria file (a YAML mapping with a ``baseline:`` mapping; see the module doc).

    Raises :class:`InputError` listing every problem as ``file:line: field.path: message``.
    """
    return _criteria(read_located(Path(path)))


def criteria_from_data(data: Any, file: str = "<criteria>") -> Criteria:
    """Criteria from already parsed data shaped like a criteria file (no line numbers).

    Raises :class:`InputError` like :func:`load_criteria`.
    """
    return _criteria(Located(data, {(): Position(file, 1)}, file))


def _criteria(located: Located) -> Criteria:
    problems: list[Problem] = []

    def problem(loc: Loc, message: str) -> None:
        position, field = locate(located, loc)
        problems.append(Problem(position.file, position.line, field, message))

    data = located.data
    if not isinstance(data, dict) or "baseline" not in data:
        raise InputError([Problem(located.file, 1, "baseline",
                                  "a criteria file has a 'baseline:' mapping")])
    for key in data:
        if key != "baseline":
            problem((key,), "unknown key (a criteria file has only 'baseline:')")
    section = data["baseline"]
    if not isinstance(section, dict):
        problem(("baseline",), "must be a mapping of metrics (and 'steps')")
        raise InputError(problems)

    defaults = _objectives(section, ("baseline",), problem, allow_steps=True)
    steps: dict[str, dict[str, Objective | None]] = {}
    raw_steps = section.get("steps", {})
    if raw_steps is None:
        raw_steps = {}
    if not isinstance(raw_steps, dict):
        problem(("baseline", "steps"), "must map step names to metrics")
    else:
        for step, metrics in raw_steps.items():
            loc = ("baseline", "steps", step)
            if not isinstance(metrics, dict):
                problem(loc, "must map metrics to criteria")
                continue
            steps[str(step)] = _objectives(metrics, loc, problem, allow_steps=False)
    if problems:
        raise InputError(sorted(problems, key=lambda p: (p.file, p.line, p.field)))
    return Criteria(defaults={k: v for k, v in defaults.items() if v is not None}, steps=steps)


def _objectives(section: dict[Any, Any], loc: Loc, problem: Callable[[Loc, str], None],
                allow_steps: bool) -> dict[str, Objective | None]:
    out: dict[str, Objective | None] = {}
    for metric, spec in section.items():
        if allow_steps and metric == "steps":
            continue
        here = loc + (metric,)
        if metric not in METRICS:
            problem(here, f"unknown metric (one of: {', '.join(METRICS)})")
            continue
        if spec is None:
            out[metric] = None  # switched off (meaningful in a step override)
            continue
        if isinstance(spec, str):
            # Shorthand: a pass criterion only; an error points at the metric itself.
            try:
                out[metric] = Objective(metric, parse_criterion(spec, metric))
            except ValueError as exc:
                problem(here, str(exc))
            continue
        if not isinstance(spec, dict):
            problem(here, "expected a criterion such as '+10%' or {pass: ..., warn: ...}")
            continue
        ok = True
        if "pass" not in spec:
            problem(here + ("pass",), "required key is missing")
            ok = False
        for key in spec:
            if key not in ("pass", "warn"):
                problem(here + (key,), "unknown key (expected pass and warn)")
                ok = False
        parsed: dict[str, Criterion] = {}
        for key in ("pass", "warn"):
            # ``warn: null`` means no warn level; ``pass: null`` is an error parse_criterion names.
            if key in spec and (key == "pass" or spec[key] is not None):
                try:
                    parsed[key] = parse_criterion(spec[key], metric)
                except ValueError as exc:
                    problem(here + (key,), str(exc))
                    ok = False
        if ok:
            out[metric] = Objective(metric, parsed["pass"], parsed.get("warn"))
    return out


# --- comparison --------------------------------------------------------------------------------

def _format(metric: Metric, value: float) -> str:
    if math.isnan(value):
        return "—"
    if metric.unit == "":
        return f"{value:.3%}"
    return f"{value:,.1f} {metric.unit}"


def _change(metric: Metric, base: float, measured: float) -> str:
    if metric.unit == "":
        # Error rates move in percentage points; a relative change of a tiny rate says little.
        return f"{(measured - base) * 100:+.2f}pp"
    if base == 0:
        return "baseline 0"
    return f"{(measured / base - 1):+.1%}"


def _step_result(step: str, o: Objective, run_stats: StepStats, base_stats: StepStats,
                 run_duration: float, base_duration: float) -> BudgetResult:
    m = METRICS[o.metric]
    measured = m.value(run_stats, run_duration)
    base = m.value(base_stats, base_duration)
    common = dict(step=step, budget=o.budget_text(),
                  warn=o.budget_text(o.warning) if o.warning is not None else None,
                  scope=SCOPE, unit=m.unit, samples=run_stats.count)
    if math.isnan(measured) or math.isnan(base):
        where = " and ".join(w for w, v in (("this run", measured), ("the baseline", base))
                             if math.isnan(v))
        return BudgetResult(**common, measured=None if math.isnan(measured) else measured,
                            verdict="fail", detail=f"{o.metric} has no value in {where}")
    limits = f"limit {_format(m, o.passing.limit(base))}"
    if o.warning is not None:
        limits += f", warn limit {_format(m, o.warning.limit(base))}"
    return BudgetResult(
        **common, measured=measured, verdict=o.level(measured, base),
        detail=f"baseline {_format(m, base)} -> {_format(m, measured)} "
               f"({_change(m, base, measured)}); {limits}")


def _absent(step: str, where: str, samples: int) -> BudgetResult:
    return BudgetResult(step=step, budget="step in both runs", warn=None, scope=SCOPE,
                        measured=None, unit="", samples=samples, verdict="fail", detail=where)


def _compare(run: MetricSource, baseline: MetricSource, criteria: Criteria) -> list[BudgetResult]:
    run_steps, base_steps = set(run.steps()), set(baseline.steps())
    results: list[BudgetResult] = []
    for step in sorted(run_steps | base_steps | set(criteria.steps)):
        if step not in run_steps or step not in base_steps:
            # A step that appeared or vanished is a change a gate must not wave through; a step
            # named only in the criteria is most likely a typo that would check nothing.
            if step in run_steps:
                count = run.select(step).count
                results.append(_absent(step, f"not in the baseline run ({count:,} requests in "
                                             "this run): a new step?", count))
            elif step in base_steps:
                results.append(_absent(step, "no request in this run, "
                                             f"{baseline.select(step).count:,} in the baseline",
                                       0))
            else:
                results.append(_absent(step, "named in the criteria's steps but in neither run",
                                       0))
            continue
        objectives = criteria.for_step(step)
        if not objectives:
            continue
        run_stats, base_stats = stats_of(run.select(step)), stats_of(baseline.select(step))
        results += [_step_result(step, o, run_stats, base_stats, run.duration, baseline.duration)
                    for o in objectives]
    return results


def compare_to_baseline(run: Run, baseline: Run,
                        criteria: Criteria | None = None) -> list[BudgetResult]:
    """Judge every step of ``run`` against the same step of ``baseline``.

    One result per step and applicable objective (``criteria``, else :data:`DEFAULT_CRITERIA`),
    with ``measured`` the run's value and ``detail`` the baseline value, the change and the
    limits. Steps present in only one run, or named in the criteria but in neither, give one
    failed result each; a metric that is NaN in either run fails with a detail.
    Raises RunDirError if a run's requests cannot be read.
    """
    return _compare(run.metrics(), baseline.metrics(), criteria or DEFAULT_CRITERIA)


def baseline_verdict(run: Run, baseline: Run, criteria: Criteria | None = None) -> Verdict:
    """:func:`compare_to_baseline` as a :class:`Verdict` (overall level, exit code, renderers).

    ``steps`` holds the run's own figures; ``notes`` name the baseline and warn when the two
    runs differ in scenario, mode, time compression or load scale (then throughput and even
    latency may not be comparable).
    """
    source, base_source = run.metrics(), baseline.metrics()
    results = _compare(source, base_source, criteria or DEFAULT_CRITERIA)
    precision = source.precision
    if base_source.precision != precision:
        precision = f"{precision}; baseline: {base_source.precision}"
    notes = [f"baseline: {baseline.path.name}"]
    notes += mismatch_notes(run.meta, baseline.meta, ("this run", "the baseline"),
                            ("scenario", "mode", "compress", "load_scale"))
    steps = {step: stats_of(source.select(step)) for step in source.steps()}
    return Verdict(scenario=run.scenario.name, precision=precision, results=results,
                   steps=steps, notes=notes)


_WHY = {"scenario": "a different scenario", "mode": "a simulation against a real run",
        "compress": "a different time compression", "load_scale": "a different load scale"}


def mismatch_notes(a: Mapping[str, Any], b: Mapping[str, Any], names: tuple[str, str],
                   keys: tuple[str, ...] = ("scenario", "compress", "load_scale")) -> list[str]:
    """Warnings where two runs' meta.json differ in ``keys`` (scenario, mode, compress,
    load_scale), which makes their throughput and instance counts, or more, incomparable."""
    return [f"{key} differs ({names[0]}: {a.get(key)}, {names[1]}: {b.get(key)}): "
            f"{_WHY[key]}, figures may not be comparable"
            for key in keys if a.get(key) != b.get(key)]
