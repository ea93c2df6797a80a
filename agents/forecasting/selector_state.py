"""Serialization hooks of the selector: its learned statistics as one float vector.

:mod:`agents.forecasting.serialization` writes this vector, then each candidate's state, then
the covariate statistics; the layout is fixed by the attribute order below.
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.forecasting.base import OnlineForecaster

__all__ = ["SelectorStateHooks"]


class SelectorStateHooks:
    """The selector-state hooks of :class:`~agents.forecasting.selection.DemandForecaster`.

    Layout: ``[n, served, err_wt, levels (lq), mae (k), sq (k), fc (k), size, scale, n_sizes,
    kap_num, kap_den, total_levels (lq), win_y (W), win_m (W), win_v (W), win_k (W),
    win_l (lq W)]`` with ``k`` candidates, ``lq`` quantile levels and ``W = total_window``.
    """

    _models: list[OnlineForecaster]
    quantile_levels: tuple[float, ...]
    total_window: int
    _n: int
    _served: int
    _err_wt: float
    _levels: list[float]
    _mae: list[float]
    _sq: list[float]
    _fc: list[float]
    _size: float
    _scale: float
    _n_sizes: int
    _kap_num: float
    _kap_den: float
    _total_levels: list[float]
    _win_y: list[float]
    _win_m: list[float]
    _win_v: list[float]
    _win_k: list[float]
    _win_l: list[float]

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
