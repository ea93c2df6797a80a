"""One owner per SKU, enforced on the real broker (issue #18, 1).

Two copies of the same input: the reference topics hold the valid events plus malformed
placeholders (``{not json``, never applied) at some positions; the "bad" topics hold, at exactly
those positions, well-formed events that must never be applied: ``StockSnapshot`` and
``OrderPlaced`` records without a key, and records whose key belongs to another partition than
the one they were written to (an explicit wrong partition), dated days ahead so that an applied
one would overwrite stock, advance the partition's watermark and make the SKU's later orders
late. The reference runs on a second embedded broker with the same topic names: offsets and
topic names are then the same in both copies, so the states (whose fences name topic and offset)
and the decision ids (which name the triggering topic and offset) are comparable byte for byte.

The bad copy is processed, then Redis loses every key of the worker (the worker notices and
exits with :data:`streams.app.REDIS_REGRESSION_EXIT_CODE`), and a restarted worker rebuilds
from Kafka: the state, byte for byte, and the decision ids equal the reference run's, and every
bad record is on the dead-letter topic with stage ``missing_key`` or ``wrong_partition``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from agents.state import is_pool_key
from schemas.events import DeadLetter, OrderPlaced, StockSnapshot, encode_event
from streams.app import REDIS_REGRESSION_EXIT_CODE
from streams.clients import redis_client
from streams.kafka_admin import ensure_topics
from streams.partitioning import partition_for
from streams.redis_state import RedisStateStore
from streams.stack import KAFKA, LocalStack, free_port
from streams.workerproc import WorkerProcess, wait_caught_up

from .helpers import read_all
from .reliability import build_input, decisions_of, first_difference, settings_for, state_parts, wait_for

PARTITIONS = 4
EVERY = 9  # a bad record (or its placeholder) after every 9th valid record of a topic-partition


def _bad(ev: Any, i: int, home: int) -> tuple[bytes | None, bytes, int]:
    """A valid-looking event that must not be applied: ``(key, value, partition)``."""
    later = ev.occurred_at + timedelta(days=5)
    if isinstance(ev, OrderPlaced):
        bad: Any = ev.model_copy(update={"event_id": f"bad-{i}", "occurred_at": later, "quantity": 500})
    else:
        bad = StockSnapshot(event_id=f"bad-{i}", occurred_at=later, sku=ev.sku, location=ev.location,
                            on_hand=100_000)
    if i % 2:
        return None, encode_event(bad), home  # keyless, on the SKU's own partition
    return ev.key.encode(), encode_event(bad), (home + 1 + i % 3) % PARTITIONS  # explicit wrong partition


def _publish(kafka: str, topics: dict[str, str], events: dict[str, list[Any]], with_bad: bool
             ) -> tuple[dict[tuple[str, int], int], int]:
    """Publish per partition, in order, with a bad record or a placeholder after every EVERY-th."""
    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=5)
    futs, inserted = [], 0
    try:
        for role, evs in events.items():
            count: dict[int, int] = {}
            for ev in evs:
                key = ev.key.encode()
                home = partition_for(key, PARTITIONS)
                futs.append(producer.send(topics[role], key=key, value=encode_event(ev), partition=home))
                count[home] = count.get(home, 0) + 1
                if count[home] % EVERY == 0:
                    inserted += 1
                    k, v, p = _bad(ev, inserted, home)
                    assert p == home or partition_for(key, PARTITIONS) != p
                    if not with_bad:  # a placeholder at the same position, never applied
                        k, v = None if p != home else key, b"{not json"
                    futs.append(producer.send(topics[role], key=k, value=v, partition=p))
        producer.flush()
        targets: dict[tuple[str, int], int] = {}
        for f in futs:
            md = f.get(timeout=30)
            targets[(md.topic, md.partition)] = max(targets.get((md.topic, md.partition), 0), md.offset + 1)
        return targets, inserted
    finally:
        producer.close()


def _topics(kafka: str, tmp: Path) -> dict[str, str]:
    topics = {role: f"own-{role}-{tmp.name}" for role in ("orders", "inventory", "promotions", "dlq")}
    ensure_topics(kafka, {t: PARTITIONS for t in topics.values()})
    return topics


@pytest.fixture
def reference_kafka(tmp_path: Path) -> Iterator[str]:
    """A second embedded broker (same topic names as the test's, no bad records on it)."""
    stack = LocalStack(tmp_path / "ref-stack", kafka_port=free_port(), redis_port=free_port(),
                       die_with_parent=True)
    stack.up(which=[KAFKA])
    try:
        yield stack.kafka_bootstrap
    finally:
        stack.down(which=[KAFKA])


def _progress_reached(redis_url: str, prefix: str, targets: dict[tuple[str, int], int]) -> bool:
    have = RedisStateStore.from_url(redis_url, prefix).read_progress(range(PARTITIONS))
    return all(have.get(tp, -1) >= t - 1 for tp, t in targets.items())


@pytest.mark.timeout(600)
def test_keyless_and_misrouted_events_are_dead_lettered_and_never_applied_even_after_a_rebuild(
        kafka_bootstrap: str, redis_url: str, reference_kafka: str, tmp_path: Path) -> None:
    orders, inventory = build_input(12, start=date(2011, 1, 4), end=date(2011, 2, 28))
    events = {"inventory": inventory, "orders": orders}

    ref_topics = _topics(reference_kafka, tmp_path)
    ref_targets, n_placeholders = _publish(reference_kafka, ref_topics, events, with_bad=False)
    ref = settings_for(reference_kafka, redis_url, ref_topics, "own-ref", tmp_path,
                       topic_partitions=PARTITIONS)
    with WorkerProcess(ref, tmp_path / "own-ref.log") as w0:
        w0.wait_ready()
        wait_caught_up(ref, ref_targets, timeout_s=180)
    ref_state = state_parts(redis_url, ref.redis_key_prefix)
    ref_decisions = decisions_of(reference_kafka, ref.reorders_topic)
    # 12 SKUs, and the pools of the partitions (the fill-rate controller counts every order)
    assert len([k for k in ref_state if not is_pool_key(k)]) == 12 and len(ref_decisions) >= 10, \
        "the reference decides"
    ref_letters = [DeadLetter.model_validate_json(m.value)
                   for m in read_all(reference_kafka, ref_topics["dlq"], PARTITIONS, idle_s=1.0)]

    topics = _topics(kafka_bootstrap, tmp_path)
    assert topics == ref_topics
    targets, n_bad = _publish(kafka_bootstrap, topics, events, with_bad=True)
    assert n_bad == n_placeholders >= 40 and targets == ref_targets
    s = settings_for(kafka_bootstrap, redis_url, topics, "own-bad", tmp_path, topic_partitions=PARTITIONS)
    w = WorkerProcess(s, tmp_path / "own-bad.log").start()
    try:
        w.wait_ready()
        wait_caught_up(s, targets, timeout_s=180)
        assert first_difference(ref_state, state_parts(redis_url, s.redis_key_prefix)) is None
        client = redis_client(redis_url)  # Redis loses every key of this worker
        client.delete(*client.scan_iter(match=f"{s.redis_key_prefix}:*", count=1000))
        client.close()
        assert w.proc is not None
        assert w.proc.wait(timeout=60) == REDIS_REGRESSION_EXIT_CODE, w.log_tail()
    finally:
        w.stop()
    with WorkerProcess(s, tmp_path / "own-bad-rebuild.log") as w2:
        w2.wait_ready()
        wait_for(lambda: _progress_reached(redis_url, s.redis_key_prefix, targets), 180, "the rebuild")
        wait_caught_up(s, targets, timeout_s=60)

    assert first_difference(ref_state, state_parts(redis_url, s.redis_key_prefix)) is None
    got = decisions_of(kafka_bootstrap, s.reorders_topic)
    assert set(got) == set(ref_decisions)
    assert got == ref_decisions  # same payloads too (explanations name the same triggers)
    letters = {d.dead_letter_id: d for d in (DeadLetter.model_validate_json(m.value) for m in
               read_all(kafka_bootstrap, s.dlq_topic, PARTITIONS, idle_s=1.0))}
    stages = [d.stage for d in letters.values()]
    assert stages.count("missing_key") + stages.count("wrong_partition") == n_bad
    assert stages.count("missing_key") == (n_bad + 1) // 2
    assert set(stages) <= {"missing_key", "wrong_partition", "late"}
    late = sorted((d.source_topic, d.partition, d.offset) for d in letters.values() if d.stage == "late")
    assert late == sorted((d.source_topic, d.partition, d.offset) for d in ref_letters if d.stage == "late")
    assert len(ref_letters) == n_placeholders + len(late)  # every placeholder
