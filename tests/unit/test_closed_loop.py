"""The closed loop's warehouse (streams/closed_loop.py) on generated weekly data, in-process."""

from __future__ import annotations

import asyncio
import csv
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from streams.closed_loop import DemoOptions, in_production_order, run_closed_loop
from streams.panel import load_panel
from streams.settings import Settings
from streams.simulate import InProcessTransport, simulation_settings


def _weekly_csv(path: Path, weeks: int = 60, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "sku", "location", "quantity", "unit_price"])
        d0 = date(2020, 1, 6)  # a Monday
        for i in range(weeks):
            for sku, lam in (("A", 40.0), ("B", 5.0), ("C", 0.7)):
                q = int(rng.poisson(lam))
                if q:
                    w.writerow([f"{(d0 + timedelta(weeks=i)).isoformat()}T12:00:00", sku, "X", q, "2.0"])


def test_weekly_lead_time_of_one_period_receives_every_purchase_order(tmp_path: Path) -> None:
    """Lead time = 1 period: a suggestion stamped with the previous period's time (one triggered by a
    purchase order event) must still arrive; before the fix its receipt was scheduled in the past
    and its units stayed on order forever, blocking reorders (the weekly closed-loop collapse)."""
    data = tmp_path / "weekly.csv"
    _weekly_csv(data)
    opts = DemoOptions(data=data, fmt="generic", freq="W", skus=None, json_path=None, plot_path=None,
                       progress=False, settings=Settings(min_history_periods=4))
    settings = simulation_settings(opts)
    panel = load_panel(data, "generic", "W", None)
    transport = InProcessTransport(settings, cache_size=100)
    result = asyncio.run(run_closed_loop(opts, settings, panel, transport))
    final = transport.final_states(panel.keys)
    assert result["restock"]["purchase_orders"] > 0
    for st in final.values():
        for _po, (qty, arrival) in st.position.purchase_orders.items():
            assert arrival > panel.last, f"{st.key}: a purchase order of {qty} due {arrival} never arrived"
    c = result["run"]["conservation"]["restock"]
    assert c["start_on_hand_units"] + c["received_units"] - c["served_units"] == c["end_on_hand_units"]


def test_frontier_sweeps_restock_and_the_baselines_on_the_same_demand(tmp_path: Path) -> None:
    from streams.simulate import run_frontier

    data = tmp_path / "weekly.csv"
    _weekly_csv(data, weeks=40)
    opts = DemoOptions(data=data, fmt="generic", freq="W", skus=None, json_path=None, plot_path=None,
                       progress=False)
    out = run_frontier(opts, "lost_unit_cost", (0.01, 1.0), tmp_path / "fr", label="generated", workers=1)
    rows = out["rows"]
    restock = sorted((r for r in rows if r["policy"] == "restock"), key=lambda r: r["target"])
    assert [r["target"] for r in restock] == [0.01, 1.0]
    # a dearer lost unit buys more service with more stock
    assert restock[1]["fill_rate"] >= restock[0]["fill_rate"]
    assert restock[1]["mean_on_hand_value"] >= restock[0]["mean_on_hand_value"]
    assert {"static", "rolling_8w", "rolling_13w", "rolling_26w"} <= {r["policy"] for r in rows}
    for name in ("frontier.json", "frontier.md", "frontier.png"):
        assert (tmp_path / "fr" / name).stat().st_size > 100
    # every summary ratio is restock's interpolated value over the least baseline value
    for s in out["summary"]:
        if s["ratio"] is not None:
            assert s["ratio"] == round(s["values"]["restock"] / s["best_baseline_value"], 4)


def test_the_warehouse_buys_each_skus_last_suggestion_in_production_order() -> None:
    """A SKU's decisions keep the order the worker produced them in (the keyed ``reorders``
    partition's order), whatever their trigger topics' offsets say; SKUs are grouped by key."""
    from types import SimpleNamespace

    def dec(key: str, name: str, offset: int) -> Any:
        return SimpleNamespace(key=key, name=name, explanation=SimpleNamespace(trigger_offset=offset))

    produced = [dec("B@X", "b-receipt", 900), dec("A@X", "a-order", 5), dec("B@X", "b-order", 10)]
    ordered = in_production_order(produced)
    assert [d.name for d in ordered] == ["a-order", "b-receipt", "b-order"]
    latest = {d.key: d.name for d in ordered}
    assert latest == {"A@X": "a-order", "B@X": "b-order"}


def test_weekly_receipts_and_orders_at_the_same_instant_keep_skus_in_stock(tmp_path: Path) -> None:
    """Weekly rows stamped at 00:00, lead time one week: each period a receipt and the week's
    orders share an instant. The receipt's top-up suggestion (made before the week's demand) was
    bought instead of the order's full one when decisions were sorted by trigger offset across
    topics. Once a demand step left a SKU short, it stayed short: every week the warehouse
    bought the top-up and the SKU lost a large part of its demand."""
    data = tmp_path / "weekly.csv"
    rng = np.random.default_rng(5)
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "sku", "location", "quantity", "unit_price"])
        d0 = date(2020, 1, 6)
        for i in range(60):
            for sku in ("A", "B", "C"):
                lam = 1000 if i < 30 else 2000  # a step up: the SKUs run short once
                w.writerow([(d0 + timedelta(weeks=i)).isoformat(), sku, "X", int(rng.poisson(lam)), "2.0"])
    opts = DemoOptions(data=data, fmt="generic", freq="W", skus=None, json_path=None, plot_path=None,
                       progress=False, settings=Settings(min_history_periods=4))
    settings = simulation_settings(opts)
    panel = load_panel(data, "generic", "W", None)
    result = asyncio.run(run_closed_loop(opts, settings, panel, InProcessTransport(settings, cache_size=100)))
    assert result["restock"]["fill_rate"] >= 0.9, result["restock"]


def test_lead_time_demand_calibration_is_exact_on_constant_demand(tmp_path: Path) -> None:
    """Constant demand: the lead-time demand restock reads equals what follows (bias 0) and
    every quantile covers it; a noisy series is covered less often than a constant one."""
    def run(noisy: bool) -> dict[str, Any]:
        data = tmp_path / f"daily_{noisy}.csv"
        rng = np.random.default_rng(1)
        with data.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "sku", "location", "quantity", "unit_price"])
            for i in range(150):
                for sku in ("A", "B"):
                    q = int(rng.poisson(10)) if noisy else 10
                    w.writerow([f"{(date(2021, 1, 4) + timedelta(days=i)).isoformat()}T12:00:00", sku, "X", q,
                                "1.0"])
        opts = DemoOptions(data=data, fmt="generic", freq="D", skus=None, json_path=None, plot_path=None,
                           progress=False, settings=Settings())
        settings = simulation_settings(opts)
        panel = load_panel(data, "generic", "D", None)
        transport = InProcessTransport(settings, cache_size=10)
        result = asyncio.run(run_closed_loop(opts, settings, panel, transport))
        return result["run"]["lead_time_demand_calibration"]

    flat = run(False)
    assert flat["reviews"] > 0
    assert flat["bias"] == 0.0
    assert flat["coverage_q90"] == flat["coverage_reorder_point"] == 1.0
    noisy = run(True)
    assert noisy["reviews"] == flat["reviews"]
    assert abs(noisy["bias"]) < 0.1
    assert noisy["coverage_q95"] < 1.0


def _daily_csv(path: Path, days: int = 120, seed: int = 5) -> None:
    """Orders through the day (so a stock-out hides the rest of it), some bulk."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "sku", "location", "quantity", "unit_price"])
        d0 = date(2020, 1, 6)
        for i in range(days):
            for sku, lam in (("A", 3.0), ("B", 1.0), ("C", 0.4)):
                for _ in range(int(rng.poisson(lam))):
                    q = int(rng.integers(1, 6)) if rng.random() > 0.1 else int(rng.integers(20, 40))
                    hh, mm = int(rng.integers(8, 18)), int(rng.integers(0, 60))
                    at = f"{(d0 + timedelta(days=i)).isoformat()}T{hh:02d}:{mm:02d}:00"
                    w.writerow([at, sku, "X", q, "2.0"])


def test_hidden_stockouts_keep_the_unseen_demand_in_the_kpis(tmp_path: Path) -> None:
    """The hidden-stockout storefront publishes no order while the shelf is empty: restock never
    sees those units, and the KPIs still count them as demand and lost units."""
    data = tmp_path / "daily.csv"
    _daily_csv(data)
    runs = {}
    for hidden in (False, True):
        base = Settings(min_history_periods=7, lead_time_days=10.0,
                        stockout_demand="hidden" if hidden else "published")
        opts = DemoOptions(data=data, fmt="generic", freq="D", skus=None, json_path=None, plot_path=None,
                           progress=False, settings=base, hidden_stockouts=hidden, warmup_fraction=0.0)
        settings = simulation_settings(opts)
        panel = load_panel(data, "generic", "D", None, warmup_fraction=0.0)
        assert panel.warmup_periods == 1  # the KPIs cover every period but the first
        transport = InProcessTransport(settings, cache_size=100)
        result = asyncio.run(run_closed_loop(opts, settings, panel, transport))
        runs[hidden] = (result, transport.final_states(panel.keys))
    (pub, _), (hid, final) = runs[False], runs[True]
    k, run = hid["restock"], hid["run"]
    hidden_units = run["conservation"]["restock"]["hidden_lost_units"]
    assert hidden_units > 0 and run["censored_periods"] > 0
    assert run["storefront"] == "hidden_stockouts" and run["stockout_demand"] == "hidden"
    assert run["storefront_on_hand_mismatches"] == 0  # the shelf the storefront saw is restock's
    # every unit demanded was either published (restock's orders) or hidden
    published = sum(st.counters.get("orders_units", 0) for st in final.values())
    assert published + hidden_units == panel.demand.sum()
    assert run["events_published"] < pub["run"]["events_published"]
    # the KPIs are on the true demand: the same units as the published storefront's run
    evaluated = int(panel.demand[:, panel.warmup_periods:].sum())
    assert k["demand_units"] == pub["restock"]["demand_units"] == evaluated
    assert k["served_units"] + k["lost_sales_units"] == k["demand_units"]
    c = run["conservation"]["restock"]
    # served: what restock's states served (all but the first period's), not demand minus the lost
    # orders restock saw
    assert c["served_units"] - panel.demand[:, 0].sum() <= k["served_units"] <= c["served_units"]
    assert c["start_on_hand_units"] + c["received_units"] - c["served_units"] == c["end_on_hand_units"]
