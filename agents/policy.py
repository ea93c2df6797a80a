"""Pure replenishment policy maths: service levels, reorder points, order-up-to levels.

This module is transport-free (no Kafka, no Redis): every function takes plain numbers or
arrays and returns plain numbers, arrays or frozen value objects, so the Faust agent, the
backtest and the demo share exactly the same decisions.

Conventions
-----------
* Time is measured in *periods* (an hour, a day or a week, chosen by the caller). A forecast is
  a pair of arrays ``mean_per_period`` and ``var_per_period`` of shape ``(H,)``: the mean and
  the variance of demand (units of stock, and units squared) in each of the next ``H``
  periods, period 0 being the one that starts now.
* Quantities are in units of stock; costs are in currency.
* Inventory position ``IP = on_hand + on_order - backorders``.
* ``L`` is the replenishment lead time, ``R`` the review period; ``L + R`` is the
  *protection interval* of a periodic-review (R, S) policy.

Public API
----------
:class:`PolicyParams`, :func:`lead_time_demand`, :func:`z_for_cycle_service_level`,
:func:`standard_normal_loss`, :func:`z_for_fill_rate`, :func:`safety_stock`,
:func:`demand_quantile`, :func:`eoq`, :class:`PolicyLevels`, :func:`compute_levels`,
:func:`order_quantity`, :class:`Projection`, :func:`project_inventory`,
:func:`is_overstock`, :class:`AllocationRequest`, :func:`allocate_with_budget`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from scipy import special, stats
from scipy.optimize import Bounds, LinearConstraint, brentq, milp

__all__ = [
    "AllocationRequest",
    "PolicyLevels",
    "PolicyParams",
    "Projection",
    "allocate_with_budget",
    "compute_levels",
    "demand_quantile",
    "eoq",
    "is_overstock",
    "OverstockCheck",
    "lead_time_demand",
    "order_quantity",
    "project_inventory",
    "safety_stock",
    "standard_normal_loss",
    "z_for_cycle_service_level",
    "z_for_fill_rate",
]

#: Bracket of safety factors searched by :func:`z_for_fill_rate`.
Z_MIN: float = -5.0
Z_MAX: float = 8.0
#: Above this mean (units) :func:`demand_quantile` uses the normal approximation.
_DISCRETE_MEAN_LIMIT: float = 1e9


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------
class PolicyParams(BaseModel):
    """Replenishment policy parameters of one SKU@location (immutable).

    Parameters
    ----------
    lead_time_periods : float, default 7
        Mean replenishment lead time ``L`` in periods; must be positive.
    lead_time_std_periods : float, default 0
        Standard deviation of the lead time ``sigma_L`` in periods; must be non-negative.
    review_period_periods : float, default 1
        Review period ``R`` in periods (time between two order decisions); must be positive.
    cycle_service_level : float or None, default 0.95
        Target cycle service level (probability of no stockout per replenishment cycle), in
        (0, 1). Exactly one of ``cycle_service_level`` and ``fill_rate`` is set: when
        ``fill_rate`` is given and ``cycle_service_level`` is not passed, the latter defaults
        to None; passing both explicitly is an error.
    fill_rate : float or None, default None
        Target fill rate ``beta`` (fraction of demand satisfied routinely from shelf), in (0, 1).
    unit_cost : float, default 1.0
        Purchase cost in currency per unit of stock; must be non-negative.
    holding_cost_rate : float, default 0.25
        Holding cost as a fraction of the unit cost per year (currency per currency per year);
        must be non-negative.
    ordering_cost : float or None, default None
        Fixed cost ``K`` in currency per order. When set, the EOQ is computed and used as the
        minimum cycle stock of the (s, S) policy; it then requires a positive holding cost.
    periods_per_year : float, default 365
        Number of periods in a year (365 for daily periods, 52 for weekly ones); positive.
    pack_size : int, default 1
        Orders are placed in multiples of this many units; at least 1.
    moq : int, default 0
        Minimum order quantity in units; non-negative.
    overstock_cover_periods : float, default 90
        Periods of cover above which stock counts as an overstock; positive.
    overstock_margin_units : float, default 0
        Units of tolerance above the overstock threshold (see :func:`is_overstock`) before the
        inventory position counts as an overstock; non-negative.
    distribution : {"normal", "negbin"}, default "normal"
        Demand distribution used for quantiles and safety stock: a normal approximation, or a
        negative binomial (Poisson when not over-dispersed) moment-matched to the forecast.

    Raises
    ------
    pydantic.ValidationError
        A subclass of ValueError, raised by the constructor with a full-sentence message when a
        value is out of range, non-finite, an unknown field is given, or the service target is
        ambiguous (both or neither of ``cycle_service_level`` and ``fill_rate``).

    References
    ----------
    [^1]: Silver, E. A., Pyke, D. F., & Thomas, D. J. (2017). *Inventory and Production
        Management in Supply Chains* (4th ed.). CRC Press. Ch. 6, "Individual Items with
        Probabilistic Demand" (service measures: cycle service level P1 and fill rate P2).

    Examples
    --------
    >>> p = PolicyParams(lead_time_periods=3, fill_rate=0.98)
    >>> p.cycle_service_level is None, p.fill_rate
    (True, 0.98)
    >>> p.with_overrides(cycle_service_level=0.9).fill_rate is None
    True
    >>> try:
    ...     PolicyParams(lead_time_periods=0)
    ... except ValueError as exc:
    ...     print("rejected")
    rejected

    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    lead_time_periods: float = 7.0
    lead_time_std_periods: float = 0.0
    review_period_periods: float = 1.0
    cycle_service_level: float | None = 0.95
    fill_rate: float | None = None
    unit_cost: float = 1.0
    holding_cost_rate: float = 0.25
    ordering_cost: float | None = None
    periods_per_year: float = 365.0
    pack_size: int = 1
    moq: int = 0
    overstock_cover_periods: float = 90.0
    overstock_margin_units: float = 0.0
    distribution: Literal["normal", "negbin"] = "normal"

    @model_validator(mode="before")
    @classmethod
    def _default_service_target(cls, data: Any) -> Any:
        # A fill-rate target given without an explicit cycle service level replaces the
        # default cycle service level (so ``PolicyParams(fill_rate=0.98)`` is valid).
        if isinstance(data, dict) and data.get("fill_rate") is not None:
            if "cycle_service_level" not in data:
                data = {**data, "cycle_service_level": None}
        return data

    @field_validator("lead_time_periods", "review_period_periods", "periods_per_year",
                     "overstock_cover_periods")
    @classmethod
    def _positive(cls, v: float, info: Any) -> float:
        if not v > 0:
            raise ValueError(f"The parameter {info.field_name} must be positive, got {v}.")
        return v

    @field_validator("lead_time_std_periods", "unit_cost", "holding_cost_rate",
                     "overstock_margin_units", "ordering_cost", "moq")
    @classmethod
    def _non_negative(cls, v: float | None, info: Any) -> float | None:
        if v is not None and v < 0:
            raise ValueError(f"The parameter {info.field_name} must be non-negative, got {v}.")
        return v

    @field_validator("cycle_service_level", "fill_rate")
    @classmethod
    def _probability(cls, v: float | None, info: Any) -> float | None:
        if v is not None and not 0.0 < v < 1.0:
            raise ValueError(
                f"The service target {info.field_name} must lie strictly between 0 and 1, "
                f"got {v}."
            )
        return v

    @field_validator("pack_size")
    @classmethod
    def _pack(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"The pack size must be at least 1 unit, got {v}.")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> PolicyParams:
        if (self.cycle_service_level is None) == (self.fill_rate is None):
            raise ValueError(
                "Exactly one service target must be set: give either cycle_service_level or "
                "fill_rate (and set the other to None)."
            )
        if self.ordering_cost is not None and self.unit_cost * self.holding_cost_rate <= 0:
            raise ValueError(
                "An ordering cost was given, so the EOQ needs a positive holding cost, but "
                "unit_cost * holding_cost_rate is zero."
            )
        return self

    def with_overrides(self, **kw: Any) -> PolicyParams:
        """Return a validated copy with some fields replaced.

        Switching the service target is allowed: overriding ``fill_rate`` with a value (and not
        ``cycle_service_level``) clears ``cycle_service_level``, and vice versa.

        Parameters
        ----------
        **kw : Any
            Field names and their new values (same units as the constructor).

        Returns
        -------
        PolicyParams
            A new, validated instance; ``self`` is unchanged.

        Raises
        ------
        pydantic.ValidationError
            (a ValueError) when the resulting parameters are invalid or a name is unknown.

        Examples
        --------
        >>> PolicyParams().with_overrides(lead_time_periods=2.5).lead_time_periods
        2.5

        """
        data = self.model_dump()
        if kw.get("fill_rate") is not None and "cycle_service_level" not in kw:
            data["cycle_service_level"] = None
        if kw.get("cycle_service_level") is not None and "fill_rate" not in kw:
            data["fill_rate"] = None
        data.update(kw)
        return type(self).model_validate(data)


# --------------------------------------------------------------------------------------------
# Demand over an interval
# --------------------------------------------------------------------------------------------
def _as_forecast(mean_per_period: ArrayLike, var_per_period: ArrayLike) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
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


def _window_sum(x: np.ndarray, length: float) -> float:
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
    mu, var = _as_forecast(mean_per_period, var_per_period)
    L = float(lead_time_periods)
    sd_L = float(lead_time_std_periods)
    if not (math.isfinite(L) and L >= 0):
        raise ValueError(f"The lead time must be a finite non-negative number of periods, got {L}.")
    if not (math.isfinite(sd_L) and sd_L >= 0):
        raise ValueError(
            f"The lead-time standard deviation must be finite and non-negative, got {sd_L}."
        )
    mean = _window_sum(mu, L)
    variance = _window_sum(var, L)
    mean_d = mean / L if L > 0 else float(mu[0])
    variance += mean_d**2 * sd_L**2
    return mean, variance


# --------------------------------------------------------------------------------------------
# Service-level maths
# --------------------------------------------------------------------------------------------
def _check_probability(value: float, name: str) -> float:
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
    return _norm_ppf(_check_probability(csl, "cycle service level"))


@functools.lru_cache(maxsize=256)
def _norm_ppf(level: float) -> float:
    # the service targets are a handful of constants: solve each once per process
    return float(stats.norm.ppf(level))


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
    beta = _check_probability(fill_rate, "fill rate")
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


def demand_quantile(mean: float, var: float, level: float) -> float:
    """Quantile of count demand moment-matched to (mean, var).

    Negative binomial with ``n = mean**2 / (var - mean)`` and ``p = mean / var`` (scipy's
    parametrisation) when ``var > mean``; Poisson(mean) when ``0 < var <= mean`` (the
    under-dispersed case is approximated by the Poisson); 0 when ``mean == 0``. For means
    above 1e9 units the normal approximation ``ceil(mean + z sqrt(max(var, mean)))`` is used.

    Parameters
    ----------
    mean : float
        Mean demand in units over the interval; non-negative.
    var : float
        Variance of demand in units squared; non-negative.
    level : float
        Probability level in (0, 1), e.g. the cycle service level.

    Returns
    -------
    float
        Smallest integer number of units ``k`` with ``P(D <= k) >= level``.

    Raises
    ------
    ValueError
        On negative or non-finite mean/variance, or ``level`` outside (0, 1).

    References
    ----------
    [^1]: Snyder, R. D., Ord, J. K., & Beaumont, A. (2012). Forecasting the intermittent
        demand for slow-moving inventories: A modelling approach. *International Journal of
        Forecasting*, 28(2), 485-496 (Poisson and negative binomial demand models).

    Examples
    --------
    Poisson(4), negative binomial (n = 2, p = 1/3), and no demand:

    >>> [demand_quantile(4.0, v, 0.95) for v in (4.0, 12.0)], demand_quantile(0, 0, 0.9)
    ([8.0, 11.0], 0.0)

    """
    level = _check_probability(level, "quantile level")
    mean, var = float(mean), float(var)
    if not (math.isfinite(mean) and math.isfinite(var)) or mean < 0 or var < 0:
        raise ValueError(
            f"The demand mean and variance must be finite and non-negative, got {mean}, {var}."
        )
    if mean == 0:
        return 0.0
    if mean > _DISCRETE_MEAN_LIMIT:
        # Central limit regime: scipy's discrete inversion can stall for astronomically large
        # counts, and the normal approximation is exact to well under one unit in relative terms.
        return float(math.ceil(mean + stats.norm.ppf(level) * math.sqrt(max(var, mean))))
    if var > mean:
        n = mean**2 / (var - mean)
        if not n > 0:
            # n underflowed: the negative binomial degenerates to a point mass at zero.
            return 0.0
        q = float(stats.nbinom.ppf(level, n, mean / var))
    else:
        q = float(stats.poisson.ppf(level, mean))
    if not math.isfinite(q):
        raise ValueError(f"The demand quantile is undefined for mean={mean}, var={var}.")
    return q


def eoq(
    annual_demand_units: float, ordering_cost: float, holding_cost_per_unit_year: float
) -> float:
    """Economic order quantity ``sqrt(2 D K / h)`` (Harris 1913).

    Parameters
    ----------
    annual_demand_units : float
        Demand rate D in units of stock per year; non-negative.
    ordering_cost : float
        Fixed cost K in currency per order; non-negative.
    holding_cost_per_unit_year : float
        Holding cost h in currency per unit per year (unit cost times holding rate); positive.

    Returns
    -------
    float
        Order quantity in units of stock.

    Raises
    ------
    ValueError
        If D or K is negative, h is not positive, or any value is not finite.

    References
    ----------
    [^1]: Harris, F. W. (1913). How many parts to make at once. *Factory, The Magazine of
        Management*, 10(2), 135-136.
    [^2]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 4, "Order Quantities When Demand Is
        Approximately Level", EOQ = sqrt(2 A D / (v r)).
    [^3]: Snyder & Shen (2019), *Fundamentals of Supply Chain Theory*, 2nd ed., eq. (3.4).

    Examples
    --------
    K = 8 currency/order, h = 0.225 currency/unit/year, D = 1300 units/year:

    >>> round(eoq(1300, 8, 0.225), 2)
    304.05

    """
    d, k, h = float(annual_demand_units), float(ordering_cost), float(holding_cost_per_unit_year)
    if not all(math.isfinite(v) for v in (d, k, h)) or d < 0 or k < 0 or h <= 0:
        raise ValueError(
            "The EOQ needs a non-negative annual demand and ordering cost and a positive "
            f"holding cost, got D={d}, K={k}, h={h}."
        )
    return math.sqrt(2.0 * d * k / h)


# --------------------------------------------------------------------------------------------
# Policy levels
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyLevels:
    """Reorder point, order-up-to level and supporting statistics of one SKU.

    Parameters
    ----------
    mean_lead_time, var_lead_time : float
        Mean (units) and variance (units squared) of demand over the lead time L.
    mean_protection, var_protection : float
        Mean and variance of demand over the protection interval L + R.
    q90_lead_time, q95_lead_time, q90_protection, q95_protection : float
        90 % and 95 % quantiles (units) of demand over L and over L + R, under the normal or
        negative binomial model chosen by ``PolicyParams.distribution``.
    z : float
        Safety factor of the order-up-to level (for a fill-rate target, the one solved over
        L + R; for the negative binomial model, the normal-equivalent ``Phi^{-1}`` level).
    safety_stock : float
        Safety stock embedded in the base order-up-to level, in units (>= 0).
    reorder_point : float
        Continuous-review reorder point s in units (>= 0).
    order_up_to : float
        Order-up-to level S in units (>= reorder_point).
    order_quantity_eoq : float or None
        EOQ in units when an ordering cost is configured, else None.

    """

    mean_lead_time: float
    var_lead_time: float
    mean_protection: float
    var_protection: float
    q90_lead_time: float
    q95_lead_time: float
    q90_protection: float
    q95_protection: float
    z: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    order_quantity_eoq: float | None


def _quantile(mean: float, var: float, level: float, distribution: str) -> float:
    if distribution == "negbin":
        return demand_quantile(mean, var, level)
    return max(0.0, mean + _norm_ppf(level) * math.sqrt(var))


def demand_quantiles(mean: ArrayLike, var: ArrayLike, level: ArrayLike) -> np.ndarray:
    """Vectorised :func:`demand_quantile`: the same values, element by element, in one call.

    One call of the distributions' quantile kernels (``scipy.stats.nbinom._ppf`` /
    ``poisson._ppf``, what ``scipy.stats.nbinom.ppf`` evaluates for valid arguments) over all
    elements, instead of one public ``scipy.stats`` call per quantile, whose argument handling
    costs more than the inversion itself. Means above 1e9 units go through
    :func:`demand_quantile` (normal approximation), so the result equals it everywhere (a
    property test compares both).

    Parameters
    ----------
    mean, var, level : array_like, broadcastable
        Means (units), variances (units squared) and probability levels in (0, 1).

    Returns
    -------
    numpy.ndarray
        Quantiles in units (integers as floats), of the broadcast shape.

    Raises
    ------
    ValueError
        As :func:`demand_quantile`: a level outside (0, 1), a negative or non-finite moment.
    """
    m, v, q = np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(var, dtype=float),
                                  np.asarray(level, dtype=float))
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(v))) or np.any(m < 0) or np.any(v < 0):
        raise ValueError("The demand mean and variance must be finite and non-negative.")
    if np.any(q <= 0.0) or np.any(q >= 1.0):
        raise ValueError(f"The quantile level must lie strictly between 0 and 1, got {q}.")
    out = np.zeros(m.shape, dtype=float)
    big = m > _DISCRETE_MEAN_LIMIT
    pos = (m > 0) & ~big
    nb = pos & (v > m)
    po = pos & ~nb
    if nb.any():
        mm, vv = m[nb], v[nb]
        n = mm**2 / (vv - mm)
        ok = n > 0  # else n underflowed: a point mass at zero
        vals = np.zeros(mm.shape)
        if ok.any():
            with np.errstate(over="ignore"):
                vals[ok] = stats.nbinom._ppf(q[nb][ok], n[ok], (mm / vv)[ok])
        out[nb] = vals
    if po.any():
        out[po] = stats.poisson._ppf(q[po], m[po])
    for i in zip(*np.nonzero(big), strict=True):
        out[i] = demand_quantile(float(m[i]), float(v[i]), float(q[i]))
    if not np.all(np.isfinite(out)):
        raise ValueError("The demand quantile is undefined for some mean/variance.")
    return out


def compute_levels(
    mean_per_period: ArrayLike, var_per_period: ArrayLike, params: PolicyParams
) -> PolicyLevels:
    """Reorder point s and order-up-to level S from a per-period demand forecast.

    * Periodic review (R, S): ``S = mu_{L+R} + max(0, z sigma_{L+R})`` (normal), or
      ``max(mu_{L+R}, F^{-1}(level))`` for the negative binomial model.
    * Continuous review: ``s = mu_L + max(0, z sigma_L)`` (or the quantile analogue).
    * With an ordering cost, ``EOQ = eoq(D_year, K, unit_cost * holding_cost_rate)`` where
      ``D_year`` is the average per-period mean over the whole forecast times
      ``periods_per_year``, and ``S = max(S, s + EOQ)`` (an (s, S) policy).
    * Finally ``S = max(S, s)``, so ``S >= s >= 0``; safety stock is clipped at 0 (a cycle
      service level below 0.5 gives ``s = mu_L``).

    Service targets: a cycle service level gives ``z = Phi^{-1}(csl)``. A fill rate gives ``z``
    from :func:`z_for_fill_rate` with ``Q = EOQ`` when available, else the expected demand
    over the first R periods, solved separately with ``sigma_{L+R}`` (for S) and ``sigma_L``
    (for s). For the negative binomial model the level used is ``Phi(z)``, an approximation.

    s and S are non-decreasing in the service level. They are non-decreasing in the lead time
    for the normal model when the lead time is certain or the forecast is flat (with a varying
    forecast and ``sigma_L > 0`` the lead-time-uncertainty term uses the window's average
    rate, which may fall as L grows), and for the negative binomial model when every period
    has the same variance-to-mean ratio (negative binomials with a common p add up to a
    stochastically larger one); with mixed dispersion its far-tail quantiles need not be.

    Parameters
    ----------
    mean_per_period : array_like, shape (H,)
        Mean demand in units for each of the next H periods; non-negative.
    var_per_period : array_like, shape (H,)
        Variance of demand in units squared per period; non-negative.
    params : PolicyParams
        Policy parameters (lead time, review period and service target in periods).

    Returns
    -------
    PolicyLevels
        All levels in units of stock.

    Raises
    ------
    ValueError
        On an invalid forecast (see :func:`lead_time_demand`).

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), *Inventory and Production Management in Supply
        Chains*, 4th ed., Ch. 6: (s, Q) reorder point s = x_L + k sigma_L and (R, S) order-up-to
        level S = x_{R+L} + k sigma_{R+L}; (s, S) systems with S - s set from the EOQ.
    [^2]: Harris, F. W. (1913). How many parts to make at once. *Factory*, 10(2), 135-136.

    Examples
    --------
    100 units/period (sd 20), L = 3, R = 1, CSL 0.95: S = 400 + 1.645 * 40, s = 300 + 1.645 * 34.64.

    >>> lv = compute_levels([100.0] * 10, [400.0] * 10, PolicyParams(lead_time_periods=3))
    >>> round(lv.order_up_to, 2), round(lv.reorder_point, 2), round(lv.safety_stock, 2)
    (465.79, 356.98, 65.79)

    """
    mu, var = _as_forecast(mean_per_period, var_per_period)
    L = params.lead_time_periods
    R = params.review_period_periods
    sd_L = params.lead_time_std_periods
    dist = params.distribution

    m_l, v_l = lead_time_demand(mu, var, L, sd_L)
    m_p, v_p = lead_time_demand(mu, var, L + R, sd_L)
    sig_l, sig_p = math.sqrt(v_l), math.sqrt(v_p)

    q_eoq: float | None = None
    if params.ordering_cost is not None:
        annual = float(mu.mean()) * params.periods_per_year
        q_eoq = eoq(annual, params.ordering_cost, params.unit_cost * params.holding_cost_rate)

    if params.cycle_service_level is not None:
        z_p = z_l = z_for_cycle_service_level(params.cycle_service_level)
    else:
        assert params.fill_rate is not None
        q_cycle = q_eoq if q_eoq is not None else _window_sum(mu, R)
        z_p = z_for_fill_rate(params.fill_rate, q_cycle, sig_p)
        z_l = z_for_fill_rate(params.fill_rate, q_cycle, sig_l)

    if dist == "negbin":
        # Normal-equivalent level, kept inside (0, 1) for extreme z. All six quantiles (s, S and
        # the reported q90 / q95 of both windows) in one vectorised inversion.
        lvl_p = min(max(float(special.ndtr(z_p)), 1e-12), 1 - 1e-12)
        lvl_l = min(max(float(special.ndtr(z_l)), 1e-12), 1 - 1e-12)
        qs = demand_quantiles([m_p, m_l, m_l, m_l, m_p, m_p], [v_p, v_l, v_l, v_l, v_p, v_p],
                              [lvl_p, lvl_l, 0.90, 0.95, 0.90, 0.95])
        ss_p = max(0.0, float(qs[0]) - m_p)
        ss_l = max(0.0, float(qs[1]) - m_l)
        q90_l, q95_l, q90_p, q95_p = (float(x) for x in qs[2:])
    else:
        ss_p = safety_stock(z_p, sig_p)
        ss_l = safety_stock(z_l, sig_l)
        q90_l, q95_l = _quantile(m_l, v_l, 0.90, dist), _quantile(m_l, v_l, 0.95, dist)
        q90_p, q95_p = _quantile(m_p, v_p, 0.90, dist), _quantile(m_p, v_p, 0.95, dist)

    s = m_l + ss_l
    S = m_p + ss_p
    if q_eoq is not None:
        S = max(S, s + q_eoq)
    S = max(S, s)

    return PolicyLevels(
        mean_lead_time=m_l,
        var_lead_time=v_l,
        mean_protection=m_p,
        var_protection=v_p,
        q90_lead_time=q90_l,
        q95_lead_time=q95_l,
        q90_protection=q90_p,
        q95_protection=q95_p,
        z=z_p,
        safety_stock=ss_p,
        reorder_point=s,
        order_up_to=S,
        order_quantity_eoq=q_eoq,
    )


def order_quantity(
    inventory_position: float,
    reorder_point: float,
    order_up_to: float,
    pack_size: int = 1,
    moq: int = 0,
) -> int:
    """Units to order now under an (s, S) rule with pack rounding and a minimum order.

    0 when ``IP > s`` or ``S - IP <= 0``; otherwise ``max(S - IP, moq)`` rounded *up* to a
    multiple of ``pack_size``.

    Parameters
    ----------
    inventory_position : float
        IP = on_hand + on_order - backorders, in units (may be negative).
    reorder_point : float
        s in units.
    order_up_to : float
        S in units.
    pack_size : int, default 1
        Order multiple in units; at least 1.
    moq : int, default 0
        Minimum order quantity in units; non-negative.

    Returns
    -------
    int
        Non-negative multiple of ``pack_size`` (units).

    Raises
    ------
    ValueError
        On non-finite levels, ``pack_size < 1`` or ``moq < 0``.

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 6, (s, S) and (R, S) systems: order
        S - IP when IP is at or below s.

    Examples
    --------
    IP = 37, s = 40, S = 100, packs of 12: 63 units -> 6 packs = 72; with MOQ 100 -> 108.

    >>> order_quantity(37, 40, 100, pack_size=12), order_quantity(37, 40, 100, 12, moq=100)
    (72, 108)
    >>> order_quantity(41, 40, 100)
    0

    """
    ip, s, S = float(inventory_position), float(reorder_point), float(order_up_to)
    if not all(math.isfinite(v) for v in (ip, s, S)):
        raise ValueError(f"Inventory position and levels must be finite, got {ip}, {s}, {S}.")
    if int(pack_size) != pack_size or pack_size < 1:
        raise ValueError(f"The pack size must be an integer of at least 1, got {pack_size}.")
    if moq < 0:
        raise ValueError(f"The minimum order quantity must be non-negative, got {moq}.")
    pack = int(pack_size)
    need = S - ip
    if ip > s or need <= 0:
        return 0
    need = max(need, float(moq))
    # Guard against float noise such as 24.000000000001 -> 3 packs of 12.
    packs = math.ceil(round(need / pack, 9))
    return packs * pack


# --------------------------------------------------------------------------------------------
# Projection and overstock
# --------------------------------------------------------------------------------------------
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
    mu, var = _as_forecast(mean_per_period, var_per_period)
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

    >>> mu = [1.0] * 10
    >>> lv = compute_levels(mu, mu, PolicyParams(lead_time_periods=2))
    >>> check = is_overstock(200, lv, PolicyParams(overstock_cover_periods=90), mu)
    >>> check.flagged, check.excess_units, check.threshold_units, check.periods_of_cover
    (True, 110, 90.0, 200.0)

    """
    mu = np.asarray(mean_per_period, dtype=float)
    _as_forecast(mu, mu)
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


# --------------------------------------------------------------------------------------------
# Budget / capacity constrained allocation
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AllocationRequest:
    """One SKU's order request competing for a shared budget or capacity.

    Parameters
    ----------
    sku : str
        SKU key.
    desired_units : int
        Units the unconstrained policy wants to order; non-negative.
    pack_size : int
        Order multiple in units; at least 1.
    unit_cost : float
        Currency per unit; non-negative.
    shortage_cost_per_unit : float
        Currency of expected shortage cost avoided per unit ordered; non-negative.
    volume_per_unit : float, default 1
        Capacity consumed per unit (e.g. cubic metres, pallet slots); non-negative.

    Raises
    ------
    ValueError
        If a value is out of range.

    """

    sku: str
    desired_units: int
    pack_size: int
    unit_cost: float
    shortage_cost_per_unit: float
    volume_per_unit: float = 1.0

    def __post_init__(self) -> None:
        if self.desired_units < 0:
            raise ValueError(f"Desired units for {self.sku} must be non-negative.")
        if self.pack_size < 1:
            raise ValueError(f"The pack size for {self.sku} must be at least 1 unit.")
        for name in ("unit_cost", "shortage_cost_per_unit", "volume_per_unit"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"The {name} of {self.sku} must be finite and non-negative.")


def allocate_with_budget(
    requests: Sequence[AllocationRequest],
    budget: float | None,
    capacity_units: float | None,
) -> list[int]:
    """Cut orders to fit a purchasing budget and/or storage capacity, in whole packs.

    Integer programme (packs ``x_i``, pack size ``p_i``)::

        maximise   sum_i b_i p_i x_i                 (shortage cost avoided, currency)
        subject to sum_i c_i p_i x_i <= budget        (currency)
                   sum_i v_i p_i x_i <= capacity      (volume)
                   0 <= x_i <= ceil(desired_i / p_i),  x_i integer

    solved with ``scipy.optimize.milp`` (HiGHS). Among optimal solutions a second solve picks
    one ordering the most units (so requests with zero shortage cost are still filled when
    resources remain). Limits of the linearisation: each unit is assumed to avoid the same
    expected shortage cost ``b_i``, whereas the true marginal value of stock decreases with
    the quantity (the loss function is convex); a piecewise-linear objective over packs would
    capture it.

    Parameters
    ----------
    requests : sequence of AllocationRequest
        The competing requests.
    budget : float or None
        Spend limit in currency; None (or inf) for no limit.
    capacity_units : float or None
        Volume limit in the unit of ``volume_per_unit``; None (or inf) for no limit.

    Returns
    -------
    list of int, length len(requests)
        Units allocated per request, each a multiple of its pack size and at most the desired
        quantity rounded up to packs.

    Raises
    ------
    ValueError
        If a limit is negative or NaN.
    RuntimeError
        If the solver fails.

    References
    ----------
    [^1]: Huangfu, Q., & Hall, J. A. J. (2018). Parallelizing the dual revised simplex method.
        *Mathematical Programming Computation*, 10(1), 119-142 (HiGHS, the solver behind
        scipy.optimize.milp).
    [^2]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 4 (exchange curves; aggregate
        constraints on inventory investment).

    Examples
    --------
    >>> reqs = [AllocationRequest("a", 10, 5, 2.0, 3.0), AllocationRequest("b", 7, 1, 1.0, 1.0)]
    >>> allocate_with_budget(reqs, None, None)
    [10, 7]
    >>> allocate_with_budget(reqs, 12.0, None)
    [5, 2]

    """
    rows: list[list[float]] = []
    rhs: list[float] = []
    for name, limit, per_unit in (
        ("budget", budget, [r.unit_cost for r in requests]),
        ("capacity", capacity_units, [r.volume_per_unit for r in requests]),
    ):
        if limit is None:
            continue
        limit = float(limit)
        if math.isnan(limit) or limit < 0:
            raise ValueError(f"The {name} must be non-negative, got {limit}.")
        if math.isfinite(limit):
            rows.append([c * r.pack_size for c, r in zip(per_unit, requests, strict=True)])
            rhs.append(limit)
    if not requests:
        return []
    packs = np.array([r.pack_size for r in requests], dtype=float)
    upper = np.array([math.ceil(r.desired_units / r.pack_size) for r in requests], dtype=float)
    if not rows:
        return [int(u * p) for u, p in zip(upper, packs, strict=True)]

    a = np.array(rows, dtype=float)
    value = np.array([r.shortage_cost_per_unit * r.pack_size for r in requests], dtype=float)
    bounds = Bounds(np.zeros_like(upper), upper)
    integrality = np.ones_like(upper)
    cons = [LinearConstraint(a, -np.inf, np.array(rhs))]

    first = milp(-value, constraints=cons, bounds=bounds, integrality=integrality)
    if not first.success:
        raise RuntimeError(f"The allocation MILP failed: {first.message}")
    best = float(value @ np.round(first.x))
    tol = 1e-9 * max(1.0, abs(best))
    cons2 = cons + [LinearConstraint(value[None, :], best - tol, np.inf)]
    second = milp(-packs, constraints=cons2, bounds=bounds, integrality=integrality)
    x = second.x if second.success else first.x
    x = np.clip(np.round(x), 0, upper)
    return [int(xi * p) for xi, p in zip(x, packs, strict=True)]
