"""Seasonal forecasters: day-of-week profile models and a River regressor.

A multiplicative season profile on top of an intermittent level, and a River incremental linear
regressor behind the Forecaster signature.

Both take the season position from ``x["season_pos"]`` when present and otherwise from an
internal counter (see :mod:`agents.forecasting.base`). Forecasts are never negative.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from river import linear_model, optim

from agents.forecasting.base import OnlineForecaster, SeasonalMixin, check_demand, check_horizon
from agents.forecasting.intermittent import SBA, TSB, Croston

__all__ = ["SeasonalProfile", "RiverRegressor"]

_BASES = {"tsb": TSB, "sba": SBA, "croston": Croston}


def _check_season_length(season_length: int) -> int:
    m = int(season_length)
    if m != season_length or m < 1:
        raise ValueError(f"season_length must be a positive integer; got {season_length!r}.")
    return m


def _check_rate(name: str, value: float, *, allow_zero: bool = False) -> float:
    v = float(value)
    ok = (0.0 <= v <= 1.0) if allow_zero else (0.0 < v <= 1.0)
    if not ok:
        bounds = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{name} must be in {bounds}; got {value!r}.")
    return v


class SeasonalProfile(SeasonalMixin, OnlineForecaster):
    r"""Intermittent level (TSB, SBA or Croston) times a multiplicative season profile.

    The level is learned by the base method on the raw series, so it is the average demand per
    period over all season positions. The profile is learned by exponential smoothing of the
    demand *at each position*, with bias correction so that an unseen position carries no weight:

    .. math::

        a_j \leftarrow (1 - \gamma) a_j + \gamma y_t, \quad
        w_j \leftarrow (1 - \gamma) w_j + \gamma \qquad (j = \text{pos}_t),

    ``r_j = a_j / w_j``, and the profile ``s_j = (1 - \lambda) r_j / \bar r + \lambda``
    (``\bar r`` the mean over seen positions; unseen positions and an all-zero history give 1),
    so the profile has mean 1 and needs no division by a possibly-zero level (robust to zero
    runs). The forecast for a period at position ``j`` is ``level * s_j``: the decomposition of
    Holt-Winters' multiplicative seasonality[^1] applied to an intermittent level[^2].

    Parameters
    ----------
    base
        Level model: ``"tsb"``, ``"sba"`` or ``"croston"``.
    season_length
        Number of positions in a season (7 for day-of-week on daily periods).
    alpha
        Smoothing constant of the base's demand size (and SBA/Croston interval), in (0, 1].
    alpha_probability
        Smoothing constant of TSB's demand probability, in (0, 1] (ignored by other bases).
    profile_alpha
        Smoothing constant ``gamma`` of the per-position demand, in (0, 1].
    shrinkage
        Weight ``lambda`` in [0, 1] pulling the profile towards 1 (0: no shrinkage).

    Raises
    ------
    ValueError
        On an unknown base or a constant out of range.

    References
    ----------
    [^1]: Winters, P. R. (1960). Forecasting sales by exponentially weighted moving averages.
        Management Science, 6(3), 324-342, eq. (2) (seasonal factor update).
    [^2]: Teunter, R. H., Syntetos, A. A., & Babai, M. Z. (2011). Intermittent demand: Linking
        forecasting to inventory obsolescence. EJOR, 214(3), 606-615, eq. (4)-(6).

    Examples
    --------
    >>> m = SeasonalProfile(base="tsb", season_length=7)
    >>> for week in range(20):
    ...     for d in range(7):
    ...         m.learn_one(0.0 if d == 5 else 10.0, {"season_pos": d})
    >>> [round(v, 2) for v in m.forecast(7)]   # next period is Monday (0); Saturday is 0
    [9.65, 9.65, 9.65, 9.65, 9.65, 0.0, 9.65]

    """

    def __init__(
        self,
        base: str = "tsb",
        season_length: int = 7,
        alpha: float = 0.1,
        alpha_probability: float = 0.1,
        profile_alpha: float = 0.1,
        shrinkage: float = 0.0,
    ) -> None:
        if base not in _BASES:
            raise ValueError(f"base must be one of {sorted(_BASES)}; got {base!r}.")
        self.base = base
        self.season_length = _check_season_length(season_length)
        self.alpha = _check_rate("alpha", alpha)
        self.alpha_probability = _check_rate("alpha_probability", alpha_probability)
        self.profile_alpha = _check_rate("profile_alpha", profile_alpha)
        self.shrinkage = _check_rate("shrinkage", shrinkage, allow_zero=True)
        if base == "tsb":
            self._level: OnlineForecaster = TSB(alpha, alpha_probability)
        else:
            self._level = _BASES[base](alpha)
        m = self.season_length
        self._num = [0.0] * m
        self._wt = [0.0] * m
        self._next_pos = 0
        self._profile = [1.0] * m
        self.state_size = self._level.state_size + 2 * m + 1

    def _refresh_profile(self) -> None:
        seen = [a / w for a, w in zip(self._num, self._wt, strict=True) if w > 0.0]
        mean = sum(seen) / len(seen) if seen else 0.0
        if mean <= 0.0:
            self._profile = [1.0] * self.season_length
            return
        lam = self.shrinkage
        c = 1.0 - lam
        if len(seen) == self.season_length:  # every position seen: the ratios are all there
            self._profile = [c * r / mean + lam for r in seen]
            return
        self._profile = [
            c * (a / w) / mean + lam if w > 0.0 else 1.0
            for a, w in zip(self._num, self._wt, strict=True)
        ]

    @property
    def profile(self) -> list[float]:
        """Current season profile, one multiplier per position (mean 1 over seen positions)."""
        return list(self._profile)

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Learn one closed period's demand.

        Parameters
        ----------
        y
            Demand of the period, in units (>= 0).
        x
            Optional features; ``season_pos`` (int in ``[0, season_length)``) is used.

        Raises
        ------
        ValueError
            When ``y`` is negative or not finite, or ``season_pos`` is out of range.

        """
        y = check_demand(y)
        pos = self._pos(x)
        self._level.learn_one(y)
        g = self.profile_alpha
        self._num[pos] += g * (y - self._num[pos])
        self._wt[pos] += g * (1.0 - self._wt[pos])
        self._next_pos = (pos + 1) % self.season_length
        self._refresh_profile()

    def predict_next(self, x: dict | None = None) -> float:
        """Mean forecast of the next period, in units."""
        return self._level.predict_next() * self._profile[self._pos(x)]

    def forecast(self, horizon: int, xs: Sequence[dict] | None = None) -> list[float]:
        """Mean demand of each of the next ``horizon`` periods.

        Parameters
        ----------
        horizon
            Number of periods.
        xs
            Optional per-period features (``season_pos``); without them positions continue from
            the internal counter.

        Returns
        -------
        list[float]
            ``horizon`` non-negative means, in units per period.

        Raises
        ------
        ValueError
            When ``horizon`` is negative, ``xs`` has the wrong length or a position is invalid.

        """
        h = check_horizon(horizon, xs)
        level = self._level.predict_next()
        return [level * self._profile[j] for j in self._future_positions(h, xs)]

    def forecast_at(self, horizon: int, pos: int, season_length: int) -> list[float]:
        """:meth:`forecast` of calendar-only features from position ``pos`` (no dicts built)."""
        m = self.season_length
        if season_length != m:  # another calendar: positions may be invalid here, check them
            return super().forecast_at(horizon, pos, season_length)
        h = check_horizon(horizon, None)
        level = self._level.predict_next()
        profile = self._profile
        return [level * profile[(pos + j) % m] for j in range(h)]

    def state(self) -> np.ndarray:
        """Learned state: base state, per-position sums and weights, next position.

        Returns
        -------
        numpy.ndarray
            ``float64`` of shape ``(base.state_size + 2 * season_length + 1,)``.

        """
        return np.array(self.state_values(), dtype=np.float64)

    def state_values(self) -> list[float]:
        """:meth:`state` as a list of floats (the layout, written once)."""
        return [*self._level.state_values(), *map(float, self._num), *map(float, self._wt),
                float(self._next_pos)]

    def load_state(self, state: np.ndarray) -> None:
        """Restore the learned state from :meth:`state`.

        Raises
        ------
        ValueError
            When the vector has the wrong length.

        """
        v = self._check_state(state)
        k, m = self._level.state_size, self.season_length
        self._level.load_state(v[:k])
        self._num = v[k : k + m]
        self._wt = v[k + m : k + 2 * m]
        self._next_pos = int(v[k + 2 * m]) % m
        self._refresh_profile()


class RiverRegressor(SeasonalMixin, OnlineForecaster):
    """River incremental linear regression on seasonal and level features, as a Forecaster.

    Features of the period at position ``j`` (computed before its demand is known):
    one-hot ``season_pos`` (``s0 .. s{m-1}``), a short and a long EWMA of past demand
    (``short``, ``long``) and the demand one season ago (``lag``; the long EWMA until a full season
    has been seen). Features and target are divided by a slow bias-corrected EWMA of demand
    (the *scale*) so one learning rate fits SKUs of any volume. The regressor is River's
    ``linear_model.LinearRegression`` with plain SGD at a fixed learning rate[^1] and clipped
    gradients (robust to wholesale spikes); the agent never sees River's ``(x, y)`` order.
    Multi-step forecasts are recursive (each prediction is fed back into the EWMAs and the lag
    buffer) and clipped at 0. Cold start: forecasts are 0 until the first sale (scale 0).

    Parameters
    ----------
    season_length
        Number of positions in a season (7 for day-of-week on daily periods).
    short_alpha
        Smoothing constant of the short demand EWMA, in (0, 1].
    long_alpha
        Smoothing constant of the long demand EWMA, in (0, 1].
    scale_alpha
        Smoothing constant of the normalising scale, in (0, 1].
    learning_rate
        SGD step size for the weights and the intercept, > 0 (per normalised unit).
    l2
        L2 penalty on the weights, >= 0.
    clip_gradient
        Absolute bound of the loss gradient, > 0 (normalised units).

    Raises
    ------
    ValueError
        When a parameter is out of range.

    References
    ----------
    [^1]: Robbins, H., & Monro, S. (1951). A stochastic approximation method. Annals of
        Mathematical Statistics, 22(3), 400-407, eq. (1) (the SGD update).

    Examples
    --------
    >>> m = RiverRegressor(season_length=7)
    >>> m.forecast(3)
    [0.0, 0.0, 0.0]
    >>> for week in range(60):
    ...     for d in range(7):
    ...         m.learn_one(0.0 if d == 5 else 10.0, {"season_pos": d})
    >>> [round(v) for v in m.forecast(7)]
    [10, 10, 10, 10, 10, 0, 10]
    >>> len(m.state()) == m.state_size == 2 * 7 + 10
    True

    """

    def __init__(
        self,
        season_length: int = 7,
        short_alpha: float = 0.3,
        long_alpha: float = 0.05,
        scale_alpha: float = 0.02,
        learning_rate: float = 0.02,
        l2: float = 0.0,
        clip_gradient: float = 5.0,
    ) -> None:
        self.season_length = _check_season_length(season_length)
        self.short_alpha = _check_rate("short_alpha", short_alpha)
        self.long_alpha = _check_rate("long_alpha", long_alpha)
        self.scale_alpha = _check_rate("scale_alpha", scale_alpha)
        if not float(learning_rate) > 0.0:
            raise ValueError(f"learning_rate must be positive; got {learning_rate!r}.")
        if not float(l2) >= 0.0:
            raise ValueError(f"l2 must be non-negative; got {l2!r}.")
        if not float(clip_gradient) > 0.0:
            raise ValueError(f"clip_gradient must be positive; got {clip_gradient!r}.")
        self.learning_rate = float(learning_rate)
        self.l2 = float(l2)
        self.clip_gradient = float(clip_gradient)
        m = self.season_length
        self._names = [f"s{j}" for j in range(m)] + ["short", "long", "lag"]
        self._reg = linear_model.LinearRegression(
            optimizer=optim.SGD(self.learning_rate),
            intercept_lr=self.learning_rate,
            l2=self.l2,
            clip_gradient=self.clip_gradient,
        )
        for name in self._names:  # fixed key order keeps dot products bit-identical on reload
            self._reg._weights[name] = 0.0
        self._short = 0.0
        self._long = 0.0
        self._scale_num = 0.0
        self._scale_wt = 0.0
        self._n = 0  # periods learned
        self._next_pos = 0
        self._lags = [0.0] * m  # ring buffer of the last m demands, slot n % m
        self.state_size = len(self._names) + 1 + 6 + m

    @property
    def weights(self) -> dict[str, float]:
        """Regression weights by feature name plus ``"intercept"``, as plain floats."""
        out = {k: float(self._reg._weights[k]) for k in self._names}
        out["intercept"] = float(self._reg.intercept)
        return out

    def _scale(self) -> float:
        return self._scale_num / self._scale_wt if self._scale_wt > 0.0 else 0.0

    def _features(self, pos: int, short: float, long: float, lag: float, inv: float) -> dict:
        feats = dict.fromkeys(self._names[: self.season_length], 0.0)
        feats[f"s{pos}"] = 1.0
        feats["short"] = short * inv
        feats["long"] = long * inv
        feats["lag"] = lag * inv
        return feats

    #: learn through :meth:`_sgd_step` (River's update written out) instead of River's
    #: ``LinearRegression.learn_one``; tests switch it off on an instance to compare both
    _inline_sgd = True

    def _sgd_step(self, pos: int, short: float, long: float, lag: float, target: float) -> None:
        """River's ``LinearRegression.learn_one`` (squared loss, SGD, no L2) on :meth:`_features`.

        The same floating-point operations in the same order, bit for bit (a unit test compares
        both on generated series), without River's per-call feature, gradient and weight
        dictionaries: the prediction is the dot product in the features' key order (the zero
        one-hot terms add nothing, as in :meth:`_recursive`) plus the intercept; the loss gradient
        ``2 (yhat - y)`` is clipped to ``clip_gradient``; the intercept and every weight step by
        ``learning_rate`` times their gradient (a zero feature's weight does not move).
        """
        reg = self._reg
        w = reg._weights
        s_name = self._names[pos]
        dot = 0.0 + w[s_name] + w["short"] * short + w["long"] * long + w["lag"] * lag
        g = 2 * (dot + reg.intercept - target)
        g *= 1.0  # River's sample weight
        clip = self.clip_gradient
        g = float(max(min(g, clip), -clip))
        lr = self.learning_rate
        reg.intercept -= lr * g
        w[s_name] -= lr * (1.0 * g)
        w["short"] -= lr * (short * g)
        w["long"] -= lr * (long * g)
        w["lag"] -= lr * (lag * g)
        reg.optimizer.n_iterations += 1

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Learn one closed period's demand.

        Parameters
        ----------
        y
            Demand of the period, in units (>= 0).
        x
            Optional features; ``season_pos`` (int in ``[0, season_length)``) is used.

        Raises
        ------
        ValueError
            When ``y`` is negative or not finite, or ``season_pos`` is out of range.

        """
        y = check_demand(y)
        pos = self._pos(x)
        m = self.season_length
        scale = self._scale()
        if scale > 0.0:
            lag = self._lags[self._n % m] if self._n >= m else self._long
            inv = 1.0 / scale
            if self._inline_sgd and self.l2 == 0.0:
                self._sgd_step(pos, self._short * inv, self._long * inv, lag * inv, y * inv)
            else:
                self._reg.learn_one(self._features(pos, self._short, self._long, lag, inv), y * inv)
        if self._n == 0:
            self._short = self._long = y
        else:
            self._short += self.short_alpha * (y - self._short)
            self._long += self.long_alpha * (y - self._long)
        self._scale_num += self.scale_alpha * (y - self._scale_num)
        self._scale_wt += self.scale_alpha * (1.0 - self._scale_wt)
        self._lags[self._n % m] = y
        self._n += 1
        self._next_pos = (pos + 1) % m

    def forecast(self, horizon: int, xs: Sequence[dict] | None = None) -> list[float]:
        """Recursive mean forecasts of the next ``horizon`` periods.

        Parameters
        ----------
        horizon
            Number of periods.
        xs
            Optional per-period features (``season_pos``).

        Returns
        -------
        list[float]
            ``horizon`` non-negative means, in units per period.

        Raises
        ------
        ValueError
            When ``horizon`` is negative, ``xs`` has the wrong length or a position is invalid.

        """
        h = check_horizon(horizon, xs)
        scale = self._scale()
        if scale <= 0.0:
            return [0.0] * h
        return self._recursive(scale, self._future_positions(h, xs))

    def forecast_at(self, horizon: int, pos: int, season_length: int) -> list[float]:
        """:meth:`forecast` of calendar-only features from position ``pos`` (no dicts built)."""
        m = self.season_length
        if season_length != m:  # another calendar: positions may be invalid here, check them
            return super().forecast_at(horizon, pos, season_length)
        h = check_horizon(horizon, None)
        scale = self._scale()
        if scale <= 0.0:
            return [0.0] * h
        return self._recursive(scale, [(pos + j) % m for j in range(h)])

    def predict_next(self, x: dict | None = None) -> float:
        """Mean forecast of the next period, in units (``forecast(1, [x])[0]`` without the list)."""
        scale = self._scale()
        if scale <= 0.0:
            return 0.0
        return self._recursive(scale, [self._pos_at(x, 0)])[0]

    def _recursive(self, scale: float, positions: list[int]) -> list[float]:
        """The recursive forecasts at ``positions`` (one per period) for a positive ``scale``."""
        inv = 1.0 / scale
        m = self.season_length
        short, long, n = self._short, self._long, self._n
        # River's predict_one(_features(...)) written out: the dot product in the features' key
        # order (the zero one-hot terms add nothing) plus the intercept, bit for bit (a unit test
        # compares both), without building a feature dict per step
        w = self._reg._weights
        names = self._names  # s0 .. s{m-1} first: names[pos] is the one-hot feature of pos
        w_short, w_long, w_lag, b = w["short"], w["long"], w["lag"], self._reg.intercept
        fed: list[float] = []
        out: list[float] = []
        for k, pos in enumerate(positions):
            if k >= m:
                lag = fed[k - m]
            else:
                lag = self._lags[(n + k) % m] if n + k >= m else long
            dot = 0.0 + w[names[pos]] + w_short * (short * inv) + w_long * (long * inv) + w_lag * (lag * inv)
            yhat = max(0.0, dot + b)
            yhat *= scale
            out.append(yhat)
            fed.append(yhat)
            short += self.short_alpha * (yhat - short)
            long += self.long_alpha * (yhat - long)
        return out

    def state(self) -> np.ndarray:
        """Learned state: weights, intercept, EWMAs, scale, counters and the lag buffer.

        Returns
        -------
        numpy.ndarray
            ``float64`` of shape ``(2 * season_length + 10,)``.

        """
        return np.array(self.state_values(), dtype=np.float64)

    def state_values(self) -> list[float]:
        """:meth:`state` as a list of floats (the layout, written once)."""
        w = self._reg._weights
        return [*(float(w[k]) for k in self._names), float(self._reg.intercept), float(self._short),
                float(self._long), float(self._scale_num), float(self._scale_wt), float(self._n),
                float(self._next_pos), *map(float, self._lags)]

    def load_state(self, state: np.ndarray) -> None:
        """Restore the learned state from :meth:`state`.

        Raises
        ------
        ValueError
            When the vector has the wrong length.

        """
        v = self._check_state(state)
        k = len(self._names)
        for name, value in zip(self._names, v[:k], strict=True):
            self._reg._weights[name] = value
        self._reg.intercept = v[k]
        self._short, self._long, self._scale_num, self._scale_wt = v[k + 1 : k + 5]
        self._n = int(v[k + 5])
        self._next_pos = int(v[k + 6]) % self.season_length
        self._lags = v[k + 7 :]
