"""Gates: the verdict of a run directory or of a plain Locust run, for a CI exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reports.locust_csv import LocustCsv
from reports.rundir import Run, RunDirError
from reports.verdict import PlainContext, Verdict, evaluate
from scenarios import InputError, Problem, Scenario, load_budgets


def gate_run(run_dir: Path, budgets_file: Path | None = None) -> tuple[Verdict, dict[str, Any]]:
    """Judge a run directory by its scenario's budgets, or by those in ``budgets_file``.

    Returns the verdict and the run's meta.json. Judged by its own budgets, the run's
    summary.json is rewritten so it matches. Raises RunDirError or InputError on bad input.
    """
    run = Run(run_dir)
    budgets = load_budgets(budgets_file, run.scenario) if budgets_file else None
    verdict = evaluate(run.scenario, run.metrics(), run.events(), budgets)
    if budgets is None:
        try:
            run.write_summary(verdict.to_summary(run.meta))
        except OSError as exc:
            raise RunDirError(f"{run.path}: cannot write summary.json: {exc.strerror}") from exc
    return verdict, run.meta


def gate_locust(prefix: str, budgets_file: Path, scenario: Scenario | None = None) -> Verdict:
    """Judge a plain Locust run (``--csv PREFIX --csv-full-history``) by a budget file.

    Raises LocustCsvError or InputError on unreadable input.
    """
    source = LocustCsv(prefix)
    budgets = load_budgets(budgets_file, scenario)
    if budgets.dr is not None:
        raise InputError([Problem(str(budgets_file), 0, "budgets.dr",
                                  "DR budgets need a run directory (Locust output has no "
                                  "reconciliation)")])
    context = scenario if scenario is not None else PlainContext(name=Path(prefix).name)
    verdict = evaluate(context, source, [], budgets)
    verdict.notes.append(
        "Locust rounds response times into buckets (1 ms < 100 ms, 10 ms < 1 s, 100 ms < 10 s) "
        "before computing percentiles: these verdicts are only that precise.")
    return verdict
