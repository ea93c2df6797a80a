"""Topic names, roles and partition counts, all from :class:`streams.settings.Settings`.

Every input topic is keyed by ``sku@location`` and has the same partition count
(co-partitioning): one partition, and so one worker, owns every event of a SKU. The worker
checks the counts at start-up and refuses to run when they differ.
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
    }


def all_topics(settings: Settings) -> dict[str, int]:
    """Every topic restock uses -> partition count (outputs share the input count)."""
    n = settings.topic_partitions
    return {
        settings.orders_topic: n,
        settings.inventory_topic: n,
        settings.promotions_topic: n,
        settings.reorders_topic: n,
        settings.dlq_topic: n,
    }
