"""Calibration of a forecaster's quantiles: per-period levels and the totals over several periods.

Quantiles come from the negative binomial moment-matched to ``(mu_h, phi * mu_h)`` (Poisson when
``phi <= 1``) at a per-SKU *calibrated* level ``tau_t`` per nominal level ``tau``, updated by
adaptive conformal inference (Gibbs & Candès 2021, eq. 2) on the served one-step quantile:
``tau_{t+1} = tau_t + gamma (miss_t - (1 - tau))`` with ``miss_t = 1[y_t > q_t]``, clipped to
``[0.01, 0.999]``, skipped in periods whose served mean is 0. Long-run miss frequency therefore
tracks ``1 - tau`` whatever the distributional misspecification. Quantiles are then made
non-decreasing in the level.

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

References
----------
Gibbs, I., & Candès, E. (2021). Adaptive conformal inference under distribution shift. NeurIPS
34, eq. (2).
"""

from __future__ import annotations

import math
from typing import Any

from agents.count_quantiles import count_cdf
from agents.forecasting.base import OnlineForecaster
from agents.forecasting.covariates import CovariateEffects

__all__ = ["Calibration"]

_LEVEL_BOUNDS = (0.01, 0.999)
_KAPPA_BOUNDS = (1.0, 50.0)  # variance inflation of the window total (inflation only)
_KAPPA_DECAY = 0.05  # weight of the newest window in the inflation EWMAs
_KAPPA_CLIP = 6.0  # Huber clip of the window error, in inflated standard deviations
_TOTAL_LEVEL_BOUNDS = (0.01, 0.9999)  # totals are heavy-tailed: allow far-tail levels


class Calibration:
    """Calibrated per-period levels, the window-total inflation ``kappa`` and the total levels.

    A part of :class:`~agents.forecasting.selection.DemandForecaster` (which initialises the
    attributes below); the module docstring gives the updates.
    """

    quantile_levels: tuple[float, ...]
    calibration_rate: float
    total_calibration_rate: float
    total_window: int
    season_length: int
    _n: int
    _cov: CovariateEffects | None
    _levels: list[float]  # calibrated levels, one per nominal level
    _kap_num: float  # EWMA of the clipped squared window error
    _kap_den: float  # EWMA of the predicted window variance
    _total_levels: list[float]  # calibrated levels for totals, per nominal level
    _win_y: list[float]  # ring buffer of the last W demands (raw), slot t % W
    _win_m: list[float]  # window mean predicted at origin t, slot t % W
    _win_v: list[float]  # window summed variance predicted at origin t, slot t % W
    _win_k: list[float]  # inflation issued at origin t, slot t % W
    _win_l: list[float]  # total levels issued at origin t, slots t % W

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
        if x is not None and len(x) == 1 and "season_pos" in x:  # calendar only: no feature dicts
            window = served.forecast_at(w, int(x["season_pos"]), self.season_length)
        else:
            window = served.forecast(w, self._future_xs(x))
        mean_w = max(0.0, sum(window))
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
