"""agents.count_quantiles: the one negative binomial / Poisson quantile module of the code base."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from agents.count_quantiles import (
    DISCRETE_MEAN_LIMIT,
    count_cdf,
    count_quantiles,
    demand_quantile,
    demand_quantiles,
)

means = st.one_of(st.just(0.0), st.floats(1e-9, 1e4), st.floats(1e4, 1e7), st.floats(1e9, 1e12))
ratios = st.one_of(st.just(1.0), st.floats(0.2, 1.0), st.floats(1.0, 50.0), st.just(1.0 + 1e-15))
levels = st.floats(0.001, 0.999)


@settings(max_examples=300, deadline=None)
@given(mean=means, ratio=ratios, qs=st.lists(levels, min_size=1, max_size=6))
def test_scalar_equals_vector_element_wise(mean: float, ratio: float, qs: list[float]) -> None:
    var = mean * ratio
    vec = demand_quantiles([mean] * len(qs), [var] * len(qs), qs)
    assert vec.tolist() == [demand_quantile(mean, var, q) for q in qs]
    # the unchecked kernel (forecasters, selector) is the same function
    kernel = count_quantiles(np.full(len(qs), mean), np.full(len(qs), var), np.array(qs))
    assert kernel.tolist() == vec.tolist()


@settings(max_examples=300, deadline=None)
@given(mean=means, ratio=ratios, qs=st.lists(levels, min_size=2, max_size=8))
def test_non_negative_integers_monotone_in_level(mean: float, ratio: float, qs: list[float]) -> None:
    qs = sorted(qs)
    out = demand_quantiles(mean, mean * ratio, qs)
    assert np.all(out >= 0)
    assert np.all(out == np.floor(out))
    assert np.all(np.diff(out) >= 0), (qs, out)


@settings(max_examples=300, deadline=None)
@given(mean=st.floats(1e-6, 1e5), ratio=st.one_of(st.floats(0.2, 1.0), st.floats(1.0 + 1e-6, 50.0)),
       level=levels)
def test_equals_scipy_stats_ppf(mean: float, ratio: float, level: float) -> None:
    """Below huge counts the quantile is exactly scipy.stats' negative binomial / Poisson ppf."""
    var = mean * ratio
    if var > mean:
        n, p = mean**2 / (var - mean), mean / var
        expected = stats.nbinom.ppf(level, n, p)
    else:
        expected = stats.poisson.ppf(level, mean)
    assert demand_quantile(mean, var, level) == expected


def test_degenerate_and_huge_cases() -> None:
    assert demand_quantile(0.0, 0.0, 0.99) == 0.0
    assert demand_quantile(0.0, 5.0, 0.99) == 0.0
    assert demand_quantile(1e-310, 1.0, 0.99) == 0.0  # n underflows: the point mass at 0
    assert count_quantiles(np.array(1e-310), np.array(1.0), np.array(0.99)) == 0.0
    m = 2 * DISCRETE_MEAN_LIMIT
    assert demand_quantile(m, 2 * m, 0.95) == math.ceil(m + stats.norm.ppf(0.95) * math.sqrt(2 * m))


@pytest.mark.parametrize(("mean", "var", "level"), [
    (-1.0, 1.0, 0.5), (1.0, -1.0, 0.5), (math.inf, 2.0, 0.5), (math.nan, 2.0, 0.5),
    (1.0, 2.0, 0.0), (1.0, 2.0, 1.0), (1.0, 2.0, math.nan),
])
def test_both_entry_points_reject_the_same_input(mean: float, var: float, level: float) -> None:
    with pytest.raises(ValueError):
        demand_quantile(mean, var, level)
    with pytest.raises(ValueError):
        demand_quantiles([mean, 1.0], [var, 1.0], [level, 0.5])


@settings(max_examples=400, deadline=None)
@given(mean=st.one_of(st.floats(1e-300, 1e-3), st.floats(1e-3, 1e4)),
       var=st.floats(0.0, 1e5), level=levels)
def test_is_the_smallest_count_reaching_the_level(mean: float, var: float, level: float) -> None:
    """The definition of the quantile, checked on the CDF: F(k) >= q > F(k - 1).

    Covers vanishing means with a large variance, where cdflib's inverse (``nbdtrik``) fails and
    answers 1e100 (found by the policy's monotonicity property test).
    """
    k = float(count_quantiles(mean, var, level))
    assert k >= 0 and k == math.floor(k)
    assert count_cdf(k, mean, var) >= level - 1e-9
    if k > 0:
        assert count_cdf(k - 1.0, mean, var) < level + 1e-9
