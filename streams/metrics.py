"""Prometheus metrics of the worker (prometheus-client; served on ``metrics_port``).

Names follow Prometheus conventions (``_total`` counters, base units: seconds, bytes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from agents.pipeline import BatchOutput, Record

EVENTS_CONSUMED = Counter("restock_events_consumed_total", "Input events consumed", ["topic"])
EVENTS_APPLIED = Counter("restock_events_applied_total", "Input events applied to SKU state")
EVENTS_SKIPPED = Counter("restock_events_skipped_total", "Events skipped by the offset fence (replays)")
DEAD_LETTERS = Counter("restock_dead_letters_total", "Events sent to the dead-letter topic", ["stage"])
DECISIONS = Counter("restock_decisions_total", "Decision events emitted", ["kind"])
STALE_POLICIES = Counter("restock_policies_stale_total",
                         "PolicySet events ignored: version not above the SKU's (policies topic)")
PERIODS_LEARNED = Counter("restock_model_updates_total", "Demand periods learned by SKU models")
BATCH_SECONDS = Histogram("restock_batch_seconds", "Wall time to process one batch",
                          buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
EVENT_SECONDS = Histogram("restock_event_processing_seconds", "Per-event processing time (batch / size)",
                          buckets=(1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 1e-2))
REDIS_WRITE_SECONDS = Histogram("restock_redis_write_seconds", "Pipelined state flush latency",
                                buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1))
REDIS_ERRORS = Counter("restock_redis_errors_total", "Failed Redis operations (retried)")
REWINDS = Counter("restock_partition_rewinds_total",
                  "Input partitions sought back to Redis' durable progress on assignment "
                  "(Redis had lost writes)")
SKUS_CACHED = Gauge("restock_skus_cached", "SKU states held in the worker's hot cache")
CONSUMER_LAG = Gauge("restock_consumer_lag_messages", "Consumer lag in messages", ["topic", "partition"])
CONSUMER_LAG_SECONDS = Gauge("restock_consumer_lag_seconds", "Age of the oldest unprocessed event",
                             ["topic", "partition"])


def observe_batch(records: list[Record], out: BatchOutput, seconds: float, cached: int) -> None:
    """Record one batch's counts and timings."""
    by_topic: dict[str, int] = {}
    for r in records:
        by_topic[r.topic] = by_topic.get(r.topic, 0) + 1
    for topic, n in by_topic.items():
        EVENTS_CONSUMED.labels(topic).inc(n)
    EVENTS_APPLIED.inc(out.applied)
    EVENTS_SKIPPED.inc(out.skipped)
    for stage, n in out.dead_lettered.items():
        DEAD_LETTERS.labels(stage).inc(n)
    for kind, n in out.decision_kinds.items():
        DECISIONS.labels(kind).inc(n)
    PERIODS_LEARNED.inc(out.periods_closed)
    STALE_POLICIES.inc(out.stale_policies)
    BATCH_SECONDS.observe(seconds)
    if records:
        EVENT_SECONDS.observe(seconds / len(records))
    SKUS_CACHED.set(cached)
