"""Consumer lag in messages and in seconds, per topic/partition and per group.

Faust exports end and committed offsets but no lag, and its users report silent stalls
(faust-streaming#175, #523, #532); ``restock lag`` makes them visible and is usable as a probe:
exit 0 within the thresholds, 1 over them, 2 on errors.

Definitions, per partition:

* ``lag_messages = max(0, log_end_offset - committed_offset)`` (from the log start offset when
  the group has not committed), where ``log_end_offset`` is the true end of the log, read from
  its last batch: Tansu reports the last batch's *base* offset + 1 as the end, which would
  undercount a topic produced in batches (8 instead of 40 messages);
* ``lag_seconds`` = age of the oldest unprocessed event: now minus the timestamp of the record
  at the committed offset (0 when there is none).

One admin client and one consumer do all of it, every partition at once (about two fetch round
trips), so a call takes well under a second on a local broker.

Processing time appears here only, never in the forecasting or replenishment math.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from streams.clients import PLAINTEXT, KafkaSecurity, kafka_admin, kafka_consumer


@dataclass(frozen=True)
class PartitionLag:
    """Lag of one partition (offsets are message positions; seconds are wall-clock)."""

    topic: str
    partition: int
    committed_offset: int | None
    log_end_offset: int
    lag_messages: int
    lag_seconds: float


@dataclass(frozen=True)
class GroupLag:
    """Lag of one consumer group over its topics."""

    group: str
    partitions: list[PartitionLag]

    @property
    def total_messages(self) -> int:
        """Sum of ``lag_messages``."""
        return sum(p.lag_messages for p in self.partitions)

    @property
    def max_seconds(self) -> float:
        """Largest ``lag_seconds``."""
        return max((p.lag_seconds for p in self.partitions), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form with totals."""
        return {"group": self.group, "total_lag_messages": self.total_messages,
                "max_lag_seconds": round(self.max_seconds, 3),
                "partitions": [asdict(p) for p in self.partitions]}


def consumer_lag(bootstrap: str, group: str, topics: list[str] | None = None,
                 now: float | None = None, timeout_s: float = 10.0, *,
                 security: KafkaSecurity = PLAINTEXT) -> GroupLag:
    """Measure the lag of ``group`` on ``topics`` (default: the topics it has committed on).

    One admin client (committed offsets, reported log ends) and one consumer read the records
    themselves, all partitions at once: the first record at each committed position (its
    timestamp gives ``lag_seconds``) and the last batch of each partition (its last offset + 1
    is the true log end: some brokers, Tansu among them, report the last *batch's* base offset
    + 1 as the end, which undercounts batched topics). Partitions without a commit start at the
    log start offset.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers, ``host:port``.
    group : str
        Consumer group id (a restock worker's group is its ``app_id``).
    topics : list of str, optional
        Topics to report; partitions without a commit report the whole log as lag.
    now : float, optional
        Wall-clock epoch seconds (for tests); default ``time.time()``.
    timeout_s : float
        Timeout of each broker request, seconds.
    security : KafkaSecurity
        TLS / SASL of the clients (:mod:`streams.clients`); plaintext by default.

    Returns
    -------
    GroupLag

    Raises
    ------
    kafka.errors.KafkaError
        When the broker cannot be reached (the CLI turns it into exit code 2).
    """
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    now = time.time() if now is None else now
    ms = int(timeout_s * 1000)
    admin = kafka_admin(bootstrap, security, request_timeout_ms=ms, bootstrap_timeout_ms=ms)
    consumer = kafka_consumer(bootstrap, security, enable_auto_commit=False, request_timeout_ms=ms + 1,
                              fetch_max_wait_ms=20, max_partition_fetch_bytes=1 << 20)
    try:
        committed = {(tp.topic, tp.partition): om.offset
                     for tp, om in admin.list_group_offsets(group).get(group, {}).items()}
        names = topics or sorted({t for t, _ in committed})
        counts = {t: len(consumer.partitions_for_topic(t) or ()) for t in names}
        missing = [t for t, n in counts.items() if n == 0]
        if missing:
            from streams.kafka_admin import UnknownTopicError

            raise UnknownTopicError(missing)
        tps: list[Any] = [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
        if not tps:
            return GroupLag(group, [])
        ends = {tp: int(o.offset) for tp, o in admin.list_partition_offsets(
            {tp: OffsetSpec.LATEST for tp in tps}).items()}
        starts = {tp: int(o.offset) for tp, o in admin.list_partition_offsets(
            {tp: OffsetSpec.EARLIEST for tp in tps}).items()}
        position = {}
        for tp in tps:
            c = committed.get((tp.topic, tp.partition))
            position[tp] = max(c if c is not None and c >= 0 else 0, starts.get(tp, 0))
        consumer.assign(tps)
        first = _read(consumer, position, first_only=True, deadline=time.monotonic() + timeout_s)
        # the true end: read every non-empty partition from the last batch the broker reported to
        # the end (the committed position may even be above the reported end)
        tail = {tp: max(starts.get(tp, 0), ends.get(tp, 0) - 1) for tp in tps
                if ends.get(tp, 0) > starts.get(tp, 0)}
        last = _read(consumer, tail, first_only=False, deadline=time.monotonic() + timeout_s)
        out: list[PartitionLag] = []
        for tp in sorted(tps):
            end = max(ends.get(tp, 0), last[tp].offset + 1 if tp in last else 0,
                      first[tp].offset + 1 if tp in first else 0)
            c = committed.get((tp.topic, tp.partition))
            ts = first[tp].timestamp if tp in first else None
            out.append(PartitionLag(tp.topic, tp.partition, c, end, max(0, end - position[tp]),
                                    round(max(0.0, now - ts / 1000.0), 3) if ts is not None else 0.0))
        return GroupLag(group, out)
    finally:
        consumer.close()
        admin.close()


def _read(consumer: Any, positions: dict[Any, int], *, first_only: bool, deadline: float) -> dict[Any, Any]:
    """Seek every partition to its position and fetch, all partitions at once.

    Returns the first record at or after each position (``first_only``) or the last record up to
    the end of each partition; partitions with nothing there are absent. Stops when every
    partition is answered (``first_only``) or after two empty fetches in a row.
    """
    if not positions:
        return {}
    consumer.assign(list(positions))
    for tp, off in positions.items():
        consumer.seek(tp, off)
    out: dict[Any, Any] = {}
    empty = 0
    while empty < 2 and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=100, max_records=10_000)
        got = {tp: msgs for tp, msgs in batch.items() if msgs}
        empty = 0 if got else empty + 1
        for tp, msgs in got.items():
            if first_only:
                out.setdefault(tp, msgs[0])
                consumer.pause(tp)
            else:
                out[tp] = msgs[-1]
        if first_only and len(out) == len(positions):
            break
    consumer.resume(*consumer.paused())
    return out


def within(lag: GroupLag, max_lag: int | None, max_seconds: float | None) -> bool:
    """True when the group is within both thresholds (None: no threshold)."""
    if max_lag is not None and lag.total_messages > max_lag:
        return False
    return not (max_seconds is not None and lag.max_seconds > max_seconds)
