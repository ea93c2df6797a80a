"""Shared base class of restock's online per-SKU forecasters.

Every candidate model implements River's :class:`river.time_series.base.Forecaster` protocol
(``learn_one(y, x)``, ``forecast(horizon, xs)``) and, on top of it, exposes its whole learned
state as a flat ``float64`` vector (:meth:`OnlineForecaster.state` /
:meth:`OnlineForecaster.load_state`) so that :mod:`agents.forecasting.serialization` can store it
without pickle. The parameters are recovered from the constructor signature (River's
``_get_params``), the learned state from the vector.

Season position
---------------
``x`` may carry ``season_pos``: an integer in ``[0, season_length)`` (day of week 0..6 for daily
periods). When it is absent, the models that need it track the position with an internal counter
that advances by one per learned period; when it is present, the counter is re-synchronised to
``season_pos + 1`` so that a later ``forecast`` without ``xs`` continues from the right position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from river.time_series.base import Forecaster

__all__ = ["OnlineForecaster", "check_demand", "check_horizon"]


def check_demand(y: float) -> float:
    """Validate one period's demand and return it as a float.

    Parameters
    ----------
    y
        Demand of one closed period, in units.

    Returns
    -------
    float
        ``y`` as a Python float.

    Raises
    ------
    ValueError
        When ``y`` is negative, NaN or infinite.

    Examples
    --------
    >>> check_demand(3)
    3.0
    >>> check_demand(-1)
    Traceback (most recent call last):
    ...
    ValueError: demand must be a finite non-negative number of units; got -1.

    """
    v = float(y)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"demand must be a finite non-negative number of units; got {y!r}.")
    return v


def check_horizon(horizon: int, xs: Sequence[dict] | None) -> int:
    """Validate a forecast horizon and its optional feature list.

    Parameters
    ----------
    horizon
        Number of future periods to forecast.
    xs
        Optional per-period feature dictionaries; when given its length must equal ``horizon``.

    Returns
    -------
    int
        The horizon as an int.

    Raises
    ------
    ValueError
        When ``horizon`` is negative or ``xs`` has the wrong length.

    Examples
    --------
    >>> check_horizon(3, None)
    3

    """
    h = int(horizon)
    if h < 0:
        raise ValueError(f"horizon must be a non-negative number of periods; got {horizon!r}.")
    if xs is not None and len(xs) != h:
        raise ValueError(f"xs must hold one feature dict per period ({h}); got {len(xs)}.")
    return h


class OnlineForecaster(Forecaster):
    """Base class: River forecaster whose learned state is a flat float vector.

    Subclasses implement :meth:`learn_one`, :meth:`forecast`, :meth:`state` and
    :meth:`load_state`; the state vector has a length fixed by the constructor parameters, so
    learning never grows it. :meth:`predict_next` is the fast one-step path used by the model
    selector (same value as ``forecast(1, [x])[0]``).

    Examples
    --------
    >>> from agents.forecasting import SBA
    >>> m = SBA()
    >>> m.learn_one(4.0)
    >>> len(m.state()) == m.state_size
    True

    """

    #: number of floats in :meth:`state` (fixed for a given set of parameters)
    state_size: int = 0

    def predict_next(self, x: dict | None = None) -> float:
        """Mean forecast of the next period (``forecast(1, [x])[0]``), in units.

        Parameters
        ----------
        x
            Optional features of the next period (``season_pos``).

        Returns
        -------
        float
            Non-negative mean demand of the next period.

        """
        return self.forecast(1, None if x is None else [x])[0]

    def forecast_at(self, horizon: int, pos: int, season_length: int) -> list[float]:
        """``forecast(horizon, xs)`` for calendar-only features, without building ``xs``.

        The features of period ``j`` are ``{"season_pos": (pos + j) % season_length}`` (what a
        selector's window forecast passes); subclasses that read nothing else from ``xs``
        compute the same floats from the positions directly.

        Parameters
        ----------
        horizon
            Number of periods.
        pos
            Season position of the first period (int).
        season_length
            Positions per season of the caller's calendar (> 0).

        Returns
        -------
        list[float]
            ``horizon`` means, in units per period, equal to ``forecast(horizon, xs)``.

        Raises
        ------
        ValueError
            As :meth:`forecast` (negative horizon, invalid position).

        Examples
        --------
        >>> from agents.forecasting import SeasonalProfile
        >>> m = SeasonalProfile(season_length=7)
        >>> for t in range(30):
        ...     m.learn_one(float(t % 7), {"season_pos": t % 7})
        >>> m.forecast_at(3, 5, 7) == m.forecast(3, [{"season_pos": p} for p in (5, 6, 0)])
        True
        """
        return self.forecast(
            horizon, [{"season_pos": (pos + j) % season_length} for j in range(horizon)]
        )

    def state_values(self) -> list[float]:
        """:meth:`state` as a list of floats (what the serializer packs; subclasses skip numpy).

        Returns
        -------
        list[float]
            ``state_size`` values, equal to ``state().tolist()``.
        """
        return [float(v) for v in self.state().tolist()]

    def state(self) -> np.ndarray:  # pragma: no cover - abstract
        """Learned state as a ``float64`` vector of shape ``(state_size,)``."""
        raise NotImplementedError

    def load_state(self, state: np.ndarray) -> None:  # pragma: no cover - abstract
        """Restore the learned state from a vector produced by :meth:`state`."""
        raise NotImplementedError

    def _check_state(self, state: np.ndarray | list[float]) -> list[float]:
        if type(state) is list:  # the decoder's unpacked floats: no numpy round trip
            if len(state) != self.state_size:
                raise ValueError(
                    f"{type(self).__name__} state must hold {self.state_size} floats; "
                    f"got {len(state)}."
                )
            return [float(v) for v in state]
        values = np.asarray(state, dtype=np.float64).ravel()
        if values.shape[0] != self.state_size:
            raise ValueError(
                f"{type(self).__name__} state must hold {self.state_size} floats; "
                f"got {values.shape[0]}."
            )
        return values.tolist()


class SeasonalMixin:
    """Season-position bookkeeping for models that depend on ``season_pos``."""

    season_length: int
    _next_pos: int

    def _pos(self, x: dict | None) -> int:
        if x is not None and "season_pos" in x:
            pos = int(x["season_pos"])
            if not 0 <= pos < self.season_length:
                raise ValueError(
                    f"season_pos must be an integer in [0, {self.season_length}); got {pos}."
                )
            return pos
        return self._next_pos

    def _future_positions(self, horizon: int, xs: Sequence[dict] | None) -> list[int]:
        if xs is None:
            m = self.season_length
            return [(self._next_pos + h) % m for h in range(horizon)]
        return [self._pos_at(x, h) for h, x in enumerate(xs)]

    def _pos_at(self, x: dict | None, h: int) -> int:
        if x is not None and "season_pos" in x:
            return self._pos(x)
        return (self._next_pos + h) % self.season_length
