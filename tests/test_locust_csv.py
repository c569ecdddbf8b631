"""reports.locust_csv: a MetricSource over plain Locust CSV output (--csv-full-history).

Fixtures in tests/fixtures/locust/: ``x`` is real Locust 2.47 output ('/' always ok, '/nope'
always 404); ``odds`` is hand-written in the same format: GET /odds and POST /odds under one
name, POST appearing only at t=2, the GET row missing at t=4 (its cumulative figures carry
forward), and rows whose percentiles are Locust's "no window yet" zeros.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from matchday.cli import app
from reports.locust_csv import LocustCsv, LocustCsvError, _column_for

FIXTURES = Path(__file__).parent / "fixtures" / "locust"
X = FIXTURES / "x"
ODDS = FIXTURES / "odds"
NAN = math.nan

STATS_HEADER = ("Type,Name,Request Count,Failure Count,Median Response Time,"
                "Average Response Time,Min Response Time,Max Response Time,Average Content Size,"
                "Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%")
HISTORY_HEADER = ("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,"
                  "95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,"
                  "Total Median Response Time,Total Average Response Time,"
                  "Total Min Response Time,Total Max Response Time,Total Average Content Size")


def same(a, b) -> bool:
    """Equal arrays, NaN equal to NaN."""
    return np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float)) is None


def write_locust(tmp_path: Path, history: list[tuple[int, str, str, int, int, int]],
                 name: str = "t") -> Path:
    """Locust-format CSVs from ``(second, method, name, total, failed, p100)`` history rows.

    Percentile columns are all ``p100`` (0 = Locust's "no window yet"); the stats file holds
    each entry's last cumulative figures.
    """
    prefix = tmp_path / name
    lines = [HISTORY_HEADER]
    last: dict[tuple[str, str], tuple[int, int]] = {}
    for second, method, step, total, failed, p100 in history:
        pct = ",".join([str(p100)] * 11) if total else ",".join(["N/A"] * 11)
        lines.append(f"{1700000000 + second},1,{method},{step},0.000000,0.000000,{pct},"
                     f"{total},{failed},5,5.0,1.0,9.0,10.0")
        last[(method, step)] = (total, failed)
    Path(f"{prefix}_stats_history.csv").write_text("\n".join(lines) + "\n")
    stats = [STATS_HEADER] + [
        f"{method},{step},{total},{failed},5,5.0,1.0,9.0,10.0,1.0,0.0,{','.join(['5'] * 11)}"
        for (method, step), (total, failed) in last.items()]
    Path(f"{prefix}_stats.csv").write_text("\n".join(stats) + "\n")
    return prefix


# --- whole run, from _stats.csv -------------------------------------------------------------

def test_steps_are_request_names_once_each():
    assert LocustCsv(X).steps() == ["/", "/nope"]
    assert LocustCsv(ODDS).steps() == ["/odds"]  # GET and POST: one step


def test_whole_run_figures_come_from_stats_csv():
    sel = LocustCsv(X).select("/")
    assert (sel.count, sel.errors) == (204, 0)
    assert sel.quantile(0.5) == 2 and sel.quantile(0.95) == 3 and sel.quantile(0.99) == 12
    assert sel.quantile(0.999) == 17 and sel.quantile(1.0) == 17
    assert sel.mean() == pytest.approx(2.1551977156865316)
    assert sel.minimum() == pytest.approx(1.0195610000209854)
    assert sel.maximum() == pytest.approx(17.372227000009843)
    nope = LocustCsv(X).select("/nope")
    assert (nope.count, nope.errors) == (67, 67)
    assert nope.quantile(0.99) == 6
    missing = LocustCsv(X).select("/absent")
    assert missing.count == 0 and math.isnan(missing.quantile(0.99))
    assert math.isnan(missing.mean()) and math.isnan(missing.maximum())


def test_quantile_uses_smallest_reported_percentile_at_or_above():
    sel = LocustCsv(X).select("/")
    assert sel.quantile(0.97) == 6      # 98% column, not 95% (3) nor 99% (12)
    assert sel.quantile(0.96) == 6
    assert sel.quantile(0.985) == 12    # 99% column
    assert sel.quantile(0.9) == 3
    assert sel.quantile(0.991) == 17    # 99.9% column
    assert _column_for(0.97) == ("98%", 0.98)
    assert _column_for(0.99) == ("99%", 0.99)
    assert _column_for(0.5) == ("50%", 0.5)
    assert _column_for(0.51) == ("66%", 0.66)


def test_whole_run_several_methods_under_one_name():
    sel = LocustCsv(ODDS).select("/odds")
    assert (sel.count, sel.errors) == (70, 4)
    assert sel.mean() == pytest.approx((50 * 4.0 + 20 * 30.0) / 70)
    assert sel.quantile(0.95) == 45 and sel.quantile(0.5) == 28  # worst of the methods
    assert (sel.minimum(), sel.maximum()) == (2.0, 50.0)


# --- scoped, from _stats_history.csv ---------------------------------------------------------

def test_scoped_counts_aggregate_methods_per_second():
    src = LocustCsv(ODDS)
    # rows t=1 (10 requests, 0 failed) before the span, t=4 (45, 3) last inside [2, 5)
    sel = src.select("/odds", [(2, 5)])
    assert (sel.count, sel.errors) == (35, 3)
    assert sel.mean() == pytest.approx((30 * 4.0 + 15 * 30.0 - 10 * 4.0) / 35)
    first = src.select("/odds", [(0, 3)])   # POST's first row is at t=2
    assert (first.count, first.errors) == (25, 1)
    assert first.mean() == pytest.approx((20 * 4.0 + 5 * 30.0) / 25)


def test_scoped_counts_carry_a_method_forward_over_a_missing_row():
    # t=4 has only a POST row: GET's 30 requests carry forward, the second adds 5 POSTs.
    sel = LocustCsv(ODDS).select("/odds", [(4, 5)])
    assert (sel.count, sel.errors) == (5, 1)
    assert sel.mean() == pytest.approx(30.0)
    last = LocustCsv(ODDS).select("/odds", [(5, 6)])
    assert (last.count, last.errors) == (25, 1)


def test_scoped_errors_counted_only_inside_the_span():
    src = LocustCsv(ODDS)
    sel = src.select("/odds", [(3, 5)])     # cumulative failures 1 (t=2) -> 3 (t=4)
    assert (sel.count, sel.errors) == (20, 2)
    assert src.select("/odds", [(0, 2)]).errors == 0
    assert src.select("/odds", [(0, 2), (4, 5)]).errors == 1
    nope = LocustCsv(X).select("/nope", [(2, 5)])   # cumulative 10 (t=1) -> 40 (t=4)
    assert (nope.count, nope.errors) == (30, 30)
    assert LocustCsv(X).select("/", [(2, 5)]).errors == 0


def test_scoped_percentiles_are_max_over_rows_and_methods():
    src = LocustCsv(ODDS)
    assert src.select("/odds", [(2, 3)]).quantile(0.99) == 7    # GET only: POST has no window
    assert src.select("/odds", [(2, 4)]).quantile(0.99) == 40   # POST's t=3 row
    assert src.select("/odds", [(2, 5)]).quantile(0.99) == 44   # POST's t=4 row
    assert src.select("/odds", [(2, 5)]).maximum() == 50
    assert src.select("/odds", [(5, 6)]).quantile(0.99) == 42


def test_no_window_zero_is_no_data_not_zero_ms():
    src = LocustCsv(X)
    early = src.select("/", [(0, 2)])       # the t=1 row: Locust wrote 0 (no window yet)
    assert early.count == 28
    assert math.isnan(early.quantile(0.99)) and math.isnan(early.maximum())
    assert src.select("/", [(0, 3)]).quantile(0.99) == 17   # t=2 has data
    assert math.isnan(LocustCsv(ODDS).select("/odds", [(1, 2)]).quantile(0.5))


def test_zero_below_a_positive_max_is_a_real_zero(tmp_path):
    prefix = tmp_path / "z"
    pct = "0,0,0,0,0,0,0,1,1,1,1"           # sub-0.5 ms responses round to 0 ms
    Path(f"{prefix}_stats_history.csv").write_text(
        f"{HISTORY_HEADER}\n1700000000,1,GET,/,0.000000,0.000000,{pct},5,0,0,0.2,0.1,1.0,1.0\n")
    Path(f"{prefix}_stats.csv").write_text(
        f"{STATS_HEADER}\nGET,/,5,0,0,0.2,0.1,1.0,1.0,1.0,0.0,{pct}\n")
    sel = LocustCsv(prefix).select("/", [(0, 1)])
    assert sel.quantile(0.5) == 0 and sel.quantile(0.99) == 1


def test_gate_fails_a_budget_on_a_window_without_locust_percentiles(tmp_path):
    budgets = tmp_path / "b.yaml"
    budgets.write_text('budgets:\n  "/": [{pass: "p(99)<50", window: [0, 2]}]\n')
    result = CliRunner().invoke(app, ["gate", "--locust-csv", str(X), "--budgets", str(budgets)])
    assert result.exit_code == 1, result.output
    budgets.write_text('budgets:\n  "/": [{pass: "p(99)<50", window: [0, 3]}]\n')
    result = CliRunner().invoke(app, ["gate", "--locust-csv", str(X), "--budgets", str(budgets)])
    assert result.exit_code == 0, result.output


def test_overlapping_and_adjacent_spans_count_once():
    src = LocustCsv(X)
    whole = src.select("/", [(0, 7)])
    assert whole.count == 169
    for spans in ([(0, 7), (2, 7)], [(0, 7), (0, 7)], [(0, 3), (3, 7)], [(3, 7), (0, 4)],
                  [(2, 5), (0, 7)], [(0, 7), (4, 4)]):
        sel = src.select("/", spans)
        assert sel.count == 169, spans
        assert sel.mean() == pytest.approx(whole.mean()), spans
    nope = src.select("/nope", [(0, 7), (2, 7)])
    assert (nope.count, nope.errors) == (59, 59)
    assert src.select("/", [(0, 2), (3, 5)]).count == 28 + (109 - 57)


# --- sliding quantile ------------------------------------------------------------------------

def test_sliding_quantile_is_the_rows_percentile_nan_without_data():
    src = LocustCsv(X)
    t, v = src.sliding_quantile("/", 0.99, 10, 0, 7)
    assert same(t, range(8))
    assert same(v, [NAN, NAN, 17, 17, 17, 17, 17, 17])
    _, v = src.sliding_quantile("/", 0.97, 10, 0, 7)   # 98% column, row by row
    assert same(v, [NAN, NAN, 17, 17, 17, 4, 3, 4])
    _, v = src.sliding_quantile("/nope", 0.5, 10, 1, 3)
    assert same(v, [NAN, 2, 2])
    t, v = src.sliding_quantile("/absent", 0.99, 10, 0, 2)
    assert same(v, [NAN, NAN, NAN])


def test_sliding_quantile_several_methods():
    _, v = LocustCsv(ODDS).sliding_quantile("/odds", 0.99, 10, 0, 5)
    assert same(v, [NAN, NAN, 7, 40, 44, 42])


# --- write outage ----------------------------------------------------------------------------

def _writes(fail_seconds: set[int], last: int = 12, step: str = "/bet") -> list:
    rows, total, failed = [], 0, 0
    for second in range(last + 1):
        total += 4
        failed += 4 if second in fail_seconds else 0
        rows.append((second, "POST", step, total, failed, 30))
    return rows


def test_write_outage_until_first_success_after_last_failure(tmp_path):
    src = LocustCsv(write_locust(tmp_path, _writes({4, 5, 6})))
    assert src.write_outage(["/bet"], 3, 12) == 4.0     # fails 4-6, ok again at 7
    assert src.write_outage(["/bet"], 2, 12) == 5.0
    assert src.write_outage(["/bet"], 8, 12) == 0.0     # nothing failed after 8
    assert src.write_outage(["/bet"], 0, 4) == 0.0      # [0, 4): the outage starts at 4
    assert src.write_outage(["/bet"], 0, 5) == 7.0


def test_write_outage_zero_when_nothing_failed(tmp_path):
    src = LocustCsv(write_locust(tmp_path, _writes(set())))
    assert src.write_outage(["/bet"], 0, 12) == 0.0
    assert src.write_outage(["/absent"], 0, 12) == 0.0


def test_write_outage_none_when_never_recovered(tmp_path):
    src = LocustCsv(write_locust(tmp_path, _writes({9, 10, 11, 12})))
    assert src.write_outage(["/bet"], 8, 13) is None


def test_write_outage_over_several_steps_and_methods(tmp_path):
    rows = _writes({3, 4}) + _writes({3, 4, 5, 6}, step="/wallet")
    rows += [(s, "GET", "/wallet", 2 * s, 0, 10) for s in range(13)]  # reads keep working
    src = LocustCsv(write_locust(tmp_path, sorted(rows, key=lambda r: r[0])))
    assert src.write_outage(["/bet"], 2, 12) == 3.0
    assert src.write_outage(["/bet", "/wallet"], 2, 12) == 5.0
    assert src.select("/wallet", [(3, 7)]).errors == 16


# --- malformed input -------------------------------------------------------------------------

def _copy(tmp_path: Path, stats: str | None = None, history: str | None = None) -> Path:
    prefix = tmp_path / "h"
    Path(f"{prefix}_stats.csv").write_text(
        Path(f"{X}_stats.csv").read_text() if stats is None else stats)
    Path(f"{prefix}_stats_history.csv").write_text(
        Path(f"{X}_stats_history.csv").read_text() if history is None else history)
    return prefix


HISTORY = Path(f"{X}_stats_history.csv").read_text()
STATS = Path(f"{X}_stats.csv").read_text()


@pytest.mark.parametrize("stats, history", [
    ("", None),
    (None, ""),
    (None, HISTORY.replace("1796397983,", "soon,", 1)),
    (None, HISTORY.replace(",28,0,2,", ",many,0,2,")),
    (None, HISTORY.replace(",28,0,2,", ",-28,0,2,")),
    (None, HISTORY.replace(",28,0,2,", ",28,x,2,")),
    (None, HISTORY.replace(",28,0,2,", ",28,30,2,")),       # more failures than requests
    (None, HISTORY.replace(",57,0,2,2.718", ",57,0,2,slow")),
    (None, HISTORY.replace("2,2,2,2,3,17,17", "2,2,fast,2,3,17,17", 1)),
    (None, HISTORY.replace("1796397984,5,GET,/,", "1796397984,5,GET,/,1,2,", 1)),  # 2 more fields
    (None, HISTORY + '1796397988,5,GET,"/,0\n'),              # unterminated quote
    (None, HISTORY.split("\n", 1)[0].replace("99%,", "") + "\n"),
    (STATS.replace(",204,0,", ",lots,0,"), None),
    (STATS.replace("GET,/,204,0,", "GET,/,204,,"), None),
    ("Type,Name\nGET,/\n", None),
    ("\x00\x01garbage\xff", None),
])
def test_malformed_input_raises_locust_csv_error(tmp_path, stats, history):
    prefix = _copy(tmp_path, stats, history)
    with pytest.raises(LocustCsvError):
        source = LocustCsv(prefix)
        for step in source.steps():
            source.select(step, [(0, 5)])
            source.sliding_quantile(step, 0.99, 10, 0, 5)
            source.write_outage([step], 0, 5)


def test_binary_and_missing_files_raise_locust_csv_error(tmp_path):
    prefix = _copy(tmp_path)
    Path(f"{prefix}_stats_history.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(LocustCsvError):
        LocustCsv(prefix)
    with pytest.raises(LocustCsvError, match="no such file"):
        LocustCsv(tmp_path / "nothing")
    (tmp_path / "d_stats.csv").mkdir()
    Path(f"{tmp_path / 'd'}_stats_history.csv").write_text(HISTORY)
    with pytest.raises(LocustCsvError):
        LocustCsv(tmp_path / "d")


def test_malformed_input_exits_2_from_the_gate(tmp_path):
    prefix = _copy(tmp_path, history=HISTORY.replace("1796397983,", "soon,", 1))
    budgets = tmp_path / "b.yaml"
    budgets.write_text('budgets:\n  "/": ["p(95)<50"]\n')
    result = CliRunner().invoke(app, ["gate", "--locust-csv", str(prefix),
                                      "--budgets", str(budgets)])
    assert result.exit_code == 2, result.output
    assert "Timestamp" in result.output


def test_stats_without_aggregated_row_is_fine(tmp_path):
    stats = "".join(line for line in STATS.splitlines(keepends=True)
                    if ",Aggregated," not in line)
    history = "".join(line for line in HISTORY.splitlines(keepends=True)
                      if ",Aggregated," not in line)
    src = LocustCsv(_copy(tmp_path, stats=stats))
    assert src.steps() == ["/", "/nope"]
    assert src.select("/").count == 204 and src.select("/nope").errors == 67
    assert src.select("/", [(0, 7)]).count == 169
    (tmp_path / "both").mkdir()
    src = LocustCsv(_copy(tmp_path / "both", stats, history))   # time 0 is now the first GET row
    assert src.select("/", [(0, 7)]).count == 204 and src.duration == 7.0


def test_header_only_files_have_no_steps(tmp_path):
    prefix = _copy(tmp_path, STATS.split("\n", 1)[0] + "\n", HISTORY.split("\n", 1)[0] + "\n")
    src = LocustCsv(prefix)
    assert src.steps() == [] and src.duration == 0.0
    assert src.select("/", [(0, 5)]).count == 0
    assert src.write_outage(["/"], 0, 5) == 0.0
