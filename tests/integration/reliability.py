"""The reference scenario of the reliability tests (issue #9) and its comparison.

A fixed input, a real slice of Online Retail orders plus inventory events on topics with 4
partitions, processed by one worker without interruption gives the reference: every SKU's state
in Redis (forecaster, open period, inventory position, fences) and the set of decision events on
``reorders``. Every faulted run consumes the same topics with its own consumer group, Redis key
prefix and ``reorders`` topic, and must end with the same state, byte for byte, and the same
distinct decision ids and payloads.

Why no inventory events: Kafka orders records within a partition, not across the ``orders`` and
``inventory`` topics, and a worker interleaves the two as their fetches arrive; a restarted
worker interleaves them differently. A sale applied before a receipt of the same SKU is
backordered instead of served, and an inventory event of any SKU moves the partition watermark
that closes the periods of every SKU of that partition number, so with inventory events on the
same partitions the reference itself is not reproducible (tried: opening-stock receipts, and
warehouse-only SKUs dated before the first order; both diverge after a restart). Making state
independent of the cross-topic interleaving needs event-time alignment of the input topics (a
per-partition watermark that is the minimum over the topics, and a reorder buffer); until then
the guarantee tested is exactly-once per event in partition order, on the ``orders`` topic. The
``orders`` partitions start with :data:`PADDING` malformed records, which go to the dead-letter
topic under every fault too. Any difference from the reference is a real loss or double count.

Knobs (environment): ``RESTOCK_FAULT_SEEDS`` seeds per fault (3 here, 20 in ``make soak``),
``RESTOCK_OUTAGE_S`` broker / Redis outage length in seconds (6 here, 30 in ``make soak``) and
``RESTOCK_OUTAGE_SEEDS`` outage runs (moments) per kind (1 here, 20 in ``make soak``),
``RESTOCK_SOAK_REPORT`` a JSON-lines file every faulted run appends its outcome to (read by
``tests/integration/soak_report.py``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgpack
import redis

from schemas.events import OrderPlaced, StockAdjusted, StockReceived, StockSnapshot, decode_decision
from streams.cli import DEFAULT_DATA
from streams.datasets import load
from streams.kafka_admin import ensure_topics
from streams.redis_state import RedisStateStore
from streams.settings import Settings

from .helpers import publish, read_all, worker_settings

PARTITIONS = 4
PADDING = 400  # malformed records at the head of the orders topic (about 100 per partition)
SEEDS = tuple(range(1, int(os.environ.get("RESTOCK_FAULT_SEEDS", "3")) + 1))
OUTAGE_S = float(os.environ.get("RESTOCK_OUTAGE_S", "6"))
OUTAGE_SEEDS = tuple(range(1, int(os.environ.get("RESTOCK_OUTAGE_SEEDS", "1")) + 1))
#: rebalance runs ``(how the leaving worker stops, seed)``: one kind per seed, alternating, in the
#: short form; both kinds for every seed when ``RESTOCK_SOAK=1``
REBALANCE_CASES = tuple((leave, seed) for seed in SEEDS for leave in ("sigterm", "kill-9")
                        if os.environ.get("RESTOCK_SOAK") == "1" or leave == ("kill-9", "sigterm")[seed % 2])
REPORT = os.environ.get("RESTOCK_SOAK_REPORT", "")

#: fields of the versioned core record (agents.state.SkuState.encode_core), for mismatch reports
CORE_FIELDS = ("version", "key", "fence", "demand", "position", "reorder", "overstock", "promotions",
               "counters", "updated_at", "level_ratio")


@dataclass
class Scenario:
    """The published input and the reference outcome."""

    topics: dict[str, str]
    targets: dict[tuple[str, int], int]
    state: dict[str, tuple[bytes, bytes]]
    decisions: dict[str, bytes]
    tmp: Path
    events: int


def build_input(skus: int = 40, start: date = date(2011, 1, 4), end: date = date(2011, 3, 15),
                warehouse_skus: int = 0) -> tuple[list[OrderPlaced], list[Any]]:
    """Orders of the top ``skus`` SKUs between ``start`` and ``end``, and inventory events.

    The inventory events are a snapshot, a receipt and an adjustment for each of
    ``warehouse_skus`` SKUs without orders, dated in the three days before the first order
    (0 in the reference scenario: see the module docstring).
    """
    sales = load(DEFAULT_DATA, skus=skus, start=start, end=end).sales
    orders = [OrderPlaced(event_id=f"{r.order_id}:{r.sku}:{i}", occurred_at=r.occurred_at,
                          sku=r.sku, location=r.location, order_id=r.order_id,
                          quantity=r.quantity, unit_price=r.unit_price or 0.0)
              for i, r in enumerate(sales)]
    first = min(o.occurred_at for o in orders)
    inventory: list[Any] = []
    for i in range(warehouse_skus):
        sku = f"WH-{i:03d}"
        inventory += [
            StockSnapshot(event_id=f"{sku}-snap", occurred_at=first - timedelta(days=3), sku=sku,
                          location="UK", on_hand=100 + 7 * i),
            StockReceived(event_id=f"{sku}-rcv", occurred_at=first - timedelta(days=2), sku=sku,
                          location="UK", quantity=24 + i),
            StockAdjusted(event_id=f"{sku}-adj", occurred_at=first - timedelta(days=1), sku=sku,
                          location="UK", delta=-(1 + i % 3), reason="damage"),
        ]
    return orders, inventory


def settings_for(kafka: str, redis_url: str, sc_topics: dict[str, str], tag: str, tmp: Path,
                 **overrides: Any) -> Settings:
    """Worker settings of one run: the scenario's input topics, its own group, prefix and output."""
    reorders = f"rel-reorders-{tag}-{tmp.name}"
    ensure_topics(kafka, {reorders: PARTITIONS})
    base: dict[str, Any] = dict(flush_every_events=100, min_history_periods=14,
                                progress_check_interval_s=1.0)
    base.update(overrides)
    return worker_settings(kafka, redis_url, {**sc_topics, "reorders": reorders}, f"{tag}-{tmp.name}", tmp,
                           **base)


def publish_scenario(kafka: str, tmp: Path) -> tuple[dict[str, str], dict[tuple[str, int], int], int]:
    """Create the input topics and publish the scenario; returns topics, targets, event count."""
    orders, inventory = build_input()
    topics = {role: f"rel-{role}-{tmp.name}" for role in ("orders", "inventory", "promotions", "dlq")}
    ensure_topics(kafka, {t: PARTITIONS for t in topics.values()})
    targets = publish(kafka, topics["inventory"], inventory) if inventory else {}
    padding = [(f"pad-{i}".encode(), b"{not json") for i in range(PADDING)]
    publish(kafka, topics["orders"], padding, raw=True)
    targets.update(publish(kafka, topics["orders"], orders))
    return topics, targets, len(orders) + len(inventory) + PADDING


def state_parts(redis_url: str, prefix: str) -> dict[str, tuple[bytes, bytes]]:
    """Every SKU's ``(core, model)`` bytes under ``prefix``."""
    store = RedisStateStore.from_url(redis_url, prefix)
    keys = store.keys()
    pipe = store.client.pipeline(transaction=False)
    for k in keys:
        pipe.hmget(store.redis_key(k), "core", "model")
    return {k: (c or b"", m or b"") for k, (c, m) in zip(keys, pipe.execute(), strict=True)}


def decisions_of(kafka: str, topic: str) -> dict[str, bytes]:
    """Distinct decision ids on ``topic`` and their payloads (consumers dedupe on the id)."""
    return {decode_decision(m.value).event_id: m.value for m in read_all(kafka, topic, PARTITIONS, idle_s=1.0)}


def _first_field(a: Any, b: Any, path: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _first_field(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_field(x, y, f"{path}[{i}]")
    return f"{path}: reference {a!r:.120} != run {b!r:.120}"


def first_difference(ref: dict[str, tuple[bytes, bytes]], got: dict[str, tuple[bytes, bytes]]) -> str | None:
    """The first SKU (sorted) whose state differs, and the first differing field in it."""
    if sorted(ref) != sorted(got):
        missing, extra = sorted(set(ref) - set(got)), sorted(set(got) - set(ref))
        return f"SKU sets differ: missing {missing[:5]}, unexpected {extra[:5]}"
    for key in sorted(ref):
        if ref[key] == got[key]:
            continue
        (rc, rm), (gc, gm) = ref[key], got[key]
        if rc != gc:
            a = msgpack.unpackb(rc, raw=False, strict_map_key=False)
            b = msgpack.unpackb(gc, raw=False, strict_map_key=False)
            for name, x, y in zip(CORE_FIELDS, a, b, strict=False):
                if x != y:
                    return f"SKU {key}: " + _first_field(x, y, name)
            return f"SKU {key}: core records differ in length"
        at = next((i for i, (x, y) in enumerate(zip(rm, gm, strict=False)) if x != y), min(len(rm), len(gm)))
        return f"SKU {key}: model bytes differ from byte {at} (of {len(rm)} / {len(gm)})"
    return None


def check_against_reference(kafka: str, redis_url: str, s: Settings, sc: Scenario, fault: str, seed: int,
                            started: float) -> None:
    """Compare a finished run with the reference; record the outcome; fail on any difference."""
    diff = first_difference(sc.state, state_parts(redis_url, s.redis_key_prefix))
    if diff is None:
        got = decisions_of(kafka, s.reorders_topic)
        if got != sc.decisions:
            missing = sorted(set(sc.decisions) - set(got))
            extra = sorted(set(got) - set(sc.decisions))
            changed = sorted(k for k in set(got) & set(sc.decisions) if got[k] != sc.decisions[k])
            diff = f"decisions differ: missing {missing[:3]}, unexpected {extra[:3]}, changed {changed[:3]}"
    record(fault, seed, diff, time.monotonic() - started)
    assert diff is None, f"{fault} seed {seed}: {diff}"


def record(fault: str, seed: int, mismatch: str | None, seconds: float) -> None:
    """Append a run's outcome to ``RESTOCK_SOAK_REPORT`` (when set)."""
    if not REPORT:
        return
    Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
    with open(REPORT, "a") as f:
        f.write(json.dumps({"fault": fault, "seed": seed, "mismatch": mismatch, "seconds": round(seconds, 1)})
                + "\n")


def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll ``predicate`` until true or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def progress_total(redis_url: str, prefix: str) -> int:
    """Sum of the durable progress offsets under ``prefix`` (grows as batches become durable)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        total = 0
        for p in range(PARTITIONS):
            total += sum(int(v) + 1 for v in client.hgetall(f"{prefix}:partition:{p}:progress").values())
        return total
    finally:
        client.close()
