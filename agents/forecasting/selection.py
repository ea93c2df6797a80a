"""Online model selection, predictive variance and calibrated quantiles per SKU.

:class:`DemandForecaster` runs every candidate side by side. For each closed period, *before*
learning it, every candidate's one-step forecast is scored against the demand with an
exponentially decayed mean absolute error; the candidate with the lowest decayed MAE is served
(the first candidate until ``min_periods_to_switch`` periods have been learned).

Predictive variance
-------------------
Per candidate, an EWMA of the squared one-step error ``e^2`` and of the forecast ``yhat`` is
kept over the periods with ``yhat > 0``; their ratio ``phi = EWMA(e^2) / EWMA(yhat)`` is a
dispersion index, and the variance of a future period with mean ``mu_h`` is ``phi * mu_h``
(variance proportional to the mean, as for over-dispersed counts; a zero-mean period such as a
closed Saturday gets variance 0). Until the served model has been scored on a period with a
positive forecast, ``phi = 1`` (Poisson prior). Cold start: before any non-zero demand all
candidates forecast 0, so mean, variance and quantiles are 0.

Calibrated quantiles
--------------------
Quantiles come from the negative binomial moment-matched to ``(mu_h, phi * mu_h)`` (Poisson when
``phi <= 1``) at a per-SKU *calibrated* level ``tau_t`` per nominal level ``tau``, updated by
adaptive conformal inference (Gibbs & Candès 2021, eq. 2) on the served one-step quantile:
``tau_{t+1} = tau_t + gamma (miss_t - (1 - tau))`` with ``miss_t = 1[y_t > q_t]``, clipped to
``[0.01, 0.999]``, skipped in periods whose served mean is 0. Long-run miss frequency therefore
tracks ``1 - tau`` whatever the distributional misspecification. Quantiles are then made
non-decreasing in the level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from river.time_series.base import Forecaster

from agents.forecasting.base import OnlineForecaster, check_demand, check_horizon
from agents.forecasting.distribution import ForecastDistribution, count_cdf, count_quantiles
from agents.forecasting.intermittent import SBA, TSB, Croston
from agents.forecasting.seasonal import RiverRegressor, SeasonalProfile

__all__ = [
    "CANDIDATES",
    "DEFAULT_CANDIDATES",
    "FORMAT_VERSION",
    "DemandForecaster",
]

#: serialization / state layout version reported by :attr:`DemandForecaster.model_version`
FORMAT_VERSION = 1

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
    """Per-SKU online forecaster: candidate models, decayed-MAE selection, calibrated quantiles.

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

    Examples
    --------
    >>> f = DemandForecaster()
    >>> f.forecast(2), f.served_model, f.recent_mae
    ([0.0, 0.0], 'seasonal_sba', None)
    >>> for week in range(30):
    ...     for d in range(7):
    ...         f.learn_one([4, 0, 6, 0, 5, 0, 2][d], {"season_pos": d})
    >>> f.n_periods, f.model_version
    (210, 1)
    >>> dist = f.forecast_distribution(7)
    >>> dist.model in f.candidate_names
    True
    >>> bool(np.all(dist.quantiles[0.5] <= dist.quantiles[0.95]))
    True

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
        self.candidates = candidates
        self.season_length = int(season_length)
        self.error_decay = float(error_decay)
        self.min_periods_to_switch = int(min_periods_to_switch)
        self.quantile_levels = levels
        self.variance_decay = float(variance_decay)
        self.calibration_rate = float(calibration_rate)
        self._names, self._models = _build_candidates(candidates, self.season_length)
        k = len(self._models)
        self._n = 0  # periods learned
        self._served = 0  # index of the served candidate
        self._err_wt = 0.0  # shared bias-correction weight of the decayed MAEs
        self._mae = [0.0] * k  # decayed-MAE numerators
        self._sq = [0.0] * k  # EWMA of squared error over periods with yhat > 0
        self._fc = [0.0] * k  # EWMA of yhat over the same periods
        self._levels = list(levels)  # calibrated levels, one per nominal level

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
        """State/serialization format version."""
        return FORMAT_VERSION

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

    def dispersion(self, name: str | None = None) -> float:
        """Dispersion index ``phi`` (variance / mean) of a candidate (default: the served one).

        Parameters
        ----------
        name
            Candidate name; ``None`` for the served candidate.

        Returns
        -------
        float
            ``EWMA(e^2) / EWMA(yhat)``, or 1.0 (Poisson prior) before it can be estimated.

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
        """Score every candidate on this period, then learn it.

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
        models = self._models
        preds = [m.predict_next(x) for m in models]
        s = self._served
        mu = preds[s]
        gamma = self.calibration_rate
        if gamma > 0.0 and mu > 0.0:
            var = self.dispersion() * mu
            below = count_cdf(math.ceil(y) - 1.0, mu, var)  # miss <=> F(ceil(y) - 1) >= tau_t
            lo, hi = _LEVEL_BOUNDS
            for i, nominal in enumerate(self.quantile_levels):
                miss = 1.0 if below >= self._levels[i] else 0.0
                self._levels[i] = min(hi, max(lo, self._levels[i] + gamma * (miss - 1.0 + nominal)))
        d, v = self.error_decay, self.variance_decay
        self._err_wt += d * (1.0 - self._err_wt)
        mae, sq, fc = self._mae, self._sq, self._fc
        for i, p in enumerate(preds):
            e = y - p
            mae[i] += d * (abs(e) - mae[i])
            if p > 0.0:
                sq[i] += v * (e * e - sq[i])
                fc[i] += v * (p - fc[i])
            models[i].learn_one(y, x)
        self._n += 1
        if self._n >= self.min_periods_to_switch:
            self._served = min(range(len(mae)), key=mae.__getitem__)
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
        return [max(0.0, v) for v in self._models[self._served].forecast(h, xs)]

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
            ``mean`` and ``variance`` of shape ``(H,)``, calibrated ``quantiles`` per nominal
            level (each ``(H,)``, non-decreasing in the level) and the served model's name.

        Raises
        ------
        ValueError
            When ``horizon`` is negative or ``xs`` has the wrong length.

        """
        mean = np.asarray(self.forecast(horizon, xs), dtype=np.float64)
        variance = self.dispersion() * mean
        levels = np.asarray(self._levels, dtype=np.float64)[:, None]
        # variance is phi * mean, so quantiles depend on the mean only: solve once per distinct
        # mean (at most season_length of them) and scatter back over the horizon
        uniq, inverse = np.unique(mean, return_inverse=True)
        q = count_quantiles(uniq[None, :], self.dispersion() * uniq[None, :], levels)
        q = np.maximum.accumulate(q, axis=0)[:, inverse]
        return ForecastDistribution(
            mean=mean,
            variance=variance,
            quantiles={lvl: q[i] for i, lvl in enumerate(self.quantile_levels)},
            model=self.served_model,
            levels=self.calibrated_levels,
        )

    # ------------------------------------------------------------------ state (serialization)
    def _selector_state(self) -> list[float]:
        return [float(self._n), float(self._served), self._err_wt, *self._levels,
                *self._mae, *self._sq, *self._fc]

    def _load_selector_state(self, values: Sequence[float]) -> None:
        k, lq = len(self._models), len(self.quantile_levels)
        expected = 3 + lq + 3 * k
        if len(values) != expected:
            raise ValueError(f"selector state must hold {expected} floats; got {len(values)}.")
        v = [float(x) for x in values]
        self._n, self._served, self._err_wt = int(v[0]), int(v[1]), v[2]
        if not 0 <= self._served < k:
            raise ValueError(f"served index {self._served} is out of range for {k} candidates.")
        self._levels = v[3 : 3 + lq]
        o = 3 + lq
        self._mae, self._sq, self._fc = v[o : o + k], v[o + k : o + 2 * k], v[o + 2 * k :]
