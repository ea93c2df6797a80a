"""Demand over an interval of periods: the window sums of a per-period forecast.

A forecast is a pair of arrays ``mean_per_period`` and ``var_per_period`` of shape ``(H,)`` (units,
units squared), period 0 being the one that starts now; see :mod:`agents.policy`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["as_forecast", "lead_time_demand", "window_sum"]


def as_forecast(mean_per_period: ArrayLike, var_per_period: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated float arrays ``(mean, var)`` of one forecast (shape ``(H,)``, H >= 1; ValueError)."""
    mu = np.asarray(mean_per_period, dtype=float)
    var = np.asarray(var_per_period, dtype=float)
    if mu.ndim != 1 or var.ndim != 1 or mu.shape != var.shape:
        raise ValueError(
            "The mean and variance forecasts must be one-dimensional arrays of the same length, "
            f"got shapes {mu.shape} and {var.shape}."
        )
    if mu.size == 0:
        raise ValueError("The demand forecast is empty; at least one period is needed.")
    # one pass each: a NaN fails ``>= 0``; a finite sum of non-negatives has no infinity
    lo = min(float(mu.min()), float(var.min()))
    if not lo >= 0 or not math.isfinite(float(mu.sum()) + float(var.sum())):
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(var))):
            raise ValueError("The demand forecast contains non-finite values.")
        if np.any(mu < 0) or np.any(var < 0):
            raise ValueError("Demand means and variances per period must be non-negative.")
    return mu, var


def window_sum(x: np.ndarray, length: float) -> float:
    """Sum of ``x`` over the first ``length`` periods (fractional, extended with ``x[-1]``)."""
    n = math.floor(length)
    frac = length - n
    h = x.size
    total = float(x[: min(n, h)].sum()) + max(n - h, 0) * float(x[-1])
    if frac > 0:
        total += frac * float(x[min(n, h - 1)])
    return total


def lead_time_demand(
    mean_per_period: ArrayLike,
    var_per_period: ArrayLike,
    lead_time_periods: float,
    lead_time_std_periods: float = 0.0,
) -> tuple[float, float]:
    """Mean and variance of total demand over a (possibly random) lead time.

    Aggregation: with ``L = lead_time_periods`` and per-period forecasts ``mu_t``, ``v_t``
    (t = 0, 1, ...), the mean is ``sum_{t < floor(L)} mu_t + frac(L) * mu_{floor(L)}`` (a
    fractional lead time takes that fraction of the next period) and the variance is the same
    window sum of ``v_t`` (periods independent, variance of a fraction ``f`` of a period taken
    as ``f * v_t``) plus the lead-time-uncertainty term ``mean_d**2 * sigma_L**2``, where
    ``mean_d`` is the average per-period mean over the window (mean / L). For stationary demand
    this is the textbook ``E[L] var_d + mean_d**2 var_L`` [^1]. When the forecast is shorter than
    the window it is extended with its last period's values (computed in closed form, so huge
    lead times are cheap).

    Parameters
    ----------
    mean_per_period : array_like, shape (H,)
        Mean demand in units of stock for each of the next H periods; non-negative.
    var_per_period : array_like, shape (H,)
        Variance of demand in units squared for each period; non-negative.
    lead_time_periods : float
        Mean lead time (or any interval, e.g. L + R) in periods; non-negative.
    lead_time_std_periods : float, default 0
        Standard deviation of the lead time in periods; non-negative.

    Returns
    -------
    tuple of (float, float)
        Mean (units) and variance (units squared) of demand over the lead time.

    Raises
    ------
    ValueError
        On negative or non-finite means, variances or lead-time values, an empty forecast, or
        arrays of different shapes.

    References
    ----------
    [^1]: Silver, E. A., Pyke, D. F., & Thomas, D. J. (2017). *Inventory and Production
        Management in Supply Chains* (4th ed.). CRC Press. Ch. 6, section "Variability in the
        Replenishment Lead Time Itself": sigma_x^2 = E(L) var(D) + [E(D)]^2 var(L).

    Examples
    --------
    Demand 10 units/period (variance 4), L = 4 periods with sigma_L = 1 period:
    mean = 40, variance = 4 * 4 + 10**2 * 1**2 = 116.

    >>> lead_time_demand([10.0] * 4, [4.0] * 4, 4, 1)
    (40.0, 116.0)
    >>> lead_time_demand([1.0, 2.0], [1.0, 1.0], 2.5)   # extended with the last period
    (4.0, 2.5)

    """
    mu, var = as_forecast(mean_per_period, var_per_period)
    L = float(lead_time_periods)
    sd_L = float(lead_time_std_periods)
    if not (math.isfinite(L) and L >= 0):
        raise ValueError(f"The lead time must be a finite non-negative number of periods, got {L}.")
    if not (math.isfinite(sd_L) and sd_L >= 0):
        raise ValueError(
            f"The lead-time standard deviation must be finite and non-negative, got {sd_L}."
        )
    mean = window_sum(mu, L)
    variance = window_sum(var, L)
    mean_d = mean / L if L > 0 else float(mu[0])
    variance += mean_d**2 * sd_L**2
    return mean, variance
