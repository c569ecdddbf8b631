"""``matchday report``: the three files from a run directory alone, plots present and not blank."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import junitparser
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import requests_frame
from matchday.cli import app
from reports.report import render_report
from scenarios import load_scenario
from simulator.run import simulate

FIXTURES = Path(__file__).parent / "fixtures" / "scenarios"
PLOTS = ("traffic", "latency", "instances", "health", "links", "recovery")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """zone-loss.yaml simulated per request: chaos, autoscaling, a failing budget, a recovery."""
    path = tmp_path_factory.mktemp("sim") / "run"
    simulate(load_scenario(FIXTURES / "zone-loss.yaml"), fidelity="flow", out=path)
    return path


def _images(html: str) -> dict[str, np.ndarray]:
    found = re.findall(r'<h2 id="([a-z]+)">[^<]*</h2><img alt="[^"]*" '
                       r'src="data:image/png;base64,([^"]+)"', html)
    return {fid: matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png")
            for fid, data in found}


def test_report_files_from_a_simulated_run(simulated):
    report = render_report(simulated)
    html = report.html.read_text()
    images = _images(html)
    assert set(images) == set(PLOTS)
    for fid, pixels in images.items():
        flat = pixels.reshape(-1, pixels.shape[-1])
        assert len(np.unique(flat[:: max(1, len(flat) // 20000)], axis=0)) > 5, fid  # not blank
    assert "http://" not in html and "https://" not in html  # self-contained
    assert html.index('id="budgets"') < html.index('<img')  # the verdict table first
    assert 'class="verdict fail"' in html


def test_markdown_starts_with_the_verdict_table_and_lists_offenders(simulated):
    md = render_report(simulated).markdown.read_text()
    lines = md.splitlines()
    assert lines[0].startswith("## matchday · zone-loss") and "fail" in lines[0]
    table = [i for i, l in enumerate(lines) if l.startswith("| step | budget")]
    offenders = lines.index("**Top offenders**")
    assert table and table[0] < offenders
    assert "p(99)<400 [during zone-c-lost]" in md
    assert len(md) < 4000  # short enough for a CI job summary


def test_junit_parses_back_with_one_case_per_budget(simulated):
    report = render_report(simulated)
    xml = junitparser.JUnitXml.fromfile(str(report.junit))
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    cases = [case for suite in suites for case in suite]
    assert len(cases) == len(report.verdict.results) == 3
    failed = [c for c in cases if any(isinstance(r, junitparser.Failure) for r in c.result)]
    assert len(failed) == sum(r.verdict == "fail" for r in report.verdict.results)
    message = next(r for r in failed[0].result if isinstance(r, junitparser.Failure)).message
    assert "measured" in message and "budget p(99)<400" in message


def test_warnings_are_properties_not_failures(make_run, tmp_path):
    t = np.arange(0, 100, 0.1)
    frame = pd.concat([requests_frame(t, 120.0),  # between the pass (100) and warn (150) p95
                       requests_frame(np.arange(0, 100, 1.0), 40.0, step="place_bet")])
    run = make_run(frame)
    report = render_report(run, tmp_path / "out")
    xml = report.junit.read_text()
    assert 'name="verdict" value="warn"' in xml and "<failure" not in xml
    suite = junitparser.JUnitXml.fromfile(str(report.junit))
    cases = [c for s in suite for c in s]
    warn = next(c for c in cases if c.name.startswith("p(95)<100"))
    assert not any(isinstance(r, junitparser.Failure) for r in warn.result)


def test_hand_made_run_without_timeline_renders_what_it_can(make_run, tmp_path):
    run = make_run(requests_frame(np.arange(0, 100, 0.5), 20.0))
    report = render_report(run, tmp_path / "out")
    images = _images(report.html.read_text())
    assert {"latency", "links"} <= set(images)
    assert "traffic" not in images  # no timeline.csv, no traffic plot (and no crash)


def test_report_cli_and_bad_run_dir(simulated, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(simulated), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").exists() and "verdict: fail" in result.output
    assert runner.invoke(app, ["report", str(tmp_path / "nope")]).exit_code == 2


def _latency_run(make_run, factor: float) -> Path:
    t = np.arange(0, 100, 0.1)
    return make_run(pd.concat([requests_frame(t, 50.0 * factor),
                               requests_frame(np.arange(0, 100, 1.0), 40.0, step="place_bet")]))


@pytest.mark.parametrize("factor,code", [(1.05, 0), (1.5, 1)])
def test_gate_against_a_baseline(make_run, factor, code):
    baseline, run = _latency_run(make_run, 1.0), _latency_run(make_run, factor)
    result = CliRunner().invoke(app, ["gate", str(run), "--baseline", str(baseline)])
    assert result.exit_code == code, result.output
    assert "p99 <= +10% of baseline" in result.output and "vs baseline" in result.output


def test_gate_baseline_with_criteria_file_and_bad_one(make_run, tmp_path):
    baseline, run = _latency_run(make_run, 1.0), _latency_run(make_run, 1.2)
    criteria = tmp_path / "criteria.yaml"
    criteria.write_text('baseline:\n  p99: {pass: "max(*1.3, +50ms)"}\n')
    ok = CliRunner().invoke(app, ["gate", str(run), "--baseline", str(baseline),
                                  "--criteria", str(criteria)])
    assert ok.exit_code == 0, ok.output  # +20 % is inside max(x1.3, +50 ms)
    criteria.write_text('baseline:\n  p99: {pass: "+10% please"}\n')
    bad = CliRunner().invoke(app, ["gate", str(run), "--baseline", str(baseline),
                                   "--criteria", str(criteria)])
    assert bad.exit_code == 2 and "criteria.yaml:2" in bad.output


def test_report_with_baseline_adds_its_rows_to_junit(make_run, tmp_path):
    baseline, run = _latency_run(make_run, 1.0), _latency_run(make_run, 1.5)
    result = CliRunner().invoke(app, ["report", str(run), "--baseline", str(baseline),
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    xml = (tmp_path / "r" / "junit.xml").read_text()
    assert "of baseline" in xml and "BudgetExceeded" in xml


def test_compare_exit_codes_and_plot(make_run, tmp_path):
    a, same, slower = (_latency_run(make_run, f) for f in (1.0, 1.0, 1.3))
    runner = CliRunner()
    ok = runner.invoke(app, ["compare", str(a), str(same), "--plot", str(tmp_path / "a.png")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "a.png").stat().st_size > 1000
    far = runner.invoke(app, ["compare", str(a), str(slower), "--tolerance", "15%",
                              "--plot", str(tmp_path / "b.png")])
    assert far.exit_code == 1 and "+30.0" in far.output
    assert runner.invoke(app, ["compare", str(a), str(slower), "--tolerance", "lots"]).exit_code == 2
    assert runner.invoke(app, ["compare", str(a), str(tmp_path / "none")]).exit_code == 2
