"""Policy levels: reorder point s, order-up-to level S, order quantity, EOQ.

Periods, units of stock and currency as in :mod:`agents.policy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numpy.typing import ArrayLike
from scipy import special

from agents.count_quantiles import demand_quantile, demand_quantiles
from agents.policy.interval import as_forecast, lead_time_demand, window_sum
from agents.policy.params import PolicyParams
from agents.policy.service_level import (
    norm_ppf,
    safety_stock,
    z_for_cycle_service_level,
    z_for_fill_rate,
)

__all__ = ["PolicyLevels", "compute_levels", "eoq", "order_quantity"]


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
    return max(0.0, mean + norm_ppf(level) * math.sqrt(var))


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
    mu, var = as_forecast(mean_per_period, var_per_period)
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
        q_cycle = q_eoq if q_eoq is not None else window_sum(mu, R)
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


def check_pack(pack_size: int, moq: int) -> int:
    """The pack size as an int, after checking the order constraints (units).

    Raises
    ------
    ValueError
        When ``pack_size`` is not an integer of at least 1 or ``moq`` is negative.
    """
    if int(pack_size) != pack_size or pack_size < 1:
        raise ValueError(f"The pack size must be an integer of at least 1, got {pack_size}.")
    if moq < 0:
        raise ValueError(f"The minimum order quantity must be non-negative, got {moq}.")
    return int(pack_size)


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
    pack = check_pack(pack_size, moq)
    need = S - ip
    if ip > s or need <= 0:
        return 0
    need = max(need, float(moq))
    # Guard against float noise such as 24.000000000001 -> 3 packs of 12.
    packs = math.ceil(round(need / pack, 9))
    return packs * pack
