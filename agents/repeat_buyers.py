"""Repeat bulk buyers of one SKU: who they are, how often they come back, how much they take.

Online Retail's demand is lumpy because a few wholesale customers buy a SKU in bulk, again and
again: in the shipped data (300 SKUs, daily) lines above ten times the SKU's median line carry
about a third of the units, and two thirds of those come from a customer who had already bought
that SKU in bulk (docs/decisions.md). A window mean smears such a customer over the days after
each purchase; a long-run dispersion prices every SKU's lumpiness as if it were noise. This
module models them as what they are: a known customer with a purchase rate and an order size.

* **Who.** A line from a customer whose quantity exceeds ``bulk_days`` days of the SKU's
  total demand rate (the window's, :class:`~agents.inventory_demand.InventoryDemand`, buyers
  included) makes that customer a *repeat buyer* of the SKU; from then on every line of theirs (this one
  included) is attributed to them and not to the regular window. At most ``capacity`` buyers
  are kept per SKU: when more are known, the one with the fewest expected units per period
  goes (ties: the smaller key).
* **How often.** Each buyer's purchases follow a Poisson process whose rate has a gamma prior
  worth ``prior_orders`` purchases over ``prior_periods`` periods; after ``c`` purchases in
  ``tau`` periods since the first, the posterior mean rate is
  ``lambda = (c + prior_orders) / (tau + prior_periods)`` purchases per period (gamma-Poisson
  conjugacy; Gelman et al. 2013, *Bayesian Data Analysis* 3rd ed., sec. 2.6). It is the
  purchase-count model of the customer-base literature (Ehrenberg 1959, the NBD; Schmittlein,
  Morrison & Colombo 1987) for one customer, without the dropout part: a buyer who stops
  coming back sees ``lambda`` fall as ``1 / tau``.
* **How much.** The buyer's mean line, ``units / c``.
* **What the levels read.** The buyers' demand over the next periods is a compound Poisson
  sum, so per period it adds ``sum lambda_b size_b`` units to the mean and
  ``sum lambda_b size_b^2`` to the variance (a compound Poisson sum has variance
  ``lambda E[X^2]``; Ross, *Introduction to Probability Models*, 11th ed., sec. 5.4.2; here
  with each buyer's size taken as its mean line). The regular window keeps the rest.

Attribution is per period: lines are recorded against their (open) period and merged into
the known buyers when the period closes (:meth:`RepeatBuyers.close`), so the levels of an open
period read the buyers as of its start, as they read the window. Everything is a function of
the applied events (replay-exact); sums run over buyers in key order.

Measured on the shipped Online Retail data with ``bench/policy_proxy.py`` and
``restock simulate --targets default`` (issue #17; docs/decisions.md, "Repeat buyers").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RepeatBuyers", "customer_key"]


def _compact(units: float) -> float | int:
    """``units`` as an int when integral (fewer msgpack bytes; decoded back to the same float)."""
    return int(units) if float(units).is_integer() else units


def customer_key(customer_id: str) -> int:
    """A customer's key in a SKU's state: the first 32 bits of its BLAKE2b digest (non-negative int).

    32 bits keep a buyer in 5 bytes of msgpack; two of a SKU's (at most a few hundred) customers
    share a key with odds below 1e-5, and then count as one buyer.

    Examples
    --------
    >>> customer_key("17850") == customer_key("17850"), customer_key("17850") >= 0
    (True, True)
    """
    return int.from_bytes(hashlib.blake2b(customer_id.encode(), digest_size=4).digest(), "big")


@dataclass(slots=True)
class RepeatBuyers:
    """The known repeat buyers of one SKU and the open periods' lines attributed to them.

    Attributes
    ----------
    known : dict of int to list
        ``customer_key -> [first_period_start (epoch s), purchases, units]`` of the buyers
        merged at period closes.
    open : dict of int to dict
        ``open period start (epoch s) -> customer_key -> [purchases, units]``: lines of periods
        not yet closed.

    Examples
    --------
    A customer who takes 100 units once, then comes back after 10 days of a daily SKU:

    >>> b = RepeatBuyers()
    >>> b.record(0, 7, 100.0)
    >>> b.close(0, step=86400, capacity=8, prior_orders=1.0, prior_periods=90.0)
    100.0
    >>> mean, var = b.moments(10 * 86400, step=86400, prior_orders=1.0, prior_periods=90.0)
    >>> round(mean, 4), round(var, 2)    # lambda = 2 / 100 purchases per day, size 100
    (2.0, 200.0)
    """

    known: dict[int, list[float]] = field(default_factory=dict)
    open: dict[int, dict[int, list[float]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.known or self.open)

    def is_buyer(self, key: int) -> bool:
        """Whether ``key`` is a known buyer or has an attributed line in an open period."""
        return key in self.known or any(key in lines for lines in self.open.values())

    def record(self, start: int, key: int, units: float) -> None:
        """Attribute one line of ``units`` (stock units) of the period starting at ``start`` to ``key``."""
        entry = self.open.setdefault(int(start), {}).setdefault(int(key), [0, 0.0])
        entry[0] += 1
        entry[1] += float(units)

    def close(self, start: int, *, step: int, capacity: int, prior_orders: float,
              prior_periods: float) -> float:
        """Merge the lines of the closing period ``start``; returns the units attributed to buyers.

        Parameters
        ----------
        start : int
            Start of the closing period (epoch s).
        step : int
            Period length (s).
        capacity : int
            Buyers kept (the fewest expected units per period, at the next period, go first).
        prior_orders, prior_periods : float
            The purchase-rate prior (see the module docstring).

        Returns
        -------
        float
            Units of the period's lines from repeat buyers (stock units, >= 0).
        """
        lines = self.open.pop(int(start), None)
        if not lines:
            return 0.0
        total = 0.0
        for key in sorted(lines):
            c, u = lines[key]
            total += u
            entry = self.known.get(key)
            if entry is None:
                self.known[key] = [int(start), int(c), float(u)]
            else:
                entry[1] += int(c)
                entry[2] += float(u)
        if len(self.known) > capacity:
            at = int(start) + step

            def score(k: int) -> tuple[float, int]:
                first, c, u = self.known[k]
                lam = (c + prior_orders) / ((at - first) / step + prior_periods)
                return lam * u / c, k

            for k in sorted(self.known, key=score)[: len(self.known) - capacity]:
                del self.known[k]
        return total

    def moments(self, open_start: int, *, step: int, prior_orders: float,
                prior_periods: float) -> tuple[float, float]:
        """Mean and variance of the buyers' demand per period from ``open_start`` (units, units²).

        ``sum lambda_b size_b`` and ``sum lambda_b size_b**2`` over the known buyers (module
        docstring), ``lambda_b`` at the buyer's tenure ``(open_start - first) / step`` periods.
        """
        mean = var = 0.0
        for key in sorted(self.known):
            first, c, u = self.known[key]
            lam = (c + prior_orders) / ((open_start - first) / step + prior_periods)
            size = u / c
            mean += lam * size
            var += lam * size * size
        return mean, var

    def to_list(self) -> list[Any]:
        """Compact form for the state encoding (keys sorted: equal states encode to equal bytes)."""
        known = [[k, e[0], e[1], _compact(e[2])] for k, e in sorted(self.known.items())]
        open_ = [[s, [[k, e[0], _compact(e[1])] for k, e in sorted(lines.items())]]
                 for s, lines in sorted(self.open.items())]
        return [known, open_]

    @classmethod
    def from_list(cls, d: list[Any]) -> RepeatBuyers:
        """Inverse of :meth:`to_list`."""
        known = {int(e[0]): [int(e[1]), int(e[2]), float(e[3])] for e in d[0]}
        open_ = {int(s): {int(e[0]): [int(e[1]), float(e[2])] for e in lines} for s, lines in d[1]}
        return cls(known=known, open=open_)
