"""ERP reorder rules (streams/rules.py): the static rule is the demo's baseline, KPI by KPI."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.inventory import InventoryPosition
from agents.policy import PolicyParams, compute_levels, order_quantity, z_for_fill_rate
from streams.kpis import PolicyTally
from streams.panel import DemandPanel, load_panel
from streams.rules import (
    baseline_specs,
    levels_flat,
    rule_moments,
    simulate_rule,
    static_seed,
    z_for_fill_rate_vec,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "online_retail" / \
    "online_retail_2010-12-01_2011-12-09.csv.gz"
PROPS = settings(max_examples=60, deadline=None)


def _panel(demand: np.ndarray, warm: int, freq: str = "D", price: np.ndarray | None = None) -> DemandPanel:
    n = demand.shape[0]
    step = 86400 * (7 if freq == "W" else 1)
    return DemandPanel(keys=[f"S{i}@L" for i in range(n)], freq=freq, first=0, step=step,  # type: ignore[arg-type]
                       warmup_periods=warm, demand=demand.astype(np.int64),
                       price=np.linspace(0.5, 3.0, n) if price is None else price, sales=[], dataset=None)


def demo_baseline(panel: DemandPanel, params: PolicyParams, unmet: str = "lost_sales",
                  horizon: int = 28) -> dict[str, float | int | None]:
    """The demo's baseline loop (streams/demo.py, ``_run``), ported SKU by SKU with InventoryPosition."""
    step = panel.step
    lead_s = int(round(params.lead_time_periods)) * step
    first, warm_end = panel.first, panel.warm_end
    sims = {}
    for i, k in enumerate(panel.keys):
        daily = panel.demand[i, : panel.warmup_periods].astype(float)
        mean = float(daily.mean()) if daily.size else 0.0
        var = float(daily.var(ddof=1)) if daily.size > 1 else 0.0
        lv = compute_levels(np.full(horizon, mean), np.full(horizon, var), params)
        pos = InventoryPosition()
        pos.snapshot(math.ceil(lv.order_up_to), at=first)
        sims[k] = {"s": lv.reorder_point, "S": lv.order_up_to, "mean": mean, "price": float(panel.price[i]),
                   "pos": pos, "arrivals": defaultdict(list), "cycle_stockout": False}
    baseline = PolicyTally()
    eval_days = 0
    for i in range(panel.n_periods):
        p0 = first + i * step
        in_eval = p0 >= warm_end
        for sim in sims.values():
            for po_id, q in sim["arrivals"].pop(p0, []):
                sim["pos"].receive(q, po_id, at=p0)
                if in_eval:
                    baseline.received_units += q
                    baseline.cycles += 1
                    baseline.cycles_with_stockout += int(sim["cycle_stockout"])
                sim["cycle_stockout"] = False
        for r, (k, sim) in enumerate(sims.items()):
            q = int(panel.demand[r, i])
            pos = sim["pos"]
            served, short = pos.sell(q, at=p0 + step - 1, unmet=unmet) if q else (0, 0)
            if short:
                sim["cycle_stockout"] = True
            ip = pos.inventory_position
            if ip <= sim["s"] and sim["S"] > 0:
                oq = order_quantity(ip, sim["s"], sim["S"], params.pack_size, params.moq)
                if oq > 0:
                    po_id = f"B-{k}-{i}"
                    pos.place_purchase_order(po_id, oq, expected_arrival=p0 + lead_s)
                    sim["arrivals"][p0 + lead_s].append((po_id, oq))
                    if in_eval:
                        baseline.purchase_orders += 1
            if in_eval:
                baseline.demand_units += q
                baseline.served_units += served
                baseline.lost_units += short
                baseline.served_value += served * sim["price"]
                baseline.on_hand_unit_days += pos.on_hand
                baseline.on_hand_value_days += pos.on_hand * sim["price"]
                baseline.stockout_sku_days += int(pos.on_hand == 0)
                baseline.sku_days += 1
                baseline.abs_error += abs(q - sim["mean"])
                baseline.forecast_demand += q
        if in_eval:
            eval_days += 1
    return baseline.kpis(eval_days, panel.period_days)


# Float sums (values, errors) are added in another order (vectorised over SKUs): equal to 1e-9.
FLOAT_KPIS = {"mean_on_hand_value_gbp", "inventory_turns_per_year", "forecast_wape", "mean_on_hand_units"}


def assert_same_kpis(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for k, v in want.items():
        if k in FLOAT_KPIS and v is not None:
            assert got[k] == pytest.approx(v, rel=1e-9, abs=0.011), k
        else:
            assert got[k] == v, k


@pytest.fixture(scope="module")
def retail_slice() -> DemandPanel:
    return load_panel(DATA, "auto", "D", 25, "2011-03-01", "2011-06-30")


@pytest.mark.parametrize("target", [{"cycle_service_level": 0.95}, {"cycle_service_level": 0.7},
                                    {"fill_rate": 0.95}])
@pytest.mark.parametrize("unmet", ["lost_sales", "backorder"])
def test_static_rule_is_the_demo_baseline_on_online_retail(retail_slice: DemandPanel, target: dict,
                                                          unmet: str) -> None:
    params = PolicyParams(lead_time_periods=7, review_period_periods=1, **target)
    got = simulate_rule(retail_slice, "static", params, unmet=unmet)  # type: ignore[arg-type]
    want = demo_baseline(retail_slice, params, unmet)
    assert want["purchase_orders"] > 0 and want["lost_sales_units"] > 0  # the slice exercises both
    assert_same_kpis(got.kpis, want)


def test_static_rule_is_the_demo_baseline_on_weekly_lumpy_demand() -> None:
    rng = np.random.default_rng(17)
    n, t = 12, 70
    orders = rng.poisson(0.6, (n, t)) * rng.integers(1, 40, (n, t))
    orders[:, 30:36] *= 4  # a promotion burst
    panel = _panel(orders, warm=17, freq="W")
    params = PolicyParams(lead_time_periods=1, review_period_periods=1, cycle_service_level=0.9,
                          pack_size=6, moq=12)
    got = simulate_rule(panel, "static", params)
    want = demo_baseline(panel, params)
    assert want["purchase_orders"] > 0
    assert_same_kpis(got.kpis, want)


def test_seed_is_ceil_of_static_order_up_to(retail_slice: DemandPanel) -> None:
    params = PolicyParams(lead_time_periods=7, cycle_service_level=0.9)
    res = simulate_rule(retail_slice, "rolling", params, window_periods=28, refit_every_periods=7)
    assert np.array_equal(res.start_on_hand, static_seed(retail_slice, params))
    assert np.array_equal(res.start_on_hand, np.ceil(res.levels[0][2]).astype(np.int64))


demand_panels = st.builds(
    lambda n, t, warm, lam, size, seed: (n, t, min(warm, t), lam, size, seed),
    st.integers(1, 6), st.integers(2, 60), st.integers(1, 20), st.floats(0.0, 3.0),
    st.integers(1, 50), st.integers(0, 2**31 - 1),
)


@PROPS
@given(demand_panels, st.sampled_from(["static", "rolling"]), st.sampled_from(["lost_sales", "backorder"]),
       st.integers(1, 4), st.sampled_from([0.5, 0.9, 0.99]), st.booleans(), st.integers(1, 5))
def test_units_are_conserved_and_s_below_S(spec: tuple, rule: str, unmet: str, lead: int,
                                          target: float, fill: bool, window: int) -> None:
    n, t, warm, lam, size, seed = spec
    rng = np.random.default_rng(seed)
    demand = rng.poisson(lam, (n, t)) * rng.integers(1, size + 1, (n, t))
    panel = _panel(demand, warm)
    tgt = {"fill_rate": target} if fill else {"cycle_service_level": target}
    params = PolicyParams(lead_time_periods=lead, **tgt)
    res = simulate_rule(panel, rule, params, unmet=unmet, window_periods=window,  # type: ignore[arg-type]
                        refit_every_periods=2)
    assert np.array_equal(res.start_on_hand + res.received - res.served - res.backorders_served,
                          res.end_on_hand)
    assert np.all(res.end_on_hand >= 0)
    assert np.array_equal(res.served + res.lost + res.backorders + res.backorders_served, demand.sum(axis=1))
    for _, s, S in res.levels:
        assert np.all(S >= s) and np.all(s >= 0)
    k = res.kpis
    assert k["served_units"] + k["lost_sales_units"] == k["demand_units"]
    if unmet == "lost_sales":
        assert res.backorders.sum() == 0 and res.backorders_served.sum() == 0


@PROPS
@given(st.lists(st.tuples(st.floats(0.0, 500.0), st.floats(0.0, 5000.0)), min_size=1, max_size=8),
       st.integers(1, 10), st.integers(1, 7), st.sampled_from(["csl", "fill"]),
       st.floats(0.51, 0.999), st.one_of(st.none(), st.floats(1.0, 100.0)))
def test_levels_flat_equals_compute_levels(moments: list, lead: int, review: int, kind: str, target: float,
                                           ordering_cost: float | None) -> None:
    tgt = {"fill_rate": target} if kind == "fill" else {"cycle_service_level": target}
    params = PolicyParams(lead_time_periods=lead, review_period_periods=review, ordering_cost=ordering_cost,
                          **tgt)
    mean = np.array([m for m, _ in moments])
    var = np.array([v for _, v in moments])
    s, S = levels_flat(mean, var, params)
    for i in range(len(moments)):
        lv = compute_levels(np.full(28, mean[i]), np.full(28, var[i]), params)
        assert s[i] == pytest.approx(lv.reorder_point, rel=1e-7, abs=1e-6)
        assert S[i] == pytest.approx(lv.order_up_to, rel=1e-7, abs=1e-6)


@PROPS
@given(st.floats(0.01, 0.999), st.floats(0.0, 1e4), st.floats(0.0, 1e4))
def test_vectorised_fill_rate_z_equals_scalar(beta: float, q: float, sigma: float) -> None:
    z = z_for_fill_rate_vec(beta, np.array([q]), np.array([sigma]))[0]
    assert z == pytest.approx(z_for_fill_rate(beta, q, sigma), abs=1e-7)


def test_rolling_refits_on_the_trailing_window() -> None:
    # Demand steps from 1 to 10 units a period at period 20: the 4-period window follows it.
    demand = np.concatenate([np.ones((2, 20)), 10 * np.ones((2, 20))], axis=1).astype(np.int64)
    panel = _panel(demand, warm=10)
    mom = rule_moments(panel, "rolling", window_periods=4, refit_every_periods=5)
    assert mom.fit_periods.tolist() == [0, 10, 15, 20, 25, 30, 35]
    assert mom.mean[:, 0].tolist() == [1.0, 1.0, 1.0, 1.0, 10.0, 10.0, 10.0]
    assert mom.var[4, 0] == 0.0
    params = PolicyParams(lead_time_periods=2, cycle_service_level=0.9)
    roll = simulate_rule(panel, "rolling", params, moments=mom, track=["S0@L"])
    static = simulate_rule(panel, "static", params)
    assert roll.kpis["fill_rate"] > static.kpis["fill_rate"]
    assert roll.traces["S0@L"].shape == (40,)
    # with the window covering everything since the start and no refit, rolling = static
    same = simulate_rule(panel, "rolling", params, window_periods=10, refit_every_periods=100)
    assert same.kpis == static.kpis


def test_bad_arguments_raise() -> None:
    panel = _panel(np.ones((2, 10), dtype=np.int64), warm=3)
    with pytest.raises(ValueError, match="whole number"):
        simulate_rule(panel, "static", PolicyParams(lead_time_periods=1.5))
    with pytest.raises(ValueError, match="window_periods"):
        simulate_rule(panel, "rolling", PolicyParams())
    with pytest.raises(ValueError, match="Unknown rule"):
        simulate_rule(panel, "magic", PolicyParams())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown SKUs"):
        simulate_rule(panel, "static", PolicyParams(), track=["nope"])


def test_baseline_specs_names() -> None:
    assert [s.name for s in baseline_specs("D")] == ["static", "rolling_28d", "rolling_56d", "batch_adida"]
    daily = {s.name: s for s in baseline_specs("D")}
    assert daily["rolling_56d"].window_periods == 56 and daily["rolling_56d"].refit_every_periods == 7
    hourly = {s.name: s for s in baseline_specs("H")}
    assert hourly["rolling_28d"].window_periods == 28 * 24
    assert hourly["rolling_28d"].refit_every_periods == 168
    weekly = {s.name: s for s in baseline_specs("W")}
    assert weekly["rolling_13w"].window_periods == 13 and weekly["rolling_13w"].refit_every_periods == 1


def test_batch_rule_on_a_tiny_panel() -> None:
    pytest.importorskip("statsforecast")
    rng = np.random.default_rng(3)
    demand = rng.poisson(2.0, (3, 40))
    demand[2] = 0  # a SKU without demand gets no stock and no orders
    panel = _panel(demand, warm=10)
    params = PolicyParams(lead_time_periods=2, cycle_service_level=0.95)
    mom = rule_moments(panel, "batch", window_periods=8, refit_every_periods=5)
    assert mom.fit_periods.tolist() == [0, 10, 15, 20, 25, 30, 35]
    assert np.all(mom.mean[1:, :2] > 0.5) and np.all(mom.mean[1:, :2] < 5.0)
    assert np.all(mom.mean[:, 2] == 0) and np.all(mom.var[:, 2] == 0)
    res = simulate_rule(panel, "batch", params, moments=mom)
    assert res.kpis["fill_rate"] is not None and res.kpis["fill_rate"] > 0.5
    assert np.array_equal(res.start_on_hand + res.received - res.served, res.end_on_hand)
    assert res.received[2] == 0


@pytest.mark.parametrize("model", ["adida", "autoets"])
@pytest.mark.parametrize("warm", [1, 3, 10])
def test_batch_rule_short_warmups(model: str, warm: int) -> None:
    pytest.importorskip("statsforecast")
    rng = np.random.default_rng(warm)
    demand = rng.poisson(2.0, (3, 24))
    panel = _panel(demand, warm=warm)
    mom = rule_moments(panel, "batch", window_periods=5, refit_every_periods=3, model=model)  # type: ignore[arg-type]
    assert mom.fit_periods[1] == warm and np.all(np.isfinite(mom.mean)) and np.all(mom.mean >= 0)
    if model == "autoets" and warm < 8:
        assert mom.mean[1].tolist() == demand[:, :warm].mean(axis=1).tolist()
    res = simulate_rule(panel, "batch", PolicyParams(lead_time_periods=2), moments=mom)
    assert np.array_equal(res.start_on_hand + res.received - res.served, res.end_on_hand)


def test_with_hidden_stockouts_the_rolling_rule_refits_on_its_own_sales() -> None:
    """A storefront that hides stockouts shows a rule only what it sold: the first rolling refit of
    a SKU that started empty reads its sales 0, 10, 10, 10, not the demand of 10 a period."""
    from streams.rules import levels_flat

    panel = _panel(np.full((1, 8), 10), warm=4)
    p = PolicyParams(lead_time_periods=1.0, cycle_service_level=0.95)
    kw = {"unmet": "lost_sales", "seed_on_hand": np.zeros(1, dtype=np.int64), "window_periods": 4,
          "refit_every_periods": 1}
    seen = simulate_rule(panel, "rolling", p, **kw)  # type: ignore[arg-type]
    hidden = simulate_rule(panel, "rolling", p, hidden_stockouts=True, **kw)  # type: ignore[arg-type]
    assert [lv[0] for lv in hidden.levels] == [lv[0] for lv in seen.levels] == [0, 4, 5, 6, 7]
    s_seen, S_seen = levels_flat(np.array([10.0]), np.array([0.0]), p)
    s_hid, S_hid = levels_flat(np.array([7.5]), np.array([25.0]), p)  # mean and var (ddof 1) of 0,10,10,10
    assert (seen.levels[1][1], seen.levels[1][2]) == (s_seen, S_seen)
    assert (hidden.levels[1][1], hidden.levels[1][2]) == (s_hid, S_hid)
    assert hidden.kpis["demand_units"] == seen.kpis["demand_units"]  # the KPIs count the demand


@pytest.mark.parametrize("rule", ["static", "rolling"])
def test_hidden_stockouts_change_nothing_for_a_rule_that_never_stocks_out(rule: str) -> None:
    rng = np.random.default_rng(4)
    panel = _panel(rng.poisson(5.0, size=(3, 60)), warm=15)
    p = PolicyParams(lead_time_periods=2.0, cycle_service_level=0.9)
    kw = {"seed_on_hand": np.full(3, 10**6, dtype=np.int64), "window_periods": 28, "refit_every_periods": 7}
    a = simulate_rule(panel, rule, p, **kw)  # type: ignore[arg-type]
    b = simulate_rule(panel, rule, p, hidden_stockouts=True, **kw)  # type: ignore[arg-type]
    assert a.kpis == b.kpis and a.kpis["lost_sales_units"] == 0
    assert all(np.array_equal(x[2], y[2]) for x, y in zip(a.levels, b.levels, strict=True))
    with pytest.raises(ValueError, match="backorders"):
        simulate_rule(panel, rule, p, unmet="backorder", hidden_stockouts=True, **kw)  # type: ignore[arg-type]
