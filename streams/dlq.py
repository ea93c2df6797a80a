"""Read and replay the dead-letter topic (``restock dlq list`` / ``restock dlq replay``).

A dead letter keeps the original bytes, key, source topic/partition/offset, the stage that
failed (``decode``, ``validate``, ``process``, ``late``) and the error. Replaying sends the
original key and bytes back to the source topic (after the upstream fix, or to re-apply a late
event deliberately); the worker then processes them as new events at new offsets.
"""

from __future__ import annotations

from collections.abc import Iterator

from schemas.events import DeadLetter, EventValidationError, decode_dead_letter
from streams.clients import PLAINTEXT, KafkaSecurity, kafka_consumer, kafka_producer


def read_dead_letters(bootstrap: str, topic: str, idle_ms: int = 1000, *,
                      security: KafkaSecurity = PLAINTEXT) -> Iterator[DeadLetter]:
    """Yield every dead letter on ``topic`` from the beginning (manual assignment, no group).

    ``security`` is the clients' TLS / SASL (:mod:`streams.clients`).

    Raises
    ------
    kafka.errors.KafkaError
        When the broker cannot be reached.
    """
    from kafka import TopicPartition

    from streams.kafka_admin import partition_counts

    n = partition_counts(bootstrap, [topic], security=security)[topic]
    consumer = kafka_consumer(bootstrap, security, enable_auto_commit=False, consumer_timeout_ms=idle_ms)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(n)])
        consumer.seek_to_beginning()
        for msg in consumer:
            try:
                yield decode_dead_letter(msg.value)
            except EventValidationError:
                continue  # not a dead letter of ours; never re-dead-letter the DLQ itself
    finally:
        consumer.close()


def replay(bootstrap: str, letters: list[DeadLetter], *, security: KafkaSecurity = PLAINTEXT) -> int:
    """Send each letter's original key and bytes back to its source topic; returns the count.

    Letters whose value was truncated are skipped: the full message is still at its source
    position and must be re-published from there.
    """
    producer = kafka_producer(bootstrap, security, linger_ms=5)
    try:
        futures = [producer.send(dl.source_topic, key=dl.original_key(), value=dl.original_value())
                   for dl in letters if not dl.value_truncated]  # a truncated copy is not the event
        producer.flush()
        for f in futures:
            f.get(timeout=30)
        return len(futures)
    finally:
        producer.close()
