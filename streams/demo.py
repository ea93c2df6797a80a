"""``restock demo``: replay real orders through Kafka, a restock worker and Redis, closed loop.

What runs (all on loopback, embedded stack unless ``KAFKA_BOOTSTRAP_SERVERS``/``REDIS_URL``):

* a **restock worker** in its own process (``restock worker``), exactly as in production;
* the closed loop of :mod:`streams.closed_loop` (storefront replayer, warehouse simulator,
  baseline, accounting) publishing through :class:`KafkaTransport`.

Determinism: each phase of a period is released only when the worker has committed every event
published so far (consumer lag 0 on the input topics), and restock's states are then read from
Redis, so two runs with the same input give the same KPIs, and the same KPIs as ``restock
simulate`` (the in-process transport; a test holds them equal). Restock's KPIs of a period are
computed from that period's state bytes in one background thread (in period order), so
decoding the models overlaps the worker's next period.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from agents.state import SkuState, review_in_progress
from schemas.codec import decode_decision, encode_event
from schemas.common import TopicRole
from streams.closed_loop import DemoOptions, in_production_order, progress_display, run_closed_loop
from streams.panel import load_panel
from streams.settings import Settings
from streams.workerproc import WorkerProcess, free_port

__all__ = ["DemoOptions", "KafkaTransport", "print_kpis", "run_demo"]


class _Lockstep:
    """Publish events and wait until the worker group has committed all of them."""

    def __init__(self, producer: Any, admin: Any, group: str) -> None:
        self.producer = producer
        self.admin = admin
        self.group = group
        self.target: dict[tuple[str, int], int] = {}
        self.published = 0
        self.lag_messages = 0  # consumer lag seen when the last wait began

    async def publish(self, topic: str, events: Iterable[Any]) -> None:
        futs = []
        for ev in events:
            futs.append(await self.producer.send(topic, key=ev.key.encode(), value=encode_event(ev)))
        for md in await asyncio.gather(*futs):
            k = (md.topic, md.partition)
            self.target[k] = max(self.target.get(k, 0), md.offset + 1)
        self.published += len(futs)

    async def wait_caught_up(self, timeout_s: float = 120.0) -> None:
        from kafka import TopicPartition

        deadline = time.monotonic() + timeout_s
        first = True
        while True:
            offsets = await asyncio.to_thread(self.admin.list_group_offsets, self.group)
            got = offsets.get(self.group, {}) if isinstance(offsets, dict) else {}
            have = {k: (om.offset if (om := got.get(TopicPartition(*k))) is not None else 0)
                    for k in self.target}
            behind = [k for k, want in self.target.items() if have[k] < want]
            if first:
                self.lag_messages = sum(max(0, want - have[k]) for k, want in self.target.items())
                first = False
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker did not catch up within {timeout_s:.0f}s: {behind[:4]}")
            await asyncio.sleep(0.02)


class KafkaTransport:
    """The production path: topics on a broker, a worker process, states in Redis."""

    def __init__(self, settings: Settings, lock: _Lockstep, store: Any, consumer: Any) -> None:
        self.settings = settings
        self.lock = lock
        self.store = store
        self.consumer = consumer
        self.seen: dict[str, Any] = {}
        self._topics: dict[TopicRole, str] = {"orders": settings.orders_topic,
                                         "inventory": settings.inventory_topic,
                                         "promotions": settings.promotions_topic}

    @property
    def published(self) -> int:
        """Events published so far."""
        return self.lock.published

    @property
    def lag_messages(self) -> int:
        """Consumer lag seen when the last wait began."""
        return self.lock.lag_messages

    async def publish(self, role: TopicRole, events: list[Any]) -> None:
        """Publish and wait until the worker group has committed them."""
        await self.lock.publish(self._topics[role], events)
        await self.lock.wait_caught_up()

    async def end_period(self, keys: list[str]) -> tuple[Callable[[], dict[str, SkuState]], list[Any]]:
        """States' bytes from Redis (decoded by the thunk) and the decisions they counted.

        First waits until the worker has finished the period reviews the period started (a
        review that spans batches is recorded on its partition's pseudo-state until it is
        done), as ``restock simulate`` finishes them before reading its states.
        """
        await _wait_reviewed(self.store, self.settings.topic_partitions)
        parts = self.store.read_parts(keys)
        expected = 0
        for core, _ in parts.values():
            counters = SkuState.decode_counters(core)
            expected += counters.get("reorders", 0) + counters.get("overstocks", 0)
        new = await _collect_decisions(self.consumer, self.seen, expected)

        def states() -> dict[str, SkuState]:
            return {k: SkuState.decode_parts(core, model) for k, (core, model) in parts.items()}

        return states, new

    def final_states(self, keys: list[str]) -> dict[str, SkuState]:
        """States in Redis at the end of the run."""
        return self.store.load_many(keys)  # type: ignore[no-any-return]


async def _wait_reviewed(store: Any, partitions: int, timeout_s: float = 300.0) -> None:
    """Wait until no partition's pseudo-state records a period review in progress."""
    deadline = time.monotonic() + timeout_s
    while review_in_progress(store, partitions):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker's period reviews did not finish within {timeout_s:.0f} s")
        await asyncio.sleep(0.02)


async def _run(opts: DemoOptions, kafka: str, redis_url: str) -> dict[str, Any]:
    from streams.clients import (
        KafkaSecurity,
        aiokafka_consumer,
        aiokafka_producer,
        kafka_admin,
        redis_client_for,
    )
    from streams.kafka_admin import ensure_topics
    from streams.redis_state import RedisStateStore
    from streams.topics import all_topics, topic_configs

    # Every run gets fresh topics, consumer group and Redis namespace (a label may prefix them).
    run_id = f"{opts.run_id}-{uuid.uuid4().hex[:8]}" if opts.run_id else uuid.uuid4().hex[:8]
    base = opts.settings or Settings()
    settings = base.model_copy(update={
        "kafka_bootstrap_servers": kafka,
        "app_id": f"restock-demo-{run_id}",
        "orders_topic": f"demo-{run_id}.orders",
        "inventory_topic": f"demo-{run_id}.inventory",
        "promotions_topic": f"demo-{run_id}.promotions",
        "policies_topic": f"demo-{run_id}.policies",
        "reorders_topic": f"demo-{run_id}.reorders",
        "dlq_topic": f"demo-{run_id}.dlq",
        "redis_key_prefix": f"restock-demo-{run_id}",
        "freq": opts.freq,
        "allowed_lateness_s": 0.0,
        "flush_interval_s": 0.03,
        "commit_interval_s": 0.03,
        "session_timeout_s": 4.0,
        "heartbeat_interval_s": 0.5,
        "rebalance_timeout_s": 1.0,
        "unmet_demand": opts.unmet_demand,
        "web_port": free_port(),
        "metrics_port": 0,
        "worker_data_dir": Path(f".restock/demo-{run_id}"),
    })
    panel = load_panel(opts.data, opts.fmt, opts.freq, opts.skus, opts.start, opts.end,
                       opts.warmup_fraction)

    # --- services: topics, worker process ------------------------------------------------
    security = KafkaSecurity.from_settings(settings)
    ensure_topics(kafka, all_topics(settings), security=security, configs=topic_configs(settings))
    settings = settings.model_copy(update={"redis_url": SecretStr(redis_url)})
    worker = WorkerProcess(settings, Path(".restock") / f"demo-{run_id}-worker.log").start()
    rclient = redis_client_for(settings)
    store = RedisStateStore(rclient, settings.redis_key_prefix)
    producer = aiokafka_producer(kafka, security, linger_ms=5, max_batch_size=1 << 20)
    decisions_consumer = aiokafka_consumer(bootstrap=kafka, security=security, enable_auto_commit=False,
                                          auto_offset_reset="earliest")
    admin = kafka_admin(kafka, security)
    accounting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-accounting")
    try:
        await asyncio.to_thread(worker.wait_ready)
        await producer.start()
        await decisions_consumer.start()
        decisions_consumer.assign([_atp(settings.reorders_topic, p)
                                   for p in range(settings.topic_partitions)])
        transport = KafkaTransport(settings, _Lockstep(producer, admin, settings.app_id), store,
                                   decisions_consumer)
        with progress_display(opts.progress) as progress:
            return await run_closed_loop(
                opts, settings, panel, transport, progress=progress,
                account_async=accounting.submit,
                run_extra={"run_id": run_id,
                           "topics": {"orders": settings.orders_topic,
                                      "inventory": settings.inventory_topic,
                                      "reorders": settings.reorders_topic}})
    finally:
        accounting.shutdown(wait=True, cancel_futures=True)
        worker.stop()
        shutil.rmtree(settings.worker_data_dir, ignore_errors=True)
        await producer.stop()
        await decisions_consumer.stop()
        admin.close()
        rclient.close()


def _atp(topic: str, partition: int) -> Any:
    from aiokafka import TopicPartition

    return TopicPartition(topic, partition)


async def _collect_decisions(consumer: Any, seen: dict[str, Any], expected: int,
                             timeout_s: float = 30.0) -> list[Any]:
    """Read ``reorders`` until the states' decision counters are all accounted for."""
    new: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(seen) < expected:
        batch = await consumer.getmany(timeout_ms=50)
        for msgs in batch.values():
            for m in msgs:
                d = decode_decision(m.value)
                if d.event_id not in seen:
                    seen[d.event_id] = d
                    new.append(d)
        if time.monotonic() > deadline:
            raise TimeoutError(f"expected {expected} decisions, saw {len(seen)}")
    return in_production_order(new)


def run_demo(opts: DemoOptions, kafka: str | None = None, redis_url: str | None = None) -> dict[str, Any]:
    """Run the closed-loop demo (see module docstring) and return the KPI dictionary.

    ``kafka`` / ``redis_url`` point it at running services; by default it uses
    ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` or starts the embedded stack.

    Raises
    ------
    TimeoutError
        When the worker does not become ready or does not catch up.
    """
    from streams.stack import services

    if kafka and redis_url:
        return asyncio.run(_run(opts, kafka, redis_url))
    settings = opts.settings or Settings()
    kafka_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("RESTOCK_KAFKA_BOOTSTRAP_SERVERS")
    redis_env = os.environ.get("REDIS_URL") or os.environ.get("RESTOCK_REDIS_URL")
    with services(kafka_env, redis_env, settings.stack_dir, settings.kafka_port, settings.redis_port) as svc:
        return asyncio.run(_run(opts, svc.kafka_bootstrap, svc.redis_url))


def print_kpis(result: dict[str, Any]) -> None:
    """Print restock's KPIs next to the baseline's."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="restock vs static (s,S) baseline, evaluation window")
    table.add_column("KPI")
    table.add_column("restock", justify="right")
    table.add_column("baseline", justify="right")
    for k in result["restock"]:
        table.add_row(k, str(result["restock"][k]), str(result["baseline"][k]))
    console = Console()
    console.print(table)
    run = result["run"]
    console.print(f"{run['events_published']} events in {run['wall_time_s']} s "
                  f"({run['events_per_s']} events/s), {run['skus']} SKUs, {run['decisions']} decisions")

