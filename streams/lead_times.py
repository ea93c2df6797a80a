"""The simulated warehouse's random lead times: one draw per SKU and period, shared by every policy.

``restock demo`` / ``restock simulate`` (``--lead-time-sd-days``, ``--late-probability``,
``--late-days``, ``--supply-seed``) and the baseline rules (:func:`streams.rules.simulate_rule`)
read the same matrix: a purchase order placed for SKU ``i`` in period ``p`` (restock's decision
of period ``p``, placed at the start of ``p + 1``; a rule's review at the end of ``p``) arrives
at the start of period ``p + lead[i, p]``. Common random numbers: two policies that order the
same SKU in the same period wait equally long, so their KPIs differ by their decisions, not by
the warehouse's luck.

Each lead time, in days, is gamma distributed with the configured mean (``lead_time_days``) and
standard deviation (``lead_time_sd_days``; a gamma keeps it positive and right-skewed, the
usual shape of supplier lead times, e.g. Silver, Pyke & Thomas 2017, Ch. 6), plus ``late_days``
with probability ``late_probability`` (an occasional late delivery), rounded to whole periods
and at least one period. ``PurchaseOrderPlaced.expected_arrival`` stays the nominal lead time.
"""

from __future__ import annotations

import numpy as np

__all__ = ["lead_time_draws"]


def lead_time_draws(n_skus: int, n_periods: int, *, lead_time_days: float, sd_days: float,
                    late_probability: float, late_days: float, period_days: float,
                    seed: int = 0) -> np.ndarray | None:
    """Lead time of an order placed by each SKU in each period, in whole periods (>= 1).

    Parameters
    ----------
    n_skus, n_periods : int
        Shape of the panel.
    lead_time_days : float
        Mean lead time before lateness (days, > 0).
    sd_days : float
        Standard deviation of the gamma lead time (days, >= 0; 0: always ``lead_time_days``).
    late_probability : float
        Probability in [0, 1] that a delivery is late by ``late_days`` more.
    late_days : float
        Extra days of a late delivery (>= 0).
    period_days : float
        Length of a period in days (1 daily, 7 weekly, 1/24 hourly).
    seed : int
        Seed of the draws (numpy's PCG64): the same seed gives the same warehouse.

    Returns
    -------
    numpy.ndarray of int64, shape (n_skus, n_periods), or None
        None when the lead time is deterministic (``sd_days == 0`` and no lateness): the loop
        then keeps its exact nominal timing.

    Raises
    ------
    ValueError
        On a non-positive mean, a negative sd or lateness, or a probability outside [0, 1].

    Examples
    --------
    >>> d = lead_time_draws(2, 4, lead_time_days=7, sd_days=3, late_probability=0.1, late_days=7,
    ...                     period_days=1, seed=1)
    >>> d.shape, bool(d.min() >= 1)
    ((2, 4), True)
    >>> lead_time_draws(2, 4, lead_time_days=7, sd_days=0, late_probability=0, late_days=7,
    ...                 period_days=1) is None
    True
    """
    if not lead_time_days > 0 or sd_days < 0 or late_days < 0 or not 0.0 <= late_probability <= 1.0:
        raise ValueError(f"Invalid random lead time: mean {lead_time_days} days (> 0), sd {sd_days} "
                         f"(>= 0), late probability {late_probability} (0..1), late days {late_days} (>= 0).")
    if sd_days == 0 and (late_probability == 0 or late_days == 0):
        return None
    rng = np.random.default_rng(seed)
    shape = (n_skus, n_periods)
    if sd_days > 0:
        k = (lead_time_days / sd_days) ** 2
        days = rng.gamma(k, lead_time_days / k, size=shape)
    else:
        days = np.full(shape, float(lead_time_days))
    late = rng.random(shape) < late_probability
    days = days + late * late_days
    return np.maximum(1, np.rint(days / period_days)).astype(np.int64)
