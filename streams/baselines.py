"""Benchmark forecasts for ``restock backtest``: naive, seasonal naive and statsforecast models.

Layout shared with :mod:`streams.backtest`: a method's forecasts are one array ``F`` of shape
``(n_series, T, H)`` where ``F[i, t, h - 1]`` is the forecast of period ``t`` of series ``i``
made at origin ``o = t - h`` -- from ``y[i, first_period[i] : o + 1]`` only -- and NaN where no
forecast exists (origin before the series' first period or its warm-up, or ``t < h``).

statsforecast (Garza et al., Nixtla) is an optional dependency (``pip install
'restock[bench]'``); it is imported inside the functions that need it.

References
----------
Hyndman, R. J., & Athanasopoulos, G. (2021). Forecasting: principles and practice, 3rd ed.,
section 5.2 (naive and seasonal naive methods). OTexts. https://otexts.com/fpp3/

Syntetos, A. A., & Boylan, J. E. (2005). The accuracy of intermittent demand estimates.
International Journal of Forecasting, 21(2), 303-314 (Croston SBA).

Teunter, R. H., Syntetos, A. A., & Babai, M. Z. (2011). Intermittent demand: linking
forecasting to inventory obsolescence. European Journal of Operational Research, 214(3),
606-615 (TSB).

Nikolopoulos, K., Syntetos, A. A., Boylan, J. E., Petropoulos, F., & Assimakopoulos, V. (2011).
An aggregate-disaggregate intermittent demand approach (ADIDA). Journal of the Operational
Research Society, 62(3), 544-554.

Hyndman, R. J., Koehler, A. B., Snyder, R. D., & Grose, S. (2002). A state space framework for
automatic forecasting using exponential smoothing methods. International Journal of
Forecasting, 18(3), 439-454 (AutoETS).

"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

__all__ = [
    "BASELINES",
    "STATSFORECAST_MODELS",
    "naive_forecasts",
    "run_baselines",
    "seasonal_naive_forecasts",
    "statsforecast_forecasts",
]

log = logging.getLogger(__name__)

#: ``run_baselines`` name -> statsforecast model class name (None: numpy implementation).
BASELINES: dict[str, str | None] = {
    "naive": None,
    "seasonal_naive": None,
    "croston_sba": "CrostonSBA",
    "tsb": "TSB",
    "adida": "ADIDA",
    "auto_ets": "AutoETS",
}
STATSFORECAST_MODELS: tuple[str, ...] = ("CrostonSBA", "TSB", "ADIDA", "AutoETS")
_MISSING = "statsforecast is not installed: pip install 'restock[bench]'"


def _check(y: np.ndarray, first_period: np.ndarray, H: int) -> tuple[np.ndarray, np.ndarray]:
    yy = np.asarray(y, dtype=np.float64)
    if yy.ndim != 2:
        raise ValueError(f"y must have shape (n_series, T); got {yy.shape}")
    fp = np.asarray(first_period, dtype=np.int64).reshape(-1)
    if fp.shape[0] != yy.shape[0]:
        raise ValueError(f"first_period has {fp.shape[0]} entries for {yy.shape[0]} series")
    if H < 1:
        raise ValueError(f"horizon H must be >= 1; got {H}")
    return yy, fp


def naive_forecasts(y: np.ndarray, first_period: np.ndarray, H: int) -> np.ndarray:
    """Naive (last value) forecasts: ``F[i, t, h-1] = y[i, t-h]``.

    The forecast made at origin ``o`` for every horizon is the last observed value ``y[i, o]``;
    it exists when ``o >= first_period[i]`` (one observation of history).

    Parameters
    ----------
    y : np.ndarray, shape (n, T)
        Demand per period (units).
    first_period : np.ndarray, shape (n,)
        Index of each series' first period.
    H : int
        Horizon (periods), >= 1.

    Returns
    -------
    np.ndarray, shape (n, T, H), float64
        Forecasts (units), NaN where none.

    Raises
    ------
    ValueError
        On inconsistent shapes or ``H < 1``.

    Examples
    --------
    >>> F = naive_forecasts(np.array([[0.0, 3.0, 1.0, 4.0]]), np.array([1]), 2)
    >>> F[0].tolist()   # rows t = 0..3, columns h = 1, 2
    [[nan, nan], [nan, nan], [3.0, nan], [1.0, 3.0]]

    """
    yy, fp = _check(y, first_period, H)
    n, T = yy.shape
    F = np.full((n, T, H), np.nan)
    for h in range(1, min(H, T - 1) + 1):
        o = np.arange(T - h)                   # origins; target t = o + h
        ok = o[None, :] >= fp[:, None]
        F[:, h:, h - 1] = np.where(ok, yy[:, :T - h], np.nan)
    return F


def seasonal_naive_forecasts(y: np.ndarray, first_period: np.ndarray, H: int, m: int) -> np.ndarray:
    """Seasonal naive forecasts: the value one (or more) seasons before the target period.

    At origin ``o`` the forecast of ``o + h`` is ``y[o + h - m * ceil(h / m)]``, the latest
    observed value in the same season position (Hyndman & Athanasopoulos 2021, sec. 5.2). It
    exists when a full season has been observed: ``o - m + 1 >= first_period[i]``.

    Parameters
    ----------
    y : np.ndarray, shape (n, T)
        Demand per period (units).
    first_period : np.ndarray, shape (n,)
        Index of each series' first period.
    H : int
        Horizon (periods), >= 1.
    m : int
        Season length (periods), >= 1.

    Returns
    -------
    np.ndarray, shape (n, T, H), float64
        ``F[i, t, h-1] = y[i, t - m * ceil(h/m)]`` where defined, NaN elsewhere.

    Raises
    ------
    ValueError
        On inconsistent shapes, ``H < 1`` or ``m < 1``.

    Examples
    --------
    >>> F = seasonal_naive_forecasts(np.array([[1.0, 2.0, 3.0, 4.0, 5.0]]), np.array([0]), 3, 2)
    >>> F[0, 4].tolist()   # t=4: h=1 (o=3) -> y[2]; h=2 (o=2) -> y[2]; h=3 (o=1) -> y[0]
    [3.0, 3.0, 1.0]

    """
    yy, fp = _check(y, first_period, H)
    if m < 1:
        raise ValueError(f"season length m must be >= 1; got {m}")
    n, T = yy.shape
    F = np.full((n, T, H), np.nan)
    for h in range(1, min(H, T - 1) + 1):
        lag = m * -(-h // m)                   # m * ceil(h / m)
        if lag >= T:
            continue
        t = np.arange(lag, T)                  # targets with a source value
        o = t - h
        ok = (o[None, :] - m + 1) >= fp[:, None]
        F[:, lag:, h - 1] = np.where(ok, yy[:, t - lag], np.nan)
    return F


# ------------------------------------------------------------------------------------------------
# statsforecast
# ------------------------------------------------------------------------------------------------
def _import_models() -> Any:
    try:
        from statsforecast import models
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise RuntimeError(_MISSING) from exc
    return models


def _make_model(name: str, season_length: int) -> Any:
    models = _import_models()
    if name == "CrostonSBA":
        return models.CrostonSBA()
    if name == "TSB":
        return models.TSB(alpha_d=0.1, alpha_p=0.1)
    if name == "ADIDA":
        return models.ADIDA()
    if name == "AutoETS":
        return models.AutoETS(season_length=season_length)
    if hasattr(models, name):  # any other model with a no-argument constructor (e.g. Naive)
        return getattr(models, name)()
    raise ValueError(f"unknown statsforecast model {name!r}")


def refit_origins(first: int, T: int, refit_every: int, min_history: int) -> np.ndarray:
    """Refit origins of one series: ``first + min_history - 1 + k * refit_every`` below ``T - 1``.

    The first refit happens as soon as the series has ``min_history`` observations; the last
    origin that can still forecast a period inside the grid is ``T - 2``.

    Examples
    --------
    >>> refit_origins(first=2, T=20, refit_every=5, min_history=3).tolist()
    [4, 9, 14]

    """
    o0 = first + min_history - 1
    return np.arange(o0, T - 1, refit_every, dtype=np.int64)


def _series_forecasts(args: tuple[np.ndarray, int, int, Sequence[str], int, int, int]
                      ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Rolling-origin forecasts of one series for every model (a process-pool task).

    Returns ``({model: array (T, H)}, {model: failed fits})``.
    """
    y, first, H, names, refit_every, min_history, m = args
    T = y.shape[0]
    steps = refit_every + H - 1
    out = {nm: np.full((T, H), np.nan) for nm in names}
    fails = dict.fromkeys(names, 0)
    models = {nm: _make_model(nm, m) for nm in names}
    h_idx = np.arange(1, H + 1)
    for o in refit_origins(first, T, refit_every, min_history):
        hist = y[first:o + 1]
        # origins t in [o, o + refit_every) and horizons h with target t + h <= T - 1
        ts = np.arange(o, min(o + refit_every, T - 1))
        tt = ts[:, None] + h_idx[None, :]          # targets
        step = (ts - o)[:, None] + h_idx[None, :]  # 1-based step of the refit's path
        ok = tt <= T - 1
        hcol = np.broadcast_to(h_idx - 1, tt.shape)
        for nm, model in models.items():
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    # e.g. AutoETS' variance on a short history divides by zero; the mean is fine
                    warnings.simplefilter("ignore", RuntimeWarning)
                    path = np.asarray(model.forecast(y=hist, h=steps)["mean"], dtype=np.float64)
                if path.shape != (steps,) or not np.all(np.isfinite(path)):
                    raise ValueError(f"non-finite or mis-shaped forecast {path.shape}")
            except Exception:  # noqa: BLE001 - a model failing on one fit must not stop the run
                fails[nm] += 1
                path = np.full(steps, float(hist.mean()))  # fallback: the history mean
            path = np.maximum(path, 0.0)
            out[nm][tt[ok], hcol[ok]] = path[step[ok] - 1]
    return out, fails


def statsforecast_forecasts(
    y: np.ndarray,
    first_period: np.ndarray,
    H: int,
    models: Sequence[str] = STATSFORECAST_MODELS,
    refit_every: int = 28,
    min_history: int = 28,
    season_length: int = 7,
    n_jobs: int = 1,
) -> dict[str, np.ndarray]:
    """Rolling-origin forecasts of statsforecast models, refit every ``refit_every`` periods.

    For series ``i`` with first period ``f`` the refit origins are
    ``o_k = f + min_history - 1 + k * refit_every`` (:func:`refit_origins`). At ``o_k`` each
    model is fit on ``y[i, f : o_k + 1]`` and forecasts ``refit_every + H - 1`` steps ahead
    (statsforecast's ``model.forecast(y=..., h=...)``). For every origin ``t`` in
    ``[o_k, o_k + refit_every)`` the forecast of ``t + h`` is that refit's step
    ``(t - o_k) + h``::

        F[i, t + h, h - 1] = path_k[(t - o_k) + h - 1]      (0-based path index)

    so a forecast never uses data after its origin ``t`` (only up to ``o_k <= t``) and is
    penalised for the staleness of the fit between refits -- the honest comparison with an
    online model that learns every period. Negative forecasts are clipped at 0. A fit that
    raises or returns non-finite values (e.g. AutoETS on a 2-point history) is replaced by the
    history mean and counted in a warning on this module's logger.

    Models: ``CrostonSBA()``, ``TSB(alpha_d=0.1, alpha_p=0.1)``, ``ADIDA()``,
    ``AutoETS(season_length=season_length)``; any other ``statsforecast.models`` class name
    with a no-argument constructor (e.g. ``"Naive"``) is accepted too.

    Parameters
    ----------
    y : np.ndarray, shape (n, T)
        Demand per period (units).
    first_period : np.ndarray, shape (n,)
        Index of each series' first period (``>= T`` for an empty series).
    H : int
        Horizon (periods).
    models : sequence of str
        statsforecast model class names.
    refit_every : int
        Periods between refits (>= 1).
    min_history : int
        Observations needed before the first fit (>= 1).
    season_length : int
        Season length for AutoETS (periods).
    n_jobs : int
        Worker processes (series are split among them); ``-1`` = all CPUs.

    Returns
    -------
    dict of str to np.ndarray, shape (n, T, H)
        One forecast array per model name (units), NaN where none.

    Raises
    ------
    RuntimeError
        When statsforecast is not installed.
    ValueError
        On bad shapes or parameters, or an unknown model name.

    References
    ----------
    Tashman, L. J. (2000). Out-of-sample tests of forecasting accuracy: an analysis and review.
    International Journal of Forecasting, 16(4), 437-450 (rolling-origin evaluation).

    """
    yy, fp = _check(y, first_period, H)
    if refit_every < 1 or min_history < 1:
        raise ValueError("refit_every and min_history must be >= 1")
    names = list(models)
    for nm in names:
        _make_model(nm, season_length)  # import check + name validation, before any work
    n, T = yy.shape
    res = {nm: np.full((n, T, H), np.nan) for nm in names}
    tasks = [(yy[i], int(fp[i]), H, names, refit_every, min_history, season_length)
             for i in range(n)]
    workers = (os.cpu_count() or 1) if n_jobs == -1 else max(1, n_jobs)
    fails = dict.fromkeys(names, 0)
    if workers == 1 or n < 2:
        results: Any = map(_series_forecasts, tasks)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_series_forecasts, tasks, chunksize=max(1, n // (workers * 8)))
    try:
        for i, (out, f) in enumerate(results):
            for nm in names:
                res[nm][i] = out[nm]
                fails[nm] += f[nm]
    finally:
        if pool is not None:
            pool.shutdown()
    for nm, k in fails.items():
        if k:
            log.warning("statsforecast %s: %d fit(s) failed; history mean used instead", nm, k)
    return res


def run_baselines(y: np.ndarray, first_period: np.ndarray, H: int, season_length: int,
                  names: Sequence[str], refit_every: int = 28, n_jobs: int = 1,
                  min_history: int = 28) -> dict[str, np.ndarray]:
    """Forecast arrays of the named baselines (see :data:`BASELINES`).

    Parameters
    ----------
    y : np.ndarray, shape (n, T)
        Demand per period (units).
    first_period : np.ndarray, shape (n,)
        Index of each series' first period.
    H : int
        Horizon (periods).
    season_length : int
        Season length m (periods) for ``seasonal_naive`` and ``auto_ets``.
    names : sequence of str
        Any of ``naive, seasonal_naive, croston_sba, tsb, adida, auto_ets``.
    refit_every, n_jobs, min_history : int
        For the statsforecast models (:func:`statsforecast_forecasts`).

    Returns
    -------
    dict of str to np.ndarray, shape (n, T, H)
        Keyed by the requested names, in request order.

    Raises
    ------
    ValueError
        On an unknown name.
    RuntimeError
        When a statsforecast baseline is requested and statsforecast is not installed.

    Examples
    --------
    >>> out = run_baselines(np.array([[1.0, 2.0, 3.0]]), np.array([0]), 1, 1, ["naive"])
    >>> out["naive"][0, :, 0].tolist()
    [nan, 1.0, 2.0]

    """
    unknown = [nm for nm in names if nm not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {sorted(BASELINES)}")
    sf = [BASELINES[nm] for nm in names if BASELINES[nm] is not None]
    sf_out = statsforecast_forecasts(y, first_period, H, [s for s in sf if s], refit_every,
                                     min_history, season_length, n_jobs) if sf else {}
    out: dict[str, np.ndarray] = {}
    for nm in names:
        if nm == "naive":
            out[nm] = naive_forecasts(y, first_period, H)
        elif nm == "seasonal_naive":
            out[nm] = seasonal_naive_forecasts(y, first_period, H, season_length)
        else:
            out[nm] = sf_out[BASELINES[nm]]  # type: ignore[index]
    return out
