"""agents.supply: lead times learned from purchase orders and receipts (issue #20).

Convergence to the generating distribution, partial receipts and cancellations, the exact
pool, serialization, and the levels reading the learned lead time (scalar path; the column
review's equality is in test_review_sweep.py).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.forecasting.covariates import CovariatePool
from agents.pipeline import Pipeline, Record
from agents.policy import PolicyParams
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.state import InMemoryStateStore, SkuState
from agents.supply import (
    LeadTimeEstimator,
    LeadTimePool,
    lead_time_estimate,
    normal_posterior,
)
from schemas.events import encode_event
from schemas.inputs import (
    OrderPlaced,
    PurchaseOrderPlaced,
    StockReceived,
    StockSnapshot,
)

DAY = 86400
T0 = datetime(2011, 1, 3, tzinfo=UTC)


# --- convergence ----------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), family=st.sampled_from(["gamma", "normal"]),
       mean=st.floats(2.0, 20.0), cv=st.floats(0.1, 0.5), prior_error=st.floats(-0.3, 0.3))
def test_learned_mean_and_sd_converge_to_the_generating_distribution(
        seed: int, family: str, mean: float, cv: float, prior_error: float) -> None:
    """2,000 purchase orders with gamma or normal lead times (periods, continuous), a prior off by
    up to 30 %: the learned mean is within 5 % of the true mean (>= 4.5 standard errors) and the
    sd within 15 % of the true sd (>= 7 standard errors). Normal draws are truncated at 0 (at
    most 2.3 % of them): their own mean and sd are the reference."""
    rng = np.random.default_rng(seed)
    sd = cv * mean
    n = 2000
    if family == "gamma":
        leads = rng.gamma((mean / sd) ** 2, sd**2 / mean, n)
    else:
        leads = np.maximum(rng.normal(mean, sd, n), 0.0)
    est = LeadTimeEstimator()
    for i, lead in enumerate(leads.tolist()):
        start = i * 3 * DAY
        est.place(f"po{i}", 10, ordered_at=start + int(rng.integers(0, DAY)),
                  expected_at=start + round(mean * DAY), period_start_at=start)
        assert est.receive(f"po{i}", 10, at=start + round(lead * DAY), period_s=DAY) is not None
    prior = mean * (1 + prior_error)
    e = lead_time_estimate(est, None, prior, 0.0, prior_receipts=4)
    true_mean, true_sd = float(leads.mean()) if family == "normal" else mean, sd
    if family == "normal":  # truncation at 0 is negligible for cv <= 0.5 (2 sd), but use the draws
        true_sd = float(leads.std())
    assert e.receipts == n
    assert abs(e.mean_periods - true_mean) <= 0.05 * true_mean
    assert abs(e.std_periods - true_sd) <= 0.15 * true_sd
    assert est.late_mean == pytest.approx(est.mean - round(mean * DAY) / DAY, abs=1e-9)  # vs expected


def test_normal_posterior_is_the_prior_without_data_and_the_data_without_prior_weight() -> None:
    assert normal_posterior(0, 0.0, 0.0, 7.0, 2.0, 4) == (7.0, 2.0)
    mu, var = normal_posterior(10, 9.0, 18.0, 7.0, 0.0, 1e-9)
    assert mu == pytest.approx(9.0) and var == pytest.approx(1.8)
    with pytest.raises(ValueError):
        normal_posterior(1, 1.0, 0.0, 1.0, 1.0, 0.0)


# --- partial receipts and cancellations ---------------------------------------------------------
po_plan = st.tuples(st.integers(1, 50),  # units ordered
                    st.lists(st.tuples(st.integers(1, 30), st.integers(1, 20)), max_size=4),  # (units, day)
                    st.booleans())  # cancelled after its receipts


@settings(max_examples=200, deadline=None)
@given(plans=st.lists(po_plan, min_size=1, max_size=12))
def test_observations_count_completed_and_partially_received_cancelled_orders_only(plans: list) -> None:
    """n == purchase orders completely received + cancelled after a partial receipt; a cancelled
    order without a receipt never observes; each observation is the unit-weighted lead time."""
    est = LeadTimeEstimator()
    expected_leads: list[float] = []
    for i, (qty, receipts, cancelled) in enumerate(plans):
        po = f"po{i}"
        start = i * 100 * DAY
        est.place(po, qty, ordered_at=start + 5, expected_at=start + 7 * DAY, period_start_at=start)
        got, weighted, done = 0, 0.0, False
        for units, day in sorted(receipts, key=lambda r: r[1]):
            obs = est.receive(po, units, at=start + day * DAY, period_s=DAY)
            if done:
                assert obs is None  # a completed order is closed: later receipts are not observations
                continue
            got += units
            weighted += units * day
            if got >= qty:
                done = True
                assert obs is not None and obs[0] == pytest.approx(weighted / got)
                assert obs[1] == pytest.approx(weighted / got - 7)
                expected_leads.append(weighted / got)
            else:
                assert obs is None
        if cancelled:
            obs = est.cancel(po, period_s=DAY)
            if done or got == 0:
                assert obs is None
            else:
                assert obs is not None and obs[0] == pytest.approx(weighted / got)
                expected_leads.append(weighted / got)
    assert est.n == len(expected_leads)
    if expected_leads:
        assert est.mean == pytest.approx(float(np.mean(expected_leads)))
    if len(expected_leads) > 1:
        assert est.std == pytest.approx(float(np.std(expected_leads, ddof=1)), abs=1e-9)
    # round trip: the same estimator, byte for byte
    assert LeadTimeEstimator.from_list(est.to_list()) == est


def test_unknown_or_missing_purchase_orders_are_no_observation() -> None:
    est = LeadTimeEstimator()
    assert est.receive(None, 5, at=DAY, period_s=DAY) is None
    assert est.receive("nope", 5, at=DAY, period_s=DAY) is None
    assert est.cancel("nope", period_s=DAY) is None
    assert est.n == 0 and not est


# --- the pool ------------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(obs=st.lists(st.tuples(st.sampled_from(["", "a", "b"]), st.floats(-10, 30, allow_nan=False)),
                    min_size=1, max_size=30), perm=st.randoms(use_true_random=False))
def test_pool_sums_do_not_depend_on_the_order_of_observations(obs: list, perm) -> None:  # noqa: ANN001
    a, b = LeadTimePool(), LeadTimePool()
    for g, d in obs:
        a.add(g, d)
    shuffled = list(obs)
    perm.shuffle(shuffled)
    for g, d in shuffled:
        b.add(g, d)
    assert a.live == b.live
    assert a.publish() and not a.publish()
    n, mean, m2 = a.moments("a")
    ds = [d for g, d in obs if g == "a"]
    assert n == len(ds)
    if ds:
        assert mean == pytest.approx(np.mean(ds), abs=1e-4)
        assert m2 == pytest.approx(float(np.sum((np.array(ds) - np.mean(ds)) ** 2)), abs=1e-3 * (1 + len(ds)))
    assert LeadTimePool.from_list(a.to_list()) == a


def test_covariate_pool_encodes_as_before_without_lead_times_and_round_trips_with_them() -> None:
    pool = CovariatePool()
    before = pool.to_list()
    assert len(before) == 5  # nothing new encoded while unused
    pool.lead_times.add("sup", 1.5)
    pool.publish(DAY)
    data = pool.to_list()
    assert data[5] is None and len(data) == 7  # no controller state, the lead-time pool after it
    back = CovariatePool.from_list(data)
    assert back.lead_times == pool.lead_times and back.to_list() == data
    served = CovariatePool()
    served.service.add(3, 10)  # a pre-#20 pool with a controller: six fields
    old = served.to_list()
    assert len(old) == 6
    back = CovariatePool.from_list(old)
    assert not back.lead_times and back.service == served.service and back.to_list() == old


def test_estimate_pools_the_supplier_group_while_the_sku_has_no_receipts() -> None:
    pool = LeadTimePool()
    for _ in range(20):
        pool.add("acme", 3.0)  # acme delivers 3 periods later than configured
    pool.publish()
    est = LeadTimeEstimator(supplier="acme")
    e = lead_time_estimate(est, pool, 7.0, 1.0, prior_receipts=4)
    assert e.source == "learned" and e.receipts == 0 and e.pool_receipts == 20
    assert e.mean_periods == pytest.approx(7.0 + 3.0 * 20 / 24)
    other = lead_time_estimate(LeadTimeEstimator(supplier="zeta"), pool, 7.0, 1.0, prior_receipts=4)
    assert (other.mean_periods, other.std_periods, other.source) == (7.0, 1.0, "config")


# --- the SKU processor ----------------------------------------------------------------------------
def _events(late_days: int) -> list:
    """60 days of 5 units a day, three purchase orders (7 days nominal) received ``late_days`` late."""
    evs: list = [StockSnapshot(event_id="seed", occurred_at=T0, sku="A", location="W", on_hand=100)]
    for d in range(60):
        at = T0 + timedelta(days=d, hours=10)
        evs.append(OrderPlaced(event_id=f"o{d}", occurred_at=at, sku="A", location="W", order_id=f"o{d}",
                               quantity=5, unit_price=1.0))
        if d in (10, 25, 40):
            po = f"po{d}"
            placed = T0 + timedelta(days=d, hours=12)
            evs.append(PurchaseOrderPlaced(event_id=f"pp{d}", occurred_at=placed, sku="A", location="W",
                                           purchase_order_id=po, quantity=35,
                                           expected_arrival=T0 + timedelta(days=d + 7)))
            evs.append(StockReceived(event_id=f"r{d}", occurred_at=T0 + timedelta(days=d + 7 + late_days),
                                     sku="A", location="W", quantity=35, purchase_order_id=po))
    return sorted(evs, key=lambda e: e.occurred_at)


def _run(config: ProcessorConfig, events: list) -> tuple[SkuState, SkuProcessor]:
    proc = SkuProcessor(config)
    state = SkuState.new("A@W")
    for off, ev in enumerate(events):
        proc.apply(state, ev, EventMeta("inventory" if not isinstance(ev, OrderPlaced) else "orders", 0, off))
    return state, proc


def _config(learning: bool) -> ProcessorConfig:
    return ProcessorConfig(policy=PolicyParams(lead_time_periods=7.0), lead_time_learning=learning,
                           covariates=False)


def test_late_receipts_raise_the_learned_lead_time_and_the_levels() -> None:
    on_time, proc = _run(_config(True), _events(0))
    late, _ = _run(_config(True), _events(4))
    d_on, d_late = proc.derived(on_time), proc.derived(late)
    assert d_on is not None and d_late is not None
    assert d_on.params.lead_time_periods == pytest.approx(7.0)  # on time: the prior confirmed
    assert d_late.params.lead_time_periods == pytest.approx(7.0 + 4 * 3 / 7)  # 3 receipts vs a prior of 4
    assert d_late.params.lead_time_std_periods > 0
    assert d_late.lead_time is not None and d_late.lead_time.receipts == 3
    assert d_late.levels.reorder_point > d_on.levels.reorder_point
    assert late.lead_time.late_mean == pytest.approx(4.0) and late.lead_time.late_std == pytest.approx(0.0)


@settings(max_examples=30, deadline=None)
@given(weekday_s=st.integers(0, 7 * DAY - 1), lead_weeks=st.integers(1, 3))
def test_weekly_lead_times_are_counted_from_the_monday_of_the_order_week(weekday_s: int,
                                                                          lead_weeks: int) -> None:
    """Weeks start on Monday (``period_start``), not at a multiple of 7 days since the epoch (a
    Thursday): an order placed any time in a week and received on the Monday ``lead_weeks`` later
    is ``lead_weeks`` periods, exactly, whatever the weekday it was placed (a floor at the epoch's
    Thursday learned 4/7 of a week for a one-week lead time on the cheese panel)."""
    policy = PolicyParams(lead_time_periods=float(lead_weeks), periods_per_year=52.0)
    cfg = ProcessorConfig(freq="W", policy=policy, lead_time_learning=True, covariates=False,
                          horizon_periods=12, min_history_periods=4)
    evs: list = [StockSnapshot(event_id="seed", occurred_at=T0, sku="A", location="W", on_hand=100)]
    for w in (1, 5, 9):  # T0 is a Monday
        placed = T0 + timedelta(weeks=w, seconds=weekday_s)
        evs.append(PurchaseOrderPlaced(event_id=f"pp{w}", occurred_at=placed, sku="A", location="W",
                                       purchase_order_id=f"po{w}", quantity=10,
                                       expected_arrival=T0 + timedelta(weeks=w + lead_weeks)))
        evs.append(StockReceived(event_id=f"r{w}", occurred_at=T0 + timedelta(weeks=w + lead_weeks),
                                 sku="A", location="W", quantity=10, purchase_order_id=f"po{w}"))
    state, _ = _run(cfg, sorted(evs, key=lambda e: e.occurred_at))
    assert state.lead_time.n == 3
    assert state.lead_time.mean == pytest.approx(float(lead_weeks))
    assert state.lead_time.std == pytest.approx(0.0)
    assert state.lead_time.late_mean == pytest.approx(0.0)


def test_learning_off_keeps_the_configured_lead_time_and_the_state_format() -> None:
    state, proc = _run(_config(False), _events(4))
    d = proc.derived(state)
    assert d is not None and d.params.lead_time_periods == 7.0 and d.lead_time is None
    assert not state.lead_time
    core = SkuState.decode(state.encode())
    assert core.encode() == state.encode()
    import msgpack

    ext = msgpack.unpackb(state.encode_core(), raw=False, strict_map_key=False)[11]
    assert "lt" not in ext


def test_state_with_lead_times_round_trips_byte_identically() -> None:
    state, _ = _run(_config(True), _events(2))
    blob = state.encode()
    back = SkuState.decode(blob)
    assert back.lead_time == state.lead_time and back.encode() == blob


def test_explanation_shows_the_learned_lead_time_in_periods_and_days_and_its_receipts() -> None:
    """Through the pipeline (the pool publishes the supplier group): the decisions of a SKU
    whose purchase orders arrive 4 days late carry the learned lead time."""
    evs = _events(4)
    recs = [Record("orders" if isinstance(e, OrderPlaced) else "inventory", 0, i, e.key.encode(),
                   encode_event(e)) for i, e in enumerate(evs)]
    cfg = ProcessorConfig(policy=PolicyParams(lead_time_periods=7.0, fill_rate=0.95), lead_time_learning=True,
                          covariates=False, fill_control=True)
    pipe = Pipeline(SkuProcessor(cfg), InMemoryStateStore(),
                    {"orders": "orders", "inventory": "inventory", "promotions": "promotions"})
    xs = [json.loads(v)["explanation"] for i in range(0, len(recs), 7)
          for _, v in pipe.process(recs[i: i + 7]).decisions]
    assert xs
    last = xs[-1]
    assert xs[0]["lead_time_receipts"] < last["lead_time_receipts"]
    assert xs[0]["lead_time_periods"] < last["lead_time_periods"]
    assert last["lead_time_receipts"] >= 1 and last["lead_time_pool_receipts"] >= 1
    assert last["lead_time_periods"] > 7.0
    assert math.isclose(last["lead_time_days"], round(last["lead_time_periods"], 4))
