"""agents.review.sweep: the column review gives the scalar review's states and decisions, byte for byte.

Two pipelines read the same record sequence, one with ``column_review=False`` (per-SKU
``SkuProcessor.advance``) and one with the default column review; after every batch the
decision events (bytes, in order), the dirty states' encodings and finally every cached state
must be equal. Scenarios: daily and weekly periods, fill-rate and cycle-service-level targets,
normal and negative binomial demand, covariates on and off, per-SKU overrides (a second policy
group with packs and an MOQ), the per-SKU critical fractile (``lost_unit_cost``), run-time
policies (``policies`` topic: SKUs with equal, different and deleted policies), learned lead
times (``lead_time_learning``: per-SKU lead-time columns, several levels horizons) and censored
demand (``stockout_demand="hidden"``: imputed periods, the controller's unseen units).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.pipeline import Pipeline, Record
from agents.policy import PolicyParams
from agents.processor import ProcessorConfig, SkuProcessor
from agents.state import InMemoryStateStore
from schemas.events import encode_event
from schemas.inputs import (
    OrderPlaced,
    PolicySet,
    PromotionPlanned,
    PurchaseOrderPlaced,
    StockReceived,
    StockSnapshot,
)

T0 = datetime(2011, 1, 3, tzinfo=UTC)
ROLES = {"orders": "orders", "inventory": "inventory", "promotions": "promotions", "policies": "policies"}


def _records(seed: int, weekly: bool, n_skus: int, periods: int) -> list[Record]:
    """A partition's records in event-time order: lumpy orders, stock counts, purchase orders,
    receipts, promotions; some SKUs fall silent (their periods close by the watermark only)."""
    rng = np.random.default_rng(seed)
    step = timedelta(weeks=1) if weekly else timedelta(days=1)
    events: list[tuple[datetime, str, object]] = []
    skus = [f"S{i}" for i in range(n_skus)]
    for i, sku in enumerate(skus):
        rate = float(rng.choice([0.2, 1.0, 4.0, 15.0]))
        events.append((T0 + timedelta(minutes=i), "inventory", StockSnapshot(
            event_id=f"{sku}-seed", occurred_at=T0 + timedelta(minutes=i), sku=sku, location="W",
            on_hand=int(rng.integers(0, 80)))))
        silent_from = int(rng.integers(periods // 2, periods + 1)) if i % 3 == 2 else periods
        for p in range(silent_from):
            base = T0 + p * step
            for j in range(int(rng.poisson(rate))):
                at = base + timedelta(hours=int(rng.integers(1, 20)), minutes=j)
                qty = int(rng.integers(1, 4)) if rng.random() > 0.05 else int(rng.integers(20, 60))
                events.append((at, "orders", OrderPlaced(
                    event_id=f"{sku}-o{p}-{j}", occurred_at=at, sku=sku, location="W",
                    order_id=f"{sku}-{p}-{j}", quantity=qty, unit_price=float(rng.choice([2.0, 2.0, 1.5])),
                    customer_id=f"c{int(rng.integers(0, 4))}")))
            if rng.random() < 0.08:
                at = base + timedelta(hours=21)
                po = f"{sku}-po{p}"
                qty = int(rng.integers(5, 200))
                events.append((at, "inventory", PurchaseOrderPlaced(
                    event_id=f"{sku}-pp{p}", occurred_at=at, sku=sku, location="W", purchase_order_id=po,
                    quantity=qty, expected_arrival=at + 3 * step, supplier_id=f"sup{p % 2}")))
                if rng.random() < 0.8:
                    arr = at + int(rng.integers(1, 5)) * step
                    events.append((arr, "inventory", StockReceived(
                        event_id=f"{sku}-r{p}", occurred_at=arr, sku=sku, location="W", quantity=qty,
                        purchase_order_id=po)))
            if rng.random() < 0.03:
                at = base + timedelta(hours=22)
                events.append((at, "inventory", StockSnapshot(
                    event_id=f"{sku}-c{p}", occurred_at=at, sku=sku, location="W",
                    on_hand=int(rng.integers(0, 400)))))
            if rng.random() < 0.04:
                at = base + timedelta(hours=23)
                events.append((at, "promotions", PromotionPlanned(
                    event_id=f"{sku}-pr{p}", occurred_at=at, sku=sku, location="W", promotion_id=f"{sku}-{p}",
                    valid_from=at + step, valid_to=at + 3 * step, promo_kind="discount", depth=0.3)))
    events.sort(key=lambda e: (e[0], e[1]))
    return [Record(topic, 0, off, ev.key.encode(), encode_event(ev))  # type: ignore[attr-defined]
            for off, (_, topic, ev) in enumerate(events)]


def _config(weekly: bool, target: str, dist: str, covariates: bool, extra: str) -> ProcessorConfig:
    lead = 2.0 if weekly else 5.0
    kw: dict = {"lead_time_periods": lead, "periods_per_year": 52.0 if weekly else 365.0,
                "distribution": dist}
    kw["fill_rate" if target == "fill" else "cycle_service_level"] = 0.95
    policy = PolicyParams(**kw)
    cfg: dict = {"freq": "W" if weekly else "D", "policy": policy, "covariates": covariates,
                 "horizon_periods": 12 if weekly else 28, "min_history_periods": 8 if weekly else 28}
    if extra == "overrides":
        cfg["overrides"] = {"S1": policy.with_overrides(pack_size=6, moq=12, lead_time_std_periods=1.0,
                                                        review_period_periods=2.0),
                            "S2@W": policy.with_overrides(ordering_cost=20.0, overstock_cover_periods=10.0)}
    elif extra == "lost_unit_cost":
        cfg["lost_unit_cost"] = 4.0
    elif extra == "lead_times":  # learned per-SKU lead times, pooled per supplier, several groups
        cfg["overrides"] = {"S1": policy.with_overrides(pack_size=6, lead_time_std_periods=1.0,
                                                        review_period_periods=2.0)}
        cfg["lead_time_learning"] = True
        cfg["lead_time_prior_receipts"] = 1.0
        cfg["fill_control"] = True
    elif extra == "fill_control":  # the partition's learned lost-unit cost (with a fill-rate target)
        cfg["fill_control"] = True
        cfg["lumpiness_discount"] = 1.0
    elif extra == "buyers":  # repeat bulk buyers out of the window, at most two kept per SKU
        cfg["fill_control"] = True
        cfg["lumpiness_discount"] = 1.0
        cfg["repeat_buyers"] = True
        cfg["repeat_buyers_max"] = 2
    elif extra == "hidden":  # censored periods: imputed demand, the controller counts unseen units
        cfg["fill_control"] = True
        cfg["stockout_demand"] = "hidden"
    return ProcessorConfig(**cfg)


def _compare(records: list[Record], config: ProcessorConfig, batch: int) -> int:
    """Run both paths batch by batch; assert equal outputs and states; return the decisions seen."""
    stores = InMemoryStateStore(), InMemoryStateStore()
    scalar = Pipeline(SkuProcessor(config), stores[0], ROLES, column_review=False)
    column = Pipeline(SkuProcessor(config), stores[1], ROLES)
    seen = 0
    for i in range(0, len(records), batch):
        chunk = records[i: i + batch]
        a, b = scalar.process(chunk), column.process(chunk)
        assert b.decisions == a.decisions
        assert b.dead_letters == a.dead_letters
        assert [s.key for s in b.dirty] == [s.key for s in a.dirty]
        assert [s.encode() for s in b.dirty] == [s.encode() for s in a.dirty]
        assert (b.periods_closed, b.decision_kinds) == (a.periods_closed, a.decision_kinds)
        stores[0].save_many(a.dirty, a.partition_of)
        stores[1].save_many(b.dirty, b.partition_of)
        seen += len(a.decisions)
    assert sorted(column.cache) == sorted(scalar.cache)
    for key, state in scalar.cache.items():
        assert column.cache[key].encode() == state.encode(), key
    return seen


@pytest.mark.parametrize(("weekly", "target", "dist", "covariates", "extra"), [
    (False, "fill", "normal", False, ""),
    (False, "csl", "negbin", True, "overrides"),
    (True, "fill", "negbin", True, ""),
    (True, "csl", "normal", False, "lost_unit_cost"),
    (False, "fill", "negbin", False, "fill_control"),
    (True, "fill", "normal", True, "fill_control"),
    (False, "fill", "normal", True, "lead_times"),
    (True, "csl", "negbin", False, "lead_times"),
    (False, "fill", "normal", False, "hidden"),
    (True, "fill", "negbin", True, "hidden"),
    (False, "fill", "normal", False, "buyers"),
    (True, "csl", "negbin", True, "buyers"),
])
def test_column_review_equals_scalar_review(weekly: bool, target: str, dist: str, covariates: bool,
                                            extra: str) -> None:
    records = _records(seed=7, weekly=weekly, n_skus=6, periods=20 if weekly else 45)
    config = _config(weekly, target, dist, covariates, extra)
    decisions = _compare(records, config, batch=9)
    assert decisions > 0  # the scenario decides (else the comparison proves little)
    if config.lead_time_learning:  # and the levels read learned lead times (else it proves little)
        store = InMemoryStateStore()
        pipe = Pipeline(SkuProcessor(config), store, ROLES)
        out = [d for i in range(0, len(records), 9) for d in pipe.process(records[i: i + 9]).decisions]
        import json

        xs = [json.loads(v)["explanation"] for _, v in out]
        assert any((x["lead_time_receipts"] or 0) > 0 for x in xs)
        assert len({x["lead_time_periods"] for x in xs}) > 2
    if extra == "hidden":  # the scenario has censored periods (else it proves little about them)
        pipe = Pipeline(SkuProcessor(config), InMemoryStateStore(), ROLES)
        pipe.process(records)
        assert sum(s.counters.get("censored_periods", 0) for s in pipe.cache.values()) > 0
    if extra == "buyers":  # the levels read repeat buyers (else it proves little about them)
        pipe = Pipeline(SkuProcessor(config), InMemoryStateStore(), ROLES)
        pipe.process(records)
        assert any(s.buyers.known for s in pipe.cache.values())


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), weekly=st.booleans(), target=st.sampled_from(["fill", "csl"]),
       dist=st.sampled_from(["normal", "negbin"]), covariates=st.booleans(),
       extra=st.sampled_from(["", "overrides", "lost_unit_cost", "fill_control", "lead_times", "hidden",
                              "buyers"]),
       batch=st.integers(1, 40))
def test_column_review_equals_scalar_review_on_generated_partitions(
        seed: int, weekly: bool, target: str, dist: str, covariates: bool, extra: str, batch: int) -> None:
    records = _records(seed=seed, weekly=weekly, n_skus=4, periods=12 if weekly else 30)
    _compare(records, _config(weekly, target, dist, covariates, extra), batch=batch)


# --- crafted states: every branch of decide (expiry, re-emission, overstock open/reset) -----------
_HISTORY: dict[tuple[bool, str, str], list] = {}


def _learned_states(weekly: bool, target: str, dist: str) -> tuple[SkuProcessor, list]:
    """Four SKUs that learned a few periods of different demand (cached per configuration)."""
    key = (weekly, target, dist)
    cfg = _config(weekly, target, dist, False, "overrides")
    proc = SkuProcessor(cfg)
    if key not in _HISTORY:
        from agents.processor import EventMeta
        from agents.state import SkuState

        step = timedelta(weeks=1) if weekly else timedelta(days=1)
        states = []
        for i, per_period in enumerate([0, 1, 5, 40]):
            st_ = SkuState.new(f"S{i}@W")
            off = 0
            for p in range(10):
                for j in range(per_period if p % (i + 1) == 0 else 0):
                    at = T0 + p * step + timedelta(hours=9, minutes=j)
                    ev = OrderPlaced(event_id=f"e{p}-{j}", occurred_at=at, sku=f"S{i}", location="W",
                                     order_id=f"o{p}-{j}", quantity=1 + j % 3, unit_price=2.0)
                    proc.apply(st_, ev, EventMeta("orders", 0, off))
                    off += 1
            st_.derived = None
            states.append(st_)
        _HISTORY[key] = states
    return proc, _HISTORY[key]


@settings(max_examples=60, deadline=None)
@given(weekly=st.booleans(), target=st.sampled_from(["fill", "csl"]),
       dist=st.sampled_from(["normal", "negbin"]),
       rows=st.lists(st.tuples(
           st.integers(0, 600), st.integers(0, 20),
           st.one_of(st.none(), st.tuples(st.integers(-20, 20), st.floats(0.0, 500.0), st.integers(1, 400))),
           st.booleans(),
           st.lists(st.tuples(st.integers(1, 400), st.integers(-3, 40)), max_size=2)),
           min_size=4, max_size=4))
def test_column_decide_equals_scalar_decide_on_crafted_states(weekly: bool, target: str, dist: str,
                                                             rows: list) -> None:
    import copy

    from agents.processor import EventMeta
    from agents.review.sweep import PeriodReview
    from agents.state import OpenDecision

    proc, learned = _learned_states(weekly, target, dist)
    step = 7 * 86400 if weekly else 86400
    wm = int((T0 + (11 * step) * timedelta(seconds=1)).timestamp()) + 7200
    states = []
    for st_, (on_hand, back, open_, over, pos) in zip(learned, rows, strict=True):
        s = copy.deepcopy(st_)
        s.position.on_hand, s.position.backorders = on_hand, back
        s.position.purchase_orders = {f"po{k}": [q, wm + d * step] for k, (q, d) in enumerate(pos)}
        if open_ is not None:
            s.reorder = OpenDecision("open", open_[2], wm - 20 * step, wm + open_[0] * 3600, open_[1])
        s.overstock = OpenDecision("over", 5, wm - step, wm + step) if over else None
        states.append(s)
    a, b = copy.deepcopy(states), copy.deepcopy(states)
    meta = EventMeta("orders", 0, 12345)
    ra = [proc.advance(s, wm, meta, "trigger", None) for s in a]
    rb = PeriodReview(proc).run(b, wm, meta, "trigger", None)
    for x, y, sa, sb in zip(ra, rb, a, b, strict=True):
        assert (y.status, y.periods_closed) == (x.status, x.periods_closed)
        assert [encode_event(d) for d in y.decisions] == [encode_event(d) for d in x.decisions]
        assert sb.encode() == sa.encode()


def test_liveness_mask_counts_a_review_that_ends_without_an_order() -> None:
    # IP = s = S with demand over L + R: the order quantity is 0, nothing is open afterwards
    from agents.review.kernel import LevelColumns, decide_masks

    one = np.array([10.0])
    lv = LevelColumns(one, one, one, one, one, one, one, one, one, one * 0, one, one, None)
    common = {"open_expires_at": [0], "open_level": [0.0], "open_quantity": [0], "has_overstock": [False],
              "reemit_change_fraction": 0.25}
    dm = decide_masks([10], lv, 5, has_open=[False], **common)
    assert (dm.reorder.tolist(), dm.liveness_violation.tolist()) == ([False], [True])
    # an open suggestion that has not expired keeps the SKU live; an expired one does not
    assert decide_masks([10], lv, 5, has_open=[True], **{**common, "open_expires_at": [6]}
                        ).liveness_violation.tolist() == [False]
    assert decide_masks([10], lv, 6, has_open=[True], **{**common, "open_expires_at": [6]}
                        ).liveness_violation.tolist() == [True]
    quiet = decide_masks([10], lv, 5, has_open=[False], review=False, **common)
    assert quiet.liveness_violation.tolist() == [False]


def _with_policies(records: list[Record], seed: int, weekly: bool, n_skus: int, periods: int) -> list[Record]:
    """``records`` with run-time policies merged in by event time (topic ``policies``, its own
    offsets): pairs of SKUs with equal policies (one group), a fill-rate target of its own, new
    versions, a stale one and tombstones."""
    from agents.alignment import event_time_s

    rng = np.random.default_rng(seed)
    step = timedelta(weeks=1) if weekly else timedelta(days=1)
    choices = [{"pack_size": 4, "moq": 8},
               {"lead_time_days": 14.0 if weekly else 9.0, "lead_time_std_days": 1.0},
               {"fill_rate": 0.9}, {"cycle_service_level": 0.8, "unit_cost": 3.0}, {"ordering_cost": 15.0}]
    pol: list[tuple[float, Record | None, bytes | None]] = []  # (time, record, tombstone key)
    version: dict[str, int] = {}
    for _ in range(3 * n_skus):
        sku = f"S{int(rng.integers(0, n_skus))}"
        at = T0 + int(rng.integers(1, periods)) * step + timedelta(hours=int(rng.integers(0, 24)))
        if rng.random() < 0.15:
            pol.append((at.timestamp(), None, f"{sku}@W".encode()))
            continue
        v = version[sku] = version.get(sku, 0) + int(rng.integers(0, 3))  # 0: a stale repeat
        params = choices[int(rng.integers(0, len(choices)))]
        ev = PolicySet(event_id=f"{sku}-pol{v}-{at.timestamp()}", occurred_at=at, sku=sku, location="W",
                       version=max(v, 1), **params)
        pol.append((at.timestamp(), Record("policies", 0, 0, ev.key.encode(), encode_event(ev)), None))
    pol.sort(key=lambda x: x[0])
    merged: list[tuple[float, int, Record | None, bytes | None]] = [
        (event_time_s(r.value), 1, r, None) for r in records]
    merged += [(t, 0, r, k) for t, r, k in pol]
    merged.sort(key=lambda x: (x[0], x[1]))
    out: list[Record] = []
    offset = 0
    for _, _, rec, key in merged:
        if rec is not None and rec.topic != "policies":
            out.append(rec)
            continue
        out.append(Record("policies", 0, offset, key, b"") if rec is None else
                   Record("policies", 0, offset, rec.key, rec.value))
        offset += 1
    return out


@pytest.mark.parametrize(("weekly", "target", "extra"), [
    (False, "fill", "fill_control"),
    (False, "csl", "overrides"),
    (True, "fill", ""),
])
def test_column_review_equals_scalar_review_with_run_time_policies(weekly: bool, target: str,
                                                                   extra: str) -> None:
    n, periods = 6, 20 if weekly else 45
    records = _with_policies(_records(seed=11, weekly=weekly, n_skus=n, periods=periods), 3, weekly, n,
                             periods)
    assert sum(r.topic == "policies" for r in records) >= n
    config = _config(weekly, target, "normal", False, extra)
    config = ProcessorConfig(**{**{f: getattr(config, f) for f in config.__dataclass_fields__},
                                "horizon_periods": 16 if weekly else 28})
    decisions = _compare(records, config, batch=7)
    assert decisions > 0
    # the policies are in force: some decided SKU carries one
    pipe = Pipeline(SkuProcessor(config), InMemoryStateStore(), ROLES)
    pipe.process(records)
    assert any(st.policy is not None for st in pipe.cache.values())
