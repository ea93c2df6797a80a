"""Censored demand: how long a SKU was out of stock in each period, and what it would have sold.

When a storefront stops showing an item that is out of stock, customers cannot order it: the
order stream goes quiet exactly when demand is unmet, and a period's sales are only a **lower
bound** on its demand (the demand is *censored* at the stock available; Nahmias 1994 [^1]).
Learning such a period's sales as its demand lowers the forecast after every stockout, which
causes the next one.

restock knows when a SKU had no stock from its own inventory position (every sale, receipt,
snapshot and adjustment moves it). :class:`StockoutClock` keeps, per SKU, the seconds of each
open demand period during which ``on_hand`` was below one unit; when a period closes, its
**stock-out fraction** ``f`` in ``[0, 1]`` is that time over the period's length.

:func:`censored_demand` is the demand a censored period is learned as: its sales plus the
learner's own expectation of the period's demand (made before the period is learned) for the
out-of-stock share of the period:

``y = sales + f E[D]``

the expected demand of the unobserved part under a constant demand intensity within the period.
It is a single imputation step of the expectation-maximisation estimate for censored
observations (Dempster, Laird & Rubin 1977 [^2]; for lost-sales inventory data, Nahmias 1994
[^1] treats a stocked-out period's sales as censored at the stock level and estimates the demand
distribution from the uncensored part). A fully censored period (``f = 1``, no sale) is learned
as the learner's expectation, i.e. it carries no information and leaves the level where it was:
the same as skipping the period, which is what the Kaplan-Meier product-limit estimator does
with a censored observation's unobserved tail (Kaplan & Meier 1958 [^3]; Huh, Levi,
Rusmevichientong & Orlin 2011 [^4] use it to learn newsvendor quantiles from censored sales).
Treating sales as demand biases every such learner down; a Kaplan-Meier style correction
removes most of the loss (Kumar & Mouchtaki 2026, as cited in issue #20). The imputation uses
the unconditional expectation ``E[D]``, not ``E[D | D > sales]``: it is conservative when a
period stocked out *because* its demand was high.

Times are integer epoch seconds (UTC, event time); units are units of stock.

References
----------
[^1]: Nahmias, S. (1994). Demand estimation in lost sales inventory systems. *Naval Research
    Logistics*, 41(6), 739-757.
[^2]: Dempster, A. P., Laird, N. M., & Rubin, D. B. (1977). Maximum likelihood from incomplete
    data via the EM algorithm. *Journal of the Royal Statistical Society B*, 39(1), 1-38.
[^3]: Kaplan, E. L., & Meier, P. (1958). Nonparametric estimation from incomplete observations.
    *Journal of the American Statistical Association*, 53(282), 457-481.
[^4]: Huh, W. T., Levi, R., Rusmevichientong, P., & Orlin, J. B. (2011). Adaptive data-driven
    inventory control with censored demand based on Kaplan-Meier estimator. *Operations
    Research*, 59(4), 929-941.

Examples
--------
Daily periods; the SKU runs out at 18:00 on day 0 and is restocked at 06:00 on day 1:

>>> DAY = 86400
>>> clock = StockoutClock()
>>> clock.observe(False, 8 * 3600, freq="D", floor=0)
>>> clock.observe(True, 18 * 3600, freq="D", floor=0)
>>> clock.observe(False, DAY + 6 * 3600, freq="D", floor=0)
>>> clock.close(0, freq="D"), clock.close(DAY, freq="D")
(0.25, 0.25)
>>> censored_demand(9.0, 0.25, 12.0)
12.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.demand import Freq, period_seconds, period_start

__all__ = ["StockoutClock", "censored_demand"]


def censored_demand(sales: float, fraction: float, expected: float) -> float:
    """Demand a period is learned as when it was out of stock for a share ``fraction`` of it.

    ``sales + fraction * expected`` (module docstring: one EM imputation step under a constant
    demand intensity; Nahmias 1994, Kaplan & Meier 1958).

    Parameters
    ----------
    sales : float
        Units sold (observed demand) in the period; >= 0.
    fraction : float
        Stock-out fraction of the period (:meth:`StockoutClock.close`), clipped to ``[0, 1]``.
    expected : float
        The learner's expected demand of the whole period (units), from before the period was
        learned; negative values count as 0.

    Returns
    -------
    float
        Units, at least ``sales``; exactly ``sales`` when ``fraction`` is 0.

    Examples
    --------
    >>> censored_demand(3.0, 0.0, 10.0), censored_demand(0.0, 1.0, 10.0), censored_demand(4.0, 0.5, 10.0)
    (3.0, 10.0, 9.0)
    """
    f = min(1.0, max(0.0, float(fraction)))
    if f == 0.0:
        return float(sales)
    return float(sales) + f * max(0.0, float(expected))


@dataclass(slots=True)
class StockoutClock:
    """Seconds out of stock per open demand period of one SKU (event time).

    Attributes
    ----------
    since : int
        Event time (epoch s) from which ``on_hand`` has been below one unit and not yet counted
        into :attr:`seconds` or a closed period; -1 while in stock.
    seconds : dict[int, int]
        Period start (epoch s) -> seconds out of stock already counted in that period, for
        periods not closed yet.

    The clock is a function of the sequence of position changes applied (a replay gives the
    same clock): an interval starts at ``max(t, floor)`` and ends at ``max(t, since)``, so an
    event applied out of event-time order never makes a negative interval, and a closed period
    never changes.
    """

    since: int = -1
    seconds: dict[int, int] = field(default_factory=dict)

    @property
    def idle(self) -> bool:
        """In stock with nothing counted: encodes as nothing."""
        return self.since < 0 and not self.seconds

    def observe(self, out: bool, t: int, *, freq: Freq, floor: int) -> None:
        """Record the stock state after a position change at event time ``t`` (epoch s).

        Parameters
        ----------
        out : bool
            Whether ``on_hand`` is now below one unit.
        t : int
            Event time of the change (epoch s).
        freq : {"H", "D", "W"}
            Demand period.
        floor : int
            Start of the earliest period still open (epoch s): time before it is never counted.
        """
        if out:
            if self.since < 0:
                self.since = max(int(t), int(floor))
            return
        if self.since >= 0:
            self._count(self.since, max(int(t), self.since), freq, int(floor))
            self.since = -1

    def _count(self, a: int, b: int, freq: Freq, floor: int) -> None:
        """Add the seconds of ``[a, b)`` at or after ``floor`` to the periods they fall in."""
        a = max(a, floor)
        step = period_seconds(freq)
        p = period_start(freq, a)
        while p < b:
            s = min(b, p + step) - max(a, p)
            if s > 0:
                self.seconds[p] = self.seconds.get(p, 0) + s
            p += step

    def close(self, start: int, *, freq: Freq) -> float:
        """Stock-out fraction of the period ``[start, start + length)`` as it closes, in ``[0, 1]``.

        Counts the running stock-out up to the period's end (and moves :attr:`since` there) and
        forgets the period (and any older one).

        Parameters
        ----------
        start : int
            Start of the closing period (epoch s).
        freq : {"H", "D", "W"}
            Demand period.

        Returns
        -------
        float
            Seconds out of stock over the period's seconds (dimensionless).
        """
        step = period_seconds(freq)
        end = int(start) + step
        secs = self.seconds.pop(int(start), 0)
        if 0 <= self.since < end:
            secs += end - max(self.since, int(start))
            self.since = end
        if self.seconds:
            for k in [k for k in self.seconds if k < end]:
                del self.seconds[k]
        return min(1.0, max(0.0, secs / step))

    def to_list(self) -> list[Any]:
        """Compact encoding ``[since, {period start: seconds}]`` (sorted keys)."""
        return [self.since, dict(sorted(self.seconds.items()))]

    @classmethod
    def from_list(cls, data: list[Any]) -> StockoutClock:
        """Inverse of :meth:`to_list`."""
        return cls(int(data[0]), {int(k): int(v) for k, v in dict(data[1]).items()})

