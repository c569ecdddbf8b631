"""The chaos schedule: timed faults from one vocabulary, shared by the simulator and real runs."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from scenarios.base import Strict
from scenarios.links import LinkOverrides
from scenarios.scaling import LoadCount, MatchSeconds, PositiveMatchSeconds


class _Action(Strict):
    id: str | None = Field(default=None, description="name to refer to it from budgets")
    at: MatchSeconds
    duration: PositiveMatchSeconds

    @property
    def end(self) -> float:
        """Match second at which the fault is lifted."""
        return self.at + self.duration

    @property
    def ref(self) -> str:
        """The name budgets use for this action: its id, or its action type."""
        return self.id or self.action  # type: ignore[attr-defined]


class ZoneOutage(_Action):
    """A zone is lost: ``power`` stops its instances, ``network`` partitions it (AWS FIS style)."""

    action: Literal["zone_outage"]
    zone: str
    mode: Literal["power", "network"] = "power"


class LinkDegradation(_Action):
    """Users on ``link`` get ``profile``'s characteristics, or the fields in ``set``."""

    action: Literal["link_degradation"]
    link: str
    profile: str | None = None
    set: LinkOverrides | None = None

    @model_validator(mode="after")
    def _one_change(self) -> "LinkDegradation":
        if (self.profile is None) == (self.set is None):
            raise ValueError("give exactly one of profile or set")
        return self


class CacheLoss(_Action):
    """A cache is flushed and unavailable for ``duration``, then warms up again."""

    action: Literal["cache_loss"]
    cache: str


class DbFailover(_Action):
    """The primary of ``database`` dies; the standby is promoted after its ``failover_s``."""

    action: Literal["db_failover"]
    database: str


class RegionFailover(_Action):
    """Region ``source`` is lost; traffic and databases move to ``target``."""

    action: Literal["region_failover"]
    source: str = Field(alias="from")
    target: str = Field(alias="to")


class RollingDeploy(_Action):
    """``service`` is redeployed, ``max_unavailable`` instances per zone at a time."""

    action: Literal["rolling_deploy"]
    service: str
    max_unavailable: int = Field(default=1, ge=1)


class BotFlood(_Action):
    """Scrapers hammer ``step`` with ``rps`` extra requests per second."""

    action: Literal["bot_flood"]
    step: str
    rps: LoadCount


ChaosAction = Annotated[
    Union[ZoneOutage, LinkDegradation, CacheLoss, DbFailover, RegionFailover, RollingDeploy,
          BotFlood],
    Field(discriminator="action"),
]
