"""Decision events on ``reorders``: ``ReorderSuggested``, ``OverstockDetected`` and their explanation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import (
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from schemas.common import (
    MAX_ID_CHARS,
    DecisionSchemaVersion,
    EventBase,
    Identifier,
    NonNegativeFloat,
    Offset,
    Probability,
    UtcDatetime,
    WireModel,
)

__all__ = [
    "DecisionBase",
    "DecisionEvent",
    "DecisionExplanation",
    "OverstockDetected",
    "ReorderSuggested",
]

# --------------------------------------------------------------------------------------------
# reorders (output)
# --------------------------------------------------------------------------------------------


class DecisionExplanation(WireModel):
    """Everything a planner needs to audit a decision.

    Quantities are units; ``*_periods`` are numbers of demand periods of length ``period``
    (``"H"`` hour, ``"D"`` day, ``"W"`` week). ``*_lead_time`` forecasts cover the lead time
    L, ``*_protection`` forecasts the protection interval L + R.

    Attributes
    ----------
    on_hand, on_order, backorders, inventory_position : int
        Inventory state when deciding (``inventory_position = on_hand + on_order -
        backorders``; ``on_order`` and ``backorders`` are >= 0).
    period : {"H", "D", "W"}
        Demand period.
    lead_time_periods, lead_time_std_periods, review_period_periods : float
        Mean and standard deviation of the lead time L, and the review period R (all >= 0).
    forecast_mean_lead_time, forecast_q90_lead_time, forecast_q95_lead_time : float
        Demand over L: mean, 90 % and 95 % quantiles (units, >= 0).
    forecast_mean_protection, forecast_q90_protection, forecast_q95_protection : float
        Demand over L + R: mean, 90 % and 95 % quantiles (units, >= 0).
    safety_stock, reorder_point, order_up_to : float
        Safety stock, reorder point s and order-up-to level S (units).
    service_level_target : float
        Target in (0, 1), interpreted per ``service_level_kind``.
    service_level_kind : {"cycle", "fill_rate"}
        Cycle service level (probability of no stockout per cycle) or fill rate.
    model : str
        Forecasting model name.
    model_version : int
        Number of periods the model has learned (>= 0).
    model_recent_mae : float or None
        Recent mean absolute one-step error (units per period), when known.
    trigger_event_id, trigger_topic, trigger_partition, trigger_offset
        The input message that caused the decision.
    promotions : list of str
        Ids of the promotions that moved the forecast.
    forecast_mean_per_day : float or None
        Mean forecast demand over the forecast horizon, in units per **day** (the per-period
        mean divided by the period length in days). Set on ``OverstockDetected``, None on
        ``ReorderSuggested``.
    overstock_cover_days : float or None
        Days of cover above which stock counts as excess (``RESTOCK_OVERSTOCK_COVER_DAYS`` or
        the SKU's override). Set on ``OverstockDetected`` only.
    overstock_threshold_units : float or None
        ``max(order_up_to, overstock_cover_days * forecast_mean_per_day)``: the stock level
        above which units are excess (``OverstockDetected.excess_units`` is measured against
        it). Set on ``OverstockDetected`` only.
    cold_start : bool
        True while the SKU has learned fewer periods than its required history
        (``RESTOCK_MIN_HISTORY_DAYS``): its demand rate is then its own demand averaged over the
        whole required history, the unseen periods counted as zero (a credibility-weighted rate
        with a zero prior; see docs/decisions.md, "Cold start").
    history_periods : int or None
        Periods of the SKU's own demand behind the decision (None from producers that predate
        the field).
    lost_unit_cost : float or None
        Cost per lost (or backordered) unit the levels priced, in currency: the configured
        ``RESTOCK_LOST_UNIT_COST``, or with a fill-rate target the cost learned by the SKU's
        input partition so that its fill rate meets the target (``RESTOCK_FILL_CONTROL=partition``;
        docs/decisions.md, "Meeting a fill-rate target"). The service level is then the SKU's
        critical fractile, shown in ``service_level_target`` (kind ``cycle``). None when the
        target was used directly.
    policy_version : int or None
        ``version`` of the SKU's ``PolicySet`` (topic ``policies``) the levels were derived
        with; None when the SKU has no run-time policy (the settings' defaults and the local
        overrides file).
    lead_time_days, lead_time_std_days : float or None
        ``lead_time_periods`` and ``lead_time_std_periods`` in calendar days: the lead time the
        levels used (learned from receipts when ``RESTOCK_LEAD_TIME_LEARNING`` is on, else the
        configured one). None from producers that predate the fields.
    lead_time_receipts : int or None
        Purchase orders of this SKU@location whose lead time was observed (completely
        received, or cancelled after a partial receipt) behind the learned lead time; None
        when lead-time learning is off.
    lead_time_pool_receipts : int or None
        Observations of the SKU's pool group (its supplier's SKUs in the same input partition,
        or those without a supplier) that the learned lead time was shrunk towards; None when
        lead-time learning is off. With both counts 0 the lead time is the configured one.
    repeat_buyers : int or None
        Repeat bulk buyers of the SKU@location whose demand the levels added to the regular
        rate (``RESTOCK_REPEAT_BUYERS``; docs/decisions.md, "Repeat buyers"); None when the
        model is off.
    repeat_buyer_units_per_day : float or None
        Their expected demand, in units per **day** (the sum over buyers of purchase rate times
        mean line); None when the model is off.

    Examples
    --------
    >>> from schemas.export import example_events
    >>> example_events()["reorder_suggested"].explanation.period
    'D'

    """

    on_hand: int
    on_order: Annotated[int, Field(ge=0)]
    backorders: Annotated[int, Field(ge=0)]
    inventory_position: int
    period: Literal["H", "D", "W"]
    lead_time_periods: NonNegativeFloat
    lead_time_std_periods: NonNegativeFloat
    review_period_periods: NonNegativeFloat
    forecast_mean_lead_time: NonNegativeFloat
    forecast_q90_lead_time: NonNegativeFloat
    forecast_q95_lead_time: NonNegativeFloat
    forecast_mean_protection: NonNegativeFloat
    forecast_q90_protection: NonNegativeFloat
    forecast_q95_protection: NonNegativeFloat
    safety_stock: float
    reorder_point: float
    order_up_to: float
    service_level_target: Annotated[float, Field(gt=0, lt=1)]
    service_level_kind: Literal["cycle", "fill_rate"]
    model: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
    model_version: Annotated[int, Field(ge=0)]
    model_recent_mae: NonNegativeFloat | None = None
    trigger_event_id: Identifier
    trigger_topic: Annotated[str, StringConstraints(min_length=1, max_length=249)]
    trigger_partition: Offset
    trigger_offset: Offset
    promotions: list[Identifier] = []
    forecast_mean_per_day: NonNegativeFloat | None = None
    overstock_cover_days: NonNegativeFloat | None = None
    overstock_threshold_units: float | None = None
    cold_start: bool = False
    history_periods: Annotated[int, Field(ge=0)] | None = None
    lost_unit_cost: NonNegativeFloat | None = None
    policy_version: Annotated[int, Field(ge=1)] | None = None
    lead_time_days: NonNegativeFloat | None = None
    lead_time_std_days: NonNegativeFloat | None = None
    lead_time_receipts: Annotated[int, Field(ge=0)] | None = None
    lead_time_pool_receipts: Annotated[int, Field(ge=0)] | None = None
    repeat_buyers: Annotated[int, Field(ge=0)] | None = None
    repeat_buyer_units_per_day: NonNegativeFloat | None = None


class DecisionBase(EventBase):
    """Fields common to decisions (topic ``reorders``).

    ``event_id`` is the deterministic decision id and ``occurred_at`` the event time of the
    triggering input event. ``schema_version`` is :data:`DECISION_SCHEMA_VERSION` (2).

    Examples
    --------
    >>> from schemas.export import example_events
    >>> isinstance(example_events()["overstock_detected"], DecisionBase)
    True

    """

    schema_version: DecisionSchemaVersion = 2  # type: ignore[assignment]
    explanation: DecisionExplanation


class ReorderSuggested(DecisionBase):
    """Suggest a purchase order of ``quantity`` units (topic ``reorders``).

    Attributes
    ----------
    quantity : int
        Units to order, rounded to whole packs (>= 0).
    reason : {"projected_stockout", "below_reorder_point"}
        Why the suggestion was made.
    projected_stockout_at : datetime or None
        When on-hand stock is expected to run out, if within the horizon.
    stockout_probability : float
        Probability in [0, 1] of a stockout before an order placed now arrives.
    expires_at : datetime or None
        After this time the suggestion is stale (must not be before ``occurred_at``).

    Examples
    --------
    >>> from schemas.export import example_events
    >>> ev = example_events()["reorder_suggested"]
    >>> ev.kind, ev.quantity, ev.reason
    ('reorder_suggested', 48, 'below_reorder_point')

    """

    kind: Literal["reorder_suggested"] = "reorder_suggested"
    quantity: Annotated[int, Field(ge=0)]
    reason: Literal["projected_stockout", "below_reorder_point"]
    projected_stockout_at: UtcDatetime | None = None
    stockout_probability: Probability
    expires_at: UtcDatetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _expires_after_decision(
        cls, value: datetime | None, info: ValidationInfo
    ) -> datetime | None:
        occurred_at = info.data.get("occurred_at")
        if value is not None and occurred_at is not None and value < occurred_at:
            raise PydanticCustomError("expiry_before_decision", "must not be before occurred_at")
        return value


class OverstockDetected(DecisionBase):
    """Flag stock well above what the SKU needs (topic ``reorders``).

    Attributes
    ----------
    excess_units : int
        Units of inventory position above ``explanation.overstock_threshold_units``:
        ``floor(inventory_position - overstock_threshold_units)`` (>= 1), where the threshold
        is ``max(order_up_to, overstock_cover_days * forecast_mean_per_day)``.
    days_of_cover : float or None
        Days (calendar days, whatever the demand period) the inventory position lasts at the
        forecast mean: ``inventory_position / explanation.forecast_mean_per_day``, rounded to
        0.01; None when the forecast has no demand.
    suggested_action : {"cancel_open_purchase_orders", "pause_replenishment", "markdown"}
        What the planner should consider.

    Examples
    --------
    >>> from schemas.export import example_events
    >>> example_events()["overstock_detected"].suggested_action
    'cancel_open_purchase_orders'

    """

    kind: Literal["overstock_detected"] = "overstock_detected"
    excess_units: Annotated[int, Field(ge=0)]
    days_of_cover: NonNegativeFloat | None = None
    suggested_action: Literal["cancel_open_purchase_orders", "pause_replenishment", "markdown"]


DecisionEvent = Annotated[
    Union[ReorderSuggested, OverstockDetected],  # noqa: UP007
    Field(discriminator="kind"),
]
