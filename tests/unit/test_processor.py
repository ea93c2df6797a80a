"""The per-SKU processor: fencing, idempotence, lateness, decisions, per-SKU policies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.policy import PolicyParams
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor, decision_id
from agents.state import InMemoryStateStore, SkuState
from schemas.events import OrderPlaced, PurchaseOrderPlaced, StockSnapshot
from streams.config import load_policy_overrides, processor_config
from streams.settings import Settings

T0 = datetime(2011, 3, 7, tzinfo=UTC)


def order(day: int, qty: int, sku: str = "A", hour: int = 10) -> OrderPlaced:
    return OrderPlaced(event_id=f"{sku}-{day}-{hour}", occurred_at=T0 + timedelta(days=day, hours=hour),
                       sku=sku, location="W", order_id=f"o{day}", quantity=qty, unit_price=1.0)


def proc(**kw: object) -> SkuProcessor:
    return SkuProcessor(ProcessorConfig(allowed_lateness_s=0.0, **kw))  # type: ignore[arg-type]


def test_same_event_twice_leaves_the_same_state() -> None:
    p, s = proc(), SkuState.new("A@W")
    for d in range(10):
        assert p.apply(s, order(d, 3), EventMeta("orders", 0, d)).status == "applied"
    before = s.encode()
    again = p.apply(s, order(9, 3), EventMeta("orders", 0, 9))
    assert again.status == "skipped"
    assert s.encode() == before
    assert s.counters["orders_units"] == 30


def test_replay_through_a_store_never_double_counts() -> None:
    p, store = proc(), InMemoryStateStore()
    events = [order(d, 2) for d in range(15)]
    s = SkuState.new("A@W")
    for i, e in enumerate(events[:8]):
        p.apply(s, e, EventMeta("orders", 1, i))
    store.save_many([s])
    # crash: the whole topic is replayed onto the stored state
    s2 = store.load_many(["A@W"])["A@W"]
    for i, e in enumerate(events):
        p.apply(s2, e, EventMeta("orders", 1, i))
    fresh = SkuState.new("A@W")
    for i, e in enumerate(events):
        p.apply(fresh, e, EventMeta("orders", 1, i))
    assert s2.encode() == fresh.encode()
    assert s2.counters["orders_units"] == 30


def test_stale_write_is_refused_by_the_store() -> None:
    p, store = proc(), InMemoryStateStore()
    new, old = SkuState.new("A@W"), SkuState.new("A@W")
    for i in range(5):
        p.apply(new, order(i, 1), EventMeta("orders", 0, i))
    p.apply(old, order(0, 1), EventMeta("orders", 0, 0))
    assert store.save_many([new]) == 1
    assert store.save_many([old]) == 0  # a zombie worker's older state
    assert store.load_many(["A@W"])["A@W"].counters["orders_units"] == 5


def test_late_order_changes_nothing_but_the_fence() -> None:
    p, s = proc(), SkuState.new("A@W")
    p.apply(s, order(0, 1), EventMeta("orders", 0, 0))
    p.apply(s, order(3, 1), EventMeta("orders", 0, 1))
    res = p.apply(s, order(1, 50), EventMeta("orders", 0, 2))
    assert res.status == "late"
    assert s.counters["orders_units"] == 2
    assert s.counters["late"] == 1
    assert s.fence == {"orders:0": 2}


def test_cold_sku_makes_no_decision_and_forecasts_zero() -> None:
    # The history gate is off (min_history_periods=0): only the cold forecast keeps it silent.
    p, s = proc(min_history_periods=0), SkuState.new("A@W")
    p.apply(s, StockSnapshot(event_id="s", occurred_at=T0, sku="A", location="W", on_hand=0),
            EventMeta("inventory", 0, 0))
    res = p.apply(s, order(0, 5), EventMeta("orders", 0, 0))
    assert s.model.n_periods == 0
    assert s.model.forecast(3) == [0.0, 0.0, 0.0]
    assert res.decisions == []
    # one learned period later the same empty shelf is reordered: the silence above was the cold start
    res = p.apply(s, order(1, 5), EventMeta("orders", 0, 1))
    assert s.model.n_periods == 1 and min(s.model.forecast(3)) > 0.0
    assert [d.kind for d in res.decisions] == ["reorder_suggested"]


def test_decision_ids_are_deterministic_and_trigger_specific() -> None:
    a = decision_id("A@W", "reorder", EventMeta("orders", 0, 7))
    assert a == decision_id("A@W", "reorder", EventMeta("orders", 0, 7))
    assert a != decision_id("A@W", "reorder", EventMeta("orders", 0, 8))
    assert a != decision_id("A@W", "overstock", EventMeta("orders", 0, 7))


def test_purchase_order_closes_the_open_suggestion() -> None:
    p = proc(policy=PolicyParams(lead_time_periods=7, review_period_periods=7))
    s = SkuState.new("A@W")
    p.apply(s, StockSnapshot(event_id="s", occurred_at=T0, sku="A", location="W", on_hand=300),
            EventMeta("inventory", 0, 0))
    decisions = []
    for d in range(40):
        decisions += p.apply(s, order(d, 10), EventMeta("orders", 0, d)).decisions
        if decisions:
            break
    (r,) = decisions
    assert r.kind == "reorder_suggested" and s.reorder is not None
    assert r.event_id == s.reorder.decision_id
    po = PurchaseOrderPlaced(event_id="po", occurred_at=r.occurred_at, sku="A", location="W",
                             purchase_order_id="P1", quantity=r.quantity,
                             expected_arrival=r.occurred_at + timedelta(days=7), decision_id=r.event_id)
    res = p.apply(s, po, EventMeta("inventory", 0, 1))
    assert res.decisions == []
    assert s.reorder is None
    assert s.position.on_order == r.quantity


@pytest.mark.parametrize(("freq", "days", "short_days", "want"), [
    ("D", 56.0, 56.0, (56, 56)),     # daily: the days configured
    ("D", 84.0, 28.0, (84, 28)),
    ("W", 56.0, 56.0, (104, 104)),   # weekly: at least two years (RATE_WINDOW_MIN_PERIODS)
    ("W", 1400.0, 56.0, (200, 104)),  # a longer weekly window than the floor is kept
])
def test_rate_windows_in_periods(freq: str, days: float, short_days: float, want: tuple[int, int]) -> None:
    cfg = processor_config(Settings(freq=freq, rate_window_days=days, rate_short_window_days=short_days))
    assert (cfg.rate_window_periods, cfg.rate_short_window_periods) == want


def test_policy_overrides_file(tmp_path: Path) -> None:
    f = tmp_path / "policies.json"
    f.write_text(json.dumps({"A@W": {"lead_time_periods": 14, "pack_size": 12}, "B": {"moq": 50}}))
    cfg = processor_config(Settings(policy_overrides_file=f))
    p = SkuProcessor(cfg)
    assert p.params_for("A@W").lead_time_periods == 14
    assert p.params_for("A@W").pack_size == 12
    assert p.params_for("B@X").moq == 50
    assert p.params_for("C@W") == cfg.policy
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"A": {"pack_size": 0}}))
    with pytest.raises(ValueError, match="invalid policy for 'A'"):
        load_policy_overrides(bad, cfg.policy)


def test_horizon_must_cover_lead_time_plus_review() -> None:
    with pytest.raises(ValueError, match="must cover lead time"):
        ProcessorConfig(horizon_periods=5, policy=PolicyParams(lead_time_periods=7))


@pytest.mark.parametrize(("freq", "lead_days", "explicit", "want"), [
    ("D", 7.0, None, 28),     # the 28-period default covers 7 + 1 days
    ("W", 7.0, None, 28),
    ("H", 7.0, None, 192),    # hourly: 7 days + 1 day of review = 192 hours
    ("D", 40.0, None, 41),    # a lead time longer than the default horizon
    ("H", 7.0, 200, 200),     # an explicit horizon is kept
])
def test_the_default_horizon_covers_the_default_policy(freq: str, lead_days: float, explicit: int | None,
                                                       want: int) -> None:
    s = Settings(freq=freq, lead_time_days=lead_days, forecast_horizon_periods=explicit)
    assert s.horizon_periods == want
    cfg = processor_config(s)  # (refused when the horizon does not cover the levels)
    assert cfg.horizon_periods == want
    cfg.check_horizon_covers(cfg.policy)


def test_an_explicit_horizon_shorter_than_the_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="must cover lead time"):
        processor_config(Settings(freq="H", forecast_horizon_periods=28))


def test_level_ratio_corrects_a_biased_mean_and_is_neutral_on_steady_demand() -> None:
    p = proc()
    steady, bulky = SkuState.new("S@W"), SkuState.new("B@W")
    for d in range(60):
        p.apply(steady, order(d, 10, sku="S"), EventMeta("orders", 0, d))
        # 5 units a day plus a recurring bulk order of 200 every 10 days
        p.apply(bulky, order(d, 5, sku="B"), EventMeta("orders", 0, 2 * d))
        if d % 10 == 9:
            p.apply(bulky, order(d, 200, sku="B", hour=11), EventMeta("orders", 0, 2 * d + 1))
    assert p.level_ratio(steady) == pytest.approx(1.0, abs=0.05)
    assert p.level_ratio(bulky) > 1.2  # the robust mean under-forecasts the bulk orders
    assert p.level_ratio(SkuState.new("N@W")) == 1.0  # no history: no correction


def test_counters_are_read_from_the_core_bytes_alone() -> None:
    st = SkuState.new("A@W")
    st.bump("reorders")
    st.bump("reorders")
    st.bump("overstocks")
    assert SkuState.decode_counters(st.encode_core()) == st.counters == {"reorders": 2, "overstocks": 1}
    with pytest.raises(ValueError):
        SkuState.decode_counters(b"\x93\x01\x02\x03")


def test_an_open_suggestion_that_no_longer_covers_the_need_is_replaced() -> None:
    """An open suggestion emitted before more demand (e.g. a top-up when a purchase order arrived,
    which on weekly data with a one-period lead time then blocked the full order and left SKUs at
    zero stock for months) is replaced once the quantity needed exceeds it by the re-emit
    fraction, and not before."""
    p = proc(min_history_periods=7)
    s = SkuState.new("A@W")
    p.apply(s, StockSnapshot(event_id="snap", occurred_at=T0, sku="A", location="W", on_hand=200),
            EventMeta("inventory", 0, 0))
    off = 1
    while s.reorder is None and off < 60:
        p.apply(s, order(off - 1, 10), EventMeta("orders", 0, off))
        off += 1
    first = s.reorder
    assert first is not None, "the SKU ran down to its reorder point"
    day = off - 2
    out = p.apply(s, order(day, 1, hour=15), EventMeta("orders", 0, off))
    assert not [x for x in out.decisions if x.kind == "reorder_suggested"], "one more unit: not material"
    assert s.reorder == first
    big = int(first.quantity * 0.5) + 5
    out = p.apply(s, order(day, big, hour=16), EventMeta("orders", 0, off + 1))
    reorders = [x for x in out.decisions if x.kind == "reorder_suggested"]
    assert len(reorders) == 1 and reorders[0].quantity > 1.25 * first.quantity
    assert s.reorder is not None and s.reorder.decision_id == reorders[0].event_id
