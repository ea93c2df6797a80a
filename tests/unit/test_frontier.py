"""Service/stock frontier (streams/frontier.py): interpolation on the efficient curve, tables, plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.policy import PolicyParams
from streams.frontier import (
    ROW_KEYS,
    efficient_points,
    format_summary,
    format_table,
    frontier_rows,
    interpolate_value_at_fill,
    plot_frontier,
    run_baselines,
    summary,
)
from streams.panel import DemandPanel
from streams.rules import RuleSpec


def pts(*fv: tuple[float, float], policy: str = "p") -> list[dict]:
    return [{"policy": policy, "fill_rate": f, "mean_on_hand_value": v, "target": i / 10}
            for i, (f, v) in enumerate(fv)]


def test_linear_interpolation_by_hand() -> None:
    rows = pts((0.80, 100.0), (0.90, 200.0), (0.96, 500.0))
    assert interpolate_value_at_fill(rows, 0.85) == pytest.approx(150.0)
    assert interpolate_value_at_fill(rows, 0.90) == pytest.approx(200.0)
    assert interpolate_value_at_fill(rows, 0.93) == pytest.approx(350.0)   # 200 + 0.5 * 300
    assert interpolate_value_at_fill(rows, 0.96) == pytest.approx(500.0)


def test_curve_that_does_not_reach_the_fill() -> None:
    rows = pts((0.80, 100.0), (0.90, 200.0))
    assert interpolate_value_at_fill(rows, 0.9001) is None
    assert interpolate_value_at_fill([], 0.5) is None
    assert interpolate_value_at_fill(pts((None, 10.0)), 0.5) is None  # type: ignore[arg-type]


def test_below_the_curve_takes_the_cheapest_point_reaching_it() -> None:
    rows = pts((0.80, 100.0), (0.90, 200.0))
    assert interpolate_value_at_fill(rows, 0.5) == 100.0


def test_non_monotone_points_use_the_efficient_envelope() -> None:
    # (0.85, 300) is dominated by (0.90, 200): dropped; the curve runs 100 -> 200 between 0.80 and 0.90.
    rows = pts((0.80, 100.0), (0.85, 300.0), (0.90, 200.0), (0.95, 400.0))
    assert efficient_points(rows) == [(0.80, 100.0), (0.90, 200.0), (0.95, 400.0)]
    assert interpolate_value_at_fill(rows, 0.85) == pytest.approx(150.0)
    # a higher target that lost fill (0.92 < 0.95) at more stock is dominated too
    rows2 = rows + pts((0.92, 450.0))
    assert interpolate_value_at_fill(rows2, 0.925) == pytest.approx(interpolate_value_at_fill(rows, 0.925))
    # equal fill rates: the cheaper point wins
    assert efficient_points(pts((0.9, 300.0), (0.9, 250.0))) == [(0.9, 250.0)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1e6)), min_size=1, max_size=12),
       st.floats(0.0, 1.0))
def test_interpolated_value_is_bounded_by_the_step_envelope(fv: list, fill: float) -> None:
    rows = pts(*fv)
    got = interpolate_value_at_fill(rows, fill)
    reaching = [v for f, v in fv if f >= fill]
    if not reaching:
        assert got is None
        return
    assert got is not None
    # never more than the least value reached at >= fill, never less than the cheapest point at all
    assert min(v for _, v in fv) - 1e-6 <= got <= min(reaching) + 1e-6
    # monotone in the fill rate
    lower = interpolate_value_at_fill(rows, fill / 2)
    assert lower is not None and lower <= got + 1e-6


def kpis(fill: float | None, value: float) -> dict:
    return {"fill_rate": fill, "cycle_service_level": 0.9, "mean_on_hand_units": 10.0,
            "mean_on_hand_value_gbp": value, "inventory_turns_per_year": 5.0, "purchase_orders": 7,
            "stockout_sku_days": 3}


def test_rows_summary_and_tables() -> None:
    runs = [("restock", "fill_rate", 0.95, kpis(0.95, 80.0)), ("restock", "fill_rate", 0.9, kpis(0.90, 60.0)),
            ("static", "cycle_service_level", 0.9, kpis(0.88, 90.0)),
            ("static", "cycle_service_level", 0.99, kpis(0.96, 140.0)),
            ("rolling_56d", "cycle_service_level", 0.99, kpis(0.93, 100.0)),
            ("rolling_56d", "cycle_service_level", 0.9, kpis(0.89, 70.0))]
    rows = frontier_rows(runs)
    assert [r["policy"] for r in rows] == ["restock"] * 2 + ["static"] * 2 + ["rolling_56d"] * 2
    assert rows[0]["target"] == 0.9 and tuple(rows[0]) == ROW_KEYS
    assert rows[0]["stockout_sku_periods"] == 3 and rows[0]["mean_on_hand_value"] == 60.0
    summ = summary(rows, fills=(0.90, 0.93, 0.95))
    # at 0.90: static 90 + (0.02/0.08) * 50 = 102.5; rolling 70 + (0.01/0.04) * 30 = 77.5
    assert summ[0]["values"]["static"] == pytest.approx(102.5)
    assert summ[0]["values"]["rolling_56d"] == pytest.approx(77.5)
    assert summ[0]["best_baseline"] == "rolling_56d"
    assert summ[0]["ratio"] == pytest.approx(60.0 / 77.5, abs=1e-4)
    # at 0.95 rolling does not reach it: static is the best baseline
    assert summ[2]["values"]["rolling_56d"] is None and summ[2]["best_baseline"] == "static"
    assert summ[2]["ratio"] == pytest.approx(80.0 / (90 + 0.07 / 0.08 * 50), abs=1e-4)
    table = format_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| restock | fill 0.9 | 0.900 |" in table
    st_ = format_summary(summ)
    assert st_.splitlines()[2].startswith("| 0.90 |") and "rolling_56d" in st_
    assert st_.splitlines()[4].split(" | ")[3] == "-"  # rolling_56d does not reach 0.95


def test_plot_file_is_written(tmp_path: Path) -> None:
    rows = frontier_rows([("a", "cycle_service_level", 0.9, kpis(0.9, 10.0)),
                          ("a", "cycle_service_level", 0.99, kpis(0.95, 20.0)),
                          ("b", "fill_rate", 0.9, kpis(0.91, 12.0)),
                          ("b", "fill_rate", 0.5, kpis(None, 0.0))])
    out = plot_frontier(rows, tmp_path / "sub" / "frontier.png", "test")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_run_baselines_sweeps_targets() -> None:
    rng = np.random.default_rng(5)
    demand = rng.poisson(3.0, (4, 80)).astype(np.int64)
    panel = DemandPanel(keys=[f"S{i}@L" for i in range(4)], freq="D", first=0, step=86400, warmup_periods=20,
                        demand=demand, price=np.ones(4), sales=[], dataset=None)
    specs = [RuleSpec("static", "static"), RuleSpec("rolling_10d", "rolling", 10, 5)]
    rows, timing = run_baselines(panel, PolicyParams(lead_time_periods=3), [0.6, 0.9, 0.99], specs=specs)
    assert [(r["policy"], r["target"]) for r in rows] == [
        ("static", 0.6), ("static", 0.9), ("static", 0.99),
        ("rolling_10d", 0.6), ("rolling_10d", 0.9), ("rolling_10d", 0.99)]
    for p in ("static", "rolling_10d"):
        curve = [r for r in rows if r["policy"] == p]
        # a higher cycle-service target holds more stock and serves more (stationary demand)
        assert curve[0]["mean_on_hand_value"] < curve[2]["mean_on_hand_value"]
        assert curve[0]["fill_rate"] < curve[2]["fill_rate"]
    assert set(timing) == {"static.fit_s", "static.per_target_s",
                           "rolling_10d.fit_s", "rolling_10d.per_target_s"}


def test_run_baselines_seed_params_fix_one_seed() -> None:
    rng = np.random.default_rng(8)
    demand = rng.poisson(2.0, (3, 60)).astype(np.int64)
    panel = DemandPanel(keys=[f"S{i}@L" for i in range(3)], freq="D", first=0, step=86400, warmup_periods=5,
                        demand=demand, price=np.ones(3), sales=[], dataset=None)
    specs = [RuleSpec("static", "static")]
    base = PolicyParams(lead_time_periods=2, cycle_service_level=0.99)
    own, _ = run_baselines(panel, base, [0.99], specs=specs)
    same, _ = run_baselines(panel, base, [0.99], specs=specs, seed_params=base)
    assert own == same
    low, _ = run_baselines(panel, base, [0.99], specs=specs,
                           seed_params=base.with_overrides(cycle_service_level=0.5))
    assert low[0]["target"] == 0.99 and low[0]["fill_rate"] is not None


def test_run_baselines_with_hidden_stockouts_refit_the_rolling_rule_on_its_sales() -> None:
    """The static rule never refits (same rows); the rolling rule, which stocks out at a low
    target, refits on its own sales: lower levels, less stock, a lower fill rate."""
    rng = np.random.default_rng(5)
    demand = rng.poisson(3.0, (4, 80)).astype(np.int64)
    panel = DemandPanel(keys=[f"S{i}@L" for i in range(4)], freq="D", first=0, step=86400, warmup_periods=20,
                        demand=demand, price=np.ones(4), sales=[], dataset=None)
    specs = [RuleSpec("static", "static"), RuleSpec("rolling_10d", "rolling", 10, 5)]
    params = PolicyParams(lead_time_periods=3)
    seen, _ = run_baselines(panel, params, [0.6], specs=specs)
    hidden, _ = run_baselines(panel, params, [0.6], specs=specs, hidden_stockouts=True)
    assert hidden[0] == seen[0]  # static
    assert hidden[1]["mean_on_hand_value"] < seen[1]["mean_on_hand_value"]
    assert hidden[1]["fill_rate"] < seen[1]["fill_rate"]
