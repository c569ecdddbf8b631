"""User journeys: weighted, looping sequences of journey steps separated by think times."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from scenarios.base import Strict
from scenarios.distributions import Dist


class JourneyStep(Strict):
    """One action of a journey: do ``step`` (``repeat`` times, each with ``probability``), then think."""

    step: str
    think_s: Dist = Dist(dist="exponential", mean=5.0)
    repeat: int = Field(default=1, ge=1)
    probability: float = Field(default=1.0, ge=0, le=1)


class Journey(Strict):
    """A kind of user: its share (``weight``), the steps it loops over and the pushes it receives."""

    weight: float = Field(ge=0)
    description: str = ""
    steps: list[JourneyStep] = []
    subscribe: list[str] = []


def _s(step: str, think: float, **extra: Any) -> dict[str, Any]:
    return {"step": step, "think_s": {"dist": "exponential", "mean": think}, **extra}


# Built-in journeys, used when a scenario gives only a weight (``journeys: {browse: 0.55}``).
# Think times are our assumptions for an in-play betting app; they set requests per user.
BUILTIN_JOURNEYS: dict[str, dict[str, Any]] = {
    "browse": {
        "description": "opens the app, looks at events and odds, never bets",
        "steps": [_s("fetch_assets", 2.0), _s("fetch_odds", 8.0, repeat=4)],
    },
    "live_watch": {
        "description": "keeps an in-play event open; odds are pushed over a websocket",
        "steps": [_s("fetch_odds", 20.0)],
        "subscribe": ["odds_push"],
    },
    "bettor": {
        "description": "logs in, builds a slip, places a bet, watches the match",
        "steps": [
            _s("login", 3.0),
            _s("fetch_odds", 6.0, repeat=2),
            _s("update_slip", 4.0, repeat=2),
            _s("place_bet", 15.0),
        ],
        "subscribe": ["odds_push"],
    },
    "cashout": {
        "description": "checks open bets and cashes one out when the odds move",
        "steps": [_s("login", 3.0), _s("fetch_odds", 10.0, repeat=2), _s("cash_out", 30.0)],
        "subscribe": ["odds_push"],
    },
    "onboarding": {
        "description": "registers, passes KYC (name, address, date of birth, age), deposits",
        "steps": [_s("register", 20.0), _s("kyc_check", 30.0), _s("deposit", 20.0)],
    },
}
