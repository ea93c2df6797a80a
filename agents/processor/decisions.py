"""Decision building: when to emit, and the ReorderSuggested / OverstockDetected with their explanation.

Decision ids are derived from the trigger (SKU key, decision kind, topic, partition, offset),
so a replay re-emits identical ids that consumers dedupe.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Literal

import numpy as np

from agents.demand import period_seconds, to_datetime
from agents.forecasting.covariates import CovariatePool
from agents.policy import OverstockCheck, is_overstock, order_quantity, project_inventory
from agents.processor.config import Decision, EventMeta, ProcessorConfig
from agents.processor.derived import Derived, LevelsDeriver
from agents.state import OpenDecision, SkuState
from schemas.decisions import DecisionExplanation, OverstockDetected, ReorderSuggested

__all__ = ["DecisionMaker", "decision_id"]


def decision_id(key: str, kind: str, meta: EventMeta) -> str:
    """Deterministic decision id: sha256 of SKU key, kind and trigger position (32 hex chars).

    Examples
    --------
    >>> decision_id("A@X", "reorder", EventMeta("orders", 1, 42))
    'a37f01b92033ec32f235c7d61d91bbd0'
    """
    raw = f"{key}|{kind}|{meta.topic}|{meta.partition}|{meta.offset}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _units(x: float) -> float:
    """A level in units as the explanation carries it: 4 decimals, and no negative zero.

    The per-SKU and the column review compute the same levels in different float orders; a
    difference below the rounding must not show up as the sign of a zero (``-0.0``), so that
    both paths' decisions stay byte-identical.
    """
    return round(x, 4) + 0.0



class DecisionMaker:
    """Decides for one SKU from its derived levels and builds the decision events.

    Parameters
    ----------
    config : ProcessorConfig
        Expiry, re-emission fraction, minimum history, period.
    deriver : LevelsDeriver
        Supplies the SKU's (cached) forecast and levels.
    """

    def __init__(self, config: ProcessorConfig, deriver: LevelsDeriver) -> None:
        self.config = config
        self.deriver = deriver
        self._step = period_seconds(config.freq)

    def _explanation(self, state: SkuState, d: Derived, meta: EventMeta,
                     trigger_event_id: str) -> DecisionExplanation:
        pos, lv, p, lt = state.position, d.levels, d.params, d.lead_time
        days = self._step / 86400.0
        return DecisionExplanation(
            on_hand=pos.on_hand,
            on_order=pos.on_order,
            backorders=pos.backorders,
            inventory_position=pos.inventory_position,
            period=self.config.freq,
            lead_time_periods=p.lead_time_periods,
            lead_time_std_periods=p.lead_time_std_periods,
            review_period_periods=p.review_period_periods,
            forecast_mean_lead_time=_units(lv.mean_lead_time),
            forecast_q90_lead_time=_units(lv.q90_lead_time),
            forecast_q95_lead_time=_units(lv.q95_lead_time),
            forecast_mean_protection=_units(lv.mean_protection),
            forecast_q90_protection=_units(lv.q90_protection),
            forecast_q95_protection=_units(lv.q95_protection),
            safety_stock=_units(lv.safety_stock),
            reorder_point=_units(lv.reorder_point),
            order_up_to=_units(lv.order_up_to),
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
            promotions=self.promotions_in_window(state, d),
            cold_start=state.model.n_periods < self.config.min_history_periods,
            history_periods=state.model.n_periods,
            lost_unit_cost=None if d.lost_unit_cost is None else round(d.lost_unit_cost, 6),
            policy_version=None if d.inputs.policy is None else d.inputs.policy.version,
            lead_time_days=round(p.lead_time_periods * days, 4),
            lead_time_std_days=round(p.lead_time_std_periods * days, 4),
            lead_time_receipts=None if lt is None else lt.receipts,
            lead_time_pool_receipts=None if lt is None else lt.pool_receipts,
            **self._buyers(state, days),
        )

    def _buyers(self, state: SkuState, days: float) -> dict[str, Any]:
        """The explanation's repeat-buyer fields (None while the model is off)."""
        cfg = self.config
        if not cfg.buyers_on:
            return {}
        mean = 0.0
        if state.buyers.known and state.demand.open_start is not None:
            mean, _ = state.buyers.moments(state.demand.open_start, step=self._step,
                                           prior_orders=cfg.repeat_buyer_prior_orders,
                                           prior_periods=cfg.repeat_buyer_prior_periods)
        return {"repeat_buyers": len(state.buyers.known), "repeat_buyer_units_per_day": round(mean / days, 4)}

    def promotions_in_window(self, state: SkuState, d: Derived) -> list[str]:
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
        mean, var = self.projection_inputs(state, d)
        assert state.demand.open_start is not None
        receipts = pos.scheduled_receipts(t, self._step, state.demand.open_start)
        return project_inventory(pos.on_hand, pos.backorders, receipts, mean, var,
                                 within_periods=d.lead_time_periods)

    def projection_inputs(self, state: SkuState, d: Derived) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance per horizon period the projection reads (units; shapes ``(H,)``)."""
        m, v = d.moments
        mean = np.array(m, dtype=float)
        var = np.array(v, dtype=float)
        # Demand already seen in the open period is no longer ahead of us.
        mean[0] = max(0.0, mean[0] - state.demand.pending[0]) if state.demand.pending else mean[0]
        return mean, var

    @property
    def first_decision_periods(self) -> int:
        """Periods a SKU must have learned before it is decided (cold start).

        One with the window demand (``demand_source="window"``): a young SKU's rate is its own
        demand averaged over the required history, so it is decided from its first closed
        period (the explanation says ``cold_start``). The forecaster's moments need
        ``min_history_periods``.
        """
        if self.config.demand_source == "window":
            return 1
        return self.config.min_history_periods

    def decide(self, state: SkuState, meta: EventMeta, trigger_event_id: str, t: int,
               pool: CovariatePool | None = None, *, review: bool = False) -> list[Decision]:
        """The decisions after an event (or a watermark) at event time ``t`` (epoch s).

        None before :attr:`first_decision_periods`. A ``ReorderSuggested`` when the inventory
        position is at or below s (unless an open one still covers it, see
        :class:`ProcessorConfig`), an ``OverstockDetected`` when it exceeds the overstock
        threshold. ``pool`` as in :meth:`LevelsDeriver.derived`.

        ``review`` says that this call closed at least one period (a period review). Liveness:
        after a review, a SKU with positive demand over L + R and an inventory position at or
        below s has an open suggestion. A review that ends otherwise (the quantity rounds to
        zero, S <= 0) bumps the state's ``liveness_violations`` counter; the closed loop
        reports the total, which must be 0.
        """
        if state.model.n_periods < self.first_decision_periods:
            return []
        d = self.deriver.derived(state, pool)
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
        if review and ip <= lv.reorder_point and lv.mean_protection > 0 and state.reorder is None:
            state.bump("liveness_violations")  # see decide(): counted, never expected
        over = self._overstock(state, d, meta, trigger_event_id, t)
        if over is not None:
            out.append(over)
        return out

    def _reorder(self, state: SkuState, d: Derived, meta: EventMeta, trigger_event_id: str, t: int,
                 qty: int) -> ReorderSuggested:
        proj = self._project(state, d, t)
        return self.reorder_event(state, d, meta, trigger_event_id, t, qty,
                                  proj.first_stockout_period, proj.stockout_probability)

    def reorder_event(self, state: SkuState, d: Derived, meta: EventMeta, trigger_event_id: str, t: int,
                      qty: int, first_stockout_period: int | None,
                      stockout_probability: float) -> ReorderSuggested:
        """Open a suggestion of ``qty`` units on ``state`` and build its ``ReorderSuggested``.

        ``first_stockout_period`` and ``stockout_probability`` come from the projection
        (:func:`agents.policy.project_inventory`, or its columns in :mod:`agents.review.kernel`).
        """
        stockout_at = None
        reason: Literal["projected_stockout", "below_reorder_point"] = "below_reorder_point"
        if first_stockout_period is not None:
            stockout_at = to_datetime(state.demand.open_start + (first_stockout_period + 1) * self._step)
            if first_stockout_period < d.lead_time_periods:
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
            stockout_probability=round(float(min(1.0, max(0.0, stockout_probability))), 4),
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
        return self.overstock_event(state, d, meta, trigger_event_id, t, check)

    def overstock_event(self, state: SkuState, d: Derived, meta: EventMeta, trigger_event_id: str,
                        t: int, check: OverstockCheck) -> OverstockDetected | None:
        """Open an overstock on ``state`` and build its ``OverstockDetected`` when ``check`` flags it.

        ``check`` is :func:`agents.policy.is_overstock` of the SKU (or its columns in
        :mod:`agents.review.kernel`); None when it is not flagged.
        """
        if not check.flagged:
            return None
        pos = state.position
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
