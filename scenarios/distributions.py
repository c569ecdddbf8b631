"""Random-variable descriptions used for service times, think times and start-up delays.

A distribution is described by its family, mean and coefficient of variation (cv = sd / mean),
which is what capacity planners usually know and what the queueing formulas need
(M/G/1 uses E[S] and cv²). The unit is carried by the field name that holds it
(``service_time_ms``, ``think_s``), never by the distribution.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from scenarios.base import Strict

Family = Literal["constant", "exponential", "lognormal", "gamma", "uniform"]


class Dist(Strict):
    """A non-negative random variable: ``{dist: lognormal, mean: 4, cv: 0.8}``.

    A bare number in YAML means a constant. ``exponential`` has cv 1 by definition;
    ``uniform`` spans [mean·(1−√3·cv), mean·(1+√3·cv)] and needs cv ≤ 1/√3.
    """

    dist: Family = "exponential"
    mean: float = Field(ge=0)
    cv: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _number_is_constant(cls, data: Any) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"dist": "constant", "mean": data}
        return data

    @model_validator(mode="after")
    def _check_cv(self) -> "Dist":
        if self.dist in ("constant", "exponential"):
            implied = 0.0 if self.dist == "constant" else 1.0
            if self.cv is not None and not math.isclose(self.cv, implied):
                raise ValueError(f"{self.dist} has cv {implied:g}; remove cv or change dist")
        elif self.cv is None:
            raise ValueError(f"{self.dist} needs cv (standard deviation / mean)")
        elif self.dist == "uniform" and self.cv > 1 / math.sqrt(3):
            raise ValueError("uniform needs cv <= 0.577 to stay non-negative")
        return self

    @property
    def coefficient_of_variation(self) -> float:
        """sd / mean, including the implied values of constant (0) and exponential (1)."""
        if self.dist == "constant":
            return 0.0
        if self.dist == "exponential":
            return 1.0
        assert self.cv is not None
        return self.cv

    @property
    def second_moment(self) -> float:
        """E[X²] = mean²·(1 + cv²), as the Pollaczek–Khinchine formula needs it."""
        return self.mean**2 * (1 + self.coefficient_of_variation**2)

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """Draw ``size`` independent values in the distribution's own unit."""
        m, cv = self.mean, self.coefficient_of_variation
        if self.dist == "constant" or m == 0 or cv == 0:
            return np.full(size, m, dtype=float)
        if self.dist == "exponential":
            return rng.exponential(m, size)
        if self.dist == "lognormal":
            sigma2 = math.log1p(cv * cv)
            return rng.lognormal(math.log(m) - sigma2 / 2, math.sqrt(sigma2), size)
        if self.dist == "gamma":
            shape = 1 / (cv * cv)
            return rng.gamma(shape, m / shape, size)
        half = math.sqrt(3) * cv * m
        return rng.uniform(m - half, m + half, size)
