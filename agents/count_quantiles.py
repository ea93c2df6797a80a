"""Count demand moment-matched to (mean, variance): its quantiles and CDF, for the whole code base.

A demand with mean ``mu`` and variance ``v`` (units, units squared) is represented by

* the negative binomial with the same two moments when ``v > mu`` (over-dispersed counts):
  ``n = mu**2 / (v - mu)``, ``p = mu / v`` (scipy's parametrisation); when ``n`` underflows to
  0 the distribution degenerates to the point mass at 0;
* the Poisson of mean ``mu`` when ``0 < v <= mu`` (the under-dispersed case is approximated by
  the Poisson);
* the point mass at 0 when ``mu <= 0``;
* above :data:`DISCRETE_MEAN_LIMIT` units, the normal ``ceil(mu + z sqrt(max(v, mu)))`` (the
  central-limit regime, where the discrete inversion can stall).

Snyder, Ord & Beaumont (2012) recommend the negative binomial for slow-moving, over-dispersed
count demand. Every quantile in restock (the forecasters' predictive quantiles, the selector's
calibration, the policy's reorder points under ``distribution="negbin"``) is computed by
:func:`count_quantiles`, one vectorised kernel on public ``scipy.special`` functions: the
inverse CDFs ``nbdtrik`` / ``pdtrik`` rounded up, then one step down when the CDF (``betainc``
/ ``pdtr``) at the integer below already reaches the level, which is how ``scipy.stats.nbinom``
and ``scipy.stats.poisson`` define ``ppf`` (the smallest integer ``k`` with ``F(k) >= q``).
:func:`demand_quantiles` (arrays) and :func:`demand_quantile` (one value) add the argument
checks; the scalar is the vector on 0-d arrays, so both return identical values.

References
----------
[^1]: Snyder, R. D., Ord, J. K., & Beaumont, A. (2012). Forecasting the intermittent demand for
    slow-moving inventories: A modelling approach. *International Journal of Forecasting*,
    28(2), 485-496, section 2 (Poisson and negative binomial measurement distributions).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

__all__ = [
    "DISCRETE_MEAN_LIMIT",
    "count_cdf",
    "count_quantiles",
    "demand_quantile",
    "demand_quantiles",
    "nb_params",
]

#: Above this mean (units) the quantile is the normal approximation.
DISCRETE_MEAN_LIMIT: float = 1e9


def nb_params(mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Negative binomial ``(n, p)`` with the given moments (scipy's parametrisation).

    Parameters
    ----------
    mean, variance : numpy.ndarray
        Means (units) and variances (units squared), ``variance > mean > 0``, broadcastable.

    Returns
    -------
    tuple of numpy.ndarray
        ``n = mean**2 / (variance - mean)`` (successes) and ``p = mean / variance``, from
        ``mean = n (1 - p) / p`` and ``variance = mean / p``.

    Examples
    --------
    >>> nb_params(np.array(2.0), np.array(6.0))
    (np.float64(1.0), np.float64(0.3333333333333333))

    """
    return mean * mean / (variance - mean), mean / variance


def count_quantiles(mean: ArrayLike, variance: ArrayLike, levels: ArrayLike) -> np.ndarray:
    """Quantiles of the moment-matched count distribution, vectorised, without argument checks.

    The kernel of the module (see its docstring for the distribution and the source). Inputs are
    not validated: a non-positive or NaN mean gives 0; use :func:`demand_quantiles` for checked
    arguments.

    Parameters
    ----------
    mean : array_like
        Means (units), any shape broadcastable with ``variance`` and ``levels``.
    variance : array_like
        Variances (units squared).
    levels : array_like
        Probability levels in (0, 1).

    Returns
    -------
    numpy.ndarray
        Float array of the broadcast shape: the smallest integer ``k`` (units) with
        ``F(k) >= level``.

    Examples
    --------
    >>> count_quantiles(np.array([0.0, 2.0, 2.0]), np.array([0.0, 2.0, 10.0]), np.array(0.95))
    array([0., 5., 8.])

    """
    mean, variance, levels = np.broadcast_arrays(
        np.asarray(mean, dtype=np.float64),
        np.asarray(variance, dtype=np.float64),
        np.asarray(levels, dtype=np.float64),
    )
    out = np.zeros(mean.shape, dtype=np.float64)
    big = mean > DISCRETE_MEAN_LIMIT
    pos = (mean > 0.0) & ~big
    nb = pos & (variance > mean)
    po = pos & ~nb
    if nb.any():
        n, p = nb_params(mean[nb], variance[nb])
        q = levels[nb]
        ok = n > 0  # else n underflowed: the point mass at zero
        with np.errstate(all="ignore"):
            vals = np.ceil(special.nbdtrik(q, n, p))
            vals1 = np.maximum(vals - 1.0, 0.0)
            below = special.betainc(n, vals1 + 1.0, p)
            # cdflib's search fails on a vanishing n (it answers 1e100): F(0) = p**n settles
            # the point mass at 0, and Cantelli's bound mu + sqrt(v q / (1 - q)) caps the rest.
            at_zero = np.power(p, n) >= q
            cap = np.ceil(mean[nb] + np.sqrt(variance[nb] * q / (1.0 - q)))
        vals = np.minimum(np.where(below >= q, vals1, vals), cap)
        out[nb] = np.where(ok & ~at_zero, vals, 0.0)
    if po.any():
        mu, q = mean[po], levels[po]
        with np.errstate(all="ignore"):
            vals = np.ceil(special.pdtrik(q, mu))
            vals1 = np.maximum(vals - 1.0, 0.0)
            below = special.pdtr(vals1, mu)
        out[po] = np.where(below >= q, vals1, vals)
    if big.any():
        m, v = mean[big], variance[big]
        out[big] = np.ceil(m + special.ndtri(levels[big]) * np.sqrt(np.maximum(v, m)))
    return out


def demand_quantiles(mean: ArrayLike, var: ArrayLike, level: ArrayLike) -> np.ndarray:
    """Quantiles of count demand moment-matched to (mean, var), element-wise, with checks.

    Parameters
    ----------
    mean, var, level : array_like, broadcastable
        Means (units, non-negative), variances (units squared, non-negative) and probability
        levels in (0, 1).

    Returns
    -------
    numpy.ndarray
        Quantiles in units (integers as floats), of the broadcast shape: :func:`count_quantiles`.

    Raises
    ------
    ValueError
        A level outside (0, 1), a negative or non-finite moment, or an undefined quantile.

    Examples
    --------
    >>> demand_quantiles([4.0, 4.0, 0.0], [4.0, 12.0, 0.0], 0.95)
    array([ 8., 11.,  0.])

    """
    m, v, q = np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(var, dtype=float),
                                  np.asarray(level, dtype=float))
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(v))) or np.any(m < 0) or np.any(v < 0):
        raise ValueError("The demand mean and variance must be finite and non-negative.")
    if np.any(q <= 0.0) or np.any(q >= 1.0) or np.any(np.isnan(q)):
        raise ValueError(f"The quantile level must lie strictly between 0 and 1, got {q}.")
    out = count_quantiles(m, v, q)
    if not np.all(np.isfinite(out)):
        raise ValueError("The demand quantile is undefined for some mean/variance.")
    return out


def demand_quantile(mean: float, var: float, level: float) -> float:
    """Quantile of count demand moment-matched to (mean, var): :func:`demand_quantiles` of one.

    Parameters
    ----------
    mean : float
        Mean demand in units over the interval; non-negative.
    var : float
        Variance of demand in units squared; non-negative.
    level : float
        Probability level in (0, 1), e.g. the cycle service level.

    Returns
    -------
    float
        Smallest integer number of units ``k`` with ``P(D <= k) >= level``.

    Raises
    ------
    ValueError
        On negative or non-finite mean/variance, or ``level`` outside (0, 1).

    Examples
    --------
    Poisson(4), negative binomial (n = 2, p = 1/3), and no demand:

    >>> [demand_quantile(4.0, v, 0.95) for v in (4.0, 12.0)], demand_quantile(0, 0, 0.9)
    ([8.0, 11.0], 0.0)

    """
    return float(demand_quantiles(float(mean), float(var), float(level)))


def count_cdf(k: float, mean: float, variance: float) -> float:
    """CDF ``P(Y <= k)`` of the moment-matched count distribution at one point (fast scalar).

    Parameters
    ----------
    k
        Integer-valued point (units); negative gives 0.
    mean
        Mean (units).
    variance
        Variance (units squared).

    Returns
    -------
    float
        Probability in [0, 1]; the point mass at 0 when ``mean <= 0``.

    Examples
    --------
    >>> round(count_cdf(0, 2.0, 2.0), 6)    # Poisson(2): exp(-2)
    0.135335

    """
    if k < 0.0:
        return 0.0
    if mean <= 0.0:
        return 1.0
    if variance > mean:
        p = mean / variance
        n = mean * mean / (variance - mean)
        return float(special.betainc(n, k + 1.0, p))
    return float(special.pdtr(k, mean))

