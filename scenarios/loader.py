"""Scenario files in, validated :class:`Scenario` out, or every problem with its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from scenarios.budgets import Budgets
from scenarios.checks import check_scenario
from scenarios.model import Scenario
from scenarios.yaml_source import (
    InputError, Located, Problem, locate, parse_located, read_located, read_with_extends,
)

M = TypeVar("M", bound=BaseModel)

# Share maps: merging a scenario's mix into its base's would make shares that do not add up.
_REPLACED_WHOLE = frozenset({("links", "mix"), ("traffic", "journeys")})


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        expected = error.get("ctx", {}).get("expected_tags", "")
        return f"unknown action {error['input'].get('action')!r} (one of: {expected})"
    message = error["msg"]
    return message.removeprefix("Value error, ")


def _problems(located: Located, errors: list[tuple[tuple[Any, ...], str]]) -> list[Problem]:
    problems = []
    for loc, message in errors:
        position, field = locate(located, loc)
        problems.append(Problem(position.file, position.line, field, message))
    return sorted(problems, key=lambda p: (p.file, p.line, p.field))


def _validate(model: type[M], located: Located, root: tuple[str, ...] = ()) -> M:
    data = located.data
    for key in root:
        data = data.get(key) if isinstance(data, dict) else None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [(_yaml_loc(root + tuple(e["loc"])), _message(e)) for e in exc.errors()]
        raise InputError(_problems(located, errors)) from None


def _yaml_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Budgets are validated as ``{steps: {...}, dr: ...}`` but written with steps and ``dr``
    side by side: drop the ``steps`` level from their error locations."""
    if loc[:2] == ("budgets", "steps"):
        return ("budgets",) + loc[2:]
    return loc


def load_scenario(path: str | Path) -> Scenario:
    """Read, merge (``extends``), validate and cross-check one scenario file.

    Raises :class:`InputError` listing every problem as ``file:line: field.path: message``.
    """
    return _checked(read_with_extends(Path(path), _REPLACED_WHOLE))


def load_budgets(path: str | Path, scenario: Scenario | None) -> Budgets:
    """Read a budget file (a YAML mapping with a ``budgets:`` key).

    With a scenario, step names and scopes are checked against it; without one (a plain Locust
    run), any step name is accepted but phase, chaos and link scopes cannot be resolved.
    """
    located = read_located(Path(path))
    if not isinstance(located.data, dict) or "budgets" not in located.data:
        raise InputError([Problem(str(path), 1, "budgets", "a budget file has a 'budgets:' mapping")])
    unknown = [k for k in located.data if k != "budgets"]
    if unknown:
        raise InputError(_problems(located, [((k,), "unknown key") for k in unknown]))
    budgets = _validate(Budgets, located, ("budgets",))
    if scenario is None:
        found = [
            (("budgets", step, i, field), f"'{field}' needs a scenario to resolve; pass --scenario")
            for step, items in budgets.steps.items() for i, item in enumerate(items)
            for field in ("phase", "during", "after") if getattr(item, field) is not None
        ]
        if budgets.dr is not None:
            found.append((("budgets", "dr"), "DR budgets need a run directory"))
    else:
        found = [f for f in check_scenario(scenario.model_copy(update={"budgets": budgets}))
                 if f[0][0] == "budgets"]
    if found:
        raise InputError(_problems(located, found))
    return budgets


def dump_scenario(scenario: Scenario) -> str:
    """The fully resolved scenario as YAML (defaults filled in); it loads back to an equal model."""
    return yaml.safe_dump(scenario.to_yaml_data(), sort_keys=False, allow_unicode=True, width=100)


def scenario_from_text(text: str, name: str = "<scenario>") -> Scenario:
    """Validate a scenario given as YAML text (the resolved copy kept in a run directory)."""
    return _checked(parse_located(text, name))


def _checked(located: Located) -> Scenario:
    scenario = _validate(Scenario, located)
    found = check_scenario(scenario)
    if found:
        raise InputError(_problems(located, found))
    return scenario
