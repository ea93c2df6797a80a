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
4. **Decide.** With the forecast of the next H periods (cached while its inputs are unchanged) the
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

Modules (one reason to change each)
-----------------------------------
* :mod:`agents.processor.config`: :class:`ProcessorConfig`, :class:`EventMeta`, :class:`ApplyResult`;
* :mod:`agents.processor.dispatch`: :class:`SkuProcessor` (apply, advance, the event handlers,
  learning closed periods);
* :mod:`agents.processor.features`: covariate features (calendar, planned, realised);
* :mod:`agents.processor.level_ratio`: the actual/forecast demand ratio;
* :mod:`agents.processor.derived`: the derived cache (:class:`Derived`, its
  :class:`DerivedInputs` and the one function that decides whether it is current);
* :mod:`agents.processor.decisions`: :func:`decision_id`, when to emit, the decision events and
  their explanation.

This package re-exports the public names: ``from agents.processor import SkuProcessor``.
"""

from __future__ import annotations

from agents.processor.config import (
    ApplyResult,
    Decision,
    EventMeta,
    PeriodObserver,
    PolicyRejected,
    ProcessorConfig,
    Status,
)
from agents.processor.decisions import DecisionMaker, decision_id
from agents.processor.derived import Derived, DerivedInputs, LevelsDeriver
from agents.processor.dispatch import SkuProcessor
from agents.processor.features import CovariateFeatures

__all__ = [
    "ApplyResult",
    "CovariateFeatures",
    "Decision",
    "DecisionMaker",
    "Derived",
    "DerivedInputs",
    "EventMeta",
    "LevelsDeriver",
    "PeriodObserver",
    "PolicyRejected",
    "ProcessorConfig",
    "SkuProcessor",
    "Status",
    "decision_id",
]
