"""Outlier-robust updating of a forecaster's demand: Huber cleaning of demand sizes.

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

References
----------
Gelper, S., Fried, R., & Croux, C. (2010). Robust forecasting with exponential and Holt-Winters
smoothing. Journal of Forecasting, 29(3), 285-300, eq. (3)-(5).
Brown, R. G. (1959). Statistical Forecasting for Inventory Control. McGraw-Hill (MAD x 1.25).
"""

from __future__ import annotations

import math

__all__ = ["RobustCleaning"]

_SIZE_ALPHA = 0.1  # smoothing of the robust demand size z
_SCALE_DECAY = 0.1  # weight of the newest cleaned |size error| in the robust scale
_MAD_TO_SD = 1.25  # ~ sqrt(pi / 2): mean absolute deviation -> standard deviation (normal)
_ROBUST_WARMUP = 4  # sizes that only initialise z and the scale (no cleaning)


class RobustCleaning:
    """The robust size ``z`` and scale ``sigma`` of a forecaster and the cleaning they define.

    A part of :class:`~agents.forecasting.selection.DemandForecaster` (which initialises the
    attributes below); the module docstring gives the recursion.
    """

    robust: bool
    huber_k: float
    _size: float  # robust smoothed demand size z (units)
    _scale: float  # robust scale of the sizes (units)
    _n_sizes: int  # positive demands seen (capped at the warm-up length)

    @property
    def robust_size(self) -> tuple[float, float]:
        """Robust demand size ``z`` and its scale ``sigma`` (units) used to clean demand."""
        return self._size, self._scale

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
        >>> from agents.forecasting.selection import DemandForecaster
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
