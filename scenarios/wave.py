"""The match-day wave: how many users are connected at each second of the match.

The simulator and the Locust load shapes both call :meth:`Traffic.users_at`, so a simulated and
a real run of one scenario see exactly the same wave.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from scenarios.base import Strict
from scenarios.journeys import BUILTIN_JOURNEYS, Journey
from scenarios.scaling import LoadCount, MatchSeconds, PositiveMatchSeconds


class WavePoint(Strict):
    """A point of the piecewise wave; ``shape`` says how the curve reaches it from the previous one.

    - ``ramp``: linearly from the previous level to ``users`` at ``at``;
    - ``step``: the previous level holds until ``at``, then jumps to ``users``;
    - ``hold``: the previous level holds through ``at`` (``users`` is omitted).
    ``users`` is a fraction of ``traffic.peak_users``. ``phase`` names the part of the match that
    starts here (budgets can be scoped to it); it lasts until the next named point.
    """

    at: MatchSeconds
    users: float | None = Field(default=None, ge=0, le=1)
    shape: Literal["ramp", "step", "hold"] = "ramp"
    phase: str | None = None


class Spike(Strict):
    """A surge on top of the wave (a goal, a red card): users × ``factor`` at its height.

    The excess rises linearly over ``rise`` seconds, then decays exponentially with time constant
    ``decay`` seconds.
    """

    at: MatchSeconds
    factor: float = Field(gt=1)
    decay: PositiveMatchSeconds
    rise: MatchSeconds = 0.0
    label: str | None = None


class Traffic(Strict):
    """Who comes, when, and what they do: the wave, its spikes and the journey mix.

    ``peak_users`` is the top of the wave *before* spikes: a goal with ``factor: 1.5`` at the
    peak means 1.5 × ``peak_users`` connected users.
    """

    peak_users: LoadCount
    wave: list[WavePoint] = Field(min_length=1)
    spikes: list[Spike] = []
    journeys: dict[str, Journey] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _expand_journey_shorthand(cls, data: Any) -> Any:
        """``journeys: {browse: 0.55}`` means the built-in browse journey with weight 0.55."""
        if isinstance(data, dict) and isinstance(data.get("journeys"), dict):
            expanded = {}
            for name, value in data["journeys"].items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    base = BUILTIN_JOURNEYS.get(name, {"steps": []})
                    value = {**base, "weight": value}
                elif isinstance(value, dict) and "steps" not in value and name in BUILTIN_JOURNEYS:
                    value = {**BUILTIN_JOURNEYS[name], **value}
                expanded[name] = value
            data = {**data, "journeys": expanded}
        return data

    def _levels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ats = np.array([p.at for p in self.wave], dtype=float)
        levels = np.empty(len(self.wave))
        ramps = np.array([p.shape == "ramp" for p in self.wave])
        previous = 0.0
        for i, point in enumerate(self.wave):
            previous = previous if point.shape == "hold" or point.users is None else point.users
            levels[i] = previous
        return ats, levels, ramps

    def base_fraction(self, t: float | np.ndarray) -> np.ndarray:
        """The wave without spikes, as a fraction of ``peak_users``; constant after the last point."""
        ats, levels, ramps = self._levels()
        t = np.maximum(np.asarray(t, dtype=float), ats[0])
        i = np.searchsorted(ats, t, side="right") - 1
        nxt = np.minimum(i + 1, len(ats) - 1)
        span = np.where(nxt > i, ats[nxt] - ats[i], 1.0)
        frac = np.clip((t - ats[i]) / span, 0.0, 1.0)
        ramping = (nxt > i) & ramps[nxt]
        return np.where(ramping, levels[i] + (levels[nxt] - levels[i]) * frac, levels[i])

    def spike_multiplier(self, t: float | np.ndarray) -> np.ndarray:
        """1 + the sum of every spike's excess at ``t``."""
        t = np.asarray(t, dtype=float)
        total = np.ones_like(t)
        for s in self.spikes:
            since = t - s.at
            rising = since / s.rise if s.rise > 0 else np.ones_like(t)
            shape = np.where(
                since < 0,
                0.0,
                np.where(since < s.rise, rising, np.exp(-(since - s.rise) / s.decay)),
            )
            total = total + (s.factor - 1.0) * shape
        return total

    def users_at(self, t: float | np.ndarray) -> float | np.ndarray:
        """Concurrent users at match second ``t`` (scalar in, float out; array in, array out)."""
        value = self.peak_users * self.base_fraction(t) * self.spike_multiplier(t)
        return float(value) if np.ndim(value) == 0 else value

    def journey_shares(self) -> dict[str, float]:
        """Each journey's share of users (weights normalised to sum to 1)."""
        total = sum(j.weight for j in self.journeys.values())
        return {name: j.weight / total for name, j in self.journeys.items()}
