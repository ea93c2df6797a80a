"""Consumer lag in messages and in seconds, per topic/partition and per group.

Faust exports end and committed offsets but no lag, and its users report silent stalls
(faust-streaming#175, #523, #532); ``restock lag`` makes them visible and is usable as a probe:
exit 0 within the thresholds, 1 over them, 2 on errors.

Definitions, per partition:

* ``lag_messages = max(0, log_end_offset - committed_offset)``;
* ``lag_seconds`` = age of the oldest unprocessed event: now minus the timestamp of the record
  at the committed offset (0 when there is none). Measuring the record itself also catches a
  broker whose reported log-end offset trails the log (Tansu reports the last batch's base
  offset + 1): a record found at the committed offset counts as at least one message of lag.

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
    admin = kafka_admin(bootstrap, security, request_timeout_ms=int(timeout_s * 1000),
                        bootstrap_timeout_ms=int(timeout_s * 1000))
    consumer = kafka_consumer(bootstrap, security, enable_auto_commit=False,
                              consumer_timeout_ms=int(timeout_s * 1000),
                              request_timeout_ms=int(timeout_s * 1000) + 1)
    try:
        committed = {(tp.topic, tp.partition): om.offset
                     for tp, om in admin.list_group_offsets(group).get(group, {}).items()}
        names = topics or sorted({t for t, _ in committed})
        from streams.kafka_admin import partition_counts

        counts = partition_counts(bootstrap, names, security=security)
        tps: list[Any] = [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}) if tps else {}
        out: list[PartitionLag] = []
        for tp in sorted(tps):
            end = int(ends[tp].offset) if tp in ends else 0
            c = committed.get((tp.topic, tp.partition))
            start = c if c is not None and c >= 0 else 0
            ts = _timestamp_at(consumer, tp, start)
            lag_msgs = max(0, end - start)
            if ts is not None:
                lag_msgs = max(lag_msgs, 1)
            out.append(PartitionLag(tp.topic, tp.partition, c, end, lag_msgs,
                                    round(max(0.0, now - ts / 1000.0), 3) if ts is not None else 0.0))
        return GroupLag(group, out)
    finally:
        consumer.close()
        admin.close()


def _timestamp_at(consumer: Any, tp: Any, offset: int) -> int | None:
    """Timestamp (ms) of the record at ``offset``, or None when there is none yet."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    records = consumer.poll(timeout_ms=500, max_records=1)
    for msgs in records.values():
        for m in msgs:
            return int(m.timestamp)
    return None


def within(lag: GroupLag, max_lag: int | None, max_seconds: float | None) -> bool:
    """True when the group is within both thresholds (None: no threshold)."""
    if max_lag is not None and lag.total_messages > max_lag:
        return False
    return not (max_seconds is not None and lag.max_seconds > max_seconds)
