r"""Lead times learned from receipts: one SKU's estimator, the partition's pool, the posterior.

A purchase order's **lead time** is the time from the start of the demand period in which it
was placed (``PurchaseOrderPlaced.occurred_at``) to its receipt (``StockReceived`` with its
``purchase_order_id``), in **periods** (continuous). It is counted from the period's start
because the protection window the levels read (:func:`agents.policy.lead_time_demand`) starts
at the SKU's open period: an order placed in period ``p`` and received at the start of period
``p + 7`` has a lead time of 7 periods, the configured ``lead_time_periods`` convention of the
closed loop and the baseline rules. Its **lateness** is the receipt time minus
``expected_arrival``, in periods (negative: early).

Partial receipts and cancellations
----------------------------------
A purchase order delivered in several receipts has one lead time: the **unit-weighted mean**
of its receipts' lead times, observed once, when its last unit arrives (units received reach
units ordered). A purchase order cancelled after a partial receipt is observed at the
cancellation, from the units received so far; one cancelled before any receipt is no
observation (nothing was delivered). Receipts without a purchase order id, or for a purchase
order placed before learning was on, are not observations either. So the number of
observations is the number of purchase orders that were completely received or cancelled after
a partial receipt.

Estimate (a conjugate normal model, two levels)
-----------------------------------------------
Lead times ``y`` of a SKU are modelled as normal with unknown mean and variance under the
conjugate normal-inverse-chi-square prior ``(mu_0, kappa_0, nu_0, sigma_0^2)``; after ``n``
observations with mean ``ybar`` and sum of squared deviations ``M2`` (Gelman et al. 2013, BDA3,
sec. 3.3, eqs. for ``mu_n``, ``kappa_n``, ``nu_n``, ``sigma_n^2``)[^1]:

.. math::

    \kappa_n = \kappa_0 + n,\quad \mu_n = \frac{\kappa_0 \mu_0 + n \bar y}{\kappa_n},\quad
    \nu_n = \nu_0 + n,\quad
    \nu_n \sigma_n^2 = \nu_0 \sigma_0^2 + M_2 + \frac{\kappa_0 n}{\kappa_n} (\bar y - \mu_0)^2 .

The levels use ``mu_n`` as the mean lead time and ``sigma_n`` as its standard deviation (the
posterior scale); the lead-time demand variance is then ``E[L] var_d + E[d]^2 var_L`` (Silver,
Pyke & Thomas 2017, Ch. 6)[^2], :func:`agents.policy.lead_time_demand`. With
``kappa_0 = nu_0 = n_0`` (``ProcessorConfig.lead_time_prior_receipts``) the prior counts as
``n_0`` receipts.

**Pooling.** The SKU's prior is not the configuration itself but its *group's* posterior: the
SKUs of the same input partition that buy from the same supplier (``supplier_id`` of their
purchase orders; all SKUs without one form one group). The group learns the **deviation** of
each observed lead time from its SKU's configured lead time (so SKUs configured with different
lead times pool how late their supplier is, not their lead times), under the prior
``(0, n_0, n_0, sigma_cfg^2)``; the SKU's prior is then
``mu_0 = L_cfg + mu_group``, ``sigma_0^2 = sigma_group^2``, ``kappa_0 = nu_0 = n_0``. A SKU with
no receipts of its own therefore gets its supplier's (or partition's) experience, one with many
its own: partial pooling, the empirical-Bayes reading of a hierarchical normal model (BDA3,
ch. 5)[^1]. The SKU's own observations are also in its group's sums (a slight double count
that vanishes as the group grows). With no observation anywhere the estimate is the
configuration exactly.

Replay determinism
------------------
The group sums are exact integers (deviations in fixed point, ``2^-16`` periods), so they do
not depend on the order in which SKUs observed; SKUs read the sums **published** when the
partition entered the current period (:meth:`LeadTimePool.publish`, called from
:meth:`agents.forecasting.covariates.CovariatePool.publish`), like the covariate pool and the
fill-rate controller, so what a SKU reads is a function of the partition's event sequence.

References
----------
[^1]: Gelman, A., Carlin, J. B., Stern, H. S., Dunson, D. B., Vehtari, A., & Rubin, D. B.
    (2013). *Bayesian Data Analysis* (3rd ed.). CRC Press. Sec. 3.3, "Normal data with a
    conjugate prior distribution"; ch. 5, hierarchical models (partial pooling).
[^2]: Silver, E. A., Pyke, D. F., & Thomas, D. J. (2017). *Inventory and Production Management
    in Supply Chains* (4th ed.). CRC Press. Ch. 6, "Variability in the Replenishment Lead Time
    Itself": sigma_x^2 = E(L) var(D) + [E(D)]^2 var(L).

Examples
--------
Two purchase orders of a daily SKU, configured lead time 7 periods (sd 0), prior 4 receipts:

>>> day = 86400
>>> est = LeadTimeEstimator()
>>> est.place("po-1", 10, ordered_at=0 * day + 3600, expected_at=7 * day, period_start_at=0)
>>> est.place("po-2", 10, ordered_at=10 * day, expected_at=17 * day, period_start_at=10 * day)
>>> est.receive("po-1", 10, at=9 * day, period_s=day)   # 2 days late
(9.0, 2.0, '')
>>> est.receive("po-2", 4, at=17 * day, period_s=day) is None   # partial: not yet observed
True
>>> lead, late, _ = est.receive("po-2", 6, at=18 * day, period_s=day)  # 0.4 x 7 + 0.6 x 8
>>> round(lead, 6), round(late, 6)
(7.6, 0.6)
>>> e = lead_time_estimate(est, None, 7.0, 0.0, prior_receipts=4)
>>> e.receipts, round(e.mean_periods, 4), round(e.std_periods, 4)
(2, 7.4333, 0.7341)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FIXED_POINT",
    "LeadTimeEstimate",
    "LeadTimeEstimator",
    "LeadTimePool",
    "MIN_LEAD_TIME_PERIODS",
    "lead_time_estimate",
    "normal_posterior",
]

#: Fixed-point scale of the pool's sums: deviations are stored as ``round(d * 2^16)`` (periods).
FIXED_POINT: int = 1 << 16


def normal_posterior(n: int, mean: float, m2: float, mu0: float, var0: float,
                     prior_n: float) -> tuple[float, float]:
    """Posterior location and scale of a normal mean/variance under a conjugate prior.

    BDA3 sec. 3.3 (module docstring) with ``kappa_0 = nu_0 = prior_n``.

    Parameters
    ----------
    n : int
        Observations (>= 0).
    mean, m2 : float
        Their mean and sum of squared deviations from it (units of the data, squared for m2).
    mu0, var0 : float
        Prior location and scale (variance, >= 0).
    prior_n : float
        Weight of the prior in observations (> 0).

    Returns
    -------
    (float, float)
        ``mu_n`` and ``sigma_n^2``.

    Raises
    ------
    ValueError
        If ``prior_n`` is not positive or ``n`` is negative.

    Examples
    --------
    >>> normal_posterior(0, 0.0, 0.0, 7.0, 1.0, 4)
    (7.0, 1.0)
    >>> normal_posterior(4, 9.0, 0.0, 7.0, 0.0, 4)
    (8.0, 1.0)
    """
    if not prior_n > 0 or n < 0:
        raise ValueError(f"The prior weight must be positive and n non-negative, got {prior_n} and {n}.")
    if n == 0:
        return mu0, var0
    k = prior_n + n
    mu = (prior_n * mu0 + n * mean) / k
    var = (prior_n * var0 + m2 + prior_n * n / k * (mean - mu0) ** 2) / k
    return mu, max(var, 0.0)


@dataclass(slots=True)
class LeadTimeEstimator:
    """One SKU@location's open purchase orders and the moments of its observed lead times.

    Attributes
    ----------
    n : int
        Observed purchase orders (module docstring: completely received, or cancelled after a
        partial receipt).
    mean, m2 : float
        Mean lead time (periods) and the sum of squared deviations from it (periods squared),
        Welford's running moments.
    late_mean, late_m2 : float
        The same for lateness against ``expected_arrival`` (periods; negative = early).
    supplier : str
        Supplier of the latest purchase order ("" when none was given): the SKU's pool group.
    orders : dict[str, list]
        Open purchase orders ``po_id -> [order period start (epoch s), expected arrival (epoch
        s), units ordered, units received, sum of units x lead time (periods), supplier]``.
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    late_mean: float = 0.0
    late_m2: float = 0.0
    supplier: str = ""
    orders: dict[str, list[Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """True once it holds an observation or an open purchase order (then it is encoded)."""
        return self.n > 0 or bool(self.orders)

    @property
    def std(self) -> float:
        """Sample standard deviation of the observed lead times (periods; 0 below 2 observations)."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0

    @property
    def late_std(self) -> float:
        """Sample standard deviation of the observed lateness (periods; 0 below 2 observations)."""
        return math.sqrt(self.late_m2 / (self.n - 1)) if self.n > 1 else 0.0

    def place(self, po_id: str, quantity: int, *, ordered_at: int, expected_at: int, period_start_at: int,
              supplier: str | None = None) -> None:
        """Record a placed purchase order (``ordered_at``, ``expected_at`` in epoch s).

        ``period_start_at`` is the start of the demand period containing ``ordered_at`` (epoch s;
        :func:`agents.demand.period_start`: weeks start on Monday): the lead time is counted from
        it, in whole periods, as the warehouse's lead time is. Placing an open ``po_id`` again
        keeps its order time and the units received so far and updates its quantity, expected
        arrival and supplier (kept when the new event gives none).

        Raises
        ------
        ValueError
            When ``period_start_at`` is after ``ordered_at``.
        """
        start = int(period_start_at)
        if start > ordered_at:
            raise ValueError(f"{po_id}: the period start {start} is after the order time {ordered_at}.")
        old = self.orders.get(po_id)
        sup = supplier or (old[5] if old is not None else "")
        if old is not None:
            old[1], old[2], old[5] = int(expected_at), int(quantity), sup
        else:
            self.orders[po_id] = [int(start), int(expected_at), int(quantity), 0, 0.0, sup]
        self.supplier = sup

    def receive(self, po_id: str | None, quantity: int, *, at: int,
                period_s: int) -> tuple[float, float, str] | None:
        """Apply a receipt; when it completes its purchase order, observe and return it.

        Returns
        -------
        (float, float, str) or None
            ``(lead time, lateness, supplier)`` (periods) of the purchase order just completed,
            else None (partial receipt, unknown or missing ``po_id``).
        """
        if po_id is None:
            return None
        po = self.orders.get(po_id)
        if po is None:
            return None
        lead = max(0.0, (at - po[0]) / period_s)
        po[3] += int(quantity)
        po[4] += int(quantity) * lead
        if po[3] < po[2]:
            return None
        return self._observe(po_id, period_s)

    def cancel(self, po_id: str, *, period_s: int) -> tuple[float, float, str] | None:
        """Cancel a purchase order: observed from its receipts if it had any, else forgotten.

        Returns the observation as :meth:`receive` does, or None.
        """
        po = self.orders.get(po_id)
        if po is None:
            return None
        if po[3] <= 0:
            del self.orders[po_id]
            return None
        return self._observe(po_id, period_s)

    def _observe(self, po_id: str, period_s: int) -> tuple[float, float, str]:
        start, expected, _, received, weighted, supplier = self.orders.pop(po_id)
        lead = weighted / received
        late = lead - (expected - start) / period_s
        return self.add(lead, late, supplier)

    def add(self, lead: float, late: float, supplier: str = "") -> tuple[float, float, str]:
        """Add one observation (periods) to the moments (Welford); returns it."""
        self.n += 1
        d = lead - self.mean
        self.mean += d / self.n
        self.m2 += d * (lead - self.mean)
        d = late - self.late_mean
        self.late_mean += d / self.n
        self.late_m2 += d * (late - self.late_mean)
        return lead, late, supplier

    def to_list(self) -> list[Any]:
        """Compact msgpack-friendly encoding (orders sorted by id, for byte-identical states)."""
        return [self.n, self.mean, self.m2, self.late_mean, self.late_m2, self.supplier,
                {k: list(v) for k, v in sorted(self.orders.items())}]

    @classmethod
    def from_list(cls, d: Sequence[Any]) -> LeadTimeEstimator:
        """Inverse of :meth:`to_list`."""
        orders = {str(k): [int(v[0]), int(v[1]), int(v[2]), int(v[3]), float(v[4]), str(v[5])]
                  for k, v in dict(d[6]).items()}
        return cls(int(d[0]), float(d[1]), float(d[2]), float(d[3]), float(d[4]), str(d[5]), orders)


@dataclass(slots=True)
class LeadTimePool:
    """The lead-time deviations of one input partition's SKUs, per supplier group (exact sums).

    Attributes
    ----------
    live : dict[str, list[int]]
        ``group -> [n, sum q, sum q^2]`` with ``q = round(d * FIXED_POINT)``, ``d`` an observed
        lead time minus its SKU's configured lead time (periods); group ``""`` holds the
        purchase orders without a supplier.
    published : dict[str, list[int]]
        The sums as of the last :meth:`publish`: what SKUs read.

    Examples
    --------
    >>> pool = LeadTimePool()
    >>> pool.add("acme", 2.0); pool.add("acme", 0.0)
    >>> pool.moments("acme")   # not yet published
    (0, 0.0, 0.0)
    >>> pool.publish(), pool.moments("acme")
    (True, (2, 1.0, 2.0))
    """

    live: dict[str, list[int]] = field(default_factory=dict)
    published: dict[str, list[int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """True once a SKU has observed a lead time (then it is encoded)."""
        return bool(self.live)

    def add(self, group: str, deviation: float) -> None:
        """Add one SKU observation ``deviation`` (periods) to ``group``'s live sums."""
        q = round(deviation * FIXED_POINT)
        s = self.live.setdefault(group, [0, 0, 0])
        s[0] += 1
        s[1] += q
        s[2] += q * q

    def publish(self) -> bool:
        """Make the live sums the ones SKUs read; True when that changed them."""
        if self.live == self.published:
            return False
        self.published = {g: list(v) for g, v in self.live.items()}
        return True

    def moments(self, group: str) -> tuple[int, float, float]:
        """Published ``(n, mean, M2)`` of ``group``'s deviations (periods; zeros when none)."""
        s = self.published.get(group)
        if not s or s[0] == 0:
            return 0, 0.0, 0.0
        n, q, q2 = s
        return n, q / n / FIXED_POINT, (n * q2 - q * q) / (n * FIXED_POINT * FIXED_POINT)

    def to_list(self) -> list[Any]:
        """Compact encoding (groups sorted, integers exact)."""
        return [{g: list(v) for g, v in sorted(self.live.items())},
                {g: list(v) for g, v in sorted(self.published.items())}]

    @classmethod
    def from_list(cls, d: Sequence[Any]) -> LeadTimePool:
        """Inverse of :meth:`to_list`."""
        return cls({str(g): [int(x) for x in v] for g, v in dict(d[0]).items()},
                   {str(g): [int(x) for x in v] for g, v in dict(d[1]).items()})


#: Smallest mean lead time the levels are given (periods): a receipt in the order's own period
#: at its very start would otherwise give 0, which :class:`~agents.policy.PolicyParams` refuses.
MIN_LEAD_TIME_PERIODS: float = 0.01


@dataclass(frozen=True, slots=True)
class LeadTimeEstimate:
    """The lead time a SKU's levels use (periods) and what it was learned from.

    Attributes
    ----------
    mean_periods, std_periods : float
        Mean and standard deviation of the lead time (periods).
    receipts : int
        The SKU's own observed purchase orders.
    pool_receipts : int
        Observations of its group (supplier, or the partition's SKUs without one) published.
    source : {"config", "learned"}
        ``config`` when nothing was observed (the configured lead time exactly).
    """

    mean_periods: float
    std_periods: float
    receipts: int
    pool_receipts: int
    source: str


def lead_time_estimate(est: LeadTimeEstimator, pool: LeadTimePool | None, lead_time_periods: float,
                       lead_time_std_periods: float, *, prior_receipts: float) -> LeadTimeEstimate:
    """The SKU's lead-time mean and standard deviation: its group's posterior, then its own.

    Module docstring, "Estimate". With no observation (neither the SKU's nor its group's),
    the configured values unchanged.

    Parameters
    ----------
    est : LeadTimeEstimator
        The SKU's observations.
    pool : LeadTimePool or None
        Its partition's pool (None: no pooling).
    lead_time_periods, lead_time_std_periods : float
        The SKU's configured lead time and its standard deviation (periods): the prior.
    prior_receipts : float
        ``n_0``: weight of each prior in observations (> 0).

    Returns
    -------
    LeadTimeEstimate
        Mean (at least :data:`MIN_LEAD_TIME_PERIODS`) and standard deviation in periods.

    Raises
    ------
    ValueError
        If ``prior_receipts`` is not positive.
    """
    g_n, g_mean, g_m2 = pool.moments(est.supplier) if pool is not None else (0, 0.0, 0.0)
    if est.n == 0 and g_n == 0:
        return LeadTimeEstimate(lead_time_periods, lead_time_std_periods, 0, 0, "config")
    mu_g, var_g = normal_posterior(g_n, g_mean, g_m2, 0.0, lead_time_std_periods**2, prior_receipts)
    mu, var = normal_posterior(est.n, est.mean, est.m2, lead_time_periods + mu_g, var_g, prior_receipts)
    return LeadTimeEstimate(max(mu, MIN_LEAD_TIME_PERIODS), math.sqrt(var), est.n, g_n, "learned")
