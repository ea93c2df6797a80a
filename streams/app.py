"""The Faust application of a restock worker: one agent, ``apply_events``, and its timers and pages.

This module is the adapter between Faust and the batch protocol of
:class:`streams.committer.BatchCommitter` (align -> process -> produce -> save -> ack; read its
module docstring for the guarantees). It only translates:

* ``stream.noack_take(flush_every_events, within=flush_interval_s)`` batches into
  :meth:`~streams.committer.BatchCommitter.submit` (events are acked by the committer, after
  their state is durable; ``take_events`` would ack in a ``finally`` block, so a batch cancelled
  at shutdown would be committed unapplied);
* a timer every ``flush_interval_s`` into :meth:`~streams.committer.BatchCommitter.tick`;
* partition revocation / assignment into :meth:`~streams.committer.BatchCommitter.revoke` /
  :meth:`~streams.committer.BatchCommitter.assign`, and Faust's seek to the committed offsets
  into :meth:`~streams.committer.BatchCommitter.rewind` (through :mod:`streams.faust_compat`,
  the one module that touches Faust internals);
* after each batch, :meth:`streams.gc_tuning.GcTuning.after_batch` (the worker's
  ``gc_freeze`` / ``gc_gen0_threshold`` settings, applied at start-up: this process only);
* a timer every ``progress_check_interval_s`` into
  :meth:`~streams.committer.BatchCommitter.check_progress`, one every ``lag_refresh_interval_s``
  into the consumer-lag gauges, and ``/health/live`` / ``/health/ready`` (:mod:`streams.health`).

When the state store lost writes the worker exits with :data:`REDIS_REGRESSION_EXIT_CODE`
without committing, so that its supervisor restarts it and the assignment rewinds; an injected
fault (tests only) exits with :data:`FAULT_EXIT_CODE` at the configured phase of a batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
import redis
from faust.types import TP

from agents.alignment import EventTimeAligner, rank_topics
from agents.pipeline import Pipeline, Record
from agents.processor import SkuProcessor
from agents.state import StateRegressionError, StateStore, TopicPartition
from streams import faust_compat, metrics
from streams.clients import KafkaProbe, KafkaSecurity, redis_client_for
from streams.committer import BatchCommitter
from streams.config import processor_config
from streams.gc_tuning import GcTuning
from streams.health import DependencyProbe, readiness
from streams.partitioning import partition_for
from streams.redis_state import RedisStateStore
from streams.settings import Settings
from streams.topics import input_roles

log = logging.getLogger(__name__)

FAULT_EXIT_CODE = 86  # exit code of an injected fault (tests only)
REDIS_REGRESSION_EXIT_CODE = 75  # EX_TEMPFAIL: Redis lost writes; restart to rebuild from Kafka


def faust_app_kwargs(settings: Settings) -> dict[str, Any]:
    """The ``faust.App`` keyword arguments of a restock worker, all from ``settings``.

    Passed explicitly so that Faust's own environment variables are never a second source of
    configuration. The benchmark's empty-agent baseline (``bench/empty_worker.py``) builds its
    app from the same arguments, so the framework ceiling it measures is the worker's.
    """
    return dict(
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=settings.flush_every_events,
        broker_commit_interval=settings.commit_interval_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        datadir=str(settings.worker_data_dir),
        producer_linger_ms=5,
        stream_wait_empty=True,
        broker_credentials=KafkaSecurity.from_settings(settings).faust_credentials(),
    )


@dataclass
class FaustTransport:
    """:class:`streams.committer.Transport` over a Faust app (handles are Faust events).

    ``stream`` is the agent's stream (acks go through it); set when the agent starts.
    """

    app: faust.App
    reorders: Any
    dlq: Any
    stream: Any = None

    async def produce(self, decisions: list[tuple[bytes, bytes]],
                      dead_letters: list[tuple[bytes, bytes]]) -> None:
        """Send everything without awaiting each send, then await all deliveries together."""
        futures = [await self.reorders.send(key=k, value=v) for k, v in decisions]
        futures += [await self.dlq.send(key=k, value=v) for k, v in dead_letters]
        if futures:
            await asyncio.gather(*futures)

    async def ack(self, handles: Sequence[Any]) -> None:
        """Ack the events through the agent's stream (Faust commits acked offsets)."""
        for event in handles:
            await self.stream.ack(event)

    def highwater(self, tp: TopicPartition) -> int | None:
        """The consumer's high watermark of ``tp`` (None when not assigned or unknown)."""
        try:
            return self.app.consumer.highwater(TP(tp[0], tp[1]))
        except Exception:  # noqa: BLE001 - not assigned (any more) or no consumer: unknown
            return None

    def hold(self, handles: Sequence[Any]) -> None:
        """Take the events' messages out of Faust's in-flight set."""
        faust_compat.hold(self.app.consumer, [e.message for e in handles])

    def unhold(self, handles: Sequence[Any]) -> None:
        """Put the events' messages back into Faust's in-flight set."""
        faust_compat.unhold(self.app.consumer, [e.message for e in handles])


def to_record(event: Any) -> Record:
    """The transport-free :class:`agents.pipeline.Record` of a Faust event."""
    m = event.message
    return Record(m.topic, m.partition, m.offset, m.key, m.value if m.value is not None else b"",
                  m.timestamp and int(m.timestamp * 1000))


def create_app(settings: Settings, *, store: StateStore | None = None,
               input_partitions: int | None = None) -> faust.App:
    """Build the Faust app with the ``apply_events`` agent (values passed explicitly).

    Parameters
    ----------
    settings : Settings
        Everything: broker, topics, Redis, batching, alignment, policy.
    store : StateStore, optional
        Where states live (default: Redis at ``settings.redis_url``).
    input_partitions : int, optional
        The input topics' actual partition count (default ``settings.topic_partitions``):
        records off their key's partition are dead-lettered (``wrong_partition``).

    Returns
    -------
    faust.App
        Ready for ``faust.worker.Worker``.

    Raises
    ------
    ValueError
        When the policy overrides file is invalid. Redis is contacted lazily, on assignment.
    """
    faust_compat.limit_fetch_wait(settings.fetch_max_wait_ms)
    gc_tuning = GcTuning(freeze=settings.gc_freeze, gen0_threshold=settings.gc_gen0_threshold)
    gc_tuning.apply()
    extra: dict[str, Any] = {}
    if settings.log_json:
        from streams.logs import JsonFormatter

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.setLevel(logging.INFO)
        extra["loghandlers"] = [handler]
    app = faust.App(settings.app_id, **faust_app_kwargs(settings), **extra)
    roles = input_roles(settings)
    inputs = app.topic(*roles, key_serializer="raw", value_serializer="raw")
    transport = FaustTransport(
        app,
        reorders=app.topic(settings.reorders_topic, key_serializer="raw", value_serializer="raw"),
        dlq=app.topic(settings.dlq_topic, key_serializer="raw", value_serializer="raw"),
    )
    state_store = store or RedisStateStore(
        redis_client_for(settings, socket_timeout=10, socket_connect_timeout=5),
        settings.redis_key_prefix, settings.cold_sku_ttl_s)
    pipeline = Pipeline(SkuProcessor(processor_config(settings)), state_store, roles,
                        cache_size=settings.hot_sku_cache_size, partition_for=partition_for,
                        partitions=input_partitions or settings.topic_partitions,
                        review_chunk_skus=settings.review_chunk_skus)
    aligner: EventTimeAligner[Any] = EventTimeAligner(
        rank_topics(roles), idle_s=settings.alignment_idle_s, max_buffered=settings.alignment_max_buffered,
        owned=pipeline.owns)

    def regressed(exc: StateRegressionError) -> None:
        os._exit(REDIS_REGRESSION_EXIT_CODE)

    def fault(point: str, batch: int) -> None:
        """Test hook: die like ``kill -9`` at ``point`` of batch ``fault_after_batches``."""
        if settings.fault_point == point and batch == settings.fault_after_batches:
            log.warning("fault injection: exiting at %s of batch %d", point, batch)
            os._exit(FAULT_EXIT_CODE)

    committer: BatchCommitter[Any] = BatchCommitter(
        pipeline, state_store, transport, aligner,
        # a cluster with no reachable node raises RedisClusterException, not a RedisError
        store_errors=(redis.RedisError, redis.exceptions.RedisClusterException),
        on_regression=regressed, on_phase=fault if settings.fault_point else None,
        batch_delay_s=settings.fault_batch_delay_s)

    @app.agent(inputs, name="apply_events")
    async def apply_events(stream: faust.StreamT) -> None:
        transport.stream = stream
        async for events in stream.noack_take(settings.flush_every_events,
                                              within=settings.flush_interval_s):
            await committer.submit([(to_record(e), e) for e in events], time.monotonic())
            gc_tuning.after_batch()

    @app.timer(settings.flush_interval_s)
    async def release_held() -> None:
        """Release held records when no new record arrives (a watermark came, or a bound expired)."""
        if transport.stream is not None:
            batches = committer.batches
            await committer.tick(time.monotonic())
            if committer.batches != batches:
                gc_tuning.after_batch()

    @app.on_partitions_revoked.connect
    async def _on_revoked(app: faust.App, revoked: set, **_: Any) -> None:  # type: ignore[type-arg]
        await committer.revoke()

    @app.on_partitions_assigned.connect
    async def _on_assigned(app: faust.App, assigned: set, **_: Any) -> None:  # type: ignore[type-arg]
        await committer.assign({tp.partition for tp in assigned if tp.topic in roles})

    async def _after_seek(consumer: Any) -> None:
        """After Faust's seek to committed offsets: seek back to the store's progress where behind."""
        assigned = [tp for tp in consumer.assignment() if tp.topic in roles]
        if not assigned:
            return
        async def earliest(tps: list[Any]) -> dict[Any, int]:
            """Log start offsets ({} when the broker does not answer)."""
            try:
                return dict(await consumer.earliest_offsets(*tps))
            except Exception as exc:  # noqa: BLE001 - alignment degrades to the idle bound
                log.warning("reading log start offsets failed (%r); alignment uses its idle bound", exc)
                return {}

        committed = faust_compat.committed_offsets(consumer, assigned)
        await committer.rewind(assigned, committed, earliest, consumer.seek_wait)

    faust_compat.after_seek(app, _after_seek)

    if settings.progress_check_interval_s > 0:

        @app.timer(settings.progress_check_interval_s)
        async def check_progress() -> None:
            """Stop when Redis has fallen behind this worker's durable writes (it lost them)."""
            await committer.check_progress()

    if settings.lag_refresh_interval_s > 0:

        @app.timer(settings.lag_refresh_interval_s)
        async def refresh_lag() -> None:
            """Export this group's consumer lag (messages, seconds) as Prometheus gauges."""
            from streams.lag import consumer_lag

            try:
                lag = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: consumer_lag(settings.kafka_bootstrap_servers, settings.app_id, list(roles),
                                               security=KafkaSecurity.from_settings(settings)))
            except Exception as exc:  # noqa: BLE001 - a failed probe must not stop the worker
                log.warning("consumer lag refresh failed: %r", exc)
                return
            for p in lag.partitions:
                metrics.CONSUMER_LAG.labels(p.topic, str(p.partition)).set(p.lag_messages)
                metrics.CONSUMER_LAG_SECONDS.labels(p.topic, str(p.partition)).set(p.lag_seconds)

    security = KafkaSecurity.from_settings(settings)
    probe = DependencyProbe(KafkaProbe(settings.kafka_bootstrap_servers, security),
                            redis_client_for(settings, socket_timeout=1.0, socket_connect_timeout=1.0))

    @app.page("/health/live")
    async def live(web: Any, request: Any) -> Any:
        return web.json({"live": True})

    @app.page("/health/ready")
    async def ready(web: Any, request: Any) -> Any:
        """200 when partitions are assigned, the last broker/Redis call succeeded and both answer, else 503.

        ``partitions_assigned`` and ``last_call_ok`` are separate flags: a failing Redis write
        clears only the second.
        """
        deps = await asyncio.get_running_loop().run_in_executor(None, probe)
        body, status = readiness(committer.assigned, committer.ready, deps)
        return web.json(body, status=status)

    return app
