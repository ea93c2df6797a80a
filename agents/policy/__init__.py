"""Pure replenishment policy maths: service levels, reorder points, order-up-to levels.

This package is transport-free (no Kafka, no Redis): every function takes plain numbers or
arrays and returns plain numbers, arrays or frozen value objects, so the Faust agent, the
backtest and the demo share exactly the same decisions.

Conventions
-----------
* Time is measured in *periods* (an hour, a day or a week, chosen by the caller). A forecast is
  a pair of arrays ``mean_per_period`` and ``var_per_period`` of shape ``(H,)``: the mean and
  the variance of demand (units of stock, and units squared) in each of the next ``H``
  periods, period 0 being the one that starts now.
* Quantities are in units of stock; costs are in currency.
* Inventory position ``IP = on_hand + on_order - backorders``.
* ``L`` is the replenishment lead time, ``R`` the review period; ``L + R`` is the
  *protection interval* of a periodic-review (R, S) policy.

Modules (one reason to change each)
-----------------------------------
* :mod:`agents.policy.params`: :class:`PolicyParams`;
* :mod:`agents.policy.interval`: demand over an interval, :func:`lead_time_demand`;
* :mod:`agents.policy.service_level`: :func:`z_for_cycle_service_level`,
  :func:`standard_normal_loss`, :func:`z_for_fill_rate`, :func:`safety_stock`;
* :mod:`agents.count_quantiles` (shared with the forecasters): :func:`demand_quantile`,
  :func:`demand_quantiles`;
* :mod:`agents.policy.levels`: :class:`PolicyLevels`, :func:`compute_levels`,
  :func:`order_quantity`, :func:`eoq`;
* :mod:`agents.policy.projection`: :class:`Projection`, :func:`project_inventory`,
  :class:`OverstockCheck`, :func:`is_overstock`.

This package re-exports them all: ``from agents.policy import compute_levels`` is the public path.
"""

from __future__ import annotations

from agents.count_quantiles import demand_quantile, demand_quantiles
from agents.policy.controller import ServiceController
from agents.policy.interval import lead_time_demand
from agents.policy.levels import PolicyLevels, compute_levels, eoq, order_quantity
from agents.policy.params import PolicyParams
from agents.policy.projection import OverstockCheck, Projection, is_overstock, project_inventory
from agents.policy.service_level import (
    Z_MAX,
    Z_MIN,
    safety_stock,
    standard_normal_loss,
    z_for_cycle_service_level,
    z_for_fill_rate,
)

__all__ = [
    "Z_MAX",
    "Z_MIN",
    "OverstockCheck",
    "PolicyLevels",
    "PolicyParams",
    "Projection",
    "ServiceController",
    "compute_levels",
    "demand_quantile",
    "demand_quantiles",
    "eoq",
    "is_overstock",
    "lead_time_demand",
    "order_quantity",
    "project_inventory",
    "safety_stock",
    "standard_normal_loss",
    "z_for_cycle_service_level",
    "z_for_fill_rate",
]
