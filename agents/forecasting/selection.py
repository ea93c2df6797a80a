"""Online model selection, robust updating, predictive variance and calibrated quantiles per SKU.

:class:`DemandForecaster` runs every candidate side by side. For each closed period, *before*
learning it, every candidate's one-step forecast is scored against the **raw** demand with an
exponentially decayed mean absolute error; the candidate with the lowest decayed MAE is served
(the first candidate until ``min_periods_to_switch`` periods have been learned), with hysteresis:
the served candidate is replaced only when another one's decayed MAE is lower by more than
``switch_margin`` (relative), so near-ties do not flip the served model day to day.

The forecaster's other concerns live in their own modules, mixed into :class:`DemandForecaster`:
the candidate registry (:mod:`agents.forecasting.registry`), outlier-robust updating
(:mod:`agents.forecasting.robust`), calibrated quantiles and totals
(:mod:`agents.forecasting.calibration`), covariate twins (:mod:`agents.forecasting.twins`) and
the serialization hooks (:mod:`agents.forecasting.selector_state`).

Predictive variance
-------------------
Per candidate, an EWMA of the squared one-step error ``e^2`` and of the forecast ``yhat`` is
kept over the periods with ``yhat > 0``; their ratio ``phi = EWMA(e^2) / EWMA(yhat)`` is a
dispersion index, and the variance of a future period with mean ``mu_h`` is ``phi * mu_h``
(variance proportional to the mean, as for over-dispersed counts; a zero-mean period such as a
closed Saturday gets marginal variance 0). Until the served model has been scored on a period
with a positive forecast, ``phi = 1`` (Poisson prior). Cold start: before any non-zero demand
all candidates forecast 0, so mean, variance and quantiles are 0.

References
----------
Snyder, R. D., Ord, J. K., & Beaumont, A. (2012). Forecasting the intermittent demand for
slow-moving inventories: A modelling approach. International Journal of Forecasting, 28(2),
485-496, section 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from river.time_series.base import Forecaster

from agents.count_quantiles import count_quantiles
from agents.forecasting.base import OnlineForecaster, check_demand, check_horizon
from agents.forecasting.calibration import Calibration
from agents.forecasting.covariates import CovariateEffects, Lifted
from agents.forecasting.distribution import ForecastDistribution
from agents.forecasting.registry import CANDIDATES, COVARIATE_TWINS, DEFAULT_CANDIDATES, build_candidates
from agents.forecasting.robust import RobustCleaning
from agents.forecasting.selector_state import SelectorStateHooks
from agents.forecasting.twins import CovariateTwins

__all__ = [
    "CANDIDATES",
    "COVARIATE_TWINS",
    "DEFAULT_CANDIDATES",
    "FORMAT_VERSION",
    "DemandForecaster",
    "period_quantiles",
]

#: serialization / state layout version of a forecaster with covariates (3); a forecaster that
#: never had covariates is still written in layout 2, byte for byte as before
FORMAT_VERSION = 3
#: layout of a forecaster without covariates
PLAIN_FORMAT_VERSION = 2


def period_quantiles(mean: np.ndarray, phi: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Per-period quantiles of the forecasters' count demand, for any number of SKUs and origins.

    The period demand is the count distribution moment-matched to mean ``mu`` and variance
    ``phi * mu`` (:func:`agents.count_quantiles.count_quantiles`: negative binomial / Poisson,
    Snyder, Ord & Beaumont 2012, sec. 2), read at each calibrated level, then made non-decreasing
    in the level (``np.maximum.accumulate``). :meth:`DemandForecaster.forecast_distribution`
    computes its quantiles with it; element for element the values do not depend on how many
    are computed in one call.

    Parameters
    ----------
    mean : numpy.ndarray, shape (..., H)
        Means per period (units), >= 0.
    phi : numpy.ndarray, shape (...)
        Dispersion (variance / mean of one period) per leading index.
    levels : numpy.ndarray, shape (..., L)
        Calibrated probability levels per leading index, increasing.

    Returns
    -------
    numpy.ndarray, shape (..., L, H)
        Quantiles (units).
    """
    mean = np.asarray(mean, dtype=np.float64)[..., None, :]
    q = count_quantiles(mean, np.asarray(phi, dtype=np.float64)[..., None, None] * mean,
                        np.asarray(levels, dtype=np.float64)[..., :, None])
    return np.maximum.accumulate(q, axis=-2)


class DemandForecaster(CovariateTwins, Calibration, RobustCleaning, SelectorStateHooks, Forecaster):
    """Per-SKU online forecaster: robust candidates, decayed-MAE selection, calibrated quantiles.

    Parameters
    ----------
    candidates
        ``None`` for :data:`DEFAULT_CANDIDATES`, a sequence of names from :data:`CANDIDATES`, or
        a mapping name -> unlearned :class:`~agents.forecasting.base.OnlineForecaster` (cloned).
        The first candidate is served until ``min_periods_to_switch``.
    season_length
        Positions per season given to registry candidates (7: day of week on daily periods).
    error_decay
        Weight of the newest absolute error in the decayed MAE, in (0, 1].
    min_periods_to_switch
        Number of learned periods before the selector may serve another candidate (>= 0).
    quantile_levels
        Strictly increasing nominal probability levels in (0, 1).
    variance_decay
        Weight of the newest squared error in the dispersion estimate, in (0, 1].
    calibration_rate
        Adaptive conformal step ``gamma`` in [0, 1) (0 disables calibration).
    robust
        Clean each demand before the candidates learn it (Huber, on demand sizes; see the
        :mod:`agents.forecasting.robust`). ``False`` feeds the raw demand, as format version 1 did.
    huber_k
        Huber constant ``k`` > 0, in robust standard deviations of the demand size (Gelper et
        al. use 2; 2.5 leaves ordinary busy days of over-dispersed retail demand untouched).
    switch_margin
        Relative hysteresis in [0, 1): another candidate is served only when its decayed MAE is
        below ``(1 - switch_margin)`` times the served one's (0: always the lowest).
    total_window
        Number of periods ``W`` (>= 1) of the total whose variance inflation is learned (the
        lead time plus review period of the replenishment policy; 7 daily periods).
    total_calibration_rate
        Adaptive conformal step in [0, 1) of the levels used for totals (0.005: on the UCI
        Online Retail top-200 SKUs, 7-day total q95 coverage 0.911 with 0.005 and 0.906 with
        0.01, and the order-up-to proxy moves less; misses of overlapping windows come in runs,
        so larger steps over-react); 0 disables the whole
        total calibration: ``kappa = 1`` and nominal levels, independent periods, as format
        version 1).

    Raises
    ------
    ValueError
        On unknown or duplicate candidates or a parameter out of range.

    References
    ----------
    [^1]: Gibbs, I., & Candès, E. (2021). Adaptive conformal inference under distribution shift.
        Advances in Neural Information Processing Systems 34, eq. (2).
    [^2]: Snyder, R. D., Ord, J. K., & Beaumont, A. (2012). Forecasting the intermittent demand
        for slow-moving inventories: A modelling approach. International Journal of
        Forecasting, 28(2), 485-496, section 2.
    [^3]: Gelper, S., Fried, R., & Croux, C. (2010). Robust forecasting with exponential and
        Holt-Winters smoothing. Journal of Forecasting, 29(3), 285-300, eq. (3)-(5).
    [^4]: Brown, R. G. (1959). Statistical Forecasting for Inventory Control. McGraw-Hill
        (standard deviation ~ 1.25 x mean absolute deviation).

    Examples
    --------
    >>> f = DemandForecaster()
    >>> f.forecast(2), f.served_model, f.recent_mae
    ([0.0, 0.0], 'seasonal_sba', None)
    >>> for week in range(30):
    ...     for d in range(7):
    ...         f.learn_one([4, 0, 6, 0, 5, 0, 2][d], {"season_pos": d})
    >>> f.n_periods, f.model_version
    (210, 2)
    >>> dist = f.forecast_distribution(7)
    >>> dist.model in f.candidate_names
    True
    >>> bool(np.all(dist.quantiles[0.5] <= dist.quantiles[0.95]))
    True

    A single wholesale order of 100x the usual demand barely moves the level or the dispersion
    (``robust=False`` learns the raw demand, as format version 1 did):

    >>> g = DemandForecaster(candidates=["sba"])
    >>> raw = DemandForecaster(candidates=["sba"], robust=False)
    >>> for t in range(60):
    ...     g.learn_one(5000.0 if t == 50 else 50.0)
    ...     raw.learn_one(5000.0 if t == 50 else 50.0)
    >>> round(g.forecast(1)[0]), round(raw.forecast(1)[0])
    (48, 230)
    >>> round(g.dispersion(), 2), round(raw.dispersion())
    (0.37, 5084)

    """

    def __init__(
        self,
        candidates: Sequence[str] | Mapping[str, OnlineForecaster] | None = None,
        season_length: int = 7,
        error_decay: float = 0.05,
        min_periods_to_switch: int = 14,
        quantile_levels: Sequence[float] = (0.5, 0.9, 0.95),
        variance_decay: float = 0.05,
        calibration_rate: float = 0.02,
        robust: bool = True,
        huber_k: float = 2.5,
        switch_margin: float = 0.05,
        total_window: int = 7,
        total_calibration_rate: float = 0.005,
    ) -> None:
        if int(season_length) != season_length or season_length < 1:
            raise ValueError(f"season_length must be a positive integer; got {season_length!r}.")
        if not 0.0 < float(error_decay) <= 1.0:
            raise ValueError(f"error_decay must be in (0, 1]; got {error_decay!r}.")
        if int(min_periods_to_switch) != min_periods_to_switch or min_periods_to_switch < 0:
            raise ValueError(
                f"min_periods_to_switch must be a non-negative integer; got "
                f"{min_periods_to_switch!r}."
            )
        levels = tuple(float(q) for q in quantile_levels)
        if not levels or any(not 0.0 < q < 1.0 for q in levels):
            raise ValueError(
                f"quantile_levels must be a non-empty sequence of probabilities in (0, 1); "
                f"got {quantile_levels!r}."
            )
        if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
            raise ValueError(f"quantile_levels must be strictly increasing; got {levels!r}.")
        if not 0.0 < float(variance_decay) <= 1.0:
            raise ValueError(f"variance_decay must be in (0, 1]; got {variance_decay!r}.")
        if not 0.0 <= float(calibration_rate) < 1.0:
            raise ValueError(f"calibration_rate must be in [0, 1); got {calibration_rate!r}.")
        if not (float(huber_k) > 0.0 and math.isfinite(float(huber_k))):
            raise ValueError(f"huber_k must be a positive finite number; got {huber_k!r}.")
        if not 0.0 <= float(switch_margin) < 1.0:
            raise ValueError(f"switch_margin must be in [0, 1); got {switch_margin!r}.")
        if int(total_window) != total_window or total_window < 1:
            raise ValueError(f"total_window must be a positive integer; got {total_window!r}.")
        if not 0.0 <= float(total_calibration_rate) < 1.0:
            raise ValueError(
                f"total_calibration_rate must be in [0, 1); got {total_calibration_rate!r}."
            )
        self.candidates = candidates
        self.season_length = int(season_length)
        self.error_decay = float(error_decay)
        self.min_periods_to_switch = int(min_periods_to_switch)
        self.quantile_levels = levels
        self.variance_decay = float(variance_decay)
        self.calibration_rate = float(calibration_rate)
        self.robust = bool(robust)
        self.huber_k = float(huber_k)
        self.switch_margin = float(switch_margin)
        self.total_window = int(total_window)
        self.total_calibration_rate = float(total_calibration_rate)
        self._names, self._models = build_candidates(candidates, self.season_length)
        k = len(self._models)
        self._n = 0  # periods learned
        self._served = 0  # index of the served candidate
        self._err_wt = 0.0  # shared bias-correction weight of the decayed MAEs
        self._mae = [0.0] * k  # decayed-MAE numerators
        self._sq = [0.0] * k  # EWMA of squared error over periods with yhat > 0
        self._fc = [0.0] * k  # EWMA of yhat over the same periods
        self._levels = list(levels)  # calibrated levels, one per nominal level
        self._size = 0.0  # robust smoothed demand size z (units)
        self._scale = 0.0  # robust scale of the sizes (units)
        self._n_sizes = 0  # positive demands seen (capped at the warm-up length)
        self._kap_num = 0.0  # EWMA of the clipped squared window error
        self._kap_den = 0.0  # EWMA of the predicted window variance
        self._total_levels = list(levels)  # calibrated levels for totals, per nominal level
        w = self.total_window
        self._win_y = [0.0] * w  # ring buffer of the last W demands (raw), slot t % W
        self._win_m = [0.0] * w  # window mean predicted at origin t, slot t % W
        self._win_v = [0.0] * w  # window summed variance predicted at origin t, slot t % W
        self._win_k = [1.0] * w  # inflation issued at origin t, slot t % W
        self._win_l = list(levels) * w  # total levels issued at origin t, slots t % W
        self._cov: CovariateEffects | None = None  # covariate statistics, once enabled
        self._twin_sources: list[int] = []  # candidate index each covariate twin was cloned from

    # ------------------------------------------------------------------ properties
    @property
    def served_model(self) -> str:
        """Name of the candidate currently served."""
        return self._names[self._served]

    @property
    def recent_mae(self) -> float | None:
        """Decayed MAE (units) of the served candidate; ``None`` before any period."""
        if self._err_wt == 0.0:
            return None
        return self._mae[self._served] / self._err_wt

    @property
    def n_periods(self) -> int:
        """Number of periods learned."""
        return self._n

    @property
    def model_version(self) -> int:
        """State/serialization format version (2 without covariates, 3 with)."""
        return PLAIN_FORMAT_VERSION if self._cov is None else FORMAT_VERSION

    @property
    def candidate_names(self) -> list[str]:
        """Candidate names, in order (the first is the default)."""
        return list(self._names)

    @property
    def candidate_mae(self) -> dict[str, float | None]:
        """Decayed MAE (units) per candidate; ``None`` before any period."""
        if self._err_wt == 0.0:
            return dict.fromkeys(self._names)
        return {n: m / self._err_wt for n, m in zip(self._names, self._mae, strict=True)}

    def dispersion(self, name: str | None = None) -> float:
        """Dispersion index ``phi`` (variance / mean) of a candidate (default: the served one).

        Parameters
        ----------
        name
            Candidate name; ``None`` for the served candidate.

        Returns
        -------
        float
            ``EWMA(e^2) / EWMA(yhat)``, or 1.0 (Poisson prior) before it can be estimated;
            ``e`` is the cleaned error when ``robust``.

        Raises
        ------
        ValueError
            When ``name`` is not a candidate.

        """
        if name is None:
            i = self._served
        elif name in self._names:
            i = self._names.index(name)
        else:
            raise ValueError(f"{name!r} is not a candidate; candidates are {self._names}.")
        return self._sq[i] / self._fc[i] if self._fc[i] > 0.0 else 1.0

    # ------------------------------------------------------------------ learning
    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Score every candidate on this period, then learn its cleaned demand.

        Parameters
        ----------
        y
            Demand of the closed period, in units (>= 0).
        x
            Optional features (``season_pos``).

        Raises
        ------
        ValueError
            When ``y`` is negative or not finite, or ``season_pos`` is out of range.

        """
        y = check_demand(y)
        # one code path with and without covariates: with them, candidates are scored on their
        # lifted one-step forecasts (x plus the period's lift L = exp(w . x)), the demand is
        # cleaned on the de-lifted scale (y* = L clean(y / L), so a promotion spike explained by
        # the lift is not clipped), twins learn y* / L, plain candidates y*; then the SKU's
        # covariate statistics learn the period against the base forecast of the best twin
        # (made before learning). Without covariates L = 1 and y / 1 * 1 is y exactly.
        cov = self._cov
        xv, w, lift, xl = self.lifted_features(x)
        models = self._models
        preds = [m.predict_next(xl) for m in models]
        base = 0.0
        if cov is not None:
            k0 = len(models) - len(self._twin_sources)
            ref = min(range(k0, len(models)), key=self._mae.__getitem__)
            base = preds[ref] / lift
        s = self._served
        mu = preds[s]
        phi = self.dispersion()
        self._calibrate_levels(y, mu, phi)
        if self.total_calibration_rate > 0.0:
            self._track_total(y, x, models[s], phi)
        y_clean = y
        if self.robust and y > 0.0:
            y_d = y / lift
            y_dc = self.clean(y_d)
            self._update_size(y_d, y_dc)
            y_clean = y_dc * lift
        d, v = self.error_decay, self.variance_decay
        self._err_wt += d * (1.0 - self._err_wt)
        mae, sq, fc = self._mae, self._sq, self._fc
        for i, p in enumerate(preds):
            mae[i] += d * (abs(y - p) - mae[i])  # honest score: raw demand
            if p > 0.0:
                e = y_clean - p
                sq[i] += v * (e * e - sq[i])
                fc[i] += v * (p - fc[i])
            models[i].learn_one(y_clean, xl)
        if cov is not None:
            assert xv is not None and w is not None
            cov.learn(xv, y, base, w)
        self._n += 1
        self._select()

    def _select(self) -> None:
        mae, s = self._mae, self._served
        if self._n >= self.min_periods_to_switch:
            best = min(range(len(mae)), key=mae.__getitem__)
            # hysteresis: the incumbent keeps serving unless clearly beaten (the first selection,
            # at min_periods_to_switch, and switch_margin == 0 take the lowest outright)
            if (self._n == self.min_periods_to_switch or self.switch_margin == 0.0
                    or mae[best] < (1.0 - self.switch_margin) * mae[s]):
                self._served = best
        elif self._cov is not None and 0 in self._twin_sources:  # the first candidate's twin
            self._served = len(self._models) - len(self._twin_sources) + self._twin_sources.index(0)
        else:
            self._served = 0

    # ------------------------------------------------------------------ forecasting
    def forecast(self, horizon: int, xs: Sequence[dict] | None = None) -> list[float]:
        """Mean demand of the next ``horizon`` periods from the served candidate.

        Parameters
        ----------
        horizon
            Number of periods.
        xs
            Optional per-period features (``season_pos``); length ``horizon``.

        Returns
        -------
        list[float]
            ``horizon`` non-negative means, in units per period.

        Raises
        ------
        ValueError
            When ``horizon`` is negative or ``xs`` has the wrong length.

        """
        h = check_horizon(horizon, xs)
        model = self._models[self._served]
        if self._cov is not None and isinstance(model, Lifted):
            xs = self._with_lift(xs)
        return [max(0.0, v) for v in model.forecast(h, xs)]

    def forecast_moments(
        self, horizon: int, xs: Sequence[dict] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of :meth:`forecast_distribution`, without its quantiles.

        What an order-up-to level needs (the policy reads moments only), at a fraction of the
        cost: the per-period count quantiles are the expensive part of a distribution.

        Returns
        -------
        tuple of numpy.ndarray
            ``(mean, variance)``, each shape ``(horizon,)``, equal to ``forecast_distribution(
            horizon, xs).mean`` and ``.variance`` (units, units squared).

        Raises
        ------
        ValueError
            When ``horizon`` is negative or ``xs`` has the wrong length.
        """
        mean, variance, _, _ = self._moments(horizon, xs)
        return mean, variance

    def quantile_inputs(self, horizon: int, xs: Sequence[dict] | None = None
                        ) -> tuple[np.ndarray, float, np.ndarray]:
        """What :meth:`forecast_distribution`'s quantiles are computed from, without computing them.

        For callers that compute the quantiles of many SKUs and periods in one call (the
        backtest): ``period_quantiles(mean, phi, levels)`` equals the distribution's quantiles,
        value for value.

        Returns
        -------
        tuple
            ``mean`` shape ``(horizon,)`` (units per period, as the distribution's), the
            dispersion ``phi`` (variance / mean of one period) and the calibrated levels, shape
            ``(len(quantile_levels),)``, in the order of :attr:`quantile_levels`.

        Raises
        ------
        ValueError
            When ``horizon`` is negative or ``xs`` has the wrong length.
        """
        mean, _, _, phi = self._moments(horizon, xs)
        return mean, phi, np.asarray(self._levels, dtype=np.float64)

    def _moments(self, horizon: int, xs: Sequence[dict] | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        mean = np.asarray(self.forecast(horizon, xs), dtype=np.float64)
        phi = self.dispersion()
        period_variance = phi * mean
        kappa, w = self.total_inflation, self.total_window
        if kappa == 1.0 or mean.shape[0] == 0:
            variance = period_variance
        else:
            # window_inflation(kappa, w, k) for k = 0..H, vectorised (same operations)
            k = np.arange(mean.shape[0] + 1, dtype=np.float64)
            g = np.full(k.shape, float(kappa)) if w <= 1 else 1.0 + (kappa - 1.0) * (k - 1.0) / (w - 1)
            g[0] = 1.0
            cum = g * np.concatenate(([0.0], np.cumsum(period_variance)))
            variance = np.maximum(np.diff(cum), 0.0)
        return mean, variance, period_variance, phi

    def forecast_distribution(
        self, horizon: int, xs: Sequence[dict] | None = None
    ) -> ForecastDistribution:
        """Predictive distribution of the next ``horizon`` periods.

        Parameters
        ----------
        horizon
            Number of periods ``H``.
        xs
            Optional per-period features (``season_pos``); length ``H``.

        Returns
        -------
        ForecastDistribution
            ``mean`` of shape ``(H,)``; ``period_variance`` ``phi * mean`` (marginal, per
            period); ``variance`` the increments of the calibrated cumulative variance
            ``g(k) * sum(period_variance[:k])`` (``g`` from :func:`window_inflation`), so that
            ``variance[:k].sum()`` is the variance of the total of the next ``k`` periods, which
            is what an order-up-to level over a lead time needs; calibrated per-period
            ``quantiles`` per nominal level (each ``(H,)``, non-decreasing in the level, from
            the marginal variance) and the served model's name.

        Raises
        ------
        ValueError
            When ``horizon`` is negative or ``xs`` has the wrong length.

        """
        mean, variance, period_variance, phi = self._moments(horizon, xs)
        kappa, w = self.total_inflation, self.total_window
        # variance is phi * mean, so quantiles depend on the mean only: solve once per distinct
        # mean (at most season_length of them) and scatter back over the horizon
        uniq, inverse = np.unique(mean, return_inverse=True)
        q = period_quantiles(uniq, np.float64(phi), np.asarray(self._levels, dtype=np.float64))[:, inverse]
        return ForecastDistribution(
            mean=mean,
            variance=variance,
            quantiles={lvl: q[i] for i, lvl in enumerate(self.quantile_levels)},
            model=self.served_model,
            levels=self.calibrated_levels,
            period_variance=period_variance,
            inflation=kappa,
            inflation_window=w,
            total_levels=self.calibrated_total_levels,
        )
