"""The period review of every SKU of a partition, in chunks between batches, equals the eager review.

A reference pipeline reviews each partition's SKUs inside the batch whose record crossed the
period boundary, with every SKU cached. The pipelines under test review in chunks of a few SKUs
after each batch (``review_chunk_skus``), with a hot cache far smaller than the partition (most
SKUs are cold: loaded, reviewed, saved and evicted by the review), other batch boundaries, and
crashes: a batch processed but not saved, then a new pipeline on the same store resumes from the
stored progress (``assign``), or a store failure mid-batch (``rollback``, then the retry). Every
run must end with the reference's states, byte for byte, and the same decision ids and payloads.

The scenario has two partitions, SKUs that fall silent, SKUs that start late, late orders of
known SKUs (dead-lettered as late) and new SKUs whose first order is older than the crossing
(the review must not cover them: they did not exist when the period closed).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.pipeline import Pipeline, Record
from agents.policy import PolicyParams
from agents.processor import ProcessorConfig, SkuProcessor
from agents.review.progress import PartitionSweep
from agents.state import InMemoryStateStore, ReviewProgress, SkuState, is_pool_key, pool_key
from schemas.events import decode_decision, encode_event
from schemas.inputs import OrderPlaced, PurchaseOrderPlaced, StockReceived, StockSnapshot

T0 = datetime(2011, 1, 3, tzinfo=UTC)
ROLES = {"orders": "orders", "inventory": "inventory", "promotions": "promotions"}
LATE = timedelta(hours=3)  # delivery delay of late records: past the 1 h allowed lateness


def _scenario(seed: int, weekly: bool, n_skus: int, periods: int) -> list[Record]:
    """Records of two partitions in delivery order (module docstring)."""
    rng = np.random.default_rng(seed)
    step = timedelta(weeks=1) if weekly else timedelta(days=1)
    events: list[tuple[datetime, str, str, object]] = []  # (delivered, topic, id, event)

    def add(at: datetime, topic: str, ev: object, delay: timedelta = timedelta(0)) -> None:
        events.append((at + delay, topic, ev.event_id, ev))  # type: ignore[attr-defined]

    for i in range(n_skus):
        sku = f"S{i:03d}"
        first = 0 if i % 4 else int(rng.integers(1, periods // 2))
        rate = float(rng.choice([0.3, 1.0, 4.0]))
        t = T0 + first * step + timedelta(minutes=i)
        add(t, "inventory", StockSnapshot(event_id=f"{sku}-seed", occurred_at=t, sku=sku, location="W",
                                          on_hand=int(rng.integers(0, 40))))
        silent = periods if i % 3 else int(rng.integers(first + 1, periods + 1))
        for p in range(first, silent):
            base = T0 + p * step
            for j in range(int(rng.poisson(rate))):
                at = base + timedelta(hours=int(rng.integers(1, 20)), minutes=j)
                qty = int(rng.integers(1, 4)) if rng.random() > 0.05 else int(rng.integers(15, 40))
                add(at, "orders", OrderPlaced(event_id=f"{sku}-o{p}-{j}", occurred_at=at, sku=sku,
                                              location="W", order_id=f"{sku}-{p}-{j}", quantity=qty,
                                              unit_price=2.0))
            if rng.random() < 0.06:
                at, po, qty = base + timedelta(hours=21), f"{sku}-po{p}", int(rng.integers(5, 80))
                add(at, "inventory", PurchaseOrderPlaced(event_id=f"{sku}-pp{p}", occurred_at=at, sku=sku,
                                                         location="W", purchase_order_id=po, quantity=qty,
                                                         expected_arrival=at + 2 * step))
                arr = at + int(rng.integers(1, 4)) * step
                add(arr, "inventory", StockReceived(event_id=f"{sku}-r{p}", occurred_at=arr, sku=sku,
                                                    location="W", quantity=qty, purchase_order_id=po))
            if p > first and rng.random() < 0.02:  # a late order: dead-lettered, after the SKU's review
                at = base - timedelta(minutes=10)
                add(at, "orders", OrderPlaced(event_id=f"{sku}-late{p}", occurred_at=at, sku=sku,
                                              location="W", order_id=f"{sku}-late{p}", quantity=1,
                                              unit_price=2.0), LATE)
        if i % 5 == 4:  # a new SKU whose first order is older than the crossing it is delivered after
            new, p = f"N{i:03d}", int(rng.integers(2, periods - 1))
            at = T0 + p * step - timedelta(minutes=10)
            add(at, "orders", OrderPlaced(event_id=f"{new}-o", occurred_at=at, sku=new, location="W",
                                          order_id=f"{new}-o", quantity=3, unit_price=2.0), LATE)
            at += LATE + timedelta(minutes=5)  # and its next order, while that review may still run
            add(at, "orders", OrderPlaced(event_id=f"{new}-o2", occurred_at=at, sku=new, location="W",
                                          order_id=f"{new}-o2", quantity=2, unit_price=2.0))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for _, topic, _, ev in events:
        part = int(ev.sku[1:]) % 2  # type: ignore[attr-defined]
        off = offsets.get((topic, part), 0)
        offsets[(topic, part)] = off + 1
        out.append(Record(topic, part, off, ev.key.encode(), encode_event(ev)))  # type: ignore[attr-defined]
    return out


def _config(kind: str, weekly: bool) -> ProcessorConfig:
    kw: dict = {"lead_time_periods": 2.0 if weekly else 4.0, "periods_per_year": 52.0 if weekly else 365.0}
    kw["fill_rate" if kind == "fill_control" else "cycle_service_level"] = 0.93
    cfg: dict = {"freq": "W" if weekly else "D", "policy": PolicyParams(**kw),
                 "horizon_periods": 10 if weekly else 21, "min_history_periods": 6 if weekly else 14}
    if kind == "fill_control":  # the partition's pool pseudo-state holds the controller
        cfg.update(fill_control=True, lumpiness_discount=1.0)
    else:  # "covariates": the pool holds the covariate sums; "csl": no pool pseudo-state
        cfg["covariates"] = kind == "covariates"
    return ProcessorConfig(**cfg)


def _progress(records: list[Record]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for r in records:
        out[(r.topic, r.partition)] = max(r.offset, out.get((r.topic, r.partition), -1))
    return out


class _Run:
    """One worker's life on a store: batches processed and saved as the batch committer does.

    ``forced`` is the pipeline's ``forced_review_inline_skus``: a review that fell behind event
    time with more keys left stops the batch, and is finished in review-only batches before the
    rest of its records (``BatchCommitter.commit``).
    """

    def __init__(self, config: ProcessorConfig, store: InMemoryStateStore, *, chunk: int | None,
                 cache: int, forced: int | None = None) -> None:
        self.config, self.store, self.chunk, self.cache, self.forced = config, store, chunk, cache, forced
        self.decisions: dict[str, bytes] = {}
        self.spanned = 0  # batches after which a review was still in progress
        self.cold = 0  # SKUs loaded only to be reviewed
        self.stopped = 0  # batches stopped before a record that would finish a review inline
        self.pipe = self._new()

    def _new(self) -> Pipeline:
        pipe = Pipeline(SkuProcessor(self.config), self.store, ROLES, cache_size=self.cache,
                        review_chunk_skus=self.chunk)
        if self.forced is not None:
            pipe.forced_review_inline_skus = self.forced
        return pipe

    def _one(self, records: list[Record], save: bool, budget: int | None = None) -> int | None:
        out = self.pipe.process(records, budget)
        n = len(records) if out.stopped_at is None else out.stopped_at
        self.spanned += self.pipe.sweeping
        self.cold += len(self.pipe._swept_cold)
        self.stopped += out.stopped_at is not None
        for _, v in out.decisions:
            d = decode_decision(v)
            assert self.decisions.setdefault(d.event_id, v) == v, "a decision id re-emitted with other bytes"
        if save:
            self.store.save_many(out.dirty, out.partition_of, _progress(records[:n]))
        return out.stopped_at

    def batch(self, records: list[Record], *, save: bool = True) -> None:
        while True:
            stop = self._one(records, save)
            if stop is None or not save:  # (a crash: the rest is re-read from the stored progress)
                return
            assert self.pipe.sweeping
            records = records[stop:]
            while self.pipe.sweeping:
                self._one([], save, budget=3)

    def restart(self) -> None:
        """A new worker on the same store (the unsaved batch is lost), as after ``kill -9``."""
        self.pipe = self._new()
        self.pipe.assign({0, 1})

    def pending(self, records: list[Record]) -> list[Record]:
        done = self.store.read_progress([0, 1])
        return [r for r in records if r.offset > done.get((r.topic, r.partition), -1)]

    def drain(self) -> None:
        while self.pipe.sweeping:
            self.batch([])


def _states(store: InMemoryStateStore) -> dict[str, bytes]:
    return {k: st.encode() for k, st in store.load_many(store.keys()).items()}


_Ref = tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes]]


def _reference(records: list[Record], config: ProcessorConfig) -> _Ref:
    """Stored states, decisions, and the pool pseudo-states held in memory (maybe never written)."""
    run = _Run(config, InMemoryStateStore(), chunk=None, cache=100_000)
    for i in range(0, len(records), 50):
        run.batch(records[i: i + 50])
    assert run.spanned == 0 and not run.pipe.sweeping
    pools = {k: st.encode() for k, st in run.pipe.cache.items() if is_pool_key(k)}
    return _states(run.store), run.decisions, pools


def _comparable(key: str, blob: bytes) -> bytes:
    """A state's bytes; a pool pseudo-state's without its boundary and controller step count.

    A re-publication that changes neither the coefficient nor the controller's cost is not
    written (``CovariatePool.publish``: the boundary "need not be persisted when nothing else
    changed"), so the stored pool may lag by such a publication depending on where batches
    end or a restart falls; everything else must be equal.
    """
    if not is_pool_key(key):
        return blob
    st_ = SkuState.decode(blob)
    assert st_.review is None, "a review is left in progress"
    if st_.pool is not None:
        st_.pool.boundary = 0
        st_.pool.service.steps = 0
    return st_.encode()


def _check(run: _Run, ref: _Ref) -> None:
    run.drain()
    states, decisions, pools = dict(ref[0]), ref[1], ref[2]
    got = _states(run.store)
    # A review that spanned batches writes its partition's pseudo-state, which the reference may
    # never have written (a pool the batches did not change; no pool at all).
    for key in set(got) - set(states):
        assert is_pool_key(key), key
        states[key] = pools.get(key, SkuState.new(key).encode())
    assert sorted(got) == sorted(states)
    for key in sorted(states):
        assert _comparable(key, got[key]) == _comparable(key, states[key]), key
    assert run.decisions == decisions


_REFS: dict[tuple, tuple[list[Record], ProcessorConfig, _Ref]] = {}


def _case(kind: str, weekly: bool, seed: int = 3) -> tuple[list[Record], ProcessorConfig, _Ref]:
    key = (kind, weekly, seed)
    if key not in _REFS:
        records = _scenario(seed, weekly, n_skus=24, periods=12 if weekly else 30)
        config = _config(kind, weekly)
        _REFS[key] = (records, config, _reference(records, config))
    return _REFS[key]


@pytest.mark.parametrize(("kind", "weekly", "chunk", "cache", "batch", "forced"), [
    ("fill_control", False, 2, 4, 7, None),
    ("fill_control", False, None, 3, 13, None),  # the whole review inside the batch, most SKUs cold
    ("csl", False, 2, 4, 7, None),
    ("csl", False, None, 3, 13, None),
    ("covariates", True, 2, 4, 7, None),
    ("fill_control", True, 5, 100_000, 31, None),
    # a review that falls behind event time is finished between batches, not inside one
    ("fill_control", False, 1, 4, 40, 0),
    ("csl", False, 2, 3, 60, 2),
    ("covariates", True, 1, 5, 45, 1),
])
def test_chunked_review_with_cold_skus_equals_the_eager_review(
        kind: str, weekly: bool, chunk: int | None, cache: int, batch: int, forced: int | None) -> None:
    records, config, ref = _case(kind, weekly)
    assert len(ref[1]) > 20 and any(r.key.startswith(b"N") for r in records)  # decides; new SKUs
    run = _Run(config, InMemoryStateStore(), chunk=chunk, cache=cache, forced=forced)
    for i in range(0, len(records), batch):
        run.batch(records[i: i + batch])
    if chunk is not None:
        assert run.spanned > 0, "a review spans batches"
    if cache < 24:
        assert run.cold > 0, "the review loaded cold SKUs"
    assert (run.stopped > 0) == (forced is not None), "batches stop before a forced review"
    _check(run, ref)
    assert all(st.review is None for k, st in run.store.load_many(run.store.keys()).items() if is_pool_key(k))


def _crash_run(kind: str, weekly: bool, chunk: int, cache: int, batch: int, crash_at: set[int],
               forced: int | None = None) -> int:
    """Crash after the given batches (processed, not saved); a new pipeline assigns and resumes.

    Returns the crashes that fell while a review was in progress.
    """
    records, config, ref = _case(kind, weekly)
    run = _Run(config, InMemoryStateStore(), chunk=chunk, cache=cache, forced=forced)
    i, todo, crashed_mid_review = 0, records, 0
    while todo:
        part, todo = todo[:batch], todo[batch:]
        crashing = i in crash_at
        run.batch(part, save=not crashing)
        if crashing:
            crashed_mid_review += any(st.review is not None for k, st in
                                      run.store.load_many([pool_key(0), pool_key(1)]).items())
            run.restart()
            todo = run.pending(records)
        i += 1
    _check(run, ref)
    return crashed_mid_review


@pytest.mark.parametrize(("kind", "weekly", "chunk", "cache", "batch", "crash_at", "forced"), [
    ("fill_control", False, 2, 4, 7, {5, 9, 23, 31, 47}, None),
    ("covariates", True, 3, 5, 11, {4, 12, 13}, None),
    ("csl", False, 1, 100_000, 5, {10, 40, 77}, None),
    ("fill_control", False, 1, 4, 40, {2, 5, 6, 9}, 0),
])
def test_a_crash_mid_review_resumes_to_the_same_states_and_decision_ids(
        kind: str, weekly: bool, chunk: int, cache: int, batch: int, crash_at: set[int],
        forced: int | None) -> None:
    """Without a pool pseudo-state (``csl``) a restarted worker recovers the partition watermark
    from the SKUs it loads, so that configuration crashes with every SKU cached."""
    assert _crash_run(kind, weekly, chunk, cache, batch, crash_at, forced) > 0, "a crash fell mid-review"


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["fill_control", "csl", "covariates"]), weekly=st.booleans(),
       chunk=st.integers(1, 12), cache=st.sampled_from([2, 5, 100_000]), batch=st.integers(1, 40),
       crash=st.floats(0.05, 0.95), gaps=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       forced=st.sampled_from([None, 0, 4]))
def test_crashes_at_generated_batches_resume_exactly(kind: str, weekly: bool, chunk: int, cache: int,
                                                     batch: int, crash: float, gaps: list[int],
                                                     forced: int | None) -> None:
    first = int(crash * len(_case(kind, weekly)[0]) / batch)
    _crash_run(kind, weekly, chunk, 100_000 if kind == "csl" else cache, batch,
               {first + sum(gaps[:k]) for k in range(len(gaps))}, forced)


class _FlakyStore(InMemoryStateStore):
    """Fails every ``every``-th ``load_many`` (a store outage mid-batch)."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every, self.calls = every, 0

    def load_many(self, keys: list[str]) -> dict[str, SkuState]:
        self.calls += 1
        if self.calls % self.every == 0:
            raise ConnectionError("store unavailable")
        return super().load_many(keys)


@pytest.mark.parametrize("kind", ["fill_control", "csl"])
def test_a_store_failure_mid_batch_rolls_back_and_the_retry_is_exact(kind: str) -> None:
    records, config, ref = _case(kind, False)
    store = _FlakyStore(every=7)
    run = _Run(config, store, chunk=3, cache=4)
    failures = 0
    for i in range(0, len(records), 9):
        while True:
            try:
                run.batch(records[i: i + 9])
                break
            except ConnectionError:
                failures += 1
                run.pipe.rollback()  # as the batch committer does before the retry
    while run.pipe.sweeping:
        try:
            run.batch([])
        except ConnectionError:
            failures += 1
            run.pipe.rollback()
    assert failures > 5
    store.every = 10**9
    _check(run, ref)


def test_the_review_covers_due_skus_that_existed_at_the_crossing() -> None:
    day = 86400
    rec = ReviewProgress(10 * day, 10 * day + 4000, "orders", 0, 50, "e", True, {"orders:0": 50})
    sw = PartitionSweep(rec, ["A@W"], day, 3600.0)
    st_ = SkuState.new("A@W")
    assert not sw.covers(st_)  # no order yet
    st_.demand.open_start = 9 * day
    st_.mark_applied("orders", 0, 40)
    assert sw.covers(st_)
    st_.mark_applied("inventory", 0, 3)  # a topic-partition first seen after the crossing...
    sw.see("inventory", 0, 3)
    assert not sw.covers(st_)  # ... at offset 3: this SKU's event at 3 came after it
    st2 = replace(st_, fence={"orders:0": 51})
    assert not sw.covers(st2)  # created after the crossing
    st_.demand.open_start = 10 * day
    st_.fence = {"orders:0": 40}
    assert not sw.covers(st_)  # the open period closes at the next boundary only
    assert pool_key(0) not in sw.keys


def test_review_in_progress_reads_the_partitions_pseudo_states() -> None:
    from agents.state import review_in_progress

    store = InMemoryStateStore()
    assert not review_in_progress(store, 2)  # nothing stored yet
    pool = SkuState.new(pool_key(1))
    pool.review = ReviewProgress(86400, 90000, "orders", 1, 7, "e", True, {"orders:1": 7})
    store.save_many([pool, SkuState.new(pool_key(0))], {pool_key(0): 0, pool_key(1): 1})
    assert review_in_progress(store, 2)
    assert not review_in_progress(store, 1)  # partition 1 is not among the first one
    pool.review = None
    store.save_many([pool], {pool_key(1): 1})
    assert not review_in_progress(store, 2)
