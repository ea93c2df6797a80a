"""Inventory position of one SKU@location: on_hand, on_order, backorders.

Pure logic, shared by the agent, the backtest and the demo.

Inventory position (Silver, Pyke & Thomas 2017, sec. 6.2 [^1]):

    IP = on_hand + on_order - backorders

Ordering rule between movements and snapshots: a ``StockSnapshot`` taken at ``t`` is the
physical count *after* every movement with ``occurred_at <= t``. A sale, return, receipt or
adjustment with ``occurred_at <= last_snapshot_at`` is therefore already in the count: it does
not move ``on_hand`` again (it still counts as demand, and a receipt still closes its purchase
order). Snapshots older than the latest one are ignored.

Units are whole units of stock; times are epoch seconds (UTC).

References
----------
[^1]: Silver, E. A., Pyke, D. F., & Thomas, D. J. (2017). *Inventory and Production Management
    in Supply Chains* (4th ed.). CRC Press. Sec. 6.2, "inventory position".

Examples
--------
>>> pos = InventoryPosition()
>>> pos.snapshot(100, at=10)
>>> pos.place_purchase_order("PO-1", 50, expected_arrival=20)
>>> pos.sell(30, at=11, unmet="lost_sales")
(30, 0)
>>> pos.on_hand, pos.on_order, pos.inventory_position
(70, 50, 120)
>>> pos.receive(50, "PO-1", at=21)
>>> pos.on_hand, pos.on_order
(120, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

UnmetDemand = Literal["lost_sales", "backorder"]


@dataclass(slots=True)
class InventoryPosition:
    """Stock state of one SKU@location (units of stock, times in epoch seconds).

    Attributes
    ----------
    on_hand : int
        Physical units available (never negative).
    backorders : int
        Units demanded and not yet served (only in ``backorder`` mode).
    purchase_orders : dict[str, list[int]]
        Open purchase orders: ``po_id -> [units still on order, expected arrival epoch s]``.
    last_snapshot_at : int
        Event time of the latest applied ``StockSnapshot`` (-1 when none).
    lost_sales : int
        Cumulative units demanded that could not be served (``lost_sales`` mode).
    received : int
        Cumulative units received.
    """

    on_hand: int = 0
    backorders: int = 0
    purchase_orders: dict[str, list[int]] = field(default_factory=dict)
    last_snapshot_at: int = -1
    lost_sales: int = 0
    received: int = 0

    @property
    def on_order(self) -> int:
        """Units on open purchase orders."""
        return sum(q for q, _ in self.purchase_orders.values())

    @property
    def inventory_position(self) -> int:
        """``on_hand + on_order - backorders`` (units)."""
        return self.on_hand + self.on_order - self.backorders

    def _counted(self, at: int) -> bool:
        """True when a movement at ``at`` is already included in the latest snapshot."""
        return at <= self.last_snapshot_at

    def snapshot(self, on_hand: int, *, at: int) -> None:
        """Apply an absolute count taken at ``at``; older snapshots are ignored."""
        if at < self.last_snapshot_at:
            return
        self.on_hand = max(0, int(on_hand))
        self.last_snapshot_at = at

    def sell(self, quantity: int, *, at: int, unmet: UnmetDemand) -> tuple[int, int]:
        """Serve an order of ``quantity`` units.

        Returns
        -------
        (served, unmet_units)
            Units served from stock and units that became a lost sale or a backorder. When the
            order is already in the latest snapshot, ``(quantity, 0)`` and nothing moves.
        """
        if self._counted(at):
            return quantity, 0
        served = min(self.on_hand, quantity)
        short = quantity - served
        self.on_hand -= served
        if short:
            if unmet == "backorder":
                self.backorders += short
            else:
                self.lost_sales += short
        return served, short

    def _serve_backorders(self) -> None:
        if self.backorders and self.on_hand:
            served = min(self.backorders, self.on_hand)
            self.backorders -= served
            self.on_hand -= served

    def give_back(self, quantity: int, *, at: int) -> None:
        """Put cancelled or returned units back on hand (not negative demand)."""
        if not self._counted(at):
            self.on_hand += quantity
            self._serve_backorders()

    def adjust(self, delta: int, *, at: int) -> None:
        """Apply a stock adjustment (damage, shrinkage, count correction); on_hand stays >= 0."""
        if not self._counted(at):
            self.on_hand = max(0, self.on_hand + delta)
            self._serve_backorders()

    def place_purchase_order(self, po_id: str, quantity: int, *, expected_arrival: int) -> None:
        """Record an open purchase order (idempotent per ``po_id``)."""
        self.purchase_orders[po_id] = [int(quantity), int(expected_arrival)]

    def cancel_purchase_order(self, po_id: str) -> None:
        """Drop an open purchase order (unknown ids are ignored)."""
        self.purchase_orders.pop(po_id, None)

    def receive(self, quantity: int, po_id: str | None, *, at: int) -> None:
        """Receive units: close (part of) a purchase order, serve backorders, add the rest."""
        if po_id is not None and po_id in self.purchase_orders:
            po = self.purchase_orders[po_id]
            po[0] -= quantity
            if po[0] <= 0:
                del self.purchase_orders[po_id]
        self.received += quantity
        if self._counted(at):
            return
        self.on_hand += quantity
        self._serve_backorders()

    def scheduled_receipts(self, now: int, period_s: int, open_start: int) -> list[tuple[int, float]]:
        """Open purchase orders as ``(period index from open_start, units)``, overdue at 0."""
        out: list[tuple[int, float]] = []
        for qty, arrival in self.purchase_orders.values():
            idx = max(0, (arrival - open_start) // period_s) if arrival > now else 0
            out.append((int(idx), float(qty)))
        return sorted(out)

    def to_list(self) -> list[object]:
        """Compact msgpack-friendly encoding."""
        return [self.on_hand, self.backorders, self.purchase_orders, self.last_snapshot_at,
                self.lost_sales, self.received]

    @classmethod
    def from_list(cls, data: list[object]) -> InventoryPosition:
        """Inverse of :meth:`to_list`."""
        on_hand, backorders, pos, last, lost, received = data
        return cls(int(on_hand), int(backorders),  # type: ignore[call-overload]
                   {str(k): [int(v[0]), int(v[1])] for k, v in dict(pos).items()},  # type: ignore[call-overload]
                   int(last), int(lost), int(received))  # type: ignore[call-overload]
