"""The simulated warehouse's random lead times (streams/lead_times.py) and the rules facing them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.policy import PolicyParams
from streams.lead_times import lead_time_draws
from streams.panel import DemandPanel
from streams.rules import simulate_rule


def _panel(demand: np.ndarray, warm: int) -> DemandPanel:
    n = demand.shape[0]
    return DemandPanel(keys=[f"S{i}@L" for i in range(n)], freq="D", first=0, step=86400,  # type: ignore[arg-type]
                       warmup_periods=warm, demand=demand.astype(np.int64),
                       price=np.linspace(0.5, 3.0, n), sales=[], dataset=None)


@settings(max_examples=30, deadline=None)
@given(mean=st.floats(2.0, 14.0), sd=st.floats(0.5, 5.0), p=st.floats(0.0, 0.3), late=st.floats(0.0, 10.0),
       seed=st.integers(0, 2**31))
def test_draws_are_seeded_whole_periods_of_the_configured_distribution(
        mean: float, sd: float, p: float, late: float, seed: int) -> None:
    kw = dict(lead_time_days=mean, sd_days=sd, late_probability=p, late_days=late, period_days=1.0)
    a = lead_time_draws(40, 250, seed=seed, **kw)
    assert a is not None and a.dtype == np.int64 and a.shape == (40, 250) and a.min() >= 1
    assert np.array_equal(a, lead_time_draws(40, 250, seed=seed, **kw))  # deterministic
    # 10,000 draws: the mean of a gamma(mean, sd) plus p x late, rounded to days (and >= 1)
    expected = mean + p * late
    assert abs(float(a.mean()) - expected) < 0.1 * expected + 0.6
    weekly = lead_time_draws(40, 250, seed=seed, **{**kw, "period_days": 7.0})
    assert weekly is not None and weekly.min() >= 1


def test_deterministic_lead_time_keeps_the_nominal_timing() -> None:
    assert lead_time_draws(3, 5, lead_time_days=7, sd_days=0, late_probability=0, late_days=7,
                           period_days=1) is None
    with pytest.raises(ValueError):
        lead_time_draws(3, 5, lead_time_days=7, sd_days=-1, late_probability=0, late_days=7, period_days=1)


def test_a_rule_with_a_constant_lead_matrix_is_the_rule_with_the_fixed_lead_time() -> None:
    rng = np.random.default_rng(3)
    panel = _panel(rng.poisson(4.0, (12, 120)), warm=30)
    p = PolicyParams(lead_time_periods=5)
    fixed = simulate_rule(panel, "static", p)
    matrix = simulate_rule(panel, "static", p, lead_periods=np.full((12, 120), 5))
    assert matrix.kpis == fixed.kpis
    assert np.array_equal(matrix.end_on_hand, fixed.end_on_hand)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_random_lead_times_conserve_units(seed: int) -> None:
    rng = np.random.default_rng(seed)
    panel = _panel(rng.poisson(6.0, (10, 150)), warm=40)
    p = PolicyParams(lead_time_periods=7)
    leads = lead_time_draws(10, 150, lead_time_days=7, sd_days=3, late_probability=0.2, late_days=7,
                            period_days=1, seed=seed)
    res = simulate_rule(panel, "static", p, lead_periods=leads)
    flow = res.start_on_hand + res.received - res.served - res.backorders_served
    assert np.array_equal(flow, res.end_on_hand)
    assert res.kpis["purchase_orders"] > 0
    with pytest.raises(ValueError):
        simulate_rule(panel, "static", p, lead_periods=np.zeros((10, 150), dtype=np.int64))
