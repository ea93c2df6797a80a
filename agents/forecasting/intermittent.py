"""Intermittent-demand forecasters: Croston, SBA and TSB, updated online one period at a time.

All three keep a handful of floats and update them recursively in ``learn_one``; the forecast
is flat over the horizon (the methods have no trend or season; see
:mod:`agents.forecasting.seasonal` for day-of-week profiles).

Initialisation convention (the one of statsforecast's ``CrostonClassic``, ``CrostonSBA`` and
``TSB``, so that the final forecast equals statsforecast's on the same series):

* demand size ``z``: simple exponential smoothing (SES) over the non-zero demands, initialised to
  the **first non-zero demand** (``z_1 = y_first``);
* inter-demand interval ``p`` (Croston/SBA): SES over the intervals between non-zero demands,
  the first interval counting the periods from the start of the series up to and including the
  first demand (a first sale in period 3 gives ``p_1 = 3``);
* demand probability ``pi`` (TSB): SES over the 0/1 occurrence indicator of **every** period,
  initialised to the indicator of the first period.

Cold start: before the first non-zero demand every forecast is 0 (mean 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.forecasting.base import OnlineForecaster, check_demand, check_horizon

__all__ = ["Croston", "SBA", "TSB"]


def _check_alpha(name: str, value: float) -> float:
    v = float(value)
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{name} must be a smoothing constant in (0, 1]; got {value!r}.")
    return v


class Croston(OnlineForecaster):
    r"""Croston's method for intermittent demand, updated online.

    Demand sizes and inter-demand intervals are smoothed separately, and only in periods with a
    sale[^1]:

    .. math::

        z_t = z_{t-1} + \alpha (y_t - z_{t-1}), \qquad
        p_t = p_{t-1} + \alpha (q_t - p_{t-1}) \qquad \text{if } y_t > 0,

    where ``q_t`` is the number of periods since the previous sale. The forecast of every future
    period is ``z / p`` units per period (Croston 1972, eq. 11 and the ratio of section 3).

    Parameters
    ----------
    alpha
        Smoothing constant of both the demand size and the interval, in (0, 1] (dimensionless).

    Raises
    ------
    ValueError
        When ``alpha`` is outside (0, 1].

    References
    ----------
    [^1]: Croston, J. D. (1972). Forecasting and stock control for intermittent demands.
        Operational Research Quarterly, 23(3), 289-303, eq. (11).

    Examples
    --------
    >>> m = Croston(alpha=0.1)
    >>> m.forecast(2)          # cold start: no sale yet
    [0.0, 0.0]
    >>> for y in [0, 0, 3, 0, 5]:
    ...     m.learn_one(y)
    >>> [round(v, 6) for v in m.forecast(2)]   # z = 3.2, p = 2.9
    [1.103448, 1.103448]

    """

    state_size = 3

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = _check_alpha("alpha", alpha)
        self._z = 0.0  # smoothed demand size (units); 0 before the first sale
        self._p = 0.0  # smoothed inter-demand interval (periods); 0 before the first sale
        self._q = 0.0  # periods since the last sale (or since the start)

    @property
    def _factor(self) -> float:
        return 1.0

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Learn one closed period's demand.

        Parameters
        ----------
        y
            Demand of the period, in units (>= 0).
        x
            Ignored (accepted for the River protocol).

        Raises
        ------
        ValueError
            When ``y`` is negative or not finite.

        """
        y = check_demand(y)
        self._q += 1.0
        if y > 0.0:
            if self._p == 0.0:
                self._z, self._p = y, self._q
            else:
                a = self.alpha
                self._z += a * (y - self._z)
                self._p += a * (self._q - self._p)
            self._q = 0.0

    def predict_next(self, x: dict | None = None) -> float:
        """Mean forecast of the next period, in units (flat: same for every period)."""
        return self._factor * self._z / self._p if self._p > 0.0 else 0.0

    def forecast(self, horizon: int, xs: Sequence[dict] | None = None) -> list[float]:
        """Mean demand of each of the next ``horizon`` periods.

        Parameters
        ----------
        horizon
            Number of periods.
        xs
            Ignored apart from its length (accepted for the River protocol).

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
        return [self.predict_next()] * h

    def forecast_at(self, horizon: int, pos: int, season_length: int) -> list[float]:
        """:meth:`forecast` of ``horizon`` periods (flat: the positions change nothing)."""
        return [self.predict_next()] * check_horizon(horizon, None)

    def state(self) -> np.ndarray:
        """Learned state ``[z, p, q]`` as ``float64`` of shape ``(3,)``."""
        return np.array(self.state_values(), dtype=np.float64)

    def state_values(self) -> list[float]:
        """:meth:`state` as a list of floats (the layout, written once)."""
        return [float(self._z), float(self._p), float(self._q)]

    def load_state(self, state: np.ndarray) -> None:
        """Restore ``[z, p, q]`` from :meth:`state`.

        Raises
        ------
        ValueError
            When the vector does not hold 3 floats.

        """
        self._z, self._p, self._q = self._check_state(state)


class SBA(Croston):
    """Syntetos-Boylan approximation: Croston's forecast times ``(1 - alpha / 2)``.

    Croston's ratio ``z / p`` is biased upwards; Syntetos & Boylan[^1] correct it with the
    factor ``1 - alpha / 2`` (their eq. 8). statsforecast's ``CrostonSBA`` is this model with
    ``alpha = 0.1`` (factor 0.95).

    Parameters
    ----------
    alpha
        Smoothing constant of the demand size and the interval, in (0, 1] (dimensionless).

    Raises
    ------
    ValueError
        When ``alpha`` is outside (0, 1].

    References
    ----------
    [^1]: Syntetos, A. A., & Boylan, J. E. (2005). The accuracy of intermittent demand
        estimates. International Journal of Forecasting, 21(2), 303-314, eq. (8).

    Examples
    --------
    >>> m = SBA(alpha=0.1)
    >>> for y in [0, 0, 3, 0, 5]:
    ...     m.learn_one(y)
    >>> round(m.forecast(1)[0], 6)   # 0.95 * 3.2 / 2.9
    1.048276

    """

    @property
    def _factor(self) -> float:
        return 1.0 - self.alpha / 2.0


class TSB(OnlineForecaster):
    r"""Teunter-Syntetos-Babai method: smoothed demand probability times smoothed demand size.

    The occurrence probability is updated every period, the size only in periods with a sale,
    so the forecast decays during long runs of zeros (obsolescence)[^1]:

    .. math::

        \pi_t = \pi_{t-1} + \beta (1[y_t > 0] - \pi_{t-1}), \qquad
        z_t = z_{t-1} + \alpha (y_t - z_{t-1}) \ \text{if } y_t > 0,

    and the forecast of every future period is ``pi * z`` (Teunter et al. 2011, eq. 4-6).

    Parameters
    ----------
    alpha_demand
        Smoothing constant of the demand size, in (0, 1] (dimensionless).
    alpha_probability
        Smoothing constant of the demand probability, in (0, 1] (dimensionless).

    Raises
    ------
    ValueError
        When a smoothing constant is outside (0, 1].

    References
    ----------
    [^1]: Teunter, R. H., Syntetos, A. A., & Babai, M. Z. (2011). Intermittent demand: Linking
        forecasting to inventory obsolescence. European Journal of Operational Research, 214(3),
        606-615, eq. (4)-(6).

    Examples
    --------
    >>> m = TSB(alpha_demand=0.1, alpha_probability=0.1)
    >>> for y in [0, 0, 3, 0, 5]:
    ...     m.learn_one(y)
    >>> round(m.forecast(1)[0], 6)   # pi = 0.181, z = 3.2
    0.5792

    """

    state_size = 3

    def __init__(self, alpha_demand: float = 0.1, alpha_probability: float = 0.1) -> None:
        self.alpha_demand = _check_alpha("alpha_demand", alpha_demand)
        self.alpha_probability = _check_alpha("alpha_probability", alpha_probability)
        self._z = 0.0  # smoothed demand size (units); 0 before the first sale
        self._pi = 0.0  # smoothed probability of a sale in a period
        self._n = 0.0  # 1 once a period has been learned (initialises pi)

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Learn one closed period's demand.

        Parameters
        ----------
        y
            Demand of the period, in units (>= 0).
        x
            Ignored (accepted for the River protocol).

        Raises
        ------
        ValueError
            When ``y`` is negative or not finite.

        """
        y = check_demand(y)
        hit = 1.0 if y > 0.0 else 0.0
        if self._n == 0.0:
            self._pi, self._n = hit, 1.0
        else:
            self._pi += self.alpha_probability * (hit - self._pi)
        if hit:
            if self._z == 0.0:
                self._z = y
            else:
                self._z += self.alpha_demand * (y - self._z)

    def predict_next(self, x: dict | None = None) -> float:
        """Mean forecast of the next period, in units (flat: same for every period)."""
        return self._pi * self._z

    def forecast(self, horizon: int, xs: Sequence[dict] | None = None) -> list[float]:
        """Mean demand of each of the next ``horizon`` periods.

        Parameters
        ----------
        horizon
            Number of periods.
        xs
            Ignored apart from its length (accepted for the River protocol).

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
        return [self._pi * self._z] * h

    def forecast_at(self, horizon: int, pos: int, season_length: int) -> list[float]:
        """:meth:`forecast` of ``horizon`` periods (flat: the positions change nothing)."""
        return [self._pi * self._z] * check_horizon(horizon, None)

    def state(self) -> np.ndarray:
        """Learned state ``[z, pi, started]`` as ``float64`` of shape ``(3,)``."""
        return np.array(self.state_values(), dtype=np.float64)

    def state_values(self) -> list[float]:
        """:meth:`state` as a list of floats (the layout, written once)."""
        return [float(self._z), float(self._pi), float(self._n)]

    def load_state(self, state: np.ndarray) -> None:
        """Restore ``[z, pi, started]`` from :meth:`state`.

        Raises
        ------
        ValueError
            When the vector does not hold 3 floats.

        """
        self._z, self._pi, self._n = self._check_state(state)
