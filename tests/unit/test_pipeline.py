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
