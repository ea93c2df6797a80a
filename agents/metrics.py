"""Point and quantile forecast-accuracy metrics (pure numpy).

Every metric takes arrays of any (broadcast-compatible) shape; a NaN (or infinite) cell in any
input means "no forecast / no actual here" and the cell is ignored by that metric: the mask is
*all inputs finite*. A metric over an empty mask (or with a zero denominator) is NaN.

Conventions (units are those of ``y``, e.g. units per period):

* error ``e = y - yhat``; ``bias = sum(yhat - y) / sum(y)`` is positive for over-forecasting;
* for :func:`mase` the first axis indexes series (a 1-D input is one series).

References
----------
Hyndman, R. J., & Koehler, A. B. (2006). Another look at measures of forecast accuracy.
International Journal of Forecasting, 22(4), 679-688. doi:10.1016/j.ijforecast.2006.03.001

Koenker, R., & Bassett, G. (1978). Regression quantiles. Econometrica, 46(1), 33-50.

Gneiting, T. (2011). Quantiles as optimal point forecasts. International Journal of
Forecasting, 27(2), 197-209. doi:10.1016/j.ijforecast.2009.12.015

"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "bias",
    "coverage",
    "mae",
    "mase",
    "pinball_loss",
    "rmse",
    "seasonal_naive_scale",
    "summarize",
    "wape",
]


def _masked(*arrays: Any) -> tuple[list[np.ndarray], np.ndarray]:
    """Broadcast the inputs to one shape (float64) and return them with the all-finite mask."""
    arrs = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
    mask = np.ones(arrs[0].shape, dtype=bool)
    for a in arrs:
        mask &= np.isfinite(a)
    return list(arrs), mask


def wape(y: Any, yhat: Any) -> float:
    """Weighted absolute percentage error ``sum|y - yhat| / sum|y|``.

    Parameters
    ----------
    y, yhat : array_like
        Actuals and forecasts (units), broadcast together; NaN cells ignored.

    Returns
    -------
    float
        Dimensionless ratio (0 = perfect); NaN when ``sum|y| == 0`` or no finite cell.

    References
    ----------
    Kolassa, S., & Schütz, W. (2007). Advantages of the MAD/MEAN ratio over the MAPE.
    Foresight, 6, 40-43.

    Examples
    --------
    >>> wape([2, 0, 4], [1, 1, 4])   # (1 + 1 + 0) / (2 + 0 + 4)
    0.3333333333333333

    """
    (a, f), m = _masked(y, yhat)
    den = np.abs(a[m]).sum()
    return float(np.abs(a[m] - f[m]).sum() / den) if den > 0 else float("nan")


def mae(y: Any, yhat: Any) -> float:
    """Mean absolute error ``mean|y - yhat|`` (units); NaN when no finite cell.

    Examples
    --------
    >>> mae([2, 0, np.nan], [1, 2, 5])   # (1 + 2) / 2; the NaN cell is ignored
    1.5

    """
    (a, f), m = _masked(y, yhat)
    return float(np.abs(a[m] - f[m]).mean()) if m.any() else float("nan")


def rmse(y: Any, yhat: Any) -> float:
    """Root mean squared error ``sqrt(mean (y - yhat)^2)`` (units); NaN when no finite cell.

    Examples
    --------
    >>> rmse([0, 0], [3, 4])   # sqrt((9 + 16) / 2)
    3.5355339059327378

    """
    (a, f), m = _masked(y, yhat)
    return float(np.sqrt(((a[m] - f[m]) ** 2).mean())) if m.any() else float("nan")


def bias(y: Any, yhat: Any) -> float:
    """Relative bias ``sum(yhat - y) / sum(y)``: > 0 over-forecasts, < 0 under-forecasts.

    Returns
    -------
    float
        Dimensionless; NaN when ``sum(y) == 0`` or no finite cell.

    Examples
    --------
    >>> bias([2, 2], [3, 2])   # (1 + 0) / 4
    0.25

    """
    (a, f), m = _masked(y, yhat)
    den = a[m].sum()
    return float((f[m] - a[m]).sum() / den) if den != 0 else float("nan")


def seasonal_naive_scale(history: Any, m: int) -> float:
    """In-sample MAE of the seasonal naive forecast: the MASE denominator of one series.

    ``scale = mean_{t=m+1..T} |y_t - y_{t-m}|`` (Hyndman & Koehler 2006, eq. for the scaled
    error ``q_t = e_t / scale``, seasonal variant). With fewer than ``m + 1`` observations the
    lag-1 naive is used instead (``mean |y_t - y_{t-1}|``).

    Parameters
    ----------
    history : array_like, shape (T,)
        The series' in-sample values (units), oldest first; non-finite values are dropped.
    m : int
        Season length (periods), >= 1.

    Returns
    -------
    float
        Scale in units; NaN when it is 0 (a constant series) or fewer than 2 observations.

    Raises
    ------
    ValueError
        When ``m < 1``.

    References
    ----------
    Hyndman & Koehler (2006), IJF 22(4), section 3.4 (MASE).

    Examples
    --------
    >>> seasonal_naive_scale([1, 2, 3, 1, 4, 3], 3)   # (|1-1| + |4-2| + |3-3|) / 3
    0.6666666666666666
    >>> seasonal_naive_scale([1, 3, 2], 7)            # lag 1: (2 + 1) / 2
    1.5
    >>> seasonal_naive_scale([5, 5, 5], 1)
    nan

    """
    if m < 1:
        raise ValueError(f"season length m must be >= 1; got {m}")
    h = np.asarray(history, dtype=np.float64).ravel()
    h = h[np.isfinite(h)]
    lag = m if h.size >= m + 1 else 1
    if h.size < lag + 1:
        return float("nan")
    s = float(np.abs(h[lag:] - h[:-lag]).mean())
    return s if s > 0 else float("nan")


def mase(y: Any, yhat: Any, scale: Any) -> float:
    """Mean absolute scaled error, averaged over series.

    For series ``i`` (first axis), ``MASE_i = mean_t |y_it - yhat_it| / scale_i`` over its
    finite cells; the result is the mean of ``MASE_i`` over series with a finite scale and at
    least one finite cell (Hyndman & Koehler 2006).

    Parameters
    ----------
    y, yhat : array_like, shape (n, ...) or (T,)
        Actuals and forecasts (units). A 1-D input is a single series.
    scale : array_like
        Per-series scale (units, e.g. :func:`seasonal_naive_scale`), broadcastable to ``y``:
        a scalar, shape ``(n,)`` or ``(n,) + (1,) * (y.ndim - 1)``, or ``y``'s shape
        (constant within a series). NaN excludes the series.

    Returns
    -------
    float
        Dimensionless (1 = as good as the in-sample seasonal naive); NaN when no series counts.

    Examples
    --------
    >>> y = np.array([[1.0, 2.0], [4.0, 4.0]])
    >>> f = np.array([[2.0, 2.0], [1.0, 1.0]])
    >>> mase(y, f, np.array([[0.5], [3.0]]))   # mean(0.5/0.5, 3/3) = mean(1, 1)
    1.0
    >>> mase(y, f, np.array([[0.5], [np.nan]]))   # only the first series counts
    1.0

    """
    ya = np.asarray(y, dtype=np.float64)
    sa = np.asarray(scale, dtype=np.float64)
    if ya.ndim > 1 and sa.ndim == 1 and sa.shape[0] == ya.shape[0]:
        sa = sa.reshape((-1,) + (1,) * (ya.ndim - 1))  # one scale per series (first axis)
    (a, f, s), m = _masked(ya, yhat, sa)
    if a.ndim == 0:
        a, f, s, m = a[None], f[None], s[None], m[None]
    if a.ndim == 1:  # one series
        a, f, s, m = a[None], f[None], s[None], m[None]
    n = a.shape[0]
    q = np.where(m, np.abs(a - f) / np.where(m, s, 1.0), 0.0).reshape(n, -1)
    cnt = m.reshape(n, -1).sum(axis=1)
    ok = cnt > 0
    if not ok.any():
        return float("nan")
    return float((q[ok].sum(axis=1) / cnt[ok]).mean())


def coverage(y: Any, upper: Any) -> float:
    """Fraction of cells with ``y <= upper`` (empirical coverage of an upper quantile).

    Returns
    -------
    float
        In [0, 1]; NaN when no finite cell. A calibrated q90 covers about 0.9.

    Examples
    --------
    >>> coverage([1, 5, 3, np.nan], [2, 4, 3, 9])   # 1<=2 yes, 5<=4 no, 3<=3 yes -> 2/3
    0.6666666666666666

    """
    (a, u), m = _masked(y, upper)
    return float((a[m] <= u[m]).mean()) if m.any() else float("nan")


def pinball_loss(y: Any, q: Any, level: float) -> float:
    """Mean pinball (quantile) loss of quantile forecast ``q`` at ``level`` (units).

    ``L = mean( max(level * (y - q), (level - 1) * (y - q)) )`` -- the loss a quantile
    minimises in expectation (Koenker & Bassett 1978; Gneiting 2011).

    Parameters
    ----------
    y, q : array_like
        Actuals and quantile forecasts (units).
    level : float
        Quantile level in (0, 1).

    Returns
    -------
    float
        NaN when no finite cell.

    Raises
    ------
    ValueError
        When ``level`` is not in (0, 1).

    Examples
    --------
    >>> pinball_loss([10, 2], [8, 4], 0.9)   # (0.9 * 2 + 0.1 * 2) / 2
    1.0

    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")
    (a, f), m = _masked(y, q)
    if not m.any():
        return float("nan")
    d = a[m] - f[m]
    return float(np.maximum(level * d, (level - 1.0) * d).mean())


def summarize(y: Any, yhat: Any, q90: Any = None, q95: Any = None,
              scale: Any = None) -> dict[str, float]:
    """All point metrics plus q90/q95 coverage on one common mask.

    The mask is *every given array among y, yhat, q90, q95 finite*, so all metrics in the
    result are computed on the same ``n`` cells. ``scale`` does not shrink the mask: series
    with a NaN scale only drop out of the MASE average.

    Parameters
    ----------
    y, yhat : array_like
        Actuals and mean forecasts (units).
    q90, q95 : array_like, optional
        Upper quantile forecasts (units); coverage is NaN when absent.
    scale : array_like, optional
        MASE scale per series (see :func:`mase`); MASE is NaN when absent.

    Returns
    -------
    dict
        Keys ``wape, mae, rmse, bias, mase, coverage_q90, coverage_q95`` (floats, NaN when
        undefined) and ``n`` (int, cells used).

    Examples
    --------
    >>> r = summarize([2.0, 0.0, np.nan], [1.0, 1.0, 3.0], q90=[3.0, 0.5, 1.0])
    >>> r["n"], r["wape"], r["coverage_q90"]   # (1 + 1) / 2; 2 <= 3 yes, 0 <= 0.5 yes
    (2, 1.0, 1.0)

    """
    arrays = [y, yhat] + [a for a in (q90, q95) if a is not None]
    arrs, m = _masked(*arrays)
    a = np.where(m, arrs[0], np.nan)
    f = np.where(m, arrs[1], np.nan)
    nan = float("nan")
    out: dict[str, Any] = {
        "wape": wape(a, f),
        "mae": mae(a, f),
        "rmse": rmse(a, f),
        "bias": bias(a, f),
        "mase": mase(a, f, scale) if scale is not None else nan,
        "coverage_q90": coverage(a, q90) if q90 is not None else nan,
        "coverage_q95": coverage(a, q95) if q95 is not None else nan,
        "n": int(m.sum()),
    }
    return out
