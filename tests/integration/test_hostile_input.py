"""Hostile payloads through the real broker: the worker never crashes, nothing is lost.

Every message published is either applied to a SKU state (counted in its ``events`` counter)
or on the dead-letter topic with its original bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from schemas.events import DeadLetter
from streams.redis_state import RedisStateStore
from streams.settings import Settings
from streams.workerproc import WorkerProcess, wait_caught_up

from .helpers import publish, read_all, worker_settings

VALID = {
    "kind": "order_placed", "schema_version": 1, "event_id": "e", "occurred_at": "2011-03-07T10:00:00Z",
    "sku": "H1", "location": "W1", "order_id": "o", "quantity": 3, "unit_price": 1.5, "currency": "GBP",
}


def _mutate(field: str, value: object) -> bytes:
    d = dict(VALID)
    d[field] = value
    return json.dumps(d).encode()


hostile = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda s: s.encode("utf-8")),
    st.sampled_from([
        b"{not json", b"", b"null", b"[]", b'"a string"', b"{}",
        _mutate("quantity", -5), _mutate("quantity", 0), _mutate("quantity", 10**30),
        _mutate("quantity", "7"), _mutate("unit_price", "NaN"), _mutate("kind", "order_exploded"),
        _mutate("occurred_at", "2011-03-07T10:00:00"), _mutate("sku", "a@b"),
        json.dumps(VALID).replace('"unit_price": 1.5', '"unit_price": NaN').encode(),
        json.dumps(VALID).replace('"unit_price": 1.5', '"unit_price": Infinity').encode(),
        _mutate("event_id", "x" * 900_000),
        json.dumps({**VALID, "sku": "Ünïcode"}).encode("latin-1"),
    ]),
    st.integers(0, 10**6).map(lambda i: _mutate("event_id", f"ok-{i}")),  # valid orders
)


@pytest.fixture(scope="module")
def hostile_worker(kafka_bootstrap: str, redis_url: str, tmp_path_factory) -> Iterator[tuple[Settings, dict]]:
    from streams.kafka_admin import delete_topics, ensure_topics

    tmp = tmp_path_factory.mktemp("hostile")
    topics = {r: f"hostile-{r}-{tmp.name}" for r in ("orders", "inventory", "promotions", "reorders", "dlq")}
    ensure_topics(kafka_bootstrap, {t: 2 for t in topics.values()})
    s = worker_settings(kafka_bootstrap, redis_url, topics, f"hostile-{tmp.name}", Path(tmp),
                        topic_partitions=2)
    w = WorkerProcess(s, Path(tmp) / "worker.log").start()
    try:
        w.wait_ready()
        yield s, {"worker": w, "targets": {}, "published": 0}
    finally:
        w.stop()
        delete_topics(kafka_bootstrap, list(topics.values()))


@pytest.mark.timeout(300)
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          phases=[Phase.explicit, Phase.generate])  # no shrinking: each example is a broker round trip
@given(payloads=st.lists(st.tuples(hostile, st.sampled_from([b"H1@W1", b"wrong@key", None])),
                         min_size=5, max_size=25))
@example(payloads=[(_mutate("event_id", "x" * 900_000), b"H1@W1"), (b"\xff\xfe", None),
                   (_mutate("event_id", "fine"), b"H1@W1")])
def test_every_hostile_message_is_applied_or_dead_lettered(hostile_worker, payloads) -> None:
    s, ctx = hostile_worker
    targets = publish(s.kafka_bootstrap_servers, s.orders_topic, [(k, v) for v, k in payloads], raw=True)
    for k, v in targets.items():
        ctx["targets"][k] = max(ctx["targets"].get(k, 0), v)
    ctx["published"] += len(payloads)
    wait_caught_up(s, ctx["targets"], timeout_s=60)
    w = ctx["worker"]
    assert w.proc.poll() is None, w.log_tail()

    store = RedisStateStore.from_url(s.redis_dsn, s.redis_key_prefix)
    applied = sum(st_.counters.get("events", 0) for st_ in store.load_many(store.keys()).values())
    letters = [DeadLetter.model_validate_json(m.value)
               for m in read_all(s.kafka_bootstrap_servers, s.dlq_topic, 2, idle_s=0.8)]
    positions = {(d.source_topic, d.partition, d.offset) for d in letters}
    assert len(positions) == len(letters)  # one letter per failed message
    assert applied + len(letters) == ctx["published"]
    assert all(d.stage in {"decode", "validate", "late", "missing_key"} for d in letters)
    assert all((d.stage == "missing_key") == (d.original_key() is None) for d in letters)
    assert all(len(d.original_value()) <= 512 * 1024 for d in letters)
