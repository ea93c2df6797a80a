"""Covariates (issue #8): synthetic data with known elasticity and promotion lift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agents.forecasting import DemandForecaster, decode, encode
from agents.forecasting.covariates import CovariatePool
from agents.pipeline import Pipeline, Record
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.state import InMemoryStateStore, SkuState, is_pool_key, pool_key
from schemas.events import OrderPlaced, PromotionPlanned, StockSnapshot, encode_event

ELASTICITY = -2.0
DISPLAY_LIFT = np.log(1.8)  # display at the regular price sells 1.8x


def _synthetic(rng: np.random.Generator, periods: int, base: float):
    """Per period: (demand, price ratio, display flag) with known effects, Poisson noise."""
    for _t in range(periods):
        ratio = 1.0
        display = 0.0
        u = rng.random()
        if u < 0.12:
            ratio = float(rng.choice([0.7, 0.8, 0.9]))
        elif u < 0.22:
            display = 1.0
        mu = base * np.exp(ELASTICITY * np.log(ratio) + DISPLAY_LIFT * display)
        yield float(rng.poisson(mu)), ratio, display


def test_recovers_elasticity_and_lift_within_tolerance_after_pooled_learning() -> None:
    """20 SKUs x 150 periods, one pool: elasticity within 0.25, display log-lift within 0.1."""
    rng = np.random.default_rng(7)
    pool = CovariatePool()
    models = []
    for _i in range(20):
        f = DemandForecaster(candidates=["sba", "tsb"])
        f.enable_covariates()
        models.append((f, _synthetic(rng, 150, float(rng.uniform(20, 200)))))
    for t in range(150):
        pool.publish(t)  # one period boundary per step, as the pipeline does
        for f, gen in models:
            y, ratio, display = next(gen)
            f.set_pool_mean(pool.coef)
            before = f.covariate_effects.quantised()
            f.learn_one(y, {"log_price_ratio": float(np.log(ratio)), "promo_display": display})
            pool.add(before, f.covariate_effects.quantised())
    pool.publish(10**6)
    assert pool.coef[0] == pytest.approx(ELASTICITY, abs=0.25)
    assert pool.coef[2] == pytest.approx(DISPLAY_LIFT, abs=0.1)
    # every SKU's partially pooled coefficients are close too
    for f, _ in models:
        f.set_pool_mean(pool.coef)
        w = f.coefficients()
        assert w["log_price_ratio"] == pytest.approx(ELASTICITY, abs=0.4)
        assert w["promo_display"] == pytest.approx(DISPLAY_LIFT, abs=0.2)
    # and the forecast of a display period is lifted accordingly
    f = models[0][0]
    plain, promo = f.forecast(2, [{}, {"promo_display": 1.0}])
    assert promo / plain == pytest.approx(np.exp(f.coefficients()["promo_display"]), rel=1e-9)


def test_pool_sums_are_exact_and_order_independent() -> None:
    rng = np.random.default_rng(1)
    effects = []
    for _ in range(5):
        f = DemandForecaster(candidates=["sba"])
        f.enable_covariates()
        for y, ratio, display in _synthetic(rng, 40, 50.0):
            f.learn_one(y, {"log_price_ratio": float(np.log(ratio)), "promo_display": display})
        effects.append(f.covariate_effects)
    a, b = CovariatePool(), CovariatePool()
    zero = [0] * len(effects[0].quantised())
    for e in effects:
        a.add(zero, e.quantised())
    for e in reversed(effects):
        b.add(zero, e.quantised())
    a.publish(1)
    b.publish(1)
    assert a.to_list() == b.to_list()
    assert CovariatePool.from_list(a.to_list()).to_list() == a.to_list()


def test_covariates_off_equals_the_plain_model_exactly() -> None:
    """No covariates, or enabled covariates that are all zero: identical forecasts."""
    rng = np.random.default_rng(3)
    plain, same, enabled = DemandForecaster(), DemandForecaster(), DemandForecaster()
    enabled.enable_covariates()
    for t in range(120):
        y = float(rng.poisson(5 + 3 * (t % 7 == 5)))
        x = {"season_pos": t % 7}
        plain.learn_one(y, x)
        same.learn_one(y, dict(x))
        enabled.learn_one(y, {**x, "log_price_ratio": 0.0, "promo_discount": 0.0})
    xs = [{"season_pos": (120 + h) % 7} for h in range(14)]
    assert encode(plain) == encode(same)
    assert encode(plain)[0] == 2  # a forecaster without covariates keeps format version 2
    assert enabled.forecast(14, xs) == plain.forecast(14, xs)
    assert (enabled.forecast_distribution(14, xs).mean.tolist()
            == plain.forecast_distribution(14, xs).mean.tolist())
    blob = encode(enabled)
    assert blob[0] == 3
    assert decode(blob).forecast_distribution(14, xs) == enabled.forecast_distribution(14, xs)


T0 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


def _orders(sku: str, days: int, per_day: int, price: float = 2.0) -> list[OrderPlaced]:
    return [OrderPlaced(event_id=f"{sku}-{d}", occurred_at=T0 + timedelta(days=d, hours=9), sku=sku,
                        location="W1", order_id=f"{sku}-{d}", quantity=per_day, unit_price=price)
            for d in range(days)]


def test_processor_without_prices_or_promotions_is_byte_identical_with_covariates_off() -> None:
    on = SkuProcessor(ProcessorConfig(min_history_periods=14))
    off = SkuProcessor(ProcessorConfig(min_history_periods=14, covariates=False))
    a, b = SkuState.new("A@W1"), SkuState.new("A@W1")
    out_a, out_b = [], []
    events = [StockSnapshot(event_id="s", occurred_at=T0, sku="A", location="W1", on_hand=200),
              *_orders("A", 60, 5)]
    for i, ev in enumerate(events):
        out_a += on.apply(a, ev, EventMeta("orders", 0, i), CovariatePool()).decisions
        out_b += off.apply(b, ev, EventMeta("orders", 0, i)).decisions
    assert not a.model.covariates_enabled
    assert a.encode_model() == b.encode_model()
    assert [encode_event(d) for d in out_a] == [encode_event(d) for d in out_b]
    assert out_a  # the scenario does decide


@pytest.mark.parametrize("source", ["forecaster", "window"])
def test_planned_promotion_raises_the_forecast_and_the_order_up_to_level_and_is_named(source: str) -> None:
    proc = SkuProcessor(ProcessorConfig(min_history_periods=14, demand_source=source,  # type: ignore[arg-type]
                                        promotion_lift=True))
    st = SkuState.new("P@W1")
    for i, ev in enumerate(_orders("P", 40, 10)):
        proc.apply(st, ev, EventMeta("orders", 0, i))
    before = proc.derived(st)
    before_mean = before.dist.mean.copy()  # a Derived describes the state it was derived from
    promo = PromotionPlanned(event_id="pp", occurred_at=T0 + timedelta(days=40), sku="P",
                             location="W1",
                             promotion_id="spring", valid_from=T0 + timedelta(days=43),
                             valid_to=T0 + timedelta(days=50), promo_kind="discount", depth=0.25)
    proc.apply(st, promo, EventMeta("promotions", 0, 0))
    after = proc.derived(st)
    assert st.model.covariates_enabled
    # the window [day 43, day 50) is 2..8 periods ahead of the open period (day 40 or 41)
    offset = (T0 + timedelta(days=43) - datetime.fromtimestamp(st.demand.open_start, UTC)).days
    lift = np.asarray(after.dist.mean) / before_mean
    assert lift[:offset] == pytest.approx(1.0)
    # prior elasticity
    assert lift[offset:offset + 7] == pytest.approx(np.exp(-2.5 * np.log(0.75)), rel=1e-6)
    assert after.levels.order_up_to > before.levels.order_up_to
    assert proc.decisions.promotions_in_window(st, after) == ["spring"]


def test_pipeline_keeps_a_fenced_pool_per_partition_and_replays_identically() -> None:
    def records() -> list[Record]:
        out, off = [], 0
        for d in range(30):
            for sku in ("A", "B", "C"):
                promo = d % 6 == 3
                ev = OrderPlaced(event_id=f"{sku}-{d}", occurred_at=T0 + timedelta(days=d, hours=9),
                                 sku=sku,
                                 location="W1", order_id=f"{sku}-{d}", quantity=20 if promo else 5,
                                 unit_price=1.5 if promo else 2.0, promo=promo)
                out.append(Record("orders", 0, off, ev.key.encode(), encode_event(ev)))
                off += 1
        return out

    recs = records()
    runs = []
    for batch in (7, 50):  # different batch boundaries and cache sizes, same result
        store = InMemoryStateStore()
        pipe = Pipeline(SkuProcessor(ProcessorConfig()), store, {"orders": "orders"}, cache_size=2)
        for i in range(0, len(recs), batch):
            out = pipe.process(recs[i:i + batch])
            store.save_many(out.dirty, out.partition_of)
        runs.append({k: store._blobs[k][1] for k in store.keys()})
    assert runs[0] == runs[1]
    assert pool_key(0) in runs[0] and is_pool_key(pool_key(0)) and not is_pool_key("A@W1")
    pool_state = SkuState.decode(runs[0][pool_key(0)])
    assert pool_state.pool is not None and any(pool_state.pool.info)
    assert pool_key(0) not in store.keys_of_partition(0)
