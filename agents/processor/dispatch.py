"""Dispatch: apply one event (or a watermark) to one SKU's state, learn closed periods, then decide.

:class:`SkuProcessor` is the entry point (see :mod:`agents.processor` for the order of work);
it routes each event type to its handler and hands the SKU to the features
(:mod:`agents.processor.features`), the derived levels (:mod:`agents.processor.derived`) and the
decisions (:mod:`agents.processor.decisions`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.censoring import censored_demand
from agents.demand import LateEventError, epoch, period_seconds, period_start, season_length
from agents.forecasting.covariates import CovariatePool
from agents.policy import PolicyParams
from agents.processor.config import (
    ApplyResult,
    Decision,
    EventMeta,
    PeriodObserver,
    PolicyRejected,
    ProcessorConfig,
)
from agents.processor.decisions import DecisionMaker
from agents.processor.derived import Derived, LevelsDeriver, forecast_lift
from agents.processor.features import CovariateFeatures
from agents.processor.level_ratio import learn_level_ratio, level_ratio
from agents.repeat_buyers import customer_key
from agents.state import PromotionPlan, SkuPolicy, SkuState
from schemas.inputs import (
    OrderCancelled,
    OrderPlaced,
    PolicyDeleted,
    PolicySet,
    PromotionCancelled,
    PromotionPlanned,
    PurchaseOrderCancelled,
    PurchaseOrderPlaced,
    StockAdjusted,
    StockReceived,
    StockSnapshot,
)

__all__ = ["TOMBSTONE_TRIGGER_ID", "SkuProcessor"]

#: ``trigger_event_id`` of the decisions a policy tombstone triggers (it has no event id; the
#: explanation's ``trigger_topic``/``trigger_partition``/``trigger_offset`` locate it).
TOMBSTONE_TRIGGER_ID = "policy-tombstone"


def _policy_of(event: PolicySet) -> SkuPolicy:
    """The :class:`SkuPolicy` a ``PolicySet`` stores."""
    return SkuPolicy(event.version, tuple(event.parameters().items()))


class SkuProcessor:
    """Applies events to per-SKU state and returns decisions (see :mod:`agents.processor`).

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
        self.features = CovariateFeatures(config)
        self.deriver = LevelsDeriver(config, self.features)
        self.decisions = DecisionMaker(config, self.deriver)

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
            state only advances its fence), else ``applied`` with the decisions to emit
            (``stale_policy`` for a ``PolicySet`` whose version is not above the SKU's: only the
            fence moves).

        Raises
        ------
        PolicyRejected
            A ``PolicySet`` whose parameters are invalid for this SKU (see
            :meth:`LevelsDeriver.effective_params`); the state is unchanged (the pipeline
            dead-letters the event, stage ``validate``).

        Run-time policies (topic ``policies``): a ``PolicySet`` above the SKU's version replaces
        its policy (:meth:`set_policy`), a ``PolicyDeleted`` (tombstone) deletes it; either way
        the SKU is decided at once under its new parameters (the tombstone, which has no event
        time, at the SKU's own clock ``updated_at``).
        """
        if not state.fence_passed(meta.topic, meta.partition, meta.offset):
            return ApplyResult("skipped")
        if isinstance(event, PolicyDeleted):
            return self._delete_policy(state, meta, pool)
        if isinstance(event, PolicySet):
            if event.version <= state.policy_version:  # stale (compaction and replays keep order)
                state.mark_applied(meta.topic, meta.partition, meta.offset)
                state.bump("stale_policies")
                return ApplyResult("applied", stale_policy=True)
            base_key, base = self.deriver.base_params(state.key)
            try:
                self.deriver.effective_params(base_key, base, _policy_of(event))
            except ValueError as exc:  # before any change
                raise PolicyRejected(f"policy version {event.version} of {state.key}: {exc}") from exc
        return self._apply(state, event, meta, pool)

    def set_policy(self, state: SkuState, policy: SkuPolicy | None) -> None:
        """Give ``state`` a run-time policy (None: delete it), superseding its open decisions.

        When the SKU's effective :class:`PolicyParams` change, its open suggestion and overstock
        (computed under the old parameters) stop blocking: the next decision is made under the
        new ones and names the new policy version. ``policy_version`` only rises (a deletion
        keeps it). The derived levels are dropped by :func:`agents.processor.derived.cached_derived`,
        whose inputs include the policy.
        """
        before = self.deriver.params_for(state)
        state.policy = policy
        if policy is not None:
            state.policy_version = max(state.policy_version, policy.version)
        if self.deriver.params_for(state) != before:
            state.reorder = None
            state.overstock = None
        state.bump("policies" if policy is not None else "policy_deletes")

    def _delete_policy(self, state: SkuState, meta: EventMeta, pool: CovariatePool | None) -> ApplyResult:
        state.mark_applied(meta.topic, meta.partition, meta.offset)
        state.bump("events")
        if state.policy is None:
            return ApplyResult("applied")  # nothing to delete
        self.set_policy(state, None)
        result = ApplyResult("applied")
        result.decisions = self.decisions.decide(state, meta, TOMBSTONE_TRIGGER_ID, state.updated_at, pool)
        return result

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
            if self.config.buyers_on and event.customer_id:
                self._record_buyer(state, event.customer_id, float(event.quantity), t)
            if self.config.covariates:
                self.features.record_sale(state, event, t)
            state.stockout.record_order(t, freq=self.config.freq)
            served, short = state.position.sell(event.quantity, at=t, unmet=self.config.unmet_demand)
            state.bump("orders_units", event.quantity)
            state.bump("served_units", served)
            if short and self.config.unmet_demand == "lost_sales":
                state.bump("lost_units", short)
            if pool is not None and self.config.controlled_fill_rate is not None:
                pool.service.add(short, event.quantity)  # the partition's fill-rate controller
                result.pool_changed = True
        else:
            closed = state.demand.advance(self.config.freq, t, lateness_s=self.config.allowed_lateness_s)
            result.periods_closed, result.pool_changed = self._learn(state, closed, pool)
            if self.config.lead_time_learning and self._learn_lead_time(state, event, t, pool):
                result.pool_changed = True
            self._apply_other(state, event, t)
        self._observe_stock(state, t)
        state.mark_applied(meta.topic, meta.partition, meta.offset)
        state.bump("events")
        state.updated_at = max(state.updated_at, t)
        result.decisions = self.decisions.decide(state, meta, event.event_id, t, pool,
                                                 review=result.periods_closed > 0)
        return result

    def advance(self, state: SkuState, watermark: int, meta: EventMeta, trigger_event_id: str,
                pool: CovariatePool | None = None) -> ApplyResult:
        """Close the SKU's periods up to a partition watermark (epoch s) and decide again.

        Idempotent and deterministic: it depends only on the state, the watermark and the
        pool's published coefficient, which are themselves derived from the partition's events,
        so a replay reproduces it. ``pool`` as in :meth:`apply`.
        """
        result = self.close_periods(state, watermark, pool)
        if result.status == "applied":
            result.decisions = self.decide(state, meta, trigger_event_id, watermark, pool, review=True)
        return result

    def close_periods(self, state: SkuState, watermark: int,
                      pool: CovariatePool | None = None) -> ApplyResult:
        """Close and learn the SKU's periods up to a partition watermark (epoch s), without deciding.

        The first half of :meth:`advance` (the period review of :mod:`agents.review.sweep`
        decides many SKUs at once afterwards). Returns ``skipped`` when no period closes, else
        ``applied`` with the periods closed and whether ``pool``'s sums changed.
        """
        closed = state.demand.advance(self.config.freq, watermark, lateness_s=self.config.allowed_lateness_s)
        if not closed:
            return ApplyResult("skipped")
        self._init_model(state)
        n, changed = self._learn(state, closed, pool)
        return ApplyResult("applied", periods_closed=n, pool_changed=changed)

    def decide(self, state: SkuState, meta: EventMeta, trigger_event_id: str, t: int,
               pool: CovariatePool | None = None, *, review: bool = False) -> list[Decision]:
        """The SKU's decisions at event time ``t`` (epoch s): :meth:`DecisionMaker.decide`."""
        return self.decisions.decide(state, meta, trigger_event_id, t, pool, review=review)

    # --- covariates -----------------------------------------------------------------------
    def _init_model(self, state: SkuState) -> None:
        # a new SKU's forecaster gets the configured season length (weekly: 52)
        m = self._season
        if state.model.season_length != m and state.model.n_periods == 0:
            from agents.forecasting import DemandForecaster

            state.model = DemandForecaster(season_length=m)

    # --- features, levels and decisions of a SKU (the collaborators' public API) ---------------
    def calendar(self, start: int) -> dict[str, Any]:
        """Calendar features of the period starting at ``start`` (:meth:`CovariateFeatures.calendar`)."""
        return self.features.calendar(start)

    def planned_covariates(self, state: SkuState, start: int) -> dict[str, float]:
        """Planned covariates of one period (:meth:`CovariateFeatures.planned_covariates`)."""
        return self.features.planned_covariates(state, start)

    def period_features(self, state: SkuState, start: int, horizon: int) -> list[dict[str, Any]]:
        """Features of the ``horizon`` periods from ``start`` (:meth:`CovariateFeatures.period_features`)."""
        return self.features.period_features(state, start, horizon)

    def realised_covariates(self, state: SkuState, start: int, units: float) -> dict[str, float]:
        """Covariates of a closed period (:meth:`CovariateFeatures.realised_covariates`)."""
        return self.features.realised_covariates(state, start, units)

    def params_for(self, state: SkuState | str) -> PolicyParams:
        """Effective policy parameters of a SKU (or a bare key) (:meth:`LevelsDeriver.params_for`)."""
        return self.deriver.params_for(state)

    def derived(self, state: SkuState, pool: CovariatePool | None = None) -> Derived | None:
        """Forecast and levels of the open period, cached on the state (:meth:`LevelsDeriver.derived`)."""
        return self.deriver.derived(state, pool)

    def window_moments(self, state: SkuState, periods: int) -> tuple[np.ndarray, np.ndarray]:
        """Demand moments the levels read (:meth:`LevelsDeriver.window_moments`)."""
        return self.deriver.window_moments(state, periods)

    def level_ratio(self, state: SkuState) -> float:
        """Actual/forecast demand ratio of a SKU (:func:`agents.processor.level_ratio.level_ratio`)."""
        return level_ratio(state, self.config)

    # --- internals ----------------------------------------------------------------------------
    def _record_buyer(self, state: SkuState, customer_id: str, units: float, t: int) -> None:
        """Attribute an order line to a repeat buyer of the SKU (:mod:`agents.repeat_buyers`).

        A known buyer's line always is; another customer's when ``units`` exceeds
        ``repeat_buyer_bulk_periods`` periods of the window's rate of total demand (a SKU
        without a rate yet has no bulk line).
        """
        buyers, key = state.buyers, customer_key(customer_id)
        if not buyers.is_buyer(key):
            rate = self.deriver.window_rate(state, total=True)
            if not (rate > 0.0 and units > self.config.repeat_buyer_bulk_periods * rate):
                return
        buyers.record(period_start(self.config.freq, t), key, units)

    def _observe_stock(self, state: SkuState, t: int) -> None:
        """Start or end the SKU's stock-out interval after a position change at ``t`` (epoch s)."""
        open_start = state.demand.open_start
        floor = open_start if open_start is not None else period_start(self.config.freq, t)
        state.stockout.observe(state.position.on_hand < 1, t, freq=self.config.freq, floor=floor)

    def _learn(self, state: SkuState, closed: list[tuple[int, float]],
               pool: CovariatePool | None) -> tuple[int, bool]:
        """Learn the closed periods; returns how many and whether ``pool``'s sums changed."""
        a = self.config.level_ratio_alpha
        model = state.model
        pool_changed = False
        cov = self.config.covariates
        censored = self.config.censored
        controlled = pool is not None and self.config.controlled_fill_rate is not None
        for start, units in closed:
            stockout = state.stockout.close(start, freq=self.config.freq)
            x = self.features.calendar(start)
            if model.covariates_enabled:
                model.set_pool_mean(None if pool is None else pool.coef)
            if self.observer is not None:  # before the period's own price enters the state
                self.observer(state, start, units)
            if cov:
                feats = self.features.realised_covariates(state, start, units)
                # a plan or a promotion enables covariates; price variation alone does not
                # (customer price tiers, e.g. Online Retail, are not a price plan)
                if (not model.covariates_enabled
                        and any(k != "log_price_ratio" for k in feats)):
                    model.enable_covariates(self._names)
                    model.set_pool_mean(None if pool is None else pool.coef)
                if model.covariates_enabled:
                    x.update(feats)
            base_units, lift, bought = units, 1.0, 0.0
            if state.buyers:  # repeat buyers' lines leave the window (agents.repeat_buyers)
                cfg = self.config
                bought = min(state.buyers.close(start, step=self._step, capacity=cfg.repeat_buyers_max,
                                                prior_orders=cfg.repeat_buyer_prior_orders,
                                                prior_periods=cfg.repeat_buyer_prior_periods), units)
                base_units = units - bought
            if self.config.promotion_lift and model.covariates_enabled and len(x) > 1 and model.n_periods:
                # promotion / price lift of this period, as the forecaster has learned it: the
                # window rate keeps the regular-price demand, planned lifts are applied ahead
                lift = float(forecast_lift(model, [x])[0])
                base_units = base_units / lift
            y = units
            if censored and stockout > 0.0:
                # a hidden-stockout storefront: sales are a lower bound; the out-of-stock share of
                # the period is imputed (agents.censoring): the window with its short-window mean,
                # the forecaster and the level ratio with the forecaster's one-step forecast
                rate = self.deriver.recent_rate(state)
                base_units = censored_demand(base_units, stockout, rate)
                y = censored_demand(units, stockout, float(model.forecast(1, [x])[0]))
                state.bump("censored_periods")
                unseen = stockout * rate * lift
                if controlled and unseen > 0.0:  # no lost order reached the controller: count them
                    assert pool is not None
                    pool.service.add(unseen, unseen)
                    pool_changed = True
            state.inventory_demand.update(base_units, capacity=self.config.rate_window_periods,
                                          long_span=self.config.dispersion_span_periods,
                                          total=base_units + bought if bought else None)
            learn_level_ratio(state, y, x, a)
            eff = model.covariate_effects
            if eff is not None and pool is not None:
                before = eff.quantised()
                model.learn_one(y, x)
                after = eff.quantised()
                if after != before:
                    pool.add(before, after)
                    pool_changed = True
            else:
                model.learn_one(y, x)
            state.bump("periods")
        if closed and cov and state.promotions:  # plans that ended are no longer needed
            done = closed[-1][0] + self._step
            for pid in [p for p, plan in state.promotions.items() if int(plan.valid_to) <= done]:
                del state.promotions[pid]
        return len(closed), pool_changed

    def _learn_lead_time(self, state: SkuState, event: Any, t: int, pool: CovariatePool | None) -> bool:
        """Feed a purchase-order event to the SKU's lead-time estimator (:mod:`agents.supply`).

        An observed lead time (a purchase order completely received, or cancelled after a
        partial receipt) also enters ``pool``'s group of its supplier, as its deviation from the
        SKU's configured lead time; returns True when ``pool`` changed.
        """
        est = state.lead_time
        if isinstance(event, PurchaseOrderPlaced):
            est.place(event.purchase_order_id, event.quantity, ordered_at=t,
                      expected_at=epoch(event.expected_arrival),
                      period_start_at=period_start(self.config.freq, t), supplier=event.supplier_id)
            return False
        if isinstance(event, StockReceived):
            obs = est.receive(event.purchase_order_id, event.quantity, at=t, period_s=self._step)
        elif isinstance(event, PurchaseOrderCancelled):
            obs = est.cancel(event.purchase_order_id, period_s=self._step)
        else:
            return False
        if obs is None or pool is None:
            return False
        lead, _, supplier = obs
        pool.lead_times.add(supplier, lead - self.deriver.params_for(state.key).lead_time_periods)
        return True

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
        elif isinstance(event, PromotionCancelled):
            state.promotions.pop(event.promotion_id, None)
        elif isinstance(event, PolicySet):
            self.set_policy(state, _policy_of(event))
        else:  # pragma: no cover - the decoders only produce the types above
            raise TypeError(f"unsupported event type {type(event).__name__}")
