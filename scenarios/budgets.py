"""Latency and error budgets per journey step, as k6-style threshold expressions.

An expression is ``METRIC OP VALUE[UNIT]``:
- ``p(95)<150``, ``med<=40``, ``avg<80``, ``max<2s``: latency, in ms unless a unit is given;
- ``error_rate<0.005`` or ``error_rate<0.5%``: share of failed requests;
- ``recovery_time<120s``: seconds from the end of a chaos action (``after``) until the step's
  sliding-window p99 is back under its budget and stays there.

A budget item has a ``pass`` expression and an optional looser ``warn`` one (Keptn style: pass if
``pass`` holds, warn if only ``warn`` holds, fail otherwise), and at most one scope: a ``window``
of match time, a ``phase`` of the wave, or ``during`` a chaos action (its id or its type); and
optionally a ``link`` filter: only the users assigned that profile in ``links.mix`` (whatever a
``link_degradation`` does to their link meanwhile).
"""

from __future__ import annotations

import dataclasses
import operator
import re
from typing import Any, Callable

from pydantic import Field, field_validator, model_validator

from scenarios.base import Strict
from scenarios.scaling import MatchSeconds, PositiveMatchSeconds

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_EXPR = re.compile(
    r"^\s*(?P<metric>p\(\s*(?P<q>\d+(?:\.\d+)?)\s*\)|avg|med|min|max|error_rate|recovery_time)"
    r"\s*(?P<op><=|>=|<|>)\s*(?P<value>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?P<unit>ms|s|%)?\s*$"
)
LATENCY_METRICS = ("p", "avg", "med", "min", "max")


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A parsed expression. ``limit`` is in ms for latency, s for recovery_time, a fraction for rates."""

    metric: str
    op: str
    limit: float
    text: str
    quantile: float | None = None

    def holds(self, measured: float) -> bool:
        """Whether ``measured`` (same unit as ``limit``) satisfies the expression."""
        return _OPS[self.op](measured, self.limit)

    @property
    def unit(self) -> str:
        """The unit of ``limit`` and of measured values: ms, s or an empty string for a rate."""
        if self.metric in LATENCY_METRICS:
            return "ms"
        return "s" if self.metric == "recovery_time" else ""

    @property
    def label(self) -> str:
        """The metric as written in reports: ``p(95)``, ``error_rate``, …"""
        return f"p({self.quantile:g})" if self.metric == "p" else self.metric


def parse_threshold(text: str) -> Threshold:
    """Parse an expression; raise ValueError with a readable message if it is not one."""
    m = _EXPR.match(text)
    if not m:
        raise ValueError(
            f"{text!r} is not a budget expression (expected e.g. 'p(95)<150', "
            "'error_rate<0.005', 'recovery_time<120s')"
        )
    metric = "p" if m["q"] is not None else m["metric"]
    value, unit = float(m["value"]), m["unit"]
    quantile = float(m["q"]) if m["q"] is not None else None
    if quantile is not None and not 0 < quantile <= 100:
        raise ValueError(f"percentile {quantile:g} is outside (0, 100]")
    if metric in LATENCY_METRICS:
        if unit == "%":
            raise ValueError(f"{text!r}: a latency takes ms or s, not %")
        value = value * 1000 if unit == "s" else value
    elif metric == "recovery_time":
        if unit == "%":
            raise ValueError(f"{text!r}: a recovery time takes s or ms, not %")
        value = value / 1000 if unit == "ms" else value
    else:
        if unit in ("ms", "s"):
            raise ValueError(f"{text!r}: error_rate is a fraction or a percentage")
        value = value / 100 if unit == "%" else value
        if value > 1:
            raise ValueError(f"{text!r}: error_rate above 1 (use '%' for percentages)")
    return Threshold(metric=metric, op=m["op"], limit=value, text=text.strip(), quantile=quantile)


def _rescaled(threshold: Threshold, compress: float) -> str:
    return f"{threshold.metric}{threshold.op}{threshold.limit / compress!r}s"


class Window(Strict):
    """A span of match time ``[start, end)``; written ``[start, end]`` in YAML."""

    start: MatchSeconds
    end: MatchSeconds

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, data: Any) -> Any:
        if isinstance(data, (list, tuple)):
            if len(data) != 2:
                raise ValueError("a window is [start, end] in match seconds")
            return {"start": data[0], "end": data[1]}
        return data

    @model_validator(mode="after")
    def _ordered(self) -> "Window":
        if self.end <= self.start:
            raise ValueError(f"window ends ({self.end:g}) before it starts ({self.start:g})")
        return self


class BudgetItem(Strict):
    """One budget: a ``pass`` expression, an optional ``warn`` expression, an optional scope."""

    pass_: str = Field(alias="pass")
    warn: str | None = None
    window: Window | None = None
    phase: str | None = None
    during: str | None = None
    link: str | None = Field(default=None, description="only requests over this link profile")
    after: str | None = None
    of: str | None = Field(default=None, description="recovery_time: the p99 budget to recover to")
    sliding_window_s: PositiveMatchSeconds = 30.0

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"pass": data} if isinstance(data, str) else data

    @field_validator("pass_", "warn", "of")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_threshold(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "BudgetItem":
        scopes = [s for s in ("window", "phase", "during") if getattr(self, s) is not None]
        if len(scopes) > 1:
            raise ValueError(f"give at most one scope, not {' and '.join(scopes)}")
        main = self.threshold
        if self.warn is not None:
            warn = parse_threshold(self.warn)
            if (warn.metric, warn.quantile) != (main.metric, main.quantile):
                raise ValueError("warn must use the same metric as pass")
            if warn.op[0] != main.op[0]:
                raise ValueError("warn must compare in the same direction as pass")
        if main.metric == "recovery_time":
            if self.after is None:
                raise ValueError("recovery_time needs 'after: <chaos action id or type>'")
            if scopes:
                raise ValueError("recovery_time is measured after a chaos action; drop the scope")
            if self.of is not None and parse_threshold(self.of).metric != "p":
                raise ValueError("'of' must be a percentile budget such as 'p(99)<400'")
        elif self.after is not None or self.of is not None:
            raise ValueError("'after' and 'of' only apply to recovery_time")
        return self

    def scaled_update(self, *, compress: float, load: float) -> dict[str, Any]:
        """Under time compression a recovery-time budget shrinks with the match timeline."""
        if self.threshold.metric != "recovery_time" or compress == 1:
            return {}
        update = {"pass_": _rescaled(self.threshold, compress)}
        if self.warn_threshold is not None:
            update["warn"] = _rescaled(self.warn_threshold, compress)
        return update

    @property
    def threshold(self) -> Threshold:
        """The parsed ``pass`` expression."""
        return parse_threshold(self.pass_)

    @property
    def warn_threshold(self) -> Threshold | None:
        """The parsed ``warn`` expression, if any."""
        return parse_threshold(self.warn) if self.warn is not None else None

    @property
    def scope_text(self) -> str:
        """The scope as people write it: ``whole run``, ``during zone_outage``, …"""
        if self.window is not None:
            text = f"window {self.window.start:g}-{self.window.end:g}s"
        elif self.phase is not None:
            text = f"phase {self.phase}"
        elif self.during is not None:
            text = f"during {self.during}"
        elif self.after is not None:
            text = f"after {self.after}"
        else:
            text = "whole run"
        return f"{text}, link {self.link}" if self.link is not None else text


class DrBudget(Strict):
    """Disaster-recovery budgets: writes back within ``rto_s``; no acknowledged bet lost."""

    rto_s: float | None = Field(default=None, gt=0)
    lost_bets: int | None = Field(default=None, ge=0)
    write_steps: list[str] = ["place_bet"]


class Budgets(Strict):
    """Budget items per journey step, plus the DR budget (``dr:`` in YAML, beside the steps)."""

    steps: dict[str, list[BudgetItem]] = {}
    dr: DrBudget | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_dr(cls, data: Any) -> Any:
        if isinstance(data, dict) and "steps" not in data:
            rest = {k: ([v] if isinstance(v, (str, dict)) else v)
                    for k, v in data.items() if k != "dr"}
            return {"steps": rest, "dr": data.get("dr")}
        return data

    def to_yaml_data(self) -> dict[str, Any]:
        """The YAML shape: step names and ``dr`` side by side."""
        out: dict[str, Any] = {
            step: [i.model_dump(mode="json", by_alias=True, exclude_defaults=True) for i in items]
            for step, items in self.steps.items()
        }
        if self.dr is not None:
            out["dr"] = self.dr.model_dump(mode="json", exclude_none=True)
        return out
