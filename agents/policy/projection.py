"""Projected inventory over the forecast horizon and the overstock check.

Periods, units of stock and currency as in :mod:`agents.policy`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from agents.policy.interval import as_forecast
from agents.policy.levels import PolicyLevels
from agents.policy.params import PolicyParams

__all__ = ["OverstockCheck", "Projection", "is_overstock", "project_inventory"]


@dataclass(frozen=True)
class Projection:
    """Projected stock over the forecast horizon.

    Parameters
    ----------
    expected_on_hand : numpy.ndarray, shape (H,)
        Expected end-of-period net stock in units (on hand minus backorders plus receipts minus
        cumulative mean demand); negative values are projected shortages. Read-only.
    first_stockout_period : int or None
        Index of the first period whose expected net stock is negative, or None.
    stockout_probability : float
        Probability (normal approximation) that net stock is negative at the riskiest end of
        period in the evaluation window; see :func:`project_inventory`.
    periods_of_cover : float or None
        Demand periods (not days) the current net stock plus scheduled receipts last at the
        mean forecast, or None when the forecast has no demand at all and net stock never goes
        negative. Multiply by the period length in days for days.
    net_stock : float
        on_hand - backorders now, in units.
    total_receipts : float
        Sum of all scheduled receipts in units, including those arriving after the horizon.

    """

    expected_on_hand: np.ndarray
    first_stockout_period: int | None
    stockout_probability: float
    periods_of_cover: float | None
    net_stock: float = 0.0
    total_receipts: float = 0.0


def project_inventory(
    on_hand: float,
    backorders: float,
    scheduled_receipts: Sequence[tuple[int, float]],
    mean_per_period: ArrayLike,
    var_per_period: ArrayLike,
    within_periods: float | None = None,
) -> Projection:
    """Project expected net stock, stockout risk and cover over the forecast horizon.

    Receipts scheduled for period ``t`` arrive at its start and are available to its demand.
    ``expected_on_hand[t] = on_hand - backorders + receipts(<= t) - sum_{u <= t} mu_u``.

    The stockout probability is evaluated over the window ``t = 0 .. W-1`` with ``W =
    within_periods`` (default, and at most, the whole horizon H). For each ``t`` the
    cumulative demand is approximated by ``N(M_t, V_t)`` (sums of the per-period means and
    variances, periods independent) and ``P_t = P(D_{0..t} > net_stock + receipts(<= t))``;
    the result is ``max_t P_t``: the probability of being short at the riskiest end of period
    in the window, a lower bound on the probability of running out at some point. Without
    receipts inside the window ``P_t`` grows with ``t``, so it is the probability at the end of
    the window; receipts make earlier dips count. It is non-increasing in the stock. (Stopping
    at the first expected stockout period instead would make more stock report a *higher*
    risk, because the window would lengthen.)

    Periods of cover is the (fractional) time at which expected net stock first drops below zero,
    demand within a period being consumed uniformly; beyond the horizon stock is consumed at
    the horizon's average rate.

    Parameters
    ----------
    on_hand : float
        Units physically on hand now; non-negative.
    backorders : float
        Units of unfilled demand owed to customers; non-negative.
    scheduled_receipts : sequence of (int, float)
        (period index of arrival, units) of open orders; index 0 is the current period.
        Receipts at index >= H arrive after the horizon: they do not enter
        ``expected_on_hand`` or the stockout probability, but count in ``total_receipts`` and
        extend the periods of cover when they arrive before the stock runs out.
    mean_per_period : array_like, shape (H,)
        Mean demand in units per period; non-negative.
    var_per_period : array_like, shape (H,)
        Variance of demand in units squared per period; non-negative.
    within_periods : float or None, default None
        Length in periods of the stockout-probability window (e.g. the lead time); None for the
        whole horizon; fractional values are rounded up and values above H are capped at H.

    Returns
    -------
    Projection
        ``expected_on_hand`` has shape (H,).

    Raises
    ------
    ValueError
        On negative stock, negative receipts, negative or non-integer receipt periods, an
        invalid forecast, or a non-positive ``within_periods``.

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 6: net stock, inventory position and the
        normal approximation of demand over an interval.

    Examples
    --------
    >>> p = project_inventory(10, 0, [(3, 20)], [4.0] * 6, [4.0] * 6)
    >>> p.expected_on_hand.tolist(), p.first_stockout_period, p.periods_of_cover
    ([6.0, 2.0, -2.0, 14.0, 10.0, 6.0], 2, 2.5)

    Riskiest period is 2: P(N(12, 12) > 10) = 1 - Phi(-2 / sqrt(12)).

    >>> round(p.stockout_probability, 4)
    0.7181

    """
    mu, var = as_forecast(mean_per_period, var_per_period)
    h = mu.size
    on_hand, backorders = float(on_hand), float(backorders)
    if not (math.isfinite(on_hand) and math.isfinite(backorders)) or on_hand < 0 or backorders < 0:
        raise ValueError(
            f"On-hand stock and backorders must be finite and non-negative, got {on_hand}, "
            f"{backorders}."
        )
    receipts = np.zeros(h)
    late: list[tuple[int, float]] = []  # arriving after the horizon
    for period, units in scheduled_receipts:
        if int(period) != period or period < 0:
            raise ValueError(
                f"A scheduled receipt period must be a non-negative integer, got {period}."
            )
        if not (math.isfinite(units) and units >= 0):
            raise ValueError(f"A scheduled receipt must be non-negative units, got {units}.")
        if period < h:
            receipts[int(period)] += float(units)
        else:
            late.append((int(period), float(units)))
    if within_periods is not None and not within_periods > 0:
        raise ValueError(f"The stockout window must be a positive number of periods, got "
                         f"{within_periods}.")

    net0 = on_hand - backorders
    cum_mu = np.cumsum(mu)
    cum_var = np.cumsum(var)
    available = net0 + np.cumsum(receipts)
    expected = available - cum_mu
    neg = np.flatnonzero(expected < 0)
    first = int(neg[0]) if neg.size else None

    end = h - 1 if within_periods is None else min(math.ceil(within_periods), h) - 1
    sd = np.sqrt(cum_var[: end + 1])
    gap = available[: end + 1] - cum_mu[: end + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        p_t = np.where(sd > 0, special.ndtr(-gap / np.where(sd > 0, sd, 1.0)), (gap < 0) * 1.0)  # norm.sf
    prob = float(p_t.max())

    cover: float | None
    if first is not None:
        start = float(expected[first] + mu[first])
        cover = first + start / float(mu[first]) if start > 0 else float(first)
    elif not np.any(mu > 0):
        cover = None
    else:
        # Beyond the horizon: consume at the average rate; a late receipt extends the cover
        # only if it arrives (at the start of its period) before the stock has run out.
        rate = float(mu.mean())
        level, clock = float(expected[-1]), float(h)
        for period, units in sorted(late):
            if level - rate * (period - clock) < 0:
                break
            level -= rate * (period - clock)
            clock = float(period)
            level += units
        cover = clock + level / rate

    expected.setflags(write=False)
    return Projection(
        expected_on_hand=expected,
        first_stockout_period=first,
        stockout_probability=prob,
        periods_of_cover=cover,
        net_stock=net0,
        total_receipts=float(receipts.sum()) + sum(u for _, u in late),
    )


class OverstockCheck(NamedTuple):
    """Outcome of :func:`is_overstock` (units and periods as named)."""

    flagged: bool
    """True when the inventory position exceeds the threshold by more than the margin."""
    excess_units: int
    """``floor(inventory_position - threshold_units)`` when flagged (>= 1), else 0."""
    threshold_units: float
    """``max(S, overstock_cover_periods * rate_per_period)``: stock above it is excess."""
    rate_per_period: float
    """Mean forecast demand per period over the horizon, units per period."""
    periods_of_cover: float | None
    """``inventory_position / rate_per_period`` in periods (None when the rate is 0)."""


def is_overstock(
    inventory_position: float,
    levels: PolicyLevels,
    params: PolicyParams,
    mean_per_period: ArrayLike,
) -> OverstockCheck:
    """Flag an overstock and size the excess against an explicit threshold.

    With ``rate = mean(mean_per_period)`` (units per period, the forecast's average over the
    horizon) the threshold is ``T = max(S, overstock_cover_periods * rate)``: stock up to the
    order-up-to level S is never excess, nor is what the forecast sells within the cover
    window. The SKU is overstocked when ``inventory_position - T > overstock_margin_units``;
    the excess is then ``floor(inventory_position - T)`` units (the amount to cancel, pause or
    mark down), and the cover is ``inventory_position / rate`` periods.

    Parameters
    ----------
    inventory_position : float
        on hand + on order - backorders, in units.
    levels : PolicyLevels
        Output of :func:`compute_levels` (supplies S).
    params : PolicyParams
        Supplies the cover threshold (periods) and the margin (units).
    mean_per_period : array_like, shape (H,)
        Mean demand in units per period over the forecast horizon; non-negative.

    Returns
    -------
    OverstockCheck
        ``(flagged, excess_units, threshold_units, rate_per_period, periods_of_cover)``.

    Raises
    ------
    ValueError
        On an invalid forecast or a non-finite inventory position.

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 6 and Ch. 8 (managing slow-moving and
        excess stock; days of supply as an excess-stock signal).

    Examples
    --------
    200 units at 1 unit per period, S about 5, 90 periods of cover: the threshold is 90 units.

    >>> from agents.policy.levels import compute_levels
    >>> mu = [1.0] * 10
    >>> lv = compute_levels(mu, mu, PolicyParams(lead_time_periods=2))
    >>> check = is_overstock(200, lv, PolicyParams(overstock_cover_periods=90), mu)
    >>> check.flagged, check.excess_units, check.threshold_units, check.periods_of_cover
    (True, 110, 90.0, 200.0)

    """
    mu = np.asarray(mean_per_period, dtype=float)
    as_forecast(mu, mu)
    ip = float(inventory_position)
    if not math.isfinite(ip):
        raise ValueError(f"The inventory position must be finite, got {inventory_position}.")
    rate = float(mu.mean())
    threshold = max(float(levels.order_up_to), params.overstock_cover_periods * rate)
    cover = ip / rate if rate > 0 else None
    if not ip - threshold > params.overstock_margin_units:
        return OverstockCheck(False, 0, threshold, rate, cover)
    excess = max(0, math.floor(ip - threshold + 1e-9))
    return OverstockCheck(excess > 0, excess, threshold, rate, cover)
