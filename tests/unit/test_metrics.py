from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.metrics import (
    bias,
    coverage,
    mae,
    mase,
    pinball_loss,
    rmse,
    seasonal_naive_scale,
    summarize,
    wape,
)

Y = np.array([3.0, 0.0, 5.0, 2.0])
F = np.array([2.0, 1.0, 5.0, 4.0])
# errors y - f: 1, -1, 0, -2 ; |e|: 1, 1, 0, 2 ; e^2: 1, 1, 0, 4 ; sum y = 10 ; sum(f - y) = 2


def test_point_metrics_hand_computed() -> None:
    assert wape(Y, F) == pytest.approx(4 / 10)          # (1+1+0+2) / (3+0+5+2)
    assert mae(Y, F) == pytest.approx(4 / 4)            # 4 / 4 cells
    assert rmse(Y, F) == pytest.approx(math.sqrt(6 / 4))  # sqrt((1+1+0+4) / 4)
    assert bias(Y, F) == pytest.approx(2 / 10)          # (-1+1+0+2) / 10: over-forecast
    assert bias(Y, Y - 1) == pytest.approx(-4 / 10)     # under-forecast is negative


def test_nan_cells_are_ignored_consistently() -> None:
    y = np.array([3.0, np.nan, 5.0, 2.0, 7.0])
    f = np.array([2.0, 1.0, 5.0, 4.0, np.nan])
    # finite in both: cells 0, 2, 3 -> |e| = 1, 0, 2 ; sum y = 10
    assert wape(y, f) == pytest.approx(3 / 10)
    assert mae(y, f) == pytest.approx(3 / 3)
    assert rmse(y, f) == pytest.approx(math.sqrt(5 / 3))
    assert bias(y, f) == pytest.approx((-1 + 0 + 2) / 10)
    assert coverage(y, f) == pytest.approx(2 / 3)   # 3<=2 no, 5<=5 yes, 2<=4 yes
    # infinities count as missing too
    assert mae(np.array([1.0, np.inf]), np.array([2.0, 2.0])) == pytest.approx(1.0)


def test_empty_mask_and_zero_denominators_are_nan() -> None:
    nan2 = np.full(2, np.nan)
    for fn in (wape, mae, rmse, bias, coverage):
        assert math.isnan(fn(nan2, np.ones(2)))
    assert math.isnan(wape(np.zeros(3), np.ones(3)))
    assert math.isnan(bias(np.zeros(3), np.ones(3)))
    assert math.isnan(pinball_loss(nan2, nan2, 0.5))


def test_broadcasting_of_shapes() -> None:
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert mae(y, 2.0) == pytest.approx((1 + 0 + 1 + 2) / 4)


def test_seasonal_naive_scale() -> None:
    # m = 2: |y_t - y_{t-2}| for t = 2..5: |3-1|, |1-2|, |6-3|, |1-1| -> (2+1+3+0)/4
    assert seasonal_naive_scale(np.array([1, 2, 3, 1, 6, 1.0]), 2) == pytest.approx(6 / 4)
    # fewer than m + 1 points: lag-1 naive: |4-1|, |2-4| -> (3 + 2) / 2
    assert seasonal_naive_scale(np.array([1, 4, 2.0]), 7) == pytest.approx(2.5)
    # exactly m + 1 points uses the seasonal lag: |5 - 1| / 1
    assert seasonal_naive_scale(np.array([1, 9, 5.0]), 2) == pytest.approx(4.0)
    assert math.isnan(seasonal_naive_scale(np.array([2, 0, 2, 0.0]), 2))  # scale 0
    assert math.isnan(seasonal_naive_scale(np.array([3.0]), 7))            # 1 point
    assert math.isnan(seasonal_naive_scale(np.array([]), 7))
    with pytest.raises(ValueError):
        seasonal_naive_scale(np.ones(5), 0)


def test_mase_mean_over_series_with_finite_scale() -> None:
    y = np.array([[1.0, 3.0, np.nan], [2.0, 2.0, 2.0], [5.0, 5.0, 5.0]])
    f = np.array([[2.0, 1.0, 7.0], [2.0, 3.0, 5.0], [0.0, 0.0, 0.0]])
    scale = np.array([2.0, 0.5, np.nan])
    # series 0: |e| = 1, 2 (third cell NaN) -> MAE 1.5 / 2 = 0.75
    # series 1: |e| = 0, 1, 3 -> MAE 4/3 / 0.5 = 8/3
    # series 2: scale NaN -> excluded
    expected = (0.75 + 8 / 3) / 2
    assert mase(y, f, scale) == pytest.approx(expected)
    # same with the (n, 1) and the broadcast full-shape scale the backtest passes
    assert mase(y, f, scale[:, None]) == pytest.approx(expected)
    assert mase(y, f, np.broadcast_to(scale[:, None], y.shape)) == pytest.approx(expected)
    # 3-D (n, T, H) input: series stay on the first axis
    assert mase(y[:, :, None], f[:, :, None], scale) == pytest.approx(expected)
    # a single 1-D series with a scalar scale
    assert mase(np.array([1.0, 3.0]), np.array([2.0, 1.0]), 2.0) == pytest.approx(0.75)
    assert math.isnan(mase(y, f, np.full(3, np.nan)))


def test_coverage_and_pinball_hand_computed() -> None:
    y = np.array([1.0, 5.0, 3.0, 0.0])
    q = np.array([2.0, 4.0, 3.0, 1.0])
    assert coverage(y, q) == pytest.approx(3 / 4)  # 5 <= 4 fails only
    # level 0.9, d = y - q = -1, 1, 0, -1 -> losses 0.1, 0.9, 0, 0.1 -> mean 1.1 / 4
    assert pinball_loss(y, q, 0.9) == pytest.approx(1.1 / 4)
    # level 0.5 pinball = MAE / 2
    assert pinball_loss(y, q, 0.5) == pytest.approx(mae(y, q) / 2)
    with pytest.raises(ValueError):
        pinball_loss(y, q, 1.0)


def test_summarize_uses_one_mask_for_everything() -> None:
    y = np.array([3.0, 0.0, 5.0, 2.0, 4.0])
    f = np.array([2.0, 1.0, 5.0, 4.0, 4.0])
    q90 = np.array([4.0, 2.0, 4.0, 5.0, np.nan])   # last cell has no quantile -> dropped
    q95 = np.array([5.0, 2.0, 6.0, 5.0, 9.0])
    r = summarize(y, f, q90=q90, q95=q95, scale=np.full(5, 2.0))
    assert set(r) == {"wape", "mae", "rmse", "bias", "mase", "coverage_q90", "coverage_q95", "n"}
    assert r["n"] == 4
    assert r["wape"] == pytest.approx(4 / 10)    # the first four cells are Y, F above
    assert r["mae"] == pytest.approx(1.0)
    assert r["rmse"] == pytest.approx(math.sqrt(6 / 4))
    assert r["bias"] == pytest.approx(0.2)
    assert r["mase"] == pytest.approx(1.0 / 2.0)  # MAE 1 / scale 2 (1-D: one series)
    assert r["coverage_q90"] == pytest.approx(3 / 4)  # 5 <= 4 fails
    assert r["coverage_q95"] == pytest.approx(1.0)
    bare = summarize(y, f)
    assert bare["n"] == 5 and math.isnan(bare["mase"]) and math.isnan(bare["coverage_q90"])


def test_summarize_nan_scale_only_drops_series_from_mase() -> None:
    y = np.array([[1.0, 1.0], [2.0, 4.0]])
    f = np.array([[1.0, 1.0], [3.0, 3.0]])
    r = summarize(y, f, scale=np.array([np.nan, 0.5]))
    assert r["n"] == 4 and r["mae"] == pytest.approx(0.5)   # (0 + 0 + 1 + 1) / 4
    assert r["mase"] == pytest.approx(1.0 / 0.5)             # series 1 only: MAE 1 / 0.5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100)), min_size=1, max_size=30))
def test_metric_invariants(pairs: list[tuple[float, float]]) -> None:
    y = np.array([p[0] for p in pairs])
    f = np.array([p[1] for p in pairs])
    assert mae(y, f) <= rmse(y, f) + 1e-9
    assert 0.0 <= coverage(y, f) <= 1.0
    assert mae(y, y) == 0.0
    if y.sum() > 0:
        assert wape(y, f) == pytest.approx(mae(y, f) * len(y) / y.sum())
        assert bias(y, f) >= -1.0 - 1e-12          # forecasts >= 0 cannot under-shoot by > 100%
