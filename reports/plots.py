"""The report's plots, drawn with matplotlib from a run directory alone.

Every function returns a Figure (or None when the run lacks the data) and uses the same colours
for the same zone, step or percentile everywhere, so a reader learns them once. Time is shown in
minutes of run time.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no screen needed (CI, servers)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reports.metrics import MetricSource  # noqa: E402
from reports.verdict import BudgetResult  # noqa: E402
from scenarios import Scenario  # noqa: E402

PERCENTILE_COLOURS = {0.5: "#4c78a8", 0.95: "#f58518", 0.99: "#e45756"}
CHAOS_COLOUR = "#b279a2"
BUDGET_COLOUR = "#222222"


def palette(names: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per name (sorted, so a zone or step keeps its colour across plots)."""
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(sorted(names))}


def _minutes(seconds: np.ndarray | pd.Series) -> np.ndarray:
    return np.asarray(seconds, dtype=float) / 60.0


def _shade_chaos(ax: Any, scenario: Scenario, label: bool = True) -> None:
    for action in scenario.chaos:
        ax.axvspan(action.at / 60, action.end / 60, color=CHAOS_COLOUR, alpha=0.15, lw=0)
        if label:
            ax.text(action.at / 60, 1.0, f" {action.ref}", transform=ax.get_xaxis_transform(),
                    va="top", ha="left", fontsize=7, color=CHAOS_COLOUR, rotation=90)


def _figure(rows: int = 1, cols: int = 1, height: float = 3.2, **kw: Any) -> tuple[Figure, Any]:
    fig, axes = plt.subplots(rows, cols, figsize=(10, height * rows), squeeze=False,
                             constrained_layout=True, **kw)
    return fig, axes


def traffic(timeline: pd.DataFrame | None, scenario: Scenario) -> Figure | None:
    """Users and requests/s over time, chaos actions shaded and labelled."""
    if timeline is None or "rps" not in timeline:
        return None
    fig, axes = _figure(height=3.4)
    ax = axes[0][0]
    t = _minutes(timeline["t"])
    ax.plot(t, timeline["rps"], color="#4c78a8", lw=1, label="requests and pushes/s")
    ax.set_ylabel("per second")
    ax.set_xlabel("minutes")
    if "users" in timeline:
        twin = ax.twinx()
        twin.plot(t, timeline["users"], color="#54a24b", lw=1.5, label="users")
        twin.set_ylabel("connected users", color="#54a24b")
    _shade_chaos(ax, scenario)
    ax.set_title("Traffic: the match-day wave")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def latency(source: MetricSource, scenario: Scenario, results: list[BudgetResult],
            window_s: float = 30.0) -> Figure | None:
    """Each step's sliding p50/p95/p99 with its whole-run percentile budgets; breaches marked."""
    steps = [s for s in scenario.topology.steps if s in source.steps()]
    if not steps:
        return None
    cols = 2
    rows = math.ceil(len(steps) / cols)
    fig, axes = _figure(rows, cols, height=2.6)
    for i, step in enumerate(steps):
        ax = axes[i // cols][i % cols]
        lines = {}
        for q, colour in PERCENTILE_COLOURS.items():
            times, values = source.sliding_quantile(step, q, window_s, 0, source.duration)
            ax.plot(_minutes(times), values, color=colour, lw=0.9, label=f"p{q * 100:g}")
            lines[q] = (times, values)
        for item in scenario.budgets.steps.get(step, []):
            th = item.threshold
            if th.metric != "p" or item.scope_text != "whole run" or th.quantile is None:
                continue
            q = th.quantile / 100
            ax.axhline(th.limit, color=PERCENTILE_COLOURS.get(q, BUDGET_COLOUR), ls="--", lw=1)
            if q in lines:
                times, values = lines[q]
                over = np.asarray(values) > th.limit
                ax.scatter(_minutes(times[over]), np.asarray(values)[over], s=4,
                           color="#d62728", zorder=3)
        _shade_chaos(ax, scenario, label=False)
        ax.set_title(step, fontsize=9)
        ax.set_yscale("log")
        ax.set_ylabel("ms")
        if i == 0:
            ax.legend(fontsize=7, loc="upper left")
    for j in range(len(steps), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(f"Latency per step ({window_s:g} s sliding window; dashed: budgets, "
                 "red: breaches)", fontsize=10)
    return fig


def instances(timeline: pd.DataFrame | None, events: list[dict[str, Any]]) -> Figure | None:
    """Pods per service per zone (the autoscaler at work), with its scale events."""
    if timeline is None:
        return None
    columns = [c for c in timeline.columns if c.startswith("instances.")]
    if not columns:
        return None
    services = sorted({c.split(".")[1] for c in columns})
    zones = sorted({c.split(".", 2)[2] for c in columns})
    colours = palette(zones)
    cols = 2
    rows = math.ceil(len(services) / cols)
    fig, axes = _figure(rows, cols, height=2.3)
    t = _minutes(timeline["t"])
    for i, service in enumerate(services):
        ax = axes[i // cols][i % cols]
        for zone in zones:
            column = f"instances.{service}.{zone}"
            if column in timeline:
                ax.step(t, timeline[column], where="post", color=colours[zone], lw=1.2,
                        label=zone)
        scale = [e for e in events if e.get("kind") == "scale" and e.get("service") == service]
        for e in scale:
            ax.plot(e["t"] / 60, e["desired"], marker="^" if e["desired"] > e["current"]
                    else "v", color=colours.get(e.get("zone"), "k"), ms=4)
        ax.set_title(service, fontsize=9)
        ax.set_ylabel("pods")
        if i == 0:
            ax.legend(fontsize=7, loc="upper left")
    for j in range(len(services), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle("Pods per service and zone (▲▼ autoscaler decisions)", fontsize=10)
    return fig


def health(timeline: pd.DataFrame | None, scenario: Scenario) -> Figure | None:
    """Cache hit ratios, error rate and the cost so far, over time."""
    if timeline is None:
        return None
    fig, axes = _figure(3, 1, height=2.2, sharex=True)
    t = _minutes(timeline["t"])
    caches = [c for c in timeline.columns if c.startswith("cache_hit_ratio.")]
    colours = palette([c.split(".", 1)[1] for c in caches])
    for column in caches:
        name = column.split(".", 1)[1]
        axes[0][0].plot(t, timeline[column], color=colours[name], lw=1, label=name)
    axes[0][0].set_ylabel("cache hit ratio")
    if caches:
        axes[0][0].legend(fontsize=7, loc="lower left")
    if {"errors", "rps"} <= set(timeline.columns):
        rate = timeline["errors"] / timeline["rps"].where(timeline["rps"] > 0)
        axes[1][0].plot(t, rate * 100, color="#e45756", lw=1)
    axes[1][0].set_ylabel("errors %")
    if "cost" in timeline:
        axes[2][0].plot(t, timeline["cost"], color="#72b7b2", lw=1.5, label="with spot")
        if "cost_on_demand" in timeline:
            axes[2][0].plot(t, timeline["cost_on_demand"], color="#9d755d", lw=1, ls="--",
                            label="all on-demand")
        axes[2][0].legend(fontsize=7, loc="upper left")
    axes[2][0].set_ylabel(f"cost ({scenario.cost.currency})")
    axes[2][0].set_xlabel("minutes")
    for row in axes:
        _shade_chaos(row[0], scenario, label=False)
    fig.suptitle("Caches, errors and the bill", fontsize=10)
    return fig


def links(source: MetricSource, scenario: Scenario) -> Figure | None:
    """p95 of each request step by mobile link profile (the users' own link)."""
    steps = [s for s, spec in scenario.topology.steps.items()
             if s in source.steps()]
    names = list(scenario.links.mix)
    if not steps or not names:
        return None
    colours = palette(names)
    fig, axes = _figure(height=3.6)
    ax = axes[0][0]
    width = 0.8 / len(names)
    for j, link in enumerate(names):
        values = [source.select(step, None, link).quantile(0.95) for step in steps]
        ax.bar(np.arange(len(steps)) + j * width, values, width, color=colours[link],
               label=f"{link} ({scenario.links.mix[link]:.0%})")
    ax.set_xticks(np.arange(len(steps)) + 0.4 - width / 2, steps, rotation=30, ha="right",
                  fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("p95 ms")
    ax.legend(fontsize=7, ncols=2)
    ax.set_title("Latency by mobile link profile (whole run)")
    return fig


def recovery(source: MetricSource, scenario: Scenario, results: list[BudgetResult],
             window_s: float = 30.0) -> Figure | None:
    """Around each chaos action: the sliding p99 of the steps with a recovery budget."""
    recovered = [r for r in results if r.budget.startswith("recovery_time")]
    actions = [a for a in scenario.chaos if any(r.scope == f"after {a.ref}" or
                                                r.scope == f"after {a.action}"
                                                for r in recovered)]
    if not actions:
        return None
    fig, axes = _figure(len(actions), 1, height=2.8)
    steps = sorted({r.step for r in recovered})
    colours = palette(steps)
    for i, action in enumerate(actions):
        ax = axes[i][0]
        start = max(0.0, action.at - 120)
        end = min(source.duration, action.end + 600)
        for r in [r for r in recovered if r.scope in (f"after {action.ref}",
                                                      f"after {action.action}")]:
            times, values = source.sliding_quantile(r.step, 0.99, window_s, start, end)
            ax.plot(_minutes(times), values, color=colours[r.step], lw=1,
                    label=f"{r.step} p99: {r.measured_text()} to recover")
            if r.measured is not None:
                ax.axvline((action.end + r.measured) / 60, color=colours[r.step], ls=":", lw=1)
        ax.axvspan(action.at / 60, action.end / 60, color=CHAOS_COLOUR, alpha=0.15, lw=0)
        ax.set_title(f"{action.ref}: {action.action} {action.at / 60:.1f}–{action.end / 60:.1f}"
                     " min (dotted: back under budget)", fontsize=9)
        ax.set_yscale("log")
        ax.set_ylabel("p99 ms")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1][0].set_xlabel("minutes")
    return fig
