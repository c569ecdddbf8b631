"""Closed-form queueing results: the simulator's test oracles (REFERENCE.md, "Queueing oracles").

Conventions: ``lam`` is the arrival rate λ, ``mu`` the service rate μ of one server, ``c`` the
number of servers; offered load a = λ/μ and utilisation ρ = a/c. ``W`` is the wait in queue
(before service starts), ``T = W + S`` the sojourn (response) time. Every function is pure, takes
rates in the same time unit, and raises ``ValueError`` where the steady state does not exist
(ρ ≥ 1) or an argument is out of range: an oracle that silently returns nonsense in overload would
make a wrong test pass. Functions of ``t`` accept a float or an array and return the same shape.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def _check_rates(lam: float, mu: float, c: int = 1) -> None:
    if not (lam > 0 and mu > 0 and math.isfinite(lam) and math.isfinite(mu)):
        raise ValueError(f"rates must be positive and finite, got λ={lam}, μ={mu}")
    if int(c) != c or c < 1:
        raise ValueError(f"server count must be a positive integer, got c={c}")
    if lam >= c * mu:
        raise ValueError(f"no steady state: ρ = λ/(cμ) = {lam / (c * mu):.4g} ≥ 1")


def _sf_result(values: np.ndarray, t: ArrayLike) -> float | np.ndarray:
    return float(values) if np.ndim(t) == 0 else values


# --- M/M/1 -----------------------------------------------------------------------------------


def mm1_wq(lam: float, mu: float) -> float:
    """Mean wait in queue of M/M/1: Wq = ρ / (μ − λ)."""
    _check_rates(lam, mu)
    return (lam / mu) / (mu - lam)


def mm1_wait_sf(t: ArrayLike, lam: float, mu: float) -> float | np.ndarray:
    """P(W > t) for M/M/1 (t ≥ 0): ρ·e^{−(μ−λ)t}; the atom P(W = 0) = 1 − ρ."""
    _check_rates(lam, mu)
    tt = np.asarray(t, dtype=float)
    return _sf_result((lam / mu) * np.exp(-(mu - lam) * tt), t)


def mm1_sojourn_sf(t: ArrayLike, lam: float, mu: float) -> float | np.ndarray:
    """P(T > t) for M/M/1 (t ≥ 0): the sojourn time is exponential with rate μ − λ."""
    _check_rates(lam, mu)
    tt = np.asarray(t, dtype=float)
    return _sf_result(np.exp(-(mu - lam) * tt), t)


# --- M/M/c (Erlang C) ------------------------------------------------------------------------


def erlang_b(c: int, a: float) -> float:
    """Erlang B blocking probability for ``c`` servers and offered load ``a`` (any a > 0).

    Uses the recursion B₀ = 1, B_k = a·B_{k−1} / (k + a·B_{k−1}), which stays in [0, 1] and so
    never overflows, unlike the textbook aᶜ/c! form (which fails beyond c ≈ 170).
    """
    if int(c) != c or c < 0:
        raise ValueError(f"server count must be a non-negative integer, got c={c}")
    if not (a > 0 and math.isfinite(a)):
        raise ValueError(f"offered load must be positive and finite, got a={a}")
    b = 1.0
    for k in range(1, int(c) + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Erlang C: probability that an arrival waits, for ``c`` servers and offered load a < c.

    C = B_c / (1 − ρ(1 − B_c)) with B_c from :func:`erlang_b` and ρ = a/c.
    """
    if not (0 < a < c):
        raise ValueError(f"Erlang C needs 0 < a < c (steady state), got a={a}, c={c}")
    b = erlang_b(c, a)
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


def mmc_wq(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue of M/M/c: Wq = C / (cμ − λ)."""
    _check_rates(lam, mu, c)
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mmc_wait_sf(t: ArrayLike, lam: float, mu: float, c: int) -> float | np.ndarray:
    """P(W > t) for M/M/c (t ≥ 0): C·e^{−(cμ−λ)t}."""
    _check_rates(lam, mu, c)
    tt = np.asarray(t, dtype=float)
    return _sf_result(erlang_c(c, lam / mu) * np.exp(-(c * mu - lam) * tt), t)


def mmc_sojourn_sf(t: ArrayLike, lam: float, mu: float, c: int) -> float | np.ndarray:
    """P(T > t) for M/M/c (t ≥ 0), T = W + S with S ~ Exp(μ) independent of W.

    P(T > t) = (1−C)e^{−μt} + C[(θe^{−μt} − μe^{−θt})/(θ − μ)] with θ = cμ − λ; when θ = μ the
    bracket is its limit, the Erlang-2 tail (1 + μt)e^{−μt}, used when |θ − μ| is tiny so that
    the difference quotient does not lose all its digits.
    """
    _check_rates(lam, mu, c)
    tt = np.asarray(t, dtype=float)
    cw = erlang_c(c, lam / mu)
    theta = c * mu - lam
    if abs(theta - mu) <= 1e-9 * mu:
        waited = (1.0 + mu * tt) * np.exp(-mu * tt)
    else:
        waited = (theta * np.exp(-mu * tt) - mu * np.exp(-theta * tt)) / (theta - mu)
    return _sf_result((1.0 - cw) * np.exp(-mu * tt) + cw * waited, t)


# --- M/G/1 (Pollaczek–Khinchine) -------------------------------------------------------------


def mg1_wq(lam: float, es: float, es2: float) -> float:
    """Mean wait in queue of M/G/1 (Pollaczek–Khinchine): Wq = λE[S²] / (2(1 − ρ)), ρ = λE[S].

    ``es`` = E[S] and ``es2`` = E[S²] (the raw second moment, not the variance); E[S²] ≥ E[S]²
    is required. Equivalent form: ρE[S](1 + c_s²) / (2(1 − ρ)) with c_s² = E[S²]/E[S]² − 1.
    """
    if not (lam > 0 and es > 0 and math.isfinite(lam) and math.isfinite(es)):
        raise ValueError(f"λ and E[S] must be positive and finite, got λ={lam}, E[S]={es}")
    if not (es2 >= es * es and math.isfinite(es2)):
        raise ValueError(f"E[S²] must be finite and ≥ E[S]², got E[S²]={es2}, E[S]={es}")
    rho = lam * es
    if rho >= 1:
        raise ValueError(f"no steady state: ρ = λE[S] = {rho:.4g} ≥ 1")
    return lam * es2 / (2.0 * (1.0 - rho))


def lognormal_moments(mean: float, cv: float) -> tuple[float, float, float]:
    """Parameters of a lognormal with the given mean and coefficient of variation.

    Returns (m, s, E[S²]) such that ``exp(N(m, s²))`` has mean ``mean`` and CV ``cv``:
    s² = ln(1 + cv²), m = ln(mean) − s²/2, E[S²] = mean²(1 + cv²). Handy for M/G/1 oracles.
    """
    if not (mean > 0 and cv > 0):
        raise ValueError(f"mean and cv must be positive, got mean={mean}, cv={cv}")
    s2 = math.log1p(cv * cv)
    return math.log(mean) - s2 / 2.0, math.sqrt(s2), mean * mean * (1.0 + cv * cv)
