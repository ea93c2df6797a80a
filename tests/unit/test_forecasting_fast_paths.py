"""The forecasters' fast paths compute the same floats, bit for bit, as the general code they skip.

``forecast_at`` (the selector's window forecast without feature dicts), ``state_values`` and the
struct-packed serialization (no numpy round trip), the season profile's refresh: each is checked
against the general path or the formula it replaces, on generated series.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.forecasting import CANDIDATES, DemandForecaster, decode, encode
from agents.forecasting.covariates import Lifted
from agents.forecasting.intermittent import TSB, Croston
from agents.forecasting.seasonal import RiverRegressor, SeasonalProfile

NAMES = sorted(CANDIDATES)

demands = st.lists(
    st.one_of(st.just(0.0), st.just(0.0), st.integers(0, 40).map(float), st.floats(0.0, 1e4)),
    min_size=0, max_size=60,
)


def _learned(name: str, ys: list[float], m: int = 7):
    model = CANDIDATES[name](m)
    for t, y in enumerate(ys):
        model.learn_one(y, {"season_pos": t % m})
    return model


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=30, deadline=None)
@given(ys=demands, pos=st.integers(0, 6), horizon=st.integers(0, 30), lift=st.booleans())
def test_forecast_at_equals_forecast_of_calendar_features(name, ys, pos, horizon, lift):
    model = _learned(name, ys)
    if lift:  # a covariate twin goes through the general path
        model = Lifted(model)
    xs = [{"season_pos": (pos + j) % 7} for j in range(horizon)]
    assert model.forecast_at(horizon, pos, 7) == model.forecast(horizon, xs)


@pytest.mark.parametrize("name", ["seasonal_sba", "river_lr"])
def test_forecast_at_of_another_calendar_checks_positions_as_forecast_does(name):
    model = _learned(name, [3.0, 0.0, 5.0, 1.0] * 5, m=4)
    xs = [{"season_pos": (2 + j) % 7} for j in range(7)]  # positions 4..6 do not exist in m = 4
    with pytest.raises(ValueError, match="season_pos"):
        model.forecast(7, xs)
    with pytest.raises(ValueError, match="season_pos"):
        model.forecast_at(7, 2, 7)
    assert model.forecast_at(2, 1, 7) == model.forecast(2, [{"season_pos": 1}, {"season_pos": 2}])


def _stored_layout(model) -> list[float]:
    """The state vector as the stored format lays it out (each class's ``state()`` before
    ``state_values`` existed), written out independently of the code under test."""
    if isinstance(model, Lifted):
        return _stored_layout(model.base)
    if isinstance(model, Croston):
        return [model._z, model._p, model._q]
    if isinstance(model, TSB):
        return [model._z, model._pi, model._n]
    if isinstance(model, SeasonalProfile):
        return [*_stored_layout(model._level), *model._num, *model._wt, float(model._next_pos)]
    if isinstance(model, RiverRegressor):
        w = model._reg._weights
        return ([w[k] for k in model._names] + [model._reg.intercept]
                + [model._short, model._long, model._scale_num, model._scale_wt, model._n,
                   model._next_pos] + model._lags)
    return list(model.state())


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=30, deadline=None)
@given(ys=demands)
def test_state_values_are_the_state_vector(name, ys):
    model = _learned(name, ys)
    values = model.state_values()
    assert [type(v) for v in values] == [float] * model.state_size
    assert np.asarray(values, dtype="<f8").tobytes() == np.asarray(model.state(), dtype="<f8").tobytes()
    stored = np.asarray(_stored_layout(model), dtype="<f8")
    assert np.asarray(values, dtype="<f8").tobytes() == stored.tobytes()


@settings(max_examples=60, deadline=None)
@given(ys=demands, shrinkage=st.sampled_from([0.0, 0.25, 1.0]), m=st.integers(1, 9))
def test_season_profile_equals_its_formula(ys, shrinkage, m):
    model = SeasonalProfile(base="sba", season_length=m, shrinkage=shrinkage)
    for t, y in enumerate(ys):
        model.learn_one(y, {"season_pos": (3 * t) % m})  # some positions may stay unseen
        seen = [a / w for a, w in zip(model._num, model._wt, strict=True) if w > 0.0]
        mean = sum(seen) / len(seen) if seen else 0.0
        expected = [1.0] * m if mean <= 0.0 else [
            (1.0 - shrinkage) * (a / w) / mean + shrinkage if w > 0.0 else 1.0
            for a, w in zip(model._num, model._wt, strict=True)
        ]
        assert model.profile == expected


def _reference_state_bytes(model: DemandForecaster) -> bytes:
    """The serializer's state bytes as numpy wrote them before the struct fast path."""
    parts = [np.asarray(model._selector_state(), dtype="<f8")]
    parts += [np.asarray(m.state(), dtype="<f8") for m in model._models]
    if model.covariate_effects is not None:
        parts.append(np.asarray(model.covariate_effects.state(), dtype="<f8"))
    return np.concatenate(parts).tobytes()


@settings(max_examples=30, deadline=None)
@given(ys=demands, covariates=st.booleans())
def test_encoded_state_bytes_are_numpys(ys, covariates):
    import msgpack

    f = DemandForecaster()
    if covariates:
        f.enable_covariates()
    for t, y in enumerate(ys):
        f.learn_one(y, {"season_pos": t % 7, **({"promo_display": 1.0} if covariates and t % 5 == 0 else {})})
    blob = encode(f)
    doc = msgpack.unpackb(blob[1:], raw=False)
    assert doc[2] == _reference_state_bytes(f)
    g = decode(blob)
    assert encode(g) == blob
    assert g.forecast_distribution(7) == f.forecast_distribution(7)


@settings(max_examples=30, deadline=None)
@given(ys=demands)
def test_window_tracking_fast_path_equals_the_general_one(ys):
    """x with only ``season_pos`` takes ``forecast_at``; an extra (ignored) key the dict path."""
    fast, general = DemandForecaster(), DemandForecaster()
    for t, y in enumerate(ys):
        fast.learn_one(y, {"season_pos": t % 7})
        general.learn_one(y, {"season_pos": t % 7, "unused": 1.0})
    assert encode(fast) == encode(general)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=30, deadline=None)
@given(ys=demands, pos=st.one_of(st.none(), st.integers(0, 6)))
def test_predict_next_is_the_one_step_forecast(name, ys, pos):
    model = _learned(name, ys)
    x = None if pos is None else {"season_pos": pos}
    assert model.predict_next(x) == model.forecast(1, None if x is None else [x])[0]


def test_predict_next_checks_the_position_as_forecast_does():
    model = _learned("river_lr", [2.0, 0.0, 4.0] * 10)
    with pytest.raises(ValueError, match="season_pos"):
        model.predict_next({"season_pos": 7})


@settings(max_examples=50, deadline=None)
@given(levels=st.lists(st.floats(1e-300, 1.0, exclude_max=True), min_size=1, max_size=50))
def test_vectorised_normal_quantiles_are_scipys(levels):
    from scipy import stats

    from agents.policy.service_level import norm_ppf, norm_ppf_array

    got = norm_ppf_array(np.asarray(levels))
    want = np.array([stats.norm.ppf(q) for q in levels], dtype=np.float64)
    assert got.tobytes() == want.tobytes()
    assert [norm_ppf(q) for q in levels] == want.tolist()


@settings(max_examples=60, deadline=None)
@given(ys=st.lists(st.one_of(st.just(0.0), st.integers(0, 40).map(float), st.floats(0.0, 1e6),
                             st.floats(0.0, 1e-3)), min_size=1, max_size=120),
       with_pos=st.booleans())
def test_inline_sgd_step_is_rivers_learn_one(ys, with_pos):
    from agents.forecasting.seasonal import RiverRegressor

    inline, river = RiverRegressor(), RiverRegressor()
    river._inline_sgd = False  # River's own LinearRegression.learn_one
    for t, y in enumerate(ys):
        x = {"season_pos": t % 7} if with_pos else None
        inline.learn_one(y, x)
        river.learn_one(y, x)
        assert inline.state().tobytes() == river.state().tobytes()
    assert inline.forecast(14) == river.forecast(14)


def test_l2_penalty_learns_through_river():
    from agents.forecasting.seasonal import RiverRegressor

    a, b = RiverRegressor(l2=0.1), RiverRegressor(l2=0.1)
    b._inline_sgd = False
    for t in range(40):
        a.learn_one(float(t % 5), {"season_pos": t % 7})
        b.learn_one(float(t % 5), {"season_pos": t % 7})
    assert a.state().tobytes() == b.state().tobytes()
