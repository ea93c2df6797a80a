"""ERP reorder rules simulated on a :class:`~streams.panel.DemandPanel`: the baselines restock must beat.

Three rules, all periodic-review (s, S) with the normal level formula of
:func:`agents.policy.compute_levels` (Silver, Pyke & Thomas 2017, Ch. 6 [^1]), differing only
in the demand moments (mean and variance per period) they feed it:

* ``"static"``: fitted once on the warm-up periods and never again: exactly the baseline of
  ``restock demo`` (:mod:`streams.demo`), which the unit tests check KPI by KPI;
* ``"rolling"``: re-fitted every ``refit_every_periods`` periods, from the first evaluation
  period on, on the trailing ``window_periods`` periods of demand (constant mean and sample
  variance per period, ddof = 1); while fewer periods exist, on all the history there is (at
  least the warm-up). During the warm-up it uses the static levels;
* ``"batch"``: a batch forecaster (statsforecast ADIDA [^2] by default, or AutoETS [^3])
  re-fitted on all the history so far at the same times, its one-step mean taken as the
  per-period mean, and the mean squared error of that mean against the trailing
  ``window_periods`` periods of demand as the per-period variance (on histories shorter than
  the model accepts, 8 periods for AutoETS, the mean demand so far instead of the forecast).

Timing (identical to the demo's baseline): every SKU starts the first period with
``on_hand = ceil(S_static)`` (:func:`static_seed`); a purchase order placed at the end of period
``p`` is received at the start of period ``p + L`` (``L = lead_time_periods``, a whole number
of periods) and closes a replenishment cycle; each period's demand is served at once (lost
sales or backorders); then the review: when the inventory position ``on_hand + on_order -
backorders`` is at or below ``s`` and ``S > 0``, order ``order_quantity(ip, s, S, pack, moq)``.
Every period is a review (``review_period_periods`` only enters the levels, as in the demo).
KPIs are accounted into a :class:`~streams.kpis.PolicyTally` on the evaluation periods
(``period >= panel.warmup_periods``); ``forecast_wape`` is measured against the rule's own
per-period mean.

The simulation is one loop over periods with numpy arrays over SKUs: 300 SKUs x 373 days run in
well under a second per (rule, target).

References
----------
[^1]: Silver, E. A., Pyke, D. F., & Thomas, D. J. (2017). *Inventory and Production Management
    in Supply Chains* (4th ed.). CRC Press. Ch. 6: s = x_L + k sigma_L, S = x_{R+L} + k
    sigma_{R+L}; fill-rate rule G_u(k) = Q (1 - P2) / sigma.
[^2]: Nikolopoulos, K., Syntetos, A. A., Boylan, J. E., Petropoulos, F., & Assimakopoulos, V.
    (2011). An aggregate-disaggregate intermittent demand approach (ADIDA) to forecasting.
    *Journal of the Operational Research Society*, 62(3), 544-554.
[^3]: Hyndman, R. J., Koehler, A. B., Snyder, R. D., & Grose, S. (2002). A state space
    framework for automatic forecasting using exponential smoothing methods. *International
    Journal of Forecasting*, 18(3), 439-454.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import special

from agents.policy import Z_MAX, Z_MIN, PolicyParams, compute_levels
from agents.review.kernel import order_quantities
from streams.kpis import PolicyTally
from streams.panel import DemandPanel
from streams.settings import DEFAULT_HORIZON_PERIODS  # the static fit's horizon, as the demo's

Rule = Literal["static", "rolling", "batch"]
Unmet = Literal["lost_sales", "backorder"]

#: Shortest history (periods) each batch model is fitted on (statsforecast's AutoETS refuses
#: fewer than 7 points); a refit on less history takes the mean demand so far.
_MIN_BATCH_HISTORY = {"adida": 1, "autoets": 8}
#: Bisection steps of the vectorised fill-rate safety factor: (Z_MAX - Z_MIN) / 2**60 < 1e-16.
_BISECTION_STEPS = 60


@dataclass(frozen=True)
class RuleMoments:
    """Demand moments a rule feeds the level formula, per fit (target-independent, reusable).

    Attributes
    ----------
    fit_periods : numpy.ndarray, shape (n_fits,), int
        Period index from which each fit applies (the first is 0: the static fit).
    mean : numpy.ndarray, shape (n_fits, n_skus), float
        Demand mean per period (units of stock per period).
    var : numpy.ndarray, shape (n_fits, n_skus), float
        Demand variance per period (units squared).
    """

    fit_periods: np.ndarray
    mean: np.ndarray
    var: np.ndarray


@dataclass(frozen=True)
class RuleSpec:
    """One baseline of a frontier: a named rule and its knobs (see :func:`baseline_specs`)."""

    name: str
    rule: Rule
    window_periods: int | None = None
    refit_every_periods: int | None = None
    model: Literal["adida", "autoets"] = "adida"


@dataclass
class RuleResult:
    """Outcome of :func:`simulate_rule` (units of stock unless named).

    Attributes
    ----------
    rule : str
        The rule simulated.
    tally : streams.kpis.PolicyTally
        KPI sums over the evaluation periods.
    kpis : dict
        ``tally.kpis(evaluation_periods, panel.period_days)``.
    evaluation_periods : int
        Periods after the warm-up.
    start_on_hand, end_on_hand : numpy.ndarray, shape (n_skus,), int
        On hand at the start of the first period and at the end of the last one.
    received, served, backorders_served, lost, backorders : numpy.ndarray, shape (n_skus,), int
        Over all periods (warm-up included): units received, served from stock when demanded,
        backorders served from a receipt, lost sales, and backorders open at the end. Unit
        conservation: ``start + received - served - backorders_served == end``.
    levels : list of (int, numpy.ndarray, numpy.ndarray)
        ``(from period, s, S)`` of each fit, levels in units.
    traces : dict of str to numpy.ndarray, shape (n_periods,)
        On hand at the end of each period for the SKUs named in ``track``.
    wall_s : float
        Wall time of the simulation (seconds), fitting excluded when moments were given.
    """

    rule: str
    tally: PolicyTally
    kpis: dict[str, float | int | None]
    evaluation_periods: int
    start_on_hand: np.ndarray
    end_on_hand: np.ndarray
    received: np.ndarray
    served: np.ndarray
    backorders_served: np.ndarray
    lost: np.ndarray
    backorders: np.ndarray
    levels: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)
    traces: dict[str, np.ndarray] = field(default_factory=dict)
    wall_s: float = 0.0


# --------------------------------------------------------------------------------------------
# Levels
# --------------------------------------------------------------------------------------------
def _normal_loss(z: np.ndarray) -> np.ndarray:
    """Standard normal loss ``G(z) = phi(z) - z (1 - Phi(z))``, element-wise."""
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) - z * special.ndtr(-z)


def z_for_fill_rate_vec(fill_rate: float, order_quantity: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Vectorised :func:`agents.policy.z_for_fill_rate`: solve ``G(z) = Q (1 - beta) / sigma``.

    Bisection on the decreasing standard normal loss ``G`` over ``[Z_MIN, Z_MAX]`` (60 steps,
    precision below 1e-15), targets outside the range clipped to its ends, ``Z_MIN`` where
    ``sigma == 0``, exactly as the scalar version (which uses brentq).

    Parameters
    ----------
    fill_rate : float
        Target fill rate beta in (0, 1).
    order_quantity : numpy.ndarray, shape (n,)
        Expected demand per replenishment cycle Q in units; non-negative.
    sigma : numpy.ndarray, shape (n,)
        Standard deviation of demand over the protection interval in units; non-negative.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Safety factors in ``[Z_MIN, Z_MAX]``.

    Raises
    ------
    ValueError
        If ``fill_rate`` is not strictly between 0 and 1.

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 6, P2 rule: G_u(k) = Q (1 - P2) / sigma.

    Examples
    --------
    >>> z = z_for_fill_rate_vec(0.98, np.array([100.0, 1.0]), np.array([20.0, 0.0]))
    >>> [round(float(v), 3) for v in z]
    [0.902, -5.0]
    """
    if not 0.0 < fill_rate < 1.0:
        raise ValueError(f"The fill rate must lie strictly between 0 and 1, got {fill_rate}.")
    q = np.asarray(order_quantity, dtype=float)
    sig = np.asarray(sigma, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(sig > 0, q * (1.0 - fill_rate) / np.where(sig > 0, sig, 1.0), np.inf)
    lo = np.full(target.shape, Z_MIN)
    hi = np.full(target.shape, Z_MAX)
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        above = _normal_loss(mid) > target  # G decreasing: the root lies right of mid
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    z = 0.5 * (lo + hi)
    z = np.where(target >= _normal_loss(np.array(Z_MIN)), Z_MIN, z)
    return np.where(target <= _normal_loss(np.array(Z_MAX)), Z_MAX, z)


def levels_flat(mean: np.ndarray, var: np.ndarray, params: PolicyParams) -> tuple[np.ndarray, np.ndarray]:
    """Reorder point s and order-up-to level S for constant per-period demand moments, all SKUs at once.

    The normal model of :func:`agents.policy.compute_levels` for a flat forecast (same mean and
    variance every period): ``mu_X = X mean``, ``var_X = X var + mean**2 sigma_L**2`` over
    ``X = L`` and ``X = L + R``; ``s = mu_L + max(0, z_L sigma_L)``, ``S = mu_{L+R} + max(0,
    z_{L+R} sigma_{L+R})``, ``S = max(S, s + EOQ)`` with an ordering cost, ``S = max(S, s)``.
    z from the cycle service level (``Phi^{-1}``) or from the fill rate (normal loss,
    :func:`z_for_fill_rate_vec` with Q = EOQ or the mean demand over R). Equal to
    :func:`compute_levels` up to float rounding (and the root search's 1e-10 tolerance).

    Parameters
    ----------
    mean, var : numpy.ndarray, shape (n,)
        Demand mean (units per period) and variance (units squared per period); non-negative.
    params : PolicyParams
        Lead time, review period (periods) and service target; ``distribution`` must be normal.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        s and S in units, shape (n,), ``S >= s >= 0``.

    Raises
    ------
    ValueError
        For a non-normal ``params.distribution`` or negative / non-finite moments.

    References
    ----------
    [^1]: Silver, Pyke & Thomas (2017), 4th ed., Ch. 6 (see the module docstring).

    Examples
    --------
    100 units/period (sd 20), L = 3, R = 1, CSL 0.95, as the :func:`compute_levels` example:

    >>> s, S = levels_flat(np.array([100.0]), np.array([400.0]), PolicyParams(lead_time_periods=3))
    >>> round(float(S[0]), 2), round(float(s[0]), 2)
    (465.79, 356.98)
    """
    if params.distribution != "normal":
        raise ValueError(f"levels_flat implements the normal model only, got {params.distribution!r}.")
    mu = np.asarray(mean, dtype=float)
    v = np.asarray(var, dtype=float)
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(v))) or np.any(mu < 0) or np.any(v < 0):
        raise ValueError("Demand means and variances per period must be finite and non-negative.")
    L, R, sd_L = params.lead_time_periods, params.review_period_periods, params.lead_time_std_periods
    m_l, m_p = mu * L, mu * (L + R)
    sig_l = np.sqrt(v * L + mu**2 * sd_L**2)
    sig_p = np.sqrt(v * (L + R) + mu**2 * sd_L**2)
    q_eoq = None
    if params.ordering_cost is not None:
        h = params.unit_cost * params.holding_cost_rate
        q_eoq = np.sqrt(2.0 * mu * params.periods_per_year * params.ordering_cost / h)
    if params.cycle_service_level is not None:
        z_l = z_p = np.full(mu.shape, float(special.ndtri(params.cycle_service_level)))
    else:
        assert params.fill_rate is not None
        q_cycle = q_eoq if q_eoq is not None else mu * R
        z_p = z_for_fill_rate_vec(params.fill_rate, q_cycle, sig_p)
        z_l = z_for_fill_rate_vec(params.fill_rate, q_cycle, sig_l)
    s = m_l + np.maximum(0.0, z_l * sig_l)
    S = m_p + np.maximum(0.0, z_p * sig_p)
    if q_eoq is not None:
        S = np.maximum(S, s + q_eoq)
    return s, np.maximum(S, s)


def _static_levels(mean: np.ndarray, var: np.ndarray, params: PolicyParams,
                   horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The demo's static fit, SKU by SKU through :func:`compute_levels` (bit-identical levels)."""
    s = np.empty(mean.shape)
    S = np.empty(mean.shape)
    for i, (m, v) in enumerate(zip(mean.tolist(), var.tolist(), strict=True)):
        lv = compute_levels(np.full(horizon, m), np.full(horizon, v), params)
        s[i], S[i] = lv.reorder_point, lv.order_up_to
    return s, S


def _warmup_moments(panel: DemandPanel) -> tuple[np.ndarray, np.ndarray]:
    # Row by row, exactly as the demo's ``_fit_static_policy`` (same float summation order).
    n = panel.demand.shape[0]
    mean, var = np.zeros(n), np.zeros(n)
    for i in range(n):
        row = panel.demand[i, : panel.warmup_periods].astype(float)
        mean[i] = float(row.mean()) if row.size else 0.0
        var[i] = float(row.var(ddof=1)) if row.size > 1 else 0.0
    return mean, var


def static_seed(panel: DemandPanel, params: PolicyParams,
                horizon_periods: int = DEFAULT_HORIZON_PERIODS) -> np.ndarray:
    """Seed stock of every simulated policy: ``ceil(S)`` of the static (s, S) fitted on the warm-up.

    Parameters
    ----------
    panel : DemandPanel
        The demand panel.
    params : PolicyParams
        Policy parameters of the run (the target sets S).
    horizon_periods : int
        Length of the flat forecast fed to :func:`compute_levels` (the demo's forecast horizon).

    Returns
    -------
    numpy.ndarray, shape (n_skus,), int64
        Units on hand at the start of the first period.
    """
    mean, var = _warmup_moments(panel)
    moments = RuleMoments(np.zeros(1, dtype=np.int64), mean[None, :], var[None, :])
    S = _fit_levels(moments, params, horizon_periods)[0][2]
    return np.ceil(S).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Moments per rule
# --------------------------------------------------------------------------------------------
def _refit_periods(panel: DemandPanel, every: int) -> list[int]:
    return list(range(panel.warmup_periods, panel.n_periods, every))


def _batch_forecast(history: np.ndarray, model: str) -> np.ndarray:
    """One-step forecast mean per SKU of a statsforecast model fitted on ``history`` (n, t)."""
    try:
        import pandas as pd
        from statsforecast import StatsForecast
        from statsforecast.models import ADIDA, AutoETS
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "The batch-forecast baseline needs statsforecast, from the optional 'bench' extra: "
            "pip install -e '.[bench]'."
        ) from exc
    n, t = history.shape
    df = pd.DataFrame({"unique_id": np.repeat(np.arange(n), t), "ds": np.tile(np.arange(t), n),
                       "y": history.astype(float).ravel()})
    m = ADIDA() if model == "adida" else AutoETS()
    fc = StatsForecast(models=[m], freq=1, n_jobs=1).forecast(df=df, h=1)
    col = [c for c in fc.columns if c not in ("unique_id", "ds")][0]
    out = np.zeros(n)
    out[fc["unique_id"].to_numpy(dtype=int)] = fc[col].to_numpy(dtype=float)
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


def rule_moments(panel: DemandPanel, rule: Rule, *, window_periods: int | None = None,
                 refit_every_periods: int | None = None,
                 model: Literal["adida", "autoets"] = "adida") -> RuleMoments:
    """Demand moments per fit of a rule (module docstring); independent of the service target.

    Parameters
    ----------
    panel : DemandPanel
        The demand panel.
    rule : {"static", "rolling", "batch"}
        The rule.
    window_periods : int, optional
        Trailing window (periods) of the rolling fit and of the batch rule's variance; required
        for ``"rolling"`` and ``"batch"``.
    refit_every_periods : int, optional
        Periods between two fits of ``"rolling"`` and ``"batch"``; required for them.
    model : {"adida", "autoets"}
        Batch forecaster (statsforecast).

    Returns
    -------
    RuleMoments
        The first fit (period 0) is always the warm-up fit.

    Raises
    ------
    ValueError
        On an unknown rule or a missing / non-positive window or refit interval.
    ImportError
        For ``"batch"`` without statsforecast installed.
    """
    mean0, var0 = _warmup_moments(panel)
    fits = [0]
    means = [mean0]
    vars_ = [var0]
    if rule == "static":
        pass
    elif rule in ("rolling", "batch"):
        if not window_periods or window_periods < 1 or not refit_every_periods or refit_every_periods < 1:
            raise ValueError(f"The {rule} rule needs positive window_periods and refit_every_periods, "
                             f"got {window_periods} and {refit_every_periods}.")
        demand = panel.demand.astype(float)
        for p in _refit_periods(panel, refit_every_periods):
            mean, var = _fit_at(demand, p, rule, window_periods, model)
            fits.append(p)
            means.append(mean)
            vars_.append(var)
    else:
        raise ValueError(f"Unknown rule {rule!r}: expected 'static', 'rolling' or 'batch'.")
    return RuleMoments(np.array(fits), np.vstack(means), np.vstack(vars_))


def _fit_at(history: np.ndarray, p: int, rule: Rule, window_periods: int,
            model: Literal["adida", "autoets"]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance per period of a rolling or batch fit at period ``p`` on ``history[:, :p]``.

    ``history`` (n_skus, >= p) is the demand the rule sees: the panel's demand, or its own sales
    when the storefront hides stockouts.
    """
    win = history[:, max(0, p - window_periods): p]
    if rule == "rolling":
        mean = win.mean(axis=1)
        var = win.var(axis=1, ddof=1) if win.shape[1] > 1 else np.zeros(mean.shape)
    else:
        if p < _MIN_BATCH_HISTORY[model]:
            mean = history[:, :p].mean(axis=1)  # too short for the model: the mean so far
        else:
            mean = _batch_forecast(history[:, :p], model)
        var = ((win - mean[:, None]) ** 2).mean(axis=1)
    return mean, var


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------
def _fit_levels(moments: RuleMoments, params: PolicyParams,
                horizon: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(from period, s, S)`` of every fit.

    A cycle-service target's warm-up fit goes SKU by SKU through :func:`compute_levels`, as the
    demo's baseline (bit-identical levels); every other fit, and every fit of a fill-rate target
    (whose scalar z is a root search per SKU), through :func:`levels_flat`, all fits in one call.
    """
    periods = [int(p) for p in moments.fit_periods.tolist()]
    k, n = moments.mean.shape
    if params.distribution != "normal":
        return [(p, *_static_levels(moments.mean[j], moments.var[j], params, horizon))
                for j, p in enumerate(periods)]
    s_all, S_all = levels_flat(moments.mean.ravel(), moments.var.ravel(), params)
    s_all, S_all = s_all.reshape(k, n), S_all.reshape(k, n)
    out = [(p, s_all[j], S_all[j]) for j, p in enumerate(periods)]
    if params.cycle_service_level is not None:
        out[0] = (periods[0], *_static_levels(moments.mean[0], moments.var[0], params, horizon))
    return out


def _flat_levels(mean: np.ndarray, var: np.ndarray, params: PolicyParams,
                 horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Levels (s, S) of one refit, as :func:`_fit_levels` computes every fit after the first."""
    if params.distribution != "normal":
        return _static_levels(mean, var, params, horizon)
    return levels_flat(mean, var, params)


def _lead_periods(params: PolicyParams) -> int:
    L = params.lead_time_periods
    if abs(L - round(L)) > 1e-9 or round(L) < 1:
        raise ValueError(f"The simulated lead time must be a whole number of periods (>= 1), got {L}.")
    return int(round(L))


def simulate_rule(panel: DemandPanel, rule: Rule, params: PolicyParams, *, unmet: Unmet = "lost_sales",
                  seed_on_hand: np.ndarray | None = None, window_periods: int | None = None,
                  refit_every_periods: int | None = None, track: Sequence[str] = (),
                  model: Literal["adida", "autoets"] = "adida", moments: RuleMoments | None = None,
                  horizon_periods: int = DEFAULT_HORIZON_PERIODS,
                  lead_periods: np.ndarray | None = None,
                  hidden_stockouts: bool = False) -> RuleResult:
    """Simulate one reorder rule on the panel, closed loop (module docstring for the rules and timing).

    Parameters
    ----------
    panel : DemandPanel
        Demand per SKU and period, prices (currency per unit) and warm-up.
    rule : {"static", "rolling", "batch"}
        The rule.
    params : PolicyParams
        Lead time (a whole number of periods >= 1), review period (periods), service target
        (cycle service level or fill rate), pack size and MOQ (units); normal distribution.
    unmet : {"lost_sales", "backorder"}
        What happens to demand that finds no stock.
    seed_on_hand : numpy.ndarray, shape (n_skus,), optional
        Units on hand at the start; default :func:`static_seed` (``ceil(S_static)``).
    window_periods, refit_every_periods : int, optional
        Trailing window and refit interval (periods) of ``"rolling"`` and ``"batch"``.
    track : sequence of str
        ``sku@location`` keys whose on hand per period is returned in ``traces``.
    model : {"adida", "autoets"}
        Batch forecaster.
    moments : RuleMoments, optional
        Precomputed :func:`rule_moments` of this rule (to sweep targets without refitting).
    horizon_periods : int
        Forecast horizon of the static fit (periods).
    lead_periods : numpy.ndarray, shape (n_skus, n_periods), int, optional
        Random lead times (:func:`streams.lead_times.lead_time_draws`): an order placed at the
        end of period ``p`` arrives at the start of ``p + lead_periods[i, p]`` (>= 1) instead of
        ``p + L``; the levels still read ``params``' lead time.
    hidden_stockouts : bool
        The storefront publishes no order beyond the stock on hand, so the rule sees only its own
        sales: the rolling and batch refits read the units it served (``min(on_hand, demand)``)
        instead of the demand, and are fitted during the run (``moments`` is then only used for
        the warm-up fit). The warm-up fit and the seed stay on the warm-up demand: the history
        every policy is given. KPIs count the true demand. Requires ``unmet="lost_sales"``.

    Returns
    -------
    RuleResult
        KPIs, conservation vectors, levels and traces.

    Raises
    ------
    ValueError
        On an unknown rule, a fractional lead time, a wrong seed shape, an unknown tracked key,
        hidden stockouts with backorders.
    ImportError
        For ``"batch"`` without statsforecast.
    """
    t0 = time.perf_counter()
    censored = hidden_stockouts and rule in ("rolling", "batch")
    if hidden_stockouts and unmet != "lost_sales":
        raise ValueError("hidden stockouts (no order taken while out of stock) contradict backorders.")
    if censored:  # refitted during the run on the rule's own sales; the warm-up fit as usual
        if not window_periods or window_periods < 1 or not refit_every_periods or refit_every_periods < 1:
            raise ValueError(f"The {rule} rule needs positive window_periods and refit_every_periods, "
                             f"got {window_periods} and {refit_every_periods}.")
        refits = _refit_periods(panel, refit_every_periods)
        mean0, var0 = _warmup_moments(panel)
        moments = RuleMoments(np.zeros(1, dtype=np.int64), mean0[None, :], var0[None, :])
    elif moments is None:
        moments = rule_moments(panel, rule, window_periods=window_periods,
                               refit_every_periods=refit_every_periods, model=model)
    n, n_periods = panel.demand.shape
    lead = _lead_periods(params)
    pack, moq = int(params.pack_size), int(params.moq)
    price = panel.price.astype(float)
    warm = panel.warmup_periods
    backorder = unmet == "backorder"
    levels = _fit_levels(moments, params, horizon_periods)
    if seed_on_hand is None:
        seed = np.ceil(levels[0][2]).astype(np.int64)
    else:
        seed = np.asarray(seed_on_hand, dtype=np.int64).copy()
        if seed.shape != (n,):
            raise ValueError(f"seed_on_hand must have shape ({n},), got {seed.shape}.")
    rows = {k: i for i, k in enumerate(panel.keys)}
    unknown = [k for k in track if k not in rows]
    if unknown:
        raise ValueError(f"Unknown SKUs to track: {unknown[:4]}.")
    traces = {k: np.zeros(n_periods, dtype=np.int64) for k in track}

    on_hand = seed.copy()
    on_order = np.zeros(n, dtype=np.int64)
    backorders = np.zeros(n, dtype=np.int64)
    if lead_periods is not None:
        lead_periods = np.asarray(lead_periods, dtype=np.int64)
        if lead_periods.shape != (n, n_periods) or lead_periods.min() < 1:
            raise ValueError(f"lead_periods must have shape ({n}, {n_periods}) and values >= 1.")
    max_lead = lead if lead_periods is None else max(lead, int(lead_periods.max()))
    arrivals = np.zeros((n, n_periods + max_lead), dtype=np.int64)
    all_rows = np.arange(n)
    cycle_stockout = np.zeros(n, dtype=bool)
    received = np.zeros(n, dtype=np.int64)
    served_all = np.zeros(n, dtype=np.int64)
    bo_served = np.zeros(n, dtype=np.int64)
    lost = np.zeros(n, dtype=np.int64)
    tally = PolicyTally()
    fit_at = {p: j for j, (p, _, _) in enumerate(levels)}
    s, S, mean = levels[0][1], levels[0][2], moments.mean[0]
    sales = np.zeros((n, n_periods)) if censored else None
    refit_set = set(refits) if censored else set()
    eval_periods = 0
    for p in range(n_periods):
        if p in fit_at and p > 0:
            j = fit_at[p]
            s, S, mean = levels[j][1], levels[j][2], moments.mean[j]
        elif p in refit_set:
            assert sales is not None and window_periods is not None
            mean, var = _fit_at(sales, p, rule, window_periods, model)
            s, S = _flat_levels(mean, var, params, horizon_periods)
            levels.append((p, s, S))
        in_eval = p >= warm
        # Receipts at the start of the period; each closes a replenishment cycle.
        q_in = arrivals[:, p]
        got = q_in > 0
        if got.any():
            on_hand += q_in
            on_order -= q_in
            received += q_in
            if backorder:
                b = np.minimum(backorders, on_hand)
                backorders -= b
                on_hand -= b
                bo_served += b
            if in_eval:
                tally.received_units += int(q_in.sum())
                tally.cycles += int(got.sum())
                tally.cycles_with_stockout += int((cycle_stockout & got).sum())
            cycle_stockout &= ~got
        # Serve the period's demand.
        q = panel.demand[:, p]
        served = np.minimum(on_hand, q)
        short = q - served
        on_hand -= served
        if sales is not None:
            sales[:, p] = served  # what the storefront published: the rule's observed demand
        served_all += served
        if backorder:
            backorders += short
        else:
            lost += short
        cycle_stockout |= short > 0
        # Review at the end of the period.
        ip = on_hand + on_order - backorders
        oq = order_quantities(ip, s, S, pack_size=pack, moq=moq)
        oq = np.where(S > 0, oq, 0)
        placed = oq > 0
        if placed.any():
            if lead_periods is None:
                arrivals[:, p + lead] += oq
            else:  # one entry per row: no repeated index
                arrivals[all_rows, p + lead_periods[:, p]] += oq
            on_order += oq
            if in_eval:
                tally.purchase_orders += int(placed.sum())
        if in_eval:
            eval_periods += 1
            tally.demand_units += int(q.sum())
            tally.served_units += int(served.sum())
            tally.lost_units += int(short.sum())
            tally.served_value += float(served @ price)
            tally.on_hand_unit_days += float(on_hand.sum())
            tally.on_hand_value_days += float(on_hand @ price)
            tally.stockout_sku_days += int((on_hand == 0).sum())
            tally.sku_days += n
            tally.abs_error += float(np.abs(q - mean).sum())
            tally.forecast_demand += float(q.sum())
        for k, tr in traces.items():
            tr[p] = on_hand[rows[k]]
    return RuleResult(
        rule=rule, tally=tally, kpis=tally.kpis(eval_periods, panel.period_days),
        evaluation_periods=eval_periods, start_on_hand=seed, end_on_hand=on_hand,
        received=received, served=served_all, backorders_served=bo_served, lost=lost,
        backorders=backorders, levels=levels, traces=traces, wall_s=time.perf_counter() - t0,
    )


def baseline_specs(freq: str) -> list[RuleSpec]:
    """The default baselines of a frontier for a demand period.

    Daily: static, rolling (s, S) on the trailing 28 and 56 days re-fitted every 7 days, batch
    ADIDA re-fitted every 7 days (variance on 56 days). Weekly: rolling on 8, 13 and 26 weeks
    and batch ADIDA (variance on 13 weeks), re-fitted every week. Hourly: as daily, in hours.

    Parameters
    ----------
    freq : {"H", "D", "W"}
        Demand period.

    Returns
    -------
    list of RuleSpec
        Names ``static``, ``rolling_28d``, ``rolling_56d``, ``rolling_8w``, ..., ``batch_adida``.

    Raises
    ------
    ValueError
        On an unknown period.

    Examples
    --------
    >>> [s.name for s in baseline_specs("W")]
    ['static', 'rolling_8w', 'rolling_13w', 'rolling_26w', 'batch_adida']
    """
    if freq == "W":
        windows, unit, per, refit, var_window = (8, 13, 26), "w", 1, 1, 13
    elif freq in ("D", "H"):
        per = 1 if freq == "D" else 24
        windows, unit, refit, var_window = (28, 56), "d", 7 * per, 56 * per
    else:
        raise ValueError(f"Unknown demand period {freq!r}: expected 'H', 'D' or 'W'.")
    specs = [RuleSpec("static", "static")]
    specs += [RuleSpec(f"rolling_{w}{unit}", "rolling", w * per, refit) for w in windows]
    specs.append(RuleSpec("batch_adida", "batch", var_window, refit, "adida"))
    return specs
