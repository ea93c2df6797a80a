"""Review inputs: the window demand's dispersion stays finite for any non-negative demand."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.inventory_demand import InventoryDemand

demands = st.one_of(st.just(0.0), st.floats(0.0, 1e-300), st.floats(1e-320, 1e-150), st.floats(0.0, 1e6))


def test_cv2_at_subnormal_demand_is_finite() -> None:
    d = InventoryDemand()
    d.update(1e-313, capacity=4, long_span=365)
    assert d.cv2(long_span=365) == 0.0  # one observation: no dispersion (was ZeroDivisionError)
    d.update(3e-313, capacity=4, long_span=365)
    cv2 = d.cv2(long_span=365)
    assert math.isfinite(cv2) and cv2 >= 0.0


def test_cv2_unchanged_where_the_square_does_not_underflow() -> None:
    d = InventoryDemand()
    for y in [0, 10, 0, 10, 0, 10]:
        d.update(y, capacity=4, long_span=365)
    a = 2.0 / 366.0
    corr = 1.0 - (1.0 - a) ** 6
    e1, e2 = d.m1 / corr, d.m2 / corr
    assert d.cv2(long_span=365) == max(e2 - e1 * e1, 0.0) / (e1 * e1)


@settings(max_examples=150, deadline=None)
@given(ys=st.lists(demands, min_size=1, max_size=20), span=st.sampled_from([52.0, 365.0]))
def test_cv2_finite_and_non_negative(ys: list[float], span: float) -> None:
    d = InventoryDemand()
    for y in ys:
        d.update(y, capacity=8, long_span=span)
        cv2 = d.cv2(long_span=span)
        assert math.isfinite(cv2) and cv2 >= 0.0
