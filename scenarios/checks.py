"""Cross-field checks of a scenario that has the right shape: every name it uses must exist.

Each check yields ``(location, message)`` so that every problem is reported at its own YAML line,
all at once, rather than only the first one pydantic would meet.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterator

from scenarios.journeys import BUILTIN_JOURNEYS
from scenarios.model import Scenario
from scenarios.topology import CallNode

Found = Iterator[tuple[tuple[str | int, ...], str]]

# Scaling divides times by a compression factor; a span that ended exactly at the end of the day
# may then end a rounding error after it. Comparisons with the end of the day allow for that.
_SLACK = 1e-9


def _after(t: float, end: float) -> bool:
    return t > end * (1 + _SLACK) + _SLACK


def _wave(s: Scenario) -> Found:
    previous = -1.0
    for i, p in enumerate(s.traffic.wave):
        if i == 0 and p.at != 0:
            yield ("traffic", "wave", 0, "at"), "the wave must start at 0"
        if p.at <= previous:
            yield ("traffic", "wave", i, "at"), f"must be after the previous point ({previous:g})"
        if _after(p.at, s.duration):
            yield ("traffic", "wave", i, "at"), f"is after the end of the day ({s.duration:g})"
        if p.shape == "hold" and p.users is not None:
            yield ("traffic", "wave", i, "users"), "a hold point keeps the previous level; drop users"
        if p.shape != "hold" and p.users is None:
            yield ("traffic", "wave", i, "users"), f"a {p.shape} point needs users"
        previous = p.at
    for i, spike in enumerate(s.traffic.spikes):
        if _after(spike.at, s.duration):
            yield ("traffic", "spikes", i, "at"), f"is after the end of the day ({s.duration:g})"


def _journeys(s: Scenario) -> Found:
    steps = s.topology.steps
    if sum(j.weight for j in s.traffic.journeys.values()) <= 0:
        yield ("traffic", "journeys"), "journey weights add up to 0"
    for name, journey in s.traffic.journeys.items():
        if not journey.steps:
            yield ("traffic", "journeys", name, "steps"), (
                f"'{name}' is not a built-in journey; give its steps")
        builtin = (f" (the built-in journey '{name}' uses it: define the step, or give the "
                   "journey its own steps)") if name in BUILTIN_JOURNEYS else ""
        for i, js in enumerate(journey.steps):
            if js.step not in steps:
                yield ("traffic", "journeys", name, "steps", i, "step"), _unknown(
                    "step", js.step, steps) + builtin
            elif steps[js.step].kind != "request":
                yield ("traffic", "journeys", name, "steps", i, "step"), (
                    f"'{js.step}' is a push; list it under subscribe")
        for i, sub in enumerate(journey.subscribe):
            if sub not in steps or steps[sub].kind != "push":
                yield ("traffic", "journeys", name, "subscribe", i), _unknown(
                    "push step", sub, [k for k, v in steps.items() if v.kind == "push"]) + builtin


def _links(s: Scenario) -> Found:
    total = sum(s.links.mix.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        yield ("links", "mix"), f"shares add up to {total:g}, not 1"
    for name, share in s.links.mix.items():
        if name not in s.links.profiles:
            yield ("links", "mix", name), _unknown("link profile", name, s.links.profiles)
        if share < 0:
            yield ("links", "mix", name), "a share cannot be negative"


def _calls(s: Scenario, nodes: list[CallNode], loc: tuple[str | int, ...]) -> Found:
    t = s.topology
    known = {"service": t.services, "cache": t.caches, "db": t.databases}
    for i, node in enumerate(nodes):
        set_ = [k for k in known if getattr(node, k) is not None]
        if len(set_) != 1:
            yield loc + (i,), "a call names exactly one of service, cache or db"
            continue
        kind, name = node.target
        if name not in known[kind]:
            yield loc + (i, kind), _unknown(kind, name, known[kind])
        if node.on_miss and kind != "cache":
            yield loc + (i, "on_miss"), "only a cache has on_miss"
        yield from _calls(s, node.calls, loc + (i, "calls"))
        yield from _calls(s, node.on_miss, loc + (i, "on_miss"))


def _topology(s: Scenario) -> Found:
    t = s.topology
    if not any(r.role == "active" for r in t.regions.values()):
        yield ("topology", "regions"), "at least one region must be active"
    for name, svc in t.services.items():
        for i, region in enumerate(svc.regions or []):
            if region not in t.regions:
                yield ("topology", "services", name, "regions", i), _unknown(
                    "region", region, t.regions)
        if svc.cost_class not in s.cost.classes:
            yield ("topology", "services", name, "cost_class"), _unknown(
                "cost class", svc.cost_class, s.cost.classes)
    for name, db in t.databases.items():
        for field in ("region", "standby_region"):
            value = getattr(db, field)
            if value is not None and value not in t.regions:
                yield ("topology", "databases", name, field), _unknown("region", value, t.regions)
    for name, step in t.steps.items():
        if step.kind == "push" and step.rate_hz is None:
            yield ("topology", "steps", name, "rate_hz"), "a push step needs rate_hz"
        if not step.calls:
            yield ("topology", "steps", name, "calls"), "a step needs a call path"
        yield from _calls(s, step.calls, ("topology", "steps", name, "calls"))


def _autoscaling(s: Scenario) -> Found:
    for name, rule in s.autoscaling.items():
        if name not in s.topology.services:
            yield ("autoscaling", name), _unknown("service", name, s.topology.services)
        for i, entry in enumerate(rule.schedule):
            ceiling = entry.max if entry.max is not None else rule.max
            if entry.min > ceiling:
                yield ("autoscaling", name, "schedule", i, "min"), f"is above max ({ceiling})"
            if entry.at >= s.duration:
                yield ("autoscaling", name, "schedule", i, "at"), "is after the end of the day"


def _chaos(s: Scenario) -> Found:
    t = s.topology
    ids = Counter(a.id for a in s.chaos if a.id is not None)
    for i, a in enumerate(s.chaos):
        loc = ("chaos", i)
        if a.id is not None and ids[a.id] > 1:
            yield loc + ("id",), f"id '{a.id}' is used more than once"
        if a.at >= s.duration:
            yield loc + ("at",), f"is at or after the end of the day ({s.duration:g})"
        elif _after(a.end, s.duration):
            yield loc + ("duration",), (
                f"ends at {a.end:g}, after the end of the day ({s.duration:g})")
        if a.action == "link_degradation" and a.link not in s.links.mix:
            yield loc + ("link",), f"no user is on '{a.link}' (it is not in links.mix)"
        refs = {
            "zone": (t.zones(), "zone"), "link": (s.links.profiles, "link profile"),
            "profile": (s.links.profiles, "link profile"), "cache": (t.caches, "cache"),
            "database": (t.databases, "database"), "service": (t.services, "service"),
            "step": (t.steps, "step"), "source": (t.regions, "region"),
            "target": (t.regions, "region"),
        }
        for field, (known, what) in refs.items():
            value = getattr(a, field, None)
            if isinstance(value, str) and value not in known:
                yield loc + (_alias(field),), _unknown(what, value, known)
        if a.action == "region_failover" and a.source == a.target:
            yield loc + ("to",), "must differ from 'from'"
        if a.action == "db_failover" and a.database in t.databases:
            if not t.databases[a.database].standby:
                yield loc + ("database",), f"'{a.database}' has no standby to fail over to"


def _budgets(s: Scenario) -> Found:
    phases = s.phase_windows()
    chaos_refs = {a.id for a in s.chaos if a.id} | {a.action for a in s.chaos}
    for step, items in s.budgets.steps.items():
        if step not in s.topology.steps:
            yield ("budgets", step), _unknown("step", step, s.topology.steps)
        for i, item in enumerate(items):
            loc = ("budgets", step, i)
            if item.phase is not None and item.phase not in phases:
                yield loc + ("phase",), _unknown("phase", item.phase, phases)
            for field in ("during", "after"):
                ref = getattr(item, field)
                if ref is not None and ref not in chaos_refs:
                    yield loc + (field,), _unknown("chaos action", ref, sorted(chaos_refs))
            if item.link is not None and item.link not in s.links.mix:
                yield loc + ("link",), _unknown("link in links.mix", item.link, s.links.mix)
            if item.window is not None and _after(item.window.end, s.duration):
                yield loc + ("window",), f"ends after the end of the day ({s.duration:g})"
            if item.threshold.metric == "recovery_time" and item.of is None:
                if not any(o.threshold.metric == "p" and o.threshold.quantile == 99
                           and o.scope_text == "whole run" for o in items):
                    yield loc + ("pass",), (
                        "recovery_time needs a whole-run p(99) budget on this step, or 'of'")
    if s.budgets.dr is not None:
        if s.budgets.dr.rto_s is not None and not any(
                a.action in ("db_failover", "region_failover", "zone_outage") for a in s.chaos):
            yield ("budgets", "dr", "rto_s"), (
                "an RTO is timed from a db_failover, region_failover or zone_outage; the chaos "
                "schedule has none")
        for i, step in enumerate(s.budgets.dr.write_steps):
            if step not in s.topology.steps:
                yield ("budgets", "dr", "write_steps", i), _unknown("step", step, s.topology.steps)


def _alias(field: str) -> str:
    return {"source": "from", "target": "to"}.get(field, field)


def _unknown(what: str, name: str, known: object) -> str:
    names = sorted(str(k) for k in known)  # type: ignore[attr-defined]
    listed = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
    return f"unknown {what} '{name}' (known: {listed or 'none'})"


def check_scenario(s: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
    """Every cross-reference problem of ``s``; an empty list means the scenario is consistent."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    for check in (_wave, _journeys, _links, _topology, _autoscaling, _chaos, _budgets):
        found.extend(check(s))
    return found
