"""Instance prices per service class, on-demand and spot."""

from __future__ import annotations

from pydantic import Field

from scenarios.base import Strict


class PriceClass(Strict):
    """Price per instance-hour; ``spot_share`` of the instances run on spot capacity."""

    on_demand: float = Field(ge=0)
    spot: float | None = Field(default=None, ge=0)
    spot_share: float = Field(default=0.0, ge=0, le=1)

    def hourly(self) -> float:
        """Blended price of one instance-hour."""
        spot = self.spot if self.spot is not None else self.on_demand
        return self.on_demand * (1 - self.spot_share) + spot * self.spot_share


class Cost(Strict):
    """The price list a scenario's bill is computed with."""

    currency: str = "USD"
    # Assumption: AWS m6i.large on-demand in eu-west-1 is about 0.107 USD/h, spot about 0.04 USD/h.
    classes: dict[str, PriceClass] = {"general": PriceClass(on_demand=0.107, spot=0.04)}
