"""agents.policy.controller: the partition's fill-rate controller, alone and inside the pipeline."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.forecasting.covariates import CovariatePool
from agents.pipeline import Pipeline, Record
from agents.policy import PolicyParams
from agents.policy.controller import LOG_RANGE, ServiceController
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.state import InMemoryStateStore, SkuState, pool_key
from schemas.codec import encode_event
from schemas.events import OrderPlaced, StockSnapshot

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(periods=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1, max_size=30),
       target=st.floats(0.5, 0.999))
def test_each_step_moves_the_cost_toward_the_target_and_stays_bounded(periods: list, target: float) -> None:
    c = ServiceController()
    for lost_raw, demand in periods:
        lost = min(lost_raw, demand)
        before = c.log_cost
        c.add(lost, demand)
        c.step(target)
        gap = lost - (1.0 - target) * demand
        if c.ew_demand > 0 and abs(before) < LOG_RANGE:
            # too many units lost: a lost unit costs more (higher levels); too few: less
            assert math.copysign(1.0, c.log_cost - before) == math.copysign(1.0, gap) or c.log_cost == before
            if c.log_cost == before:
                assert gap == 0 or abs(c.log_cost) == LOG_RANGE
        assert abs(c.log_cost) <= LOG_RANGE
        assert c.lost_seen == c.lost and c.demand_seen == c.demand
    assert ServiceController.from_list(c.to_list()) == c


@pytest.mark.parametrize("target", [0.90, 0.95, 0.98])
def test_a_partition_meets_its_fill_rate_target(target: float) -> None:
    """A toy partition whose loss fraction falls with the cost: the achieved fill converges.

    50 SKUs with Poisson demand; a SKU loses the share ``a / (1 + p / c)`` of its units at cost
    ``p`` (``a`` differs per SKU): the controller knows nothing of it and must find the ``p``
    that serves ``target`` of the units.
    """
    rng = np.random.default_rng(7)
    a = rng.uniform(0.05, 0.6, 50)
    rate = rng.uniform(1.0, 40.0, 50)
    c, base = ServiceController(), 0.1
    served = demanded = 0
    for period in range(600):
        p = base * c.multiplier
        demand = rng.poisson(rate)
        lost = rng.binomial(demand, a / (1.0 + p / 0.05))
        for d, lo in zip(demand, lost, strict=True):
            c.add(int(lo), int(d))
        c.step(target)
        if period >= 400:
            demanded += int(demand.sum())
            served += int((demand - lost).sum())
    assert served / demanded == pytest.approx(target, abs=0.01)


def test_a_pool_without_controller_activity_encodes_as_before() -> None:
    pool = CovariatePool()
    assert len(pool.to_list()) == 5  # byte-compatible with states written before the controller
    pool.service.add(3, 10)
    pool.publish(86_400, 0.95)
    again = CovariatePool.from_list(pool.to_list())
    assert again.service == pool.service and again.service.log_cost > 0.0
    old = CovariatePool.from_list(CovariatePool().to_list())
    assert old.service == ServiceController()


def _records(days: int, skus: tuple[str, ...], seed: int) -> list[Record]:
    rng = np.random.default_rng(seed)
    out: list[Record] = []
    for sku in skus:  # a little stock each: most orders end short
        ev = StockSnapshot(event_id=f"s-{sku}", occurred_at=T0, sku=sku, location="W1", on_hand=30)
        out.append(Record("inventory", 0, len(out), ev.key.encode(), encode_event(ev)))
    off = 0
    for d in range(days):
        for sku in skus:
            q = int(rng.integers(1, 9))
            ev = OrderPlaced(event_id=f"{sku}-{d}", occurred_at=T0 + timedelta(days=d, hours=9), sku=sku,
                             location="W1", order_id=f"{sku}-{d}", quantity=q, unit_price=2.0)
            out.append(Record("orders", 0, off, ev.key.encode(), encode_event(ev)))
            off += 1
    return out


def _config() -> ProcessorConfig:
    return ProcessorConfig(policy=PolicyParams(lead_time_periods=7, fill_rate=0.95), covariates=False,
                           fill_control=True)


def test_the_pipeline_counts_every_unit_once_and_replays_identically() -> None:
    """Conservation (the controller's units are the SKUs' units) and replay determinism."""
    recs = _records(40, ("A", "B", "C", "D"), seed=3)
    runs = []
    for batch, cache in ((5, 2), (64, 100)):
        store = InMemoryStateStore()
        pipe = Pipeline(SkuProcessor(_config()), store, {"orders": "orders", "inventory": "inventory"},
                        cache_size=cache)
        for i in range(0, len(recs), batch):
            out = pipe.process(recs[i:i + batch])
            store.save_many(out.dirty, out.partition_of)
        runs.append({k: store._blobs[k][1] for k in store.keys()})
    assert runs[0] == runs[1]
    states = {k: SkuState.decode(v) for k, v in runs[0].items()}
    pool = states.pop(pool_key(0)).pool
    assert pool is not None
    ctl = pool.service
    assert ctl.demand == sum(s.counters.get("orders_units", 0) for s in states.values())
    assert ctl.lost == sum(s.counters.get("lost_units", 0) for s in states.values()) > 0
    assert ctl.steps > 30 and ctl.log_cost > 0.0  # short of stock all along: the cost rose


def test_a_sku_reads_the_learned_cost_as_its_critical_fractile() -> None:
    cfg = _config()
    proc = SkuProcessor(cfg)
    st_ = SkuState.new("A@W1")
    for i, r in enumerate(_records(30, ("A",), seed=1)[1:]):
        proc.apply(st_, _decode(r), EventMeta("orders", 0, i))
    cheap, dear = CovariatePool(), CovariatePool()
    dear.service.log_cost = 4.0
    for pool, b in ((cheap, 10), (dear, 10)):
        pool.boundary = b
    lo = proc.deriver.service_params(st_, cfg.policy, cheap)
    hi = proc.deriver.service_params(st_, cfg.policy, dear)
    assert lo.fill_rate is None and hi.fill_rate is None
    assert hi.cycle_service_level > lo.cycle_service_level
    # the formula path (controller off) keeps the fill-rate target
    off = SkuProcessor(ProcessorConfig(policy=cfg.policy, covariates=False))
    assert off.deriver.service_params(st_, cfg.policy, dear).fill_rate == 0.95


def _decode(rec: Record) -> OrderPlaced:
    from schemas.codec import decode_for_topic_role

    ev = decode_for_topic_role("orders", rec.value)
    assert isinstance(ev, OrderPlaced)
    return ev


@settings(max_examples=60, deadline=None)
@given(units=st.lists(st.integers(0, 500), min_size=3, max_size=40), k=st.floats(0.1, 10.0))
def test_lumpiness_discount_lowers_a_lumpy_skus_level_and_never_raises_one(units: list, k: float) -> None:
    """``1 + k CV^2`` on the holding cost: the level falls with k, exactly as CV^2 says; k = 0 is off."""
    base = ProcessorConfig(policy=PolicyParams(lead_time_periods=7), covariates=False, lost_unit_cost=0.5)
    lumpy = ProcessorConfig(policy=base.policy, covariates=False, lost_unit_cost=0.5, lumpiness_discount=k)
    st_ = SkuState.new("A@W1")
    for u in units:
        st_.inventory_demand.update(float(u), capacity=base.rate_window_periods,
                                    long_span=base.dispersion_span_periods)
    cv2 = st_.inventory_demand.cv2(long_span=base.dispersion_span_periods)
    off = SkuProcessor(base).deriver.service_params(st_, base.policy).cycle_service_level
    on = SkuProcessor(lumpy).deriver.service_params(st_, base.policy).cycle_service_level
    assert on <= off
    if cv2 == 0.0:
        assert on == off
    h = base.policy.holding_cost_rate * base.policy.unit_cost * base.policy.review_period_periods \
        / base.policy.periods_per_year
    expected = 0.5 / (0.5 + h * (1.0 + k * cv2))
    assert on == pytest.approx(min(max(expected, 0.5), 1.0 - 1e-9))
