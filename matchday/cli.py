"""The ``matchday`` command line. Exit codes: 0 ok, 1 a budget failed, 2 bad input or usage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import numpy as np
import typer

from reports.baseline import baseline_verdict, load_criteria
from reports.compare import compare_runs, parse_tolerance
from reports.gate import gate_locust, gate_run
from reports.report import render_report
from reports.locust_csv import LocustCsvError
from reports.rundir import Run, RunDirError
from reports.table import render_table
from reports.verdict import Verdict
from scenarios import InputError, Scenario, catalogue, dump_scenario, find_scenario, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="matchday: match-day load tests and chaos simulations for betting backends.",
)

BAD_INPUT = 2


def _fail_input(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(BAD_INPUT)


def _load(name_or_path: str) -> Scenario:
    try:
        return load_scenario(find_scenario(name_or_path))
    except FileNotFoundError as exc:
        _fail_input(str(exc))
    except InputError as exc:
        _fail_input(str(exc))


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="scenario files", show_default=False)],
) -> None:
    """Check scenario files; print every problem as file:line: field: message (exit 2 if any)."""
    bad = 0
    for path in paths:
        try:
            scenario = load_scenario(path)
        except InputError as exc:
            bad += 1
            typer.echo(str(exc), err=True)
            continue
        typer.echo(f"{path}: ok ({scenario.name}, {scenario.duration:g} s, "
                   f"peak {scenario.traffic.peak_users:,.0f} users, "
                   f"{len(scenario.chaos)} chaos actions, "
                   f"{sum(len(v) for v in scenario.budgets.steps.values())} budgets)")
    if bad:
        typer.echo(f"{bad} of {len(paths)} scenario files are invalid", err=True)
        raise typer.Exit(BAD_INPUT)


@app.command("scenarios")
def list_scenarios() -> None:
    """List the scenario catalogue."""
    for name, path in catalogue().items():
        try:
            description = load_scenario(path).description
        except InputError:
            description = "(invalid: run matchday validate)"
        typer.echo(f"{name:<24} {description}")


@app.command()
def show(
    scenario: Annotated[str, typer.Argument(help="catalogue name or scenario file")],
    compress: Annotated[float, typer.Option(min=1e-9, help="time compression")] = 1.0,
    load_scale: Annotated[float, typer.Option(min=1e-9, help="load scale")] = 1.0,
    as_yaml: Annotated[bool, typer.Option("--yaml", help="print the resolved YAML")] = False,
) -> None:
    """Describe a scenario: its wave, phases, chaos schedule and budgets (optionally scaled)."""
    s = _load(scenario).scaled(compress=compress, load=load_scale)
    if as_yaml:
        typer.echo(dump_scenario(s), nl=False)
        return
    typer.echo(f"{s.name}: {s.description}")
    typer.echo(f"duration {s.duration:g} s, peak {s.traffic.peak_users:,.0f} users, "
               f"zones {', '.join(s.topology.zones('active'))}")
    typer.echo("\nwave (users):")
    for t in np.linspace(0, s.duration, 13):
        users = s.users_at(t)
        typer.echo(f"  t={t:>8.0f}s  {users:>10,.0f}  {'#' * int(40 * users / max(1.0, s.traffic.peak_users))}")
    for name, spans in s.phase_windows().items():
        typer.echo(f"phase {name}: " + ", ".join(f"{a:g}-{b:g}s" for a, b in spans))
    for a in s.chaos:
        typer.echo(f"chaos {a.ref}: {a.action} at {a.at:g}s for {a.duration:g}s")
    for step, items in s.budgets.steps.items():
        for item in items:
            typer.echo(f"budget {step}: {item.pass_}"
                       + (f" (warn {item.warn})" if item.warn else "") + f" [{item.scope_text}]")


@app.command()
def simulate(
    scenario: Annotated[str, typer.Argument(help="catalogue name or scenario file")],
    fidelity: Annotated[str, typer.Option(
        help="request: every request simulated; flow: per-second queues; auto: by size")]
    = "auto",
    seed: Annotated[Optional[int], typer.Option(help="random seed (default: the scenario's)")]
    = None,
    out: Annotated[Optional[Path], typer.Option(help="run directory (default: runs/<id>)")]
    = None,
    compress: Annotated[float, typer.Option(min=1e-9, help="time compression")] = 1.0,
    load_scale: Annotated[float, typer.Option(min=1e-9, help="load scale")] = 1.0,
) -> None:
    """Simulate a match day and judge it: exit 0 all budgets pass (warnings allowed), 1 one failed."""
    from simulator.run import simulate as run_simulation

    if fidelity not in ("request", "flow", "auto"):
        _fail_input(f"--fidelity must be request, flow or auto, not {fidelity!r}")
    s = _load(scenario)
    last = [-1]

    def progress(now: float, duration: float) -> None:
        percent = int(100 * now / duration)
        if percent // 10 != last[0] // 10:
            typer.echo(f"  simulated {now:,.0f} / {duration:,.0f} s ({percent}%)", err=True)
        last[0] = percent

    result = run_simulation(s, fidelity=fidelity, seed=seed, compress=compress,
                            load_scale=load_scale, out=out, progress=progress)
    render_report(result.path)
    typer.echo(f"fidelity: {result.fidelity} ({result.reason})")
    typer.echo(render_table(result.verdict))
    cost = json.loads((result.path / "meta.json").read_text())["cost"]
    typer.echo(f"cost of the day: {cost['with_spot']:,.2f} {cost['currency']} "
               f"({cost['on_demand']:,.2f} all on-demand)")
    typer.echo(f"run directory: {result.path}  ({result.wall_s:.1f} s wall; report.html, "
               "report.md and junit.xml inside)")
    raise typer.Exit(result.verdict.exit_code)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="run directory")],
    baseline: Annotated[Optional[Path], typer.Option(
        help="baseline run directory: add its relative gates to the report")] = None,
    criteria: Annotated[Optional[Path], typer.Option(
        help="with --baseline: YAML file of relative criteria per metric")] = None,
    out: Annotated[Optional[Path], typer.Option(
        help="where to write the files (default: the run directory)")] = None,
) -> None:
    """Render report.html, report.md and junit.xml from a run directory (exit 2 if unreadable)."""
    try:
        extra = _baseline_verdict(run_dir, baseline, criteria) if baseline else None
        paths = render_report(run_dir, out, extra)
    except (InputError, RunDirError) as exc:
        _fail_input(str(exc))
    typer.echo(f"{paths.html}\n{paths.markdown}\n{paths.junit}")
    typer.echo(f"verdict: {paths.verdict.overall}")


def _report(verdict: Verdict, summary: Optional[Path], meta: Optional[dict] = None) -> None:
    typer.echo(render_table(verdict))
    if summary is not None:
        try:
            summary.write_text(json.dumps(verdict.to_summary(meta), indent=2) + "\n",
                               encoding="utf-8")
        except OSError as exc:
            _fail_input(f"{summary}: cannot write the summary: {exc.strerror}")
    raise typer.Exit(verdict.exit_code)


@app.command()
def gate(
    run_dir: Annotated[Optional[Path], typer.Argument(help="run directory")] = None,
    budgets: Annotated[Optional[Path], typer.Option(help="budget file replacing the scenario's")]
    = None,
    locust_csv: Annotated[Optional[str], typer.Option(
        help="gate a plain Locust run: the PREFIX given to locust --csv (with --csv-full-history)")]
    = None,
    scenario: Annotated[Optional[str], typer.Option(
        help="with --locust-csv: scenario whose phases and chaos scope the budgets")] = None,
    compress: Annotated[float, typer.Option(
        min=1e-9, help="with --locust-csv --scenario: the time compression the run used")] = 1.0,
    baseline: Annotated[Optional[Path], typer.Option(
        help="also judge RUN_DIR against this baseline run directory (relative criteria)")]
    = None,
    criteria: Annotated[Optional[Path], typer.Option(
        help="with --baseline: YAML file of relative criteria per metric")] = None,
    summary: Annotated[Optional[Path], typer.Option(help="also write the verdict as JSON")] = None,
) -> None:
    """Judge a run by its budgets: exit 0 all pass (warnings allowed), 1 a budget failed, 2 bad input.

    Judged by its own scenario's budgets, a run directory's summary.json is refreshed. With
    --baseline, the relative criteria are judged too, in the same table and exit code.
    """
    if baseline is not None and run_dir is None:
        _fail_input("--baseline compares run directories: give RUN_DIR")
    if (run_dir is None) == (locust_csv is None):
        _fail_input("give a RUN_DIR or --locust-csv PREFIX (one of them)")
    meta = None
    try:
        if locust_csv is not None:
            if budgets is None:
                _fail_input("--locust-csv needs --budgets FILE (Locust output has no scenario)")
            context = _load(scenario).scaled(compress=compress) if scenario is not None else None
            verdict = gate_locust(locust_csv, budgets, context)  # type: ignore[arg-type]
        else:
            verdict, meta = gate_run(run_dir, budgets)  # type: ignore[arg-type]
            if baseline is not None:
                extra = _baseline_verdict(run_dir, baseline, criteria)  # type: ignore[arg-type]
                verdict.results.extend(extra.results)
                verdict.notes.extend(extra.notes)
    except (InputError, RunDirError, LocustCsvError) as exc:
        _fail_input(str(exc))
    _report(verdict, summary, meta)


def _baseline_verdict(run_dir: Path, baseline: Path, criteria: Optional[Path]) -> Verdict:
    return baseline_verdict(Run(run_dir), Run(baseline),
                            load_criteria(criteria) if criteria is not None else None)


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="first run directory (e.g. the simulation)")],
    run_b: Annotated[Path, typer.Argument(help="second run directory (e.g. the real run)")],
    tolerance: Annotated[str, typer.Option(help="largest error allowed, e.g. 15%")] = "15%",
    plot: Annotated[Optional[Path], typer.Option(
        help="where to write the comparison plot (default: RUN_B/compare.png)")] = None,
) -> None:
    """Put two runs side by side (percentiles, throughput, pods): exit 1 if an error exceeds
    the tolerance, 2 on bad input."""
    try:
        limit = parse_tolerance(tolerance)
    except ValueError as exc:
        _fail_input(f"--tolerance: {exc}")
    try:
        comparison = compare_runs(Run(run_a), Run(run_b), tolerance=limit)
    except RunDirError as exc:
        _fail_input(str(exc))
    typer.echo(comparison.to_markdown())
    target = plot or run_b / "compare.png"
    try:
        comparison.plot(target)
    except OSError as exc:
        _fail_input(f"{target}: cannot write the plot: {exc.strerror}")
    typer.echo(f"plot: {target}")
    raise typer.Exit(comparison.exit_code)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="matchday")
