"""Pipeline cache: the hot-SKU LRU stays bounded whatever the LRU order of dirty states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents.pipeline import Pipeline, Record
from agents.processor import ProcessorConfig, SkuProcessor
from agents.state import InMemoryStateStore
from schemas.events import OrderPlaced, encode_event

T0 = datetime(2011, 1, 3, tzinfo=UTC)


def _order(sku: str, day: int, offset: int) -> Record:
    ev = OrderPlaced(event_id=f"{sku}-{day}-{offset}", occurred_at=T0 + timedelta(days=day, hours=9),
                     sku=sku, location="W1", order_id=f"{sku}-{offset}", quantity=3, unit_price=2.0)
    return Record("orders", 0, offset, ev.key.encode(), encode_event(ev))


def test_cache_is_bounded_when_the_least_recent_state_is_dirty() -> None:
    store = InMemoryStateStore()
    pipe = Pipeline(SkuProcessor(ProcessorConfig(covariates=False)), store, {"orders": "orders"},
                    cache_size=3)
    off = 0
    skus = [f"S{i}" for i in range(6)]
    for day in range(3):  # every day: all six SKUs sell, then the first one sells again
        recs = []
        for sku in skus:
            recs.append(_order(sku, day, off))
            off += 1
        out = pipe.process(recs)
        store.save_many(out.dirty, out.partition_of)
        # the batch's six dirty states may stay; once saved, the next batch evicts down to 3
        assert len(pipe.cache) <= max(3, len(out.dirty))
        out = pipe.process([_order("S0", day, off)])
        off += 1
        store.save_many(out.dirty, out.partition_of)
        # only S0 is dirty now: the clean states are evicted around it, least recent first
        assert len(pipe.cache) == 3
        assert "S0@W1" in pipe.cache
        assert list(pipe.cache)[-1] == "S0@W1"
        assert set(pipe.partition_of) <= set(pipe.cache)


def test_eviction_keeps_every_state_dirty_in_the_batch() -> None:
    store = InMemoryStateStore()
    pipe = Pipeline(SkuProcessor(ProcessorConfig(covariates=False)), store, {"orders": "orders"},
                    cache_size=2)
    out = pipe.process([_order(f"S{i}", 0, i) for i in range(5)])
    assert {s.key for s in out.dirty} == {f"S{i}@W1" for i in range(5)}
    assert set(pipe.cache) == {s.key for s in out.dirty}  # unsaved states are never dropped


def test_a_dirty_state_at_the_lru_head_does_not_stop_eviction() -> None:
    # A partition's period close dirties silent SKUs where they stand in the LRU order (it does
    # not move them to the most recent end): eviction must skip them, not stop at them.
    from agents.state import SkuState

    pipe = Pipeline(SkuProcessor(ProcessorConfig(covariates=False)), InMemoryStateStore(),
                    {"orders": "orders"}, cache_size=2)
    for k in ("D1@W1", "C1@W1", "D2@W1", "C2@W1", "C3@W1"):
        pipe.cache[k] = SkuState.new(k)
        pipe.partition_of[k] = 0
    pipe._evict({"D1@W1", "D2@W1"})
    assert list(pipe.cache) == ["D1@W1", "D2@W1"]
    assert set(pipe.partition_of) == {"D1@W1", "D2@W1"}


def test_a_batch_stops_before_a_record_that_would_finish_a_large_review_inline() -> None:
    """A review that falls behind event time is not finished inside the batch: the batch stops
    before the record, with the dead letters of the records after it taken back out, so that the
    caller drains the review in bounded batches and passes the rest again (each record applied
    and dead-lettered exactly once, the states held at once bounded by the drain's chunk)."""
    store = InMemoryStateStore()
    pipe = Pipeline(SkuProcessor(ProcessorConfig(covariates=False)), store, {"orders": "orders"},
                    cache_size=2, review_chunk_skus=1)
    pipe.forced_review_inline_skus = 2
    skus = [f"S{i}" for i in range(8)]
    day0 = [_order(s, 0, i) for i, s in enumerate(skus)]
    out = pipe.process(day0)
    store.save_many(out.dirty, out.partition_of)
    while pipe.sweeping:
        out = pipe.process([])
        store.save_many(out.dirty, out.partition_of)
    bad = Record("orders", 0, 50, b"S0@W1", b"{not json")
    bad2 = Record("orders", 0, 51, b"S1@W1", b"{not json")
    batch = [_order("S0", 1, 8), bad, _order("S1", 2, 9), bad2, _order("S2", 2, 10)]
    out = pipe.process(batch)
    assert out.stopped_at == 2  # day 1 started the review of eight SKUs; day 2 would force it
    assert out.applied == 1 and out.dead_lettered == {"validate": 1} and len(out.dead_letters) == 1
    assert pipe.sweeping
    store.save_many(out.dirty, out.partition_of)
    held = []
    while pipe.sweeping:
        out = pipe.process([], 3)
        held.append(len(out.dirty))
        store.save_many(out.dirty, out.partition_of)
    assert len(held) >= 2 and max(held) <= 4  # three keys per batch (+ the partition's pseudo-state)
    out = pipe.process(batch[2:])
    assert out.stopped_at is None and out.applied == 2 and out.dead_lettered == {"validate": 1}
    store.save_many(out.dirty, out.partition_of)
    while pipe.sweeping:
        store.save_many(*(lambda o: (o.dirty, o.partition_of))(pipe.process([])))
    # every SKU had its day-0 and day-1 periods closed once
    day2 = int((T0 + timedelta(days=2)).timestamp())
    assert all(st.demand.open_start == day2 for st in store.load_many([f"{s}@W1" for s in skus]).values())


def test_without_review_chunks_a_late_review_is_finished_inside_the_batch() -> None:
    pipe = Pipeline(SkuProcessor(ProcessorConfig(covariates=False)), InMemoryStateStore(),
                    {"orders": "orders"}, cache_size=100)
    pipe.forced_review_inline_skus = 0
    skus = [f"S{i}" for i in range(8)]
    pipe.process([_order(s, 0, i) for i, s in enumerate(skus)])
    out = pipe.process([_order("S0", 1, 8), _order("S1", 2, 9)])
    assert out.stopped_at is None and out.applied == 2 and not pipe.sweeping


def test_states_dropped_from_the_cache_are_freed_without_the_cyclic_collector() -> None:
    """The worker freezes its heap between batches (streams.gc_tuning), so a dropped state that
    sits in a reference cycle (its derived cache refers back to it) would stay in memory until
    the next full collection: RSS growing with the SKUs the period reviews pass. Dropped states
    must be freed by reference counting alone."""
    import gc

    from agents.state import SkuState

    store = InMemoryStateStore()
    pipe = Pipeline(SkuProcessor(ProcessorConfig(covariates=False)), store, {"orders": "orders"},
                    cache_size=5, review_chunk_skus=50)

    def alive() -> int:  # (this test's states only: others may be alive in the same process)
        return sum(1 for o in gc.get_objects() if type(o) is SkuState and o.key.startswith("FREE"))

    off = 0
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for day in range(45):  # 30 of 300 SKUs sell each day; every review passes all of them
            out = pipe.process([_order(f"FREE{(day * 30 + i) % 300}", day, off + i) for i in range(30)])
            off += 30
            store.save_many(out.dirty, out.partition_of)
            while pipe.sweeping:
                out = pipe.process([])
                store.save_many(out.dirty, out.partition_of)
        del out
        assert sum(st.derived is not None for st in pipe.cache.values()) > 0  # levels were derived
        assert alive() <= len(pipe.cache)
        pipe.reset()
        assert alive() == 0
    finally:
        if enabled:
            gc.enable()
