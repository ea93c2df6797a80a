"""Batch pipeline between Kafka records and per-SKU state: decode, fence, apply, dead-letter.

Transport-free: the batch committer (:mod:`streams.committer`, driven by the Faust agent in
:mod:`streams.app`) hands it the records of one
``stream.take_events`` batch and gets back what to produce and which states to write. Tests
and tools can drive it with plain :class:`Record` values.

Bad input never crashes the worker and is never silently dropped: a record that fails
decoding or validation, whose processing raises, that arrives late, or whose key does not
match its payload becomes a :class:`schemas.events.DeadLetter` (with the original bytes and the
reason) on the dead-letter topic and is counted in metrics.

Hot SKUs stay in an LRU cache in the worker; a SKU missing from the cache is loaded from the
state store in one pipelined round trip per batch. Only clean (already persisted) states are
evicted.

Partition ownership
-------------------
One partition owns a SKU: its events are applied there only. With a partitioner
(``partition_for``, injected by the transport: Kafka's default murmur2 of the key bytes, see
:mod:`streams.partitioning`), a record without a key is dead-lettered at stage ``missing_key``
and a record whose key maps to another partition than the one it arrived on at stage
``wrong_partition``, before it is decoded: neither is ever applied, so neither can overwrite a
SKU's state on a foreign partition, advance that partition's watermark or enter its SKU index.

Covariate pool (and the fill-rate controller)
---------------------------------------------
With covariates on (or the fill-rate controller, :mod:`agents.policy.controller`), each input
partition has a pool state under the pseudo key :func:`agents.state.pool_key`
(``"@pool@<partition>"``, which no real ``sku@location`` can equal): a
:class:`~agents.state.SkuState` whose ``pool`` holds the partition's shared covariate coefficient
(:class:`~agents.forecasting.covariates.CovariatePool`). It is loaded, cached,
fenced (per ``topic:partition``, at the offset of every event that changed it), marked dirty
and written exactly like a SKU state (same ``load_many`` / ``save_many``), is never in the
partition's SKU index and is never evicted while dirty. Before an event is applied, the pool is
re-published when the event's time minus the allowed lateness enters a new period; SKUs then
learn and forecast with the published coefficient, and their statistics enter the pool's exact
integer sums, so the pool and every state depend only on the partition's event sequence (see
:mod:`agents.forecasting.covariates`, "Replay determinism"). When the pool's fence shows that
it already holds an event (its write landed, a SKU's did not), the event is applied against a
copy of the pool whose changes are dropped. The same pool holds the partition's fill-rate
controller (:class:`~agents.policy.controller.ServiceController`): every order adds its units
demanded and lost, and the publication takes the controller's period step.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agents.demand import epoch, period_seconds, period_start
from agents.forecasting.covariates import CovariatePool
from agents.processor import EventMeta, PolicyRejected, SkuProcessor
from agents.review.progress import PartitionSweep
from agents.review.sweep import PeriodReview
from agents.state import ReviewProgress, SkuState, StateStore, is_pool_key, pool_key
from schemas.codec import EventValidationError, decode_for_topic_role, decode_policy_tombstone, encode_event
from schemas.common import TopicRole
from schemas.dead_letters import DeadLetter
from schemas.inputs import PolicyDeleted

log = logging.getLogger(__name__)

#: SKU keys read per ``load_many`` round trip by the period review (bounds its memory per chunk)
REVIEW_LOAD_CHUNK = 1000
#: fewer SKUs than this are reviewed by the scalar ``SkuProcessor.advance`` (same bytes as the
#: column review, without numpy's per-call overhead on a handful of SKUs)
COLUMN_MIN_SKUS = 8

@dataclass(frozen=True, slots=True)
class Record:
    """One consumed Kafka record (``timestamp_ms`` is the broker/producer timestamp)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None


@dataclass(slots=True)
class BatchOutput:
    """What one batch produced: messages to send and states to persist."""

    decisions: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value)
    dead_letters: list[tuple[bytes, bytes]] = field(default_factory=list)
    dirty: list[SkuState] = field(default_factory=list)
    partition_of: dict[str, int] = field(default_factory=dict)
    applied: int = 0
    skipped: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    decision_kinds: dict[str, int] = field(default_factory=dict)
    periods_closed: int = 0
    stale_policies: int = 0
    #: index of the first record not processed (None: all were). Set when a record would have
    #: to finish a large period review inside the batch (``Pipeline.forced_review_inline_skus``):
    #: the caller commits this output, drains the review with ``process([])`` while
    #: ``Pipeline.sweeping``, then passes ``records[stopped_at:]`` again.
    stopped_at: int | None = None


class Pipeline:
    """Route records of the input topics to their SKU states through :class:`SkuProcessor`.

    Parameters
    ----------
    processor : SkuProcessor
        The pure per-SKU logic.
    store : StateStore
        Where states are loaded from (misses) and written to (by the caller, after producing).
    roles : dict[str, TopicRole]
        Topic name -> role (``orders``, ``inventory``, ``promotions``, ``policies``). On a
        ``policies`` topic a record with an empty (null) value is a tombstone: it deletes its
        key's policy (:func:`schemas.codec.decode_policy_tombstone`; no key or an invalid one:
        dead-lettered, stage ``validate``). A tombstone has no event time: it moves no
        watermark and its decisions are made at the SKU's own clock. A stale ``PolicySet``
        (version not above the SKU's) moves only its SKU's fence (counted in
        ``stale_policies``). A ``PolicySet`` invalid for its SKU
        (:class:`~agents.processor.PolicyRejected`) is dead-lettered at stage ``validate`` and
        the SKU keeps its state.
    cache_size : int
        Hot SKUs kept in memory (LRU over clean states).
    now : callable, optional
        Processing-time clock for dead-letter timestamps (metrics only, never in the math).
    partition_for : callable, optional
        ``partition_for(key_bytes, partitions) -> partition``: the partitioner producers must
        use (:func:`streams.partitioning.partition_for`). When given, records without a key or
        on another partition than their key's are dead-lettered (``missing_key``,
        ``wrong_partition``) and never applied. None (tests, tools) checks nothing.
    partitions : int, optional
        Partition count of the input topics (co-partitioned); required with ``partition_for``.
    column_review : bool, default True
        Decide the SKUs of a period close in one vectorised pass (:class:`agents.review.PeriodReview`);
        False keeps the per-SKU :meth:`SkuProcessor.advance`. Both give byte-identical states and
        decisions.
    review_chunk_skus : int, optional
        The period review of a partition (every SKU of its stored index and its cache, cold ones
        loaded ``REVIEW_LOAD_CHUNK`` at a time) passes at most this many SKU keys per
        :meth:`process` call, after the batch's records, so that the partition's orders keep
        flowing while it runs (call ``process([])`` while :attr:`sweeping` to advance it without
        records). None (default): the whole review runs inside the batch, at the record that
        crossed the period boundary. States and decision ids are the same either way
        (:mod:`agents.review.progress`).

        With it, a review still in progress when a record of its partition enters the next
        period (the review fell behind event time) is not finished inside that batch when more
        than :attr:`forced_review_inline_skus` keys remain: :meth:`process` stops before the
        record (:attr:`BatchOutput.stopped_at`) and the caller drains the review in
        ``process([])`` batches, each saved before the next, so that the states a review loads
        are held ``REVIEW_LOAD_CHUNK`` at a time instead of a whole partition at once.

    Raises
    ------
    ValueError
        When ``partition_for`` is given without a ``partitions`` count of at least 1, or
        ``review_chunk_skus`` is below 1.

    Notes
    -----
    The states a batch dirtied must be saved before the next :meth:`process` call (as the
    batch committer does): SKUs loaded only to be reviewed are dropped from the cache then.
    """

    def __init__(self, processor: SkuProcessor, store: StateStore, roles: dict[str, TopicRole],
                 cache_size: int = 200_000, now: Callable[[], datetime] | None = None, *,
                 partition_for: Callable[[bytes, int], int] | None = None,
                 partitions: int | None = None, column_review: bool = True,
                 review_chunk_skus: int | None = None) -> None:
        if partition_for is not None and (partitions is None or partitions < 1):
            raise ValueError(f"a partitioner needs the input topics' partition count (>= 1), "
                             f"got {partitions}")
        if review_chunk_skus is not None and review_chunk_skus < 1:
            raise ValueError(f"review_chunk_skus must be at least 1 (or None), got {review_chunk_skus}")
        self.partition_for = partition_for
        self.partitions = partitions
        self.processor = processor
        self.column_review = column_review
        self.review = PeriodReview(processor)
        self.store = store
        self.roles = roles
        self.cache_size = cache_size
        self.cache: OrderedDict[str, SkuState] = OrderedDict()
        self.partition_of: dict[str, int] = {}
        self.watermark: dict[int, int] = {}  # partition -> max event time seen (epoch s)
        self._closed_through: dict[int, int] = {}  # partition -> period boundary already advanced
        self._now = now or (lambda: datetime.now(UTC))
        self.review_chunk_skus = review_chunk_skus
        #: a review that fell behind event time is finished inside the batch when at most this
        #: many keys remain, else the batch stops before the record (``review_chunk_skus`` only)
        self.forced_review_inline_skus = REVIEW_LOAD_CHUNK
        #: partition -> its period review in progress (agents.review.progress)
        self.sweeps: dict[int, PartitionSweep] = {}
        self._persisted: set[int] = set()  # partitions whose stored pseudo-state holds a review record
        self._seen: dict[str, int] = {}  # "topic:partition" -> last offset decoded in this lifetime
        self._swept_cold: set[str] = set()  # keys loaded only to be reviewed (dropped next batch)
        #: watermarks, closed boundaries, reviews and persisted reviews before the current batch
        self._checkpoint: tuple[dict[int, int], dict[int, int], dict[int, PartitionSweep], set[int]] | None
        self._checkpoint = None

    @property
    def sweeping(self) -> bool:
        """True while some partition's period review is still in progress."""
        return bool(self.sweeps)

    # --- cache ------------------------------------------------------------------------------
    def _ensure_loaded(self, keys: set[str]) -> None:
        missing = [k for k in keys if k not in self.cache]
        if missing:
            loaded = self.store.load_many(missing)
            for k in missing:
                self.cache[k] = loaded.get(k) or SkuState.new(k)

    def _evict(self, dirty: set[str]) -> None:
        """Drop least recently used clean states until the cache holds ``cache_size``.

        Dirty states (not yet persisted) are skipped, not evicted, wherever they stand in the
        LRU order; so the cache exceeds ``cache_size`` only by the states dirty in this batch.
        SKUs loaded only to be reviewed do not count (they are dropped at the next batch).
        Partition pseudo-states (:func:`pool_key`) are never evicted: a re-publication that
        changed nothing but the pool's boundary and controller step count is not written, and
        must not be lost.
        """
        excess = len(self.cache) - len(self._swept_cold) - self.cache_size
        if excess <= 0:
            return
        victims = []
        for k in self.cache:  # least recently used first
            if k not in dirty and not is_pool_key(k):
                victims.append(k)
                if len(victims) == excess:
                    break
        for k in victims:
            self._uncache(k)
            self.partition_of.pop(k, None)

    def _uncache(self, key: str) -> None:
        """Drop ``key``'s state from the cache and clear its derived cache.

        A :class:`~agents.processor.derived.Derived` refers back to its state, so a dropped
        state with one is a reference cycle that only the cyclic collector frees; the worker
        freezes its heap between batches (:mod:`streams.gc_tuning`), which would keep every
        such state until the next full collection: memory growing with the SKUs a period
        review passes. Without the cycle, reference counting frees it at once.
        """
        st = self.cache.pop(key, None)
        if st is not None:
            st.derived = None

    def reset(self) -> None:
        """Forget cached states (after a rebalance: states are reloaded from the store)."""
        for st in self.cache.values():
            st.derived = None  # (see _uncache)
        self.cache.clear()
        self.partition_of.clear()
        self.watermark.clear()
        self._closed_through.clear()
        self.sweeps.clear()
        self._persisted.clear()
        self._seen.clear()
        self._swept_cold.clear()
        self._checkpoint = None

    def rollback(self) -> None:
        """Forget cached states and undo the partition progress of the failed :meth:`process` call.

        For a batch that failed (store unavailable, unexpected error) and is processed again:
        the states are reloaded from the store, which holds every earlier batch, and the
        watermarks and period reviews are those from before the failed call, so the retry is
        exactly the first attempt. After :meth:`reset` it is :meth:`reset`.
        """
        cp = self._checkpoint
        self.reset()
        if cp is not None:
            wm, closed, sweeps, persisted = cp
            self.watermark.update(wm)
            self._closed_through.update(closed)
            self.sweeps.update({p: s.copy() for p, s in sweeps.items()})
            self._persisted.update(persisted)
            self._checkpoint = cp

    def assign(self, partitions: set[int]) -> int:
        """Load every SKU the store indexes under ``partitions`` and restore their watermarks.

        Called on partition assignment, so that a worker taking over a partition keeps closing
        the periods of its silent SKUs exactly as the previous owner would have: the partition
        watermark is the largest event-time clock among its SKUs. Returns the SKUs loaded (at
        most ``cache_size``).
        """
        loaded = 0
        cfg = self.processor.config
        for p in sorted(partitions):
            keys = [k for k in self.store.keys_of_partition(p) if k not in self.cache]
            keys = keys[: max(0, self.cache_size - len(self.cache))]
            states = self.store.load_many(keys)
            for k, st in states.items():
                self.cache[k] = st
                self.partition_of[k] = p
            loaded += len(states)
            clocks = [st.demand.clock for k, st in self.cache.items() if self.partition_of.get(k) == p]
            if clocks:
                wm = max(clocks)
                self.watermark[p] = wm
                self._closed_through[p] = period_start(cfg.freq, int(wm - cfg.allowed_lateness_s))
            self._restore_review(p)
        return loaded

    def _restore_review(self, p: int) -> None:
        """Load partition ``p``'s pseudo-state: its pool's boundary and its review in progress."""
        key = pool_key(p)
        st = self.store.load_many([key]).get(key)
        if st is None:
            return
        self.cache[key] = st
        closed = self._closed_through.get(p, -1)
        if st.pool is not None:  # re-published at every boundary the partition crossed
            closed = max(closed, st.pool.boundary)
        rec = st.review
        if rec is not None:
            self._persisted.add(p)
            closed = max(closed, rec.boundary)
            self.watermark[p] = max(self.watermark.get(p, -1), rec.watermark)
            self.sweeps[p] = self._new_sweep(copy.deepcopy(rec))
        if closed >= 0:
            self._closed_through[p] = closed

    # --- batch ----------------------------------------------------------------------------
    def _dead_letter(self, out: BatchOutput, rec: Record, stage: str, err: Exception | str,
                     occurred_at: datetime | None = None) -> None:
        dl = DeadLetter.from_failure(rec.topic, rec.partition, rec.offset, rec.key, rec.value,
                                     stage, err, self._now())
        if occurred_at is not None:
            dl = dl.model_copy(update={"occurred_at": occurred_at})
        out.dead_letters.append((dl.key.encode(), encode_event(dl)))
        out.dead_lettered[stage] = out.dead_lettered.get(stage, 0) + 1
        log.warning("dead-lettered %s[%d] offset=%d stage=%s id=%s: %s", rec.topic, rec.partition,
                    rec.offset, stage, dl.dead_letter_id, dl.error_message,
                    extra={"topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
                           "stage": stage, "dead_letter_id": dl.dead_letter_id})

    def process(self, records: list[Record], review_budget: int | None = None) -> BatchOutput:
        """Apply a batch of records in order; return decisions, dead letters and dirty states.

        Then advance the period reviews in progress by at most ``review_budget`` (default
        ``review_chunk_skus``) SKU keys (``records`` may be empty for that alone). With
        ``review_chunk_skus``, the batch may stop early (:attr:`BatchOutput.stopped_at`): the
        records from there on were not applied, and nothing of them is in the output.
        """
        self._checkpoint = (dict(self.watermark), dict(self._closed_through),
                            {p: s.copy() for p, s in self.sweeps.items()}, set(self._persisted))
        for k in self._swept_cold:  # reviewed and saved with the previous batch
            self._uncache(k)
            self.partition_of.pop(k, None)
        self._swept_cold.clear()
        out = BatchOutput()
        decoded: list[tuple[Record, object | None]] = []
        keys: set[str] = set()
        decode_failed: list[tuple[int, str]] = []  # (record index, stage) of the decode dead letters
        for rec in records:
            stage = self._decode(out, rec, decoded, keys)
            if stage is not None:
                decode_failed.append((len(decoded) - 1, stage))
        n_decode_dl = len(out.dead_letters)
        pooled = self.processor.config.partition_pool
        if pooled:
            keys.update(pool_key(rec.partition) for rec, ev in decoded if ev is not None)
        self._ensure_loaded(keys)
        dirty: dict[str, SkuState] = {}
        for p in sorted(self.sweeps):  # review the batch's SKUs first, in one pass per partition
            self._prereview(out, p, decoded, dirty)
        for i, (rec, ev) in enumerate(decoded):
            if ev is None:
                continue
            key = ev.key  # type: ignore[attr-defined]
            if rec.partition in self.sweeps and self._stops_before(rec, epoch(ev.occurred_at)):  # type: ignore[attr-defined]
                out.stopped_at = i
                self._unsend_decode_failures(out, decode_failed, i, n_decode_dl)
                break
            self._seen[f"{rec.topic}:{rec.partition}"] = rec.offset
            if rec.partition in self.sweeps:
                self._before_event(out, rec, key, epoch(ev.occurred_at), dirty)  # type: ignore[attr-defined]
            state = self.cache[key]
            self.cache.move_to_end(key)
            self.partition_of[key] = rec.partition
            meta = EventMeta(rec.topic, rec.partition, rec.offset)
            tombstone = isinstance(ev, PolicyDeleted)
            pool_state, pool = self._pool_for(rec, ev, dirty) if pooled else (None, None)
            try:
                res = self.processor.apply(state, ev, meta, pool)
            except PolicyRejected as exc:  # refused before any change: the state stays
                self._dead_letter(out, rec, "validate", exc)
                continue
            except Exception as exc:  # noqa: BLE001 - any processing failure is dead-lettered
                # The state may be half-updated: drop it from the cache so it reloads clean.
                self._uncache(key)
                dirty.pop(key, None)
                self._dead_letter(out, rec, "process", exc)
                continue
            if res.status == "skipped":
                out.skipped += 1
                continue
            dirty[key] = state
            if res.pool_changed and pool_state is not None and pool is pool_state.pool:
                pool_state.mark_applied(rec.topic, rec.partition, rec.offset)
                dirty[pool_state.key] = pool_state
            if res.status == "late":
                self._dead_letter(out, rec, "late", res.error or "late event",
                                  occurred_at=ev.occurred_at)  # type: ignore[attr-defined]
                continue
            out.applied += 1
            out.stale_policies += res.stale_policy
            out.periods_closed += res.periods_closed
            self._emit(out, res.decisions)
            if not (tombstone or res.stale_policy):  # no event time / ignored
                if self._advance_partition(out, rec, epoch(ev.occurred_at), ev.event_id, dirty,  # type: ignore[attr-defined]
                                           pool if pooled else None):
                    self._prereview(out, rec.partition, decoded[i + 1:], dirty)
        budget = self.review_chunk_skus if review_budget is None else review_budget
        if self.review_chunk_skus is not None and self.sweeps and out.stopped_at is None:
            for p in sorted(self.sweeps):
                budget -= self._sweep(out, p, budget, dirty)
                if budget <= 0:
                    break
        self._persist_reviews(dirty)
        out.dirty = list(dirty.values())
        out.partition_of = {k: self.partition_of[k] for k in dirty if k in self.partition_of}
        self._evict(set(dirty))
        return out

    def _decode(self, out: BatchOutput, rec: Record, decoded: list[tuple[Record, object | None]],
                keys: set[str]) -> str | None:
        """Decode ``rec`` into ``decoded`` (None when dead-lettered); the dead letter's stage, if any."""
        role = self.roles.get(rec.topic)
        if role is None:
            self._dead_letter(out, rec, "decode", f"unknown topic {rec.topic!r}")
            decoded.append((rec, None))
            return "decode"
        if self.partition_for is not None:
            stage = self._misrouted(out, rec)
            if stage is not None:
                decoded.append((rec, None))
                return stage
        try:
            if role == "policies" and not rec.value:
                ev = decode_policy_tombstone(rec.key)
            else:
                ev = decode_for_topic_role(role, rec.value)
        except EventValidationError as exc:
            self._dead_letter(out, rec, "validate", exc)
            decoded.append((rec, None))
            return "validate"
        key = ev.key  # type: ignore[attr-defined]
        if rec.key is not None and rec.key.decode("utf-8", "replace") != key:
            self._dead_letter(out, rec, "validate",
                              f"message key {rec.key!r} does not match payload key {key!r}")
            decoded.append((rec, None))
            return "validate"
        keys.add(key)
        decoded.append((rec, ev))
        return None

    def _stops_before(self, rec: Record, t: int) -> bool:
        """True when the batch must stop before ``rec``: it would finish a large review inline.

        Only with ``review_chunk_skus`` (the caller drains reviews between batches), when the
        record's event time enters the period after the review's and more than
        :attr:`forced_review_inline_skus` keys of the review remain.
        """
        if self.review_chunk_skus is None:
            return False
        s = self.sweeps[rec.partition]
        return self._past_review(s, t) and s.remaining > self.forced_review_inline_skus

    def _past_review(self, s: PartitionSweep, t: int) -> bool:
        """True when event time ``t`` (epoch s) enters a period after review ``s``'s boundary."""
        cfg = self.processor.config
        return period_start(cfg.freq, int(t - cfg.allowed_lateness_s)) > s.record.boundary

    @staticmethod
    def _unsend_decode_failures(out: BatchOutput, failed: list[tuple[int, str]], stop: int,
                                n_decode: int) -> None:
        """Take the decode-stage dead letters of records ``stop`` and later back out of ``out``.

        They are dead-lettered when those records are passed again; the decode stage put its
        dead letters first in ``out.dead_letters``, in record order (``n_decode`` of them).
        """
        keep = sum(1 for i, _ in failed if i < stop)
        del out.dead_letters[keep:n_decode]
        for i, stage in failed:
            if i >= stop:
                out.dead_lettered[stage] -= 1
                if not out.dead_lettered[stage]:
                    del out.dead_lettered[stage]

    def owns(self, rec: Record) -> bool:
        """False when ``rec`` is dead-lettered unread: no key, or not on its key's partition.

        Always True without a partitioner. The event-time aligner asks this too, so that the
        timestamp in a misrouted payload never reorders the partition's own records.
        """
        if self.partition_for is None or self.partitions is None:
            return True
        return bool(rec.key) and self.partition_for(rec.key, self.partitions) == rec.partition  # type: ignore[arg-type]

    def _misrouted(self, out: BatchOutput, rec: Record) -> str | None:
        """Dead-letter ``rec`` when it has no key or is not on its key's partition; the stage if so."""
        assert self.partition_for is not None and self.partitions is not None
        if not rec.key:
            self._dead_letter(out, rec, "missing_key",
                              "record has no key: input records must be keyed by sku@location")
            return "missing_key"
        owner = self.partition_for(rec.key, self.partitions)
        if owner != rec.partition:
            self._dead_letter(out, rec, "wrong_partition",
                              f"key {rec.key!r} belongs to partition {owner} of {self.partitions} "
                              f"(Kafka default partitioner, murmur2), not {rec.partition}")
            return "wrong_partition"
        return None

    def _pool_for(self, rec: Record, ev: object, dirty: dict[str, SkuState]
                  ) -> tuple[SkuState, CovariatePool]:
        """Return the partition's pool state, re-published if ``ev`` enters a new period.

        A tombstone (no event time) never re-publishes it.
        """
        key = pool_key(rec.partition)
        st = self.cache.get(key)
        if st is None:  # evicted mid-batch (clean): reload
            self._ensure_loaded({key})
            st = self.cache[key]
        self.cache.move_to_end(key)
        if st.pool is None:
            st.pool = CovariatePool(self.processor.config.covariate_names)
        if not st.fence_passed(rec.topic, rec.partition, rec.offset):
            import copy

            return st, copy.deepcopy(st.pool)  # already holds this event: changes are dropped
        if isinstance(ev, PolicyDeleted):
            return st, st.pool
        cfg = self.processor.config
        t = epoch(ev.occurred_at)  # type: ignore[attr-defined]
        if st.pool.publish(period_start(cfg.freq, int(t - cfg.allowed_lateness_s)), cfg.controlled_fill_rate,
                           cfg.fill_control_gain):
            st.mark_applied(rec.topic, rec.partition, rec.offset)
            dirty[key] = st
        return st, st.pool

    def _emit(self, out: BatchOutput, decisions: list) -> None:  # type: ignore[type-arg]
        for d in decisions:
            out.decisions.append((d.key.encode(), encode_event(d)))
            out.decision_kinds[d.kind] = out.decision_kinds.get(d.kind, 0) + 1

    def _advance_partition(self, out: BatchOutput, rec: Record, t: int, trigger_id: str,
                           dirty: dict[str, SkuState], record_pool: CovariatePool | None = None) -> bool:
        """Start the period review of the partition when its watermark crosses a period boundary.

        The review covers every SKU of the partition whose open period closed (cached or not);
        it runs here to completion without ``review_chunk_skus``, else in chunks after the
        batch's records (:mod:`agents.review.progress`). Returns True when a review is left in
        progress.

        ``record_pool`` is the pool :meth:`_pool_for` gave the record (the partition's own, or a
        copy when the pool already held the record): the review adds to the partition's pool
        exactly when the record did. Deciding it again here would find the fence the record's own
        publication just moved, and drop the review's changes (the covariate sums and the
        controller's counts of the SKUs it closes).
        """
        p = rec.partition
        if t <= self.watermark.get(p, -1):
            return False
        self.watermark[p] = t
        cfg = self.processor.config
        wm = int(t - cfg.allowed_lateness_s)
        boundary = period_start(cfg.freq, wm)
        if boundary <= self._closed_through.get(p, -1):
            return False
        self._closed_through[p] = boundary
        assert p not in self.sweeps, "a review is finished before the watermark enters the next period"
        pool_state = self.cache.get(pool_key(p)) if cfg.partition_pool else None
        pool_live = (pool_state is not None and pool_state.pool is not None
                     and (record_pool is pool_state.pool if record_pool is not None
                          else pool_state.fence_passed(rec.topic, rec.partition, rec.offset)))
        suffix = f":{p}"
        frontier = {tp: off for tp, off in self._seen.items() if tp.endswith(suffix)}
        self.sweeps[p] = self._new_sweep(ReviewProgress(boundary, t, rec.topic, p, rec.offset, trigger_id,
                                                        pool_live, frontier))
        if self.review_chunk_skus is None:
            self._sweep(out, p, None, dirty)
        return p in self.sweeps

    # --- the period review (agents.review.progress) ------------------------------------------
    def _new_sweep(self, record: ReviewProgress) -> PartitionSweep:
        """A cursor over partition ``record.partition``'s SKUs: its stored index and cached keys."""
        p = record.partition
        keys = set(self.store.keys_of_partition(p))
        keys.update(k for k, q in self.partition_of.items() if q == p)
        cfg = self.processor.config
        return PartitionSweep(record, sorted(k for k in keys if not is_pool_key(k)),
                              period_seconds(cfg.freq), cfg.allowed_lateness_s)

    def _prereview(self, out: BatchOutput, p: int, decoded: list[tuple[Record, object | None]],
                   dirty: dict[str, SkuState]) -> None:
        """Review, in one pass, the SKUs of partition ``p``'s review that have records in ``decoded``.

        Reviewing a SKU before the other SKUs' events of the batch changes nothing for it (its
        state changes only by its own events and its review; the pool values a review reads are
        fixed until the next boundary, which finishes the review first), so this is the
        per-event rule of :meth:`_before_event` for the whole batch at once.
        """
        s = self.sweeps.get(p)
        if s is None:
            return
        keys = dict.fromkeys(ev.key for rec, ev in decoded  # type: ignore[attr-defined]
                             if ev is not None and rec.partition == p)
        states = [st for k in keys if (st := self.cache.get(k)) is not None and s.covers(st)]
        self._review(out, s, states, dirty)

    def _before_event(self, out: BatchOutput, rec: Record, key: str, t: int,
                      dirty: dict[str, SkuState]) -> None:
        """Keep the partition's review exact before an event of it is applied.

        Finish the review when the event's time enters the next period (before the pool is
        re-published); otherwise review the event's own SKU first if the review covers it.
        """
        p = rec.partition
        s = self.sweeps[p]
        if self._past_review(s, t):
            self._sweep(out, p, None, dirty)
            return
        s.see(rec.topic, rec.partition, rec.offset)
        state = self.cache.get(key)
        if state is not None and state.fence_passed(rec.topic, rec.partition, rec.offset) and s.covers(state):
            self._review(out, s, [state], dirty)

    def _sweep(self, out: BatchOutput, p: int, budget: int | None, dirty: dict[str, SkuState]) -> int:
        """Advance partition ``p``'s review by at most ``budget`` keys (None: to the end).

        Cold SKUs are loaded ``REVIEW_LOAD_CHUNK`` at a time; those the review covers are
        reviewed, cached at the least recently used end and dropped again at the next batch.
        Returns the keys passed.
        """
        s = self.sweeps[p]
        passed = 0
        while not s.done and (budget is None or passed < budget):
            n = REVIEW_LOAD_CHUNK if budget is None else min(REVIEW_LOAD_CHUNK, budget - passed)
            keys = s.take(n)
            passed += len(keys)
            missing = [k for k in keys if k not in self.cache]
            loaded = self.store.load_many(missing) if missing else {}
            states: list[SkuState] = []
            for k in keys:
                st = self.cache.get(k)
                if st is None:
                    st = loaded.get(k)
                    if st is None or not s.covers(st):
                        continue
                    self.cache[k] = st
                    self.cache.move_to_end(k, last=False)
                    self.partition_of[k] = p
                    self._swept_cold.add(k)
                elif not s.covers(st):
                    continue
                states.append(st)
            self._review(out, s, states, dirty)
        if s.done:
            del self.sweeps[p]
        return passed

    def _review(self, out: BatchOutput, s: PartitionSweep, states: list[SkuState],
                dirty: dict[str, SkuState]) -> None:
        """Review ``states`` at the review's watermark and trigger; emit, mark dirty."""
        if not states:
            return
        r = s.record
        pool_state: SkuState | None = None
        pool = None
        if self.processor.config.partition_pool:
            key = pool_key(r.partition)
            self._ensure_loaded({key})
            pool_state = self.cache[key]
            pool = pool_state.pool
            if pool is not None and not r.pool_live:
                pool = copy.deepcopy(pool)  # the pool already held the trigger: changes dropped
        meta = s.meta
        if self.column_review and len(states) >= COLUMN_MIN_SKUS:
            results = self.review.run(states, r.watermark, meta, r.trigger_event_id, pool)
        else:
            results = [self.processor.advance(st, r.watermark, meta, r.trigger_event_id, pool)
                       for st in states]
        for state, res in zip(states, results, strict=True):
            if res.pool_changed and pool_state is not None and pool is pool_state.pool:
                pool_state.mark_applied(r.topic, r.partition, r.offset)
                dirty[pool_state.key] = pool_state
            if res.status == "applied":
                dirty[state.key] = state
                out.periods_closed += res.periods_closed
                self._emit(out, res.decisions)

    def _persist_reviews(self, dirty: dict[str, SkuState]) -> None:
        """Write each review still in progress on its partition's pseudo-state; clear finished ones."""
        for p in sorted(set(self.sweeps) | self._persisted):
            key = pool_key(p)
            self._ensure_loaded({key})
            st = self.cache[key]
            s = self.sweeps.get(p)
            if s is None:
                st.review = None
                self._persisted.discard(p)
            else:
                st.review = copy.deepcopy(s.record)
                self._persisted.add(p)
            dirty[key] = st
