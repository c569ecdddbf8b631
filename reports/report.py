"""``matchday report``: render a run directory into report.html, report.md and junit.xml."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib.pyplot as plt

from reports import plots
from reports.render import html_page, junit, markdown, png
from reports.rundir import Run
from reports.verdict import Verdict, evaluate


@dataclasses.dataclass(frozen=True)
class Report:
    """The files written and the verdict they show."""

    html: Path
    markdown: Path
    junit: Path
    verdict: Verdict


def figures(run: Run, verdict: Verdict) -> list[tuple[str, str, bytes]]:
    """Every plot the run has data for, as (id, caption, PNG)."""
    source = run.metrics()
    timeline = run.timeline()
    scenario = run.scenario
    drawn = [
        ("traffic", "Users and requests over time", plots.traffic(timeline, scenario)),
        ("latency", "Latency per step against its budget",
         plots.latency(source, scenario, verdict.results)),
        ("instances", "Pods per service and zone", plots.instances(timeline, run.events())),
        ("health", "Cache hit ratio, errors and cost", plots.health(timeline, scenario)),
        ("links", "Latency by mobile link profile", plots.links(source, scenario)),
        ("recovery", "Recovery after each chaos action",
         plots.recovery(source, scenario, verdict.results)),
    ]
    out = []
    for fid, caption, figure in drawn:
        if figure is not None:
            out.append((fid, caption, png(figure)))
            plt.close(figure)
    return out


def render_report(run_dir: Path, out: Path | None = None,
                  extra: Verdict | None = None) -> Report:
    """Judge ``run_dir`` by its scenario's budgets and write the three files into ``out``
    (default: the run directory, whose summary.json is refreshed to match). ``extra`` results
    (baseline comparisons) are appended to the verdict."""
    run = Run(run_dir)
    verdict = evaluate(run.scenario, run.metrics(), run.events())
    if extra is not None:
        verdict.results.extend(extra.results)
        verdict.notes.extend(extra.notes)
    out = out or run.path
    out.mkdir(parents=True, exist_ok=True)
    if out == run.path:
        run.write_summary(verdict.to_summary(run.meta))
    title = f"matchday · {run.scenario.name}"
    paths = Report(out / "report.html", out / "report.md", out / "junit.xml", verdict)
    paths.markdown.write_text(markdown(verdict, run.meta, title), encoding="utf-8")
    paths.junit.write_bytes(junit(verdict, run.scenario.name))
    paths.html.write_text(html_page(verdict, run.meta, title, figures(run, verdict)),
                          encoding="utf-8")
    return paths
