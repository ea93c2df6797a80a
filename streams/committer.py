"""The batch protocol of a worker: align -> process -> produce -> save -> ack, as one class.

:class:`BatchCommitter` owns everything between "records were consumed" and "their offsets may
be committed", independent of Faust: it talks to the broker through a small :class:`Transport`
of our own (produce, ack, high watermarks, the in-flight set) and to the state through the
:class:`agents.state.StateStore` protocol. :mod:`streams.app` wires it to Faust; the unit tests
drive it with :class:`agents.state.InMemoryStateStore` and a recording fake transport.

Per batch (:meth:`BatchCommitter.submit`, or :meth:`BatchCommitter.tick` for held records):

0. **align**: the records are queued in an :class:`agents.alignment.EventTimeAligner`, which
   releases, per partition number, the merge of the input topics by ``(event time, topic rank,
   offset)`` once every input topic-partition has a queued record or is read up to its high
   watermark; held records are taken out of the transport's in-flight set (a rebalance does
   not wait for them) and are never acked;
1. **process**: :meth:`agents.pipeline.Pipeline.process` (decode, fence, apply, decide,
   dead-letter) on the released records, retried while the store is unavailable;
2. **produce**: the decisions and dead letters, all deliveries awaited together, retried as a
   whole on any error (consumers dedupe on the deterministic ids);
3. **save**: the dirty states and, per topic-partition, the highest *released* offset as
   progress, in one fenced store write that first checks that the store still holds this
   worker's last durable progress (:class:`agents.state.StateRegressionError` otherwise);
4. **ack**: the released records; the transport commits acked offsets.

So offsets move only after the state is durable, and decisions are on Kafka before the state
that records them: a crash in between replays the batch, the fences skip what the store already
has, and re-emitted decisions carry the same deterministic ids. ``on_phase(name, batch)`` is
called after ``produce`` and ``save`` (the fault-injection points of the reliability tests).

Released records are always a prefix of each topic-partition's delivered records, so the acked
offsets stay contiguous and a transport that commits only the contiguous acked run of a
partition (Faust's ``Consumer._new_offset``) never commits past a held record. One batch runs
at a time (an asyncio lock shared by :meth:`submit`, :meth:`tick` and :meth:`revoke`).

When the store lost writes (crash with ``appendfsync everysec``, failover, restore of an older
snapshot), :meth:`rewind` (after the transport's seek to the committed offsets) seeks every
input partition whose committed offset is ahead of the stored progress back to ``progress + 1``
(:func:`rewind_targets`); and when the store falls behind this worker's own durable writes
(checked on each save and by :meth:`check_progress`), ``on_regression`` is called: the worker
exits without committing so that its restart rewinds (crash-only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client import Gauge

from agents.alignment import EventTimeAligner
from agents.pipeline import REVIEW_LOAD_CHUNK, BatchOutput, Pipeline, Record
from agents.state import StateRegressionError, StateStore, TopicPartition
from streams import metrics

log = logging.getLogger(__name__)
T = TypeVar("T")
H = TypeVar("H")  # the transport's handle of one consumed message (a Faust event in production)
H_contra = TypeVar("H_contra", contravariant=True)

BACKOFF_INITIAL_S = 0.2  # first retry delay of a failed broker or store call
BACKOFF_MAX_S = 5.0  # cap of the doubling retry delay
#: SKU keys per review-only batch when a review that fell behind event time is finished before
#: the records waiting for it (one Redis load round trip each; bounds the states held at once)
FORCED_REVIEW_CHUNK_SKUS = REVIEW_LOAD_CHUNK
FORCED_LOG_EVERY_S = 60.0  # at most one warning per minute about forced alignment releases
ALIGNER_HELD = Gauge("restock_aligner_held_records",
                     "Input records consumed but held by the event-time aligner (not yet applied or acked)")


class Transport(Protocol[H_contra]):
    """What the committer needs from the message transport (Faust in production)."""

    async def produce(self, decisions: list[tuple[bytes, bytes]],
                      dead_letters: list[tuple[bytes, bytes]]) -> None:
        """Send ``(key, value)`` decisions and dead letters and await every delivery.

        Raises
        ------
        Exception
            Any delivery failure (the committer retries the whole set).
        """
        ...

    async def ack(self, handles: Sequence[H_contra]) -> None:
        """Acknowledge processed messages (their offsets may now be committed)."""
        ...

    def highwater(self, tp: TopicPartition) -> int | None:
        """The high watermark the broker last reported for ``tp`` (None: unknown)."""
        ...

    def hold(self, handles: Sequence[H_contra]) -> None:
        """Take messages out of the in-flight set (a rebalance must not wait for them)."""
        ...

    def unhold(self, handles: Sequence[H_contra]) -> None:
        """Put messages back into the in-flight set (they are about to be processed and acked)."""
        ...


def rewind_targets(committed: dict[Any, int | None], progress: dict[tuple[str, int], int]) -> dict[Any, int]:
    """Where to seek each partition so that nothing the state store lost is skipped.

    Parameters
    ----------
    committed : dict
        Topic-partition (anything with ``.topic`` and ``.partition``) -> the group's committed
        offset (next offset to read), or None when nothing was committed.
    progress : dict
        ``(topic, partition) -> highest offset durable in the store``
        (:meth:`agents.state.StateStore.read_progress`).

    Returns
    -------
    dict
        Topic-partition -> offset to seek to, only where the committed offset is ahead of
        ``progress + 1`` (0 when the store has no progress at all for a partition the group has
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
    initial_s: float = BACKOFF_INITIAL_S,
) -> T:
    """Await ``attempt()`` until it succeeds, sleeping a capped, doubling delay after failures.

    The worker's one retry rule for broker and store calls (outages): the delay starts at
    ``initial_s`` (:data:`BACKOFF_INITIAL_S`, 0.2 s) and doubles up to :data:`BACKOFF_MAX_S`
    (5 s), so an outage neither spins a core nor crashes the worker. Nothing is acked while a
    batch's call is being retried, so offsets are held meanwhile.

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
    initial_s : float
        First delay, seconds.

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
    >>> asyncio.run(retry_with_backoff(flaky, retry_on=OSError, what="a call", initial_s=0.0))
    'ok'
    >>> len(calls)
    2
    """
    delay = initial_s
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
            delay = min(max(delay, 1e-3) * 2, BACKOFF_MAX_S)


def _never(exc: StateRegressionError) -> None:
    raise exc


class BatchCommitter(Generic[H]):
    """Run consumed records through align -> process -> produce -> save -> ack.

    Parameters
    ----------
    pipeline : Pipeline
        Decode, fence, apply, decide; its ``store`` is where states are loaded from.
    store : StateStore
        Where states and progress are saved (the pipeline's store).
    transport : Transport
        Produce, ack, high watermarks, in-flight set.
    aligner : EventTimeAligner
        The event-time merge of the input topics (holds ``(Record, handle)`` pairs).
    store_errors : tuple of exception types
        Failures of the store that mean "unavailable, retry" (``redis.RedisError``).
    on_regression : callable, optional
        Called with the :class:`StateRegressionError` when the store lost this worker's
        durable writes; must not return normally in production (the app exits the process).
        Default: re-raise.
    on_phase : callable, optional
        ``on_phase(name, batch_number)`` after ``"after_produce"`` and ``"after_save"``.
    batch_delay_s : float
        Sleep after each batch (reliability tests only; 0 in production).
    backoff_initial_s : float
        First retry delay of a failed store or transport call, seconds.
    executor_io : bool
        Run store writes and progress checks in the loop's default executor (production; the
        store client blocks). False runs them inline.
    """

    def __init__(self, pipeline: Pipeline, store: StateStore, transport: Transport[H],
                 aligner: EventTimeAligner[H], *, store_errors: tuple[type[BaseException], ...],
                 on_regression: Callable[[StateRegressionError], None] | None = None,
                 on_phase: Callable[[str, int], None] | None = None, batch_delay_s: float = 0.0,
                 backoff_initial_s: float = BACKOFF_INITIAL_S, executor_io: bool = True) -> None:
        self.pipeline = pipeline
        self.store = store
        self.transport = transport
        self.aligner = aligner
        self.store_errors = store_errors
        self.on_regression = on_regression or _never
        self.on_phase = on_phase
        self.batch_delay_s = batch_delay_s
        self.backoff_initial_s = backoff_initial_s
        self.executor_io = executor_io
        self.lock = asyncio.Lock()
        #: ``(topic, partition) -> highest input offset`` this worker made durable in the store
        #: (or read there on assignment): what the store must still hold, else it lost writes.
        self.durable: dict[TopicPartition, int] = {}
        self.batches = 0
        #: The last broker / store call succeeded (cleared by a failure until the next success).
        self.ready = False
        #: Input partitions are assigned and their states loaded (cleared on revocation only).
        self.assigned = False
        self._forced_logged = -1e9

    # --- the batch protocol ---------------------------------------------------------------
    async def submit(self, items: list[tuple[Record, H]], now: float) -> None:
        """Phase 0 (align) for newly consumed records, then whatever is released, as one batch."""
        async with self.lock:
            self.aligner.add(items, now)  # stale deliveries (below the expected offset) are dropped
            self.transport.hold([h for _, h in items])  # held (or stale); released ones go back
            await self._release_and_commit(now)

    async def tick(self, now: float) -> None:
        """Release held records (a watermark came, or a bound expired), then advance the review.

        While a period review is in progress (:attr:`agents.pipeline.Pipeline.sweeping`), commit
        review-only batches (no records: their decisions and states, no progress, no ack) of
        ``review_chunk_skus`` keys until it is done, releasing the lock between them: a batch of
        records waiting for the lock goes next (the lock's waiters are served in order), so a
        record waits for at most one chunk. Batches of records pass no review keys themselves
        (their SKUs' own reviews excepted), so their latency does not include a chunk.
        """
        if len(self.aligner):
            async with self.lock:
                await self._release_and_commit(now)
        while self.pipeline.sweeping and self.assigned:
            async with self.lock:
                if not self.pipeline.sweeping:
                    break
                await self.commit([], [])
            await asyncio.sleep(0)

    async def _release_and_commit(self, now: float) -> bool:
        """Release what the aligner allows and commit it as one batch (caller holds the lock).

        Returns True when records were released.
        """
        forced = self.aligner.forced
        released = self.aligner.release(self.transport.highwater, now)
        ALIGNER_HELD.set(len(self.aligner))
        if self.aligner.forced != forced and now - self._forced_logged >= FORCED_LOG_EVERY_S:
            self._forced_logged = now
            log.warning("event-time alignment: %d record(s) released by processing time (an input "
                        "partition of unknown state for %.0f s, or more than %d records held); "
                        "%d such releases so far", self.aligner.forced - forced, self.aligner.idle_s,
                        self.aligner.max_buffered, self.aligner.forced)
        if not released:
            return False
        handles = [h for _, h in released]
        self.transport.unhold(handles)
        await self.commit([r for r, _ in released], handles, review_budget=0)  # ticks pass the review
        return True

    async def commit(self, records: list[Record], handles: Sequence[H],
                     review_budget: int | None = None) -> BatchOutput:
        """Phases 1-4 for released records: process, produce, save, ack (in this order).

        When the pipeline stops before a record that would finish a large period review inside
        the batch (:attr:`agents.pipeline.BatchOutput.stopped_at`), the records before it are
        committed, the review is finished in review-only batches of ``FORCED_REVIEW_CHUNK_SKUS``
        keys, and the rest of the records are committed after it.

        Parameters
        ----------
        records, handles
            The released records and their transport handles (aligned).
        review_budget : int, optional
            SKU keys of a review in progress passed after the records (default: the pipeline's
            ``review_chunk_skus``).

        Returns
        -------
        BatchOutput
            What the last batch produced (decisions, dead letters, states written).
        """
        while True:
            t0 = time.perf_counter()
            out = await self.process(records, review_budget)
            n = len(records) if out.stopped_at is None else out.stopped_at
            self.batches += 1
            await self.produce(out)
            self._phase("after_produce")
            await self.save(out, progress_of(records[:n]))
            self._phase("after_save")
            await self.transport.ack(handles[:n])
            metrics.observe_batch(records[:n], out, time.perf_counter() - t0, len(self.pipeline.cache))
            if self.batch_delay_s:
                await asyncio.sleep(self.batch_delay_s)
            if out.stopped_at is None:
                return out
            # a review fell behind event time: finish it in bounded review-only batches, each
            # produced and saved, before the rest of the records (which wait for it either way)
            records, handles = records[n:], handles[n:]
            while self.pipeline.sweeping:
                await self.commit([], [], review_budget=FORCED_REVIEW_CHUNK_SKUS)

    async def process(self, records: list[Record], review_budget: int | None = None) -> BatchOutput:
        """Phase 1: run the pipeline (retried while the store is unavailable; never raises).

        An unexpected error reloads the states from the store and retries the batch once more
        (states may be half-updated; :meth:`Pipeline.rollback` makes the retry exact).
        """
        try:
            return await self._with_store_retry(lambda: self.pipeline.process(records, review_budget))
        except StateRegressionError:
            raise
        except Exception:  # noqa: BLE001 - never crash the worker on one batch
            log.exception("batch failed unexpectedly; states reloaded and batch retried")
            self.pipeline.rollback()
            return await self._with_store_retry(lambda: self.pipeline.process(records, review_budget))

    async def produce(self, out: BatchOutput) -> None:
        """Phase 2: send the batch's decisions and dead letters, retried as a whole.

        Never raises: leaving the batch with an exception would ack its events without their
        outputs.
        """
        await retry_with_backoff(
            lambda: self.transport.produce(out.decisions, out.dead_letters),
            retry_on=Exception, on_failure=self._not_ready, initial_s=self.backoff_initial_s,
            what=f"producing {len(out.decisions)} decisions / {len(out.dead_letters)} dead letters")

    async def save(self, out: BatchOutput, progress: dict[TopicPartition, int]) -> None:
        """Phase 3: write the dirty states and the progress, fenced by this worker's durable writes.

        Retried while the store is unavailable (nothing is acked meanwhile).
        """
        async def attempt() -> None:
            t0 = time.perf_counter()
            expected = {tp: self.durable[tp] for tp in progress if tp in self.durable}
            if not progress:  # a review-only batch: the store must still hold all of this worker's writes
                expected = dict(self.durable)
            try:
                await self._io(self.store.save_many, out.dirty, out.partition_of, progress, expected)
            except StateRegressionError as exc:
                self._regressed(exc)
            metrics.REDIS_WRITE_SECONDS.observe(time.perf_counter() - t0)

        await retry_with_backoff(attempt, retry_on=self.store_errors, what="state write (offsets held)",
                                 on_failure=self._store_failed, initial_s=self.backoff_initial_s)
        for tp, offset in progress.items():
            self.durable[tp] = max(offset, self.durable.get(tp, -1))
        self.ready = True

    # --- partition lifecycle ----------------------------------------------------------------
    async def assign(self, partitions: set[int]) -> int:
        """Load the states of newly assigned input partitions; returns the SKUs loaded."""
        self.pipeline.reset()
        loaded = await self._with_store_retry(lambda: self.pipeline.assign(partitions))
        log.info("assigned partitions %s: %d SKU states loaded", sorted(partitions), loaded)
        self.ready = True
        self.assigned = True
        return loaded

    async def revoke(self) -> None:
        """Forget everything partition-bound (after the batch in flight, if any, has finished)."""
        self.ready = False
        self.assigned = False
        async with self.lock:
            self.aligner.reset()  # held records were not acked: they are re-read after the seek
            self.pipeline.reset()
            self.durable.clear()

    async def rewind(self, assigned: list[Any], committed: dict[Any, int | None],
                     earliest: Callable[[list[Any]], Awaitable[dict[Any, int]]],
                     seek: Callable[[dict[Any, int]], Awaitable[None]]) -> dict[Any, int]:
        """After the transport's seek to the committed offsets: seek back to the stored progress.

        Parameters
        ----------
        assigned : list
            The assigned input topic-partitions (with ``.topic`` and ``.partition``).
        committed : dict
            Topic-partition -> committed offset (None: nothing committed).
        earliest : callable
            Awaited with ``assigned`` after the store was read: topic-partition -> log start
            offset ({} when unknown: alignment then uses its idle bound).
        seek : callable
            Awaited with ``{topic-partition: offset}`` when some partition must be sought back.

        Returns
        -------
        dict
            The seek targets (:func:`rewind_targets`); empty when the store lost nothing.
        """
        if not assigned:
            return {}

        async def attempt() -> dict[TopicPartition, int]:
            return await self._io(self.store.read_progress, {tp.partition for tp in assigned})

        # not _with_store_retry: its reset would drop the states just loaded by assign()
        stored = await retry_with_backoff(
            attempt, retry_on=self.store_errors, what="reading partition progress",
            on_failure=lambda exc: metrics.REDIS_ERRORS.inc(), initial_s=self.backoff_initial_s)
        targets = rewind_targets(committed, stored)
        starts_low = await earliest(assigned)
        topics = {tp.topic for tp in assigned}
        self.durable.clear()
        self.durable.update({tp: off for tp, off in stored.items() if tp[0] in topics})
        if targets:
            for tp, target in sorted(targets.items()):
                log.warning("%s[%d]: the state store holds progress up to offset %d but the group "
                            "committed %s: seeking to %d to rebuild the lost updates from Kafka",
                            tp.topic, tp.partition, target - 1, committed[tp], target,
                            extra={"topic": tp.topic, "partition": tp.partition, "offset": target})
            metrics.REWINDS.inc(len(targets))
            await seek(targets)
        # Where each input partition will be read from: the aligner's "drained" test compares it
        # (then the offsets it receives) with the high watermark. Anything it held is dropped.
        starts: dict[TopicPartition, int] = {}
        for tp in assigned:
            pos = targets[tp] if tp in targets else committed.get(tp)
            low = starts_low.get(tp)
            if low is not None:
                pos = max(pos or 0, low)
            if pos is not None:
                starts[(tp.topic, tp.partition)] = pos
        self.aligner.start_at(starts)
        return targets

    async def check_progress(self) -> None:
        """Call ``on_regression`` when the store has fallen behind this worker's durable writes."""
        if not self.durable:
            return
        snapshot = dict(self.durable)
        try:
            lagging = await self._io(self.store.behind, snapshot)
        except self.store_errors as exc:
            log.warning("progress check failed (%s); retried at the next tick", exc)
            return
        if lagging:
            self._regressed(StateRegressionError(lagging, where=self.store.name))

    # --- helpers ---------------------------------------------------------------------------
    def _phase(self, name: str) -> None:
        if self.on_phase is not None:
            self.on_phase(name, self.batches)

    def _regressed(self, exc: StateRegressionError) -> None:
        log.critical("%s; exiting without committing so that a restart rebuilds the lost updates "
                     "from Kafka", exc)
        metrics.REDIS_ERRORS.inc()
        self.on_regression(exc)

    def _not_ready(self, exc: BaseException) -> None:
        """A broker or store call failed: not ready until the next success."""
        self.ready = False

    def _store_failed(self, exc: BaseException) -> None:
        metrics.REDIS_ERRORS.inc()
        self._not_ready(exc)

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        if self.executor_io:
            return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
        return fn(*args)

    async def _with_store_retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, a pipeline step that reads the store, until it succeeds.

        On a store error the cached states (maybe half-loaded) are forgotten before the retry
        (:meth:`Pipeline.rollback`: the partitions' watermarks and reviews are those from before
        the failed call), and the retry first checks that the store still holds this worker's
        durable writes: a store that came back from an older snapshot must not have its old
        states processed (their decisions would be produced before the save notices).
        """
        failures = 0

        def failed(exc: BaseException) -> None:
            nonlocal failures
            failures += 1
            self._store_failed(exc)
            self.pipeline.rollback()

        async def attempt() -> T:
            if failures and self.durable:
                lagging = self.store.behind(dict(self.durable))
                if lagging:
                    self._regressed(StateRegressionError(lagging, where=self.store.name))
            return fn()

        return await retry_with_backoff(attempt, retry_on=self.store_errors, what="state read",
                                        on_failure=failed, initial_s=self.backoff_initial_s)


def progress_of(records: Iterable[Record]) -> dict[TopicPartition, int]:
    """The highest offset per topic-partition of a batch's records (its progress).

    Held records are not in the batch, so the store never claims an offset whose event was not
    applied.

    Examples
    --------
    >>> progress_of([Record("orders", 0, 5, None, b""), Record("orders", 0, 3, None, b"")])
    {('orders', 0): 5}
    """
    progress: dict[TopicPartition, int] = {}
    for r in records:
        tp = (r.topic, r.partition)
        progress[tp] = max(r.offset, progress.get(tp, -1))
    return progress
