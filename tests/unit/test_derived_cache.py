"""The derived cache (agents.processor.derived): one invalidation point, never stale."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.forecasting.covariates import CovariatePool
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.processor.derived import cached_derived, derived_inputs
from agents.state import PromotionPlan, SkuState
from schemas.events import (
    OrderPlaced,
    PromotionCancelled,
    PromotionPlanned,
    PurchaseOrderPlaced,
    StockSnapshot,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _order(day: int, qty: int, n: int) -> OrderPlaced:
    return OrderPlaced(event_id=f"o{n}", occurred_at=T0 + timedelta(days=day, hours=9), sku="P",
                       location="W1", order_id=f"o{n}", quantity=qty, unit_price=2.0)


def _promo(day: int, pid: str, start: int, depth: float) -> PromotionPlanned:
    return PromotionPlanned(event_id=f"pp-{pid}-{day}", occurred_at=T0 + timedelta(days=day, hours=1),
                            sku="P", location="W1", promotion_id=pid,
                            valid_from=T0 + timedelta(days=start), valid_to=T0 + timedelta(days=start + 5),
                            promo_kind="discount", depth=depth)


def _learned(proc: SkuProcessor, days: int = 30) -> SkuState:
    state = SkuState.new("P@W1")
    proc.apply(state, StockSnapshot(event_id="s", occurred_at=T0, sku="P", location="W1", on_hand=50),
               EventMeta("inventory", 0, 0))
    for d in range(days):
        proc.apply(state, _order(d, 5 + d % 3, d), EventMeta("orders", 0, d))
    return state


# one scenario step: an order (some days later), a plan, a cancelled plan, a purchase order
steps = st.lists(st.one_of(
    st.tuples(st.just("order"), st.integers(0, 3), st.integers(1, 40)),
    st.tuples(st.just("plan"), st.integers(1, 10), st.floats(0.05, 0.6)),
    st.tuples(st.just("cancel"), st.integers(0, 3), st.just(0.0)),
    st.tuples(st.just("po"), st.integers(1, 100), st.just(0.0)),
), min_size=1, max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, source=st.sampled_from(["forecaster", "window"]))
def test_the_cached_levels_always_equal_a_fresh_derivation(steps: list, source: str) -> None:
    """After any event sequence the cache equals what deriving from scratch gives (it is never stale).

    No handler drops the cache: a plan, a cancellation or a learned period changes its inputs.
    """
    proc = SkuProcessor(ProcessorConfig(min_history_periods=7, demand_source=source,  # type: ignore[arg-type]
                                        promotion_lift=True))
    pool = CovariatePool()
    state = _learned(proc)
    day, n = 30, 100
    for kind, a, b in steps:
        n += 1
        if kind == "order":
            day += a
            ev = _order(day, int(b), n)
            topic = "orders"
        elif kind == "plan":
            ev = _promo(day, f"p{a % 3}", day + a, b)
            topic = "promotions"
        elif kind == "cancel":
            ev = PromotionCancelled(event_id=f"pc{n}", occurred_at=T0 + timedelta(days=day, hours=2), sku="P",
                                    location="W1", promotion_id=f"p{a}")
            topic = "promotions"
        else:
            ev = PurchaseOrderPlaced(event_id=f"po{n}", occurred_at=T0 + timedelta(days=day, hours=3),
                                     sku="P", location="W1", purchase_order_id=f"po{n}", quantity=a,
                                     expected_arrival=T0 + timedelta(days=day + 3))
            topic = "inventory"
        proc.apply(state, ev, EventMeta(topic, 0, n), pool)
        cached = proc.derived(state, pool)
        assert cached is not None
        assert proc.derived(state, pool) is cached  # unchanged inputs: the same object
        cached_mean = cached.dist.mean.tolist()
        state.derived = None
        fresh = proc.derived(state, pool)
        assert fresh is not None and fresh is not cached
        assert fresh.levels == cached.levels
        assert fresh.params == cached.params
        assert fresh.dist.mean.tolist() == cached_mean


def test_a_changed_input_drops_the_cache_without_any_handler() -> None:
    proc = SkuProcessor(ProcessorConfig(min_history_periods=7))
    state = _learned(proc)
    d = proc.derived(state)
    assert d is not None and state.derived is d
    inputs = derived_inputs(state, d.inputs.pool_boundary)
    assert cached_derived(state, inputs) is d
    # a plan written straight into the state (no handler runs)
    state.promotions["x"] = PromotionPlan(0, 1, -1.0, 0.1, "discount", None)
    assert cached_derived(state, derived_inputs(state, d.inputs.pool_boundary)) is None
    assert state.derived is None
    again = proc.derived(state)
    assert again is not None and again is not d
    # every field of the inputs is one reason to derive again
    for field, value in [("open_start", -1), ("model", -1), ("periods_learned", -1),
                         ("covariates_enabled", not again.inputs.covariates_enabled),
                         ("promotions", {}), ("reference_price", -1.0), ("pool_boundary", 12345)]:
        assert cached_derived(state, again.inputs._replace(**{field: value})) is None, field
        state.derived = again


def test_a_derived_value_refuses_to_describe_a_changed_state() -> None:
    proc = SkuProcessor(ProcessorConfig(min_history_periods=7))
    state = _learned(proc)
    d = proc.derived(state)
    assert d is not None
    state.model.learn_one(100.0, {"season_pos": 0})  # the state moved on
    with pytest.raises(RuntimeError, match="derive again"):
        _ = d.dist
    assert proc.derived(state) is not d


def test_a_new_pool_publication_derives_again() -> None:
    proc = SkuProcessor(ProcessorConfig(min_history_periods=7))
    state = _learned(proc)
    pool = CovariatePool()
    proc.apply(state, _promo(30, "p", 33, 0.3), EventMeta("promotions", 0, 0), pool)  # covariates on
    d = proc.derived(state, pool)
    assert d is not None and d.pool_boundary == pool.boundary
    pool.publish(pool.boundary + 86400)
    d2 = proc.derived(state, pool)
    assert d2 is not d and d2 is not None and d2.pool_boundary == pool.boundary


def test_promotion_plan_is_frozen() -> None:
    plan = PromotionPlan(0, 1, -1.0, 0.1, "discount", None)
    assert replace(plan, depth=0.2) != plan
