"""A fill-rate target held by one partition-wide lost-unit cost, adapted by stochastic approximation.

Why a controller
----------------
A fill-rate target ``beta`` (units served from stock / units demanded) is a constraint on the
whole assortment. Its Lagrangian relaxation prices every lost unit at one multiplier ``p``
(currency per lost unit), and each SKU then solves its own newsvendor: the critical fractile
``p / (p + h v R)`` of its unit value ``v`` (:meth:`agents.processor.derived.LevelsDeriver.service_params`;
Silver, Pyke & Thomas 2017, Ch. 7, the shortage cost per unit as the dual of a fill-rate
constraint). The multiplier that meets ``beta`` depends on the lead-time demand the levels read,
and that distribution is not calibrated on lumpy demand (restock's closed loop reports quantile
coverage 0.86 for a 0.95 level on Online Retail), so a formula per SKU misses the target
(fill 0.90 for 0.95). The multiplier is therefore *learned* from the fill rate achieved, on the
pooled units of a whole input partition, where stockouts are frequent enough to be measured.

Update (one step per period of the partition)
---------------------------------------------
With ``L_k`` and ``D_k`` the units lost (or backordered) and demanded in the partition during
period ``k``, and ``E_k`` an exponentially weighted mean of ``D``:

``log p_{k+1} = log p_k + eta (L_k - (1 - beta) D_k) / E_k``, with ``eta`` = :data:`STEP` x the
period's length in days

a Robbins-Monro iteration on the root of ``E[L - (1 - beta) D] = 0`` (Robbins & Monro 1951), in
the logarithm of the cost so that the step is relative (the cost spans five decades between
fill 0.80 and 0.99), normalised by the demand level so that ``eta`` is dimensionless. The same
scheme, a stochastic-approximation update of a base-stock parameter from observed sales and
stockouts, is analysed by Huh & Rusmevichientong (2009) for lost-sales inventory. ``log p`` is
clipped to ``[-LOG_RANGE, LOG_RANGE]`` around the base cost. A single step is not clipped: a
clip makes the rare large steps (a promotion week sold out) smaller than the many small ones
against them, and the iteration then settles away from the target (measured: Dominick's cheese,
target 0.90, weekly: fill 0.886 with steps clipped to +-0.5, 0.907 without).

Replay determinism
------------------
The state lives in the partition's pool pseudo-state (:func:`agents.state.pool_key`), beside the
covariate pool: SKUs add exact integers (units) to ``lost`` and ``demand`` when an order is
applied, and the step is taken when the partition enters a new period
(:meth:`agents.forecasting.covariates.CovariatePool.publish`), so the multiplier is a function of
the partition's event sequence only, like every SKU state.

References
----------
Robbins, H., & Monro, S. (1951). A stochastic approximation method. *The Annals of Mathematical
Statistics*, 22(3), 400-407.

Huh, W. T., & Rusmevichientong, P. (2009). A nonparametric asymptotic analysis of inventory
planning with censored demand. *Mathematics of Operations Research*, 34(1), 103-123.

Silver, E. A., Pyke, D. F., & Thomas, D. J. (2017). *Inventory and Production Management in
Supply Chains* (4th ed.). CRC Press, Ch. 7.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEMAND_SMOOTHING", "LOG_RANGE", "STEP", "ServiceController"]

#: Robbins-Monro gain ``eta`` per day of period length (dimensionless): 0.5 for a daily period,
#: 3.5 for a weekly one, so the cost moves as fast in calendar time whatever the period.
STEP: float = 0.5
#: Smoothing of the partition's demand per period in the normaliser ``E_k``.
DEMAND_SMOOTHING: float = 0.1
#: Bound of ``|log p - log p_0|`` (natural log): the cost stays within e^+-9 (~8,100x) of the base.
LOG_RANGE: float = 9.0


@dataclass(slots=True)
class ServiceController:
    """Partition-wide lost-unit cost that steers the achieved fill rate to its target.

    Attributes
    ----------
    log_cost : float
        ``log(p / p_0)``: the learned multiplier of the base lost-unit cost ``p_0`` (natural log).
    lost, demand : int or float
        Cumulative units lost (or backordered) and demanded on the partition: integers counted
        from orders, floats once imputed units of censored periods were added
        (``stockout_demand="hidden"``, :mod:`agents.censoring`).
    lost_seen, demand_seen : int
        ``lost`` and ``demand`` at the last step.
    ew_demand : float
        Exponentially weighted units demanded per period (0 before the first step with demand).
    steps : int
        Steps taken (periods with a publication).

    Examples
    --------
    Target fill 0.95; a period loses 10 of 100 units, so the cost goes up by e^(0.5 x 0.05):

    >>> c = ServiceController()
    >>> c.add(10, 100)
    >>> c.step(0.95)
    True
    >>> round(c.multiplier, 4)
    1.0253
    >>> c.add(0, 100); c.step(0.95); round(c.multiplier, 4)   # a period without loss: down
    True
    1.0
    """

    log_cost: float = 0.0
    lost: int | float = 0
    demand: int | float = 0
    lost_seen: int | float = 0
    demand_seen: int | float = 0
    ew_demand: float = 0.0
    steps: int = 0

    @property
    def multiplier(self) -> float:
        """``p / p_0 = exp(log_cost)`` (dimensionless)."""
        return math.exp(self.log_cost)

    def add(self, short: int | float, quantity: int | float) -> None:
        """Count ``short`` units lost or backordered of ``quantity`` demanded (units).

        One order (integers), or the imputed unseen demand of a censored period (floats, all
        lost; :mod:`agents.censoring`). Integers stay integers, so a controller fed by orders
        alone encodes as before.
        """
        self.lost += short if isinstance(short, float) else int(short)
        self.demand += quantity if isinstance(quantity, float) else int(quantity)

    def step(self, fill_rate: float, gain: float = STEP) -> bool:
        """Take the period's Robbins-Monro step toward ``fill_rate``; True if the cost changed.

        Parameters
        ----------
        fill_rate : float
            Target fill rate in (0, 1).
        gain : float
            ``eta`` of this step (:data:`STEP` times the period's length in days).

        Returns
        -------
        bool
            Whether ``log_cost`` moved (False in a period without demand and before any).
        """
        d_lost = self.lost - self.lost_seen
        d_demand = self.demand - self.demand_seen
        self.lost_seen, self.demand_seen = self.lost, self.demand
        self.steps += 1
        if d_demand > 0:
            self.ew_demand = (float(d_demand) if self.ew_demand <= 0.0
                              else self.ew_demand + DEMAND_SMOOTHING * (d_demand - self.ew_demand))
        if self.ew_demand <= 0.0:
            return False
        g = (d_lost - (1.0 - fill_rate) * d_demand) / self.ew_demand
        new = min(LOG_RANGE, max(-LOG_RANGE, self.log_cost + gain * g))
        changed = new != self.log_cost
        self.log_cost = new
        return changed

    def to_list(self) -> list[Any]:
        """Compact msgpack-friendly encoding (integers exact, floats as IEEE doubles)."""
        return [self.log_cost, self.lost, self.demand, self.lost_seen, self.demand_seen,
                self.ew_demand, self.steps]

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> ServiceController:
        """Inverse of :meth:`to_list`.

        Raises
        ------
        ValueError
            On a wrong length.
        """
        if len(data) != 7:
            raise ValueError(f"service controller: expected 7 fields, got {len(data)}.")
        log_cost, lost, demand, lost_seen, demand_seen, ew, steps = data
        return cls(float(log_cost), _units(lost), _units(demand), _units(lost_seen), _units(demand_seen),
                   float(ew), int(steps))


def _units(v: Any) -> int | float:
    """A stored unit count as it was written: an int stays an int, a float a float."""
    return v if isinstance(v, float) else int(v)
