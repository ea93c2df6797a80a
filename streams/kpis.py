"""Inventory KPIs of one replenishment policy over an evaluation window, shared by every simulator.

``restock demo`` (Kafka path), ``restock simulate`` (in-process) and the baseline reorder rules
(:mod:`streams.rules`) all account their periods into a :class:`PolicyTally`, so their KPI
dictionaries have the same keys, units and rounding.

Definitions (units of stock unless named; a *period* is the simulation's demand period):

* fill rate = served units / demanded units (Silver, Pyke & Thomas 2017, Sec. 7.2, P2);
* cycle service level = share of replenishment cycles (receipt to receipt) without a lost sale
  or backorder (ibid., P1);
* mean on-hand units / value = on_hand at the end of each period, averaged over the window's
  periods (value at the SKU's unit price, currency of the data: GBP for Online Retail);
* inventory turns per year = served value / mean on-hand value, scaled to 365 days.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PolicyTally:
    """Running KPI sums of one policy over the evaluation window (units unless named)."""

    demand_units: int = 0
    served_units: int = 0
    lost_units: int = 0
    on_hand_unit_days: float = 0.0
    on_hand_value_days: float = 0.0
    served_value: float = 0.0
    stockout_sku_days: int = 0
    sku_days: int = 0
    purchase_orders: int = 0
    received_units: int = 0
    cycles: int = 0
    cycles_with_stockout: int = 0
    abs_error: float = 0.0
    forecast_demand: float = 0.0

    def kpis(self, days: int, period_days: float = 1.0) -> dict[str, float | int | None]:
        """Named KPIs with units in the names.

        Parameters
        ----------
        days : int
            Periods in the evaluation window (the ``*_days`` sums are per period).
        period_days : float
            Length of one period in days (1 daily, 7 weekly): turns are scaled to 365 days.
        """
        avg_val = self.on_hand_value_days / max(days, 1)
        years = max(days, 1) * period_days / 365.0
        turns = (self.served_value / avg_val) / years if avg_val > 0 else None
        return {
            "fill_rate": round(self.served_units / self.demand_units, 6) if self.demand_units else None,
            "cycle_service_level": (round(1 - self.cycles_with_stockout / self.cycles, 6)
                                    if self.cycles else None),
            "stockout_sku_days": self.stockout_sku_days,
            "demand_units": self.demand_units,
            "served_units": self.served_units,
            "lost_sales_units": self.lost_units,
            "mean_on_hand_units": round(self.on_hand_unit_days / max(days, 1), 4),
            "mean_on_hand_value_gbp": round(avg_val, 2),
            "inventory_turns_per_year": None if turns is None else round(turns, 4),
            "purchase_orders": self.purchase_orders,
            "received_units": self.received_units,
            "forecast_wape": (round(self.abs_error / self.forecast_demand, 6)
                              if self.forecast_demand else None),
        }
