"""Gates: the verdict of a run directory or of a plain Locust run, for a CI exit code."""

from __future__ import annotations

from pathlib import Path

from reports.locust_csv import LocustCsv
from reports.rundir import Run
from reports.verdict import PlainContext, Verdict, evaluate
from scenarios import Scenario, load_budgets


def gate_run(run_dir: Path, budgets_file: Path | None = None) -> Verdict:
    """Judge a run directory by its scenario's budgets, or by those in ``budgets_file``.

    Raises RunDirError or InputError on unreadable input.
    """
    run = Run(run_dir)
    budgets = load_budgets(budgets_file, run.scenario) if budgets_file else None
    return evaluate(run.scenario, run.metrics(), run.events(), budgets)


def gate_locust(prefix: str, budgets_file: Path, scenario: Scenario | None = None) -> Verdict:
    """Judge a plain Locust run (``--csv PREFIX --csv-full-history``) by a budget file.

    Raises LocustCsvError or InputError on unreadable input.
    """
    source = LocustCsv(prefix)
    budgets = load_budgets(budgets_file, scenario)
    context = scenario if scenario is not None else PlainContext(name=Path(prefix).name)
    verdict = evaluate(context, source, [], budgets)
    verdict.notes.append(
        "Locust rounds response times into buckets (1 ms < 100 ms, 10 ms < 1 s, 100 ms < 10 s) "
        "before computing percentiles: these verdicts are only that precise.")
    return verdict
