"""Liveness of reorders and cold start, over generated histories (daily and weekly).

Liveness (issue #17): after every period review, a SKU with positive demand over L + R whose
inventory position is at or below its reorder point s has an open ``ReorderSuggested``,
whatever the warehouse did with the earlier ones (bought, ignored, bought late). The
processor's own ``liveness_violations`` counter must agree (0).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.demand import epoch, period_seconds
from agents.policy import PolicyParams
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.state import SkuState
from schemas.decisions import ReorderSuggested
from schemas.inputs import OrderPlaced, PurchaseOrderPlaced, StockReceived, StockSnapshot

T0 = datetime(2021, 1, 4, tzinfo=UTC)  # a Monday


def _history() -> st.SearchStrategy:
    regular = st.integers(0, 30)
    bulk = st.integers(200, 2000)
    demand = st.lists(st.one_of(regular, regular, regular, st.just(0), bulk), min_size=6, max_size=60)
    return st.tuples(st.sampled_from(["D", "W"]), demand, st.integers(1, 3),
                     st.lists(st.sampled_from(["buy", "buy", "ignore", "late"]), min_size=60, max_size=60),
                     st.integers(0, 200), st.booleans())


@settings(max_examples=60, deadline=None)
@given(_history())
def test_a_sku_at_or_below_its_reorder_point_always_has_an_open_suggestion(case: tuple) -> None:
    freq, demand, lead, warehouse, seed_stock, buyers = case
    step = period_seconds(freq)
    days = step / 86400.0
    proc = SkuProcessor(ProcessorConfig(
        freq=freq, allowed_lateness_s=0.0, horizon_periods=8, min_history_periods=4,
        suggestion_expiry_s=2 * step, repeat_buyers=buyers,  # bulk lines from one repeat buyer
        policy=PolicyParams(lead_time_periods=lead, review_period_periods=1.0)))
    state = SkuState.new("A@W")
    offsets = {"orders": 0, "inventory": 0}
    receipts: dict[int, list[StockReceived]] = {}
    decisions: list[ReorderSuggested] = []

    def apply(ev: object, topic: str) -> None:
        res = proc.apply(state, ev, EventMeta(topic, 0, offsets[topic]))
        offsets[topic] += 1
        decisions.extend(d for d in res.decisions if isinstance(d, ReorderSuggested))

    apply(StockSnapshot(event_id="seed", occurred_at=T0, sku="A", location="W", on_hand=seed_stock),
          "inventory")
    for i, q in enumerate(demand):
        start = T0 + timedelta(days=i * days)
        # the warehouse acts on the last suggestion of the previous period
        if decisions:
            d, action = decisions[-1], warehouse[i % len(warehouse)]
            decisions.clear()
            if action != "ignore":
                po = f"PO-{d.event_id[:12]}"
                arrive = i + lead + (2 if action == "late" else 0)
                apply(PurchaseOrderPlaced(event_id=f"po-{po}", occurred_at=start, sku="A", location="W",
                                          purchase_order_id=po, quantity=d.quantity,
                                          expected_arrival=T0 + timedelta(days=(i + lead) * days)),
                      "inventory")
                receipts.setdefault(arrive, []).append(StockReceived(
                    event_id=f"rcv-{po}", occurred_at=T0 + timedelta(days=arrive * days), sku="A",
                    location="W", quantity=d.quantity, purchase_order_id=po))
        for r in receipts.pop(i, []):
            apply(r, "inventory")
        if q:
            apply(OrderPlaced(event_id=f"o{i}", occurred_at=start + timedelta(seconds=step // 2), sku="A",
                              location="W", order_id=f"o{i}", quantity=q, unit_price=2.0,
                              customer_id="wholesale" if q >= 200 else None), "orders")
        # the period review: the watermark passes the period's end
        end = epoch(start) + step
        res = proc.advance(state, end, EventMeta("orders", 0, offsets["orders"]), f"wm-{i}")
        decisions.extend(d for d in res.decisions if isinstance(d, ReorderSuggested))
        if res.status != "applied":
            continue
        keep = state.derived
        derived = proc.deriver.derived(state, None)
        state.derived = keep
        if derived is None:
            continue
        lv = derived.levels
        if lv.mean_protection > 0 and state.position.inventory_position <= lv.reorder_point:
            open_ = state.reorder
            assert open_ is not None and open_.expires_at > end, (
                f"period {i}: IP {state.position.inventory_position} <= s {lv.reorder_point:.2f} "
                f"with demand {lv.mean_protection:.2f} over L+R and no open suggestion")
    assert state.counters.get("liveness_violations", 0) == 0


def test_a_new_sku_is_decided_from_its_first_period_and_says_cold_start() -> None:
    """Before its required history (28 days) a SKU is decided on its own first periods (rate
    averaged over the required history), and the explanation says so."""
    proc = SkuProcessor(ProcessorConfig(allowed_lateness_s=0.0, min_history_periods=28))
    state = SkuState.new("A@W")
    seen = []
    proc.apply(state, StockSnapshot(event_id="seed", occurred_at=T0, sku="A", location="W", on_hand=0),
               EventMeta("inventory", 0, 0))
    for day in range(40):
        res = proc.apply(state, OrderPlaced(
            event_id=f"o{day}", occurred_at=T0 + timedelta(days=day, hours=10), sku="A", location="W",
            order_id=f"o{day}", quantity=5, unit_price=1.0), EventMeta("orders", 0, day))
        seen.extend((day, d) for d in res.decisions if isinstance(d, ReorderSuggested))
    assert seen, "no reorder in 40 days of steady demand"
    first_day, first = seen[0]
    assert first_day <= 2
    assert first.explanation.cold_start is True
    assert first.explanation.history_periods is not None and first.explanation.history_periods < 28
    # the zero-prior rate: 5 units/day seen over 1-2 days, averaged over 28 days
    assert first.explanation.forecast_mean_lead_time < 5 * 7 / 2
    late = [d for day, d in seen if d.explanation.history_periods >= 28]
    assert all(d.explanation.cold_start is False for d in late)


def test_the_forecaster_source_still_waits_for_its_history() -> None:
    proc = SkuProcessor(ProcessorConfig(allowed_lateness_s=0.0, min_history_periods=10,
                                        demand_source="forecaster"))
    assert proc.decisions.first_decision_periods == 10
    assert SkuProcessor(ProcessorConfig(min_history_periods=10)).decisions.first_decision_periods == 1
