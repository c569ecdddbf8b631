"""``matchday gate`` and ``matchday validate``: verdict tables and exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import requests_frame
from matchday.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parents[1]
runner = CliRunner()


def gate(*args: str):
    return runner.invoke(app, ["gate", *map(str, args)])


@pytest.fixture
def good_run(make_run, tiny):
    """fetch_odds fast and recovered in time, place_bet without errors: every budget passes."""
    t = np.arange(0, 100, 0.1)
    frame = requests_frame(t, 20.0)
    bets = requests_frame(np.arange(0, 100, 1.0), 40.0, step="place_bet")
    import pandas as pd
    return make_run(pd.concat([frame, bets]))


def test_gate_passes_with_exit_0(good_run):
    result = gate(good_run)
    assert result.exit_code == 0, result.output
    assert "verdict: PASS 4 pass, 0 warn, 0 fail" in result.output
    assert "precision: exact latencies" in result.output


def test_gate_warn_still_exits_0(make_run):
    import pandas as pd
    t = np.arange(0, 100, 0.1)
    frame = pd.concat([requests_frame(t, 120.0),
                       requests_frame(np.arange(0, 100, 1.0), 40.0, step="place_bet")])
    result = gate(make_run(frame))
    assert result.exit_code == 0, result.output
    assert "WARN" in result.output and "verdict: WARN" in result.output


def test_gate_fails_with_exit_1_and_writes_summary(make_run, tmp_path):
    t = np.arange(0, 100, 0.1)
    run = make_run(requests_frame(t, 500.0))
    summary = tmp_path / "summary.json"
    result = gate(run, "--summary", summary)
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
    data = json.loads(summary.read_text())
    assert data["verdict"] == "fail"
    assert {b["budget"] for b in data["budgets"] if b["verdict"] == "fail"} >= {"p(99)<200"}


def test_gate_with_budget_file_replaces_scenario_budgets(good_run, tmp_path):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("budgets:\n  fetch_odds: ['p(50)<10']\n")
    result = gate(good_run, "--budgets", budgets)
    assert result.exit_code == 1 and "p(50)<10" in result.output
    assert "recovery_time" not in result.output


@pytest.mark.parametrize("content,needle", [
    ("budgets:\n  fetch_odds: ['p(95)<<3']\n", "budgets.yaml:2: budgets.fetch_odds[0].pass:"),
    ("budgets:\n  no_such_step: ['p(95)<3']\n", "budgets.yaml:2: budgets.no_such_step: unknown step"),
    ("nothing: 1\n", "a budget file has a 'budgets:' mapping"),
    ("budgets: [\n", "invalid YAML"),
])
def test_gate_bad_budget_file_exits_2(good_run, tmp_path, content, needle):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(content)
    result = gate(good_run, "--budgets", budgets)
    assert result.exit_code == 2
    assert needle in result.output


def test_gate_unreadable_run_dir_exits_2(tmp_path, good_run):
    assert gate(tmp_path / "missing").exit_code == 2
    broken = tmp_path / "broken"
    shutil.copytree(good_run, broken)
    (broken / "meta.json").write_text("{not json")
    result = gate(broken)
    assert result.exit_code == 2 and "invalid JSON" in result.output
    (broken / "meta.json").write_text(json.dumps({"schema_version": 99}))
    assert "schema_version 99" in gate(broken).output
    shutil.rmtree(broken)
    shutil.copytree(good_run, broken)
    (broken / "requests.parquet").unlink()
    result = gate(broken)
    assert result.exit_code == 2 and "no requests.parquet" in result.output


def test_gate_usage_errors_exit_2(good_run):
    assert gate().exit_code == 2
    assert gate(good_run, "--locust-csv", "x").exit_code == 2
    assert runner.invoke(app, ["gate", "--no-such-option"]).exit_code == 2


def _locust_budgets(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "locust-budgets.yaml"
    path.write_text(text)
    return path


def test_gate_locust_csv_pass_and_precision_note(tmp_path):
    budgets = _locust_budgets(tmp_path, 'budgets:\n  "/": ["p(95)<50", "error_rate<0.01"]\n')
    result = gate("--locust-csv", FIXTURES / "locust" / "x", "--budgets", budgets)
    assert result.exit_code == 0, result.output
    assert "Locust rounds response times into buckets" in result.output
    assert "3.0 ms" in result.output  # the 95% column of '/' in x_stats.csv


def test_gate_locust_csv_fail(tmp_path):
    budgets = _locust_budgets(tmp_path, 'budgets:\n  "/nope": ["error_rate<0.5"]\n')
    result = gate("--locust-csv", FIXTURES / "locust" / "x", "--budgets", budgets)
    assert result.exit_code == 1
    assert "100.00%" in result.output  # every /nope request failed (404)


def test_gate_locust_csv_window_scope(tmp_path):
    # Whole history spans 7 s; window [0, 3) holds the first rows' cumulative counts.
    budgets = _locust_budgets(tmp_path, 'budgets:\n  "/":\n    - {pass: "error_rate<0.01", window: [0, 3]}\n')
    result = gate("--locust-csv", FIXTURES / "locust" / "x", "--budgets", budgets)
    assert result.exit_code == 0, result.output
    assert "window 0-3s" in result.output


def test_gate_locust_csv_bad_input_exits_2(tmp_path):
    budgets = _locust_budgets(tmp_path, 'budgets:\n  "/": ["p(95)<50"]\n')
    assert gate("--locust-csv", tmp_path / "nothing", "--budgets", budgets).exit_code == 2
    assert gate("--locust-csv", FIXTURES / "locust" / "x").exit_code == 2  # no --budgets
    phase = _locust_budgets(tmp_path, 'budgets:\n  "/": [{pass: "p(95)<50", phase: first_half}]\n')
    result = gate("--locust-csv", FIXTURES / "locust" / "x", "--budgets", phase)
    assert result.exit_code == 2 and "needs a scenario" in result.output
    link = _locust_budgets(tmp_path, 'budgets:\n  "/": [{pass: "p(95)<50", link: wifi}]\n')
    result = gate("--locust-csv", FIXTURES / "locust" / "x", "--budgets", link)
    assert result.exit_code == 2 and "no mobile-link dimension" in result.output


def test_validate_catalogue_exits_0():
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    result = runner.invoke(app, ["validate", *map(str, files)])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok (") == len(files)


def test_validate_broken_exits_2_naming_file_line_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "scenarios" / "league-saturday.yaml").read_text()
                   .replace("extends: bases/", f"extends: {ROOT}/scenarios/bases/")
                   .replace("peak_users: 60000", "peak_users: lots"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    line = next(i for i, l in enumerate(bad.read_text().splitlines(), 1) if "peak_users" in l)
    assert f"{bad}:{line}: traffic.peak_users:" in result.output


def test_console_script_runs_as_a_process():
    exe = Path(sys.executable).parent / "matchday"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "matchday"]
    done = subprocess.run([*command, "validate", str(ROOT / "scenarios" / "ci-smoke.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ci-smoke" in done.stdout


@pytest.mark.parametrize("damage", ["meta_bytes", "events_bytes", "events_t", "scenario_bytes",
                                    "parquet"])
def test_gate_damaged_run_dir_exits_2(good_run, tmp_path, damage):
    broken = tmp_path / "damaged"
    shutil.copytree(good_run, broken)
    if damage == "meta_bytes":
        (broken / "meta.json").write_bytes(b"\xff\xfe{")
    elif damage == "events_bytes":
        (broken / "events.jsonl").write_bytes(b"\xff\n")
    elif damage == "events_t":
        (broken / "events.jsonl").write_text('{"t": 1, "kind": "a"}\n{"t": "2", "kind": "b"}\n')
    elif damage == "scenario_bytes":
        (broken / "scenario.yaml").write_bytes(b"name: \xff\xfe")
    else:
        (broken / "requests.parquet").write_bytes(b"PAR1 not really")
    result = gate(broken)
    assert result.exit_code == 2, result.output


def test_gate_summary_to_missing_directory_exits_2(good_run, tmp_path):
    result = gate(good_run, "--summary", tmp_path / "no" / "such" / "dir.json")
    assert result.exit_code == 2 and "cannot write the summary" in result.output


def test_gate_refreshes_summary_json_with_mode(good_run):
    (good_run / "summary.json").unlink(missing_ok=True)
    assert gate(good_run).exit_code == 0
    summary = json.loads((good_run / "summary.json").read_text())
    assert summary["verdict"] == "pass" and summary["mode"] == "sim"


def test_gate_locust_csv_rejects_dr_budgets(tmp_path):
    budgets = _locust_budgets(tmp_path, "budgets:\n  dr: {lost_bets: 0}\n")
    result = gate("--locust-csv", FIXTURES / "locust" / "x", "--budgets", budgets)
    assert result.exit_code == 2


@pytest.mark.parametrize("text,needle", [
    ("? [a, b]\n: 1\n", "a key must be a plain value"),
    ("a: &x [*x]\n", "too large once its aliases are expanded"),
    ("a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
     "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
     "too large once its aliases are expanded"),
    ("- a\n- b\n", "a scenario file must be a YAML mapping"),
    ("", "required key is missing"),
])
def test_validate_hostile_yaml_exits_2(tmp_path, text, needle):
    bad = tmp_path / "hostile.yaml"
    bad.write_text(text)
    good = ROOT / "scenarios" / "ci-smoke.yaml"
    result = runner.invoke(app, ["validate", str(bad), str(good)])
    assert result.exit_code == 2
    assert needle in result.output
    assert "ci-smoke.yaml: ok" in result.output  # the files after a bad one are still checked
