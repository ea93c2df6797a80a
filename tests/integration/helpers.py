"""Shared helpers for integration tests: publish events, run workers, read topics."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from schemas.events import OrderPlaced, StockSnapshot, encode_event
from streams.config import run_settings
from streams.ports import free_port
from streams.settings import Settings

T0 = datetime(2011, 3, 7, tzinfo=UTC)  # a Monday


def worker_settings(kafka: str, redis_url: str, topics: dict[str, str], tag: str, tmp: Path,
                    **overrides: Any) -> Settings:
    """Settings of a test worker: unique topics, group, Redis prefix and ports."""
    base: dict[str, Any] = dict(
        kafka_bootstrap_servers=kafka,
        redis_url=redis_url,
        redis_key_prefix=f"rs-{tag}",
        metrics_port=free_port(),
        flush_interval_s=0.05,
        commit_interval_s=0.05,
        allowed_lateness_s=0.0,
    )
    base.update(overrides)
    return run_settings(Settings(), run_id=f"restock-{tag}", work_dir=tmp, topics=topics, **base)


def publish(kafka: str, topic: str, events: Iterable[Any], raw: bool = False) -> dict[tuple[str, int], int]:
    """Produce events keyed by ``sku@location`` (or raw ``(key, value)`` pairs); return targets."""
    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=5)
    futs = []
    try:
        for ev in events:
            if raw:
                key, value = ev
                futs.append(producer.send(topic, key=key, value=value))
            else:
                futs.append(producer.send(topic, key=ev.key.encode(), value=encode_event(ev)))
        producer.flush()
        targets: dict[tuple[str, int], int] = {}
        for f in futs:
            md = f.get(timeout=30)
            targets[(md.topic, md.partition)] = max(targets.get((md.topic, md.partition), 0), md.offset + 1)
        return targets
    finally:
        producer.close()


def read_all(kafka: str, topic: str, partitions: int, expect: int | None = None,
             idle_s: float = 1.5, timeout_s: float = 30.0) -> list[Any]:
    """Read a topic from the beginning (manual assignment) until idle or ``expect`` messages."""
    consumer = KafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False,
                             consumer_timeout_ms=int(idle_s * 1000))
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = list(consumer)
            out.extend(got)
            if expect is None or len(out) >= expect:
                break
        return out
    finally:
        consumer.close()


def steady_orders(sku: str, days: int, per_day: int, location: str = "W1",
                  start: datetime = T0, hour: int = 10) -> list[OrderPlaced]:
    """One order of ``per_day`` units per day at ``hour`` for ``days`` days."""
    return [
        OrderPlaced(event_id=f"{sku}-o{d}", occurred_at=start + timedelta(days=d, hours=hour),
                    sku=sku, location=location, order_id=f"{sku}-{d}", quantity=per_day,
                    unit_price=2.5)
        for d in range(days)
    ]


def snapshot(sku: str, on_hand: int, at: datetime, location: str = "W1") -> StockSnapshot:
    """A StockSnapshot event."""
    return StockSnapshot(event_id=f"{sku}-snap-{int(at.timestamp())}", occurred_at=at, sku=sku,
                         location=location, on_hand=on_hand)


def ready_status(port: int) -> tuple[int, dict[str, Any]]:
    """``/health/ready`` of a worker's web server on ``port``: HTTP status and JSON body."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
