"""Demand statistics for inventory decisions: the recent rate and the long-run dispersion.

The forecaster (:mod:`agents.forecasting`) is tuned for accuracy: it cleans bulk orders
(Huber) so that one wholesale order does not move the next day's forecast. Inventory needs the
opposite: the *expected* demand over the lead time and review period, bulk orders included, and
a dispersion that knows how lumpy the SKU has been over a long memory. :class:`InventoryDemand`
keeps both, per SKU, from the closed periods the processor learns:

* **rate** ``mu``: the mean demand per period over the last ``window`` periods; a SKU younger
  than ``min_periods`` periods (its required history) is averaged over ``min_periods``, its
  unseen periods counted as zero, so a SKU first seen with one bulk order is not given the
  bulk as its rate, and a new SKU is decided from its own first periods;
* **dispersion**: the squared coefficient of variation of per-period demand, ``CV^2 = Var/E^2``,
  from exponentially weighted first and second moments with a long memory (``long_span``
  periods; bias-corrected for the first periods, as Adam's moments are); the per-period
  variance used for decisions is ``CV^2 mu^2``, i.e. the SKU's long-run lumpiness at today's
  rate.

Measured on the shipped Online Retail data (300 SKUs, daily, L = 7, R = 1, closed loop; script
``bench/frontier.py``), this pair holds less stock at equal fill rate than the forecaster's
moments scaled by an actual/forecast ratio, which followed bulk orders up and drained for months
(issue #17).

References
----------
[^1]: Silver, E. A., Pyke, D. F. & Thomas, D. J. (2017). *Inventory and Production Management in
    Supply Chains*, 4th ed., Sec. 4.5 (moving averages and exponential smoothing of demand) and
    Sec. 6.7 (estimating the standard deviation of forecast errors over the lead time).
[^2]: Kingma, D. P. & Ba, J. (2015). Adam: A method for stochastic optimization. ICLR,
    Algorithm 1 (bias correction ``1 - beta^t`` of exponentially weighted moments).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InventoryDemand"]


@dataclass(slots=True)
class InventoryDemand:
    """Recent demand window and long-run moments of one SKU (units per period).

    Attributes
    ----------
    recent : list of float
        Demand of the last closed periods, oldest first (at most the capacity given to
        :meth:`update`).
    n : int
        Periods learned.
    m1, m2 : float
        Exponentially weighted sums of demand and squared demand (not bias-corrected).
    t1, t2 : float or None
        The same sums over the period's *total* demand, where the learned demand leaves out
        the units of repeat buyers (:mod:`agents.repeat_buyers`); None while every period
        learned its total (then they equal ``m1``, ``m2``).
    extra : list of float or None
        Per period of :attr:`recent`, the units the total had beyond the learned demand (the
        repeat buyers' lines); None while there were none.

    Examples
    --------
    >>> d = InventoryDemand()
    >>> for y in [0, 10, 0, 10, 0, 10]:
    ...     d.update(y, capacity=4, long_span=365)
    >>> d.recent, d.rate(4), d.rate(2)
    ([0.0, 10.0, 0.0, 10.0], 5.0, 5.0)
    >>> round(d.cv2(long_span=365), 3)  # mean 5, variance 25 (recent periods weigh a little more)
    0.995

    A SKU first seen with one bulk order of 120 units, required to show 12 periods of history,
    is given 10 units per period, not 120:

    >>> new = InventoryDemand()
    >>> new.update(120, capacity=12, long_span=52)
    >>> new.rate(12, min_periods=12), new.rate(12)
    (10.0, 120.0)
    """

    recent: list[float] = field(default_factory=list)
    n: int = 0
    m1: float = 0.0
    m2: float = 0.0
    t1: float | None = None
    t2: float | None = None
    extra: list[float] | None = None

    def update(self, units: float, *, capacity: int, long_span: float,
               total: float | None = None) -> None:
        """Learn one closed period's demand (units >= 0).

        Parameters
        ----------
        units : float
            Demand of the period the window learns (units of stock).
        capacity : int
            Periods kept in :attr:`recent` (the longest rate window used).
        long_span : float
            Span ``N`` of the long-run moments in periods (weight ``2 / (N + 1)``).
        total : float, optional
            The period's total demand when ``units`` leaves some out (repeat buyers' lines):
            it feeds the total moments of :meth:`cv2` with ``total=True``. None: ``units``.
        """
        y = float(units)
        self.recent.append(y)
        if len(self.recent) > capacity:
            del self.recent[: len(self.recent) - capacity]
        a = 2.0 / (long_span + 1.0)
        if self.t1 is not None or (total is not None and float(total) != y):
            yt = y if total is None else float(total)
            t1 = self.m1 if self.t1 is None else self.t1
            t2 = self.m2 if self.t2 is None else self.t2
            self.t1 = (1.0 - a) * t1 + a * yt
            self.t2 = (1.0 - a) * t2 + a * yt * yt
            if self.extra is None:
                self.extra = [0.0] * (len(self.recent) - 1)
            self.extra.append(yt - y)
            if len(self.extra) > capacity:
                del self.extra[: len(self.extra) - capacity]
        self.m1 = (1.0 - a) * self.m1 + a * y
        self.m2 = (1.0 - a) * self.m2 + a * y * y
        self.n += 1

    def rate(self, window: int, min_periods: int = 1, *, total: bool = False) -> float:
        """Mean demand per period over the last ``window`` periods (units per period).

        Parameters
        ----------
        window : int
            Periods averaged (at most the capacity kept).
        min_periods : int
            A SKU with fewer learned periods is averaged over ``min(window, min_periods)``
            periods, its unseen periods counted as zero demand.
        total : bool
            Average the periods' total demand (:attr:`extra` included).
        """
        if window <= 0 or not self.recent:
            return 0.0
        tail = self.recent[-window:]
        s = sum(tail)
        if total and self.extra:
            s += sum(self.extra[-window:])
        return s / max(len(tail), min(window, max(1, min_periods)))

    def cv2(self, *, long_span: float, total: bool = False) -> float:
        """Squared coefficient of variation of per-period demand over the long memory.

        ``total=True`` reads the moments of the periods' total demand (repeat buyers' lines
        included; the same as the learned demand's while no line was left out).

        ``(E[y^2] - E[y]^2) / E[y]^2`` from the bias-corrected weighted moments; 0 before any
        demand. When ``E[y]`` is so small (subnormal, e.g. 1e-313 units) that its square
        underflows to 0, the same ratio is taken as ``(E[y^2] / E[y] - E[y]) / E[y]``; a ratio
        that overflows is the largest finite float, so the variance ``CV^2 mu^2`` stays finite.

        Returns
        -------
        float
            Finite and non-negative (dimensionless).

        Examples
        --------
        >>> d = InventoryDemand()
        >>> d.update(1e-313, capacity=4, long_span=365)
        >>> d.cv2(long_span=365)
        0.0
        """
        if self.n == 0:
            return 0.0
        a = 2.0 / (long_span + 1.0)
        corr = 1.0 - (1.0 - a) ** self.n
        if total and self.t1 is not None and self.t2 is not None:
            e1, e2 = self.t1 / corr, self.t2 / corr
        else:
            e1, e2 = self.m1 / corr, self.m2 / corr
        if e1 <= 0.0:
            return 0.0
        den = e1 * e1
        if den > 0.0:
            return min(max(e2 - den, 0.0) / den, sys.float_info.max)
        return min(max(e2 / e1 - e1, 0.0) / e1, sys.float_info.max)  # e1 * e1 underflowed

    def to_list(self) -> list[Any]:
        """Compact form for the state encoding (integral demands kept as ints).

        The total moments and :attr:`extra` only once a period learned less than its total.
        """
        out = [[int(y) if float(y).is_integer() else y for y in self.recent], self.n, self.m1, self.m2]
        if self.t1 is not None:  # extra is mostly zeros: flat (index, units) pairs of the others
            pairs: list[Any] = []
            for i, y in enumerate(self.extra or []):
                if y:
                    pairs += [i, int(y) if float(y).is_integer() else y]
            out += [self.t1, self.t2, pairs]
        return out

    @classmethod
    def from_list(cls, d: list[Any]) -> InventoryDemand:
        """Inverse of :meth:`to_list`."""
        t1, t2 = (float(d[4]), float(d[5])) if len(d) > 5 else (None, None)
        extra = None
        if len(d) > 6:
            extra = [0.0] * len(d[0])
            for i in range(0, len(d[6]), 2):
                extra[int(d[6][i])] = float(d[6][i + 1])
        return cls(recent=[float(y) for y in d[0]], n=int(d[1]), m1=float(d[2]), m2=float(d[3]),
                   t1=t1, t2=t2, extra=extra)
