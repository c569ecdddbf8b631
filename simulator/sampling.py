"""Cheap scalar draws for the per-request engine: numpy in blocks, handed out one at a time."""

from __future__ import annotations

import numpy as np

from scenarios.distributions import Dist


class BlockSampler:
    """Draws from ``dist`` × ``scale`` (e.g. 0.001 for ms → s) in blocks of ``block``."""

    __slots__ = ("_dist", "_rng", "_scale", "_block", "_buffer", "_next")

    def __init__(self, dist: Dist, rng: np.random.Generator, scale: float = 1.0, block: int = 4096):
        self._dist, self._rng, self._scale, self._block = dist, rng, scale, block
        self._buffer: list[float] = []
        self._next = 0

    def __call__(self) -> float:
        if self._next >= len(self._buffer):
            self._buffer = (self._dist.sample(self._rng, self._block) * self._scale).tolist()
            self._next = 0
        value = self._buffer[self._next]
        self._next += 1
        return value


class UniformSampler:
    """Uniform [0, 1) draws in blocks."""

    __slots__ = ("_rng", "_buffer", "_next")

    def __init__(self, rng: np.random.Generator):
        self._rng = rng
        self._buffer: list[float] = []
        self._next = 0

    def __call__(self) -> float:
        if self._next >= len(self._buffer):
            self._buffer = self._rng.random(8192).tolist()
            self._next = 0
        value = self._buffer[self._next]
        self._next += 1
        return value
