from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest

from streams.baselines import (
    naive_forecasts,
    refit_origins,
    run_baselines,
    seasonal_naive_forecasts,
    statsforecast_forecasts,
)

# two series on a T = 10 grid; series 1 starts at period 3 (its earlier zeros are not its data)
Y = np.array([
    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
    [0.0, 0.0, 0.0, 5.0, 0.0, 2.0, 0.0, 0.0, 1.0, 3.0],
])
FIRST = np.array([0, 3])


def test_naive_hand_values() -> None:
    F = naive_forecasts(Y, FIRST, 3)
    assert F.shape == (2, 10, 3)
    # F[i, t, h-1] = y[i, t-h]
    assert F[0, 5, 0] == 5.0   # t=5, h=1: origin 4 -> y[4] = 5
    assert F[0, 5, 2] == 3.0   # t=5, h=3: origin 2 -> y[2] = 3
    assert F[1, 4, 0] == 5.0   # series 1, origin 3 (its first period) -> 5
    assert F[1, 9, 1] == 0.0   # origin 7 -> y[7] = 0
    assert np.isnan(F[1, 5, 2])  # origin 2 is before series 1's first period
    assert np.isnan(F[0, 0]).all()            # nothing forecasts period 0
    assert np.isnan(F[0, 1, 1]) and F[0, 1, 0] == 1.0
    # exactly the cells with origin t-h >= first are finite
    t = np.arange(10)[None, :, None]
    h = np.arange(1, 4)[None, None, :]
    assert np.array_equal(np.isfinite(F), np.broadcast_to(t - h >= FIRST[:, None, None], F.shape))


def test_seasonal_naive_hand_values() -> None:
    m = 2
    F = seasonal_naive_forecasts(Y, FIRST, 3, m)
    # forecast of t at origin t-h is y[t - m*ceil(h/m)]; needs a full season: t-h-m+1 >= first
    assert F[0, 5, 0] == 4.0   # h=1: lag 2 -> y[3]
    assert F[0, 5, 1] == 4.0   # h=2: lag 2 -> y[3] (origin 3 observed it)
    assert F[0, 5, 2] == 2.0   # h=3: lag 4 -> y[1] (origin 2 has seen y[1], not y[3])
    assert F[0, 2, 0] == 1.0   # origin 1 has a full season (periods 0, 1)
    assert np.isnan(F[0, 1, 0])  # origin 0: only one period seen
    assert F[1, 5, 0] == 5.0   # series 1: origin 4 sees periods 3, 4 -> y[3]
    assert np.isnan(F[1, 5, 1])  # origin 3: only one period of series 1
    assert F[1, 9, 2] == 2.0   # h=3: lag 4 -> y[5]; origin 6 >= first + m - 1
    # m = 1 equals naive
    assert np.array_equal(seasonal_naive_forecasts(Y, FIRST, 3, 1), naive_forecasts(Y, FIRST, 3),
                          equal_nan=True)


def test_seasonal_naive_weekly_cycle_is_exact() -> None:
    week = np.array([5.0, 1.0, 1.0, 1.0, 1.0, 9.0, 0.0])
    y = np.tile(week, 6)[None, :]
    F = seasonal_naive_forecasts(y, np.array([0]), 7, 7)
    ok = np.isfinite(F)
    assert ok.sum() > 0
    assert np.array_equal(F[ok], np.broadcast_to(y[:, :, None], F.shape)[ok])


def test_refit_origins() -> None:
    assert refit_origins(0, 10, 3, 2).tolist() == [1, 4, 7]
    assert refit_origins(3, 10, 28, 28).tolist() == []      # never enough history
    assert refit_origins(10, 10, 3, 1).tolist() == []       # empty series


def test_statsforecast_mapping_hand_checked_with_naive() -> None:
    pytest.importorskip("statsforecast")
    # series starts at 2; refit every 3; first fit after 2 observations -> origins 3, 6, 9
    y = np.array([[0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]])
    F = statsforecast_forecasts(y, np.array([2]), 2, ["Naive"], refit_every=3,
                                min_history=2)["Naive"]
    # the refit at origin o forecasts y[o] for every step; origin t uses the latest refit o <= t
    expected = np.full((12, 2), np.nan)
    for t in range(3, 11):                   # forecast origins with a fit
        o = 3 + 3 * ((t - 3) // 3)           # latest refit origin
        for h in (1, 2):
            if t + h <= 11:
                expected[t + h, h - 1] = y[0, o]
    assert np.array_equal(F[0], expected, equal_nan=True)
    # spot checks written out: F[7, h=1] from origin 6 (refit 6) = y[6] = 5 ;
    # F[7, h=2] from origin 5 (refit 3, stale) = y[3] = 2
    assert F[0, 7, 0] == 5.0 and F[0, 7, 1] == 2.0


def test_statsforecast_models_no_future_leak_and_clipped() -> None:
    pytest.importorskip("statsforecast")
    rng = np.random.default_rng(7)
    T, H = 70, 3
    y = ((rng.random((3, T)) < 0.4) * rng.poisson(4, (3, T))).astype(float)
    first = np.array([0, 5, 30])
    y[1, :5] = 0.0
    y[2, :30] = 0.0
    y[1, 5] = y[2, 30] = 2.0
    kw = dict(refit_every=10, min_history=14, season_length=7)
    models = ("CrostonSBA", "TSB", "ADIDA", "AutoETS")
    base = statsforecast_forecasts(y, first, H, models, **kw)
    cut = 40                                  # perturb everything after origin 40
    y2 = y.copy()
    y2[:, cut + 1:] = rng.poisson(50, (3, T - cut - 1))
    pert = statsforecast_forecasts(y2, first, H, models, **kw)
    t = np.arange(T)[:, None]
    h = np.arange(1, H + 1)[None, :]
    past = (t - h) <= cut                     # forecasts with origin <= cut
    for nm in models:
        a, b = base[nm], pert[nm]
        assert a.shape == (3, T, H)
        assert np.array_equal(a[:, past], b[:, past], equal_nan=True), nm
        assert not np.array_equal(a[:, ~past], b[:, ~past], equal_nan=True), nm
        assert np.nanmin(a) >= 0.0
        # availability: origin t-h must be >= first + min_history - 1
        avail = (t - h)[None] >= (first + 13)[:, None, None]
        assert np.array_equal(np.isfinite(a), avail), nm


def test_statsforecast_matches_direct_fit_at_a_refit() -> None:
    pytest.importorskip("statsforecast")
    from statsforecast.models import TSB

    rng = np.random.default_rng(3)
    y = ((rng.random((1, 50)) < 0.5) * rng.poisson(3, (1, 50))).astype(float)
    F = statsforecast_forecasts(y, np.array([0]), 2, ["TSB"], refit_every=10, min_history=20)["TSB"]
    # refit origin 29 (= 0 + 20 - 1 + 10); origin t = 31 lies in its block: step (31-29)+h
    path = TSB(alpha_d=0.1, alpha_p=0.1).forecast(y=y[0, :30], h=11)["mean"]
    assert F[0, 32, 0] == pytest.approx(path[2])   # h=1 -> step 3
    assert F[0, 33, 1] == pytest.approx(path[3])   # h=2 -> step 4


def test_run_baselines_by_name_and_errors() -> None:
    out = run_baselines(Y, FIRST, 2, 2, ["seasonal_naive", "naive"])
    assert list(out) == ["seasonal_naive", "naive"]
    assert np.array_equal(out["naive"], naive_forecasts(Y, FIRST, 2), equal_nan=True)
    with pytest.raises(ValueError, match="unknown baseline"):
        run_baselines(Y, FIRST, 2, 2, ["prophet"])
    with pytest.raises(ValueError):
        naive_forecasts(Y, FIRST[:1], 2)


def test_missing_statsforecast_raises_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "statsforecast" or name.startswith("statsforecast."):
            raise ImportError("No module named 'statsforecast'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    for mod in [m for m in sys.modules if m == "statsforecast" or m.startswith("statsforecast.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(RuntimeError, match=r"pip install 'restock\[bench\]'"):
        run_baselines(Y, FIRST, 2, 7, ["naive", "tsb"], refit_every=3)
    # the numpy baselines still work without it
    assert "naive" in run_baselines(Y, FIRST, 2, 7, ["naive"])
