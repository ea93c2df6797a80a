"""Topic names, roles, partition counts and configurations, all from :class:`streams.settings.Settings`.

Every input topic (``orders``, ``inventory``, ``promotions``, ``policies``) is keyed by
``sku@location`` and has the same partition count (co-partitioning): one partition, and so one
worker, owns every event of a SKU, its policy included. The worker checks the counts at start-up
and refuses to run when they differ. ``policies`` is log-compacted (:func:`topic_configs`).
"""

from __future__ import annotations

from schemas.common import TopicRole
from streams.settings import Settings


def input_roles(settings: Settings) -> dict[str, TopicRole]:
    """Input topic name -> role."""
    return {
        settings.orders_topic: "orders",
        settings.inventory_topic: "inventory",
        settings.promotions_topic: "promotions",
        settings.policies_topic: "policies",
    }


def all_topics(settings: Settings, partitions: int | None = None) -> dict[str, int]:
    """Every topic restock uses -> partition count (outputs share the input count).

    ``partitions`` (default ``settings.topic_partitions``): the count to create missing topics
    with, e.g. that of the input topics that already exist, so that a topic added in a later
    release (``policies``) joins an existing deployment co-partitioned.
    """
    n = partitions or settings.topic_partitions
    return {
        settings.orders_topic: n,
        settings.inventory_topic: n,
        settings.promotions_topic: n,
        settings.policies_topic: n,
        settings.reorders_topic: n,
        settings.dlq_topic: n,
    }


#: The ``policies`` topic keeps the latest policy per key (Kafka log compaction).
POLICIES_TOPIC_CONFIG = {"cleanup.policy": "compact"}


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Topic configurations restock sets when it creates a topic: ``policies`` is compacted.

    Compaction keeps, per ``sku@location``, the latest ``PolicySet`` (and a tombstone until the
    broker's ``delete.retention.ms``), so a worker rebuilding state from the log still finds
    every SKU's policy however old. The embedded broker (Tansu) accepts the setting but
    neither reports nor applies it; restock reads a compacted and an uncompacted log alike
    (the highest version wins).
    """
    return {settings.policies_topic: dict(POLICIES_TOPIC_CONFIG)}
