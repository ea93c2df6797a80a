"""The reference scenario of the reliability tests (issue #9) and its comparison.

A fixed input, a real slice of Online Retail orders plus inventory events on topics with 4
partitions, processed by one worker without interruption gives the reference: every SKU's state
in Redis (forecaster, open period, inventory position, fences) and the set of decision events on
``reorders``. Every faulted run consumes the same topics with its own consumer group, Redis key
prefix and ``reorders`` topic, and must end with the same state, byte for byte, and the same
distinct decision ids and payloads.

The input interleaves the two topics in event time on the same partitions: per SKU an opening
``StockSnapshot`` at the second of its first order, weekly receipts, receipts at exactly the
second of every 10th order, damage adjustments and monthly recounts (:func:`build_input`). Kafka
orders records within a partition, not across the ``orders`` and ``inventory`` topics, so the
worker merges them with :class:`agents.alignment.EventTimeAligner`: per partition number, by
``(event time, topic rank, offset)`` (inventory before orders at equal event time), releasing a
record only when every input topic-partition has a queued record or has been read up to its high
watermark. With the whole input on the broker before any worker starts, the order in which events
are applied is then a function of the per-topic-partition sequences alone, whatever the fetch
timing, the batch boundaries, the restarts or the rebalances, and every faulted run has to end
byte-identical to the reference. The ``orders`` partitions start with :data:`PADDING` malformed
records (event time ``-inf`` for the aligner), which go to the dead-letter topic under every fault
too. Any difference from the reference is a real loss, double count or reordering.

Knobs (environment): ``RESTOCK_FAULT_SKUS`` / ``RESTOCK_FAULT_END`` the size of the scenario
(40 SKUs to 2011-03-15; ``make soak-large``: 2,000 SKUs to 2011-02-01) and
``RESTOCK_FAULT_WAIT_SCALE`` a factor on every wait and timeout,
``RESTOCK_FAULT_SEEDS`` seeds per fault (3 here, 20 in ``make soak``),
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
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import msgpack

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
#: size of the scenario: the top ``RESTOCK_FAULT_SKUS`` SKUs from 2011-01-04 to
#: ``RESTOCK_FAULT_END`` (40 SKUs to 2011-03-15 in make test and make soak; ``make soak-large``
#: runs 2,000 SKUs to 2011-02-01), and a factor on every wait and timeout of the fault tests
SCENARIO_SKUS = int(os.environ.get("RESTOCK_FAULT_SKUS", "40"))
SCENARIO_END = date.fromisoformat(os.environ.get("RESTOCK_FAULT_END", "2011-03-15"))
WAIT_SCALE = float(os.environ.get("RESTOCK_FAULT_WAIT_SCALE", "1"))


def scaled(seconds: float) -> float:
    """A wait or timeout of the fault tests, times ``RESTOCK_FAULT_WAIT_SCALE``."""
    return seconds * WAIT_SCALE

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


def build_input(skus: int = 40, start: date = date(2011, 1, 4), end: date = date(2011, 3, 15)
                ) -> tuple[list[OrderPlaced], list[Any]]:
    """Orders of the top ``skus`` SKUs between ``start`` and ``end``, and their inventory events.

    Per SKU (deterministic, interleaved with its orders in event time on the same partition):

    * an opening ``StockSnapshot`` at the SKU's first order, same second (the tie rule: the
      count includes that order) of about two weeks of its demand;
    * a ``StockReceived`` of about a week of demand every 7 days at 08:00, and one at exactly
      the time of every 10th order of the SKU (the tie rule: the receipt serves the order);
    * a ``StockAdjusted`` (damage, -1 to -3 units) every 11 days at 15:30;
    * a recount ``StockSnapshot`` every 30 days at 18:00 (on_hand from the running balance).

    Returned in event-time order (stable), so every topic-partition is in event-time order.
    """
    sales = load(DEFAULT_DATA, skus=skus, start=start, end=end).sales
    orders = [OrderPlaced(event_id=f"{r.order_id}:{r.sku}:{i}", occurred_at=r.occurred_at,
                          sku=r.sku, location=r.location, order_id=r.order_id,
                          quantity=r.quantity, unit_price=r.unit_price or 0.0)
              for i, r in enumerate(sales)]
    by_sku: dict[tuple[str, str], list[OrderPlaced]] = {}
    for o in orders:
        by_sku.setdefault((o.sku, o.location), []).append(o)
    days = max(1, (end - start).days)
    inventory: list[Any] = []
    for (sku, loc), mine in sorted(by_sku.items()):
        mine.sort(key=lambda o: o.occurred_at)
        weekly = max(1, round(7 * sum(o.quantity for o in mine) / days))
        first = mine[0].occurred_at
        ev: list[Any] = [StockSnapshot(event_id=f"{sku}@{loc}-open", occurred_at=first, sku=sku,
                                       location=loc, on_hand=2 * weekly)]
        day0 = datetime.combine(first.date(), dt_time(8), tzinfo=UTC)
        k = 1
        while day0 + timedelta(days=7 * k) < mine[-1].occurred_at:
            ev.append(StockReceived(event_id=f"{sku}@{loc}-rcv-w{k}",
                                    occurred_at=day0 + timedelta(days=7 * k),
                                    sku=sku, location=loc, quantity=weekly))
            k += 1
        for j, o in enumerate(mine[10::10]):
            ev.append(StockReceived(event_id=f"{sku}@{loc}-rcv-t{j}", occurred_at=o.occurred_at, sku=sku,
                                    location=loc, quantity=max(1, o.quantity)))
        k = 1
        while day0 + timedelta(days=11 * k, hours=7, minutes=30) < mine[-1].occurred_at:
            ev.append(StockAdjusted(event_id=f"{sku}@{loc}-adj-{k}",
                                    occurred_at=day0 + timedelta(days=11 * k, hours=7, minutes=30),
                                    sku=sku, location=loc, delta=-(1 + k % 3), reason="damage"))
            k += 1
        k = 1
        while day0 + timedelta(days=30 * k, hours=10) < mine[-1].occurred_at:
            at = day0 + timedelta(days=30 * k, hours=10)
            moved = sum(e.quantity for e in ev if isinstance(e, StockReceived) and e.occurred_at <= at)
            moved += sum(e.delta for e in ev if isinstance(e, StockAdjusted) and e.occurred_at <= at)
            sold = sum(o.quantity for o in mine if o.occurred_at <= at)
            ev.append(StockSnapshot(event_id=f"{sku}@{loc}-count-{k}", occurred_at=at, sku=sku, location=loc,
                                    on_hand=max(0, 2 * weekly + moved - sold)))
            k += 1
        inventory += ev
    inventory.sort(key=lambda e: e.occurred_at)
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
    orders, inventory = build_input(SCENARIO_SKUS, end=SCENARIO_END)
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
    return store.read_parts(store.keys())


def decisions_of(kafka: str, topic: str) -> dict[str, bytes]:
    """Distinct decision ids on ``topic`` and their payloads (consumers dedupe on the id)."""
    return {decode_decision(m.value).event_id: m.value
            for m in read_all(kafka, topic, PARTITIONS, idle_s=1.0)}


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
    if diff is not None:  # say whether the aligner fell back to processing time in this run
        tag = s.app_id.removeprefix("restock-").removesuffix(f"-{sc.tmp.name}")
        forced = [p.name for p in sorted(sc.tmp.glob(f"{tag}*.log"))
                  if "released by processing time" in p.read_text(errors="replace")]
        if forced:
            diff += f" (the aligner released by processing time in {forced})"
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
    store = RedisStateStore.from_url(redis_url, prefix)
    try:
        return sum(o + 1 for o in store.read_progress(range(PARTITIONS)).values())
    finally:
        store.client.close()
