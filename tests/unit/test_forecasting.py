"""Intermittent and seasonal candidate models: hand-computed values, statsforecast parity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agents.count_quantiles import count_cdf, count_quantiles
from agents.forecasting import SBA, TSB, Croston, RiverRegressor, SeasonalProfile
from agents.forecasting.distribution import ForecastDistribution

SERIES = [0, 0, 3, 0, 5]


def _learn(model, ys, xs=None):
    for i, y in enumerate(ys):
        model.learn_one(float(y), None if xs is None else xs[i])
    return model


# ---------------------------------------------------------------- hand-computed values
def test_croston_hand_computed():
    m = _learn(Croston(alpha=0.1), SERIES)
    # first sale in period 3: z = 3, p = 3 (periods since start, inclusive)
    # period 5, q = 2:       z = 3 + 0.1 (5 - 3) = 3.2 ; p = 3 + 0.1 (2 - 3) = 2.9
    assert m.forecast(3) == pytest.approx([3.2 / 2.9] * 3, abs=1e-12)


def test_sba_hand_computed():
    m = _learn(SBA(alpha=0.2), SERIES)
    # z = 3 + 0.2 (5 - 3) = 3.4 ; p = 3 + 0.2 (2 - 3) = 2.8 ; factor 1 - 0.2 / 2 = 0.9
    assert m.forecast(1)[0] == pytest.approx(0.9 * 3.4 / 2.8, abs=1e-12)


def test_tsb_hand_computed():
    m = _learn(TSB(alpha_demand=0.1, alpha_probability=0.2), SERIES)
    # pi: 0 (init, first period empty) -> 0 -> 0.2 -> 0.16 -> 0.16 + 0.2 (1 - 0.16) = 0.328
    # z:  3 (first sale) -> 3 + 0.1 (5 - 3) = 3.2
    assert m.forecast(2) == pytest.approx([0.328 * 3.2] * 2, abs=1e-12)


def test_tsb_decays_during_zero_run_while_croston_does_not():
    tsb = _learn(TSB(), [4, 4, 4] + [0] * 20)
    cro = _learn(Croston(), [4, 4, 4] + [0] * 20)
    assert tsb.forecast(1)[0] < 0.5
    assert cro.forecast(1)[0] == pytest.approx(4.0)


@pytest.mark.parametrize("cls", [Croston, SBA, TSB])
def test_cold_start_is_zero(cls):
    m = cls()
    assert m.forecast(3) == [0.0, 0.0, 0.0]
    _learn(m, [0, 0, 0])
    assert m.forecast(2) == [0.0, 0.0]


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [(Croston, {"alpha": 0.0}), (SBA, {"alpha": 1.5}), (TSB, {"alpha_demand": -0.1}),
     (TSB, {"alpha_probability": 2}), (SeasonalProfile, {"base": "ets"}),
     (SeasonalProfile, {"season_length": 0}), (SeasonalProfile, {"shrinkage": 1.2}),
     (RiverRegressor, {"learning_rate": 0.0}), (RiverRegressor, {"season_length": 2.5}),
     (RiverRegressor, {"clip_gradient": -1.0})],
)
def test_invalid_parameters_raise_in_constructor(factory, kwargs):
    with pytest.raises(ValueError, match="must"):
        factory(**kwargs)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_invalid_demand_raises(bad):
    with pytest.raises(ValueError, match="non-negative"):
        TSB().learn_one(bad)


def test_invalid_season_pos_raises():
    with pytest.raises(ValueError, match="season_pos"):
        SeasonalProfile(season_length=7).learn_one(1.0, {"season_pos": 7})


# ---------------------------------------------------------------- statsforecast parity
def _intermittent(seed: int, n: int = 300, p: float = 0.3, leading_zeros: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < p) * rng.integers(1, 20, n)
    y[:leading_zeros] = 0
    y[leading_zeros] = 7  # make sure there is a sale
    return y.astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("leading_zeros", [0, 5])
def test_croston_and_sba_match_statsforecast(seed, leading_zeros):
    sf = pytest.importorskip("statsforecast.models")
    y = _intermittent(seed, leading_zeros=leading_zeros)
    ours_c = _learn(Croston(alpha=0.1), y).forecast(1)[0]
    ours_s = _learn(SBA(alpha=0.1), y).forecast(1)[0]
    ref_c = sf.CrostonClassic().forecast(y=y, h=1)["mean"][0]
    ref_s = sf.CrostonSBA().forecast(y=y, h=1)["mean"][0]
    assert abs(ours_c - ref_c) < 1e-9
    assert abs(ours_s - ref_s) < 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("leading_zeros", [0, 5])
def test_tsb_matches_statsforecast(seed, leading_zeros):
    sf = pytest.importorskip("statsforecast.models")
    y = _intermittent(seed, leading_zeros=leading_zeros)
    ours = _learn(TSB(alpha_demand=0.2, alpha_probability=0.05), y).forecast(1)[0]
    ref = sf.TSB(alpha_d=0.2, alpha_p=0.05).forecast(y=y, h=1)["mean"][0]
    assert abs(ours - ref) < 1e-9


# ---------------------------------------------------------------- seasonal models
WEEK = [8.0, 6.0, 4.0, 6.0, 8.0, 0.0, 2.0]


def _weekly(n_weeks: int, seed: int = 0, poisson: bool = True):
    rng = np.random.default_rng(seed)
    ys, xs = [], []
    for _ in range(n_weeks):
        for d, mu in enumerate(WEEK):
            ys.append(float(rng.poisson(mu)) if poisson else mu)
            xs.append({"season_pos": d})
    return ys, xs


def test_seasonal_profile_recovers_weekly_shape():
    ys, xs = _weekly(40)
    m = _learn(SeasonalProfile(base="tsb"), ys, xs)
    prof = np.array(m.profile)
    expected = np.array(WEEK) / np.mean(WEEK)
    assert prof[5] == 0.0  # no Saturday sales ever -> Saturday multiplier exactly 0
    assert np.mean(prof) == pytest.approx(1.0)
    assert np.abs(prof - expected).max() < 0.35


def test_seasonal_profile_counter_matches_explicit_positions():
    ys, xs = _weekly(10)
    a = _learn(SeasonalProfile(), ys, xs)
    b = _learn(SeasonalProfile(), ys)  # internal counter from position 0
    assert a.forecast(7) == b.forecast(7)
    assert a.forecast(7, [{"season_pos": (d + 3) % 7} for d in range(7)]) == a.forecast(10)[3:]


def test_river_regressor_learns_weekly_pattern_and_exposes_plain_weights():
    ys, xs = _weekly(80, poisson=False)
    m = _learn(RiverRegressor(), ys, xs)
    fc = m.forecast(14)
    assert fc[5] == pytest.approx(0.0, abs=0.5) and fc[12] == pytest.approx(0.0, abs=0.5)
    assert fc[0] == pytest.approx(8.0, rel=0.1)
    w = m.weights
    assert set(w) == {f"s{j}" for j in range(7)} | {"short", "long", "lag", "intercept"}
    assert all(type(v) is float for v in w.values())


def test_river_regressor_forecast_equals_rivers_predict_one_bit_for_bit():
    """The inlined dot product of forecast() is River's predict_one on the feature dict."""
    rng = np.random.default_rng(11)
    ys = [float(rng.poisson(4) * (rng.random() < 0.5)) for _ in range(150)]
    m = _learn(RiverRegressor(), ys, [{"season_pos": i % 7} for i in range(150)])
    inv, scale = 1.0 / m._scale(), m._scale()
    short, long, fed, expected = m._short, m._long, [], []
    for k in range(21):
        lag = fed[k - 7] if k >= 7 else (m._lags[(m._n + k) % 7] if m._n + k >= 7 else long)
        yhat = max(0.0, m._reg.predict_one(m._features((150 + k) % 7, short, long, lag, inv))) * scale
        expected.append(yhat)
        fed.append(yhat)
        short += m.short_alpha * (yhat - short)
        long += m.long_alpha * (yhat - long)
    assert m.forecast(21) == expected


def test_river_regressor_never_negative_after_spike():
    m = RiverRegressor()
    _learn(m, [1.0, 0.0, 0.0, 500.0] + [0.0] * 30)
    assert min(m.forecast(28)) >= 0.0


# ---------------------------------------------------------------- distribution helpers
def test_count_quantiles_match_scipy():
    rng = np.random.default_rng(3)
    mean = rng.uniform(0.05, 30, 200)
    var = mean * rng.uniform(0.3, 20, 200)
    q = rng.uniform(0.05, 0.99, 200)
    got = count_quantiles(mean, var, q)
    nb = var > mean
    p = mean[nb] / var[nb]
    n = mean[nb] ** 2 / (var[nb] - mean[nb])
    np.testing.assert_array_equal(got[nb], stats.nbinom.ppf(q[nb], n, p))
    np.testing.assert_array_equal(got[~nb], stats.poisson.ppf(q[~nb], mean[~nb]))
    assert count_quantiles(np.array(0.0), np.array(0.0), np.array(0.99)) == 0.0


def test_count_cdf_matches_scipy():
    assert count_cdf(3, 2.0, 6.0) == pytest.approx(stats.nbinom.cdf(3, 1.0, 1 / 3), abs=1e-12)
    assert count_cdf(3, 2.0, 1.0) == pytest.approx(stats.poisson.cdf(3, 2.0), abs=1e-12)
    assert count_cdf(-1, 2.0, 6.0) == 0.0


def test_distribution_totals():
    d = ForecastDistribution(
        mean=np.array([1.0, 2.0, 0.0]), variance=np.array([2.0, 4.0, 0.0]),
        quantiles={0.9: np.array([3.0, 5.0, 0.0])}, model="m")
    assert d.total(0, 3) == (3.0, 6.0)
    assert d.total(2, 2) == (0.0, 0.0)
    expected = stats.nbinom.ppf(0.95, 3.0**2 / 3.0, 0.5)  # NB matched to mean 3, var 6
    assert d.total_quantile(0, 3, 0.95) == expected
    with pytest.raises(ValueError, match="start"):
        d.total(2, 5)
    with pytest.raises(ValueError, match="level"):
        d.total_quantile(0, 2, 1.0)
