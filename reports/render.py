"""Renderers of a judged run: Markdown for a CI job summary, JUnit XML for a test report, and
one self-contained HTML page (images embedded, nothing fetched when it is opened)."""

from __future__ import annotations

import base64
import html
import io
import math
import xml.etree.ElementTree as ET
from typing import Any

from matplotlib.figure import Figure

from reports.verdict import BudgetResult, Verdict

MARK = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail"}


def _budget_text(r: BudgetResult) -> str:
    return r.budget + (f" (warn {r.warn})" if r.warn else "")


def _overshoot(r: BudgetResult) -> float:
    """How far over its budget a result is, to rank offenders (inf when nothing was measured)."""
    if r.measured is None:
        return math.inf
    try:
        from scenarios import parse_threshold

        limit = parse_threshold(r.budget).limit
    except ValueError:
        return 0.0
    return r.measured / limit if limit else math.inf


def markdown(verdict: Verdict, meta: dict[str, Any], title: str, top: int = 5) -> str:
    """A short summary: the verdict table first, then the worst offenders and the steps."""
    lines = [f"## {title}: {MARK[verdict.overall]}", ""]
    mode = meta.get("mode")
    if mode:
        lines.append(f"`{meta.get('scenario')}` · {mode}"
                     + (f" ({meta.get('fidelity')})" if meta.get("fidelity") else "")
                     + f" · {verdict.precision}")
        lines.append("")
    if verdict.results:
        lines += ["| step | budget | scope | measured | verdict |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r.step} | `{_budget_text(r)}` | {r.scope} | {r.measured_text()} | "
                  f"{MARK[r.verdict]} |" for r in verdict.results]
    else:
        lines.append("No budgets.")
    offenders = sorted((r for r in verdict.results if r.verdict != "pass"), key=_overshoot,
                       reverse=True)[:top]
    if offenders:
        lines += ["", "**Top offenders**", ""]
        lines += [f"1. `{r.step}` {r.budget} [{r.scope}]: {r.measured_text()}"
                  + (f" — {r.detail}" if r.detail else "") for r in offenders]
    if verdict.steps:
        lines += ["", "<details><summary>Steps</summary>", "",
                  "| step | requests | errors | p50 ms | p95 ms | p99 ms |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for step, s in verdict.steps.items():
            rate = "—" if math.isnan(s.error_rate) else f"{s.error_rate:.3%}"
            lines.append(f"| {step} | {s.count:,} | {rate} | {s.p50:,.1f} | {s.p95:,.1f} | "
                         f"{s.p99:,.1f} |")
        lines += ["", "</details>"]
    lines += [*([""] + verdict.notes if verdict.notes else []), ""]
    return "\n".join(lines)


def junit(verdict: Verdict, suite: str) -> bytes:
    """One testcase per budget; a failure carries the measured value and the budget; a warning
    is a passing testcase with a ``verdict=warn`` property."""
    cases = verdict.results
    root = ET.Element("testsuites", name="matchday", tests=str(len(cases)),
                      failures=str(sum(r.verdict == "fail" for r in cases)))
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)),
                       failures=str(sum(r.verdict == "fail" for r in cases)), errors="0",
                       skipped="0")
    props = ET.SubElement(ts, "properties")
    ET.SubElement(props, "property", name="precision", value=verdict.precision)
    ET.SubElement(props, "property", name="verdict", value=verdict.overall)
    for r in cases:
        tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{r.step}",
                           name=f"{_budget_text(r)} [{r.scope}]", time="0")
        case_props = ET.SubElement(tc, "properties")
        ET.SubElement(case_props, "property", name="verdict", value=r.verdict)
        ET.SubElement(case_props, "property", name="measured", value=r.measured_text())
        if r.verdict == "fail":
            message = f"{r.step}: measured {r.measured_text()}, budget {r.budget} ({r.scope})"
            failure = ET.SubElement(tc, "failure", message=message, type="BudgetExceeded")
            failure.text = r.detail or message
        elif r.verdict == "warn":
            ET.SubElement(tc, "system-out").text = (
                f"warning: measured {r.measured_text()} misses {r.budget} but meets {r.warn}")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def png(figure: Figure) -> bytes:
    """A figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}th{background:#f5f5f5}
tr.fail td{background:#fdecea}tr.warn td{background:#fff8e1}tr.pass td{background:#f1f8f1}
.verdict{font-size:1.3rem;font-weight:600}.pass{color:#2e7d32}.warn{color:#b26a00}
.fail{color:#c62828}img{max-width:100%;border:1px solid #eee}.meta{color:#666;font-size:.85rem}
"""


def html_page(verdict: Verdict, meta: dict[str, Any], title: str,
              figures: list[tuple[str, str, bytes]]) -> str:
    """The whole report as one HTML document; ``figures`` are (id, caption, PNG bytes)."""
    e = html.escape
    rows = "".join(
        f'<tr class="{r.verdict}"><td>{e(r.step)}</td><td><code>{e(_budget_text(r))}</code></td>'
        f"<td>{e(r.scope)}</td><td>{e(r.measured_text())}</td><td>{e(MARK[r.verdict])}</td>"
        f"<td>{e(r.detail)}</td></tr>" for r in verdict.results)
    steps = "".join(
        f"<tr><td>{e(step)}</td><td>{s.count:,}</td>"
        f"<td>{'—' if math.isnan(s.error_rate) else f'{s.error_rate:.3%}'}</td>"
        f"<td>{s.p50:,.1f}</td><td>{s.p95:,.1f}</td><td>{s.p99:,.1f}</td><td>{s.max:,.1f}</td>"
        "</tr>" for step, s in verdict.steps.items())
    images = "".join(
        f'<h2 id="{e(fid)}">{e(caption)}</h2><img alt="{e(caption)}" '
        f'src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        for fid, caption, data in figures)
    facts = " · ".join(e(f"{k}: {meta[k]}") for k in ("mode", "fidelity", "seed", "compress",
                                                      "load_scale", "started_at")
                       if meta.get(k) is not None)
    notes = "".join(f"<p class=meta>{e(n)}</p>" for n in verdict.notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{e(title)}</h1>
<p class="verdict {verdict.overall}" id="verdict">Verdict: {e(MARK[verdict.overall])}</p>
<p class=meta>{facts}<br>{e(verdict.precision)}</p>{notes}
<h2>Budgets</h2>
<table id="budgets"><tr><th>step</th><th>budget</th><th>scope</th><th>measured</th>
<th>verdict</th><th>detail</th></tr>{rows or '<tr><td colspan=6>no budgets</td></tr>'}</table>
<h2>Steps</h2>
<table id="steps"><tr><th>step</th><th>requests</th><th>errors</th><th>p50 ms</th>
<th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>{steps}</table>
{images}
</body></html>
"""
