"""Lead times learned from receipts through the real broker, the worker and the real Redis (issue #20)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agents.processor import SkuProcessor
from schemas.events import decode_decision
from schemas.inputs import PurchaseOrderPlaced, StockReceived
from streams.config import processor_config
from streams.redis_state import RedisStateStore
from streams.workerproc import WorkerProcess, wait_caught_up

from .helpers import T0, publish, read_all, snapshot, steady_orders, worker_settings

TOPICS = {"orders": 4, "inventory": 4, "promotions": 4, "reorders": 4, "dlq": 4}


def _purchase(sku: str, supplier: str, late_days: int) -> list:
    """A purchase order placed on day 5 (expected 7 days later), received ``late_days`` late."""
    placed = T0 + timedelta(days=5, hours=12)
    return [
        PurchaseOrderPlaced(event_id=f"{sku}-po", occurred_at=placed, sku=sku, location="W1",
                            purchase_order_id=f"{sku}-po1", quantity=40,
                            expected_arrival=T0 + timedelta(days=12), supplier_id=supplier),
        StockReceived(event_id=f"{sku}-rcv", occurred_at=T0 + timedelta(days=12 + late_days), sku=sku,
                      location="W1", quantity=40, purchase_order_id=f"{sku}-po1"),
    ]


@pytest.mark.timeout(180)
def test_a_late_receipt_moves_the_learned_lead_time(
    kafka_bootstrap: str, redis_url: str, redis_client, new_topics, tmp_path: Path
) -> None:
    topics = new_topics(TOPICS)
    inventory = [snapshot("LATE", 20, T0), snapshot("ONTIME", 20, T0),
                 *_purchase("LATE", "SUP-SLOW", 6), *_purchase("ONTIME", "SUP-OK", 0)]
    orders = sorted(steady_orders("LATE", days=30, per_day=5) + steady_orders("ONTIME", days=30, per_day=5),
                    key=lambda o: o.occurred_at)
    targets = publish(kafka_bootstrap, topics["inventory"], inventory)
    for k, v in publish(kafka_bootstrap, topics["orders"], orders).items():
        targets[k] = max(targets.get(k, 0), v)
    s = worker_settings(kafka_bootstrap, redis_url, topics, "leadtime", tmp_path, lead_time_days=7.0)
    assert s.lead_time_learning  # the default
    with WorkerProcess(s, tmp_path / "leadtime.log") as w:
        w.wait_ready()
        wait_caught_up(s, targets, timeout_s=90)
    store = RedisStateStore.from_url(redis_url, s.redis_key_prefix)
    states = store.load_many(["LATE@W1", "ONTIME@W1"])
    late, ontime = states["LATE@W1"], states["ONTIME@W1"]
    # the observed lead times, from the start of the order's day to the receipt (periods = days)
    assert (late.lead_time.n, late.lead_time.mean, late.lead_time.late_mean) == (1, 13.0, 6.0)
    assert (ontime.lead_time.n, ontime.lead_time.mean, ontime.lead_time.late_mean) == (1, 7.0, 0.0)
    assert not late.lead_time.orders and late.lead_time.supplier == "SUP-SLOW"
    # the levels the worker's deriver reads from the stored state: the late SKU's lead time moved
    deriver = SkuProcessor(processor_config(s)).deriver
    d_late, d_ontime = deriver.derived(late), deriver.derived(ontime)
    assert d_late is not None and d_ontime is not None
    assert d_ontime.params.lead_time_periods == 7.0 and d_ontime.params.lead_time_std_periods == 0.0
    assert d_late.params.lead_time_periods == pytest.approx((4 * 7.0 + 13.0) / 5)  # prior of 4 receipts
    assert d_late.params.lead_time_std_periods > 1.0
    assert d_late.levels.reorder_point > d_ontime.levels.reorder_point
    # and the decisions after the receipt say so
    decisions = [decode_decision(m.value) for m in read_all(kafka_bootstrap, topics["reorders"], 4)]
    after = [d for d in decisions if d.sku == "LATE" and d.occurred_at >= T0 + timedelta(days=18)]
    assert after, "the late SKU decided after its receipt"
    x = after[0].explanation
    assert x.lead_time_receipts == 1 and x.lead_time_periods > 7.5
    assert x.lead_time_days == pytest.approx(round(x.lead_time_periods, 4))
    before = [d for d in decisions if d.sku == "LATE" and d.occurred_at < T0 + timedelta(days=18)]
    assert before and all(d.explanation.lead_time_receipts == 0 and d.explanation.lead_time_periods == 7.0
                          for d in before)
