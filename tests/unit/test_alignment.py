"""The event-time aligner (agents.alignment): merge order, ties, waiting, bounds, determinism."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from agents.alignment import MALFORMED_TIME, EventTimeAligner, event_time_s, rank_topics
from agents.pipeline import Record
from schemas.events import OrderPlaced, StockReceived, encode_event

T0 = datetime(2011, 1, 4, 10, tzinfo=UTC)
TOPICS = ["inventory", "promotions", "orders"]  # tie-break order


def _value(seconds: float | None) -> bytes:
    if seconds is None:
        return b"{not json"
    when = (T0 + timedelta(seconds=seconds)).isoformat()
    return b'{"kind": "x", "occurred_at": "%s", "sku": "A"}' % when.encode()


def rec(topic: str, offset: int, seconds: float | None, partition: int = 0) -> Record:
    """A record of ``topic[partition]`` at ``T0 + seconds`` (None: malformed)."""
    return Record(topic, partition, offset, b"A@UK", _value(seconds))


def hw_of(records: list[Record]) -> dict[tuple[str, int], int]:
    """High watermarks when ``records`` are everything on the broker (empty topics at 0)."""
    hw = {(t, p): 0 for t in TOPICS for p in {r.partition for r in records} | {0}}
    for r in records:
        hw[(r.topic, r.partition)] = max(hw[(r.topic, r.partition)], r.offset + 1)
    return hw


def aligner(**kw: object) -> EventTimeAligner[str]:
    a: EventTimeAligner[str] = EventTimeAligner(TOPICS, **kw)  # type: ignore[arg-type]
    a.start_at({(t, p): 0 for t in TOPICS for p in range(4)})
    return a


def ids(released: list[tuple[Record, str]]) -> list[str]:
    return [h for _, h in released]


def tag(r: Record) -> str:
    return f"{r.topic[0]}{r.partition}:{r.offset}"


def test_event_time_reads_occurred_at_and_never_raises() -> None:
    ev = OrderPlaced(event_id="e", occurred_at=T0, sku="A", location="UK", order_id="o", quantity=1,
                     unit_price=1.0)
    assert event_time_s(encode_event(ev)) == int(T0.timestamp())
    assert event_time_s(b'{"occurred_at": "2011-01-04T11:00:00+01:00"}') == int(T0.timestamp())
    assert event_time_s(b'{"occurred_at": 1294135200}') == 1294135200  # the schema's parser
    for bad in (b"", b"{not json", b'{"occurred_at": "2011-01-04T10:00:00"}', b'{"occurred_at": "soon"}',
                b"\xff\xfe", b"[]"):
        assert event_time_s(bad) == MALFORMED_TIME == -math.inf


def test_rank_topics_puts_inventory_then_promotions_then_orders() -> None:
    assert rank_topics({"o": "orders", "p": "promotions", "i": "inventory"}) == ["i", "p", "o"]


def test_merges_by_event_time_then_topic_rank_then_offset() -> None:
    records = [rec("orders", 0, 10), rec("orders", 1, 20), rec("orders", 2, 20),
               rec("inventory", 0, 5), rec("inventory", 1, 20), rec("promotions", 0, 20),
               rec("inventory", 2, 30)]
    a = aligner()
    a.add([(r, tag(r)) for r in records], now=0.0)
    out = ids(a.release(hw_of(records).get, now=0.0))
    assert out == ["i0:0", "o0:0", "i0:1", "p0:0", "o0:1", "o0:2", "i0:2"]
    assert len(a) == 0


def test_same_second_ties_inventory_first_even_with_sub_second_times() -> None:
    # the pipeline's event time is whole seconds: 10.2 s and 10.7 s are the same instant
    records = [rec("orders", 0, 0.2), rec("inventory", 0, 0.7)]
    a = aligner()
    a.add([(r, tag(r)) for r in records], now=0.0)
    assert ids(a.release(hw_of(records).get, now=0.0)) == ["i0:0", "o0:0"]


def test_waits_for_a_topic_that_is_behind_and_not_for_a_drained_one() -> None:
    a = aligner(idle_s=0.0)  # idle bound at 0 s: still waits for a partition known to be behind
    hw = {("orders", 0): 2, ("inventory", 0): 1, ("promotions", 0): 0}
    a.add([(rec("orders", 0, 10), "o0"), (rec("orders", 1, 50), "o1")], now=0.0)
    assert a.release(hw.get, now=100.0) == []  # inventory[0] has offset 0 on the broker
    assert len(a) == 2
    a.add([(rec("inventory", 0, 30), "i0")], now=100.0)
    # inventory drained (next expected 1 == highwater), promotions empty (0 == 0): all go
    assert ids(a.release(hw.get, now=100.0)) == ["o0", "i0", "o1"]
    assert a.forced == 0


def test_drained_topics_do_not_block_and_later_records_merge_in() -> None:
    a = aligner()
    hw = {("orders", 0): 1, ("inventory", 0): 0, ("promotions", 0): 0}
    a.add([(rec("orders", 0, 10), "o0")], now=0.0)
    assert ids(a.release(hw.get, now=0.0)) == ["o0"]
    hw[("inventory", 0)] = 1  # a receipt arrives later on the live stream
    a.add([(rec("inventory", 0, 5), "i0")], now=1.0)
    assert ids(a.release(hw.get, now=1.0)) == ["i0"]  # late relative to o0: arrival decided


def test_unknown_partition_state_blocks_until_the_idle_bound() -> None:
    a: EventTimeAligner[str] = EventTimeAligner(TOPICS, idle_s=5.0)
    a.start_at({("orders", 0): 0, ("promotions", 0): 0})  # inventory[0]: start unknown
    hw = {("orders", 0): 1, ("promotions", 0): 0, ("inventory", 0): 3}
    a.add([(rec("orders", 0, 10), "o0")], now=100.0)
    assert a.release(hw.get, now=104.9) == []
    assert a.oldest_wait(104.9) == pytest.approx(4.9)
    assert ids(a.release(hw.get, now=105.0)) == ["o0"]
    assert a.forced == 1
    # a highwater not reported yet is unknown too
    a.add([(rec("orders", 1, 11), "o1")], now=200.0)
    assert a.release({("inventory", 0): 3, ("orders", 0): 2}.get, now=200.0) == []


def test_max_buffered_releases_the_smallest_heads_by_arrival() -> None:
    a = aligner(max_buffered=3)
    hw = {("orders", 0): 10, ("inventory", 0): 5, ("promotions", 0): 0}
    a.add([(rec("orders", i, 10 + i), f"o{i}") for i in range(5)], now=0.0)
    assert ids(a.release(hw.get, now=0.0)) == ["o0", "o1"]  # down to 3 held
    assert len(a) == 3 and a.forced == 2


def test_malformed_records_sort_first_and_change_nothing_else() -> None:
    records = [rec("orders", 0, None), rec("orders", 1, 10), rec("orders", 2, None),
               rec("inventory", 0, 10), rec("inventory", 1, None)]
    a = aligner()
    a.add([(r, tag(r)) for r in records], now=0.0)
    # -inf heads go first, a malformed record behind a good one waits for its turn in its queue
    assert ids(a.release(hw_of(records).get, now=0.0)) == ["o0:0", "i0:0", "i0:1", "o0:1", "o0:2"]


def test_stale_records_below_the_expected_offset_are_refused() -> None:
    a = aligner()
    a.start_at({("orders", 0): 5})
    stale = a.add([(rec("orders", 3, 1), "o3"), (rec("orders", 5, 2), "o5")], now=0.0)
    assert ids(stale) == ["o3"] and len(a) == 1 and a.dropped == 1
    assert a.add([(rec("orders", 5, 2), "dup")], now=0.0) == [(rec("orders", 5, 2), "dup")]


def test_start_at_drops_held_records_of_the_partition_and_reset_forgets_all() -> None:
    a = aligner()
    a.add([(rec("orders", 0, 10), "o0"), (rec("orders", 0, 10, partition=1), "o0p1")], now=0.0)
    a.start_at({("orders", 0): 0})
    assert len(a) == 1
    a.reset()
    assert len(a) == 0 and a.position("orders", 1) is None


def test_partitions_are_independent() -> None:
    a = aligner()
    hw = {(t, p): 0 for t in TOPICS for p in range(2)}
    hw[("orders", 0)] = 1
    hw[("orders", 1)] = 1
    hw[("inventory", 1)] = 1  # partition 1 waits for its inventory; partition 0 does not
    a.add([(rec("orders", 0, 10, partition=1), "p1"), (rec("orders", 0, 10, partition=0), "p0")], now=0.0)
    assert ids(a.release(hw.get, now=0.0)) == ["p0"]


def test_constructor_errors() -> None:
    with pytest.raises(ValueError):
        EventTimeAligner([])
    with pytest.raises(ValueError):
        EventTimeAligner(["a", "a"])
    with pytest.raises(ValueError):
        EventTimeAligner(["a"], max_buffered=0)


# --- determinism: any interleaving and chunking of the same per-topic sequences ------------------

def _sequences(rng: random.Random, partitions: int = 3) -> dict[tuple[str, int], list[Record]]:
    """Per topic-partition sequences, mostly in event time with some disorder and malformed ones."""
    seqs: dict[tuple[str, int], list[Record]] = {}
    for p in range(partitions):
        for topic, n in (("orders", rng.randint(0, 40)), ("inventory", rng.randint(0, 15)),
                         ("promotions", rng.randint(0, 4))):
            t = 0
            out = []
            for off in range(n):
                t += rng.choice((0, 0, 1, 3, 60))  # many same-second ties
                when = None if rng.random() < 0.05 else (t - 200 if rng.random() < 0.05 else t)
                out.append(rec(topic, off, when, partition=p))
            seqs[(topic, p)] = out
    return seqs


def _arrival(rng: random.Random, seqs: dict[tuple[str, int], list[Record]]) -> list[list[Record]]:
    """A random interleaving preserving per-topic-partition order, cut into random chunks."""
    cursors = {tp: 0 for tp in seqs}
    stream: list[Record] = []
    while any(cursors[tp] < len(seqs[tp]) for tp in seqs):
        tp = rng.choice([tp for tp in seqs if cursors[tp] < len(seqs[tp])])
        take = rng.randint(1, 7)
        stream += seqs[tp][cursors[tp]: cursors[tp] + take]
        cursors[tp] += take
    chunks, i = [], 0
    while i < len(stream):
        k = rng.randint(1, 25)
        chunks.append(stream[i: i + k])
        i += k
    return chunks


def _run(chunks: list[list[Record]], hw: dict[tuple[str, int], int], rng: random.Random,
         starts: dict[tuple[str, int], int] | None = None) -> list[str]:
    a = aligner(idle_s=math.inf)
    if starts:
        a.start_at(starts)
    out: list[str] = []
    now = 0.0
    for chunk in chunks:
        a.add([(r, tag(r)) for r in chunk], now=now)
        out += ids(a.release(hw.get, now=now))
        if rng.random() < 0.3:  # a timer tick with nothing new
            out += ids(a.release(hw.get, now=now))
        now += 1.0
    out += ids(a.release(hw.get, now=now))
    assert len(a) == 0 and a.forced == 0
    return out


@pytest.mark.parametrize("seed", range(25))
def test_release_order_depends_only_on_the_per_topic_sequences(seed: int) -> None:
    rng = random.Random(seed)
    seqs = _sequences(rng)
    everything = [r for s in seqs.values() for r in s]
    hw = {tp: len(s) for tp, s in seqs.items()}
    hw.update({(t, p): 0 for t in TOPICS for p in range(4) if (t, p) not in hw})
    runs = [_run(_arrival(rng, seqs), hw, rng) for _ in range(8)]
    for order in runs:
        assert sorted(order) == sorted(tag(r) for r in everything)
    # per partition, the order is always the same (partitions are independent of each other)
    for p in range(3):
        per_partition = {tuple(x for x in order if x[1:].startswith(f"{p}:")) for order in runs}
        assert len(per_partition) == 1, f"partition {p} released in {len(per_partition)} orders"


def test_in_order_sequences_come_out_sorted_by_second_rank_offset() -> None:
    rng = random.Random(3)
    seqs = {("orders", 0): [rec("orders", i, i // 3) for i in range(40)],
            ("inventory", 0): [rec("inventory", i, i) for i in range(15)],
            ("promotions", 0): [rec("promotions", 0, 7)]}
    hw = {tp: len(s) for tp, s in seqs.items()}
    out = _run(_arrival(rng, seqs), hw, rng)
    rank = {"i": 0, "p": 1, "o": 2}
    by_tag = {tag(r): r for s in seqs.values() for r in s}
    keys = [(event_time_s(by_tag[x].value), rank[x[0]], by_tag[x].offset) for x in out]
    assert keys == sorted(keys)


@pytest.mark.parametrize("seed", range(10))
def test_resuming_from_a_batch_boundary_continues_the_same_order(seed: int) -> None:
    """A restart from the positions after any released prefix releases the rest identically."""
    rng = random.Random(1000 + seed)
    seqs = _sequences(rng, partitions=1)
    hw = {tp: len(s) for tp, s in seqs.items()}
    full = _run(_arrival(rng, seqs), hw, rng)
    cut = rng.randint(0, len(full))
    done = full[:cut]
    starts = {tp: sum(1 for x in done if x[0] == tp[0][0]) for tp in seqs}  # offsets == index
    rest = {tp: s[starts[tp]:] for tp, s in seqs.items()}
    resumed = _run(_arrival(rng, rest), hw, rng, starts=starts)
    assert done + resumed == full


def test_sorted_sequences_resume_exactly_from_mixed_positions() -> None:
    """With every topic-partition in event-time order, starting earlier on one topic (records
    already applied are replayed and skipped) leaves the order of the others unchanged."""
    rng = random.Random(7)
    for _ in range(20):
        seqs = {("orders", 0): [rec("orders", i, i * 2) for i in range(30)],
                ("inventory", 0): [rec("inventory", i, i * 5) for i in range(12)],
                ("promotions", 0): []}
        hw = {tp: len(s) for tp, s in seqs.items()}
        full = _run(_arrival(rng, seqs), hw, rng)
        cut = rng.randint(0, len(full))
        pos = {"o": sum(1 for x in full[:cut] if x[0] == "o"), "i": sum(1 for x in full[:cut] if x[0] == "i")}
        back = rng.randint(0, pos["i"])  # inventory restarts earlier (its commit lagged)
        starts = {("orders", 0): pos["o"], ("inventory", 0): back, ("promotions", 0): 0}
        rest = {tp: s[starts[tp]:] for tp, s in seqs.items()}
        resumed = _run(_arrival(rng, rest), hw, rng, starts=starts)
        replayed = {f"i0:{i}" for i in range(back, pos["i"])}
        assert [x for x in resumed if x not in replayed] == full[cut:]


def test_an_inventory_receipt_serves_the_same_second_order() -> None:
    """The tie rule on real events: the receipt is released before the order at the same time."""
    order = OrderPlaced(event_id="o", occurred_at=T0, sku="A", location="UK", order_id="1", quantity=5,
                        unit_price=1.0)
    receipt = StockReceived(event_id="r", occurred_at=T0, sku="A", location="UK", quantity=5)
    a = aligner()
    a.add([(Record("orders", 0, 0, b"A@UK", encode_event(order)), "order")], now=0.0)
    a.add([(Record("inventory", 0, 0, b"A@UK", encode_event(receipt)), "receipt")], now=0.5)
    hw = {("orders", 0): 1, ("inventory", 0): 1, ("promotions", 0): 0}
    assert ids(a.release(hw.get, now=1.0)) == ["receipt", "order"]


# --- the point of it: the pipeline's state no longer depends on the arrival interleaving ---------

def test_pipeline_state_is_independent_of_arrival_order_once_aligned() -> None:
    """The reliability scenario's orders and inventory events (10 SKUs) through the real
    Pipeline: raw arrival orders give different states, aligned ones give identical states."""
    import zlib

    from agents.pipeline import Pipeline
    from agents.processor import SkuProcessor
    from agents.state import InMemoryStateStore
    from streams.config import processor_config
    from streams.settings import Settings
    from tests.integration.reliability import build_input

    orders, inventory = build_input(skus=10)
    roles = {"o": "orders", "i": "inventory", "p": "promotions"}
    seqs: dict[tuple[str, int], list[Record]] = {}
    for topic, evs in (("o", orders), ("i", inventory)):
        for ev in evs:
            p = zlib.crc32(ev.key.encode()) % 2
            lst = seqs.setdefault((topic, p), [])
            lst.append(Record(topic, p, len(lst), ev.key.encode(), encode_event(ev)))
    hw = {tp: len(v) for tp, v in seqs.items()}
    cfg = processor_config(Settings(allowed_lateness_s=0.0, min_history_periods=14))

    def state_after(stream: list[Record]) -> tuple[dict[str, bytes], set[bytes]]:
        pl = Pipeline(SkuProcessor(cfg), InMemoryStateStore(), roles)  # type: ignore[arg-type]
        decisions: set[bytes] = set()
        for i in range(0, len(stream), 100):
            decisions |= {v for _, v in pl.process(stream[i: i + 100]).decisions}
        return {k: st.encode_core() for k, st in pl.cache.items()}, decisions

    def arrival(rng: random.Random) -> list[Record]:
        cur = {tp: 0 for tp in seqs}
        out: list[Record] = []
        while any(cur[tp] < len(seqs[tp]) for tp in seqs):
            tp = rng.choice([tp for tp in seqs if cur[tp] < len(seqs[tp])])
            k = rng.randint(1, 300)
            out += seqs[tp][cur[tp]: cur[tp] + k]
            cur[tp] += k
        return out

    def aligned(rng: random.Random) -> list[Record]:
        a: EventTimeAligner[None] = EventTimeAligner(rank_topics(roles))
        a.start_at({(t, p): 0 for t in roles for p in range(2)})
        out: list[Record] = []
        stream = arrival(rng)
        for i in range(0, len(stream), 100):
            a.add([(r, None) for r in stream[i: i + 100]], now=0.0)
            out += [r for r, _ in a.release(lambda tp: hw.get(tp, 0), now=0.0)]
        assert len(a) == 0
        return out

    raw = [state_after(arrival(random.Random(i))) for i in range(2)]
    assert raw[0] != raw[1], "arrival order should matter without alignment (else this test is moot)"
    first, second = (state_after(aligned(random.Random(100 + i))) for i in range(2))
    assert first == second
    assert len(first[0]) >= 10 and first[1]
