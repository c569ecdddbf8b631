"""The mobile link between a phone and the edge: what it adds to each request's latency.

For a request over a profile: ``round_trips × RTT`` plus jitter per round trip, the request
bytes over the uplink and the response bytes over the downlink, a retransmission per lost
packet, and — when the link has outages — the wait until the current outage ends. A push is
one-way: half an RTT plus the message over the downlink. Assumptions (ours): packets of 1,400 B;
a lost packet costs one retransmission timeout, max(200 ms, RTT) as Linux's minimum RTO and
TCP's RTT-based timer would give; outages are not synchronised across users, so a request falls
in one with probability for_s / every_s and then waits a uniform part of it.
"""

from __future__ import annotations

import math

import numpy as np

from scenarios import Scenario
from scenarios.chaos import LinkDegradation
from scenarios.links import LinkProfile
from scenarios.topology import Step

PACKET_BYTES = 1400
MIN_RTO_MS = 200.0


class Links:
    """Link profiles by name, as they are at a given time (link_degradation applied)."""

    def __init__(self, scenario: Scenario):
        self._links = scenario.links
        self._degradations = [a for a in scenario.chaos if isinstance(a, LinkDegradation)]
        self.names = list(scenario.links.mix)
        self.shares = np.array([scenario.links.mix[n] for n in self.names], dtype=float)

    def profile(self, link: str, t: float) -> LinkProfile:
        """The profile users assigned ``link`` are on at match second ``t``."""
        profile = self._links.profiles[link]
        for action in self._degradations:
            if action.link == link and action.at <= t < action.end:
                if action.profile is not None:
                    profile = self._links.profiles[action.profile]
                if action.set is not None:
                    profile = profile.model_copy(update=action.set.model_dump(exclude_none=True))
        return profile

    def degraded(self, t: float) -> list[str]:
        """Links under a degradation at ``t`` (for the timeline)."""
        return [a.link for a in self._degradations if a.at <= t < a.end]


def link_latency_ms(profile: LinkProfile, step: Step, rng: np.random.Generator,
                    n: int) -> np.ndarray:
    """``n`` samples of the network time (ms) ``step`` costs over ``profile``."""
    if step.kind == "push":
        trips, up_bytes = 0.5, 0
    else:
        trips, up_bytes = float(step.round_trips), step.request_bytes
    down_bytes = step.response_bytes
    # kbps is bits per millisecond, so bytes × 8 / kbps is milliseconds.
    base = trips * profile.rtt_ms + up_bytes * 8 / profile.up_kbps + down_bytes * 8 / profile.down_kbps
    out = np.full(n, base)
    if profile.jitter_ms > 0:
        rounds = max(1, math.ceil(trips))
        out += np.abs(rng.normal(0.0, profile.jitter_ms, (n, rounds))).sum(axis=1)
    if profile.loss > 0:
        packets = math.ceil(up_bytes / PACKET_BYTES) + max(1, math.ceil(down_bytes / PACKET_BYTES))
        lost = rng.binomial(packets, profile.loss, n)
        out += lost * max(MIN_RTO_MS, profile.rtt_ms)
    if profile.outage is not None:
        o = profile.outage
        caught = rng.random(n) < min(1.0, o.for_s / o.every_s)
        out += np.where(caught, rng.uniform(0.0, o.for_s * 1000, n), 0.0)
    return out
