"""Inventory position: on_hand, on_order, backorders and snapshot ordering."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.inventory import InventoryPosition


def test_lost_sales_and_backorders() -> None:
    lost = InventoryPosition(on_hand=5)
    assert lost.sell(8, at=1, unmet="lost_sales") == (5, 3)
    assert (lost.on_hand, lost.backorders, lost.lost_sales) == (0, 0, 3)
    back = InventoryPosition(on_hand=5)
    back.sell(8, at=1, unmet="backorder")
    assert (back.on_hand, back.backorders, back.inventory_position) == (0, 3, -3)
    back.receive(10, None, at=2)
    assert (back.on_hand, back.backorders) == (7, 0)


def test_snapshot_includes_movements_at_or_before_its_time() -> None:
    pos = InventoryPosition()
    pos.snapshot(50, at=100)
    pos.sell(10, at=100, unmet="lost_sales")  # same instant: already in the count
    pos.sell(5, at=90, unmet="lost_sales")  # earlier: already in the count
    assert pos.on_hand == 50
    pos.sell(5, at=101, unmet="lost_sales")
    assert pos.on_hand == 45
    pos.snapshot(70, at=80)  # older snapshot: ignored
    assert pos.on_hand == 45


def test_receipt_closes_purchase_order_even_when_already_counted() -> None:
    pos = InventoryPosition()
    pos.place_purchase_order("PO", 30, expected_arrival=200)
    pos.snapshot(30, at=150)
    pos.receive(30, "PO", at=140)
    assert pos.on_order == 0
    assert pos.on_hand == 30


def test_encoding_round_trip() -> None:
    pos = InventoryPosition(on_hand=3, backorders=1)
    pos.place_purchase_order("A", 4, expected_arrival=9)
    assert InventoryPosition.from_list(pos.to_list()) == pos


@given(st.lists(st.tuples(st.sampled_from(["sell", "recv", "adj", "po", "cancel"]),
                          st.integers(1, 40)), max_size=50))
def test_inventory_position_identity_and_non_negative_on_hand(ops: list[tuple[str, int]]) -> None:
    pos = InventoryPosition(on_hand=20)
    for i, (op, q) in enumerate(ops):
        if op == "sell":
            pos.sell(q, at=i, unmet="backorder")
        elif op == "recv":
            pos.receive(q, f"PO{i - 1}", at=i)
        elif op == "adj":
            pos.adjust(-q if i % 2 else q, at=i)
        elif op == "po":
            pos.place_purchase_order(f"PO{i}", q, expected_arrival=i + 5)
        else:
            pos.cancel_purchase_order(f"PO{i - 1}")
        assert pos.on_hand >= 0
        assert pos.on_order >= 0
        assert pos.inventory_position == pos.on_hand + pos.on_order - pos.backorders
        assert pos.on_hand == 0 or pos.backorders == 0
