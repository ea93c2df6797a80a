"""Two workers in one consumer group: a join and a leave mid-stream change nothing.

The final Redis state and the set of decisions equal those of one worker that consumed the same
input without interruption.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from schemas.events import OrderPlaced, decode_decision
from streams.redis_state import RedisStateStore
from streams.workerproc import WorkerProcess, wait_committed

from .helpers import T0, publish, read_all, worker_settings

PARTITIONS = 4


def _orders() -> list[OrderPlaced]:
    """24 SKUs over 45 days; a third of them stop selling after day 20 (silent SKUs)."""
    rng = random.Random(11)
    out = []
    for i in range(24):
        sku, last_day = f"K{i:02d}", (20 if i % 3 == 0 else 45)
        for d in range(last_day):
            if rng.random() < 0.7:
                out.append(OrderPlaced(event_id=f"{sku}-{d}", sku=sku, location="W",
                                       occurred_at=T0 + timedelta(days=d, hours=8 + i % 9),
                                       order_id=f"{sku}-{d}", quantity=rng.randint(1, 20), unit_price=1.0))
    out.sort(key=lambda o: (o.occurred_at, o.sku))
    return out


def _decisions(kafka: str, topic: str) -> dict[str, bytes]:
    return {decode_decision(m.value).event_id: m.value for m in read_all(kafka, topic, PARTITIONS, idle_s=1.0)}


@pytest.mark.timeout(300)
def test_join_and_leave_mid_stream_equal_a_single_worker(
    kafka_bootstrap: str, redis_url: str, redis_client, new_topics, tmp_path: Path
) -> None:
    inputs = new_topics({"orders": PARTITIONS, "inventory": PARTITIONS, "promotions": PARTITIONS,
                         "dlq": PARTITIONS})
    out_ref = new_topics({"reorders": PARTITIONS})["reorders"]
    out_scaled = new_topics({"reorders": PARTITIONS})["reorders"]
    orders = _orders()
    thirds = [orders[: len(orders) // 3], orders[len(orders) // 3: 2 * len(orders) // 3],
              orders[2 * len(orders) // 3:]]

    scaled = worker_settings(kafka_bootstrap, redis_url, {**inputs, "reorders": out_scaled}, "scaled", tmp_path)
    w1 = WorkerProcess(scaled, tmp_path / "w1.log").start()
    w2 = WorkerProcess(scaled.model_copy(update={"web_port": _port(), "metrics_port": _port()}),
                       tmp_path / "w2.log")
    targets: dict[tuple[str, int], int] = {}
    try:
        w1.wait_ready()
        targets.update(publish(kafka_bootstrap, inputs["orders"], thirds[0]))
        wait_committed(kafka_bootstrap, scaled.app_id, targets, timeout_s=60)
        w2.start().wait_ready()  # joins: partitions are split between the two
        for k, v in publish(kafka_bootstrap, inputs["orders"], thirds[1]).items():
            targets[k] = max(targets.get(k, 0), v)
        wait_committed(kafka_bootstrap, scaled.app_id, targets, timeout_s=90)
        w2.stop()  # leaves (SIGTERM): w1 takes its partitions back
        for k, v in publish(kafka_bootstrap, inputs["orders"], thirds[2]).items():
            targets[k] = max(targets.get(k, 0), v)
        wait_committed(kafka_bootstrap, scaled.app_id, targets, timeout_s=90)
    finally:
        w2.stop()
        w1.stop()

    ref = worker_settings(kafka_bootstrap, redis_url, {**inputs, "reorders": out_ref}, "reference", tmp_path)
    with WorkerProcess(ref, tmp_path / "ref.log") as w:
        w.wait_ready()
        wait_committed(kafka_bootstrap, ref.app_id, targets, timeout_s=90)

    ref_state = RedisStateStore.from_url(redis_url, ref.redis_key_prefix).dump()
    scaled_state = RedisStateStore.from_url(redis_url, scaled.redis_key_prefix).dump()
    assert sorted(ref_state) == sorted(scaled_state) and len(ref_state) == 24
    for key in sorted(ref_state):
        assert scaled_state[key] == ref_state[key], f"first differing SKU: {key}"
    ref_decisions = _decisions(kafka_bootstrap, out_ref)
    assert ref_decisions, "the scenario produces decisions"
    assert _decisions(kafka_bootstrap, out_scaled) == ref_decisions


def _port() -> int:
    from streams.workerproc import free_port

    return free_port()
