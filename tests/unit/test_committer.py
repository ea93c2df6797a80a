"""The batch protocol (streams.committer) without a broker: in-memory store, fake transport.

What must hold: outputs are produced before the state that records them is saved, offsets are
acked only after the save, held records are never acked, outages are retried without acking,
a store that lost writes stops the worker, and a crash between phases replays to the same
state and the same decision ids.
"""

from __future__ import annotations

import asyncio
from collections import namedtuple
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.alignment import EventTimeAligner, rank_topics
from agents.pipeline import Pipeline, Record
from agents.processor import ProcessorConfig, SkuProcessor
from agents.state import InMemoryStateStore, SkuState, StateRegressionError, TopicPartition
from schemas.events import OrderPlaced, StockSnapshot, decode_decision, encode_event
from streams.committer import BatchCommitter, progress_of

T0 = datetime(2011, 1, 3, tzinfo=UTC)
ROLES = {"orders": "orders", "inventory": "inventory"}
TP = namedtuple("TP", "topic partition")


class StoreDown(Exception):
    """The fake outage of a store call."""


class FakeTransport:
    """A :class:`streams.committer.Transport` that records what happens, in order."""

    def __init__(self, log: list[tuple[str, Any]], highwater: dict[TopicPartition, int] | None = None,
                 produce_failures: int = 0) -> None:
        self.log = log
        self.hw = highwater or {}
        self.produce_failures = produce_failures
        self.produced: list[tuple[bytes, bytes]] = []
        self.dead_letters: list[tuple[bytes, bytes]] = []
        self.acked: list[Any] = []
        self.in_flight: set[Any] = set()

    async def produce(self, decisions: list[tuple[bytes, bytes]],
                      dead_letters: list[tuple[bytes, bytes]]) -> None:
        if self.produce_failures:
            self.produce_failures -= 1
            self.log.append(("produce-failed", len(decisions) + len(dead_letters)))
            raise ConnectionError("broker down")
        self.produced += decisions
        self.dead_letters += dead_letters
        self.log.append(("produce", len(decisions) + len(dead_letters)))

    async def ack(self, handles: Sequence[Any]) -> None:
        self.acked += list(handles)
        self.in_flight.difference_update(handles)
        self.log.append(("ack", list(handles)))

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.hw.get(tp)

    def hold(self, handles: Sequence[Any]) -> None:
        self.in_flight.difference_update(handles)

    def unhold(self, handles: Sequence[Any]) -> None:
        self.in_flight.update(handles)


class LoggingStore(InMemoryStateStore):
    """The in-memory store, logging saves and failing the first ``failures`` calls."""

    def __init__(self, log: list[tuple[str, Any]], failures: int = 0) -> None:
        super().__init__()
        self.log = log
        self.failures = failures

    def save_many(self, states: Iterable[SkuState], *args: Any, **kwargs: Any) -> int:
        if self.failures:
            self.failures -= 1
            self.log.append(("save-failed", None))
            raise StoreDown("redis down")
        n = super().save_many(states, *args, **kwargs)
        self.log.append(("save", args[1] if len(args) > 1 else kwargs.get("progress")))
        return n


def order(offset: int, day: int, qty: int = 3, sku: str = "A", partition: int = 0) -> Record:
    ev = OrderPlaced(event_id=f"o-{sku}-{offset}", occurred_at=T0 + timedelta(days=day, hours=9),
                     sku=sku, location="W1", order_id=f"{sku}-{offset}", quantity=qty, unit_price=2.0)
    return Record("orders", partition, offset, ev.key.encode(), encode_event(ev))


def snapshot(offset: int, day: int, on_hand: int, sku: str = "A") -> Record:
    ev = StockSnapshot(event_id=f"s-{sku}-{offset}", occurred_at=T0 + timedelta(days=day, hours=8),
                       sku=sku, location="W1", on_hand=on_hand)
    return Record("inventory", 0, offset, ev.key.encode(), encode_event(ev))


def committer(store: InMemoryStateStore, transport: FakeTransport, **kw: Any) -> BatchCommitter[Any]:
    cfg = ProcessorConfig(covariates=False, allowed_lateness_s=0.0, min_history_periods=3)
    pipeline = Pipeline(SkuProcessor(cfg), store, ROLES)  # type: ignore[arg-type]
    aligner: EventTimeAligner[Any] = EventTimeAligner(rank_topics(ROLES), idle_s=float("inf"))
    aligner.start_at({("orders", 0): 0, ("inventory", 0): 0})  # as a rewind after assignment does
    return BatchCommitter(pipeline, store, transport, aligner, store_errors=(StoreDown,),
                          backoff_initial_s=0.0, executor_io=False, **kw)


def drained(records: list[Record]) -> dict[TopicPartition, int]:
    """High watermarks that say every topic-partition is read up to the given records."""
    hw = {("orders", 0): 0, ("inventory", 0): 0}
    for r in records:
        hw[(r.topic, r.partition)] = max(hw[(r.topic, r.partition)], r.offset + 1)
    return hw


def history(days: int = 12) -> list[Record]:
    """A SKU that sells every day and runs low: decisions after ``min_history_periods``."""
    recs = [snapshot(0, 0, 40)]
    recs += [order(i, i, qty=3 + i % 2) for i in range(days)]
    return recs


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_phases_run_in_order_and_offsets_are_acked_only_after_the_save() -> None:
    log: list[tuple[str, Any]] = []
    recs = history()
    transport = FakeTransport(log, drained(recs))
    store = LoggingStore(log)
    c = committer(store, transport, on_phase=lambda name, n: log.append((name, n)))
    run(c.submit([(r, f"h{r.topic}{r.offset}") for r in recs], now=0.0))
    kinds = [k for k, _ in log]
    assert kinds == ["produce", "after_produce", "save", "after_save", "ack"]
    assert transport.produced, "the SKU ran low: at least one decision was produced"
    assert log[2][1] == {("inventory", 0): 0, ("orders", 0): len(recs) - 2}
    assert sorted(transport.acked) == sorted(f"h{r.topic}{r.offset}" for r in recs)
    assert c.durable == {("inventory", 0): 0, ("orders", 0): len(recs) - 2}
    assert c.ready and c.batches == 1


def test_records_held_by_the_aligner_are_neither_processed_nor_acked() -> None:
    log: list[tuple[str, Any]] = []
    inv = snapshot(0, 1, 40)  # the inventory record at day 1 is on the broker, not yet delivered
    early, late = order(0, 0), order(1, 2)
    transport = FakeTransport(log, {("orders", 0): 2, ("inventory", 0): 1})
    c = committer(LoggingStore(log), transport)
    run(c.submit([(early, "o0"), (late, "o1")], now=0.0))
    # inventory[0] holds an unread record of unknown event time: both orders must wait for it
    assert transport.acked == [] and [k for k, _ in log] == []
    assert not transport.in_flight & {"o0", "o1"}, "held records are out of the in-flight set"
    assert len(c.aligner) == 2
    run(c.submit([(inv, "i0")], now=1.0))
    assert transport.acked == ["o0", "i0", "o1"]  # event-time order: inventory (day 1), order (day 2)
    assert len(c.aligner) == 0


def test_store_outage_on_save_is_retried_and_nothing_is_acked_before_it_succeeds() -> None:
    log: list[tuple[str, Any]] = []
    recs = history(4)
    transport = FakeTransport(log, drained(recs))
    c = committer(LoggingStore(log, failures=2), transport)
    run(c.submit([(r, r.offset) for r in recs], now=0.0))
    kinds = [k for k, _ in log]
    assert kinds == ["produce", "save-failed", "save-failed", "save", "ack"]
    assert c.ready


def test_broker_failure_is_retried_and_the_save_waits_for_delivery() -> None:
    log: list[tuple[str, Any]] = []
    bad = Record("orders", 0, 0, b"A@W1", b"not json")
    transport = FakeTransport(log, drained([bad]), produce_failures=2)
    c = committer(LoggingStore(log), transport)
    run(c.submit([(bad, "bad")], now=0.0))
    assert [k for k, _ in log] == ["produce-failed", "produce-failed", "produce", "save", "ack"]
    assert len(transport.dead_letters) == 1, "the bad record is dead-lettered, not dropped"


def test_a_store_that_lost_writes_stops_the_batch_before_save_and_ack() -> None:
    log: list[tuple[str, Any]] = []
    store = LoggingStore(log)
    first, second = history(3), [order(3, 3)]
    transport = FakeTransport(log, drained(first + second))
    regressions: list[StateRegressionError] = []

    def stop(exc: StateRegressionError) -> None:
        regressions.append(exc)
        raise exc

    c = committer(store, transport, on_regression=stop)
    run(c.submit([(r, r.offset) for r in first], now=0.0))
    store.lose_progress(0)  # e.g. Redis restarted from an older snapshot
    log.clear()
    with pytest.raises(StateRegressionError):
        run(c.submit([(r, "late") for r in second], now=1.0))
    assert [k for k, _ in log] == ["produce"]  # nothing saved, nothing acked
    assert regressions[0].lagging[("orders", 0)] == (-1, 2)
    assert "memory is behind" in str(regressions[0])


def test_check_progress_reports_a_store_behind_the_durable_writes() -> None:
    log: list[tuple[str, Any]] = []
    store = LoggingStore(log)
    recs = history(3)
    seen: list[StateRegressionError] = []
    c = committer(store, FakeTransport(log, drained(recs)), on_regression=seen.append)
    run(c.check_progress())
    assert not seen  # nothing durable yet: nothing to check
    run(c.submit([(r, r.offset) for r in recs], now=0.0))
    run(c.check_progress())
    assert not seen
    store.lose_progress(0)
    run(c.check_progress())
    assert seen and set(seen[0].lagging) == {("orders", 0), ("inventory", 0)}


@pytest.mark.parametrize("crash_at", ["after_produce", "after_save"])
def test_a_crash_between_phases_replays_to_the_same_state_and_decision_ids(crash_at: str) -> None:
    recs = history(12)
    hw = drained(recs)

    class Crash(BaseException):
        pass

    def reference() -> tuple[dict[str, bytes], list[str]]:
        store, t = InMemoryStateStore(), FakeTransport([], hw)
        run(committer(store, t).submit([(r, r.offset) for r in recs], now=0.0))
        return {k: store.load_many([k])[k].encode() for k in store.keys()}, ids(t.produced)

    def ids(produced: list[tuple[bytes, bytes]]) -> list[str]:
        return sorted(decode_decision(v).event_id for _, v in produced)

    def crash(name: str, n: int) -> None:
        if name == crash_at:
            raise Crash

    store, first = InMemoryStateStore(), FakeTransport([], hw)
    with pytest.raises(Crash):
        run(committer(store, first, on_phase=crash).submit([(r, r.offset) for r in recs[:8]], now=0.0))
    assert first.acked == [], "a crashed batch is never acked"
    assert first.produced, "the crashed batch had decided (so the replay must not lose them)"
    assert (store.keys() != []) == (crash_at == "after_save")
    # the restarted worker reads everything again from the (uncommitted) start
    again = FakeTransport([], hw)
    run(committer(store, again).submit([(r, r.offset) for r in recs], now=0.0))
    want_state, want_ids = reference()
    assert {k: store.load_many([k])[k].encode() for k in store.keys()} == want_state
    assert want_ids, "the reference run decides at least once"
    assert set(ids(first.produced)) <= set(want_ids)  # same deterministic ids
    assert sorted(set(ids(first.produced)) | set(ids(again.produced))) == want_ids
    if crash_at == "after_produce":  # the state that recorded them was lost: re-emitted
        assert ids(again.produced) == want_ids


def test_rewind_seeks_back_to_the_stored_progress_and_sets_the_aligner_positions() -> None:
    store = InMemoryStateStore()
    store.save_many([], progress={("orders", 0): 4, ("inventory", 0): 9})
    c = committer(store, FakeTransport([]))
    sought: list[dict[Any, int]] = []

    async def seek(targets: dict[Any, int]) -> None:
        sought.append(targets)

    o0, i0 = TP("orders", 0), TP("inventory", 0)
    async def earliest(tps: list[Any]) -> dict[Any, int]:
        assert tps == [o0, i0]
        return {o0: 2}

    targets = run(c.rewind([o0, i0], {o0: 10, i0: 10}, earliest, seek))
    assert targets == sought[0] == {o0: 5}
    assert c.durable == {("orders", 0): 4, ("inventory", 0): 9}
    assert c.aligner.position("orders", 0) == 5 and c.aligner.position("inventory", 0) == 10


def test_revoke_drops_held_records_cached_states_and_durable_progress() -> None:
    log: list[tuple[str, Any]] = []
    transport = FakeTransport(log, {("orders", 0): 5, ("inventory", 0): 3})
    c = committer(LoggingStore(log), transport)
    run(c.submit([(order(0, 0), "o0")], now=0.0))  # held: inventory[0] has unread records
    assert len(c.aligner) == 1 and transport.acked == []
    c.durable[("orders", 0)] = 3
    run(c.revoke())
    assert len(c.aligner) == 0 and c.durable == {} and not c.ready and transport.acked == []


def test_progress_of_is_the_highest_offset_per_topic_partition() -> None:
    recs = [order(5, 0), order(3, 0), order(7, 0, partition=1), snapshot(2, 0, 1)]
    assert progress_of(recs) == {("orders", 0): 5, ("orders", 1): 7, ("inventory", 0): 2}


SIX = "ABCDEF"


def six_skus_day0() -> list[Record]:
    """Six SKUs with stock and one order each on day 0 (offsets 0..5 per topic)."""
    first = [snapshot(i, 0, 5, sku=s) for i, s in enumerate(SIX)]
    return first + [order(i, 0, qty=2, sku=s) for i, s in enumerate(SIX)]


def chunked(log: list[tuple[str, Any]], records: list[Record], chunk: int | None
            ) -> tuple[BatchCommitter[Any], FakeTransport, LoggingStore]:
    """An assigned committer whose pipeline passes ``chunk`` review keys per review-only batch."""
    store = LoggingStore(log)
    transport = FakeTransport(log, drained(records))
    c = committer(store, transport)
    c.pipeline.review_chunk_skus = chunk
    c.assigned = True
    return c, transport, store


def test_idle_ticks_finish_a_period_review_in_review_only_batches() -> None:
    """With ``review_chunk_skus=1`` the review of six SKUs outlasts the batch that crossed the
    day; ticks commit review-only batches (decisions, states, no progress, no ack) until it is
    done, and the states equal those of a review run whole inside that batch."""
    skus, first = SIX, six_skus_day0()
    second = [order(len(skus), 1, qty=1, sku="A")]  # day 1: closes day 0 of every SKU
    states = []
    for chunk in (None, 1):
        log: list[tuple[str, Any]] = []
        c, transport, store = chunked(log, first + second, chunk)
        run(c.submit([(r, (r.topic, r.offset)) for r in first], now=0.0))
        run(c.submit([(r, (r.topic, r.offset)) for r in second], now=1.0))
        assert c.pipeline.sweeping == (chunk is not None)
        durable, acked, n = dict(c.durable), list(transport.acked), len(log)
        run(c.tick(now=2.0))
        assert not c.pipeline.sweeping
        assert c.durable == durable and transport.acked == acked, "a review-only batch moves no offset"
        ticks = [v for k, v in log[n:] if k == "save"]
        # one key per batch: A (reviewed by its own order: nothing left but the review's record), B..F;
        # the batch of the order passed none of them (records wait for at most one chunk)
        assert len(ticks) == (0 if chunk is None else len(skus))
        assert all(progress == {} for progress in ticks)
        got = store.load_many([f"{s}@W1" for s in skus])
        assert all(st.demand.open_start == int((T0 + timedelta(days=1)).timestamp()) for st in got.values())
        states.append({k: st.encode() for k, st in got.items()})
    assert states[0] == states[1]


def test_a_review_behind_event_time_is_finished_in_review_only_batches_before_the_rest() -> None:
    """A batch whose second record enters day 2 while day 1's review of six SKUs is still in
    progress: the first record is committed (saved, acked), the review is finished in review-only
    batches, then the second record; states equal those of a review run whole inside the batch."""
    skus, first = SIX, six_skus_day0()
    second = [order(len(skus), 1, qty=1, sku="A"), order(len(skus) + 1, 2, qty=1, sku="B")]
    states = []
    for chunk in (None, 1):
        log: list[tuple[str, Any]] = []
        c, transport, store = chunked(log, first + second, chunk)
        c.pipeline.forced_review_inline_skus = 0
        run(c.submit([(r, (r.topic, r.offset)) for r in first], now=0.0))
        run(c.tick(now=0.5))  # (the first record's review: nothing closes yet)
        n = len(log)
        run(c.submit([(r, (r.topic, r.offset)) for r in second], now=1.0))
        saves = [v for k, v in log[n:] if k == "save"]
        acks = [v for k, v in log[n:] if k == "ack"]
        if chunk is None:
            assert saves == [{("orders", 0): len(skus) + 1}] and len(acks) == 1
        else:
            assert saves[0] == {("orders", 0): len(skus)}  # the record before the stop
            assert acks[0] == [("orders", len(skus))]
            assert all(p == {} for p in saves[1:-1]) and len(saves) >= 3  # review-only batch(es)
            assert saves[-1] == {("orders", 0): len(skus) + 1} and acks[-1] == [("orders", len(skus) + 1)]
        assert not c.pipeline.sweeping or chunk is not None
        run(c.tick(now=2.0))
        assert not c.pipeline.sweeping
        got = store.load_many([f"{s}@W1" for s in skus])
        assert all(st.demand.open_start == int((T0 + timedelta(days=2)).timestamp()) for st in got.values())
        states.append({k: st.encode() for k, st in got.items()})
    assert states[0] == states[1]


def test_a_store_back_from_an_older_snapshot_after_an_outage_stops_before_producing() -> None:
    """The store fails while a batch is processed and comes back without this worker's last
    durable progress: the retry stops on the regression; nothing of the batch is produced."""
    log: list[tuple[str, Any]] = []

    class Restored(LoggingStore):
        down = False

        def load_many(self, keys: list[str]) -> dict[str, SkuState]:
            if self.down:
                self.down = False
                self.lose_progress(0)  # back from a snapshot taken before the first batch
                raise StoreDown("redis restarting")
            return super().load_many(keys)

    store = Restored(log)
    first = history(3)
    second = [order(3, 3, sku="B"), Record("orders", 0, 4, b"A@W1", b"not json")]  # a dead letter
    transport = FakeTransport(log, drained(first + second))
    c = committer(store, transport, on_regression=lambda exc: (_ for _ in ()).throw(exc))
    run(c.submit([(r, r.offset) for r in first], now=0.0))
    produced = len(transport.produced) + len(transport.dead_letters)
    store.down = True
    with pytest.raises(StateRegressionError):
        run(c.submit([(r, "b") for r in second], now=1.0))
    assert len(transport.produced) + len(transport.dead_letters) == produced
    assert "b" not in transport.acked
