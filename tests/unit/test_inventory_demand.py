"""Demand statistics for inventory decisions and the levels the processor derives from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.inventory_demand import InventoryDemand
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.state import SkuState
from schemas.events import OrderPlaced

T0 = datetime(2011, 3, 7, tzinfo=UTC)
demands = st.lists(st.integers(0, 5000), min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(demands, st.integers(1, 100), st.integers(1, 100))
def test_rate_is_a_window_mean_and_cv2_is_non_negative(ys: list[int], capacity: int, window: int) -> None:
    d = InventoryDemand()
    for y in ys:
        d.update(y, capacity=capacity, long_span=365)
    w = min(window, capacity)
    tail = ys[-w:]
    assert d.rate(w) == pytest.approx(sum(tail) / len(tail))
    assert d.rate(w, min_periods=w) == pytest.approx(sum(tail) / max(len(tail), w))
    assert 0.0 <= d.rate(w, min_periods=w) <= d.rate(w) <= max(tail)
    assert d.cv2(long_span=365) >= 0.0
    assert len(d.recent) == min(len(ys), capacity)
    back = InventoryDemand.from_list(d.to_list())
    assert back == d


def test_constant_demand_has_no_dispersion() -> None:
    d = InventoryDemand()
    for _ in range(50):
        d.update(7, capacity=28, long_span=365)
    assert d.rate(28) == 7.0
    assert d.cv2(long_span=365) == pytest.approx(0.0, abs=1e-9)


def _orders(sku: str, days: int, qty: int, price: float,
            bulk: dict[int, int] | None = None) -> list[OrderPlaced]:
    out = []
    for day in range(days):
        q = (bulk or {}).get(day, qty)
        out.append(OrderPlaced(event_id=f"{sku}-{day}", occurred_at=T0 + timedelta(days=day, hours=10),
                               sku=sku, location="W", order_id=f"o{day}", quantity=q, unit_price=price))
    return out


def _levels(p: SkuProcessor, sku: str, **kw: object) -> tuple[SkuState, object]:
    st_ = SkuState.new(f"{sku}@W")
    for i, ev in enumerate(_orders(sku, **kw)):  # type: ignore[arg-type]
        p.apply(st_, ev, EventMeta("orders", 0, i))
    d = p.derived(st_)
    assert d is not None
    return st_, d.levels


def test_one_bulk_order_lifts_the_rate_by_its_share_of_the_short_window_at_most() -> None:
    # two windows of different lengths (the defaults are one 56-day window): the lower mean
    p = SkuProcessor(ProcessorConfig(allowed_lateness_s=0.0, min_history_periods=84,
                                     rate_window_periods=84, rate_short_window_periods=28,
                                     dispersion_span_periods=365.0))
    _, plain = _levels(p, "A", days=60, qty=10, price=1.0)
    st_, bulk = _levels(p, "B", days=60, qty=10, price=1.0, bulk={55: 1010})
    # 59 closed periods (day 59 is open; decisions required 84 periods of history, so the
    # levels are derived but not acted on). The rate is min(28-day mean, 84-day mean); the 84-day
    # window counts the 25 unseen periods as zero: (58 * 10 + 1010) / 84, below the 28-day
    # mean (27 * 10 + 1010) / 28, so the bulk order adds 1000 / 84 per period, not 1000.
    assert st_.inventory_demand.rate(84, 84) == pytest.approx((58 * 10 + 1010) / 84)
    assert bulk.mean_lead_time == pytest.approx(7 * (58 * 10 + 1010) / 84)  # type: ignore[attr-defined]
    assert plain.mean_lead_time == pytest.approx(7 * 590 / 84)  # type: ignore[attr-defined]


def test_lost_unit_cost_gives_dearer_skus_a_lower_service_level() -> None:
    """Critical fractile p / (p + h v R): same demand, a 10x dearer unit gets a lower level."""
    p = SkuProcessor(ProcessorConfig(allowed_lateness_s=0.0, min_history_periods=0, lost_unit_cost=0.05))
    cheap_state, cheap = _levels(p, "C", days=90, qty=10, price=1.0)
    dear_state, dear = _levels(p, "D", days=90, qty=10, price=10.0)
    params = p.params_for("C@W")
    h = params.holding_cost_rate * params.review_period_periods / params.periods_per_year
    assert cheap_state.reference_price == pytest.approx(1.0)
    assert p.derived(cheap_state).params.cycle_service_level == pytest.approx(0.05 / (0.05 + h * 1.0))  # type: ignore[union-attr]
    assert p.derived(dear_state).params.cycle_service_level == pytest.approx(0.05 / (0.05 + h * 10.0))  # type: ignore[union-attr]
    # constant demand has no dispersion: add some to see the safety stock differ
    noisy = {d: 10 + (7 if d % 3 == 0 else -5) for d in range(90)}
    _, cheap_n = _levels(p, "E", days=90, qty=10, price=1.0, bulk=noisy)
    _, dear_n = _levels(p, "F", days=90, qty=10, price=10.0, bulk=noisy)
    assert dear_n.order_up_to < cheap_n.order_up_to  # type: ignore[attr-defined]
    assert dear.order_up_to <= cheap.order_up_to  # type: ignore[attr-defined]


def test_state_round_trip_keeps_the_inventory_demand() -> None:
    p = SkuProcessor(ProcessorConfig(allowed_lateness_s=0.0))
    s = SkuState.new("G@W")
    for i, ev in enumerate(_orders("G", 40, 3, 2.0, bulk={5: 40})):
        p.apply(s, ev, EventMeta("orders", 0, i))
    back = SkuState.decode(s.encode())
    assert back.inventory_demand == s.inventory_demand
    assert back.inventory_demand.n == 39
    assert back.encode() == s.encode()
