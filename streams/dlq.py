"""Read, select and replay the dead-letter topic (``restock dlq list`` / ``restock dlq replay``).

A dead letter keeps the original bytes, key, source topic/partition/offset, the stage that
failed and the error. Stages (:data:`schemas.events.DEAD_LETTER_STAGES`):

* ``missing_key`` / ``wrong_partition`` -- no key, or not on its key's partition (fix the
  producer: key ``sku@location``, Kafka's default murmur2 partitioner);
* ``validate`` -- not UTF-8, not JSON, or not a valid event of the topic (schema violation,
  message key different from the payload's ``sku@location``);
* ``decode`` -- a record of a topic that has no decoder (not one of the input topics);
* ``process`` -- applying the event raised;
* ``late`` -- too late for its demand period;
* ``fence`` -- rejected by the offset fence.

Replaying sends the original key and bytes back to the source topic (after the upstream fix, or
to re-apply a late event deliberately); the worker then processes them as new events at new
offsets. Every replayed letter is recorded on ``<dlq topic>.replayed`` (its id, when, and where
it was sent), and a replay skips letters already recorded there unless asked to resend them, so
running the same replay twice does not send anything twice.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.codec import EventValidationError, decode_dead_letter
from schemas.dead_letters import DeadLetter
from streams.clients import PLAINTEXT, KafkaSecurity, kafka_consumer, kafka_producer


def replay_log_topic(dlq_topic: str) -> str:
    """Topic recording replayed dead letters: ``<dlq_topic>.replayed``."""
    return f"{dlq_topic}.replayed"


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command acts on (every criterion given must hold; None: any).

    Attributes
    ----------
    ids : collection of str or None
        ``dead_letter_id`` values.
    stage : str or None
        One of :data:`schemas.events.DEAD_LETTER_STAGES`.
    source_topic : str or None
        Topic the failed record came from.
    partition : int or None
        Its partition.
    from_offset, to_offset : int or None
        Inclusive range of source offsets.
    since, until : datetime or None
        Inclusive range of ``failed_at`` (UTC, processing time).
    """

    ids: Collection[str] | None = None
    stage: str | None = None
    source_topic: str | None = None
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, dl: DeadLetter) -> bool:
        """True when ``dl`` meets every criterion."""
        return ((self.ids is None or dl.dead_letter_id in self.ids)
                and (self.stage is None or dl.stage == self.stage)
                and (self.source_topic is None or dl.source_topic == self.source_topic)
                and (self.partition is None or dl.partition == self.partition)
                and (self.from_offset is None or dl.offset >= self.from_offset)
                and (self.to_offset is None or dl.offset <= self.to_offset)
                and (self.since is None or dl.failed_at >= self.since)
                and (self.until is None or dl.failed_at <= self.until))

    @property
    def empty(self) -> bool:
        """True when no criterion is given (everything matches)."""
        return all(v is None for v in (self.ids, self.stage, self.source_topic, self.partition,
                                       self.from_offset, self.to_offset, self.since, self.until))


def read_dead_letters(bootstrap: str, topic: str, idle_ms: int = 1000, *,
                      security: KafkaSecurity = PLAINTEXT) -> Iterator[DeadLetter]:
    """Yield every dead letter on ``topic`` from the beginning (manual assignment, no group).

    ``security`` is the clients' TLS / SASL (:mod:`streams.clients`). The same failure read
    twice (a replayed batch dead-letters again with the same deterministic id) is yielded once.

    Raises
    ------
    kafka.errors.KafkaError
        When the broker cannot be reached.
    """
    seen: set[str] = set()
    for value in _read_values(bootstrap, topic, idle_ms, security):
        try:
            dl = decode_dead_letter(value)
        except EventValidationError:
            continue  # not a dead letter of ours; never re-dead-letter the DLQ itself
        if dl.dead_letter_id not in seen:
            seen.add(dl.dead_letter_id)
            yield dl


def read_replayed(bootstrap: str, dlq_topic: str, idle_ms: int = 500, *,
                  security: KafkaSecurity = PLAINTEXT) -> dict[str, dict[str, object]]:
    """Replay records on ``<dlq_topic>.replayed``: ``dead_letter_id -> last record`` ({} if none)."""
    out: dict[str, dict[str, object]] = {}
    for value in _read_values(bootstrap, replay_log_topic(dlq_topic), idle_ms, security, missing_ok=True):
        try:
            rec = json.loads(value)
            out[str(rec["dead_letter_id"])] = rec
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _read_values(bootstrap: str, topic: str, idle_ms: int, security: KafkaSecurity,
                 missing_ok: bool = False) -> Iterator[bytes]:
    from kafka import TopicPartition

    from streams.kafka_admin import partition_counts

    n = partition_counts(bootstrap, [topic], missing_ok=missing_ok, security=security).get(topic)
    if n is None:
        return
    consumer = kafka_consumer(bootstrap, security, enable_auto_commit=False, consumer_timeout_ms=idle_ms)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(n)])
        consumer.seek_to_beginning()
        for msg in consumer:
            yield msg.value
    finally:
        consumer.close()


def replay(bootstrap: str, letters: list[DeadLetter], *, security: KafkaSecurity = PLAINTEXT,
           dlq_topic: str | None = None, now: datetime | None = None) -> int:
    """Send each letter's original key and bytes back to its source topic; returns the count.

    Letters whose value was truncated are skipped: the full message is still at its source
    position and must be re-published from there. With ``dlq_topic``, one JSON record per sent
    letter (``dead_letter_id``, ``replayed_at``, ``topic``, ``partition``, ``offset`` of the copy)
    goes to ``<dlq_topic>.replayed`` once the copies are acknowledged.
    """
    sendable = [dl for dl in letters if not dl.value_truncated]  # a truncated copy is not the event
    if not sendable:
        return 0
    producer = kafka_producer(bootstrap, security, linger_ms=5)
    try:
        futures = [producer.send(dl.source_topic, key=dl.original_key(), value=dl.original_value())
                   for dl in sendable]
        producer.flush()
        sent = [f.get(timeout=30) for f in futures]
        if dlq_topic is not None:
            from streams.kafka_admin import ensure_topics

            log_topic = replay_log_topic(dlq_topic)
            ensure_topics(bootstrap, {log_topic: 1}, strict=False, security=security)
            at = (now or datetime.now(UTC)).isoformat()
            for dl, md in zip(sendable, sent, strict=True):
                record = {"dead_letter_id": dl.dead_letter_id, "replayed_at": at, "topic": md.topic,
                          "partition": md.partition, "offset": md.offset, "stage": dl.stage}
                producer.send(log_topic, key=dl.dead_letter_id.encode(), value=json.dumps(record).encode())
            producer.flush()
        return len(sent)
    finally:
        producer.close()
