"""Plain-text rendering of a verdict: the table the gate prints in a terminal or a CI log."""

from __future__ import annotations

import math

from reports.verdict import Verdict

_MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}


def _ms(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.1f}"


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    out = [line.format(*header).rstrip(), line.format(*["-" * w for w in widths]).rstrip()]
    out += [line.format(*r).rstrip() for r in rows]
    return out


def render_table(verdict: Verdict) -> str:
    """The budgets (one line each) and the steps' figures, then the overall verdict."""
    lines = [f"scenario: {verdict.scenario}", f"precision: {verdict.precision}", ""]
    if verdict.results:
        rows = [[r.step, r.budget + (f" (warn {r.warn})" if r.warn else ""), r.scope,
                 r.measured_text(), _MARK[r.verdict], r.detail] for r in verdict.results]
        lines += _grid(["step", "budget", "scope", "measured", "verdict", "detail"], rows)
    else:
        lines.append("no budgets")
    if verdict.steps:
        lines.append("")
        rows = [[step, f"{s.count:,}", "—" if math.isnan(s.error_rate) else f"{s.error_rate:.3%}",
                 _ms(s.p50), _ms(s.p95), _ms(s.p99), _ms(s.max)]
                for step, s in verdict.steps.items()]
        lines += _grid(["step", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                       rows)
    lines += [*([""] + verdict.notes if verdict.notes else []), "",
              f"verdict: {_MARK[verdict.overall]} "
              + ", ".join(f"{sum(r.verdict == k for r in verdict.results)} {k}"
                          for k in ("pass", "warn", "fail"))]
    return "\n".join(lines)
