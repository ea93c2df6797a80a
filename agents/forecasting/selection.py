"""Online model selection, robust updating, predictive variance and calibrated quantiles per SKU.

:class:`DemandForecaster` runs every candidate side by side. For each closed period, *before*
learning it, every candidate's one-step forecast is scored against the **raw** demand with an
exponentially decayed mean absolute error; the candidate with the lowest decayed MAE is served
(the first candidate until ``min_periods_to_switch`` periods have been learned), with hysteresis:
the served candidate is replaced only when another one's decayed MAE is lower by more than
``switch_margin`` (relative), so near-ties do not flip the served model day to day.

Outlier-robust updating
-----------------------
Wholesale spikes (one order of 100x the usual size) must not leak into the levels. Before the
candidates learn a period, its demand is *cleaned* as in Gelper, Fried & Croux (2010), eq. (3):
``y* = yhat + psi_k((y - yhat) / sigma) * sigma`` with the Huber ``psi_k(r) = max(-k, min(k, r))``.
For intermittent demand the cleaning acts on the **demand size**: ``yhat`` is a robust
exponentially smoothed size ``z`` of the positive demands (the selector's expected size, updated
with the cleaned sizes, smoothing 0.1) and ``sigma`` a robust scale of the sizes, ``1.25`` times
an EWMA (weight 0.1) of the *cleaned* absolute size error (``1.25 ~ sqrt(pi / 2)`` turns a mean
absolute deviation into a standard deviation under normality, Brown 1959; the error is bounded by
``k sigma``, so one spike raises the scale by at most the factor ``1 + 0.1 (1.25 k - 1)``, a
bounded-influence recursion in the spirit of the paper's tau-scale, eq. (5)), floored at the
Poisson standard deviation ``sqrt(z)`` of a count. Zero periods are learned as zeros (the
occurrence process is untouched), the first 4 sizes only initialise ``z`` and ``sigma``, and a
genuine level shift is accepted gradually: every clipped period raises ``sigma`` by about 20 %
(``k = 2.5``), so after about 10 periods at a new level the new sizes pass uncleaned. Candidates
learn ``y*``; the selection score and the per-period calibration use the raw ``y``; the
dispersion uses the cleaned error ``y* - yhat_i``.

Predictive variance
-------------------
Per candidate, an EWMA of the squared one-step error ``e^2`` and of the forecast ``yhat`` is
kept over the periods with ``yhat > 0``; their ratio ``phi = EWMA(e^2) / EWMA(yhat)`` is a
dispersion index, and the variance of a future period with mean ``mu_h`` is ``phi * mu_h``
(variance proportional to the mean, as for over-dispersed counts; a zero-mean period such as a
closed Saturday gets marginal variance 0). Until the served model has been scored on a period
with a positive forecast, ``phi = 1`` (Poisson prior). Cold start: before any non-zero demand
all candidates forecast 0, so mean, variance and quantiles are 0.

Totals over several periods
---------------------------
Forecast errors of consecutive periods are positively correlated (they share the level's
estimation error, and the level moves), so the sum of per-period variances under-states the
variance of a lead-time total. At every origin the served model's mean ``M`` and summed
variance ``V`` of the next ``W = total_window`` periods are stored; when that window's raw demand
``Y`` is complete, two things are learned:

* a variance-inflation factor ``kappa = EWMA(min(e^2, c^2 kappa V)) / EWMA(V)`` with
  ``e = Y - M`` (weight 0.05, the squared error Huber-clipped at ``c = 6`` inflated standard
  deviations so one spike raises it by at most ``1 + 0.05 (36 - 1)``; clipped to ``[1, 50]``):
  the ratio of realised to predicted variance of the total, i.e.
  ``1 + 2 sum_k (1 - k/W) rho_k`` for residual autocorrelations ``rho_k``. A window of ``h``
  periods gets ``g(h) = 1 + (kappa - 1) (h - 1) / (W - 1)``
  (:func:`~agents.forecasting.distribution.window_inflation`: 1 for one period,
  ``kappa`` at ``W``, growing linearly beyond, as level errors accumulate about linearly);
* calibrated levels for totals, by the same adaptive conformal update as the per-period levels
  (Gibbs & Candès 2021, eq. 2) on ``1[Y > Q_tau(M, kappa V)]`` with the mean, inflation and
  level *issued at the origin* (windows overlap and complete ``W - 1`` periods late), a small
  step (``total_calibration_rate = 0.005``: misses come in runs of up to ``W`` overlapping
  windows, and a larger step made the order-up-to proxy jumpy and, on one year of data, covered
  worse) and levels clipped to ``[0.01, 0.9999]``: totals are over-dispersed and
  heavier-tailed than the negative binomial (wholesale orders), which no variance can fix since
  the negative binomial's upper quantiles stop growing at extreme dispersion.

:meth:`DemandForecaster.forecast_distribution` reports per-period ``variance`` as the increments
of the inflated cumulative variance, so any window starting at the next period sums to the
inflated total, and passes the total levels to
:meth:`~agents.forecasting.distribution.ForecastDistribution.total_quantile`.

Calibrated quantiles
--------------------
Quantiles come from the negative binomial moment-matched to ``(mu_h, phi * mu_h)`` (Poisson when
``phi <= 1``) at a per-SKU *calibrated* level ``tau_t`` per nominal level ``tau``, updated by
adaptive conformal inference (Gibbs & Candès 2021, eq. 2) on the served one-step quantile:
``tau_{t+1} = tau_t + gamma (miss_t - (1 - tau))`` with ``miss_t = 1[y_t > q_t]``, clipped to
``[0.01, 0.999]``, skipped in periods whose served mean is 0. Long-run miss frequency therefore
tracks ``1 - tau`` whatever the distributional misspecification. Quantiles are then made
non-decreasing in the level.

References
----------
Gelper, S., Fried, R., & Croux, C. (2010). Robust forecasting with exponential and Holt-Winters
smoothing. Journal of Forecasting, 29(3), 285-300, eq. (3)-(5).
Brown, R. G. (1959). Statistical Forecasting for Inventory Control. McGraw-Hill (MAD x 1.25).
Gibbs, I., & Candès, E. (2021). Adaptive conformal inference under distribution shift. NeurIPS
34, eq. (2).

"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from river.time_series.base import Forecaster

from agents.count_quantiles import count_cdf, count_quantiles
from agents.forecasting.base import OnlineForecaster, check_demand, check_horizon
from agents.forecasting.covariates import COVARIATES, CovariateEffects, Lifted
from agents.forecasting.distribution import ForecastDistribution
from agents.forecasting.intermittent import SBA, TSB, Croston
from agents.forecasting.seasonal import RiverRegressor, SeasonalProfile

__all__ = [
    "CANDIDATES",
    "COVARIATE_TWINS",
    "DEFAULT_CANDIDATES",
    "FORMAT_VERSION",
    "DemandForecaster",
]

#: serialization / state layout version of a forecaster with covariates (3); a forecaster that
#: never had covariates is still written in layout 2, byte for byte as before
FORMAT_VERSION = 3
#: layout of a forecaster without covariates
PLAIN_FORMAT_VERSION = 2

#: candidates that get a covariate-aware twin (``name + "+cov"``) when covariates are enabled
COVARIATE_TWINS: tuple[str, ...] = ("seasonal_sba", "seasonal_tsb", "sba", "tsb")
_TWIN_SUFFIX = "+cov"

#: registry of candidate models: name -> factory(season_length) -> fresh forecaster
CANDIDATES: dict[str, Callable[[int], OnlineForecaster]] = {
    "croston": lambda m: Croston(alpha=0.1),
    "sba": lambda m: SBA(alpha=0.1),
    "tsb": lambda m: TSB(alpha_demand=0.1, alpha_probability=0.1),
    "seasonal_tsb": lambda m: SeasonalProfile(base="tsb", season_length=m),
    "seasonal_sba": lambda m: SeasonalProfile(base="sba", season_length=m),
    "river_lr": lambda m: RiverRegressor(season_length=m),
}

#: default candidate set; the first one is served until ``min_periods_to_switch``
DEFAULT_CANDIDATES: tuple[str, ...] = ("seasonal_sba", "seasonal_tsb", "sba", "tsb", "river_lr")

_LEVEL_BOUNDS = (0.01, 0.999)
_KAPPA_BOUNDS = (1.0, 50.0)  # variance inflation of the window total (inflation only)
_KAPPA_DECAY = 0.05  # weight of the newest window in the inflation EWMAs
_KAPPA_CLIP = 6.0  # Huber clip of the window error, in inflated standard deviations
_TOTAL_LEVEL_BOUNDS = (0.01, 0.9999)  # totals are heavy-tailed: allow far-tail levels
_SIZE_ALPHA = 0.1  # smoothing of the robust demand size z
_SCALE_DECAY = 0.1  # weight of the newest cleaned |size error| in the robust scale
_MAD_TO_SD = 1.25  # ~ sqrt(pi / 2): mean absolute deviation -> standard deviation (normal)
_ROBUST_WARMUP = 4  # sizes that only initialise z and the scale (no cleaning)


def _build_candidates(
    candidates: Sequence[str] | Mapping[str, OnlineForecaster] | None, season_length: int
) -> tuple[list[str], list[OnlineForecaster]]:
    if candidates is None:
        candidates = DEFAULT_CANDIDATES
    if isinstance(candidates, Mapping):
        names = [str(k) for k in candidates]
        models = []
        for name, model in candidates.items():
            if not isinstance(model, OnlineForecaster):
                raise ValueError(
                    f"candidate {name!r} must be an OnlineForecaster (it needs a float state for "
                    f"serialization); got {type(model).__name__}."
                )
            models.append(model.clone())
    else:
        if isinstance(candidates, str):
            raise ValueError("candidates must be a sequence of names, not a single string.")
        names = list(candidates)
        unknown = [n for n in names if n not in CANDIDATES]
        if unknown:
            raise ValueError(
                f"unknown candidate names {unknown}; known names are {sorted(CANDIDATES)}."
            )
        models = [CANDIDATES[n](season_length) for n in names]
    if not names:
        raise ValueError("candidates must name at least one model.")
    if len(set(names)) != len(names):
        raise ValueError(f"candidate names must be unique; got {names}.")
    return names, models


class DemandForecaster(Forecaster):
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
        Clean each demand before the candidates learn it (Huber, on demand sizes; see the module
        docstring). ``False`` feeds the raw demand, as format version 1 did.
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
        self._names, self._models = _build_candidates(candidates, self.season_length)
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

    # ------------------------------------------------------------------ covariates
    def enable_covariates(
        self, names: Sequence[str] = COVARIATES, twins: Sequence[int] | None = None
    ) -> bool:
        """Add covariate-aware twins of the candidates (idempotent); True when newly enabled.

        Every candidate named in :data:`COVARIATE_TWINS` gets a twin ``name + "+cov"``
        (:class:`~agents.forecasting.covariates.Lifted`) cloned *with its learned state* and its
        error statistics, so the twin has the same history and, until the first period with
        non-zero covariates, forecasts exactly like its source. The twin of the served candidate
        is served from now on (the first twin when the served one has none); it keeps serving
        only while its decayed MAE stays within ``switch_margin`` of the best, like any
        candidate. The per-SKU covariate statistics start empty (the pooled coefficient).

        Parameters
        ----------
        names
            Covariate feature names (default :data:`~agents.forecasting.covariates.COVARIATES`).
        twins
            Candidate indices to twin (default: those named in :data:`COVARIATE_TWINS`); used
            by the decoder.

        Returns
        -------
        bool
            False when covariates were already enabled (nothing changes).

        Raises
        ------
        ValueError
            When covariates are enabled with other names, or no candidate can be twinned.

        Examples
        --------
        >>> f = DemandForecaster()
        >>> for y in [5, 0, 3, 4]:
        ...     f.learn_one(y)
        >>> before = f.forecast(3)
        >>> f.enable_covariates(), f.served_model, f.forecast(3) == before
        (True, 'seasonal_sba+cov', True)

        """
        names = tuple(names)
        if self._cov is not None:
            if names != self._cov.names:
                raise ValueError(
                    f"covariates are enabled with {self._cov.names}; cannot re-enable with {names}."
                )
            return False
        if twins is None:
            twins = [i for i, n in enumerate(self._names) if n in COVARIATE_TWINS]
        twins = [int(i) for i in twins]
        if not twins or any(not 0 <= i < len(self._names) for i in twins):
            raise ValueError(f"no candidate to give a covariate twin among {self._names}.")
        for i in twins:
            src = self._models[i]
            twin = src.clone()
            twin.load_state(src.state())
            self._names.append(self._names[i] + _TWIN_SUFFIX)
            self._models.append(Lifted(twin))
            self._mae.append(self._mae[i])
            self._sq.append(self._sq[i])
            self._fc.append(self._fc[i])
        k0 = len(self._names) - len(twins)
        self._twin_sources = twins
        self._served = k0 + twins.index(self._served) if self._served in twins else k0
        self._cov = CovariateEffects(names)
        return True

    @property
    def covariates_enabled(self) -> bool:
        """True once :meth:`enable_covariates` has been called."""
        return self._cov is not None

    @property
    def covariate_names(self) -> tuple[str, ...]:
        """Covariate feature names (empty before :meth:`enable_covariates`)."""
        return () if self._cov is None else self._cov.names

    @property
    def covariate_effects(self) -> CovariateEffects | None:
        """The per-SKU covariate statistics (None before :meth:`enable_covariates`)."""
        return self._cov

    def set_pool_mean(self, coef: Sequence[float] | None) -> None:
        """Set the shared (pooled) coefficient ``w_0`` used from now on (not stored).

        Parameters
        ----------
        coef
            ``w_0`` of shape ``(d,)`` in :attr:`covariate_names` order; None for the prior mean.
            Ignored while covariates are not enabled.

        """
        if self._cov is None:
            return
        self._cov.pool_mean = (self._cov.prior_mean.copy() if coef is None
                               else np.asarray(coef, dtype=np.float64).copy())

    def coefficients(self) -> dict[str, float]:
        """Return this SKU's partially pooled covariate coefficients (empty when disabled)."""
        if self._cov is None:
            return {}
        return dict(zip(self._cov.names, self._cov.coefficients().tolist(), strict=True))

    def lift(self, x: Mapping[str, Any] | None) -> float:
        """Multiplicative lift ``exp(w . x)`` of a period with features ``x`` (1 when disabled)."""
        if self._cov is None:
            return 1.0
        return self._cov.lift(self._cov.vector(x), self._cov.coefficients())

    def _with_lift(self, xs: Sequence[dict] | None) -> Sequence[dict] | None:
        if xs is None or self._cov is None:
            return xs
        cov = self._cov
        w = cov.coefficients()
        return [{**x, "lift": cov.lift(cov.vector(x), w)} if x else x for x in xs]

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

    @property
    def calibrated_levels(self) -> dict[float, float]:
        """Nominal level -> current calibrated level."""
        return dict(zip(self.quantile_levels, self._levels, strict=True))

    @property
    def total_inflation(self) -> float:
        """Learned variance inflation ``kappa`` (>= 1) of the ``total_window``-period total."""
        if self._kap_den <= 0.0:
            return 1.0
        lo, hi = _KAPPA_BOUNDS
        return min(hi, max(lo, self._kap_num / self._kap_den))

    @property
    def calibrated_total_levels(self) -> dict[float, float]:
        """Nominal level -> calibrated level used for totals over several periods."""
        return dict(zip(self.quantile_levels, self._total_levels, strict=True))

    @property
    def robust_size(self) -> tuple[float, float]:
        """Robust demand size ``z`` and its scale ``sigma`` (units) used to clean demand."""
        return self._size, self._scale

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
    def clean(self, y: float) -> float:
        """Huber-cleaned demand ``y*`` the candidates would learn for ``y`` (no state change).

        Parameters
        ----------
        y
            Demand of a period, in units (>= 0).

        Returns
        -------
        float
            ``y`` itself when ``robust`` is off, ``y == 0`` or during the warm-up; otherwise
            ``z + psi_k((y - z) / sigma) sigma`` with ``sigma = max(scale, sqrt(z))`` (> 0).

        Examples
        --------
        >>> f = DemandForecaster()
        >>> for y in [10, 12, 8, 10, 11, 9, 10]:
        ...     f.learn_one(y)
        >>> f.clean(0.0), f.clean(11.0), round(f.clean(1000.0), 2)
        (0.0, 11.0, 17.89)

        """
        if not self.robust or y <= 0.0 or self._n_sizes < _ROBUST_WARMUP:
            return y
        z = self._size
        sigma = max(self._scale, math.sqrt(z))
        k = self.huber_k
        return min(z + k * sigma, max(z - k * sigma, y))

    def _update_size(self, y: float, y_clean: float) -> None:
        # robust size level and scale (module docstring); only periods with a sale
        n = self._n_sizes
        if n == 0:
            self._size, self._scale = y, 0.0
        elif n < _ROBUST_WARMUP:  # running mean / mean absolute deviation during warm-up
            e = y - self._size
            self._scale += (_MAD_TO_SD * abs(e) - self._scale) / n
            self._size += e / (n + 1)
        else:
            e = y_clean - self._size
            self._scale += _SCALE_DECAY * (_MAD_TO_SD * abs(e) - self._scale)
            self._size += _SIZE_ALPHA * e
        if n < _ROBUST_WARMUP:
            self._n_sizes = n + 1

    def _future_xs(self, x: dict[str, Any] | None) -> list[dict[str, Any]] | None:
        if x is None or "season_pos" not in x:
            return None
        pos, m = int(x["season_pos"]), self.season_length
        if self._cov is not None:  # the window's covariates are not known here: lift 1
            drop = {*self._cov.names, "lift"}
            x = {k: v for k, v in x.items() if k not in drop}
        return [{**x, "season_pos": (pos + j) % m} for j in range(self.total_window)]

    def _track_total(
        self, y: float, x: dict[str, Any] | None, served: OnlineForecaster, phi: float
    ) -> None:
        # window-total inflation and level calibration (module docstring). Every origin stores
        # what it issued (mean, variance, inflation, levels): the windows overlap and complete
        # W - 1 periods late, so the check must use the issued values (delayed-feedback ACI).
        w, t, lq = self.total_window, self._n, len(self.quantile_levels)
        slot = t % w
        mean_w = max(0.0, sum(served.forecast(w, self._future_xs(x))))
        self._win_m[slot] = mean_w
        self._win_v[slot] = phi * mean_w
        self._win_k[slot] = self.total_inflation
        self._win_l[slot * lq : (slot + 1) * lq] = self._total_levels
        self._win_y[slot] = y
        if t + 1 < w:
            return
        old = (t + 1) % w  # origin t - W + 1, whose window ends with this period
        m, v, kappa = self._win_m[old], self._win_v[old], self._win_k[old]
        if m <= 0.0 or v <= 0.0:
            return
        total = sum(self._win_y)
        e = total - m
        r = _KAPPA_DECAY
        self._kap_num += r * (min(e * e, _KAPPA_CLIP * _KAPPA_CLIP * kappa * v) - self._kap_num)
        self._kap_den += r * (v - self._kap_den)
        below = count_cdf(math.ceil(total) - 1.0, m, kappa * v)
        gamma = self.total_calibration_rate
        lo, hi = _TOTAL_LEVEL_BOUNDS
        levels, issued = self._total_levels, self._win_l[old * lq : (old + 1) * lq]
        for i, nominal in enumerate(self.quantile_levels):
            miss = 1.0 if below >= issued[i] else 0.0
            levels[i] = min(hi, max(lo, levels[i] + gamma * (miss - 1.0 + nominal)))

    def _calibrate_levels(self, y: float, mu: float, phi: float) -> None:
        # online conformal update of the per-period quantile levels on the served forecast
        gamma = self.calibration_rate
        if gamma > 0.0 and mu > 0.0:
            below = count_cdf(math.ceil(y) - 1.0, mu, phi * mu)  # miss <=> F(ceil(y) - 1) >= tau_t
            lo, hi = _LEVEL_BOUNDS
            for i, nominal in enumerate(self.quantile_levels):
                miss = 1.0 if below >= self._levels[i] else 0.0
                self._levels[i] = min(hi, max(lo, self._levels[i] + gamma * (miss - 1.0 + nominal)))

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
        if self._cov is not None:
            self._learn_one_covariates(y, x)
            return
        models = self._models
        preds = [m.predict_next(x) for m in models]
        s = self._served
        mu = preds[s]
        phi = self.dispersion()
        self._calibrate_levels(y, mu, phi)
        if self.total_calibration_rate > 0.0:
            self._track_total(y, x, models[s], phi)
        y_clean = y
        if self.robust and y > 0.0:
            y_clean = self.clean(y)
            self._update_size(y, y_clean)
        d, v = self.error_decay, self.variance_decay
        self._err_wt += d * (1.0 - self._err_wt)
        mae, sq, fc = self._mae, self._sq, self._fc
        for i, p in enumerate(preds):
            mae[i] += d * (abs(y - p) - mae[i])  # honest score: raw demand
            if p > 0.0:
                e = y_clean - p
                sq[i] += v * (e * e - sq[i])
                fc[i] += v * (p - fc[i])
            models[i].learn_one(y_clean, x)
        self._n += 1
        self._select()

    def _learn_one_covariates(self, y: float, x: dict | None) -> None:
        # As learn_one, with the period's lift L = exp(w . x): candidates are scored on their
        # lifted one-step forecasts, the demand is cleaned on the de-lifted scale
        # (y* = L clean(y / L), so a promotion spike explained by the lift is not clipped),
        # twins learn y* / L, plain candidates y*; then the SKU's covariate statistics learn the
        # period against the base forecast of the best twin (made before learning).
        cov = self._cov
        assert cov is not None
        xv = cov.vector(x)
        w = cov.coefficients()
        lift = cov.lift(xv, w)
        xl = {**x, "lift": lift} if x else {"lift": lift}
        models = self._models
        preds = [m.predict_next(xl) for m in models]
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
            mae[i] += d * (abs(y - p) - mae[i])
            if p > 0.0:
                e = y_clean - p
                sq[i] += v * (e * e - sq[i])
                fc[i] += v * (p - fc[i])
            models[i].learn_one(y_clean, xl)
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
        levels = np.asarray(self._levels, dtype=np.float64)[:, None]
        # variance is phi * mean, so quantiles depend on the mean only: solve once per distinct
        # mean (at most season_length of them) and scatter back over the horizon
        uniq, inverse = np.unique(mean, return_inverse=True)
        q = count_quantiles(uniq[None, :], phi * uniq[None, :], levels)
        q = np.maximum.accumulate(q, axis=0)[:, inverse]
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

    # ------------------------------------------------------------------ state (serialization)
    @property
    def _selector_state_size(self) -> int:
        k, lq, w = len(self._models), len(self.quantile_levels), self.total_window
        return 3 + lq + 3 * k + 5 + lq + (4 + lq) * w

    def _selector_state(self) -> list[float]:
        return [float(self._n), float(self._served), self._err_wt, *self._levels,
                *self._mae, *self._sq, *self._fc,
                self._size, self._scale, float(self._n_sizes), self._kap_num, self._kap_den,
                *self._total_levels, *self._win_y, *self._win_m, *self._win_v, *self._win_k,
                *self._win_l]

    def _load_selector_state(self, values: Sequence[float]) -> None:
        k, lq, w = len(self._models), len(self.quantile_levels), self.total_window
        expected = self._selector_state_size
        if len(values) != expected:
            raise ValueError(f"selector state must hold {expected} floats; got {len(values)}.")
        v = [float(x) for x in values]
        self._n, self._served, self._err_wt = int(v[0]), int(v[1]), v[2]
        if not 0 <= self._served < k:
            raise ValueError(f"served index {self._served} is out of range for {k} candidates.")
        self._levels = v[3 : 3 + lq]
        o = 3 + lq
        self._mae, self._sq, self._fc = v[o : o + k], v[o + k : o + 2 * k], v[o + 2 * k : o + 3 * k]
        o += 3 * k
        self._size, self._scale, self._n_sizes = v[o], v[o + 1], int(v[o + 2])
        self._kap_num, self._kap_den = v[o + 3], v[o + 4]
        if self._kap_num < 0.0 or self._kap_den < 0.0:
            raise ValueError("total inflation EWMAs must be non-negative.")
        o += 5
        self._total_levels = v[o : o + lq]
        o += lq
        self._win_y, self._win_m = v[o : o + w], v[o + w : o + 2 * w]
        self._win_v, self._win_k = v[o + 2 * w : o + 3 * w], v[o + 3 * w : o + 4 * w]
        self._win_l = v[o + 4 * w :]
