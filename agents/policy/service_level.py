"""Service-level maths: safety factors for a cycle service level or a fill rate, safety stock.

Normal demand over the protection interval; sources in each function.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special, stats
from scipy.optimize import brentq

__all__ = [
    "Z_MAX",
    "Z_MIN",
    "check_probability",
    "norm_ppf",
    "norm_ppf_array",
    "safety_stock",
    "standard_normal_loss",
    "z_for_cycle_service_level",
    "z_for_fill_rate",
]

#: Bracket of safety factors searched by :func:`z_for_fill_rate`.
Z_MIN: float = -5.0
Z_MAX: float = 8.0


def check_probability(value: float, name: str) -> float:
    """``value`` as a float when it lies strictly in (0, 1), else ValueError naming ``name``."""
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"The {name} must lie strictly between 0 and 1, got {value}.")
    return value


def z_for_cycle_service_level(csl: float) -> float:
    """Safety factor ``z`` achieving a cycle service level under normal demand.

    ``z = Phi^{-1}(csl)`` where Phi is the standard normal CDF (``scipy.stats.norm.ppf``).

    Parameters
    ----------
    csl : float
        Cycle service level: probability of no stockout in a replenishment cycle, in (0, 1).

    Returns
    -------
    float
        Safety factor (dimensionless number of standard deviations).

    Raises
    ------
    ValueError
        If ``csl`` is not strictly between 0 and 1.

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), *Inventory and Production Management in Supply
        Chains*, 4th ed., Ch. 6, decision rule for a specified probability of no stockout per
        replenishment cycle (P1): p_u>=(k) = 1 - P1.

    Examples
    --------
    >>> round(z_for_cycle_service_level(0.95), 4)
    1.6449

    """
    return norm_ppf(check_probability(csl, "cycle service level"))


@functools.lru_cache(maxsize=256)
def norm_ppf(level: float) -> float:
    """Standard normal quantile ``Phi^{-1}(level)`` (``scipy.stats.norm.ppf``), cached per level.

    ``level`` in (0, 1). Computed as ``norm.ppf`` computes it inside its argument machinery
    (``ndtri(q) * scale + loc`` with scale 1 and loc 0), so the floats are ``norm.ppf``'s.
    """
    # the service targets are a handful of constants: solve each once per process (per-SKU
    # critical fractiles miss the cache; ndtri directly skips scipy's argument checks)
    return float(special.ndtri(level) * 1 + 0)


def norm_ppf_array(levels: np.ndarray) -> np.ndarray:
    """:func:`norm_ppf` of every level, shape ``(N,)`` -> ``(N,)``, in one ``ndtri`` pass.

    Parameters
    ----------
    levels : numpy.ndarray
        Probabilities strictly between 0 and 1 (not checked here).

    Returns
    -------
    numpy.ndarray
        ``float64`` quantiles equal, bit for bit, to ``scipy.stats.norm.ppf`` of each level.

    Examples
    --------
    >>> norm_ppf_array(np.array([0.5, 0.95])).tolist() == [norm_ppf(0.5), norm_ppf(0.95)]
    True
    """
    return np.asarray(special.ndtri(np.asarray(levels, dtype=np.float64)) * 1 + 0, dtype=np.float64)


def standard_normal_loss(z: float) -> float:
    """Evaluate the standard normal loss function ``G(z) = phi(z) - z * (1 - Phi(z))``.

    ``G(z) = E[(Z - z)^+]`` for a standard normal ``Z``: the expected shortage per cycle in
    standard deviations when the safety factor is ``z``.

    Parameters
    ----------
    z : float
        Safety factor (dimensionless).

    Returns
    -------
    float
        Expected units short per unit of standard deviation; positive and decreasing in z.

    Raises
    ------
    ValueError
        If ``z`` is not finite.

    References
    ----------
    [^1]: Snyder, L. V., & Shen, Z.-J. M. (2019). *Fundamentals of Supply Chain Theory* (2nd
        ed.). Wiley. Appendix C, eq. (C.22).
    [^2]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 6 (the function G_u(k)).

    Examples
    --------
    >>> round(standard_normal_loss(1.3), 6)
    0.045528

    """
    z = float(z)
    if not math.isfinite(z):
        raise ValueError(f"The safety factor must be finite, got {z}.")
    return float(stats.norm.pdf(z) - z * stats.norm.sf(z))


def z_for_fill_rate(fill_rate: float, order_quantity: float, sigma: float) -> float:
    """Safety factor achieving a fill rate: solve ``G(z) = Q (1 - beta) / sigma``.

    The expected shortage per replenishment cycle is ``sigma * G(z)``; a fraction ``beta`` of
    the demand ``Q`` per cycle is filled from shelf when it equals ``Q (1 - beta)``. Solved by
    ``scipy.optimize.brentq`` on the bracket z in [-5, 8]; targets outside the range of G on
    that bracket are clipped to its ends (when ``sigma == 0`` demand is certain and -5 is
    returned, a zero safety stock after clipping). The approximation ignores the shortage
    carried over from earlier cycles, so it is conservative for small ``Q / sigma``.

    Parameters
    ----------
    fill_rate : float
        Target fraction of demand satisfied routinely from shelf, beta in (0, 1).
    order_quantity : float
        Expected demand per replenishment cycle Q in units (order quantity for (s, Q), demand
        over the review period for (R, S)); non-negative.
    sigma : float
        Standard deviation of demand over the protection interval, in units; non-negative.

    Returns
    -------
    float
        Safety factor z in [-5, 8].

    Raises
    ------
    ValueError
        If ``fill_rate`` is outside (0, 1) or ``order_quantity`` / ``sigma`` are negative or not
        finite.

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), *Inventory and Production Management in Supply
        Chains*, 4th ed., Ch. 6, decision rule for a specified fraction of demand satisfied
        routinely from shelf (P2): G_u(k) = Q (1 - P2) / sigma_L.

    Examples
    --------
    Q = 100 units, sigma = 20 units, beta = 0.98: G(z) = 100 * 0.02 / 20 = 0.1.

    >>> z = z_for_fill_rate(0.98, 100.0, 20.0)
    >>> round(z, 3), round(standard_normal_loss(z), 6)
    (0.902, 0.1)

    """
    beta = check_probability(fill_rate, "fill rate")
    q = float(order_quantity)
    s = float(sigma)
    if not (math.isfinite(q) and q >= 0):
        raise ValueError(f"The order quantity must be finite and non-negative, got {q}.")
    if not (math.isfinite(s) and s >= 0):
        raise ValueError(f"The standard deviation must be finite and non-negative, got {s}.")
    if s == 0:
        return Z_MIN
    target = q * (1.0 - beta) / s
    if target >= standard_normal_loss(Z_MIN):
        return Z_MIN
    if target <= standard_normal_loss(Z_MAX):
        return Z_MAX
    return float(brentq(lambda z: standard_normal_loss(z) - target, Z_MIN, Z_MAX, xtol=1e-10))


def safety_stock(z: float, sigma: float) -> float:
    """Safety stock ``max(0, z * sigma)`` in units.

    Negative safety stock (z < 0, i.e. a cycle service level below 0.5) is clipped at zero:
    the policy never plans to hold less than the expected demand.

    Parameters
    ----------
    z : float
        Safety factor (dimensionless).
    sigma : float
        Standard deviation of demand over the protection interval, in units; non-negative.

    Returns
    -------
    float
        Safety stock in units of stock, >= 0.

    Raises
    ------
    ValueError
        If ``sigma`` is negative or either argument is not finite.

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 6: safety stock SS = k sigma_L.

    Examples
    --------
    >>> safety_stock(1.5, 10.0), safety_stock(-0.5, 10.0)
    (15.0, 0.0)

    """
    z, sigma = float(z), float(sigma)
    if not (math.isfinite(z) and math.isfinite(sigma)) or sigma < 0:
        raise ValueError(
            f"The safety factor must be finite and sigma finite and non-negative, got z={z}, "
            f"sigma={sigma}."
        )
    return max(0.0, z * sigma)
