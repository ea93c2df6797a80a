"""Crashes at random and at exact points lose nothing and count nothing twice.

A reference run (one worker, no interruption) over a real slice of Online Retail orders gives
the full per-SKU state in Redis and the set of decisions. Each faulted run must end with the
same state, byte for byte, and the same set of distinct decision ids and payloads (decisions
re-emitted after a restart carry the same ids, which consumers dedupe):

* ``kill -9`` of the worker at a seeded random moment, then a restart;
* an abrupt exit right after a batch's decisions were produced and before its state was
  written (``after_produce``), and right after the state was written and before the batch was
  acked/committed (``after_save``), at a seeded random batch. restock never commits an offset
  before the state is durable, so "commit before write" cannot happen by construction.

Three seeds each here; ``make soak`` (issue #9) is to run twenty.
"""

from __future__ import annotations

import random
import signal
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from schemas.events import OrderPlaced, decode_decision
from streams.cli import DEFAULT_DATA
from streams.datasets import load
from streams.kafka_admin import ensure_topics
from streams.redis_state import RedisStateStore
from streams.workerproc import WorkerProcess, wait_committed

from .helpers import publish, read_all, worker_settings

PARTITIONS = 4
SEEDS = (1, 2, 3)


def _decisions(kafka: str, topic: str) -> dict[str, bytes]:
    return {decode_decision(m.value).event_id: m.value
            for m in read_all(kafka, topic, PARTITIONS, idle_s=1.0)}


@pytest.fixture(scope="module")
def reference(kafka_bootstrap: str, redis_url: str, tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("faults")
    sales = load(DEFAULT_DATA, skus=40, start=date(2011, 1, 4), end=date(2011, 3, 15)).sales
    orders = [OrderPlaced(event_id=f"{r.order_id}:{r.sku}:{i}", occurred_at=r.occurred_at, sku=r.sku,
                          location=r.location, order_id=r.order_id, quantity=r.quantity,
                          unit_price=r.unit_price or 0.0) for i, r in enumerate(sales)]
    topics = {role: f"faults-{role}-{tmp.name}" for role in ("orders", "inventory", "promotions", "dlq")}
    ensure_topics(kafka_bootstrap, {t: PARTITIONS for t in topics.values()})
    targets = publish(kafka_bootstrap, topics["orders"], orders)
    ref = _settings(kafka_bootstrap, redis_url, topics, "reference", tmp)
    with WorkerProcess(ref, tmp / "reference.log") as w:
        w.wait_ready()
        wait_committed(kafka_bootstrap, ref.app_id, targets, timeout_s=120)
    state = RedisStateStore.from_url(redis_url, ref.redis_key_prefix).dump()
    decisions = _decisions(kafka_bootstrap, ref.reorders_topic)
    assert len(state) == 40 and decisions, "the slice produces states and decisions"
    return {"topics": topics, "targets": targets, "state": state, "decisions": decisions, "tmp": tmp,
            "events": len(orders)}


def _settings(kafka: str, redis_url: str, topics: dict[str, str], tag: str, tmp: Path, **kw: Any):
    reorders = f"faults-reorders-{tag}-{tmp.name}"
    ensure_topics(kafka, {reorders: PARTITIONS})
    return worker_settings(kafka, redis_url, {**topics, "reorders": reorders}, f"{tag}-{tmp.name}", tmp,
                           flush_every_events=100, min_history_periods=14, **kw)


def _compare(kafka: str, redis_url: str, s, ref: dict[str, Any]) -> None:
    state = RedisStateStore.from_url(redis_url, s.redis_key_prefix).dump()
    assert sorted(state) == sorted(ref["state"])
    for key in sorted(ref["state"]):
        assert state[key] == ref["state"][key], f"first differing SKU: {key}"
    assert _decisions(kafka, s.reorders_topic) == ref["decisions"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("point", ["after_produce", "after_save"])
def test_exit_between_output_state_and_commit(kafka_bootstrap: str, redis_url: str, reference, point: str,
                                              seed: int) -> None:
    rng = random.Random(f"{point}-{seed}")
    batch = rng.randint(2, max(2, reference["events"] // 100 - 2))
    tag = f"{point}-{seed}".replace("_", "")
    s = _settings(kafka_bootstrap, redis_url, reference["topics"], tag, reference["tmp"],
                  fault_point=point, fault_after_batches=batch)
    w = WorkerProcess(s, reference["tmp"] / f"{tag}.log").start()
    assert w.proc is not None
    code = w.proc.wait(timeout=120)
    assert code == 86, f"the fault at batch {batch} did not fire:\n{w.log_tail()}"
    healthy = s.model_copy(update={"fault_point": None})
    with WorkerProcess(healthy, reference["tmp"] / f"{tag}-restart.log") as w2:
        w2.wait_ready()
        wait_committed(kafka_bootstrap, s.app_id, reference["targets"], timeout_s=120)
    _compare(kafka_bootstrap, redis_url, s, reference)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", SEEDS)
def test_kill_minus_9_at_a_random_moment(kafka_bootstrap: str, redis_url: str, reference, seed: int) -> None:
    rng = random.Random(f"kill-{seed}")
    tag = f"kill-{seed}"
    s = _settings(kafka_bootstrap, redis_url, reference["topics"], tag, reference["tmp"])
    w = WorkerProcess(s, reference["tmp"] / f"{tag}.log").start()
    w.wait_ready()
    time.sleep(rng.uniform(0.0, 1.5))
    w.stop(sig=signal.SIGKILL)
    with WorkerProcess(s, reference["tmp"] / f"{tag}-restart.log") as w2:
        w2.wait_ready()
        wait_committed(kafka_bootstrap, s.app_id, reference["targets"], timeout_s=120)
    _compare(kafka_bootstrap, redis_url, s, reference)
