"""Vectorised period review: levels, projections, overstock and decide masks of N SKUs at once.

Every function here takes column arrays, one entry (or one row) per SKU, and returns columns. The
arithmetic is the scalar path's, operation for operation, so the results are the same floats:

* levels: :func:`agents.policy.compute_levels` (window sums of the per-period moments,
  :func:`agents.policy.lead_time_demand`, the EOQ, the safety factor, the negative binomial
  quantiles of :mod:`agents.count_quantiles`);
* fill-rate safety factors: :func:`agents.policy.z_for_fill_rate` solves ``G(z) = Q (1 - beta) /
  sigma`` with ``scipy.optimize.brentq``; :func:`z_for_fill_rates` runs the same Brent iteration
  (scipy's ``brentq.c``, same tolerances, same steps) on all SKUs at once, with the loss function
  evaluated by the expressions of ``scipy.stats.norm``, so each SKU ends on the same iterate;
* projections and overstock: :func:`agents.policy.project_inventory` (the stockout
  probability and first stockout period the decision reports), :func:`agents.policy.is_overstock`;
* decide masks: :meth:`agents.processor.decisions.DecisionMaker.decide` (expiry, the reorder
  rule with its re-emission test, liveness, the overstock reset).

Row sums use numpy's sum along the last axis, which is the same pairwise summation as the scalar
path's 1-d sums (checked by the property tests in ``tests/unit/test_review_kernel.py``); powers
that the scalar path takes with Python's ``**`` (C ``pow``) are taken with it here too.

Periods, units of stock and currency as in :mod:`agents.policy`.

References
----------
[^1]: Silver, E. A., Pyke, D. F., & Thomas, D. J. (2017). *Inventory and Production Management
    in Supply Chains* (4th ed.). CRC Press. Ch. 6 (levels, service measures P1 and P2).
[^2]: Brent, R. P. (1973). *Algorithms for Minimization without Derivatives*, Ch. 4; as
    implemented by Charles Harris in scipy's ``scipy/optimize/Zeros/brentq.c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from agents.count_quantiles import count_quantiles
from agents.policy.levels import check_pack
from agents.policy.params import PolicyParams
from agents.policy.service_level import Z_MAX, Z_MIN, norm_ppf, norm_ppf_array, standard_normal_loss

__all__ = [
    "DecideMasks",
    "LevelColumns",
    "OverstockColumns",
    "ProjectionColumns",
    "decide_masks",
    "level_columns",
    "order_quantities",
    "overstock_columns",
    "projection_columns",
    "z_for_fill_rates",
]

#: Absolute tolerance of the fill-rate root (as :func:`agents.policy.z_for_fill_rate`).
BRENT_XTOL: float = 1e-10
#: Relative tolerance: scipy's ``brentq`` default, ``4 * eps``.
BRENT_RTOL: float = 4 * float(np.finfo(float).eps)
#: Iterations before a root is declared not found (scipy's ``brentq`` default).
BRENT_MAXITER: int = 100


def _check_forecast(mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float matrices ``(N, H)`` (the checks of :func:`agents.policy.interval.as_forecast`)."""
    mu = np.asarray(mean, dtype=float)
    v = np.asarray(var, dtype=float)
    if mu.ndim != 2 or mu.shape != v.shape:
        raise ValueError("The mean and variance forecasts must be (N, H) arrays of the same shape, "
                         f"got shapes {mu.shape} and {v.shape}.")
    if mu.shape[1] == 0:
        raise ValueError("The demand forecast is empty; at least one period is needed.")
    if mu.size and not (np.all(np.isfinite(mu)) and np.all(np.isfinite(v))):
        raise ValueError("The demand forecast contains non-finite values.")
    if mu.size and (np.any(mu < 0) or np.any(v < 0)):
        raise ValueError("Demand means and variances per period must be non-negative.")
    return mu, v


def _window_sum(x: np.ndarray, length: float) -> np.ndarray:
    """Row sums of ``x`` over the first ``length`` periods (:func:`agents.policy.interval.window_sum`)."""
    n = math.floor(length)
    frac = length - n
    h = x.shape[1]
    total = x[:, : min(n, h)].sum(axis=1) + max(n - h, 0) * x[:, -1]
    if frac > 0:
        total += frac * x[:, min(n, h - 1)]
    return total


def _window_sum_rows(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """:func:`_window_sum` with one length per row (``lengths``, shape ``(N,)``), same floats.

    Rows sharing ``floor(length)`` are summed together (numpy's row sums are the scalar 1-d
    sums), then each row's fractional period is added as :func:`agents.policy.interval.window_sum`
    adds it.
    """
    h = x.shape[1]
    whole = np.floor(lengths)
    frac = lengths - whole
    n_int = whole.astype(np.int64)
    total = np.empty(x.shape[0])
    for n in np.unique(n_int).tolist():
        rows = n_int == n
        total[rows] = x[rows, : min(n, h)].sum(axis=1) + max(n - h, 0) * x[rows, -1]
    part = frac > 0
    if part.any():
        idx = np.minimum(n_int[part], h - 1)
        total[part] += frac[part] * x[np.flatnonzero(part), idx]
    return total


def _py_square(x: np.ndarray) -> np.ndarray:
    """``x ** 2`` element by element with Python's float power (C ``pow``), as the scalar path."""
    return np.array([v**2 for v in x.tolist()], dtype=float)


def _lead_time_demand(mu: np.ndarray, var: np.ndarray, L: float, sd_L: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Columns of :func:`agents.policy.lead_time_demand` (mean, variance; shapes ``(N,)``)."""
    mean = _window_sum(mu, L)
    variance = _window_sum(var, L)
    mean_d = mean / L if L > 0 else mu[:, 0].copy()
    sd2 = sd_L**2
    if sd2 != 0.0:
        variance += _py_square(mean_d) * sd2
    # sd2 == 0: the scalar path adds mean_d**2 * 0.0 == 0.0 (mean_d finite), which changes nothing
    return mean, variance


def _lead_time_demand_rows(mu: np.ndarray, var: np.ndarray, L: np.ndarray, sd_L: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_lead_time_demand` with a lead time and its sd per row (shapes ``(N,)``).

    The scalar path adds ``mean_d**2 * sd_L**2`` always (0.0 when sd_L is 0, which changes
    nothing), so every row does.
    """
    mean = _window_sum_rows(mu, L)
    variance = _window_sum_rows(var, L)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_d = np.where(L > 0, mean / np.where(L > 0, L, 1.0), mu[:, 0])
    variance += _py_square(mean_d) * _py_square(sd_L)
    return mean, variance


#: ``sqrt(2 pi)``, the constant of scipy's normal density (``scipy.stats._continuous_distns``).
_NORM_PDF_C: float = float(np.sqrt(2 * np.pi))


def _normal_loss(z: np.ndarray) -> np.ndarray:
    """``G(z)`` on arrays: :func:`agents.policy.standard_normal_loss`'s ``norm.pdf(z) - z norm.sf(z)``.

    Evaluated with the expressions ``scipy.stats.norm`` uses for a standard normal
    (``exp(-z**2/2) / sqrt(2 pi)`` and ``ndtr(-z)``) without its argument machinery, which
    costs four times the arithmetic on large arrays; the property tests check the values are
    the scalar path's.
    """
    return np.exp(-z**2 / 2.0) / _NORM_PDF_C - z * special.ndtr(-z)


def _brentq_loss(target: np.ndarray) -> np.ndarray:
    """Roots of ``G(z) - target`` on ``[Z_MIN, Z_MAX]``: scipy's ``brentq``, one lane per SKU.

    Every lane runs the iteration of ``scipy/optimize/Zeros/brentq.c`` with the tolerances of
    :func:`agents.policy.z_for_fill_rate`; a lane leaves the loop at the iterate where the scalar
    solver returns. The caller guarantees ``G(Z_MAX) < target < G(Z_MIN)`` (a sign change).
    """
    n = target.size
    out = np.empty(n)
    idx = np.arange(n)
    tgt = target.copy()
    xpre = np.full(n, Z_MIN)
    xcur = np.full(n, Z_MAX)
    fpre = _normal_loss(xpre) - tgt
    fcur = _normal_loss(xcur) - tgt
    xblk = np.zeros(n)
    fblk = np.zeros(n)
    spre = np.zeros(n)
    scur = np.zeros(n)
    with np.errstate(all="ignore"):
        for _ in range(BRENT_MAXITER):
            m = fpre * fcur < 0
            xblk = np.where(m, xpre, xblk)
            fblk = np.where(m, fpre, fblk)
            d = xcur - xpre
            spre = np.where(m, d, spre)
            scur = np.where(m, d, scur)
            sw = np.abs(fblk) < np.abs(fcur)
            xpre, xcur, xblk = np.where(sw, xcur, xpre), np.where(sw, xblk, xcur), np.where(sw, xcur, xblk)
            fpre, fcur, fblk = np.where(sw, fcur, fpre), np.where(sw, fblk, fcur), np.where(sw, fcur, fblk)
            delta = (BRENT_XTOL + BRENT_RTOL * np.abs(xcur)) / 2
            sbis = (xblk - xcur) / 2
            done = (fcur == 0) | (np.abs(sbis) < delta)
            if done.any():
                out[idx[done]] = xcur[done]
                keep = ~done
                idx, tgt = idx[keep], tgt[keep]
                xpre, xcur, xblk = xpre[keep], xcur[keep], xblk[keep]
                fpre, fcur, fblk = fpre[keep], fcur[keep], fblk[keep]
                spre, scur = spre[keep], scur[keep]
                delta, sbis = delta[keep], sbis[keep]
                if idx.size == 0:
                    return out
            tried = (np.abs(spre) > delta) & (np.abs(fcur) < np.abs(fpre))
            stry_i = -fcur * (xcur - xpre) / (fcur - fpre)
            dpre = (fpre - fcur) / (xpre - xcur)
            dblk = (fblk - fcur) / (xblk - xcur)
            stry_e = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            stry = np.where(xpre == xblk, stry_i, stry_e)
            a, b = np.abs(spre), 3 * np.abs(sbis) - delta
            good = tried & (2 * np.abs(stry) < np.where(a < b, a, b))
            spre = np.where(good, scur, sbis)
            scur = np.where(good, stry, sbis)
            xpre, fpre = xcur, fcur
            xcur = xcur + np.where(np.abs(scur) > delta, scur, np.where(sbis > 0, delta, -delta))
            fcur = _normal_loss(xcur) - tgt
    raise RuntimeError(f"The fill-rate safety factor did not converge in {BRENT_MAXITER} "
                       f"iterations for {idx.size} SKUs.")


def z_for_fill_rates(fill_rate: ArrayLike, order_quantity: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """Safety factors achieving fill rates: :func:`agents.policy.z_for_fill_rate` element-wise.

    Solves ``G(z) = Q (1 - beta) / sigma`` for every SKU at once, with the clipping of the
    scalar function (``sigma == 0`` and targets at or above ``G(-5)`` give -5, targets at or
    below ``G(8)`` give 8) and its Brent iteration, so each value equals the scalar one.

    Parameters
    ----------
    fill_rate : array_like, shape (N,) or scalar
        Target fill rates beta in (0, 1).
    order_quantity : array_like, shape (N,)
        Expected demand per replenishment cycle Q (units); non-negative.
    sigma : array_like, shape (N,)
        Standard deviation of demand over the protection interval (units); non-negative.

    Returns
    -------
    numpy.ndarray
        Safety factors, shape ``(N,)``, in [-5, 8] (dimensionless).

    Raises
    ------
    ValueError
        A fill rate outside (0, 1), or a negative or non-finite Q or sigma.

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 6, P2: G_u(k) = Q (1 - P2) / sigma_L.

    Examples
    --------
    >>> from agents.policy import z_for_fill_rate
    >>> z = z_for_fill_rates(0.98, [100.0, 100.0, 5.0], [20.0, 0.0, 20.0])
    >>> z.tolist() == [z_for_fill_rate(0.98, q, s) for q, s in [(100, 20), (100, 0), (5, 20)]]
    True

    """
    q = np.asarray(order_quantity, dtype=float)
    s = np.asarray(sigma, dtype=float)
    beta = np.broadcast_to(np.asarray(fill_rate, dtype=float), q.shape)
    if not (np.all(beta > 0.0) and np.all(beta < 1.0)):
        raise ValueError("The fill rate must lie strictly between 0 and 1.")
    if not (np.all(np.isfinite(q)) and np.all(q >= 0)):
        raise ValueError("The order quantity must be finite and non-negative.")
    if not (np.all(np.isfinite(s)) and np.all(s >= 0)):
        raise ValueError("The standard deviation must be finite and non-negative.")
    z = np.full(q.shape, Z_MIN)
    pos = s != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(pos, q * (1.0 - beta) / np.where(pos, s, 1.0), 0.0)
    low = pos & (target >= standard_normal_loss(Z_MIN))
    high = pos & ~low & (target <= standard_normal_loss(Z_MAX))
    z[high] = Z_MAX
    solve = pos & ~low & ~high
    if solve.any():
        z[solve] = _brentq_loss(target[solve])
    return z


def _cycle_z(csl: np.ndarray) -> np.ndarray:
    """``Phi^{-1}(csl)`` per SKU: :func:`norm_ppf`'s floats, in one pass (:func:`norm_ppf_array`)."""
    if not (np.all(csl > 0.0) and np.all(csl < 1.0)):
        raise ValueError("The cycle service level must lie strictly between 0 and 1.")
    return norm_ppf_array(csl)


@dataclass(frozen=True, slots=True)
class LevelColumns:
    """The fields of :class:`agents.policy.PolicyLevels` as columns, shape ``(N,)`` each.

    Units of stock (variances in units squared; ``z`` dimensionless);
    ``order_quantity_eoq`` is None when the policy has no ordering cost.
    """

    mean_lead_time: np.ndarray
    var_lead_time: np.ndarray
    mean_protection: np.ndarray
    var_protection: np.ndarray
    q90_lead_time: np.ndarray
    q95_lead_time: np.ndarray
    q90_protection: np.ndarray
    q95_protection: np.ndarray
    z: np.ndarray
    safety_stock: np.ndarray
    reorder_point: np.ndarray
    order_up_to: np.ndarray
    order_quantity_eoq: np.ndarray | None


def level_columns(mean: ArrayLike, var: ArrayLike, params: PolicyParams,
                  cycle_service_level: ArrayLike | None = None, *,
                  lead_time_periods: ArrayLike | None = None,
                  lead_time_std_periods: ArrayLike | None = None) -> LevelColumns:
    """Reorder point s, order-up-to level S and their statistics for N SKUs in one pass.

    Row ``i`` equals ``compute_levels(mean[i], var[i], params_i)`` field for field, where
    ``params_i`` is ``params`` with ``cycle_service_level[i]`` as its target when that column is
    given (the per-SKU critical fractile of ``lost_unit_cost``), else ``params`` itself, and
    with ``lead_time_periods[i]`` / ``lead_time_std_periods[i]`` as its lead time when those
    columns are given (the learned lead times of :mod:`agents.supply`). The formulas and their
    sources are those of :func:`agents.policy.compute_levels`.

    Parameters
    ----------
    mean : array_like, shape (N, H)
        Mean demand per period (units) for the next H periods of each SKU; non-negative.
    var : array_like, shape (N, H)
        Variance of demand per period (units squared); non-negative.
    params : PolicyParams
        Lead time, review period (periods), service target, costs, distribution shared by the N
        SKUs.
    cycle_service_level : array_like, shape (N,), optional
        Per-SKU cycle service levels in (0, 1) replacing the target of ``params``.
    lead_time_periods, lead_time_std_periods : array_like, shape (N,), optional
        Per-SKU mean lead time (> 0) and its standard deviation (>= 0), in periods, replacing
        those of ``params`` (both or neither).

    Returns
    -------
    LevelColumns
        Shapes ``(N,)``, units of stock.

    Raises
    ------
    ValueError
        On an invalid forecast (negative, non-finite, shapes), an invalid service level, or an
        undefined quantile.

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 6 (see :func:`agents.policy.compute_levels`).

    Examples
    --------
    >>> from agents.policy import compute_levels
    >>> p = PolicyParams(lead_time_periods=3, fill_rate=0.95)
    >>> cols = level_columns([[100.0] * 10, [2.0] * 10], [[400.0] * 10, [9.0] * 10], p)
    >>> ref = [compute_levels([m] * 10, [v] * 10, p).order_up_to for m, v in [(100, 400), (2, 9)]]
    >>> ref == cols.order_up_to.tolist()
    True

    """
    mu, v = _check_forecast(np.asarray(mean, dtype=float), np.asarray(var, dtype=float))
    n = mu.shape[0]
    L = params.lead_time_periods
    R = params.review_period_periods
    sd_L = params.lead_time_std_periods
    if lead_time_periods is not None:
        Lc = np.broadcast_to(np.asarray(lead_time_periods, dtype=float), (n,))
        sc = np.broadcast_to(np.asarray(lead_time_std_periods if lead_time_std_periods is not None
                                        else sd_L, dtype=float), (n,))
        if not (np.all(np.isfinite(Lc)) and np.all(Lc > 0) and np.all(np.isfinite(sc)) and np.all(sc >= 0)):
            raise ValueError("The lead times must be finite and positive, their sds finite and non-negative.")
        m_l, v_l = _lead_time_demand_rows(mu, v, Lc, sc)
        m_p, v_p = _lead_time_demand_rows(mu, v, Lc + R, sc)
    else:
        m_l, v_l = _lead_time_demand(mu, v, L, sd_L)
        m_p, v_p = _lead_time_demand(mu, v, L + R, sd_L)
    sig_l, sig_p = np.sqrt(v_l), np.sqrt(v_p)

    q_eoq: np.ndarray | None = None
    if params.ordering_cost is not None:
        annual = mu.mean(axis=1) * params.periods_per_year
        h = params.unit_cost * params.holding_cost_rate
        if not np.all(np.isfinite(annual)) or h <= 0:
            raise ValueError("The EOQ needs a finite annual demand and a positive holding cost.")
        q_eoq = np.sqrt(2.0 * annual * float(params.ordering_cost) / h)

    if cycle_service_level is not None:
        csl = np.broadcast_to(np.asarray(cycle_service_level, dtype=float), (n,))
        z_p = z_l = _cycle_z(csl)
    elif params.cycle_service_level is not None:
        z_p = z_l = np.full(n, norm_ppf(params.cycle_service_level))
    else:
        assert params.fill_rate is not None
        q_cycle = q_eoq if q_eoq is not None else _window_sum(mu, R)
        # both windows in one solve (one Brent loop for 2N lanes)
        z2 = z_for_fill_rates(params.fill_rate, np.concatenate([q_cycle, q_cycle]),
                              np.concatenate([sig_p, sig_l]))
        z_p, z_l = z2[:n], z2[n:]

    if params.distribution == "negbin":
        lvl_p = np.minimum(np.maximum(special.ndtr(z_p), 1e-12), 1 - 1e-12)
        lvl_l = np.minimum(np.maximum(special.ndtr(z_l), 1e-12), 1 - 1e-12)
        means = np.concatenate([m_p, m_l, m_l, m_l, m_p, m_p])
        variances = np.concatenate([v_p, v_l, v_l, v_l, v_p, v_p])
        lv = np.concatenate([lvl_p, lvl_l, np.full(n, 0.90), np.full(n, 0.95), np.full(n, 0.90),
                             np.full(n, 0.95)])
        qs = count_quantiles(means, variances, lv)
        if not np.all(np.isfinite(qs)):
            raise ValueError("The demand quantile is undefined for some mean/variance.")
        qs = qs.reshape(6, n)
        ss_p = np.maximum(0.0, qs[0] - m_p)
        ss_l = np.maximum(0.0, qs[1] - m_l)
        q90_l, q95_l, q90_p, q95_p = qs[2], qs[3], qs[4], qs[5]
    else:
        ss_p = np.maximum(0.0, z_p * sig_p)
        ss_l = np.maximum(0.0, z_l * sig_l)
        c90, c95 = norm_ppf(0.90), norm_ppf(0.95)
        q90_l, q95_l = np.maximum(0.0, m_l + c90 * sig_l), np.maximum(0.0, m_l + c95 * sig_l)
        q90_p, q95_p = np.maximum(0.0, m_p + c90 * sig_p), np.maximum(0.0, m_p + c95 * sig_p)

    s = m_l + ss_l
    S = m_p + ss_p
    if q_eoq is not None:
        s_eoq = s + q_eoq
        S = np.where(s_eoq > S, s_eoq, S)
    S = np.where(s > S, s, S)
    return LevelColumns(m_l, v_l, m_p, v_p, q90_l, q95_l, q90_p, q95_p, z_p, ss_p, s, S, q_eoq)


def order_quantities(inventory_position: ArrayLike, reorder_point: ArrayLike, order_up_to: ArrayLike,
                     pack_size: int = 1, moq: int = 0) -> np.ndarray:
    """Units to order now under (s, S): :func:`agents.policy.order_quantity` element-wise.

    0 where ``IP > s`` or ``S - IP <= 0``; otherwise ``max(S - IP, moq)`` rounded up to a
    multiple of ``pack_size`` (after rounding ``(S - IP) / pack`` to 9 decimals, as the scalar
    function does with Python's ``round``; values within 1e-6 of an integer, where numpy's
    rounding could differ, are rounded by Python's).

    Parameters
    ----------
    inventory_position, reorder_point, order_up_to : array_like, shape (N,)
        IP, s and S in units.
    pack_size : int, default 1
        Order multiple (units); at least 1.
    moq : int, default 0
        Minimum order quantity (units); non-negative.

    Returns
    -------
    numpy.ndarray
        Integer quantities (int64), shape ``(N,)``, multiples of ``pack_size``.

    Raises
    ------
    ValueError
        On non-finite values, ``pack_size < 1`` or ``moq < 0``.

    Examples
    --------
    >>> order_quantities([37, 41, 37], [40, 40, 40], [100, 100, 100], pack_size=12).tolist()
    [72, 0, 72]

    """
    ip = np.asarray(inventory_position, dtype=float)
    s = np.asarray(reorder_point, dtype=float)
    S = np.asarray(order_up_to, dtype=float)
    if not (np.all(np.isfinite(ip)) and np.all(np.isfinite(s)) and np.all(np.isfinite(S))):
        raise ValueError("Inventory position and levels must be finite.")
    pack = check_pack(pack_size, moq)
    need = S - ip
    live = ~((ip > s) | (need <= 0))
    m = float(moq)
    need = np.where(m > need, m, need)
    y = need / pack
    packs = np.ceil(y)
    near = live & (np.abs(y - np.rint(y)) < 1e-6)
    if near.any():
        packs[near] = [math.ceil(round(v, 9)) for v in y[near].tolist()]
    return np.where(live, packs, 0.0).astype(np.int64) * pack


@dataclass(frozen=True, slots=True)
class DecideMasks:
    """What :meth:`DecisionMaker.decide` does to each SKU at a review, as columns ``(N,)``.

    Attributes
    ----------
    expire : numpy.ndarray of bool
        The open suggestion has expired (``t >= expires_at``): it is dropped.
    reorder : numpy.ndarray of bool
        A ``ReorderSuggested`` is emitted (it replaces the open suggestion).
    quantity : numpy.ndarray of int64
        Its quantity (units; 0 where no reorder is due).
    liveness_violation : numpy.ndarray of bool
        After the review, IP <= s with demand over L + R and no open suggestion.
    overstock_reset : numpy.ndarray of bool
        IP <= S: the open overstock (if any) is cleared.
    overstock_candidate : numpy.ndarray of bool
        IP > S with no open overstock: :func:`overstock_columns` decides.
    """

    expire: np.ndarray
    reorder: np.ndarray
    quantity: np.ndarray
    liveness_violation: np.ndarray
    overstock_reset: np.ndarray
    overstock_candidate: np.ndarray


def decide_masks(inventory_position: ArrayLike, levels: LevelColumns, t: int, *,
                 open_expires_at: ArrayLike, open_level: ArrayLike, open_quantity: ArrayLike,
                 has_open: ArrayLike, has_overstock: ArrayLike, reemit_change_fraction: float,
                 pack_size: int = 1, moq: int = 0, review: bool = True) -> DecideMasks:
    """The decide rules of :meth:`agents.processor.decisions.DecisionMaker.decide` on columns.

    Parameters
    ----------
    inventory_position : array_like, shape (N,)
        IP = on_hand + on_order - backorders (units).
    levels : LevelColumns
        The SKUs' levels (:func:`level_columns`).
    t : int
        Event time of the review (epoch s).
    open_expires_at, open_level, open_quantity : array_like, shape (N,)
        The open suggestion's expiry (epoch s), S (units) and quantity (units); any value where
        ``has_open`` is False.
    has_open, has_overstock : array_like of bool, shape (N,)
        Whether the SKU has an open suggestion / an open overstock.
    reemit_change_fraction : float
        :attr:`ProcessorConfig.reemit_change_fraction`.
    pack_size, moq : int
        The policy's pack size and minimum order (units).
    review : bool, default True
        The call closed periods (the liveness counter applies).

    Returns
    -------
    DecideMasks
        Columns of shape ``(N,)``.

    Raises
    ------
    ValueError
        On non-finite levels or inventory positions (:func:`order_quantities`).

    Examples
    --------
    >>> from agents.policy import PolicyParams
    >>> lv = level_columns([[10.0] * 9] * 2, [[10.0] * 9] * 2, PolicyParams(lead_time_periods=3))
    >>> dm = decide_masks([5, 100], lv, 0, open_expires_at=[0, 0], open_level=[0.0, 0.0],
    ...                   open_quantity=[0, 0], has_open=[False, False], has_overstock=[False, False],
    ...                   reemit_change_fraction=0.25)
    >>> dm.reorder.tolist(), dm.quantity.tolist(), dm.overstock_candidate.tolist()
    ([True, False], [46, 0], [False, True])

    """
    ip = np.asarray(inventory_position, dtype=float)
    s, S = levels.reorder_point, levels.order_up_to
    has_open = np.asarray(has_open, dtype=bool)
    expire = has_open & (np.asarray(open_expires_at) <= t)
    open_after = has_open & ~expire
    below = (ip <= s) & (S > 0)
    qty = order_quantities(ip, s, S, pack_size, moq)
    qty = np.where(below, qty, 0)
    frac = reemit_change_fraction
    lvl = np.asarray(open_level, dtype=float)
    oq = np.asarray(open_quantity, dtype=float)
    material = ~open_after | (np.abs(S - lvl) > frac * np.where(1.0 > lvl, 1.0, lvl)) | (
        qty > (1.0 + frac) * np.where(1.0 > oq, 1.0, oq))
    reorder = below & (qty > 0) & material
    live = np.zeros(ip.shape, dtype=bool)
    if review:
        live = (ip <= s) & (levels.mean_protection > 0) & ~(open_after | reorder)
    reset = ip <= S
    candidate = ~reset & ~np.asarray(has_overstock, dtype=bool)
    return DecideMasks(expire, reorder, qty, live, reset, candidate)


@dataclass(frozen=True, slots=True)
class ProjectionColumns:
    """:class:`agents.policy.Projection`'s decision fields as columns, shape ``(N,)``.

    ``first_stockout_period`` is -1 where expected net stock never goes negative.
    """

    first_stockout_period: np.ndarray
    stockout_probability: np.ndarray


def projection_columns(on_hand: ArrayLike, backorders: ArrayLike, receipts: ArrayLike,
                       mean: ArrayLike, var: ArrayLike,
                       within_periods: float | ArrayLike) -> ProjectionColumns:
    """First expected stockout and stockout probability: :func:`agents.policy.project_inventory`.

    Parameters
    ----------
    on_hand, backorders : array_like, shape (N,)
        Units on hand and owed (non-negative).
    receipts : array_like, shape (N, H)
        Units scheduled to arrive at the start of each horizon period (summed in the order of
        :meth:`InventoryPosition.scheduled_receipts`).
    mean, var : array_like, shape (N, H)
        Per-period demand moments (units, units squared).
    within_periods : float or array_like, shape (N,)
        Stockout window (periods; rounded up, capped at H), one for all SKUs or one per SKU.

    Returns
    -------
    ProjectionColumns
        Shapes ``(N,)``.

    Raises
    ------
    ValueError
        On an invalid forecast, negative stock or a non-positive window.

    Examples
    --------
    >>> pc = projection_columns([10], [0], [[0, 0, 0, 20, 0, 0]], [[4.0] * 6], [[4.0] * 6], 6)
    >>> pc.first_stockout_period.tolist(), round(float(pc.stockout_probability[0]), 4)
    ([2], 0.7181)

    """
    mu, v = _check_forecast(np.asarray(mean, dtype=float), np.asarray(var, dtype=float))
    oh = np.asarray(on_hand, dtype=float)
    bo = np.asarray(backorders, dtype=float)
    rc = np.asarray(receipts, dtype=float)
    if np.any(oh < 0) or np.any(bo < 0) or np.any(rc < 0):
        raise ValueError("On-hand stock, backorders and receipts must be non-negative.")
    within = np.asarray(within_periods, dtype=float)
    if not np.all(within > 0):
        raise ValueError(f"The stockout window must be a positive number of periods, got {within_periods}.")
    h = mu.shape[1]
    net0 = oh - bo
    cum_mu = np.cumsum(mu, axis=1)
    cum_var = np.cumsum(v, axis=1)
    available = net0[:, None] + np.cumsum(rc, axis=1)
    expected = available - cum_mu
    neg = expected < 0
    first = np.where(neg.any(axis=1), neg.argmax(axis=1), -1)
    ends = np.minimum(np.ceil(within), h).astype(np.int64) - 1  # per SKU, or one for all
    end = int(ends.max())
    sd = np.sqrt(cum_var[:, : end + 1])
    gap = available[:, : end + 1] - cum_mu[:, : end + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        p_t = np.where(sd > 0, special.ndtr(-gap / np.where(sd > 0, sd, 1.0)), (gap < 0) * 1.0)
    if ends.ndim:  # each SKU's own window: the periods after it do not count (p_t >= 0)
        p_t = np.where(np.arange(end + 1)[None, :] <= ends[:, None], p_t, 0.0)
    return ProjectionColumns(first, p_t.max(axis=1))


@dataclass(frozen=True, slots=True)
class OverstockColumns:
    """:class:`agents.policy.OverstockCheck` as columns, shape ``(N,)``.

    ``periods_of_cover`` is NaN where the rate is 0 (the scalar check's None).
    """

    flagged: np.ndarray
    excess_units: np.ndarray
    threshold_units: np.ndarray
    rate_per_period: np.ndarray
    periods_of_cover: np.ndarray


def overstock_columns(inventory_position: ArrayLike, order_up_to: ArrayLike, mean: ArrayLike,
                      params: PolicyParams) -> OverstockColumns:
    """The overstock check of N SKUs: :func:`agents.policy.is_overstock` element-wise.

    Parameters
    ----------
    inventory_position : array_like, shape (N,)
        IP (units).
    order_up_to : array_like, shape (N,)
        S (units).
    mean : array_like, shape (N, H)
        Mean demand per period over the forecast horizon (units).
    params : PolicyParams
        Cover threshold (periods) and margin (units).

    Returns
    -------
    OverstockColumns
        Shapes ``(N,)``.

    Raises
    ------
    ValueError
        On an invalid forecast or a non-finite inventory position.

    Examples
    --------
    >>> oc = overstock_columns([200, 50], [5.0, 5.0], [[1.0] * 10] * 2, PolicyParams())
    >>> oc.flagged.tolist(), oc.excess_units.tolist(), oc.threshold_units.tolist()
    ([True, False], [110, 0], [90.0, 90.0])

    """
    mu, _ = _check_forecast(np.asarray(mean, dtype=float), np.asarray(mean, dtype=float))
    ip = np.asarray(inventory_position, dtype=float)
    if not np.all(np.isfinite(ip)):
        raise ValueError("The inventory position must be finite.")
    S = np.asarray(order_up_to, dtype=float)
    rate = mu.mean(axis=1)
    cover_units = params.overstock_cover_periods * rate
    threshold = np.where(cover_units > S, cover_units, S)
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(rate > 0, ip / rate, np.nan)
    over = ip - threshold > params.overstock_margin_units
    excess = np.where(over, np.maximum(0.0, np.floor(ip - threshold + 1e-9)), 0.0).astype(np.int64)
    return OverstockColumns(excess > 0, excess, threshold, rate, cover)
