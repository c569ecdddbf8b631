"""Where requests go: regions and zones, services, caches, databases, and each step's call path."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scenarios.base import Strict
from scenarios.distributions import Dist
from scenarios.scaling import InstanceCount


class Region(Strict):
    """A cloud region and its availability zones; a ``standby`` region serves only after failover."""

    zones: list[str] = Field(min_length=1)
    role: Literal["active", "standby"] = "active"


class Service(Strict):
    """A stateless service deployed in every zone of its regions."""

    instances: InstanceCount = Field(description="instances per zone at the start")
    concurrency: int = Field(ge=1, description="requests one instance serves at once")
    service_time_ms: Dist
    cost_class: str = "general"
    regions: list[str] | None = None


class Cache(Strict):
    """A shared cache per zone (Redis-like): hit ratio when warm, entry TTL, lookup time."""

    hit_ratio: float = Field(ge=0, le=1)
    ttl_s: float = Field(gt=0)
    service_time_ms: Dist = Dist(dist="exponential", mean=0.3)


class Database(Strict):
    """A primary with an optional standby; ``failover_s`` is how long promotion takes."""

    region: str
    pool_size: int = Field(ge=1, description="connections per service instance")
    max_connections: int = Field(ge=1, description="connections the primary accepts in all")
    service_time_ms: Dist
    standby: bool = True
    standby_region: str | None = None
    replication: Literal["sync", "async"] = "sync"
    replication_lag_ms: float = Field(default=0.0, ge=0)
    failover_s: float = Field(default=30.0, ge=0)


class CallNode(Strict):
    """One hop of a call path: a service, a cache or a database, and what it calls in turn.

    Children run one after another unless ``parallel`` is set; ``fanout`` calls the node that many
    times in parallel (a slip of k legs priced at once). A cache's ``on_miss`` runs on a miss.
    """

    service: str | None = None
    cache: str | None = None
    db: str | None = None
    queries: int = Field(default=1, ge=1)
    fanout: int = Field(default=1, ge=1)
    parallel: bool = False
    calls: list["CallNode"] = []
    on_miss: list["CallNode"] = []

    @property
    def target(self) -> tuple[str, str]:
        """(kind, name) of the hop: ('service', 'bets'), ('cache', 'odds'), ('db', 'ledger')."""
        for kind in ("service", "cache", "db"):
            name = getattr(self, kind)
            if name is not None:
                return kind, name
        raise ValueError("call node without a target")


class Step(Strict):
    """A journey step as the bettor sees it: one HTTP request, or one server push."""

    kind: Literal["request", "push"] = "request"
    endpoint: str = Field(description="e.g. 'POST /bets' or 'WS /stream/odds'")
    request_bytes: int = Field(default=500, ge=0)
    response_bytes: int = Field(default=2000, ge=0)
    round_trips: int = Field(default=1, ge=1, description="network round trips the step costs")
    write: bool = Field(default=False, description="changes money or bets (idempotency key)")
    rate_hz: float | None = Field(default=None, gt=0, description="pushes per subscriber per s")
    calls: list[CallNode] = []


class Topology(Strict):
    """The whole backend, by name."""

    regions: dict[str, Region] = Field(min_length=1)
    services: dict[str, Service] = Field(min_length=1)
    caches: dict[str, Cache] = {}
    databases: dict[str, Database] = {}
    steps: dict[str, Step] = Field(min_length=1)

    def zones(self, role: str | None = None) -> list[str]:
        """Every zone as ``<region>-<zone>`` (e.g. ``eu-west-b``), optionally of one region role."""
        return [
            f"{region}-{zone}"
            for region, r in self.regions.items()
            if role is None or r.role == role
            for zone in r.zones
        ]
