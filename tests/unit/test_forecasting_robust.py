"""Outlier-robust updating, lead-time total calibration and selection hysteresis (format v2)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.forecasting import DemandForecaster, decode, encode


def _feed(f, ys, start=0):
    for t, y in enumerate(ys, start):
        f.learn_one(float(y), {"season_pos": t % 7})
    return f


def _steady(n, mean=50.0, seed=0):
    return np.random.default_rng(seed).poisson(mean, n).astype(float)


@pytest.mark.parametrize("candidates", [None, ["sba"], ["tsb"], ["seasonal_tsb"], ["river_lr"]])
def test_single_100x_spike_barely_moves_forecast_and_dispersion(candidates):
    ys = _steady(120)
    f = _feed(DemandForecaster(candidates=candidates), ys[:100])
    level, phi = np.mean(f.forecast(7)), f.dispersion()
    f.learn_one(5000.0, {"season_pos": 100 % 7})  # one wholesale order, 100x the usual day
    after = []
    for t in range(101, 120):
        after.append(np.mean(f.forecast(7)))
        assert f.dispersion() < max(3.0 * phi, 3.0)
        f.learn_one(ys[t], {"season_pos": t % 7})
    assert max(after) < 1.3 * level
    # the same spike learned raw (format v1 behaviour) drags the level up for weeks
    raw = _feed(DemandForecaster(candidates=candidates, robust=False), ys[:100])
    raw.learn_one(5000.0, {"season_pos": 100 % 7})
    assert raw.dispersion() > 20.0 * max(phi, 1.0)


def test_permanent_level_shift_is_learned_within_20_periods():
    ys = np.concatenate([_steady(100, 20.0, 1), _steady(60, 60.0, 2)])
    f = _feed(DemandForecaster(), ys[:100])
    before = np.mean(f.forecast(7))
    _feed(f, ys[100:120], 100)
    assert np.mean(f.forecast(7)) > 2.0 * before  # most of the x3 shift after 20 periods
    _feed(f, ys[120:], 120)
    assert np.mean(f.forecast(7)) == pytest.approx(60.0, rel=0.15)


def test_intermittent_zeros_still_learned_as_zeros():
    f = DemandForecaster(candidates=["tsb"])
    _feed(f, [8, 0, 0, 9, 0, 7, 0, 0, 10, 0] * 10)
    assert f.clean(0.0) == 0.0
    _feed(f, [0] * 40, 100)
    assert f.forecast(1)[0] < 0.2  # TSB's obsolescence decay is untouched


def test_robust_off_reproduces_format_v1():
    # golden values computed with the format-version-1 implementation on the same series
    rng = np.random.default_rng(42)
    ys = rng.poisson(20, 120).astype(float)
    ys[[40, 90]] = [2000.0, 900.0]
    ys[::7] = 0.0
    f = _feed(DemandForecaster(robust=False, switch_margin=0.0, total_calibration_rate=0.0), ys)
    d = f.forecast_distribution(7, [{"season_pos": (120 + j) % 7} for j in range(7)])
    assert d.model == "river_lr"
    np.testing.assert_allclose(
        d.mean, [21.280718163, 17.148295588, 18.139716542, 17.046646233, 18.536286382,
                 23.578745583, 5.904015388], rtol=0, atol=1e-9)
    assert f.dispersion() == pytest.approx(441.421908494, abs=1e-9)
    np.testing.assert_array_equal(d.quantiles[0.95], [211, 168, 179, 167, 183, 233, 30])
    np.testing.assert_array_equal(d.quantiles[0.5], [15, 7, 9, 7, 10, 20, 0])
    np.testing.assert_array_equal(d.variance, d.period_variance)
    assert d.total_quantile(0, 7, 0.95) == 572.0


def _spiky(n=300, seed=3):
    rng = np.random.default_rng(seed)
    ys = rng.negative_binomial(2, 2 / 22, n).astype(float)  # mean 20, over-dispersed
    ys[rng.random(n) < 0.03] *= 40  # occasional wholesale orders
    return ys


def test_total_variance_is_inflated_and_prefix_sums_match_totals():
    f = _feed(DemandForecaster(), _spiky())
    d = f.forecast_distribution(14)
    assert f.total_inflation >= 1.0 and d.inflation == f.total_inflation
    assert d.inflation_window == 7 and d.total_levels == f.calibrated_total_levels
    assert (d.variance >= 0).all()
    assert d.variance[0] == pytest.approx(d.period_variance[0])
    for k in range(15):
        mean, var = d.total(0, k)
        assert var == pytest.approx(d.variance[:k].sum(), rel=1e-12, abs=1e-9)
        assert var >= d.period_variance[:k].sum() - 1e-9
    m7, v7 = d.total(0, 7)
    assert v7 == pytest.approx(f.total_inflation * d.period_variance[:7].sum())
    q50, q90, q95 = (d.total_quantile(0, 7, q) for q in (0.5, 0.9, 0.95))
    assert q95 >= q90 >= q50
    assert d.total_quantile(0, 7, 0.97) >= d.total_quantile(0, 7, 0.95)  # off-grid level


def test_total_calibration_covers_correlated_series():
    # AR(1) level around 20: consecutive errors correlated, independent sums under-cover
    rng = np.random.default_rng(5)
    level, ys = 20.0, []
    for _ in range(1500):
        level = max(1.0, 20.0 + 0.95 * (level - 20.0) + rng.normal(0, 2.0))
        ys.append(float(rng.poisson(level)))
    f, hits, raw_hits = DemandForecaster(candidates=["tsb"]), [], []
    for t, y in enumerate(ys):
        if t >= 300 and t + 7 <= len(ys):
            d = f.forecast_distribution(7)
            total = sum(ys[t : t + 7])
            hits.append(total <= d.total_quantile(0, 7, 0.95))
            raw_q = type(d)(d.mean, d.period_variance, d.quantiles, d.model)
            raw_hits.append(total <= raw_q.total_quantile(0, 7, 0.95))
        f.learn_one(y)
    assert f.total_inflation > 1.2
    assert np.mean(raw_hits) < 0.9
    assert 0.9 <= np.mean(hits) <= 0.99


def test_hysteresis_keeps_incumbent_on_near_ties():
    ys = _spiky(400, seed=8)
    plain = DemandForecaster(switch_margin=0.0)
    sticky = DemandForecaster(switch_margin=0.05)
    switches = {"plain": 0, "sticky": 0}
    for t, y in enumerate(ys):
        for name, f in (("plain", plain), ("sticky", sticky)):
            before = f.served_model
            f.learn_one(y, {"season_pos": t % 7})
            switches[name] += int(t >= 14 and f.served_model != before)
            if name == "sticky" and f.served_model != before and t >= 14:
                mae = f.candidate_mae
                assert mae[f.served_model] < 0.95 * mae[before]
    assert switches["sticky"] < switches["plain"]


def test_round_trip_exact_after_spikes_and_continue():
    ys = _spiky(200, seed=9)
    f = _feed(DemandForecaster(), ys[:150])
    g = decode(encode(f))
    assert encode(g) == encode(f)
    assert g.forecast_distribution(14) == f.forecast_distribution(14)
    assert g.robust_size == f.robust_size and g.total_inflation == f.total_inflation
    _feed(f, ys[150:], 150)
    _feed(g, ys[150:], 150)
    assert encode(g) == encode(f)
    assert len(encode(f)) < 1500
    h = decode(encode(DemandForecaster(robust=False, huber_k=2.0, switch_margin=0.1,
                                       total_window=5, total_calibration_rate=0.0)))
    assert (h.robust, h.huber_k, h.switch_margin, h.total_window, h.total_calibration_rate) == (
        False, 2.0, 0.1, 5, 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"huber_k": 0.0}, {"huber_k": float("inf")}, {"switch_margin": 1.0},
     {"switch_margin": -0.1}, {"total_window": 0}, {"total_calibration_rate": 1.0}],
)
def test_invalid_robust_parameters(kwargs):
    with pytest.raises(ValueError, match="must"):
        DemandForecaster(**kwargs)
