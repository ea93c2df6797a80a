"""DemandForecaster: selection, distribution, calibration, serialization errors."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.forecasting import (
    TSB,
    DemandForecaster,
    ForecastDistribution,
    RiverRegressor,
    SeasonalProfile,
    decode,
    encode,
)

SEASONAL = {"seasonal_sba", "seasonal_tsb", "river_lr"}
INTERMITTENT = {"sba", "tsb", "croston"}


def _feed(f, ys, xs=None):
    for t, y in enumerate(ys):
        f.learn_one(float(y), None if xs is None else xs[t])
    return f


def test_cold_start_distribution_is_zero():
    f = DemandForecaster()
    d = f.forecast_distribution(7)
    assert isinstance(d, ForecastDistribution)
    assert d.mean.shape == d.variance.shape == (7,)
    assert not d.mean.any() and not d.variance.any()
    assert all(not q.any() for q in d.quantiles.values())
    assert f.recent_mae is None and f.n_periods == 0 and f.model_version == 2  # format v2


def test_default_candidate_served_until_min_periods():
    f = DemandForecaster(candidates=["tsb", "sba"], min_periods_to_switch=10)
    _feed(f, [5, 0, 0, 0, 0, 0, 0, 0, 0])  # SBA's lower forecast wins on MAE, but too early
    assert f.served_model == "tsb"
    _feed(f, [0, 0])
    assert f.n_periods == 11
    assert f.served_model == min(f.candidate_mae, key=f.candidate_mae.get)


def test_selects_seasonal_model_on_weekly_series():
    rng = np.random.default_rng(0)
    week = [20, 15, 10, 15, 20, 0, 5]
    ys = [rng.poisson(week[t % 7]) for t in range(280)]
    f = _feed(DemandForecaster(), ys, [{"season_pos": t % 7} for t in range(280)])
    assert f.served_model in SEASONAL
    mae = f.candidate_mae
    assert mae[f.served_model] < min(mae["sba"], mae["tsb"])


def _sparse(seed: int, n: int = 400):
    rng = np.random.default_rng(seed)
    return (rng.random(n) < 0.05) * rng.integers(1, 10, n)


def test_sparse_series_serves_lowest_decayed_mae():
    f = _feed(DemandForecaster(), _sparse(1), [{"season_pos": t % 7} for t in range(400)])
    mae = f.candidate_mae
    assert f.served_model == min(mae, key=mae.get)
    assert f.recent_mae == mae[f.served_model]


@pytest.mark.xfail(
    strict=False,
    reason="known limitation: MAE is minimised by the median (0 on sparse demand), so on a "
    "sparse aperiodic series the near-zero river_lr or a noise-fitted seasonal profile often "
    "scores lower than SBA/TSB; the choice among them is a coin flip",
)
@pytest.mark.parametrize("seed", range(3))
def test_selects_intermittent_model_on_sparse_series(seed):
    f = _feed(DemandForecaster(), _sparse(seed), [{"season_pos": t % 7} for t in range(400)])
    assert f.served_model in INTERMITTENT


@settings(max_examples=30, deadline=None)
@given(ys=st.lists(st.integers(0, 50).map(lambda v: v if v % 3 == 0 else 0), min_size=1,
                   max_size=60))
def test_quantiles_are_ordered_and_nonnegative(ys):
    f = _feed(DemandForecaster(quantile_levels=(0.1, 0.5, 0.9, 0.95, 0.99)), ys)
    d = f.forecast_distribution(14)
    qs = np.stack([d.quantiles[q] for q in sorted(d.quantiles)])
    assert (qs >= 0).all()
    assert (np.diff(qs, axis=0) >= 0).all()
    assert (d.variance >= 0).all() and (d.mean >= 0).all()


def _coverage(f, ys):
    hits = {q: 0 for q in f.quantile_levels}
    for y in ys:
        d = f.forecast_distribution(1)
        for q in hits:
            hits[q] += int(y <= d.quantiles[q][0])
        f.learn_one(float(y))
    return {q: h / len(ys) for q, h in hits.items()}


def test_calibration_on_negative_binomial_series():
    rng = np.random.default_rng(7)
    ys = rng.negative_binomial(0.5, 0.5 / (0.5 + 3.0), 2000)  # mean 3, variance 21
    cov = _coverage(DemandForecaster(), ys)
    assert 0.92 <= cov[0.95] <= 0.98
    assert 0.86 <= cov[0.9] <= 0.94


def test_calibration_repairs_underdispersed_variance():
    # heavy-tailed sizes: the NB moment match is wrong in shape, ACI must still cover ~95 %
    rng = np.random.default_rng(11)
    ys = (rng.random(2000) < 0.3) * np.round(rng.pareto(1.5, 2000) * 5 + 1)
    calibrated = _coverage(DemandForecaster(), ys)[0.95]
    assert 0.92 <= calibrated <= 0.98


def test_distribution_model_and_totals_consistent():
    ys = [3, 0, 4, 0, 5, 0, 0] * 10
    f = _feed(DemandForecaster(), ys)
    d = f.forecast_distribution(7)
    assert d.model == f.served_model
    np.testing.assert_array_equal(d.mean, np.array(f.forecast(7)))
    mean, var = d.total(0, 7)
    assert mean == pytest.approx(d.mean.sum()) and var == pytest.approx(d.variance.sum())
    assert d.total_quantile(0, 7, 0.95) >= d.total_quantile(0, 7, 0.5) >= 0


@pytest.mark.parametrize(
    "kwargs",
    [{"candidates": ["nope"]}, {"candidates": []}, {"candidates": "tsb"},
     {"candidates": ["tsb", "tsb"]}, {"error_decay": 0.0}, {"min_periods_to_switch": -1},
     {"quantile_levels": (0.9, 0.5)}, {"quantile_levels": (0.5, 1.0)},
     {"calibration_rate": 1.0}, {"variance_decay": 2.0}, {"season_length": 0}],
)
def test_invalid_selector_parameters(kwargs):
    with pytest.raises(ValueError, match="must|unknown"):
        DemandForecaster(**kwargs)


# ---------------------------------------------------------------- serialization
def _trained(**kwargs):
    rng = np.random.default_rng(5)
    ys = (rng.random(200) < 0.4) * rng.integers(1, 40, 200)
    return _feed(DemandForecaster(**kwargs), ys, [{"season_pos": t % 7} for t in range(200)])


def test_encoded_size_is_compact():
    assert len(encode(_trained())) < 1500


def test_round_trip_with_custom_candidate_instances():
    cands = {"fast_tsb": TSB(0.3, 0.2), "prof": SeasonalProfile(base="sba", shrinkage=0.2),
             "lr": RiverRegressor(learning_rate=0.05)}
    f = _trained(candidates=cands, quantile_levels=(0.8, 0.99), calibration_rate=0.05)
    g = decode(encode(f))
    assert g.candidate_names == ["fast_tsb", "prof", "lr"]
    assert g.forecast_distribution(14) == f.forecast_distribution(14)
    for t in range(30):
        f.learn_one(t % 4, {"season_pos": t % 7})
        g.learn_one(t % 4, {"season_pos": t % 7})
    assert encode(g) == encode(f)


def test_unknown_version_raises():
    blob = bytearray(encode(_trained()))
    blob[0] = 99
    with pytest.raises(ValueError, match="unknown forecaster format version 99"):
        decode(bytes(blob))


@pytest.mark.parametrize(
    "mutate",
    [lambda b: b[:-5], lambda b: b[:1], lambda b: b"", lambda b: b[:1] + b"\xc1\xc1",
     lambda b: b[:1] + msgpack.packb([[7, 0.05], None, b""]),
     lambda b: b[:1] + msgpack.packb([[7, 0.05, 14, [0.5], 0.05, 0.02], None, b"\x00" * 12])],
)
def test_corrupt_bytes_raise_value_error(mutate):
    with pytest.raises(ValueError, match="corrupt|empty"):
        decode(mutate(encode(_trained())))


def test_encode_rejects_non_forecaster():
    with pytest.raises(ValueError, match="DemandForecaster"):
        encode(TSB())  # type: ignore[arg-type]
