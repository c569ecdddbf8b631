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

import dataclasses
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

    def table(self, t: float) -> LinkTable:
        """Every link in ``names`` order, as it is at ``t``."""
        return LinkTable.of([self.profile(name, t) for name in self.names])


@dataclasses.dataclass(frozen=True)
class LinkTable:
    """Profiles as parallel arrays (one entry per profile) for drawing many latencies at once."""

    rtt: np.ndarray
    up: np.ndarray
    down: np.ndarray
    jitter: np.ndarray
    loss: np.ndarray
    outage_share: np.ndarray
    outage_ms: np.ndarray

    @classmethod
    def of(cls, profiles: list[LinkProfile]) -> "LinkTable":
        def col(f) -> np.ndarray:
            return np.array([f(p) for p in profiles], dtype=float)

        return cls(col(lambda p: p.rtt_ms), col(lambda p: p.up_kbps), col(lambda p: p.down_kbps),
                   col(lambda p: p.jitter_ms), col(lambda p: p.loss),
                   col(lambda p: min(1.0, p.outage.for_s / p.outage.every_s) if p.outage else 0.0),
                   col(lambda p: p.outage.for_s * 1000 if p.outage else 0.0))


@dataclasses.dataclass(frozen=True)
class StepTable:
    """What the network sees of each step, as parallel arrays (one entry per step)."""

    trips: np.ndarray
    up_bytes: np.ndarray
    down_bytes: np.ndarray
    packets: np.ndarray
    rounds: np.ndarray

    @classmethod
    def of(cls, steps: list[Step]) -> "StepTable":
        trips = [0.5 if s.kind == "push" else float(s.round_trips) for s in steps]
        up = [0 if s.kind == "push" else s.request_bytes for s in steps]
        down = [s.response_bytes for s in steps]
        packets = [math.ceil(u / PACKET_BYTES) + max(1, math.ceil(d / PACKET_BYTES))
                   for u, d in zip(up, down)]
        return cls(np.array(trips), np.array(up, dtype=float), np.array(down, dtype=float),
                   np.array(packets, dtype=np.int64),
                   np.array([max(1, math.ceil(t)) for t in trips], dtype=np.int64))


def latencies_ms(links: LinkTable, link: np.ndarray, steps: StepTable, step: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Network time (ms) of each request: request ``i`` is step ``step[i]`` over ``link[i]``.

    A push (one-way) costs half an RTT; a request its round trips. Jitter is |N(0, jitter)|
    per round trip.
    """
    n = len(link)
    rtt = links.rtt[link]
    # kbps is bits per millisecond, so bytes × 8 / kbps is milliseconds.
    out = (steps.trips[step] * rtt + steps.up_bytes[step] * 8 / links.up[link]
           + steps.down_bytes[step] * 8 / links.down[link])
    jitter = links.jitter[link]
    if jitter.any():
        rounds = steps.rounds[step]
        width = int(rounds.max())
        draws = np.abs(rng.normal(0.0, 1.0, (n, width)))
        if width > 1:
            draws = np.where(np.arange(width) < rounds[:, None], draws, 0.0)
        out += draws.sum(axis=1) * jitter
    loss = links.loss[link]
    if loss.any():
        out += rng.binomial(steps.packets[step], loss) * np.maximum(MIN_RTO_MS, rtt)
    share = links.outage_share[link]
    if share.any():
        caught = rng.random(n) < share
        out += np.where(caught, rng.random(n) * links.outage_ms[link], 0.0)
    return out
