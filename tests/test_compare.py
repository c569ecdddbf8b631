"""``matchday compare`` logic: rows, errors, tolerance, Markdown and the plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import colors, image

from conftest import requests_frame
from reports.compare import (
    COLOUR_A, COLOUR_B, Comparison, Row, compare_runs, error_pct, parse_tolerance,
)
from reports.rundir import Run

N = 1000
STEPS = ("fetch_odds", "place_bet")


def frame(factor: float = 1.0, n: int = N, steps=STEPS) -> pd.DataFrame:
    """``n`` requests per step over the 100 s run, latencies 10-200 ms × ``factor``."""
    return pd.concat([requests_frame(np.linspace(0, 99, n), np.linspace(10, 200, n) * factor,
                                     step=s) for s in steps], ignore_index=True)


def timeline(path: Path, **columns) -> Path:
    """Add a 100-row timeline.csv with ``columns`` (name → value or array) to a run dir."""
    data = {"t": np.arange(100), "users": 50}
    data.update({k.replace("__", "."): v for k, v in columns.items()})
    pd.DataFrame(data).to_csv(path / "timeline.csv", index=False)
    return path


def instances(api_a=2, api_b=2, bets_a=1, bets_b=1):
    return {"instances__api__eu-a": api_a, "instances__api__eu-b": api_b,
            "instances__bets__eu-a": bets_a, "instances__bets__eu-b": bets_b}


def rows_of(comparison: Comparison) -> dict[tuple[str, str], Row]:
    return {(r.name, r.metric): r for r in comparison.rows}


# --- tolerance and error -----------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [("15%", 0.15), ("0.15", 0.15), (" 15 % ", 0.15),
                                        ("0", 0.0), ("0%", 0.0), ("1", 1.0), ("150%", 1.5),
                                        (".5", 0.5), ("2.5%", 0.025)])
def test_parse_tolerance(text, value):
    assert parse_tolerance(text) == pytest.approx(value)


@pytest.mark.parametrize("text,needle", [
    ("", "is not a tolerance"), ("abc", "is not a tolerance"), ("-5%", "is not a tolerance"),
    ("15%%", "is not a tolerance"), ("nan", "is not a tolerance"), ("1e", "is not a tolerance"),
    ("15", "did you mean '15%'"), ("1.5", "a fraction in [0, 1]"),
])
def test_parse_tolerance_rejects_nonsense(text, needle):
    with pytest.raises(ValueError) as info:
        parse_tolerance(text)
    assert needle in str(info.value)


def test_error_pct():
    assert error_pct(100.0, 120.0) == pytest.approx(20.0)
    assert error_pct(100.0, 80.0) == pytest.approx(-20.0)
    assert error_pct(0.0, 0.0) == 0.0
    assert error_pct(0.0, 3.0) == math.inf
    assert math.isnan(error_pct(math.nan, 3.0)) and math.isnan(error_pct(3.0, math.nan))


# --- comparisons of run directories -----------------------------------------------------------

def test_identical_runs_have_zero_error(make_run):
    a = Run(timeline(make_run(frame()), **instances()))
    b = Run(timeline(make_run(frame()), **instances()))
    comparison = compare_runs(a, b, tolerance=0.0)
    rows = rows_of(comparison)
    expected = {(s, m) for s in STEPS for m in ("p50", "p95", "p99", "rps")}
    expected |= {(s, m) for s in ("api", "bets") for m in ("instances_mean", "instances_max")}
    assert set(rows) == expected
    assert all(r.error_pct == 0 for r in comparison.rows)
    assert comparison.exceeded == [] and comparison.exit_code == 0
    assert rows[("fetch_odds", "p99")].a == pytest.approx(np.percentile(np.linspace(10, 200, N),
                                                                         99))
    assert rows[("fetch_odds", "rps")].a == pytest.approx(N / 100)
    assert rows[("api", "instances_max")].a == 4  # 2 + 2, summed over the zones
    assert comparison.notes == []
    assert (comparison.a_label, comparison.b_label) == (a.path.name, b.path.name)


@pytest.mark.parametrize("as_histogram", [False, True])
def test_runs_20_percent_apart_exceed_15_percent(make_run, as_histogram):
    a = Run(make_run(frame(), as_histogram=as_histogram))
    b = Run(make_run(frame(1.2), as_histogram=as_histogram))
    strict, loose = compare_runs(a, b, 0.15), compare_runs(a, b, 0.25)
    latency = [r for r in strict.rows if r.metric in ("p50", "p95", "p99")]
    # Histogram percentiles are within 1 % of the exact ones, so the error is 20 ± 2.5 %.
    for r in latency:
        assert r.error_pct == pytest.approx(20.0, abs=0.01 if not as_histogram else 2.5)
    assert set(strict.exceeded) == set(latency)
    assert strict.exit_code == 1
    assert loose.exceeded == [] and loose.exit_code == 0
    assert all(r.error_pct == 0 for r in strict.rows if r.metric == "rps")


def test_throughput_difference(make_run):
    a = Run(make_run(frame()))
    b = Run(make_run(frame(n=800)))
    comparison = compare_runs(a, b, 0.15)
    rps = rows_of(comparison)[("place_bet", "rps")]
    assert (rps.a, rps.b) == (pytest.approx(10.0), pytest.approx(8.0))
    assert rps.error_pct == pytest.approx(-20.0) and rps.unit == "req/s"
    assert rps in comparison.exceeded and comparison.exit_code == 1


def test_instance_counts_mean_and_max(make_run):
    # B runs one more api instance in eu-a for the second half of the run.
    a = Run(timeline(make_run(frame()), **instances()))
    b = Run(timeline(make_run(frame()), **instances(api_a=np.r_[np.full(50, 2), np.full(50, 3)])))
    rows = rows_of(compare_runs(a, b, 0.15))
    mean, peak = rows[("api", "instances_mean")], rows[("api", "instances_max")]
    assert (mean.a, mean.b, mean.error_pct) == (4.0, 4.5, pytest.approx(12.5))
    assert (peak.a, peak.b, peak.error_pct) == (4.0, 5.0, pytest.approx(25.0))
    assert rows[("bets", "instances_max")].error_pct == 0
    assert mean.unit == "instances"


def test_service_in_one_timeline_only_is_exceeded(make_run):
    a = Run(timeline(make_run(frame()), **instances()))
    b = Run(timeline(make_run(frame()), instances__api__eu_a=4))
    comparison = compare_runs(a, b, 0.15)
    bets = rows_of(comparison)[("bets", "instances_mean")]
    assert math.isnan(bets.b) and bets in comparison.exceeded
    assert rows_of(comparison)[("api", "instances_mean")].error_pct == 0


@pytest.mark.parametrize("with_a,with_b", [(False, False), (True, False), (False, True)])
def test_runs_without_timeline_omit_instances(make_run, with_a, with_b):
    a_dir, b_dir = make_run(frame()), make_run(frame())
    if with_a:
        timeline(a_dir, **instances())
    if with_b:
        timeline(b_dir, **instances())
    comparison = compare_runs(Run(a_dir), Run(b_dir))
    assert not [r for r in comparison.rows if r.metric.startswith("instances")]
    assert comparison.exit_code == 0
    assert any("instance counts not compared" in n for n in comparison.notes)


def test_timeline_without_instance_columns(make_run):
    a = Run(timeline(make_run(frame())))
    b = Run(timeline(make_run(frame())))
    comparison = compare_runs(a, b)
    assert {r.metric for r in comparison.rows} == {"p50", "p95", "p99", "rps"}


def test_step_in_one_run_only_is_exceeded(make_run):
    a = Run(make_run(frame()))
    b = Run(make_run(frame(steps=("fetch_odds",))))
    comparison = compare_runs(a, b, 1.0)
    missing = [r for r in comparison.rows if r.name == "place_bet"]
    assert len(missing) == 4 and all(math.isnan(r.b) for r in missing)
    assert set(comparison.exceeded) == set(missing) and comparison.exit_code == 1


def test_mismatched_scale_is_noted(make_run):
    a_dir = make_run(frame())
    meta = json.loads((a_dir / "meta.json").read_text())
    meta["compress"] = 20
    (a_dir / "meta.json").write_text(json.dumps(meta))
    comparison = compare_runs(Run(a_dir), Run(make_run(frame())))
    assert any(n.startswith("compress differs (A: 20, B: 1.0)") for n in comparison.notes)


def test_negative_tolerance_rejected(make_run):
    run = Run(make_run(frame()))
    with pytest.raises(ValueError, match="tolerance"):
        compare_runs(run, run, -0.1)


def test_markdown(make_run):
    a = Run(timeline(make_run(frame()), **instances()))
    b = Run(timeline(make_run(frame(1.2)), **instances()))
    text = compare_runs(a, b, 0.15, labels=("sim", "real")).to_markdown()
    lines = text.splitlines()
    assert lines[:2] == ["A: `sim`  ", "B: `real`"]
    assert "**FAIL**: 6 of 12 figures differ by more than 15%" in text
    assert "| name | metric | A | B | error | |" in lines
    p99 = next(line for line in lines if line.startswith("| fetch_odds | p99 |"))
    assert "+20.0 %" in p99 and p99.endswith("| **exceeded** |")
    rps = next(line for line in lines if line.startswith("| fetch_odds | rps |"))
    assert "10.0 req/s" in rps and rps.endswith("| ok |")
    assert "| api | instances_max | 4.0 instances | 4.0 instances | +0.0 % | ok |" in lines
    same = compare_runs(a, a, 0.15).to_markdown()
    assert "**PASS**: all 12 figures within 15%" in same and "exceeded" not in same


def _has_colour(pixels: np.ndarray, colour: str) -> bool:
    rgb = np.asarray(colors.to_rgb(colour))
    return bool((np.abs(pixels[..., :3] - rgb).max(axis=-1) < 0.02).any())


def test_plot_is_a_non_blank_png_with_both_runs(make_run, tmp_path):
    a = Run(timeline(make_run(frame()), **instances()))
    b = Run(timeline(make_run(frame(1.2)), **instances()))
    out = compare_runs(a, b, 0.15).plot(tmp_path / "compare.png")
    assert out == tmp_path / "compare.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(out)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 1
    # Both runs' bars are drawn, in their fixed colours.
    assert _has_colour(pixels, COLOUR_A) and _has_colour(pixels, COLOUR_B)


def test_plot_survives_a_missing_step(make_run, tmp_path):
    a = Run(make_run(frame()))
    b = Run(make_run(frame(steps=("fetch_odds",))))
    out = compare_runs(a, b).plot(tmp_path / "partial.png")
    pixels = image.imread(out)
    assert _has_colour(pixels, COLOUR_A) and _has_colour(pixels, COLOUR_B)
