"""The main job on a small slice of real data, through the real broker and Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.events import decode_decision, decode_inventory
from streams.cli import DEFAULT_DATA
from streams.demo import DemoOptions, run_demo

from .helpers import read_all


@pytest.mark.timeout(300)
def test_demo_on_a_real_slice_is_consistent_and_deterministic(
    kafka_bootstrap: str, redis_url: str, redis_client, tmp_path: Path
) -> None:
    opts = dict(data=DEFAULT_DATA, skus=25, start="2011-03-01", end="2011-04-15", progress=False,
                plot_path=tmp_path / "skus.png")
    first = run_demo(DemoOptions(json_path=tmp_path / "a.json", run_id="slice-a", **opts),  # type: ignore[arg-type]
                     kafka=kafka_bootstrap, redis_url=redis_url)
    second = run_demo(DemoOptions(json_path=tmp_path / "b.json", run_id="slice-b", **opts),  # type: ignore[arg-type]
                      kafka=kafka_bootstrap, redis_url=redis_url)

    # Two runs with the same input give the same KPIs (run metadata such as wall time aside).
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["restock"] == b["restock"]
    assert a["baseline"] == b["baseline"]
    assert (tmp_path / "skus.png").stat().st_size > 10_000

    for policy in ("restock", "baseline"):
        k = first[policy]
        assert 0.0 <= k["fill_rate"] <= 1.0
        assert k["served_units"] + k["lost_sales_units"] == k["demand_units"]
        # Units are conserved over the whole run: start + received - served = end.
        c = first["run"]["conservation"][policy]
        assert c["start_on_hand_units"] + c["received_units"] - c["served_units"] == c["end_on_hand_units"]
    assert first["restock"]["demand_units"] == first["baseline"]["demand_units"] > 0
    assert first["run"]["decisions"] > 0

    # Every receipt answers an earlier reorder suggestion, through its purchase order.
    topics = first["run"]["topics"]
    reorders = {d.event_id: d for d in (decode_decision(m.value)
                for m in read_all(kafka_bootstrap, topics["reorders"], 4, idle_s=1.0))}
    inventory = [decode_inventory(m.value)
                 for m in read_all(kafka_bootstrap, topics["inventory"], 4, idle_s=1.0)]
    pos = {e.purchase_order_id: e for e in inventory if e.kind == "purchase_order_placed"}
    receipts = [e for e in inventory if e.kind == "stock_received"]
    assert receipts, "the slice is long enough for purchase orders to arrive"
    for r in receipts:
        po = pos[r.purchase_order_id]
        decision = reorders[po.decision_id]
        assert decision.kind == "reorder_suggested"
        assert decision.occurred_at < r.occurred_at
        assert po.quantity == r.quantity == decision.quantity
    assert second["run"]["events_published"] == first["run"]["events_published"]
