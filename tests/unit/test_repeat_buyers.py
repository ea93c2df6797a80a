"""Repeat bulk buyers (agents.repeat_buyers): attribution, the purchase-rate model, and the levels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.inventory_demand import InventoryDemand
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.repeat_buyers import RepeatBuyers, customer_key
from agents.state import SkuState
from schemas.events import OrderPlaced

DAY = 86400
T0 = datetime(2011, 3, 7, tzinfo=UTC)

lines = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 9), st.integers(1, 500)), max_size=80)


@settings(max_examples=200, deadline=None)
@given(lines, st.integers(1, 12))
def test_units_are_conserved_and_capacity_holds(xs: list[tuple[int, int, int]], capacity: int) -> None:
    b = RepeatBuyers()
    for day, key, units in sorted(xs):
        b.record(day * DAY, key, float(units))
    closed = sum(b.close(day * DAY, step=DAY, capacity=capacity, prior_orders=1.0, prior_periods=90.0)
                 for day in range(31))
    assert closed == pytest.approx(sum(u for _, _, u in xs))  # every attributed unit leaves once
    assert not b.open
    assert len(b.known) <= capacity
    # with room for every customer (keys 0..9), each carries its whole history (an evicted
    # buyer who comes back starts again)
    for key, (first, c, u) in (b.known.items() if capacity >= 10 else ()):
        mine = [(d, q) for d, k, q in xs if k == key]
        assert (first, c) == (min(d for d, _ in mine) * DAY, len(mine))
        assert u == pytest.approx(sum(q for _, q in mine))
    assert RepeatBuyers.from_list(b.to_list()) == b


def test_moments_are_the_gamma_poisson_rate_times_size() -> None:
    b = RepeatBuyers()
    for day, units in ((0, 100.0), (20, 300.0)):  # two purchases of 200 on average
        b.record(day * DAY, 1, units)
        b.close(day * DAY, step=DAY, capacity=8, prior_orders=1.0, prior_periods=90.0)
    mean, var = b.moments(40 * DAY, step=DAY, prior_orders=1.0, prior_periods=90.0)
    lam = (2 + 1.0) / (40 + 90.0)
    assert mean == pytest.approx(lam * 200.0)
    assert var == pytest.approx(lam * 200.0**2)
    # a buyer who stops coming back fades as 1 / tenure
    later, _ = b.moments(400 * DAY, step=DAY, prior_orders=1.0, prior_periods=90.0)
    assert later == pytest.approx(3.0 / 490.0 * 200.0)


def test_the_buyer_with_the_fewest_expected_units_is_evicted() -> None:
    b = RepeatBuyers()
    b.record(0, 1, 1000.0)  # large and recent enough
    b.record(0, 2, 10.0)  # small
    b.record(0, 3, 500.0)
    b.close(0, step=DAY, capacity=2, prior_orders=1.0, prior_periods=90.0)
    assert sorted(b.known) == [1, 3]


def test_encoding_is_independent_of_insertion_order() -> None:
    a, b = RepeatBuyers(), RepeatBuyers()
    for k in (5, 2, 9):
        a.record(0, k, float(k))
    for k in (9, 5, 2):
        b.record(0, k, float(k))
    assert a.to_list() == b.to_list()
    assert customer_key("17850") == customer_key("17850") != customer_key("17851")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), min_size=1, max_size=120))
def test_total_moments_and_rate_read_the_totals(xs: list[tuple[int, int]]) -> None:
    part, whole = InventoryDemand(), InventoryDemand()
    for regular, extra in xs:
        part.update(regular, capacity=28, long_span=60.0, total=regular + extra)
        whole.update(regular + extra, capacity=28, long_span=60.0)
    assert part.rate(28, 14, total=True) == pytest.approx(whole.rate(28, 14))
    assert part.cv2(long_span=60.0, total=True) == pytest.approx(whole.cv2(long_span=60.0))
    assert InventoryDemand.from_list(part.to_list()) == part
    if all(e == 0 for _, e in xs):  # nothing left out: encoded as before the total moments existed
        assert part.t1 is None and len(part.to_list()) == 4


def _apply(p: SkuProcessor, st_: SkuState, days: int, bulk_every: int, customer: str | None) -> None:
    off = 0
    for day in range(days):
        at = T0 + timedelta(days=day, hours=9)
        events = [OrderPlaced(event_id=f"r{day}", occurred_at=at, sku="A", location="W",
                              order_id=f"r{day}", quantity=10, unit_price=1.0)]
        if day % bulk_every == bulk_every - 1:
            events.append(OrderPlaced(event_id=f"b{day}", occurred_at=at + timedelta(hours=1), sku="A",
                                      location="W", order_id=f"b{day}", quantity=500, unit_price=1.0,
                                      customer_id=customer))
        for ev in events:
            p.apply(st_, ev, EventMeta("orders", 0, off))
            off += 1


def test_a_repeat_buyer_leaves_the_window_and_enters_the_levels() -> None:
    cfg = dict(allowed_lateness_s=0.0, min_history_periods=28, rate_window_periods=56,
               rate_short_window_periods=56, dispersion_span_periods=730.0)
    on = SkuProcessor(ProcessorConfig(**cfg, repeat_buyers=True))
    off = SkuProcessor(ProcessorConfig(**cfg))
    a, b, c = SkuState.new("A@W"), SkuState.new("A@W"), SkuState.new("A@W")
    _apply(on, a, days=80, bulk_every=10, customer="wholesaler")
    _apply(off, b, days=80, bulk_every=10, customer="wholesaler")
    _apply(on, c, days=80, bulk_every=10, customer=None)  # no customer id: regular demand
    # the first bulk line (day 9) already came from a SKU with a rate: 500 > 4 x 10
    assert list(a.buyers.known) == [customer_key("wholesaler")]
    first, purchases, units = a.buyers.known[customer_key("wholesaler")]
    assert (purchases, units) == (7, 3500.0)  # days 9, 19, ..., 69; day 79 is still open
    assert a.buyers.is_buyer(customer_key("wholesaler")) and a.buyers.open
    assert first == int((T0 + timedelta(days=9)).timestamp())
    assert a.inventory_demand.rate(56) == pytest.approx(10.0)  # the window keeps the regular 10 a day
    assert a.inventory_demand.rate(56, total=True) == pytest.approx(b.inventory_demand.rate(56))
    assert not c.buyers and c.inventory_demand.rate(56) == pytest.approx(b.inventory_demand.rate(56))
    mean, var = on.window_moments(a, 8)
    tenure = 79 - 9  # periods from the first purchase's period to the open one
    lam = (7 + 1.0) / (tenure + 90.0)
    assert mean[0] == pytest.approx(10.0 + lam * 500.0)
    assert var[0] == pytest.approx(lam * 500.0**2)  # the regular demand is constant: CV^2 0
    back = SkuState.decode(a.encode())
    assert back.buyers == a.buyers and back.inventory_demand == a.inventory_demand
    assert on.window_moments(back, 8)[0][0] == mean[0]
