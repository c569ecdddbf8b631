"""``matchday compare RUN_A RUN_B``: two runs side by side, typically a simulation and a real run.

For each step: p50 / p95 / p99 latency and throughput (requests per second of run time); for
each service: the mean and the maximum instance count over the run (the timeline's
``instances.<service>.<zone>`` columns summed over zones; omitted unless both runs have a
timeline with instance columns). Each row carries the error of B relative to A, in % of A.

The comparison fails (exit code 1) when any row's absolute error exceeds the tolerance, or when
a row cannot be compared at all (a step or service in only one run, a NaN figure): a step the
model does not produce is as much a discrepancy as a wrong percentile.

Figures are compared as measured, without rescaling: run both sides at the same time
compression and load scale (``matchday simulate --compress/--load-scale`` as the real run used).
When they differ, :attr:`Comparison.notes` says so.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from reports.baseline import mismatch_notes
from reports.metrics import stats_of
from reports.rundir import Run

COLOUR_A = "#1f77b4"
"""Run A's colour in every compare plot (matplotlib's tab:blue)."""
COLOUR_B = "#ff7f0e"
"""Run B's colour in every compare plot (matplotlib's tab:orange)."""
COLOUR_EXCEEDED = "#d62728"
"""Error annotations beyond the tolerance (tab:red)."""

LATENCY_METRICS = ("p50", "p95", "p99")
UNITS = {"p50": "ms", "p95": "ms", "p99": "ms", "rps": "req/s", "instances_mean": "instances",
         "instances_max": "instances"}
"""Every metric a row may have, with its unit."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One figure of both runs. ``name`` is a step (latency, rps) or a service (instances).

    ``error_pct`` = (b − a) / a × 100: 0 when both are 0, ±inf when only ``a`` is 0, NaN when
    either figure is missing (NaN).
    """

    name: str
    metric: str
    a: float
    b: float
    error_pct: float

    @property
    def unit(self) -> str:
        """The unit of ``a`` and ``b``."""
        return UNITS[self.metric]


def error_pct(a: float, b: float) -> float:
    """B relative to A in % of A (see :class:`Row`)."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if a == 0:
        return 0.0 if b == 0 else math.copysign(math.inf, b)
    return (b - a) / abs(a) * 100


@dataclasses.dataclass
class Comparison:
    """Run B against run A, row by row, judged by a tolerance (a fraction: 0.15 is 15 %)."""

    a_label: str
    b_label: str
    rows: list[Row]
    tolerance: float
    notes: list[str] = dataclasses.field(default_factory=list)

    def within(self, row: Row) -> bool:
        """Whether ``row``'s absolute error is at most the tolerance (False if not finite)."""
        # The slack keeps a row exactly at the tolerance (20 % off at 20 %) within it.
        return math.isfinite(row.error_pct) and abs(row.error_pct) <= self.tolerance * 100 + 1e-9

    @property
    def exceeded(self) -> list[Row]:
        """The rows beyond the tolerance or not comparable, in row order."""
        return [r for r in self.rows if not self.within(r)]

    @property
    def exit_code(self) -> int:
        """0 when every row is within the tolerance, 1 otherwise."""
        return 1 if self.exceeded else 0

    def to_markdown(self) -> str:
        """A verdict line, then one table row per figure (out-of-tolerance rows marked)."""
        bad = self.exceeded
        verdict = (f"**FAIL**: {len(bad)} of {len(self.rows)} figures differ by more than "
                   f"{self.tolerance:.0%}" if bad else
                   f"**PASS**: all {len(self.rows)} figures within {self.tolerance:.0%}")
        lines = [f"A: `{self.a_label}`  ", f"B: `{self.b_label}`", "", verdict, "",
                 "| name | metric | A | B | error | |", "| --- | --- | ---: | ---: | ---: | --- |"]
        for r in self.rows:
            mark = "ok" if self.within(r) else "**exceeded**"
            lines.append(f"| {r.name} | {r.metric} | {_figure(r.a, r.unit)} | "
                         f"{_figure(r.b, r.unit)} | {_error_text(r.error_pct)} | {mark} |")
        if self.notes:
            lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path) -> Path:
        """Write a PNG: per step, grouped bars of A and B for p50, p95 and p99 (one panel each)
        and for throughput, each B bar annotated with its error (red beyond the tolerance)."""
        # A bare Figure renders with Agg and touches no pyplot state: no display needed, and
        # the backend of a caller that uses pyplot itself is left alone.
        from matplotlib.figure import Figure

        panels = [*LATENCY_METRICS, "rps"]
        steps = list(dict.fromkeys(r.name for r in self.rows if r.metric in panels))
        fig = Figure(figsize=(max(8.0, 1.6 * len(steps) + 4), 8))
        axes = fig.subplots(2, 2, squeeze=False)
        width = 0.38
        x = np.arange(len(steps))
        for ax, metric in zip(axes.flat, panels):
            rows = {r.name: r for r in self.rows if r.metric == metric}
            a = [rows[s].a if s in rows else math.nan for s in steps]
            b = [rows[s].b if s in rows else math.nan for s in steps]
            ax.bar(x - width / 2, a, width, color=COLOUR_A, label="A")
            bars_b = ax.bar(x + width / 2, b, width, color=COLOUR_B, label="B")
            top = np.nanmax([*a, *b, 0.0]) if steps else 0.0
            for step, bar in zip(steps, bars_b):
                row = rows.get(step)
                if row is None:
                    continue
                height = bar.get_height() if math.isfinite(bar.get_height()) else 0.0
                ax.annotate(_error_text(row.error_pct), (bar.get_x() + bar.get_width() / 2,
                                                         height),
                            xytext=(0, 3), textcoords="offset points", ha="center",
                            va="bottom", fontsize=8,
                            color="black" if self.within(row) else COLOUR_EXCEEDED,
                            fontweight="normal" if self.within(row) else "bold")
            ax.set_ylim(0, top * 1.18 if top > 0 else 1)  # room for the annotations
            ax.set_title(f"{metric} ({UNITS[metric]})" if metric != "rps"
                         else "throughput (req/s)")
            ax.set_xticks(x, steps, rotation=30 if len(steps) > 3 else 0,
                          ha="right" if len(steps) > 3 else "center")
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
        handles, _ = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, [f"A: {self.a_label}", f"B: {self.b_label}"], loc="upper center",
                   bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
        fig.suptitle(f"B vs A per step (error in % of A, tolerance {self.tolerance:.0%})",
                     y=0.955, fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 0.94))
        out = Path(path)
        fig.savefig(out, dpi=110, format="png")
        return out


def _figure(value: float, unit: str) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.1f} {unit}"


def _error_text(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "+∞ %" if value > 0 else "−∞ %"
    return f"{value:+.1f} %"


_TOLERANCE = re.compile(r"^\s*(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<pct>%)?\s*$")


def parse_tolerance(text: str) -> float:
    """``"15%"`` → 0.15, ``"0.15"`` → 0.15; a bare number must be a fraction in [0, 1].

    Raises ValueError on anything else (negative, empty, ``"15"``: ambiguous, write ``15%``).
    """
    m = _TOLERANCE.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"{text!r} is not a tolerance (expected e.g. '15%' or '0.15')")
    value = float(m["num"])
    if m["pct"]:
        return value / 100
    if value > 1:
        raise ValueError(f"{text!r}: a tolerance without % is a fraction in [0, 1]; "
                         f"did you mean '{m['num']}%'?")
    return value


def _instances(run: Run) -> dict[str, pd.Series] | None:
    """Per service, the instance count per timeline row summed over zones; None if none."""
    timeline = run.timeline()
    if timeline is None:
        return None
    by_service: dict[str, list[str]] = {}
    for column in timeline.columns:
        if column.startswith("instances."):
            service, dot, _zone = column.removeprefix("instances.").rpartition(".")
            if dot and service:
                by_service.setdefault(service, []).append(column)
    if not by_service:
        return None
    # min_count=1: a row where every zone of a service is blank is missing, not 0 instances.
    return {service: timeline[columns].apply(pd.to_numeric, errors="coerce")
            .sum(axis=1, min_count=1)
            for service, columns in sorted(by_service.items())}


def compare_runs(a: Run, b: Run, tolerance: float = 0.15,
                 labels: Sequence[str] | None = None) -> Comparison:
    """Compare run ``b`` against run ``a`` (see the module doc); ``tolerance`` is a fraction.

    Labels default to the run directories' names. Raises RunDirError if a run cannot be read.
    """
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a non-negative fraction, not {tolerance!r}")
    a_label, b_label = labels if labels is not None else (a.path.name, b.path.name)
    source_a, source_b = a.metrics(), b.metrics()
    rows: list[Row] = []
    steps = list(dict.fromkeys([*source_a.steps(), *sorted(source_b.steps())]))
    for step in steps:
        # An absent step selects no request: its figures are NaN, so its rows fail.
        sa, sb = stats_of(source_a.select(step)), stats_of(source_b.select(step))
        for metric in LATENCY_METRICS:
            va, vb = float(getattr(sa, metric)), float(getattr(sb, metric))
            rows.append(Row(step, metric, va, vb, error_pct(va, vb)))
        ra = sa.count / source_a.duration if sa.count and source_a.duration > 0 else math.nan
        rb = sb.count / source_b.duration if sb.count and source_b.duration > 0 else math.nan
        rows.append(Row(step, "rps", ra, rb, error_pct(ra, rb)))

    notes = mismatch_notes(a.meta, b.meta, ("A", "B"))
    inst_a, inst_b = _instances(a), _instances(b)
    if inst_a is None or inst_b is None:
        missing = " and ".join(n for n, i in (("A", inst_a), ("B", inst_b)) if i is None)
        notes.append(f"instance counts not compared: no timeline with instances.* columns in "
                     f"{missing}")
    else:
        for service in list(dict.fromkeys([*inst_a, *inst_b])):
            for metric, how in (("instances_mean", "mean"), ("instances_max", "max")):
                va = float(getattr(inst_a[service], how)()) if service in inst_a else math.nan
                vb = float(getattr(inst_b[service], how)()) if service in inst_b else math.nan
                rows.append(Row(service, metric, va, vb, error_pct(va, vb)))
    return Comparison(a_label=a_label, b_label=b_label, rows=rows, tolerance=tolerance,
                      notes=notes)
