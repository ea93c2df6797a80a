"""The derived cache: a SKU's forecast and policy levels for its open period, and when they are current.

:class:`Derived` is computed from a SKU's state (:class:`LevelsDeriver`) and kept on the state
(``SkuState.derived``, never stored). It records the :class:`DerivedInputs` it was computed
from (the open period, the forecaster and how many periods it has learned, its covariates, the
promotion plans, the reference price, the covariate pool's publication); :func:`cached_derived`
is the one place that decides whether it is still current: when any input differs, the cache is
dropped and derived again. No event handler has to remember to drop it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from agents.demand import period_seconds
from agents.forecasting import ForecastDistribution
from agents.forecasting.covariates import CovariatePool
from agents.policy import PolicyLevels, PolicyParams, compute_levels
from agents.processor.config import ProcessorConfig
from agents.processor.features import CovariateFeatures
from agents.processor.level_ratio import level_ratio
from agents.state import PromotionPlan, SkuPolicy, SkuState
from agents.supply import LeadTimeEstimate, lead_time_estimate

__all__ = ["Derived", "DerivedInputs", "LevelsDeriver", "cached_derived", "derived_inputs", "forecast_lift",
           "policy_overrides"]

log = logging.getLogger(__name__)

#: Policy parameters of a ``PolicySet`` (days, units, currency) -> :class:`PolicyParams` field, and
#: whether the value is a duration in days (converted to periods). ``supplier_id`` sets no level.
_POLICY_FIELDS: dict[str, tuple[str, bool]] = {
    "fill_rate": ("fill_rate", False),
    "cycle_service_level": ("cycle_service_level", False),
    "lead_time_days": ("lead_time_periods", True),
    "lead_time_std_days": ("lead_time_std_periods", True),
    "pack_size": ("pack_size", False),
    "moq": ("moq", False),
    "unit_cost": ("unit_cost", False),
    "holding_cost_rate": ("holding_cost_rate", False),
    "ordering_cost": ("ordering_cost", False),
}

#: Distinct effective parameter sets :class:`LevelsDeriver` keeps (the cache is emptied when full).
PARAMS_CACHE_SIZE = 65_536


def policy_overrides(parameters: tuple[tuple[str, Any], ...] | dict[str, Any], period_days: float
                     ) -> dict[str, Any]:
    """The :class:`PolicyParams` overrides of a run-time policy's parameters.

    Parameters
    ----------
    parameters : dict or tuple of (name, value)
        :attr:`agents.state.SkuPolicy.parameters`: durations in days, quantities in units, costs
        in currency.
    period_days : float
        Length of one demand period in days (1/24 hourly, 1 daily, 7 weekly).

    Returns
    -------
    dict
        ``PolicyParams`` field -> value; days divided by ``period_days`` (``lead_time_days`` ->
        ``lead_time_periods``); ``supplier_id`` and unknown names are left out.

    Examples
    --------
    >>> policy_overrides({"lead_time_days": 14.0, "pack_size": 6, "supplier_id": "acme"}, 7.0)
    {'lead_time_periods': 2.0, 'pack_size': 6}
    """
    out: dict[str, Any] = {}
    for name, value in dict(parameters).items():
        target = _POLICY_FIELDS.get(name)
        if target is not None:
            out[target[0]] = value / period_days if target[1] else value
    return out


class DerivedInputs(NamedTuple):
    """What a :class:`Derived` was computed from; it is current while these are unchanged."""

    open_start: int | None
    """Start of the SKU's open period (epoch s): the first forecast period."""
    model: int
    """Identity of the SKU's forecaster object (a new SKU's forecaster may be replaced)."""
    periods_learned: int
    """Periods the forecaster has learned: every learned period changes the forecast, the
    demand window, the level ratio and the reference price."""
    covariates_enabled: bool
    """Whether the forecaster has its covariate-aware candidates."""
    promotions: dict[str, PromotionPlan]
    """The promotion plans (a copy): they set the planned covariates of the horizon."""
    reference_price: float
    """The SKU's regular price (currency): the value in its critical fractile."""
    pool_boundary: int
    """Publication of the partition's covariate pool (-1: none or no covariates)."""
    policy: SkuPolicy | None
    """The SKU's run-time policy (its parameters set the levels' :class:`PolicyParams`)."""
    lead_time: tuple[int, str]
    """Lead times the SKU has observed and its supplier (:mod:`agents.supply`; its supplier
    group's are published with the pool, at ``pool_boundary``)."""


def derived_inputs(state: SkuState, pool_boundary: int) -> DerivedInputs:
    """The inputs of ``state``'s derived values now (``pool_boundary``: :meth:`LevelsDeriver.pool_boundary`).

    Parameters
    ----------
    state : SkuState
        The SKU.
    pool_boundary : int
        Publication boundary of the covariate pool of the call (epoch s, or -1).

    Returns
    -------
    DerivedInputs
        Compared with a cached :class:`Derived`'s by :func:`cached_derived`.
    """
    model = state.model
    return DerivedInputs(state.demand.open_start, id(model), model.n_periods, model.covariates_enabled,
                         dict(state.promotions), state.reference_price, pool_boundary, state.policy,
                         (state.lead_time.n, state.lead_time.supplier))


def cached_derived(state: SkuState, inputs: DerivedInputs) -> Derived | None:
    """The one invalidation point of the derived cache: ``state.derived`` if computed from ``inputs``.

    Parameters
    ----------
    state : SkuState
        The SKU; its ``derived`` is dropped (set to None) when it is not current.
    inputs : DerivedInputs
        The state's inputs now (:func:`derived_inputs`).

    Returns
    -------
    Derived or None
        The cached value when current, else None (derive again).
    """
    d = state.derived
    if d is not None and d.inputs == inputs:
        return d
    state.derived = None
    return None


class Derived:
    """Forecast and policy levels for the SKU's current open period (cached, not stored).

    The levels need the forecast moments of the protection interval only (``ceil(L + R)``
    periods, the whole horizon when an ordering cost makes the EOQ read the horizon's mean);
    the full-horizon distribution (:attr:`dist`: projections, overstock, explanations) is
    computed on first use, since most derivations end without a decision. :attr:`lead_time` is
    the learned lead time behind :attr:`params` (None with lead-time learning off). It is valid
    while it is the state's cached ``derived`` and the state's :class:`DerivedInputs` are the
    ones it was computed from: reading :attr:`dist` for the first time after the state changed raises
    ``RuntimeError`` instead of describing the new state under the old levels.
    """

    __slots__ = ("inputs", "levels", "params", "lead_time_periods", "model", "lost_unit_cost", "lead_time",
                 "_dist", "_full", "_state", "_moments")

    def __init__(self, state: SkuState, inputs: DerivedInputs, levels: PolicyLevels, params: PolicyParams,
                 lead_time_periods: int, model: str, full: Callable[[bool], Any],
                 lost_unit_cost: float | None = None, lead_time: LeadTimeEstimate | None = None) -> None:
        self._state = state
        self._moments: tuple[np.ndarray, np.ndarray] | None = None
        self.inputs = inputs
        self.levels = levels
        self.params = params
        self.lead_time_periods = lead_time_periods
        self.model = model  # name of the served candidate
        self.lost_unit_cost = lost_unit_cost  # currency per lost unit the levels priced (None: none)
        self.lead_time = lead_time  # the learned lead time behind params (None: learning off)
        self._dist: ForecastDistribution | None = None
        self._full = full

    @property
    def pool_boundary(self) -> int:
        """Publication of the covariate pool the levels were derived under (-1: none)."""
        return self.inputs.pool_boundary

    def _check_current(self) -> None:
        state = self._state
        if state.derived is not self or derived_inputs(state, self.inputs.pool_boundary) != self.inputs:
            raise RuntimeError(f"{self._state.key}: the state changed since these levels were "
                               "derived; derive again")

    @property
    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance per period over the whole horizon (units, units squared).

        Shape ``(horizon_periods,)`` each: what projections read; computed once on use.
        """
        if self._moments is None:
            if self._dist is not None:
                self._moments = (self._dist.mean, self._dist.variance)
            else:
                self._check_current()
                self._moments = self._full(False)
        return self._moments

    @property
    def dist(self) -> ForecastDistribution:
        """Distribution over the whole horizon (``horizon_periods``), computed once on use."""
        if self._dist is None:
            self._check_current()
            self._dist = self._full(True)
        return self._dist


def forecast_lift(model: Any, xs: list[dict[str, Any]]) -> np.ndarray:
    """Forecast with covariates ``xs`` over the forecast with their calendar alone, per period.

    Clipped to ``[e^-5, e^5]`` (the covariate model's own bound); 1 where the calendar-only
    forecast is 0.

    Parameters
    ----------
    model : DemandForecaster
        The SKU's forecaster.
    xs : list of dict
        Features of consecutive periods (each with ``season_pos``).

    Returns
    -------
    numpy.ndarray
        Lift per period, shape ``(len(xs),)`` (dimensionless).
    """
    plain = [{"season_pos": x["season_pos"]} for x in xs]
    with_cov = np.asarray(model.forecast(len(xs), xs), dtype=float)
    without = np.asarray(model.forecast(len(xs), plain), dtype=float)
    lift = np.where(without > 0.0, with_cov / np.where(without > 0.0, without, 1.0), 1.0)
    return np.clip(lift, math.exp(-5.0), math.exp(5.0))


class LevelsDeriver:
    """Derives (and caches) a SKU's forecast and levels: the demand the levels read, its parameters.

    Parameters
    ----------
    config : ProcessorConfig
        Horizon, demand source and windows, lost-unit cost, per-SKU policy overrides.
    features : CovariateFeatures
        Planned features of the horizon periods.
    """

    def __init__(self, config: ProcessorConfig, features: CovariateFeatures) -> None:
        self.config = config
        self.features = features
        self._period_days = period_seconds(config.freq) / 86400.0
        self._step = period_seconds(config.freq)
        self._params: dict[tuple[str | None, tuple[tuple[str, Any], ...]], PolicyParams] = {}

    def params_for(self, state: SkuState | str) -> PolicyParams:
        """The effective policy parameters of a SKU: the one place that computes them.

        Precedence, last wins: the settings' defaults (``config.policy``), the overrides file
        (``config.overrides``: ``sku@location``, else ``sku``), the SKU's run-time policy
        (``state.policy``, topic ``policies``), whose parameters replace those fields only.

        Parameters
        ----------
        state : SkuState or str
            The SKU (its key and policy), or a bare key (defaults and overrides file only).

        Returns
        -------
        PolicyParams
            Durations in periods. With a policy, one cached object per distinct (override entry,
            policy parameters): SKUs with equal policies share it (the period review groups SKUs
            by it), and the pydantic validation runs once per distinct policy.

        A stored policy that this configuration rejects (it was valid when applied, but e.g. the
        forecast horizon was shortened since) gives the base parameters, with a warning: a SKU
        is never left without levels (an invalid *new* policy is refused when applied, see
        :meth:`effective_params`).
        """
        key = state if isinstance(state, str) else state.key
        base_key, base = self.base_params(key)
        policy = None if isinstance(state, str) else state.policy
        if policy is None:
            return base
        try:
            return self.effective_params(base_key, base, policy)
        except ValueError as exc:
            log.warning("%s: stored policy version %d is invalid under this configuration (%s); "
                        "using the defaults", key, policy.version, exc)
            self._params[(base_key, policy.parameters)] = base
            return base

    def base_params(self, key: str) -> tuple[str | None, PolicyParams]:
        """The overrides-file entry of a key (``sku@location``, else ``sku``; None: default), its params."""
        ov = self.config.overrides
        if key in ov:
            return key, ov[key]
        sku = key.partition("@")[0]
        if sku in ov:
            return sku, ov[sku]
        return None, self.config.policy

    def effective_params(self, base_key: str | None, base: PolicyParams, policy: SkuPolicy) -> PolicyParams:
        """``base`` with a run-time policy's parameters (cached per ``(base_key, policy.parameters)``).

        Parameters
        ----------
        base_key : str or None
            The overrides-file entry ``base`` comes from (None: the settings' default).
        base : PolicyParams
            The parameters before the policy.
        policy : SkuPolicy
            Parameters in days, units and currency (:func:`policy_overrides`).

        Returns
        -------
        PolicyParams

        Raises
        ------
        ValueError
            When the combination is invalid (:class:`PolicyParams`' rules, e.g. an ordering cost
            without a holding cost) or the lead time plus the review period exceed the forecast
            horizon (``horizon_periods``).
        """
        ck = (base_key, policy.parameters)
        params = self._params.get(ck)
        if params is None:
            params = base.with_overrides(**policy_overrides(policy.parameters, self._period_days))
            self.config.check_horizon_covers(params)
            if len(self._params) >= PARAMS_CACHE_SIZE:
                self._params.clear()
            self._params[ck] = params
        return params

    def derived(self, state: SkuState, pool: CovariatePool | None = None) -> Derived | None:
        """Forecast distribution and policy levels for the open period (cached on the state).

        ``pool`` is the partition's covariate pool of the call (None: the prior). The cached
        value is returned while :func:`cached_derived` finds it current.
        """
        inputs = derived_inputs(state, self.pool_boundary(state, pool))
        cached = cached_derived(state, inputs)
        if cached is not None:
            return cached
        if state.demand.open_start is None:
            return None
        start = state.demand.open_start
        params, lead_time = self.lead_time_params(state, self.params_for(state), pool)
        hl = self.levels_horizon(params)
        model = state.model
        if model.covariates_enabled:
            model.set_pool_mean(None if pool is None else pool.coef)
        cost = self.lost_unit_cost(params, pool)
        params = self.fractile_params(state, params, cost)
        if self.config.demand_source == "window":
            mean, var = self.window_moments(state, hl)
        else:
            mean, var = model.forecast_moments(hl, self.features.period_features(state, start, hl))
            ratio = level_ratio(state, self.config)
            mean, var = mean * ratio, var * ratio
        levels = compute_levels(mean, var, params)
        lead = max(1, math.ceil(params.lead_time_periods))
        state.derived = Derived(state, inputs, levels, params, lead, model.served_model,
                                self.full_horizon(state, pool), cost, lead_time)
        return state.derived

    def lead_time_params(self, state: SkuState, params: PolicyParams, pool: CovariatePool | None
                         ) -> tuple[PolicyParams, LeadTimeEstimate | None]:
        """``params`` with the SKU's learned lead time, and the estimate (None: learning off).

        :func:`agents.supply.lead_time_estimate` of the SKU's observations and its partition's
        published pool, with ``params``' lead time as the prior; ``params`` itself while nothing
        was observed.
        """
        if not self.config.lead_time_learning:
            return params, None
        est = lead_time_estimate(state.lead_time, None if pool is None else pool.lead_times,
                                 params.lead_time_periods, params.lead_time_std_periods,
                                 prior_receipts=self.config.lead_time_prior_receipts)
        if est.source == "config":
            return params, est
        # the estimate is positive and finite by construction: no re-validation needed
        return params.model_copy(update={"lead_time_periods": est.mean_periods,
                                         "lead_time_std_periods": est.std_periods}), est

    def levels_horizon(self, params: PolicyParams) -> int:
        """Periods of demand the levels read (the ``mean``/``var`` length of :func:`compute_levels`).

        ``ceil(L + R)`` (``lead_time_demand``), capped by the horizon; the whole horizon when an
        ordering cost makes the EOQ read the horizon's mean.
        """
        h = self.config.horizon_periods
        if params.ordering_cost is not None:
            return h
        return min(h, max(1, math.ceil(params.lead_time_periods + params.review_period_periods)))

    def full_horizon(self, state: SkuState, pool: CovariatePool | None) -> Callable[[bool], Any]:
        """The whole-horizon forecast of :class:`Derived`, computed on first use.

        ``full(True)`` is the distribution, ``full(False)`` its moments only, over
        ``horizon_periods`` from the open period, with ``pool``'s published coefficient.
        """
        model, features = state.model, self.features
        coef = None if pool is None else pool.coef
        start = state.demand.open_start
        h = self.config.horizon_periods
        assert start is not None

        def full(quantiles: bool) -> Any:
            """The whole horizon: the distribution, or its moments only."""
            if model.covariates_enabled:
                model.set_pool_mean(coef)
            xs = features.period_features(state, start, h)
            return model.forecast_distribution(h, xs) if quantiles else model.forecast_moments(h, xs)

        return full

    def window_moments(self, state: SkuState, periods: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of demand per period for the next ``periods`` periods (units).

        The rate is the lower of the short- and long-window means of the SKU's demand (its
        regular-price demand with ``promotion_lift``;
        :class:`~agents.inventory_demand.InventoryDemand`; a SKU younger than
        ``min_history_periods`` averaged over that many periods), the per-period variance
        ``CV^2 rate^2`` of its long-run dispersion; with ``promotion_lift``, periods covered by a
        planned promotion or price are multiplied by the forecaster's learned lift (mean by
        ``lift``, variance by ``lift^2``). The SKU's repeat buyers
        (:meth:`~agents.repeat_buyers.RepeatBuyers.moments`, their compound Poisson demand) add
        to both. Shapes ``(periods,)``.
        """
        inv, cfg = state.inventory_demand, self.config
        rate = self.window_rate(state)
        cv2 = inv.cv2(long_span=cfg.dispersion_span_periods)
        mean = np.full(periods, rate)
        if (cfg.promotion_lift and cfg.covariates and state.model.covariates_enabled and state.promotions
                and state.demand.open_start is not None):
            start = state.demand.open_start
            mean = mean * forecast_lift(state.model, self.features.period_features(state, start, periods))
        var = cv2 * mean * mean
        if state.buyers.known and state.demand.open_start is not None:
            cfg = self.config
            b_mean, b_var = state.buyers.moments(state.demand.open_start, step=self._step,
                                                 prior_orders=cfg.repeat_buyer_prior_orders,
                                                 prior_periods=cfg.repeat_buyer_prior_periods)
            mean, var = mean + b_mean, var + b_var
        return mean, var

    def window_rate(self, state: SkuState, *, total: bool = False) -> float:
        """Demand rate the levels read (units per period): the lower of the short and long window means.

        A SKU younger than ``min_history_periods`` is averaged over that many periods
        (:meth:`~agents.inventory_demand.InventoryDemand.rate`). ``total``: of the periods'
        total demand, repeat buyers' lines included (what a bulk line is measured against).
        """
        inv, cfg = state.inventory_demand, self.config
        k = cfg.min_history_periods
        return min(inv.rate(cfg.rate_window_periods, k, total=total),
                   inv.rate(cfg.rate_short_window_periods, k, total=total))

    def recent_rate(self, state: SkuState) -> float:
        """Mean demand per period of the short window alone (units per period): the unbiased recent rate.

        What a censored period's out-of-stock share is imputed with (:mod:`agents.censoring`):
        :meth:`window_rate`, the lower of two window means, is deliberately low (it follows a
        rise only once the long window confirms it), and stockouts come with rises.
        """
        cfg = self.config
        return state.inventory_demand.rate(cfg.rate_short_window_periods, cfg.min_history_periods)

    def lost_unit_cost(self, params: PolicyParams, pool: CovariatePool | None) -> float | None:
        """Cost per lost unit (currency) that sets a SKU's service level, or None (the target does).

        ``lost_unit_cost`` when configured; else, with the fill-rate controller on and ``params``
        targeting the controlled fill rate, the partition's learned cost ``p_0 exp(log_cost)``
        of ``pool`` (``p_0`` without a pool). A SKU with a fill-rate target of its own (a
        run-time policy or the overrides file) is not priced by the partition's cost, which
        buys the partition's target: its target is met per SKU through the normal loss function
        (None here).
        """
        p = self.config.lost_unit_cost
        controlled = self.config.controlled_fill_rate
        if p is None and controlled is not None and params.fill_rate == controlled:
            p = self.config.fill_control_base_cost * (1.0 if pool is None else pool.service.multiplier)
        return p

    def service_params(self, state: SkuState, params: PolicyParams,
                       pool: CovariatePool | None = None) -> PolicyParams:
        """``params`` with the SKU's critical fractile as its target, when a lost-unit cost applies.

        The cost ``p`` (currency per lost unit) is ``lost_unit_cost`` when set; else, with the
        fill-rate controller on (:attr:`ProcessorConfig.controlled_fill_rate`) and ``params``
        targeting the controlled fill rate, the partition's learned cost ``p_0 exp(log_cost)`` of ``pool``
        (``p_0`` alone without a pool). The level is ``p / (p + h v R)`` (see
        :class:`ProcessorConfig`), clipped to ``[0.5, 1)``; with ``lumpiness_discount`` k the
        holding cost is ``h v R (1 + k CV^2)`` (CV^2 of the SKU's per-period demand, the window's
        dispersion). Otherwise ``params`` unchanged.
        """
        return self.fractile_params(state, params, self.lost_unit_cost(params, pool))

    def fractile_params(self, state: SkuState, params: PolicyParams, p: float | None) -> PolicyParams:
        """``params`` with the critical fractile of cost ``p`` (:meth:`service_params`); None: as is."""
        if p is None:
            return params
        value = state.reference_price if state.reference_price > 0.0 else params.unit_cost
        holding = params.holding_cost_rate * value * params.review_period_periods / params.periods_per_year
        k = self.config.lumpiness_discount
        if k > 0.0:  # a lumpy SKU buys less fill per unit of stock: price its holding higher
            holding *= 1.0 + k * state.inventory_demand.cv2(long_span=self.config.dispersion_span_periods,
                                                            total=True)
        level = p / (p + holding) if holding > 0.0 else 1.0 - 1e-9
        return params.with_overrides(cycle_service_level=min(max(level, 0.5), 1.0 - 1e-9))

    def pool_boundary(self, state: SkuState, pool: CovariatePool | None) -> int:
        """Publication boundary of ``pool`` as the SKU's levels see it.

        -1 without a pool, or when neither the SKU's covariates, the fill-rate controller nor
        lead-time learning read it.
        """
        if pool is None:
            return -1
        if (state.model.covariates_enabled or self.config.controlled_fill_rate is not None
                or self.config.lead_time_learning):
            return pool.boundary
        return -1
