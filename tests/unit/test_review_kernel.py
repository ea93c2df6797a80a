"""agents.review.kernel: the vectorised review equals the scalar policy functions float for float."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.policy import (
    PolicyParams,
    compute_levels,
    is_overstock,
    order_quantity,
    project_inventory,
    z_for_fill_rate,
)
from agents.review.kernel import (
    level_columns,
    order_quantities,
    overstock_columns,
    projection_columns,
    z_for_fill_rates,
)

rates = st.one_of(st.just(0.0), st.floats(1e-6, 1.0), st.floats(1.0, 1e3), st.floats(1e3, 1e6))
cv2s = st.one_of(st.just(0.0), st.floats(1e-4, 2.0), st.floats(2.0, 40.0))


@st.composite
def policies(draw: st.DrawFn) -> PolicyParams:
    weekly = draw(st.booleans())
    target = draw(st.sampled_from(["csl", "fill"]))
    level = draw(st.floats(0.5, 0.999))
    kw: dict = {
        "lead_time_periods": draw(st.one_of(st.sampled_from([1.0, 2.0, 7.0, 13.0]), st.floats(0.2, 20.0))),
        "review_period_periods": draw(st.one_of(st.just(1.0), st.floats(0.3, 7.0))),
        "lead_time_std_periods": draw(st.one_of(st.just(0.0), st.floats(0.0, 4.0))),
        "distribution": draw(st.sampled_from(["normal", "negbin"])),
        "periods_per_year": 52.0 if weekly else 365.0,
        "pack_size": draw(st.sampled_from([1, 1, 6, 12])),
        "moq": draw(st.sampled_from([0, 0, 10])),
    }
    if draw(st.booleans()):
        kw["ordering_cost"] = draw(st.floats(0.0, 100.0))
    if target == "csl":
        kw["cycle_service_level"] = level
    else:
        kw["fill_rate"] = level
    return PolicyParams(**kw)


def _horizon(p: PolicyParams) -> int:
    return max(1, math.ceil(p.lead_time_periods + p.review_period_periods))


@settings(max_examples=120, deadline=None)
@given(p=policies(), cols=st.lists(st.tuples(rates, cv2s), min_size=1, max_size=12))
def test_levels_equal_compute_levels_on_window_moments(p: PolicyParams, cols: list) -> None:
    h = _horizon(p)
    mean = np.array([np.full(h, r) for r, _ in cols])
    var = np.array([c * np.full(h, r) * np.full(h, r) for r, c in cols])
    lc = level_columns(mean, var, p)
    for i in range(len(cols)):
        ref = compute_levels(mean[i], var[i], p)
        for f in dataclasses.fields(ref):
            got = getattr(lc, f.name)
            want = getattr(ref, f.name)
            if want is None:
                assert got is None
            else:
                assert float(got[i]) == want, (f.name, i)


@settings(max_examples=80, deadline=None)
@given(p=policies(), data=st.data())
def test_levels_equal_compute_levels_on_varying_forecasts(p: PolicyParams, data: st.DataObject) -> None:
    h = data.draw(st.integers(_horizon(p), _horizon(p) + 30))
    n = data.draw(st.integers(1, 6))
    mean = np.array(data.draw(st.lists(st.lists(rates, min_size=h, max_size=h), min_size=n, max_size=n)))
    ratio = np.array(data.draw(st.lists(st.lists(st.floats(0.0, 30.0), min_size=h, max_size=h),
                                        min_size=n, max_size=n)))
    var = mean * ratio
    lc = level_columns(mean, var, p)
    for i in range(n):
        ref = compute_levels(mean[i], var[i], p)
        assert float(lc.reorder_point[i]) == ref.reorder_point
        assert float(lc.order_up_to[i]) == ref.order_up_to
        assert float(lc.q95_protection[i]) == ref.q95_protection
        assert float(lc.z[i]) == ref.z


@settings(max_examples=80, deadline=None)
@given(p=policies(), csl=st.lists(st.floats(0.5, 1 - 1e-9), min_size=1, max_size=8), rate=rates, cv2=cv2s)
def test_per_sku_cycle_service_levels(p: PolicyParams, csl: list[float], rate: float, cv2: float) -> None:
    h = _horizon(p)
    mean = np.full((len(csl), h), rate)
    var = cv2 * mean * mean
    lc = level_columns(mean, var, p, cycle_service_level=csl)
    for i, c in enumerate(csl):
        ref = compute_levels(mean[i], var[i], p.with_overrides(cycle_service_level=c))
        assert (float(lc.reorder_point[i]), float(lc.order_up_to[i])) == (ref.reorder_point, ref.order_up_to)


@settings(max_examples=150, deadline=None)
@given(beta=st.floats(0.01, 0.999),
       qs=st.lists(st.tuples(st.one_of(st.just(0.0), st.floats(0.0, 1e6)),
                             st.one_of(st.just(0.0), st.floats(1e-9, 1e6))), min_size=1, max_size=10))
def test_fill_rate_safety_factor_is_brentqs_iterate(beta: float, qs: list) -> None:
    q = np.array([a for a, _ in qs])
    s = np.array([b for _, b in qs])
    assert z_for_fill_rates(beta, q, s).tolist() == [z_for_fill_rate(beta, a, b) for a, b in qs]


def test_fill_rate_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="fill rate"):
        z_for_fill_rates(1.0, [1.0], [1.0])
    with pytest.raises(ValueError, match="standard deviation"):
        z_for_fill_rates(0.9, [1.0], [-1.0])


@settings(max_examples=120, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-50, 500), st.floats(0.0, 400.0), st.floats(0.0, 400.0)),
                     min_size=1, max_size=10),
       pack=st.sampled_from([1, 3, 12]), moq=st.sampled_from([0, 7, 100]))
def test_order_quantities_equal_order_quantity(rows: list, pack: int, moq: int) -> None:
    ip = [r[0] for r in rows]
    s = [min(r[1], r[2]) for r in rows]
    S = [max(r[1], r[2]) for r in rows]
    got = order_quantities(ip, s, S, pack, moq).tolist()
    assert got == [order_quantity(a, b, c, pack, moq) for a, b, c in zip(ip, s, S, strict=True)]


def test_order_quantity_rounding_near_a_whole_pack() -> None:
    # (S - IP) / pack within 1e-9 of a whole number: the scalar rounds to 9 decimals first
    S = [24.000000000001, 24.0000001, 36.0]
    got = order_quantities([0, 0, 0], [1.0, 1.0, 1.0], S, pack_size=12).tolist()
    assert got == [order_quantity(0, 1.0, v, 12) for v in S] == [24, 36, 36]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), h=st.integers(1, 30))
def test_projection_equals_project_inventory(data: st.DataObject, h: int) -> None:
    n = data.draw(st.integers(1, 5))
    on_hand = data.draw(st.lists(st.integers(0, 300), min_size=n, max_size=n))
    back = data.draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
    mean = np.array(data.draw(st.lists(st.lists(rates, min_size=h, max_size=h), min_size=n, max_size=n)))
    var = mean * np.array(data.draw(st.lists(st.lists(st.floats(0.0, 10.0), min_size=h, max_size=h),
                                             min_size=n, max_size=n)))
    sched = data.draw(st.lists(st.lists(st.tuples(st.integers(0, h + 3), st.integers(1, 100)), max_size=3),
                               min_size=n, max_size=n))
    within = data.draw(st.floats(0.1, h + 5.0))
    rc = np.zeros((n, h))
    for i, rs in enumerate(sched):
        for period, units in sorted(rs):
            if period < h:
                rc[i, period] += float(units)
    pc = projection_columns(on_hand, back, rc, mean, var, within)
    for i in range(n):
        ref = project_inventory(on_hand[i], back[i], sorted(sched[i]), mean[i], var[i], within_periods=within)
        first = -1 if ref.first_stockout_period is None else ref.first_stockout_period
        assert int(pc.first_stockout_period[i]) == first
        assert float(pc.stockout_probability[i]) == ref.stockout_probability


@settings(max_examples=100, deadline=None)
@given(data=st.data(), h=st.integers(1, 30), cover=st.floats(1.0, 120.0), margin=st.floats(0.0, 20.0))
def test_overstock_equals_is_overstock(data: st.DataObject, h: int, cover: float, margin: float) -> None:
    n = data.draw(st.integers(1, 5))
    ip = data.draw(st.lists(st.integers(-10, 5000), min_size=n, max_size=n))
    mean = np.array(data.draw(st.lists(st.lists(rates, min_size=h, max_size=h), min_size=n, max_size=n)))
    var = mean.copy()
    p = PolicyParams(lead_time_periods=1.0, overstock_cover_periods=cover, overstock_margin_units=margin)
    lc = level_columns(np.repeat(mean[:, :1], 2, axis=1), np.repeat(var[:, :1], 2, axis=1), p)
    oc = overstock_columns(ip, lc.order_up_to, mean, p)
    for i in range(n):
        lv = compute_levels(np.repeat(mean[i, :1], 2), np.repeat(var[i, :1], 2), p)
        ref = is_overstock(ip[i], lv, p, mean[i])
        assert (bool(oc.flagged[i]), int(oc.excess_units[i]), float(oc.threshold_units[i]),
                float(oc.rate_per_period[i])) == (ref.flagged, ref.excess_units, ref.threshold_units,
                                                  ref.rate_per_period)
        cov = float(oc.periods_of_cover[i])
        assert (None if math.isnan(cov) else cov) == ref.periods_of_cover


def test_invalid_forecast_raises_like_the_scalar_path() -> None:
    p = PolicyParams(lead_time_periods=2)
    with pytest.raises(ValueError, match="non-negative"):
        level_columns([[1.0, -1.0, 1.0]], [[1.0, 1.0, 1.0]], p)
    with pytest.raises(ValueError, match="non-finite"):
        level_columns([[1.0, np.nan, 1.0]], [[1.0, 1.0, 1.0]], p)
    with pytest.raises(ValueError, match="cycle service level"):
        level_columns([[1.0] * 3], [[1.0] * 3], p, cycle_service_level=[1.0])


@settings(max_examples=100, deadline=None)
@given(p=policies(), data=st.data())
def test_per_sku_lead_times_equal_compute_levels_with_each_skus_lead_time(p: PolicyParams,
                                                                         data: st.DataObject) -> None:
    """Learned lead times (agents.supply) as columns: row i is compute_levels with its own L, sd_L,
    including lead times beyond the horizon (the forecast extended with its last period)."""
    n = data.draw(st.integers(1, 6))
    h = data.draw(st.integers(1, 30))
    lead = st.one_of(st.sampled_from([1.0, 7.0]), st.floats(0.01, 40.0))
    sd = st.one_of(st.just(0.0), st.floats(0.0, 6.0))
    leads = data.draw(st.lists(st.tuples(lead, sd), min_size=n, max_size=n))
    mean = np.array(data.draw(st.lists(st.lists(rates, min_size=h, max_size=h), min_size=n, max_size=n)))
    var = mean * np.array(data.draw(st.lists(st.lists(st.floats(0.0, 30.0), min_size=h, max_size=h),
                                             min_size=n, max_size=n)))
    lc = level_columns(mean, var, p, lead_time_periods=[a for a, _ in leads],
                       lead_time_std_periods=[b for _, b in leads])
    for i, (a, b) in enumerate(leads):
        ref = compute_levels(mean[i], var[i], p.model_copy(update={"lead_time_periods": a,
                                                                   "lead_time_std_periods": b}))
        for f in dataclasses.fields(ref):
            want = getattr(ref, f.name)
            got = getattr(lc, f.name)
            assert (got is None) if want is None else float(got[i]) == want, (f.name, i)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), h=st.integers(1, 30))
def test_projection_with_a_window_per_sku(data: st.DataObject, h: int) -> None:
    n = data.draw(st.integers(1, 5))
    on_hand = data.draw(st.lists(st.integers(0, 300), min_size=n, max_size=n))
    mean = np.array(data.draw(st.lists(st.lists(rates, min_size=h, max_size=h), min_size=n, max_size=n)))
    var = mean * 2.0
    within = data.draw(st.lists(st.floats(0.1, h + 5.0), min_size=n, max_size=n))
    pc = projection_columns(on_hand, [0] * n, np.zeros((n, h)), mean, var, within)
    for i in range(n):
        ref = project_inventory(on_hand[i], 0, [], mean[i], var[i], within_periods=within[i])
        assert float(pc.stockout_probability[i]) == ref.stockout_probability
