"""Mobile link profiles (bandwidth, RTT, jitter, loss, outages) and the share of users on each.

Every profile says where its numbers come from (``source``) and whether they are published
constants (``verified: true``) or our assumption. The built-ins are always available; a scenario
may add profiles or override one by name.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from scenarios.base import Strict


class Outage(Strict):
    """The link drops completely for ``for_s`` seconds every ``every_s`` seconds (handover, tunnel)."""

    every_s: float = Field(gt=0)
    for_s: float = Field(gt=0)


class LinkProfile(Strict):
    """One kind of network path between a phone and the edge."""

    down_kbps: float = Field(gt=0)
    up_kbps: float = Field(gt=0)
    rtt_ms: float = Field(ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    loss: float = Field(default=0.0, ge=0, lt=1)
    outage: Outage | None = None
    source: str
    verified: bool


class LinkOverrides(Strict):
    """Partial change of a profile during a ``link_degradation`` (unset fields keep their value)."""

    down_kbps: float | None = Field(default=None, gt=0)
    up_kbps: float | None = Field(default=None, gt=0)
    rtt_ms: float | None = Field(default=None, ge=0)
    jitter_ms: float | None = Field(default=None, ge=0)
    loss: float | None = Field(default=None, ge=0, lt=1)


_DEVTOOLS = "Chrome DevTools NetworkManager presets (throttling constants in the DevTools source)"
_LIGHTHOUSE = "Lighthouse throttling constants (lighthouse-core/config/constants.js)"
_NLC = "Apple Network Link Conditioner preset (approximate, as commonly quoted)"

# Constants from ../shared/REFERENCE.md, "Mobile link profiles".
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    # DevTools applies its latency multipliers to the preset RTT: 400 ms x 5 = 2000 ms.
    "devtools_3g": {"down_kbps": 400, "up_kbps": 400, "rtt_ms": 2000,
                    "source": _DEVTOOLS, "verified": True},
    "devtools_slow_4g": {"down_kbps": 1440, "up_kbps": 675, "rtt_ms": 562.5,
                         "source": _DEVTOOLS, "verified": True},
    "devtools_fast_4g": {"down_kbps": 8100, "up_kbps": 1350, "rtt_ms": 165,
                         "source": _DEVTOOLS, "verified": True},
    "lighthouse_slow_4g": {"down_kbps": 1638.4, "up_kbps": 675, "rtt_ms": 150,
                           "source": _LIGHTHOUSE, "verified": True},
    "lighthouse_regular_3g": {"down_kbps": 700, "up_kbps": 630, "rtt_ms": 300,
                              "source": _LIGHTHOUSE, "verified": True},
    # 100 ms of delay each way.
    "nlc_3g": {"down_kbps": 780, "up_kbps": 330, "rtt_ms": 200, "loss": 0.0,
               "source": _NLC, "verified": False},
    # 400 ms down + 440 ms up.
    "nlc_edge": {"down_kbps": 240, "up_kbps": 200, "rtt_ms": 840, "loss": 0.0,
                 "source": _NLC, "verified": False},
    # In-stadium LTE at Super Bowl LIV (2020): 14-21 Mbps median down, up to 11 Mbps up,
    # 30-35 ms one way. We take the low end of the down range and RTT = 2 x 32.5 ms.
    "stadium_lte_measured": {"down_kbps": 14000, "up_kbps": 11000, "rtt_ms": 65,
                             "source": "Super Bowl LIV in-stadium LTE measurements (2020)",
                             "verified": True},
    "wifi": {"down_kbps": 30000, "up_kbps": 10000, "rtt_ms": 20, "jitter_ms": 5, "loss": 0.001,
             "source": "assumption: home broadband over Wi-Fi", "verified": False},
    # No published loss figure exists for a saturated stadium cell; Shafiq et al. (SIGMETRICS 2013)
    # saw >100x connection failures in crowds, with uplink spikes at kick-off, goals and full time.
    "stadium_congested": {"down_kbps": 1000, "up_kbps": 200, "rtt_ms": 400, "jitter_ms": 250,
                          "loss": 0.03, "outage": {"every_s": 90, "for_s": 3},
                          "source": "assumption: saturated stadium cell (cf. Shafiq et al., "
                                    "SIGMETRICS 2013)",
                          "verified": False},
}


class Links(Strict):
    """Which profiles exist (built-ins plus the scenario's own) and the share of users on each."""

    mix: dict[str, float] = Field(min_length=1)
    profiles: dict[str, LinkProfile] = {}

    @model_validator(mode="before")
    @classmethod
    def _with_builtins(cls, data: Any) -> Any:
        if isinstance(data, dict):
            own = data.get("profiles") or {}
            if isinstance(own, dict):
                data = {**data, "profiles": {**BUILTIN_PROFILES, **own}}
        return data

    def apply(self, name: str, overrides: LinkOverrides) -> LinkProfile:
        """The profile ``name`` with ``overrides`` applied (used by link_degradation)."""
        changes = overrides.model_dump(exclude_none=True)
        return self.profiles[name].model_copy(update=changes)
