"""The Faust application and its agent: ``apply_events`` (orders + inventory + promotions).

One agent consumes the three co-partitioned input topics in batches
(``stream.noack_take(flush_every_events, within=flush_interval_s)``) and, per batch:

0. queues the records in an :class:`agents.alignment.EventTimeAligner` and takes what it
   releases: per partition number, the merge of the input topics by ``(event time, topic rank,
   offset)`` (inventory, then promotions, then orders at equal event time), released only when
   every input topic-partition has a queued record or has been read up to the high watermark the
   broker reported (so a replay applies events in the same order, whatever the fetch timing);
   a timer (every ``flush_interval_s``) releases held records when no new record arrives;
1. runs :class:`agents.pipeline.Pipeline` (decode, fence, apply, decide, dead-letter) on the
   released records;
2. produces the decisions to ``reorders`` and the dead letters to ``restock.dlq`` without
   awaiting each send, then awaits all deliveries of the batch at once;
3. writes the dirty SKU states to Redis in one pipelined, offset-fenced round trip, with the
   highest *released* offset of each topic-partition as its progress (retrying with back-off
   while Redis is unavailable: the batch is not finished, so nothing is acked);
4. acks the released events; Faust commits acked offsets.

Held records are never acked. Released records are always a prefix of each topic-partition's
delivered records, so the acked offsets stay contiguous and Faust, which commits only the
contiguous acked run of a partition (``Consumer._new_offset``), never commits past a held
record. Held records are taken out of Faust's in-flight set (``_unacked_messages``), so a
rebalance does not wait for them; on revocation the aligner is cleared, and after Faust's seek
(and the Redis rewind below) the aligner learns each partition's read position, so held records
are simply read again. One batch runs at a time (an asyncio lock shared by the agent, the
release timer and the revocation handler).

So offsets move only after the state is durable, and decisions are on Kafka before the state
that records them: a crash in between replays the batch, the fence skips what Redis already
has, and re-emitted decisions carry the same deterministic ids.

Redis losing writes (crash with ``appendfsync everysec``, failover, restore of an older
snapshot) is handled with the per-partition progress hash (see :mod:`streams.redis_state`):

* after Faust seeks the assigned partitions to their committed offsets, the worker reads the
  progress Redis holds and seeks every input partition whose committed offset is ahead of it
  back to ``progress + 1`` (:func:`rewind_targets`): the replay rebuilds the lost updates and the
  per-SKU fences skip what Redis still has;
* every batch write compares the stored progress with this worker's own last durable write,
  and a timer does the same every ``progress_check_interval_s``: when Redis is behind, the
  worker logs it and exits with :data:`REDIS_REGRESSION_EXIT_CODE` *without committing*, so that
  its supervisor restarts it and the assignment rewinds (crash-only: in-process re-seeking under
  Faust's own offset bookkeeping is not something to trust with inventory).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import faust
import redis
import yaml
from faust.types import TP
from prometheus_client import Gauge

from agents.alignment import EventTimeAligner, rank_topics
from agents.pipeline import Pipeline, Record
from agents.policy import PolicyParams
from agents.processor import ProcessorConfig, SkuProcessor
from streams import metrics
from streams.clients import KafkaProbe, KafkaSecurity, redis_client_for
from streams.partitioning import partition_for
from streams.redis_state import RedisStateStore, StateRegressionError
from streams.settings import Settings
from streams.topics import input_roles

log = logging.getLogger(__name__)
T = TypeVar("T")

FAULT_EXIT_CODE = 86  # exit code of an injected fault (tests only)
REDIS_REGRESSION_EXIT_CODE = 75  # EX_TEMPFAIL: Redis lost writes; restart to rebuild from Kafka
BACKOFF_INITIAL_S = 0.2  # first retry delay of a failed broker or Redis call
BACKOFF_MAX_S = 5.0  # cap of the doubling retry delay
ALIGNER_HELD = Gauge("restock_aligner_held_records",
                     "Input records consumed but held by the event-time aligner (not yet applied or acked)")


def rewind_targets(committed: dict[Any, int | None], progress: dict[tuple[str, int], int]) -> dict[Any, int]:
    """Where to seek each partition so that nothing Redis lost is skipped.

    Parameters
    ----------
    committed : dict
        Topic-partition (anything with ``.topic`` and ``.partition``) -> the group's committed
        offset (next offset to read), or None when nothing was committed.
    progress : dict
        ``(topic, partition) -> highest offset durable in Redis``
        (:meth:`streams.redis_state.RedisStateStore.read_progress`).

    Returns
    -------
    dict
        Topic-partition -> offset to seek to, only where the committed offset is ahead of
        ``progress + 1`` (0 when Redis has no progress at all for a partition the group has
        consumed: everything is replayed, and the fences skip what is there).

    Examples
    --------
    >>> from collections import namedtuple
    >>> TP = namedtuple("TP", "topic partition")
    >>> rewind_targets({TP("orders", 0): 120, TP("orders", 1): 50, TP("orders", 2): None},
    ...                {("orders", 0): 99, ("orders", 1): 49})
    {TP(topic='orders', partition=0): 100}
    """
    out: dict[Any, int] = {}
    for tp, offset in committed.items():
        if offset is None or offset <= 0:
            continue
        target = progress.get((tp.topic, tp.partition), -1) + 1
        if target < offset:
            out[tp] = target
    return out


async def retry_with_backoff(
    attempt: Callable[[], Awaitable[T]],
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    what: str,
    on_failure: Callable[[BaseException], None] | None = None,
) -> T:
    """Await ``attempt()`` until it succeeds, sleeping a capped, doubling delay after failures.

    The worker's one retry rule for broker and Redis calls (outages): the delay starts at
    :data:`BACKOFF_INITIAL_S` (0.2 s) and doubles up to :data:`BACKOFF_MAX_S` (5 s), so an
    outage neither spins a core nor crashes the worker. Nothing is acked while a batch's call is
    being retried, so offsets are held meanwhile.

    Parameters
    ----------
    attempt : callable
        Coroutine function making one attempt.
    retry_on : exception type or tuple of types
        Failures that are retried; anything else propagates. Cancellation always propagates.
    what : str
        What is attempted, for the warning logged on each failure.
    on_failure : callable, optional
        Called with each retried exception before the sleep (metrics, readiness, cache reset).

    Returns
    -------
    The first successful result of ``attempt()``.

    Examples
    --------
    >>> calls = []
    >>> async def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 2:
    ...         raise OSError("down")
    ...     return "ok"
    >>> asyncio.run(retry_with_backoff(flaky, retry_on=OSError, what="a call"))
    'ok'
    >>> len(calls)
    2
    """
    delay = BACKOFF_INITIAL_S
    while True:
        try:
            return await attempt()
        except asyncio.CancelledError:
            raise
        except retry_on as exc:
            if on_failure is not None:
                on_failure(exc)
            log.warning("%s failed (%r); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)


def _rewind_after_seek() -> None:
    """Let the app adjust positions after Faust seeks to committed offsets (``restock_rewind``)."""
    from faust.transport.consumer import Consumer

    if getattr(Consumer, "_restock_original_perform_seek", None):
        return
    original = Consumer.perform_seek

    async def perform_seek(self: Any) -> None:
        await original(self)
        hook = getattr(self.app, "restock_rewind", None)
        if hook is not None:
            await hook(self)

    Consumer._restock_original_perform_seek = original  # type: ignore[attr-defined]
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]


def load_policy_overrides(path: Path, base: PolicyParams) -> dict[str, PolicyParams]:
    """Per-SKU policy parameters from a JSON or YAML file.

    The file maps ``"sku"`` or ``"sku@location"`` to fields of :class:`PolicyParams` (periods
    and units as there), e.g. ``{"85123A@UK": {"lead_time_periods": 14, "pack_size": 12}}``;
    unspecified fields keep the defaults from the settings.

    Raises
    ------
    ValueError
        When the file is not a mapping or a value is invalid (naming the SKU).
    """
    import json

    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sku or sku@location to policy fields")
    out: dict[str, PolicyParams] = {}
    for key, fields in data.items():
        try:
            out[str(key)] = base.with_overrides(**(fields or {}))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: invalid policy for {key!r}: {exc}") from exc
    return out


def processor_config(settings: Settings) -> ProcessorConfig:
    """The :class:`ProcessorConfig` the settings describe (days converted to periods)."""
    policy = PolicyParams(
        lead_time_periods=settings.days_to_periods(settings.lead_time_days),
        lead_time_std_periods=settings.days_to_periods(settings.lead_time_std_days),
        review_period_periods=settings.days_to_periods(settings.review_period_days),
        cycle_service_level=settings.cycle_service_level,
        unit_cost=settings.unit_cost,
        holding_cost_rate=settings.holding_cost_rate,
        ordering_cost=settings.ordering_cost,
        periods_per_year=365.0 / settings.period_days,
        pack_size=settings.pack_size,
        moq=settings.moq,
        overstock_cover_periods=settings.days_to_periods(settings.overstock_cover_days),
    )
    overrides = (load_policy_overrides(settings.policy_overrides_file, policy)
                 if settings.policy_overrides_file else {})
    return ProcessorConfig(
        overrides=overrides,
        freq=settings.freq,
        allowed_lateness_s=settings.allowed_lateness_s,
        horizon_periods=settings.forecast_horizon_periods,
        policy=policy,
        suggestion_expiry_s=settings.suggestion_expiry_days * 86400.0,
        reemit_change_fraction=settings.reemit_change_fraction,
        unmet_demand=settings.unmet_demand,
        min_history_periods=settings.min_history_periods,
        covariates=settings.covariates_enabled,
        covariate_extras=tuple(n.strip() for n in settings.covariate_extras.split(",") if n.strip()),
    )


def _limit_fetch_wait(max_wait_ms: int) -> None:
    """Make Faust's aiokafka consumer use ``fetch_max_wait_ms`` instead of its fixed 1500 ms."""
    from faust.transport.drivers import aiokafka as faust_aiokafka

    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread_cls, "_restock_original_create", None) or thread_cls._create_worker_consumer

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms  # read by aiokafka when the fetcher starts
        return consumer

    thread_cls._restock_original_create = original
    thread_cls._create_worker_consumer = create


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


def create_app(settings: Settings, *, store: RedisStateStore | None = None,
               input_partitions: int | None = None) -> faust.App:
    """Build the Faust app with the ``apply_events`` agent (values passed explicitly).

    ``input_partitions`` is the input topics' actual partition count (default
    ``settings.topic_partitions``): records off their key's partition are dead-lettered.

    Raises
    ------
    redis.RedisError
        Not raised here: Redis is contacted lazily, on the first batch.
    """
    _limit_fetch_wait(settings.fetch_max_wait_ms)
    _rewind_after_seek()
    extra: dict[str, Any] = {}
    if settings.log_json:
        import sys

        from streams.logs import JsonFormatter

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.setLevel(logging.INFO)
        extra["loghandlers"] = [handler]
    app = faust.App(settings.app_id, **faust_app_kwargs(settings), **extra)
    roles = input_roles(settings)
    inputs = app.topic(*roles, key_serializer="raw", value_serializer="raw")
    reorders = app.topic(settings.reorders_topic, key_serializer="raw", value_serializer="raw")
    dlq = app.topic(settings.dlq_topic, key_serializer="raw", value_serializer="raw")
    state_store = store or RedisStateStore(
        redis_client_for(settings, socket_timeout=10, socket_connect_timeout=5),
        settings.redis_key_prefix, settings.cold_sku_ttl_s)
    pipeline = Pipeline(SkuProcessor(processor_config(settings)), state_store, roles,
                        cache_size=settings.hot_sku_cache_size, partition_for=partition_for,
                        partitions=input_partitions or settings.topic_partitions)
    app.restock_pipeline = pipeline  # type: ignore[attr-defined]
    app.restock_ready = False  # type: ignore[attr-defined]  # the last broker / Redis call succeeded
    app.restock_assigned = False  # type: ignore[attr-defined]  # partitions assigned (and states loaded)

    # (topic, partition) -> highest input offset this worker made durable in Redis (or read
    # there on assignment): what Redis must still hold, else it lost writes.
    durable: dict[tuple[str, int], int] = {}

    def _redis_regressed(exc: StateRegressionError) -> None:
        log.critical("%s; exiting without committing so that a restart rebuilds the lost updates "
                     "from Kafka", exc)
        metrics.REDIS_ERRORS.inc()
        os._exit(REDIS_REGRESSION_EXIT_CODE)

    def _not_ready(exc: BaseException) -> None:
        """A broker or Redis call failed: not ready until the next success."""
        app.restock_ready = False  # type: ignore[attr-defined]

    def _redis_failed(exc: BaseException) -> None:
        metrics.REDIS_ERRORS.inc()
        _not_ready(exc)

    async def _save(states: list[Any], partition_of: dict[str, int],
                    progress: dict[tuple[str, int], int]) -> None:
        async def attempt() -> None:
            t0 = time.perf_counter()
            expected = {tp: durable[tp] for tp in progress if tp in durable}
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, state_store.save_many, states, partition_of, progress, expected)
            except StateRegressionError as exc:
                _redis_regressed(exc)
            metrics.REDIS_WRITE_SECONDS.observe(time.perf_counter() - t0)

        await retry_with_backoff(attempt, retry_on=redis.RedisError,
                                 what="redis write (offsets held)", on_failure=_redis_failed)
        for tp, offset in progress.items():
            durable[tp] = max(offset, durable.get(tp, -1))
        app.restock_ready = True  # type: ignore[attr-defined]

    # Event-time alignment of the input topics (agents.alignment): records wait in the aligner
    # until the merge rule releases them; a held record is not acked (Faust commits only the
    # contiguous acked prefix of a partition, and released records are always a prefix of each
    # topic-partition), and it is not in Faust's in-flight set either (so a rebalance does not
    # wait for it: it is dropped on revocation and re-read from the committed offset).
    aligner: EventTimeAligner[Any] = EventTimeAligner(
        rank_topics(roles), idle_s=settings.alignment_idle_s, max_buffered=settings.alignment_max_buffered,
        owned=pipeline.owns)
    app.restock_aligner = aligner  # type: ignore[attr-defined]
    batch_lock = asyncio.Lock()  # one batch at a time: the agent and the release timer
    current: dict[str, Any] = {}  # "stream": the agent's stream (acks go through it)

    def _highwater(tp: tuple[str, int]) -> int | None:
        try:
            return app.consumer.highwater(TP(tp[0], tp[1]))
        except Exception:  # noqa: BLE001 - not assigned (any more) or no consumer: unknown
            return None

    def _in_flight() -> Any:
        """Faust's set of delivered, unacked messages (what a rebalance waits for), or None."""
        return getattr(app.consumer, "_unacked_messages", None)

    @app.agent(inputs, name="apply_events")
    async def apply_events(stream: faust.StreamT) -> None:
        # noack_take: events are acked by us, after their state is durable. (take_events acks
        # in a finally block, so a batch cancelled at shutdown would be committed unapplied.)
        current["stream"] = stream
        async for events in stream.noack_take(settings.flush_every_events,
                                              within=settings.flush_interval_s):
            now = time.monotonic()
            items = [
                (Record(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                        e.message.value if e.message.value is not None else b"",
                        e.message.timestamp and int(e.message.timestamp * 1000)), e)
                for e in events
            ]
            async with batch_lock:
                aligner.add(items, now)  # stale deliveries (below the expected offset) are dropped
                in_flight = _in_flight()
                if in_flight is not None:
                    for e in events:  # held (or stale) now; released ones are re-added below
                        in_flight.discard(e.message)
                await _release_and_process(now)

    async def _release_and_process(now: float) -> None:
        """Release what the aligner allows and process it as one batch (caller holds the lock)."""
        forced = aligner.forced
        released = aligner.release(_highwater, now)
        ALIGNER_HELD.set(len(aligner))
        if aligner.forced != forced and now - current.get("forced_logged", -1e9) >= 60.0:
            current["forced_logged"] = now
            log.warning("event-time alignment: %d record(s) released by processing time (an input "
                        "partition of unknown state for %.0f s, or more than %d records held); "
                        "%d such releases so far", aligner.forced - forced, settings.alignment_idle_s,
                        settings.alignment_max_buffered, aligner.forced)
        if not released:
            return
        in_flight = _in_flight()
        if in_flight is not None:
            for _, e in released:
                in_flight.add(e.message)
        await _process([r for r, _ in released], [e for _, e in released])

    async def _process(records: list[Record], events: list[Any]) -> None:
        stream = current["stream"]
        t0 = time.perf_counter()
        try:
            out = await _with_redis_retry(lambda r=records: pipeline.process(r))
        except Exception:  # noqa: BLE001 - never crash the worker on one batch
            log.exception("batch failed unexpectedly; states reloaded and batch retried")
            pipeline.reset()
            out = await _with_redis_retry(lambda r=records: pipeline.process(r))
        batches_done = getattr(app, "restock_batches", 0) + 1
        app.restock_batches = batches_done  # type: ignore[attr-defined]
        await _produce(out.decisions, out.dead_letters)
        _fault("after_produce", batches_done)
        # Progress: the highest *released* offset per topic-partition (held records are not in
        # this batch, so Redis never claims an offset whose event was not applied).
        progress: dict[tuple[str, int], int] = {}
        for r in records:
            tp = (r.topic, r.partition)
            progress[tp] = max(r.offset, progress.get(tp, -1))
        await _save(out.dirty, out.partition_of, progress)
        _fault("after_save", batches_done)
        for event in events:
            await stream.ack(event)
        metrics.observe_batch(records, out, time.perf_counter() - t0, len(pipeline.cache))
        if settings.fault_batch_delay_s:
            await asyncio.sleep(settings.fault_batch_delay_s)

    @app.timer(settings.flush_interval_s)
    async def release_held() -> None:
        """Release held records when no new record arrives (a watermark came, or a bound expired)."""
        if len(aligner) and "stream" in current:
            async with batch_lock:
                await _release_and_process(time.monotonic())

    def _fault(point: str, batch: int) -> None:
        """Test hook: die like ``kill -9`` at ``point`` of batch ``fault_after_batches``."""
        if settings.fault_point == point and batch == settings.fault_after_batches:
            log.warning("fault injection: exiting at %s of batch %d", point, batch)
            os._exit(FAULT_EXIT_CODE)

    async def _produce(decisions: list[tuple[bytes, bytes]], letters: list[tuple[bytes, bytes]]) -> None:
        """Send all outputs of a batch, awaiting deliveries together.

        Retries the whole set on a broker error (consumers dedupe on the deterministic ids).
        Never raises: leaving the batch body with an exception would ack its events without
        their outputs.
        """
        async def attempt() -> None:
            futures = [await reorders.send(key=k, value=v) for k, v in decisions]
            futures += [await dlq.send(key=k, value=v) for k, v in letters]
            if futures:
                await asyncio.gather(*futures)

        await retry_with_backoff(
            attempt, retry_on=Exception, on_failure=_not_ready,
            what=f"producing {len(decisions)} decisions / {len(letters)} dead letters")

    async def _with_redis_retry(fn: Callable[[], T]) -> T:
        """Run ``fn``, a pipeline step that reads Redis, until it succeeds.

        On a Redis error the cached states (maybe half-loaded) are forgotten before the retry.
        """
        def failed(exc: BaseException) -> None:
            _redis_failed(exc)
            pipeline.reset()

        async def attempt() -> T:
            return fn()

        return await retry_with_backoff(attempt, retry_on=redis.RedisError, what="redis read",
                                        on_failure=failed)

    @app.on_partitions_revoked.connect
    async def _on_revoked(app: faust.App, revoked: set, **_: Any) -> None:  # type: ignore[type-arg]
        app.restock_ready = False  # type: ignore[attr-defined]
        app.restock_assigned = False  # type: ignore[attr-defined]
        async with batch_lock:  # let a batch in flight finish first
            aligner.reset()  # held records were not acked: they are re-read after the seek
            pipeline.reset()
            durable.clear()

    async def _rewind(consumer: Any) -> None:
        """After Faust's seek to committed offsets: seek back to Redis' progress where it is behind."""
        assigned = [tp for tp in consumer.assignment() if tp.topic in roles]
        if not assigned:
            return
        async def attempt() -> dict[tuple[str, int], int]:
            return state_store.read_progress({tp.partition for tp in assigned})

        # not _with_redis_retry: its reset would drop the states just loaded by assign()
        stored = await retry_with_backoff(
            attempt, retry_on=redis.RedisError, what="reading partition progress",
            on_failure=lambda exc: metrics.REDIS_ERRORS.inc())
        committed = {tp: consumer._committed_offset.get(tp) for tp in assigned}
        targets = rewind_targets(committed, stored)
        earliest = await _earliest(consumer, assigned)
        durable.clear()
        durable.update({tp: off for tp, off in stored.items() if tp[0] in roles})
        if targets:
            for tp, target in sorted(targets.items()):
                log.warning("%s[%d]: Redis holds progress up to offset %d but the group committed "
                            "%s: seeking to %d to rebuild the lost updates from Kafka",
                            tp.topic, tp.partition, target - 1, committed[tp], target,
                            extra={"topic": tp.topic, "partition": tp.partition, "offset": target})
            metrics.REWINDS.inc(len(targets))
            await consumer.seek_wait(targets)
        # Where each input partition will be read from: the aligner's "drained" test compares it
        # (then the offsets it receives) with the high watermark. Anything it held is dropped.
        starts: dict[tuple[str, int], int] = {}
        for tp in assigned:
            pos = targets[tp] if tp in targets else committed.get(tp)
            low = earliest.get(tp)
            if low is not None:
                pos = max(pos or 0, low)
            if pos is not None:
                starts[(tp.topic, tp.partition)] = pos
        aligner.start_at(starts)

    async def _earliest(consumer: Any, assigned: list[Any]) -> dict[Any, int]:
        """Log start offsets of the assigned partitions ({} when the broker does not answer).

        Without them the aligner treats the positions as unknown and uses its idle bound.
        """
        try:
            return dict(await consumer.earliest_offsets(*assigned))
        except Exception as exc:  # noqa: BLE001 - alignment degrades to the idle bound
            log.warning("reading log start offsets failed (%r); alignment uses its idle bound", exc)
            return {}

    app.restock_rewind = _rewind  # type: ignore[attr-defined]

    if settings.progress_check_interval_s > 0:

        @app.timer(settings.progress_check_interval_s)
        async def check_progress() -> None:
            """Stop when Redis has fallen behind this worker's durable writes (it lost them)."""
            if not durable:
                return
            snapshot = dict(durable)
            try:
                lagging = await asyncio.get_running_loop().run_in_executor(
                    None, state_store.behind, snapshot)
            except redis.RedisError as exc:
                log.warning("progress check failed (%s); retried at the next tick", exc)
                return
            if lagging:
                _redis_regressed(StateRegressionError(lagging))

    @app.on_partitions_assigned.connect
    async def _on_assigned(app: faust.App, assigned: set, **_: Any) -> None:  # type: ignore[type-arg]
        pipeline.reset()
        partitions = {tp.partition for tp in assigned if tp.topic in roles}
        loaded = await _with_redis_retry(lambda: pipeline.assign(partitions))
        log.info("assigned partitions %s: %d SKU states loaded", sorted(partitions), loaded)
        app.restock_ready = True  # type: ignore[attr-defined]
        app.restock_assigned = True  # type: ignore[attr-defined]

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

    @app.page("/health/live")
    async def live(web: Any, request: Any) -> Any:
        return web.json({"live": True})

    probe_client = redis_client_for(settings, socket_timeout=1.0, socket_connect_timeout=1.0)

    kafka_probe = KafkaProbe(settings.kafka_bootstrap_servers, KafkaSecurity.from_settings(settings))

    def _probe_dependencies() -> dict[str, str | bool]:
        kafka_ok, detail = kafka_probe()
        try:
            redis_ok = bool(probe_client.ping())
        except redis.RedisError as exc:
            redis_ok = False
            detail = f"{detail}; redis: {exc}"
        return {"kafka": kafka_ok, "redis": redis_ok, "detail": detail}

    @app.page("/health/ready")
    async def ready(web: Any, request: Any) -> Any:
        """200 when partitions are assigned, the last broker/Redis call succeeded and both answer, else 503.

        ``partitions_assigned`` and ``last_call_ok`` are separate flags: a failing Redis write
        clears only the second.
        """
        assigned = bool(app.restock_assigned)  # type: ignore[attr-defined]
        last_ok = bool(app.restock_ready)  # type: ignore[attr-defined]
        deps = await asyncio.get_running_loop().run_in_executor(None, _probe_dependencies)
        ok = assigned and last_ok and bool(deps["kafka"]) and bool(deps["redis"])
        return web.json({"ready": ok, "partitions_assigned": assigned, "last_call_ok": last_ok, **deps},
                        status=200 if ok else 503)

    return app
