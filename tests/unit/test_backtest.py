"""`restock backtest` end to end on a small generic CSV: outputs, metrics and no look-ahead."""

from __future__ import annotations

import csv
import json
import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from streams.backtest import BacktestOptions, replay, run_backtest
from streams.datasets import load


def _write(path: Path, days: int = 70, bump_after: int | None = None) -> Path:
    rng = np.random.default_rng(7)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "sku", "quantity", "location"])
        for d in range(days):
            day = date(2024, 1, 1) + timedelta(days=d)
            for sku, base in (("A", 20), ("B", 3), ("C", 1)):
                q = int(rng.poisson(base * (1.6 if day.weekday() < 5 else 0.2)))
                if bump_after is not None and d >= bump_after:
                    q *= 10
                if q > 0:
                    w.writerow([day.isoformat(), sku, q, "X"])
    return path


def test_backtest_writes_predictions_and_metrics(tmp_path: Path) -> None:
    data = _write(tmp_path / "sales.csv")
    opts = BacktestOptions(data=data, horizon=3, baselines=("naive", "seasonal_naive"),
                           min_history=14, predictions=tmp_path / "p.csv", json_path=tmp_path / "r.json",
                           plot_path=tmp_path / "p.png", progress=False, top=2)
    report = run_backtest(opts)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["series"] == 3 and saved["horizon"] == 3
    for sub in ("all", "top2"):
        for method in ("restock", "naive", "seasonal_naive"):
            m = saved["metrics"][sub][method]
            assert m["n"] > 0 and math.isfinite(m["wape"])
    cov = report["metrics"]["all"]["restock"]["coverage_q95"]
    assert 0.5 < cov <= 1.0
    # restock beats the naive forecast on weekly-seasonal Poisson demand
    assert report["metrics"]["all"]["restock"]["wape"] < report["metrics"]["all"]["naive"]["wape"]
    with (tmp_path / "p.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["sku", "location", "period_start", "horizon", "y_true", "y_pred",
                             "q50", "q90", "q95", "model"]
    for r in rows[:200]:
        assert float(r["q50"]) <= float(r["q90"]) <= float(r["q95"])
        assert float(r["y_pred"]) >= 0 and 1 <= int(r["horizon"]) <= 3
    assert (tmp_path / "p.png").stat().st_size > 5000


def test_progressive_validation_never_looks_ahead(tmp_path: Path) -> None:
    """Changing demand after day 50 leaves every forecast made before day 50 unchanged."""
    a = replay(load(_write(tmp_path / "a.csv")).sales, "D", 3)
    b = replay(load(_write(tmp_path / "b.csv", bump_after=50)).sales, "D", 3)
    # forecast of period t at horizon h was made at origin t - h: before day 50 iff t - h < 50
    for h in range(3):
        t_max = 50 + h  # targets whose origin is <= day 49
        np.testing.assert_array_equal(a.mean[:, :t_max, h], b.mean[:, :t_max, h])
    assert not np.array_equal(a.mean[:, 60:, 0], b.mean[:, 60:, 0])


def test_no_sales_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_text("timestamp,sku,quantity\n")
    with pytest.raises(ValueError, match="no sales"):
        run_backtest(BacktestOptions(data=empty, baselines=(), progress=False))


def test_the_batched_quantiles_land_on_the_cells_of_their_origins_forecasts(tmp_path: Path) -> None:
    """The replay computes every forecast's quantiles in one batch at the end
    (``_fill_quantiles``): the forecast of period t + h made at origin t sits at [i, t + h, h],
    and its quantiles must be those of origin t's means, dispersion and levels (checked cell by
    cell against one ``period_quantiles`` call per origin, on a replay's means with random
    dispersions and levels); cells without a forecast stay NaN."""
    from streams.backtest import _fill_quantiles

    path = _write(tmp_path / "a.csv", days=60)
    sales = load(path).sales
    arr = replay(sales, "D", 5)
    observed = 0
    # the forecasts made at each origin, re-derived from the means by a plain loop over cells
    n, T, H = arr.mean.shape
    rng = np.random.default_rng(3)
    phi = rng.uniform(1.0, 6.0, size=(n, T))
    levels = np.sort(rng.uniform(0.3, 0.99, size=(n, T, 3)), axis=-1)
    qs = tuple(np.full(arr.mean.shape, np.nan) for _ in range(3))
    phi_made = np.where(np.isnan(arr.mean[:, :, 0]), np.nan, phi)  # an origin forecasts h=0 at t
    _fill_quantiles(arr.mean, phi_made, levels, qs)
    from agents.forecasting.selection import period_quantiles

    for i in range(n):
        for t in range(T):
            if np.isnan(phi_made[i, t]):
                continue
            hs = min(H, T - t)
            cells = (t + np.arange(hs), np.arange(hs))
            one = period_quantiles(arr.mean[i][cells], phi_made[i, t], levels[i, t])  # (3, hs)
            for k in range(3):
                np.testing.assert_array_equal(qs[k][i][cells], one[k])
            observed += 1
    assert observed > 100
    assert np.isnan(qs[0][np.isnan(arr.mean)]).all()


def test_period_quantiles_in_one_batch_equal_each_forecast_distribution() -> None:
    from agents.forecasting import DemandForecaster
    from agents.forecasting.selection import period_quantiles

    rng = np.random.default_rng(11)
    means, phis, levels, expected = [], [], [], []
    for k in range(12):
        f = DemandForecaster(season_length=7)
        for t in range(40 + 5 * k):
            f.learn_one(float(rng.poisson(0.3 + k) * (rng.random() < 0.7)), {"season_pos": t % 7})
        xs = [{"season_pos": (40 + 5 * k + h) % 7} for h in range(6)]
        m, phi, lv = f.quantile_inputs(6, xs)
        dist = f.forecast_distribution(6, xs)
        np.testing.assert_array_equal(m, dist.mean)
        means.append(m)
        phis.append(phi)
        levels.append(lv)
        expected.append(np.stack([dist.quantiles[q] for q in f.quantile_levels]))
    got = period_quantiles(np.stack(means), np.array(phis), np.stack(levels))
    np.testing.assert_array_equal(got, np.stack(expected))
