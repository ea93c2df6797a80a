"""One partition owns a SKU (issue #18, 1): keyless or misrouted records are never applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import DefaultPartitioner

from agents.pipeline import Pipeline, Record
from agents.processor import ProcessorConfig, SkuProcessor
from agents.state import InMemoryStateStore
from schemas.events import DeadLetter, StockSnapshot, encode_event
from streams.partitioning import partition_for

T0 = datetime(2011, 1, 3, tzinfo=UTC)
N = 4


def _pipeline(store: InMemoryStateStore | None = None) -> Pipeline:
    return Pipeline(SkuProcessor(ProcessorConfig(covariates=False)), store or InMemoryStateStore(),
                    {"inventory": "inventory"}, partition_for=partition_for, partitions=N)


def _snapshot(sku: str, on_hand: int, offset: int, partition: int | None = None,
              key: bytes | None | str = "auto") -> Record:
    ev = StockSnapshot(event_id=f"{sku}-{offset}", occurred_at=T0 + timedelta(hours=offset), sku=sku,
                       location="W1", on_hand=on_hand)
    k = ev.key.encode() if key == "auto" else key
    p = partition_for(ev.key.encode(), N) if partition is None else partition
    return Record("inventory", p, offset, k, encode_event(ev))  # type: ignore[arg-type]


class _Cluster:
    """The two metadata calls kafka-python's DefaultPartitioner makes."""

    def __init__(self, n: int) -> None:
        self.n = n

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))

    available_partitions_for_topic = partitions_for_topic


@given(key=st.binary(min_size=1, max_size=64), n=st.integers(1, 64))
def test_partitioner_is_kafka_pythons_default(key: bytes, n: int) -> None:
    assert partition_for(key, n) == DefaultPartitioner().partition("t", None, key, None, None, _Cluster(n))


@pytest.mark.parametrize(("key", "java_murmur2"), [  # Apache Kafka UtilsTest.testMurmur2
    (b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971), (b"abc", 479470107)])
def test_partitioner_matches_the_java_client(key: bytes, java_murmur2: int) -> None:
    for n in (1, 3, 4, 12, 100):
        assert partition_for(key, n) == (java_murmur2 & 0x7FFFFFFF) % n  # Utils.toPositive(h) % n


def test_partitioner_rejects_no_partitions() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        partition_for(b"A@W1", 0)
    with pytest.raises(ValueError, match="partition count"):
        Pipeline(SkuProcessor(ProcessorConfig(covariates=False)), InMemoryStateStore(), {},
                 partition_for=partition_for)


@given(sku=st.from_regex(r"[A-Z0-9]{1,8}", fullmatch=True), shift=st.integers(1, N - 1))
def test_keyless_and_misrouted_records_are_dead_lettered_not_applied(sku: str, shift: int) -> None:
    pipe = _pipeline()
    home = partition_for(f"{sku}@W1".encode(), N)
    good = _snapshot(sku, 10, 0)
    keyless = _snapshot(sku, 999, 1, partition=home, key=None)
    foreign = _snapshot(sku, 777, 2, partition=(home + shift) % N)
    out = pipe.process([good, keyless, foreign])
    assert out.applied == 1
    assert out.dead_lettered == {"missing_key": 1, "wrong_partition": 1}
    (state,) = out.dirty
    assert state.position.on_hand == 10  # neither bad snapshot overwrote it
    assert out.partition_of == {f"{sku}@W1": home}  # never indexed under a foreign partition
    letters = [DeadLetter.model_validate_json(v) for _, v in out.dead_letters]
    assert [(d.stage, d.partition, d.offset) for d in letters] == [
        ("missing_key", home, 1), ("wrong_partition", (home + shift) % N, 2)]
    assert str(home) in letters[1].error_message
    assert letters[0].original_value() == keyless.value


def test_empty_key_is_a_missing_key() -> None:
    out = _pipeline().process([_snapshot("A", 5, 0, key=b"")])
    assert out.applied == 0 and out.dead_lettered == {"missing_key": 1}


def test_without_a_partitioner_nothing_is_checked() -> None:
    pipe = Pipeline(SkuProcessor(ProcessorConfig(covariates=False)), InMemoryStateStore(),
                    {"inventory": "inventory"})
    out = pipe.process([_snapshot("A", 5, 0, partition=partition_for(b"A@W1", N) + 1)])
    assert out.applied == 1 and not out.dead_lettered


def test_dead_letters_are_counted_by_stage() -> None:
    from streams import metrics

    before = metrics.DEAD_LETTERS.labels("wrong_partition")._value.get()
    home = partition_for(b"A@W1", N)
    recs = [_snapshot("A", 5, 0, partition=(home + 1) % N)]
    out = _pipeline().process(recs)
    metrics.observe_batch(recs, out, 0.01, 0)
    assert metrics.DEAD_LETTERS.labels("wrong_partition")._value.get() == before + 1


def test_a_misrouted_record_cannot_reorder_the_partitions_own_records() -> None:
    """The aligner gives a record the pipeline will not own event time -inf, like a malformed one."""
    from agents.alignment import EventTimeAligner

    home = partition_for(b"A@W1", N)

    def at(topic: str, offset: int, hours: int, key: bytes | None = b"A@W1") -> Record:
        return Record(topic, home, offset, key, _snapshot("A", 1, hours).value)

    keyless_future = at("inventory", 0, 500, key=None)  # dated 500 h ahead
    recs = [(keyless_future, "keyless"), (at("inventory", 1, 1), "i1"), (at("orders", 0, 2), "o0")]
    hw = {("inventory", home): 2, ("orders", home): 1}.get

    def released(a: EventTimeAligner[str]) -> list[str]:
        a.start_at({("inventory", home): 0, ("orders", home): 0})
        a.add(recs, now=0.0)
        return [h for _, h in a.release(hw, now=0.0)]

    owned = EventTimeAligner(["inventory", "orders"], owned=_pipeline().owns)
    assert released(owned) == ["keyless", "i1", "o0"]
    # without the ownership test, its timestamp holds the inventory queue back behind o0
    assert released(EventTimeAligner(["inventory", "orders"])) == ["o0", "keyless", "i1"]
