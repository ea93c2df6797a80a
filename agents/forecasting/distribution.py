"""Predictive demand distributions: negative binomial moment matching and the forecast result.

A period's demand with mean ``mu`` and variance ``v`` is represented by the negative binomial
with the same two moments when ``v > mu`` (over-dispersed counts), by the Poisson of mean ``mu``
otherwise, and by the point mass at 0 when ``mu = 0`` (Snyder, Ord & Beaumont 2012 recommend
the negative binomial for slow-moving, over-dispersed count demand).

Quantiles and CDF values come from :mod:`agents.count_quantiles`, the code base's one
negative binomial / Poisson quantile module (vectorised, public ``scipy.special`` functions).

Totals over several periods carry a variance inflation learned online by the selector (forecast
errors of consecutive periods are positively correlated; see :mod:`agents.forecasting.selection`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

from agents.count_quantiles import count_quantiles

__all__ = ["ForecastDistribution", "window_inflation"]


def _check_range(h: int, start: int, stop: int) -> None:
    if not 0 <= start <= stop <= h:
        raise ValueError(
            f"the period range must satisfy 0 <= start <= stop <= {h}; got [{start}, {stop})."
        )


def window_inflation(kappa: float, window: int, h: int) -> float:
    """Variance inflation of an ``h``-period total given the factor ``kappa`` at ``window``.

    Parameters
    ----------
    kappa
        Learned inflation (>= 1) of the total of ``window`` periods.
    window
        Number of periods the inflation was learned on (>= 1).
    h
        Number of periods of the total (>= 0).

    Returns
    -------
    float
        ``1 + (kappa - 1) (h - 1) / (window - 1)`` for ``h >= 1`` (``kappa`` for every
        ``h >= 1`` when ``window == 1``), 1 for ``h == 0``.

    Examples
    --------
    >>> window_inflation(2.2, 7, 1), window_inflation(2.2, 7, 7), window_inflation(2.2, 7, 4)
    (1.0, 2.2, 1.6)

    """
    if h <= 0:
        return 1.0
    if window <= 1:
        return float(kappa)
    return 1.0 + (kappa - 1.0) * (h - 1) / (window - 1)


@dataclass(frozen=True, eq=False)
class ForecastDistribution:
    """Predictive demand distribution per future period, from the served model.

    Parameters
    ----------
    mean
        Mean demand per period (units), shape ``(H,)``, >= 0.
    variance
        Variance per period (units squared), shape ``(H,)``, >= 0.
    quantiles
        Nominal level -> quantile per period (units), each shape ``(H,)``, non-decreasing in the
        level.
    model
        Name of the served candidate model.
    levels
        Nominal level -> calibrated level actually used for the per-period quantiles (online
        conformal calibration; equal to the nominal level when calibration is off).
    period_variance
        Marginal variance of each period alone (units squared), shape ``(H,)``; ``None`` when
        ``variance`` is marginal itself (no inflation).
    inflation
        Variance inflation ``kappa`` (>= 1) of the total of ``inflation_window`` periods; a
        total of ``h`` periods has variance ``g(h) * sum(period_variance)`` with
        ``g(h) = 1 + (kappa - 1) (h - 1) / (inflation_window - 1)``. ``variance`` holds the
        increments of that cumulative variance, so ``variance[:k].sum()`` is the variance of
        the total of the first ``k`` periods (what lead-time sums in the optimizer use).
    inflation_window
        Number of periods ``W`` (>= 1) on which ``inflation`` was learned.
    total_levels
        Nominal level -> calibrated level for totals (online conformal calibration of
        ``W``-period totals), used by :meth:`total_quantile`; empty: nominal levels.

    Examples
    --------
    >>> d = ForecastDistribution(
    ...     mean=np.array([1.0, 2.0]), variance=np.array([3.0, 6.0]),
    ...     quantiles={0.9: np.array([3.0, 5.0])}, model="tsb")
    >>> d.total(0, 2)
    (3.0, 9.0)
    >>> d.total_quantile(0, 2, 0.9)
    7.0

    With an inflation of 2 learned on 3-period totals, a 2-period total gets 1.5 x the summed
    marginal variance:

    >>> e = ForecastDistribution(
    ...     mean=np.array([1.0, 2.0]), variance=np.array([3.0, 10.5]),
    ...     quantiles={0.9: np.array([3.0, 5.0])}, model="tsb",
    ...     period_variance=np.array([3.0, 6.0]), inflation=2.0, inflation_window=3)
    >>> e.total(0, 2), e.total(1, 2)
    ((3.0, 13.5), (2.0, 6.0))

    """

    mean: np.ndarray
    variance: np.ndarray
    quantiles: dict[float, np.ndarray]
    model: str
    levels: dict[float, float] = field(default_factory=dict)
    period_variance: np.ndarray | None = None
    inflation: float = 1.0
    inflation_window: int = 1
    total_levels: dict[float, float] = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        """Number of periods ``H``."""
        return int(self.mean.shape[0])

    def total(self, start: int, stop: int) -> tuple[float, float]:
        """Mean and variance of the total demand of periods ``[start, stop)``.

        The variance is ``g(stop - start)`` times the sum of the marginal per-period variances
        (``period_variance``), ``g`` the learned inflation for correlated errors (see the class
        docstring; 1 without inflation, i.e. independent periods). For ``start == 0`` it equals
        ``variance[:stop].sum()``.

        Parameters
        ----------
        start
            First period (0 = next period).
        stop
            One past the last period.

        Returns
        -------
        tuple[float, float]
            ``(mean, variance)`` in units and units squared.

        Raises
        ------
        ValueError
            When the range is not within ``[0, H]``.

        """
        _check_range(self.horizon, start, stop)
        mean = float(self.mean[start:stop].sum())
        if self.period_variance is None:
            return mean, float(self.variance[start:stop].sum())
        g = window_inflation(self.inflation, self.inflation_window, stop - start)
        return mean, g * float(self.period_variance[start:stop].sum())

    def total_quantile(self, start: int, stop: int, level: float) -> float:
        """Quantile of the total demand of periods ``[start, stop)``.

        The total is moment-matched (mean and inflated variance from :meth:`total`) to a
        negative binomial (Poisson when not over-dispersed) and evaluated at the calibrated
        level for totals: ``total_levels[level]`` when ``level`` is one of its keys; otherwise
        ``level`` shifted in normal scores by the calibration of the nearest key,
        ``Phi(Phi^-1(level) + Phi^-1(cal) - Phi^-1(nominal))``; the nominal ``level`` when
        ``total_levels`` is empty. The calibration is learned on ``inflation_window``-period
        totals and applied to every window.

        Parameters
        ----------
        start
            First period (0 = next period).
        stop
            One past the last period.
        level
            Probability level in (0, 1).

        Returns
        -------
        float
            Integer-valued quantile in units.

        Raises
        ------
        ValueError
            When the range is invalid or ``level`` is not in (0, 1).

        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be a probability in (0, 1); got {level!r}.")
        mean, var = self.total(start, stop)
        level = self._total_level(float(level))
        return float(count_quantiles(np.array(mean), np.array(var), np.array(level)))

    def _total_level(self, level: float) -> float:
        cal = self.total_levels
        if not cal:
            return level
        if level in cal:
            return float(cal[level])
        nominal = min(cal, key=lambda q: abs(q - level))
        shift = special.ndtri(cal[nominal]) - special.ndtri(nominal)
        return float(special.ndtr(special.ndtri(level) + shift))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ForecastDistribution):
            return NotImplemented
        return (
            self.model == other.model
            and self.levels == other.levels
            and self.inflation == other.inflation
            and self.inflation_window == other.inflation_window
            and self.total_levels == other.total_levels
            and (
                self.period_variance is None
                if other.period_variance is None
                else self.period_variance is not None
                and np.array_equal(self.period_variance, other.period_variance)
            )
            and np.array_equal(self.mean, other.mean)
            and np.array_equal(self.variance, other.variance)
            and self.quantiles.keys() == other.quantiles.keys()
            and all(np.array_equal(v, other.quantiles[k]) for k, v in self.quantiles.items())
        )

    __hash__ = None  # type: ignore[assignment]
