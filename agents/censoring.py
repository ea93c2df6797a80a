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

Some data stamp every order with the start of its period (a weekly total on Monday 00:00, a
daily file without times): the whole period's demand arrives at one instant, and a stock-out
that begins after it hides nothing. The clock therefore also learns the share ``s0`` of the
SKU's orders stamped exactly at their period's start (exponentially weighted over orders), and
the fraction it reports is ``(1 - s0) f_time + s0 [out of stock as the period began]``: the
share of the period's *demand* that found no stock, orders at the start instant seeing the stock
left by the previous period, the others spread evenly over the period.

:func:`censored_demand` is the demand a censored period is learned as: its sales plus the
learner's own expectation of the period's demand (made before the period is learned) for the
out-of-stock share of the period:

``y = sales + f E[D]``

the expected demand of the unobserved part under a constant demand intensity within the period
(restock's window uses its short-window mean as ``E[D]``, the forecaster its one-step forecast;
:class:`agents.processor.config.ProcessorConfig`, ``stockout_demand``).
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

__all__ = ["START_SHARE_WEIGHT", "StockoutClock", "censored_demand"]

#: Weight of one order in :attr:`StockoutClock.start_share` (an EWMA over about 40 orders).
START_SHARE_WEIGHT: float = 0.05
_MAX_ORDERS = 10_000


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
    out_at_start : list of int
        Starts (epoch s) of open periods that began while out of stock (a stock-out running
        across their start), sorted.
    start_share : float
        Exponentially weighted share of the SKU's orders stamped exactly at their period's
        start (:meth:`record_order`), not bias-corrected (:attr:`start_share_estimate` is).
    start_orders : int
        Orders counted into it (capped at 10,000).

    The clock is a function of the sequence of position changes applied (a replay gives the
    same clock): an interval starts at ``max(t, floor)`` and ends at ``max(t, since)``, so an
    event applied out of event-time order never makes a negative interval, and a closed period
    never changes.
    """

    since: int = -1
    seconds: dict[int, int] = field(default_factory=dict)
    out_at_start: list[int] = field(default_factory=list)
    start_share: float = 0.0
    start_orders: int = 0

    @property
    def idle(self) -> bool:
        """In stock with nothing counted and no order at a period start seen: encodes as nothing."""
        return self.since < 0 and not self.seconds and not self.out_at_start and self.start_orders == 0

    def record_order(self, t: int, *, freq: Freq) -> None:
        """Learn whether an order at event time ``t`` (epoch s) is stamped at its period's start.

        Updates :attr:`start_share` with weight :data:`START_SHARE_WEIGHT`, from the first order
        stamped at a period start on (a SKU whose orders are all inside their periods keeps an
        idle clock).
        """
        at_start = 1.0 if int(t) == period_start(freq, t) else 0.0
        if at_start or self.start_orders:
            self.start_share += START_SHARE_WEIGHT * (at_start - self.start_share)
            self.start_orders = min(self.start_orders + 1, _MAX_ORDERS)

    @property
    def start_share_estimate(self) -> float:
        """``s0``: :attr:`start_share` bias-corrected for the orders seen, in ``[0, 1]``.

        ``start_share / (1 - (1 - w)^n)`` over the ``n`` orders since the first one stamped at a
        period start (the correction of exponentially weighted moments started at zero; Kingma &
        Ba 2015, Alg. 1), so a SKU whose every order is stamped at its period's start has
        ``s0 = 1`` from its first order.
        """
        if self.start_orders == 0:
            return 0.0
        s0 = self.start_share / (1.0 - (1.0 - START_SHARE_WEIGHT) ** self.start_orders)
        return 1.0 if s0 > 1.0 - 1e-9 else max(0.0, s0)

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
            end = max(int(t), self.since)
            if end == self.since and end in self.out_at_start:  # back in stock at the instant the
                self.out_at_start.remove(end)  # period began (a receipt): it did not begin out
            self._count(self.since, end, freq, int(floor))
            self.since = -1

    def _count(self, a: int, b: int, freq: Freq, floor: int) -> None:
        """Add the seconds of ``[a, b)`` at or after ``floor`` to the periods they fall in.

        Periods before ``floor`` can no longer close (a SKU without orders has no open period):
        they are forgotten, so the clock stays bounded.
        """
        if self.seconds and min(self.seconds) < floor:
            self.seconds = {k: v for k, v in self.seconds.items() if k >= floor}
        if self.out_at_start and self.out_at_start[0] < floor:
            self.out_at_start = [k for k in self.out_at_start if k >= floor]
        a = max(a, floor)
        step = period_seconds(freq)
        p = period_start(freq, a)
        while p < b:
            s = min(b, p + step) - max(a, p)
            if s > 0:
                self.seconds[p] = self.seconds.get(p, 0) + s
            if a < p and p not in self.out_at_start:
                self.out_at_start.append(p)
            p += step
        self.out_at_start.sort()

    def close(self, start: int, *, freq: Freq) -> float:
        """Stock-out fraction of the period ``[start, start + length)`` as it closes, in ``[0, 1]``.

        Counts the running stock-out up to the period's end (and moves :attr:`since` there) and
        forgets the period (and any older one). The fraction is of the period's demand:
        ``(1 - s0) f_time + s0 [out at its start]`` (module docstring), ``f_time`` the seconds
        out of stock over the period's seconds and ``s0`` the :attr:`start_share`.

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
        start = int(start)
        end = start + step
        secs = self.seconds.pop(start, 0)
        out_first = start in self.out_at_start or 0 <= self.since < start
        if 0 <= self.since < end:
            secs += end - max(self.since, start)
            self.since = end
            if end not in self.out_at_start:  # still out: the next period begins out of stock
                self.out_at_start.append(end)
                self.out_at_start.sort()
        if self.seconds:
            for k in [k for k in self.seconds if k < end]:
                del self.seconds[k]
        if self.out_at_start:
            self.out_at_start = [k for k in self.out_at_start if k >= end]
        f_time = min(1.0, max(0.0, secs / step))
        s0 = self.start_share_estimate
        if s0 == 0.0:
            return f_time
        return min(1.0, max(0.0, (1.0 - s0) * f_time + s0 * (1.0 if out_first else 0.0)))

    def to_list(self) -> list[Any]:
        """Compact encoding ``[since, {period start: seconds}, out_at_start, start_share, start_orders]``."""
        return [self.since, dict(sorted(self.seconds.items())), list(self.out_at_start), self.start_share,
                self.start_orders]

    @classmethod
    def from_list(cls, data: list[Any]) -> StockoutClock:
        """Inverse of :meth:`to_list`."""
        return cls(int(data[0]), {int(k): int(v) for k, v in dict(data[1]).items()},
                   [int(k) for k in data[2]], float(data[3]), int(data[4]))

