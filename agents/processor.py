"""Apply one event to one SKU's state and decide: the single code path of agent, backtest and demo.

:class:`SkuProcessor` is pure: it takes a :class:`~agents.state.SkuState`, a decoded event and
where the event came from (topic, partition, offset), mutates the state and returns the
decisions to emit. The Faust agent (``streams.app``), ``restock backtest`` and ``restock demo``
all call it; only the transport around it differs.

Order of work for one event:

1. **Fence.** An event at or below the SKU's fence for its ``topic:partition`` is skipped.
2. **Event time.** The SKU's clock moves to ``occurred_at``; demand periods whose end plus the
   allowed lateness it passed are closed and learned (skipped periods as zeros).
3. **Apply.** Orders add demand to the open period and consume ``on_hand`` (what cannot be
   served is a lost sale or a backorder, by configuration). An order for a period that is
   already closed is *late*: nothing is applied and the caller dead-letters it. Cancellations and
   returns never count as negative demand; restocked units go back on hand. Inventory events
   move the inventory position (see :mod:`agents.inventory`).
4. **Decide.** With the forecast of the next H periods (cached until the model learns again) the
   policy computes s and S. When the inventory position is at or below s a
   ``ReorderSuggested`` is emitted, at most one open per SKU@location; it closes when a purchase
   order or a receipt arrives or when it expires, and is re-emitted only when its quantity
   changes by more than a configured fraction. ``OverstockDetected`` likewise.

Covariates (planned price and promotions)
-----------------------------------------
With ``ProcessorConfig.covariates`` on, each closed period is learned with its *realised*
covariates (:mod:`agents.forecasting.covariates`): ``log_price_ratio = log(p / p_ref)`` with
``p`` the period's average unit price (revenue / units of its orders; a period without sales
uses the reference price, i.e. 0) and ``p_ref`` the SKU's online regular price
(:meth:`SkuProcessor.update_reference_price`); ``promo_<kind>``: the share of the period's units
sold on promotion (the kind of the planned promotion covering the period, else ``discount``),
at least the share of the period a planned promotion covers; extra numeric covariates from
the plan. Forecasts use the *planned* covariates of each horizon period
(:meth:`SkuProcessor.period_features`): overlap-weighted over the ``PromotionPlanned`` events in
the state (planned ``unit_price``, else ``p_ref (1 - depth)``; absent a plan, the reference
price and no promotion, i.e. all zero). A SKU's forecaster gets its covariate-aware candidates
(:meth:`~agents.forecasting.DemandForecaster.enable_covariates`) at its first plan or first
period with a promotion (price variation alone does not enable them); until then nothing
changes in its forecasts, byte for byte.

The shared coefficient lives in a per-input-partition :class:`~agents.forecasting.covariates.
CovariatePool` passed to :meth:`SkuProcessor.apply` / :meth:`SkuProcessor.advance`; the caller
re-publishes it when the partition's event time crosses a period boundary
(:meth:`~agents.forecasting.covariates.CovariatePool.publish`), before applying the event.

Decision ids are derived from the trigger (SKU key, decision kind, topic, partition, offset),
so a replay re-emits identical ids that consumers dedupe.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from agents.demand import (
    Freq,
    LateEventError,
    epoch,
    period_seconds,
    season_length,
    season_position,
    to_datetime,
)
from agents.forecasting import ForecastDistribution
from agents.forecasting.covariates import COVARIATES, PROMO_KINDS, CovariatePool
from agents.policy import (
    PolicyLevels,
    PolicyParams,
    compute_levels,
    is_overstock,
    order_quantity,
    project_inventory,
)
from agents.state import OpenDecision, PromotionPlan, SkuState
from schemas.events import (
    DecisionExplanation,
    OrderCancelled,
    OrderPlaced,
    OverstockDetected,
    PromotionCancelled,
    PromotionPlanned,
    PurchaseOrderCancelled,
    PurchaseOrderPlaced,
    ReorderSuggested,
    StockAdjusted,
    StockReceived,
    StockSnapshot,
)

Decision = ReorderSuggested | OverstockDetected
Status = Literal["applied", "skipped", "late"]


@dataclass(frozen=True, slots=True)
class EventMeta:
    """Where an event came from: ``topic[partition]@offset``."""

    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class ApplyResult:
    """Outcome of applying one event (or one watermark) to one SKU."""

    status: Status
    decisions: list[Decision] = field(default_factory=list)
    periods_closed: int = 0
    error: str | None = None
    pool_changed: bool = False


class Derived:
    """Forecast and policy levels for the SKU's current open period (cached, not stored).

    The levels need the forecast moments of the protection interval only (``ceil(L + R)``
    periods, the whole horizon when an ordering cost makes the EOQ read the horizon's mean);
    the full-horizon distribution (:attr:`dist`: projections, overstock, explanations) is
    computed on first use, since most derivations end without a decision. It is valid while it
    is the state's cached ``derived``: once the state changes (the processor drops the cache),
    reading :attr:`dist` for the first time raises ``RuntimeError`` instead of describing the
    new state under the old levels.
    """

    __slots__ = ("levels", "params", "lead_time_periods", "pool_boundary", "model", "_dist", "_full",
                 "_state", "_moments")

    def __init__(self, state: SkuState, levels: PolicyLevels, params: PolicyParams,
                 lead_time_periods: int, pool_boundary: int, model: str,
                 full: Callable[[bool], Any]) -> None:
        self._state = state
        self._moments: tuple[np.ndarray, np.ndarray] | None = None
        self.levels = levels
        self.params = params
        self.lead_time_periods = lead_time_periods
        self.pool_boundary = pool_boundary
        self.model = model  # name of the served candidate
        self._dist: ForecastDistribution | None = None
        self._full = full

    def _check_current(self) -> None:
        if self._state.derived is not self:
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


@dataclass(frozen=True)
class ProcessorConfig:
    """Knobs of :class:`SkuProcessor` (all durations in seconds unless named otherwise).

    Attributes
    ----------
    freq : {"H", "D", "W"}
        Demand period.
    allowed_lateness_s : float
        How long after its end a period stays open for late orders.
    horizon_periods : int
        Forecast horizon H (must cover lead time + review period).
    policy : PolicyParams
        Default replenishment parameters (lead time etc. in periods).
    overrides : dict[str, PolicyParams]
        Per ``sku@location`` (or per ``sku``) parameters.
    suggestion_expiry_s : float
        An open suggestion stops blocking new ones after this much event time.
    reemit_change_fraction : float
        Re-emit an open reorder when the order-up-to level S it was computed with moves by more
        than this fraction (a forecast shift), or when the quantity now needed exceeds the open
        suggestion's by more than this fraction; not for every unit demand depletes.
    unmet_demand : {"lost_sales", "backorder"}
        What an order that exceeds on_hand becomes.
    min_history_periods : int
        Periods a SKU must have learned before any decision is made about it.
    level_ratio_alpha : float
        Smoothing of the actual/forecast demand ratio used for inventory levels (0 disables).
    level_ratio_bounds : (float, float)
        Clip of that ratio.
    covariates : bool
        Learn and forecast with price / promotion covariates (module docstring).
    covariate_extras : tuple of str
        Names of extra numeric covariates taken from plans (``PromotionPlanned.covariates``),
        e.g. ``("x_promo_share",)``; appended to the standard ones.
    season_length : int or None
        Season length of new SKUs' forecasters (None: 24 hourly, 7 daily, 52 weekly); the
        season position of a period is taken modulo it.
    reference_price_alpha : float
        Downward smoothing of the regular price (a higher regular price is taken at once).
    demand_source : {"window", "forecaster"}
        Demand distribution the levels read. ``"window"`` (default): the rate of the last
        ``rate_window_periods`` periods and the long-run dispersion of
        :class:`~agents.inventory_demand.InventoryDemand` (flat over the protection interval,
        per-period variance ``CV^2 rate^2``). ``"forecaster"``: the forecaster's moments scaled
        by :meth:`SkuProcessor.level_ratio` (the policy before issue #17, kept for comparison).
    rate_window_periods : int
        Long window of the demand rate (periods; 84 days by default).
    rate_short_window_periods : int
        Short window (periods; 28 days by default). The rate is the lower of the two window
        means: it follows a fall in demand within the short window and a rise only as the long
        window confirms it, so one bulk order does not lift the levels for long.
    dispersion_span_periods : float
        Memory of the long-run dispersion (periods; 365 days by default).
    promotion_lift : bool
        With ``demand_source="window"``: learn the window from regular-price demand (each
        period divided by the lift the forecaster attributes to its realised promotion/price)
        and multiply planned periods by the planned lift. Off by default: on the Dominick's tuna
        panel (30-50x promotion weeks, lead time one week) it held 4x the stock for a higher
        fill rate, because an order placed during a promotion arrives after it; it needs an
        order rule on the projected position at the lead time (issue #17 note).
    lost_unit_cost : float or None
        Cost assigned to one lost (or backordered) unit of demand, in currency. When set, each
        SKU's service level is the critical fractile ``p / (p + h v R)`` of its own holding cost
        per review period (``h`` the policy's holding cost rate per year, ``v`` the SKU's unit
        value: its learned regular price, else the policy's ``unit_cost``; ``R`` in years), in
        place of the policy's target: the allocation that minimises stock value for the units
        served (the Lagrangian of a unit fill-rate constraint; Silver, Pyke & Thomas 2017, Ch. 7,
        cost per unit short, and Ch. 8 exchange curves). None: the policy's target.
    """

    freq: Freq = "D"
    allowed_lateness_s: float = 3600.0
    horizon_periods: int = 28
    policy: PolicyParams = field(default_factory=PolicyParams)
    overrides: dict[str, PolicyParams] = field(default_factory=dict)
    suggestion_expiry_s: float = 14 * 86400.0
    reemit_change_fraction: float = 0.25
    unmet_demand: Literal["lost_sales", "backorder"] = "lost_sales"
    min_history_periods: int = 28
    level_ratio_alpha: float = 0.03
    level_ratio_bounds: tuple[float, float] = (0.5, 3.0)
    covariates: bool = True
    covariate_extras: tuple[str, ...] = ()
    season_length: int | None = None
    reference_price_alpha: float = 0.05
    demand_source: Literal["window", "forecaster"] = "window"
    rate_window_periods: int = 84
    rate_short_window_periods: int = 28
    promotion_lift: bool = False
    dispersion_span_periods: float = 365.0
    lost_unit_cost: float | None = None

    @property
    def covariate_names(self) -> tuple[str, ...]:
        """Standard covariates followed by the extras."""
        return (*COVARIATES, *self.covariate_extras)

    def __post_init__(self) -> None:
        needed = self.policy.lead_time_periods + self.policy.review_period_periods
        if self.horizon_periods < math.ceil(needed):
            raise ValueError(
                f"horizon_periods ({self.horizon_periods}) must cover lead time + review period "
                f"({needed:g} periods)"
            )


def decision_id(key: str, kind: str, meta: EventMeta) -> str:
    """Deterministic decision id: sha256 of SKU key, kind and trigger position (32 hex chars).

    Examples
    --------
    >>> decision_id("A@X", "reorder", EventMeta("orders", 1, 42))
    'a37f01b92033ec32f235c7d61d91bbd0'
    """
    raw = f"{key}|{kind}|{meta.topic}|{meta.partition}|{meta.offset}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


PeriodObserver = Callable[[SkuState, int, float], None]


class SkuProcessor:
    """Applies events to per-SKU state and returns decisions (see module docstring).

    Parameters
    ----------
    config : ProcessorConfig
        Period, lateness, horizon and policy parameters.
    observer : callable, optional
        ``observer(state, period_start_epoch_s, units)`` is called for every closed period
        *before* the model learns it (the backtest records its out-of-sample forecasts there).
    """

    def __init__(self, config: ProcessorConfig, observer: PeriodObserver | None = None) -> None:
        self.config = config
        self.observer = observer
        self._step = period_seconds(config.freq)
        self._season = config.season_length or season_length(config.freq)
        self._names = config.covariate_names

    # --- public entry points -------------------------------------------------------------
    def apply(self, state: SkuState, event: Any, meta: EventMeta,
              pool: CovariatePool | None = None) -> ApplyResult:
        """Apply one decoded input event to ``state``.

        Parameters
        ----------
        state : SkuState
            The event's SKU state (mutated).
        event : schemas.events input event
            An order, inventory or promotion event of this SKU.
        meta : EventMeta
            Topic, partition and offset of the event.
        pool : CovariatePool, optional
            The shared covariate coefficient of the event's partition (its sums are updated
            when the SKU learns covariates; ``pool_changed`` says so). None: the prior.

        Returns
        -------
        ApplyResult
            ``skipped`` when fenced, ``late`` when the order's period was already closed (the
            state only advances its fence), else ``applied`` with the decisions to emit.
        """
        if not state.fence_passed(meta.topic, meta.partition, meta.offset):
            return ApplyResult("skipped")
        return self._apply(state, event, meta, pool)

    def _apply(self, state: SkuState, event: Any, meta: EventMeta, pool: CovariatePool | None) -> ApplyResult:
        self._init_model(state)
        t = epoch(event.occurred_at)
        result = ApplyResult("applied")
        if isinstance(event, OrderPlaced):
            try:
                closed = state.demand.add(self.config.freq, t, float(event.quantity),
                                          lateness_s=self.config.allowed_lateness_s)
            except LateEventError as exc:
                state.mark_applied(meta.topic, meta.partition, meta.offset)
                state.bump("late")
                return ApplyResult("late", error=str(exc))
            result.periods_closed, result.pool_changed = self._learn(state, closed, pool)
            if self.config.covariates:
                self._record_sale(state, event, t)
            served, short = state.position.sell(event.quantity, at=t, unmet=self.config.unmet_demand)
            state.bump("orders_units", event.quantity)
            state.bump("served_units", served)
            if short and self.config.unmet_demand == "lost_sales":
                state.bump("lost_units", short)
        else:
            closed = state.demand.advance(self.config.freq, t, lateness_s=self.config.allowed_lateness_s)
            result.periods_closed, result.pool_changed = self._learn(state, closed, pool)
            self._apply_other(state, event, t)
        state.mark_applied(meta.topic, meta.partition, meta.offset)
        state.bump("events")
        state.updated_at = max(state.updated_at, t)
        result.decisions = self._decide(state, meta, event.event_id, t, pool)
        return result

    def advance(self, state: SkuState, watermark: int, meta: EventMeta, trigger_event_id: str,
                pool: CovariatePool | None = None) -> ApplyResult:
        """Close the SKU's periods up to a partition watermark (epoch s) and decide again.

        Idempotent and deterministic: it depends only on the state, the watermark and the
        pool's published coefficient, which are themselves derived from the partition's events,
        so a replay reproduces it. ``pool`` as in :meth:`apply`.
        """
        closed = state.demand.advance(self.config.freq, watermark, lateness_s=self.config.allowed_lateness_s)
        if not closed:
            return ApplyResult("skipped")
        self._init_model(state)
        n, changed = self._learn(state, closed, pool)
        result = ApplyResult("applied", periods_closed=n, pool_changed=changed)
        result.decisions = self._decide(state, meta, trigger_event_id, watermark, pool)
        return result

    # --- covariates -----------------------------------------------------------------------
    def _init_model(self, state: SkuState) -> None:
        # a new SKU's forecaster gets the configured season length (weekly: 52)
        m = self._season
        if state.model.season_length != m and state.model.n_periods == 0:
            from agents.forecasting import DemandForecaster

            state.model = DemandForecaster(season_length=m)

    def calendar(self, start: int) -> dict[str, Any]:
        """Calendar features of the period starting at ``start`` (``season_pos``)."""
        return {"season_pos": season_position(self.config.freq, start) % self._season}

    def planned_covariates(self, state: SkuState, start: int) -> dict[str, float]:
        """Planned covariates of the period ``[start, start + period)`` (non-zero ones only).

        Overlap-weighted over the SKU's plans: ``promo_<kind>`` is the share of the period the
        promotions of that kind cover (at most 1); ``log_price_ratio`` the overlap-weighted
        ``log(planned price / reference price)`` (planned ``unit_price``, else
        ``reference * (1 - depth)``); extras the overlap-weighted planned values. Without a
        plan or a reference price: no price effect.
        """
        out: dict[str, float] = {}
        if not state.promotions:
            return out
        end = start + self._step
        ref = state.reference_price
        for _pid, plan in sorted(state.promotions.items()):
            vf, vt = plan.valid_from, plan.valid_to
            price, depth, kind = plan.unit_price, plan.depth, plan.kind
            ov = (min(int(vt), end) - max(int(vf), start)) / self._step
            if ov <= 0.0:
                continue
            if kind in PROMO_KINDS:
                k = f"promo_{kind}"
                out[k] = min(1.0, out.get(k, 0.0) + ov)
            planned = float(price) if float(price) >= 0.0 else (
                ref * (1.0 - float(depth)) if float(depth) > 0.0 else ref)
            if ref > 0.0 and planned > 0.0:
                lpr = _dead_zone(math.log(planned / ref))
                if lpr:
                    out["log_price_ratio"] = out.get("log_price_ratio", 0.0) + ov * lpr
            extras = plan.covariates or {}
            for name, v in sorted(extras.items()):
                if name in self._names and float(v):
                    out[name] = out.get(name, 0.0) + ov * float(v)
        return {k: v for k, v in out.items() if v}

    def period_features(self, state: SkuState, start: int, horizon: int) -> list[dict[str, Any]]:
        """Features ``xs`` of the ``horizon`` periods from ``start``: calendar + planned covariates.

        Without covariates (config off, or a SKU whose forecaster has none) only the calendar.
        """
        if not (self.config.covariates and state.model.covariates_enabled):
            return [self.calendar(start + i * self._step) for i in range(horizon)]
        xs = []
        for i in range(horizon):
            p = start + i * self._step
            xs.append({**self.calendar(p), **self.planned_covariates(state, p)})
        return xs

    def _record_sale(self, state: SkuState, event: OrderPlaced, t: int) -> None:
        from agents.demand import period_start

        p = period_start(self.config.freq, t)
        row = state.period_sales.setdefault(p, [0.0, 0.0, 0.0])
        if event.unit_price > 0.0:
            row[0] += event.quantity
            row[1] += event.quantity * event.unit_price
        if event.promo:
            row[2] += event.quantity

    def realised_covariates(self, state: SkuState, start: int, units: float) -> dict[str, float]:
        """Covariates of a closed period: realised price and promotion share, plan for the rest.

        Also updates the SKU's reference (regular) price: a regular period's price (promotion
        share under one half) raises it at once and lowers it by ``reference_price_alpha`` of
        the difference (a running upper envelope with slow decay: temporary price cuts barely
        move it, permanent changes are tracked; cf. the modal regular price of Hosken & Reiffen
        2004, Patterns of retail price variation, RAND J. Econ. 35(1)).
        """
        plan = self.planned_covariates(state, start)
        sales = state.period_sales.pop(start, None)
        feats = {k: v for k, v in plan.items() if k != "log_price_ratio"}
        ref = state.reference_price
        price = sales[1] / sales[0] if sales and sales[0] > 0.0 else None
        share = min(1.0, sales[2] / units) if sales and units > 0.0 else 0.0
        if share > 0.0:
            kinds = [k for k in feats if k.startswith("promo_")]
            k = kinds[0] if kinds else "promo_discount"
            feats[k] = max(feats.get(k, 0.0), share)
        if price is not None and ref > 0.0:
            lpr = _dead_zone(math.log(price / ref))
            if lpr:
                feats["log_price_ratio"] = lpr
        if price is not None and share < 0.5:
            if ref <= 0.0 or price > ref:
                state.reference_price = price
            else:
                state.reference_price = ref + self.config.reference_price_alpha * (price - ref)
        elif price is not None and ref <= 0.0:
            state.reference_price = price
        return {k: v for k, v in feats.items() if v}


    def params_for(self, key: str) -> PolicyParams:
        """Policy parameters of a SKU key: ``sku@location`` override, ``sku`` override, default."""
        ov = self.config.overrides
        if key in ov:
            return ov[key]
        sku = key.partition("@")[0]
        return ov.get(sku, self.config.policy)

    def derived(self, state: SkuState, pool: CovariatePool | None = None) -> Derived | None:
        """Forecast distribution and policy levels for the open period (cached on the state).

        ``pool`` is the partition's covariate pool of the call (None: the prior).
        """
        if state.derived is not None:
            if state.derived.pool_boundary == self._pool_boundary(state, pool):
                return state.derived  # type: ignore[no-any-return]
            state.derived = None  # the pool was re-published since
        if state.demand.open_start is None:
            return None
        h = self.config.horizon_periods
        start = state.demand.open_start
        params = self.params_for(state.key)
        # the levels read ceil(L + R) periods (lead_time_demand); the EOQ reads the horizon mean
        hl = h if params.ordering_cost is not None else min(
            h, max(1, math.ceil(params.lead_time_periods + params.review_period_periods)))
        model = state.model
        coef = None if pool is None else pool.coef
        if model.covariates_enabled:
            model.set_pool_mean(coef)
        params = self._service_params(state, params)
        if self.config.demand_source == "window":
            mean, var = self.window_moments(state, hl)
        else:
            mean, var = model.forecast_moments(hl, self.period_features(state, start, hl))
            ratio = self.level_ratio(state)
            mean, var = mean * ratio, var * ratio
        levels = compute_levels(mean, var, params)
        lead = max(1, math.ceil(params.lead_time_periods))

        def full(quantiles: bool) -> Any:
            """The whole horizon: the distribution, or its moments only."""
            if model.covariates_enabled:
                model.set_pool_mean(coef)
            xs = self.period_features(state, start, h)
            return model.forecast_distribution(h, xs) if quantiles else model.forecast_moments(h, xs)

        state.derived = Derived(state, levels, params, lead, self._pool_boundary(state, pool),
                                model.served_model, full)
        return state.derived

    def window_moments(self, state: SkuState, periods: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of demand per period for the next ``periods`` periods (units).

        The rate is the lower of the short- and long-window means of the SKU's demand (its
        regular-price demand with ``promotion_lift``;
        :class:`~agents.inventory_demand.InventoryDemand`; a SKU younger than
        ``min_history_periods`` averaged over that many periods), the per-period variance
        ``CV^2 rate^2`` of its long-run dispersion; with ``promotion_lift``, periods covered by a
        planned promotion or price are multiplied by the forecaster's learned lift (mean by
        ``lift``, variance by ``lift^2``). Shapes ``(periods,)``.
        """
        inv, cfg = state.inventory_demand, self.config
        k = cfg.min_history_periods
        rate = min(inv.rate(cfg.rate_window_periods, k), inv.rate(cfg.rate_short_window_periods, k))
        cv2 = inv.cv2(long_span=cfg.dispersion_span_periods)
        mean = np.full(periods, rate)
        if (cfg.promotion_lift and cfg.covariates and state.model.covariates_enabled and state.promotions
                and state.demand.open_start is not None):
            start = state.demand.open_start
            mean = mean * self._lift(state.model, self.period_features(state, start, periods))
        return mean, cv2 * mean * mean

    @staticmethod
    def _lift(model: Any, xs: list[dict[str, Any]]) -> np.ndarray:
        """Forecast with covariates ``xs`` over the forecast with their calendar alone, per period.

        Clipped to ``[e^-5, e^5]`` (the covariate model's own bound); 1 where the calendar-only
        forecast is 0.
        """
        plain = [{"season_pos": x["season_pos"]} for x in xs]
        with_cov = np.asarray(model.forecast(len(xs), xs), dtype=float)
        without = np.asarray(model.forecast(len(xs), plain), dtype=float)
        lift = np.where(without > 0.0, with_cov / np.where(without > 0.0, without, 1.0), 1.0)
        return np.clip(lift, math.exp(-5.0), math.exp(5.0))

    def _service_params(self, state: SkuState, params: PolicyParams) -> PolicyParams:
        """``params`` with the SKU's critical fractile as its target when ``lost_unit_cost`` is set."""
        p = self.config.lost_unit_cost
        if p is None:
            return params
        value = state.reference_price if state.reference_price > 0.0 else params.unit_cost
        holding = params.holding_cost_rate * value * params.review_period_periods / params.periods_per_year
        level = p / (p + holding) if holding > 0.0 else 1.0 - 1e-9
        return params.with_overrides(cycle_service_level=min(max(level, 0.5), 1.0 - 1e-9))

    def _pool_boundary(self, state: SkuState, pool: CovariatePool | None) -> int:
        if pool is None or not state.model.covariates_enabled:
            return -1
        return pool.boundary

    def level_ratio(self, state: SkuState) -> float:
        """Bias correction of the demand used for inventory levels (dimensionless).

        The forecaster's point forecast is tuned for accuracy (outlier-robust updating damps
        wholesale spikes, so its mean runs low on SKUs with recurring bulk orders). Inventory
        needs unbiased demand: the mean over L and L+R is scaled by the ratio of the SKU's
        recent actual demand to its recent one-step forecasts (exponentially weighted,
        ``level_ratio_alpha``), clipped to ``level_ratio_bounds``; variances by the same ratio (the
        dispersion of a negative binomial, variance/mean, is kept). 1 until the SKU has
        ``min_history_periods``.
        """
        y, f = state.level_ratio
        if (self.config.level_ratio_alpha <= 0 or f <= 0
                or state.model.n_periods < self.config.min_history_periods):
            return 1.0
        lo, hi = self.config.level_ratio_bounds
        return float(min(hi, max(lo, y / f)))

    # --- internals ----------------------------------------------------------------------------
    def _learn(self, state: SkuState, closed: list[tuple[int, float]],
               pool: CovariatePool | None) -> tuple[int, bool]:
        """Learn the closed periods; returns how many and whether ``pool``'s sums changed."""
        a = self.config.level_ratio_alpha
        model = state.model
        pool_changed = False
        cov = self.config.covariates
        for start, units in closed:
            x = self.calendar(start)
            if model.covariates_enabled:
                model.set_pool_mean(None if pool is None else pool.coef)
            if self.observer is not None:  # before the period's own price enters the state
                self.observer(state, start, units)
            if cov:
                feats = self.realised_covariates(state, start, units)
                # a plan or a promotion enables covariates; price variation alone does not
                # (customer price tiers, e.g. Online Retail, are not a price plan)
                if (not model.covariates_enabled
                        and any(k != "log_price_ratio" for k in feats)):
                    model.enable_covariates(self._names)
                    model.set_pool_mean(None if pool is None else pool.coef)
                if model.covariates_enabled:
                    x.update(feats)
            base_units = units
            if self.config.promotion_lift and model.covariates_enabled and len(x) > 1 and model.n_periods:
                # promotion / price lift of this period, as the forecaster has learned it: the
                # window rate keeps the regular-price demand, planned lifts are applied ahead
                base_units = units / float(self._lift(model, [x])[0])
            state.inventory_demand.update(base_units, capacity=self.config.rate_window_periods,
                                          long_span=self.config.dispersion_span_periods)
            if a > 0:
                f = model.forecast(1, [x])[0]
                r = state.level_ratio
                r[0] += a * (units - r[0])
                r[1] += a * (f - r[1])
            eff = model.covariate_effects
            if eff is not None and pool is not None:
                before = eff.quantised()
                model.learn_one(units, x)
                after = eff.quantised()
                if after != before:
                    pool.add(before, after)
                    pool_changed = True
            else:
                model.learn_one(units, x)
            state.bump("periods")
        if closed and cov and state.promotions:  # plans that ended are no longer needed
            done = closed[-1][0] + self._step
            for pid in [p for p, plan in state.promotions.items() if int(plan.valid_to) <= done]:
                del state.promotions[pid]
        if closed:
            state.derived = None
        return len(closed), pool_changed

    def _apply_other(self, state: SkuState, event: Any, t: int) -> None:
        pos = state.position
        if isinstance(event, StockSnapshot):
            pos.snapshot(event.on_hand, at=t)
        elif isinstance(event, StockReceived):
            pos.receive(event.quantity, event.purchase_order_id, at=t)
            state.reorder = None  # a receipt covers the open suggestion
        elif isinstance(event, StockAdjusted):
            pos.adjust(event.delta, at=t)
        elif isinstance(event, PurchaseOrderPlaced):
            pos.place_purchase_order(event.purchase_order_id, event.quantity,
                                     expected_arrival=epoch(event.expected_arrival))
            state.reorder = None  # a purchase order covers the open suggestion
        elif isinstance(event, PurchaseOrderCancelled):
            pos.cancel_purchase_order(event.purchase_order_id)
        elif isinstance(event, OrderCancelled):
            if event.restock:
                pos.give_back(event.quantity, at=t)
            state.bump("returned_units", event.quantity)
        elif isinstance(event, PromotionPlanned):
            state.promotions[event.promotion_id] = PromotionPlan(
                epoch(event.valid_from), epoch(event.valid_to),
                -1.0 if event.unit_price is None else float(event.unit_price),
                float(event.depth), event.promo_kind,
                dict(sorted(event.covariates.items())) if event.covariates else None,
            )
            if self.config.covariates and not state.model.covariates_enabled:
                state.model.enable_covariates(self._names)
            state.derived = None
        elif isinstance(event, PromotionCancelled):
            state.promotions.pop(event.promotion_id, None)
            state.derived = None
        else:  # pragma: no cover - the decoders only produce the types above
            raise TypeError(f"unsupported event type {type(event).__name__}")

    def _explanation(self, state: SkuState, d: Derived, meta: EventMeta,
                     trigger_event_id: str) -> DecisionExplanation:
        pos, lv, p = state.position, d.levels, d.params
        return DecisionExplanation(
            on_hand=pos.on_hand,
            on_order=pos.on_order,
            backorders=pos.backorders,
            inventory_position=pos.inventory_position,
            period=self.config.freq,
            lead_time_periods=p.lead_time_periods,
            lead_time_std_periods=p.lead_time_std_periods,
            review_period_periods=p.review_period_periods,
            forecast_mean_lead_time=round(lv.mean_lead_time, 4),
            forecast_q90_lead_time=round(lv.q90_lead_time, 4),
            forecast_q95_lead_time=round(lv.q95_lead_time, 4),
            forecast_mean_protection=round(lv.mean_protection, 4),
            forecast_q90_protection=round(lv.q90_protection, 4),
            forecast_q95_protection=round(lv.q95_protection, 4),
            safety_stock=round(lv.safety_stock, 4),
            reorder_point=round(lv.reorder_point, 4),
            order_up_to=round(lv.order_up_to, 4),
            service_level_target=p.cycle_service_level if p.fill_rate is None else p.fill_rate,
            service_level_kind="cycle" if p.fill_rate is None else "fill_rate",
            model=d.model,
            model_version=state.model.model_version,
            model_recent_mae=(None if state.model.recent_mae is None
                              else round(float(state.model.recent_mae), 4)),
            trigger_event_id=trigger_event_id,
            trigger_topic=meta.topic,
            trigger_partition=meta.partition,
            trigger_offset=meta.offset,
            promotions=self._promotions_in_window(state, d),
        )

    def _promotions_in_window(self, state: SkuState, d: Derived) -> list[str]:
        """Return the plans overlapping the protection interval L + R from the open period.

        These are the ones that moved the forecast behind S (all plans when covariates are
        off, as before).
        """
        if not self.config.covariates or state.demand.open_start is None:
            return sorted(state.promotions)
        start = state.demand.open_start
        window = math.ceil(d.params.lead_time_periods + d.params.review_period_periods)
        end = start + window * self._step
        return sorted(pid for pid, plan in state.promotions.items()
                      if int(plan.valid_from) < end and int(plan.valid_to) > start)

    def _project(self, state: SkuState, d: Derived, t: int) -> Any:
        """Projected inventory over the horizon from now (see :func:`agents.policy.project_inventory`)."""
        pos = state.position
        mean, var = self._projection_inputs(state, d)
        assert state.demand.open_start is not None
        receipts = pos.scheduled_receipts(t, self._step, state.demand.open_start)
        return project_inventory(pos.on_hand, pos.backorders, receipts, mean, var,
                                 within_periods=d.lead_time_periods)

    def _projection_inputs(self, state: SkuState, d: Derived) -> tuple[np.ndarray, np.ndarray]:
        m, v = d.moments
        mean = np.array(m, dtype=float)
        var = np.array(v, dtype=float)
        # Demand already seen in the open period is no longer ahead of us.
        mean[0] = max(0.0, mean[0] - state.demand.pending[0]) if state.demand.pending else mean[0]
        return mean, var

    def _decide(self, state: SkuState, meta: EventMeta, trigger_event_id: str, t: int,
                pool: CovariatePool | None = None) -> list[Decision]:
        if state.model.n_periods < self.config.min_history_periods:
            return []
        d = self.derived(state, pool)
        if d is None:
            return []
        out: list[Decision] = []
        pos, lv = state.position, d.levels
        if state.reorder is not None and t >= state.reorder.expires_at:
            state.reorder = None
        ip = pos.inventory_position
        if ip <= lv.reorder_point and lv.order_up_to > 0:
            qty = order_quantity(ip, lv.reorder_point, lv.order_up_to, d.params.pack_size, d.params.moq)
            open_ = state.reorder
            frac = self.config.reemit_change_fraction
            # A new suggestion replaces the open one when S moved materially, or when the open
            # one no longer covers what is needed (it was emitted before this demand, e.g. as a
            # top-up when a purchase order arrived): the warehouse acts on the latest only.
            material = open_ is None or (
                abs(lv.order_up_to - open_.level) > frac * max(open_.level, 1.0)
                or qty > (1.0 + frac) * max(open_.quantity, 1)
            )
            if qty > 0 and material:
                out.append(self._reorder(state, d, meta, trigger_event_id, t, qty))
        over = self._overstock(state, d, meta, trigger_event_id, t)
        if over is not None:
            out.append(over)
        return out

    def _reorder(self, state: SkuState, d: Derived, meta: EventMeta, trigger_event_id: str, t: int,
                 qty: int) -> ReorderSuggested:
        proj = self._project(state, d, t)
        stockout_at = None
        reason: Literal["projected_stockout", "below_reorder_point"] = "below_reorder_point"
        if proj.first_stockout_period is not None:
            stockout_at = to_datetime(state.demand.open_start + (proj.first_stockout_period + 1) * self._step)
            if proj.first_stockout_period < d.lead_time_periods:
                reason = "projected_stockout"
        did = decision_id(state.key, "reorder", meta)
        expires = int(t + self.config.suggestion_expiry_s)
        state.reorder = OpenDecision(did, qty, t, expires, float(d.levels.order_up_to))
        state.bump("reorders")
        return ReorderSuggested(
            event_id=did,
            occurred_at=to_datetime(t),
            sku=state.sku,
            location=state.location,
            quantity=qty,
            reason=reason,
            projected_stockout_at=stockout_at,
            stockout_probability=round(float(min(1.0, max(0.0, proj.stockout_probability))), 4),
            expires_at=to_datetime(expires),
            explanation=self._explanation(state, d, meta, trigger_event_id),
        )

    def _overstock(self, state: SkuState, d: Derived, meta: EventMeta, trigger_event_id: str,
                   t: int) -> OverstockDetected | None:
        """An ``OverstockDetected`` when the inventory position exceeds the overstock threshold.

        Every number in it follows from the event itself (see
        :class:`schemas.events.OverstockDetected`): ``excess_units = floor(IP - threshold)``,
        ``threshold = max(S, cover_days * forecast_mean_per_day)``, ``days_of_cover = IP /
        forecast_mean_per_day``; the rate is the forecast's mean over the horizon
        (:func:`agents.policy.is_overstock`), converted from periods to days.
        """
        pos, lv = state.position, d.levels
        ip = pos.on_hand + pos.on_order - pos.backorders
        if ip <= lv.order_up_to:
            state.overstock = None  # back to normal: a later overstock may be reported again
            return None
        if state.overstock is not None:
            return None
        check = is_overstock(ip, lv, d.params, np.asarray(d.moments[0], dtype=float))
        if not check.flagged:
            return None
        did = decision_id(state.key, "overstock", meta)
        state.overstock = OpenDecision(did, check.excess_units, t, int(t + self.config.suggestion_expiry_s))
        state.bump("overstocks")
        action: Literal["cancel_open_purchase_orders", "pause_replenishment", "markdown"]
        action = "cancel_open_purchase_orders" if pos.on_order > 0 else "pause_replenishment"
        period_days = self._step / 86400.0
        per_day = check.rate_per_period / period_days
        explanation = self._explanation(state, d, meta, trigger_event_id).model_copy(update={
            "forecast_mean_per_day": round(per_day, 6),
            "overstock_cover_days": round(d.params.overstock_cover_periods * period_days, 4),
            "overstock_threshold_units": round(check.threshold_units, 4),
        })
        cover = check.periods_of_cover
        return OverstockDetected(
            event_id=did,
            occurred_at=to_datetime(t),
            sku=state.sku,
            location=state.location,
            excess_units=check.excess_units,
            days_of_cover=None if cover is None else round(cover * period_days, 2),
            suggested_action=action,
            explanation=explanation,
        )


def _dead_zone(v: float, eps: float = 0.005) -> float:
    """0 for ``|v| < eps`` (price differences under 0.5 % are rounding, not a price change)."""
    return 0.0 if abs(v) < eps else v
