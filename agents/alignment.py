"""Event-time alignment of co-partitioned input topics: a deterministic reorder buffer.

Kafka orders records within a topic-partition, not across topics. restock's inputs
(``orders``, ``inventory``, ``promotions``, ``policies``) are co-partitioned by ``sku@location``, so partition
``p`` of every input topic holds events of the same SKUs, but a consumer receives them as its
fetches happen to arrive, and a restarted consumer interleaves them differently. A sale applied
before a receipt of the same SKU is lost (or backordered) instead of served, and every event
moves the partition's event-time watermark that closes the periods of its silent SKUs, so the
state would depend on fetch timing. :class:`EventTimeAligner` removes that dependence.

Rule
----
Per input partition number ``p`` there is one FIFO queue per input topic. The aligner releases
the records of partition ``p`` as a k-way merge of those queues by the key

    ``(event time, topic rank, offset)``

(event time: whole epoch seconds of ``occurred_at``, the resolution :func:`agents.demand.epoch`
gives the pipeline) and releases the smallest head only when **every** input topic of ``p``
either has a queued record or is known to be *drained*: the aligner has received every offset
below the high watermark the broker last reported for that topic-partition (``next expected
offset >= highwater``). Nothing is released on a guess, so whenever the input is already on the
broker (replays, restarts after a crash, rebalances, backtests) the released order is a function
of the per-topic-partition sequences alone. It is memoryless (its state is the read position in
each queue), so a worker that resumes from the positions of an earlier batch boundary continues
with exactly the order an uninterrupted worker used; when every topic-partition is in event-time
order the released order is simply the records of the partition sorted by the key, from any
starting positions, and records already applied (skipped by the per-SKU fences) cannot change
the order of the others.

Ties (equal event time): **policies, then inventory, then promotions, then orders** (topic
rank), then offset. A policy published at ``t`` sets the levels of every decision at ``t``.
A receipt or adjustment dated at the same second as a sale is physically available to it (stock
received at 10:00:00 serves the 10:00:00 order), and a ``StockSnapshot`` at ``t`` is by
definition the count *after* every movement at ``<= t`` (:mod:`agents.inventory`): applied
first, it marks the same-second sale as already counted, which is what the count means; applied
after the sale it would overwrite it anyway. Promotions before orders: a plan announced at ``t``
applies to the order at ``t``.

Records whose ``occurred_at`` cannot be read (malformed JSON, missing or naive timestamps; the
pipeline dead-letters them), and tombstones (empty values: a deleted policy), get event time
``-inf``: they are released as soon as they reach the
head of their queue and the rule above holds, deterministically (a malformed record changes no
state).

Where arrival still matters
---------------------------
Only in two bounded places, both processing-time safety valves that a replay of data already on
the broker never reaches:

* ``idle_s``: a topic-partition whose state is *unknown* (no high watermark reported yet since the
  assignment, or no known start position) blocks the partition for at most ``idle_s`` seconds
  after the head record arrived; then the head is released as if that topic were drained. This
  is the "idle source" timeout of Flink's watermarks. A topic-partition the broker reports as
  *behind* (records exist that the worker has not received yet) is waited for, since those
  records are on their way.
* ``max_buffered``: when more records are held than this, the smallest heads are released
  regardless, so memory stays bounded if one topic's fetches stall.

Known limits: the exact restart guarantee from *any* mix of per-topic start positions (a
partition rewound on one topic further than on another, as after Redis lost writes) holds when
each topic-partition is in event-time order; a topic-partition with events out of order is
still applied exactly once, but then only a restart from a batch boundary reproduces its
interleaving with the other topics exactly. "Drained" compares the next expected offset with the
high watermark, so a topic-partition whose last offsets are not records (transaction markers of
a transactional producer) stays "behind" and is released only by ``max_buffered``; restock's
producers are not transactional.

On a live stream "drained" is as of the last fetch response: a receipt produced a few
milliseconds after a same-second order that the worker has already released is applied after
it. That is the unavoidable cost of not waiting for the future; the replay of the same
topic-partitions is deterministic.

Source of the idea: per-input watermarks and their minimum, with idle sources excluded after a
timeout, as in Apache Flink ("Generating Watermarks", *Dealing With Idle Sources*) and the
Dataflow model (Akidau et al., "The Dataflow Model: A Practical Approach to Balancing
Correctness, Latency, and Cost in Massive-Scale, Unbounded, Out-of-Order Data Processing",
PVLDB 8(12), 2015). Kafka lets us replace the heuristic watermark by an exact one for data at
rest: the high watermark says when a topic-partition has nothing more to give.

Examples
--------
>>> from agents.pipeline import Record
>>> a = EventTimeAligner(["inv", "ord"])
>>> a.start_at({("inv", 0): 0, ("ord", 0): 0})
>>> def rec(topic, offset, when):
...     return Record(topic, 0, offset, b"A@UK", b'{"occurred_at": "%s"}' % when.encode())
>>> a.add([(rec("ord", 0, "2011-01-04T10:00:00Z"), "o0"),
...        (rec("ord", 1, "2011-01-04T12:00:00Z"), "o1")], now=0.0)
[]
>>> a.release({("inv", 0): 1, ("ord", 0): 2}.get, now=0.0)  # inv[0] has a record not yet received
[]
>>> a.add([(rec("inv", 0, "2011-01-04T10:00:00Z"), "i0")], now=0.1)
[]
>>> [h for _, h in a.release({("inv", 0): 1, ("ord", 0): 2}.get, now=0.1)]
['i0', 'o0', 'o1']
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.common import UtcDatetime

H = TypeVar("H")

#: event time of a record whose ``occurred_at`` cannot be read
MALFORMED_TIME = -math.inf

#: default rank of the input roles at equal event time (lower first)
ROLE_RANK = {"policies": 0, "inventory": 1, "promotions": 2, "orders": 3}

TopicPartition = tuple[str, int]
Highwater = Callable[[TopicPartition], "int | None"]


class _OccurredAt(BaseModel):
    model_config = ConfigDict(extra="ignore")
    occurred_at: UtcDatetime


_OCCURRED_AT = re.compile(rb'"occurred_at"\s*:\s*"([0-9T:.+\-Z ]{10,40})"')


def event_time_s(value: bytes) -> float:
    """Whole epoch seconds of the ``occurred_at`` of a JSON event, or ``-inf``.

    Fast path (about 1 µs): the first top-level-looking ``"occurred_at": "<ISO 8601>"`` in the
    bytes, parsed by :meth:`datetime.fromisoformat`; otherwise the event schema's own parser on
    that field alone (about 4 µs). A naive timestamp or an unreadable value gives
    :data:`MALFORMED_TIME` (``-inf``), never an exception. Either way a pure function of the
    bytes, which is all the determinism of the merge needs; for valid events it equals
    :func:`agents.demand.epoch` of the decoded ``occurred_at``.

    Examples
    --------
    >>> event_time_s(b'{"kind": "order_placed", "occurred_at": "2011-01-04T10:00:00.9+00:00"}')
    1294135200
    >>> event_time_s(b"{not json"), event_time_s(b'{"occurred_at": "2011-01-04T10:00:00"}')
    (-inf, -inf)
    """
    m = _OCCURRED_AT.search(value)
    if m is not None:
        try:
            ts = datetime.fromisoformat(m.group(1).decode())
            if ts.tzinfo is not None and ts.utcoffset() is not None:
                return int(ts.timestamp() // 1)
        except (ValueError, OverflowError):
            pass
    try:
        return int(_OccurredAt.model_validate_json(value).occurred_at.timestamp() // 1)
    except (ValidationError, ValueError, TypeError, OverflowError):
        return MALFORMED_TIME


def rank_topics(roles: Mapping[str, str]) -> list[str]:
    """Input topic names in tie-break order (policies, inventory, promotions, orders; unknown last).

    Examples
    --------
    >>> rank_topics({"o": "orders", "i": "inventory", "p": "promotions"})
    ['i', 'p', 'o']
    """
    return sorted(roles, key=lambda t: (ROLE_RANK.get(roles[t], len(ROLE_RANK)), t))


class EventTimeAligner(Generic[H]):
    """Reorder buffer that merges co-partitioned topics by event time (see the module docstring).

    Transport-free: it holds ``(record, handle)`` pairs (``record`` an
    :class:`agents.pipeline.Record`, ``handle`` anything the caller needs later, e.g. the Faust
    event to ack) and is told the broker's high watermarks by a callable.

    Parameters
    ----------
    topics : sequence of str
        The input topics in tie-break order (first wins at equal event time), e.g.
        ``rank_topics(roles)``. Records of other topics are released at once (the pipeline
        dead-letters them).
    idle_s : float
        Seconds a head record may wait for a topic-partition whose state is unknown (no high
        watermark or start position yet) before it is released anyway. ``inf`` never.
    max_buffered : int
        Records held at most; above it the smallest heads are released regardless (>= 1).
    event_time : callable
        ``bytes -> float`` event time of a record value (epoch seconds; ``-inf`` when unknown).
    owned : callable, optional
        ``record -> bool``: False for a record the pipeline dead-letters without reading it (no
        key, or not on its key's partition: :meth:`agents.pipeline.Pipeline.owns`). Such a
        record gets event time ``-inf`` like a malformed one, so that its payload's timestamp
        cannot reorder the partition's valid records.

    Raises
    ------
    ValueError
        When ``topics`` is empty or has duplicates, or ``max_buffered < 1`` or ``idle_s < 0``.
    """

    def __init__(self, topics: Sequence[str], *, idle_s: float = 10.0, max_buffered: int = 100_000,
                 event_time: Callable[[bytes], float] = event_time_s,
                 owned: Callable[[Any], bool] | None = None) -> None:
        if not topics or len(set(topics)) != len(topics):
            raise ValueError(f"topics must be non-empty and distinct, got {list(topics)!r}")
        if max_buffered < 1 or idle_s < 0:
            raise ValueError(
                f"need max_buffered >= 1 and idle_s >= 0, got {max_buffered}, {idle_s}")
        self.topics = tuple(topics)
        self.rank = {t: i for i, t in enumerate(self.topics)}
        self.idle_s = float(idle_s)
        self.max_buffered = int(max_buffered)
        self.event_time = event_time
        self.owned = owned
        # partition -> topic -> deque of (key, arrival time, record, handle)
        self._queues: dict[int, dict[str, deque[tuple[tuple[float, int, int], float, Any, H]]]] = {}
        self._next: dict[TopicPartition, int] = {}  # next offset expected per topic-partition
        self._held = 0
        self.forced = 0  # heads released by the idle or size bound (metrics / tests)
        self.dropped = 0  # records below the expected offset (stale, from before a seek)

    # --- state ------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Return the number of records held."""
        return self._held

    def reset(self) -> None:
        """Forget every held record and position (on partition revocation; nothing is acked)."""
        self._queues.clear()
        self._next.clear()
        self._held = 0

    def start_at(self, positions: Mapping[TopicPartition, int]) -> None:
        """Set where each topic-partition will be read from (after a seek) and drop what it held.

        Parameters
        ----------
        positions : mapping
            ``(topic, partition) -> next offset the consumer will deliver`` (the committed offset,
            the rewind target or the log start offset).
        """
        for (topic, p), offset in positions.items():
            q = self._queues.get(p, {}).get(topic)
            if q:
                self._held -= len(q)
                q.clear()
            self._next[(topic, p)] = int(offset)

    def position(self, topic: str, partition: int) -> int | None:
        """Next offset expected from ``topic[partition]`` (None when unknown)."""
        return self._next.get((topic, partition))

    # --- input ------------------------------------------------------------------------------
    def add(self, items: Iterable[tuple[Any, H]], now: float) -> list[tuple[Any, H]]:
        """Queue records (in the order the consumer delivered them).

        Parameters
        ----------
        items : iterable of (record, handle)
            ``record`` has ``topic``, ``partition``, ``offset`` and ``value`` (bytes).
        now : float
            Processing time of arrival (monotonic seconds), for ``idle_s`` only.

        Returns
        -------
        list of (record, handle)
            Records refused: those below the offset expected from their topic-partition (a
            stale delivery from before a seek, or a duplicate); the caller must neither apply
            nor ack them (they are re-read or already processed).
        """
        stale: list[tuple[Any, H]] = []
        rank = self.rank
        nxt = self._next
        queues = self._queues
        event_time = self.event_time
        for rec, handle in items:
            topic = rec.topic
            tp = (topic, rec.partition)
            expected = nxt.get(tp)
            if expected is not None and rec.offset < expected:
                stale.append((rec, handle))
                self.dropped += 1
                continue
            nxt[tp] = rec.offset + 1
            r = rank.get(topic)
            if r is None:
                r = len(rank)
            t = event_time(rec.value) if self.owned is None or self.owned(rec) else MALFORMED_TIME
            key = (t, r, rec.offset)
            part = queues.get(rec.partition)
            if part is None:
                part = queues[rec.partition] = {}
            q = part.get(topic)
            if q is None:
                q = part[topic] = deque()
            q.append((key, now, rec, handle))
            self._held += 1
        return stale

    # --- output -----------------------------------------------------------------------------
    def _state(self, topic: str, p: int, highwater: Highwater) -> str:
        """Return ``"drained"``, ``"behind"`` or ``"unknown"`` (topic-partition, nothing queued)."""
        nxt = self._next.get((topic, p))
        hw = highwater((topic, p))
        if nxt is None or hw is None:
            return "unknown"
        return "drained" if nxt >= hw else "behind"

    def release(self, highwater: Highwater, now: float) -> list[tuple[Any, H]]:
        """Pop every record the rule allows, in release order.

        Parameters
        ----------
        highwater : callable
            ``(topic, partition) -> int | None``: the high watermark (offset of the next record
            the broker will append) last reported for the topic-partition, None when unknown.
        now : float
            Processing time (monotonic seconds), for ``idle_s``.

        Returns
        -------
        list of (record, handle)
            Per partition, in ``(event time, topic rank, offset)`` merge order; partitions in
            ascending order. Within a topic-partition always a prefix of what was queued.
        """
        out: list[tuple[Any, H]] = []
        topics = self.topics
        for p in sorted(self._queues):
            part = self._queues[p]
            states: dict[str, str] = {}
            while True:
                best = None
                best_q = None
                for q in part.values():
                    if q and (best is None or q[0][0] < best[0]):
                        best, best_q = q[0], q
                if best is None:
                    break
                blocked = False
                waiting_unknown = False
                for t in topics:
                    if part.get(t):
                        continue
                    s = states.get(t)
                    if s is None:
                        s = states[t] = self._state(t, p, highwater)
                    if s == "behind":
                        blocked = True
                        break
                    if s == "unknown":
                        waiting_unknown = True
                if blocked or waiting_unknown:
                    over = self._held > self.max_buffered
                    idle = (not blocked) and now - best[1] >= self.idle_s
                    if not (over or idle):
                        break
                    self.forced += 1
                best_q.popleft()  # type: ignore[union-attr]
                self._held -= 1
                out.append((best[2], best[3]))
            if not any(part.values()):
                del self._queues[p]
        return out

    def oldest_wait(self, now: float) -> float:
        """Seconds the longest-held head has waited (0 when nothing is held)."""
        waits = [now - q[0][1] for part in self._queues.values() for q in part.values() if q]
        return max(waits, default=0.0)
