"""Decision fields mean what the schema says (issue #18, 2): each checked against its definition.

An ``OverstockDetected`` must be auditable from the event alone: ``excess_units`` against the
``overstock_threshold_units`` in its explanation, the threshold against ``order_up_to`` and the
cover window, ``days_of_cover`` in days (whatever the demand period) at the same daily rate as
the threshold.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from agents.policy import PolicyParams
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.state import SkuState
from schemas.events import (
    DECISION_SCHEMA_VERSION,
    OrderPlaced,
    OverstockDetected,
    StockSnapshot,
    decode_decision,
    encode_event,
)
from schemas.export import example_events

T0 = datetime(2011, 3, 7, tzinfo=UTC)
PERIOD_DAYS = {"D": 1.0, "W": 7.0}


def _overstock(freq: str, on_hand: int, per_day: int = 4, days: int = 70) -> OverstockDetected:
    """Steady demand of ``per_day`` units, then a recount of ``on_hand``: the first overstock."""
    p = SkuProcessor(ProcessorConfig(
        freq=freq, allowed_lateness_s=0.0, covariates=False, min_history_periods=4, horizon_periods=12,
        policy=PolicyParams(lead_time_periods=7 / PERIOD_DAYS[freq],
                            review_period_periods=1 / PERIOD_DAYS[freq],
                            overstock_cover_periods=30 / PERIOD_DAYS[freq])))  # type: ignore[arg-type]
    s = SkuState.new("A@W")
    off = 0
    for d in range(days):
        ev = OrderPlaced(event_id=f"o{d}", occurred_at=T0 + timedelta(days=d, hours=10), sku="A",
                         location="W", order_id=f"o{d}", quantity=per_day, unit_price=1.0)
        p.apply(s, ev, EventMeta("orders", 0, off))
        off += 1
    snap = StockSnapshot(event_id="count", occurred_at=T0 + timedelta(days=days, hours=9), sku="A",
                         location="W", on_hand=on_hand)
    (over,) = [d for d in p.apply(s, snap, EventMeta("inventory", 0, 0)).decisions
               if isinstance(d, OverstockDetected)]
    return over


def _check_fields(ev: OverstockDetected) -> None:
    x = ev.explanation
    ip = x.inventory_position
    assert ip == x.on_hand + x.on_order - x.backorders
    assert x.forecast_mean_per_day is not None and x.overstock_cover_days is not None
    assert x.overstock_threshold_units is not None
    assert x.overstock_threshold_units == pytest.approx(
        max(x.order_up_to, x.overstock_cover_days * x.forecast_mean_per_day), rel=1e-5, abs=1e-3)
    assert ev.excess_units >= 1
    assert abs(ev.excess_units - math.floor(ip - x.overstock_threshold_units)) <= 1
    assert ip - ev.excess_units == pytest.approx(x.overstock_threshold_units, abs=1.0 + 1e-3)
    assert ev.days_of_cover == pytest.approx(ip / x.forecast_mean_per_day, abs=0.01)


@pytest.mark.parametrize("freq", ["D", "W"])
def test_overstock_fields_follow_their_definitions(freq: str) -> None:
    ev = _overstock(freq, on_hand=2_000)
    _check_fields(ev)
    assert ev.schema_version == DECISION_SCHEMA_VERSION == 2
    assert decode_decision(encode_event(ev)) == ev
    assert ev.explanation.overstock_cover_days == pytest.approx(30.0)
    # about 4 units a day whatever the period: the cover is in days, not weeks
    assert ev.explanation.forecast_mean_per_day == pytest.approx(4.0, rel=0.35)
    assert ev.days_of_cover == pytest.approx(2_000 / 4.0, rel=0.35)


def test_days_of_cover_does_not_depend_on_the_period_length() -> None:
    daily, weekly = _overstock("D", on_hand=3_000), _overstock("W", on_hand=3_000)
    assert daily.days_of_cover is not None and weekly.days_of_cover is not None
    assert weekly.days_of_cover == pytest.approx(daily.days_of_cover, rel=0.35)  # not 7x apart


def test_excess_is_measured_against_the_cover_threshold_when_it_is_above_s() -> None:
    ev = _overstock("D", on_hand=2_000)
    x = ev.explanation
    assert x.overstock_threshold_units is not None and x.overstock_threshold_units > x.order_up_to
    assert ev.excess_units < x.inventory_position - x.order_up_to  # not "units above S"


def test_the_documented_example_follows_the_definitions() -> None:
    _check_fields(example_events()["overstock_detected"])
