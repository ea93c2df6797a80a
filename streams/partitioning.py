"""The partitioner restock requires of producers: Kafka's default murmur2 of the key bytes.

Every input topic is keyed by ``sku@location`` and one partition owns a SKU (see
:mod:`streams.topics`). The worker checks each record against the partition this function
gives (:class:`agents.pipeline.Pipeline`, stages ``missing_key`` / ``wrong_partition``), so
producers must use the same rule: the Java client's default partitioner, which kafka-python
and aiokafka also use. librdkafka clients (``confluent-kafka``, ``kcat``, node-rdkafka) default
to ``consistent_random`` (CRC32) and must be configured with ``partitioner=murmur2_random``.
"""

from __future__ import annotations

from kafka.partitioner.default import murmur2


def partition_for(key: bytes, partitions: int) -> int:
    """Partition of a keyed record under Kafka's default partitioner.

    Parameters
    ----------
    key : bytes
        The record key (``sku@location`` UTF-8 encoded for restock's input topics).
    partitions : int
        Partition count of the topic (>= 1).

    Returns
    -------
    int
        ``(murmur2(key) & 0x7fffffff) % partitions``, in ``[0, partitions)``.

    Raises
    ------
    ValueError
        When ``partitions`` is below 1.

    References
    ----------
    .. [1] Apache Kafka, ``org.apache.kafka.clients.producer.internals.BuiltInPartitioner
       .partitionForKey`` (``Utils.toPositive(Utils.murmur2(key)) % numPartitions``);
       kafka-python ``kafka.partitioner.default.DefaultPartitioner``.

    Examples
    --------
    >>> partition_for(b"85123A@UK", 4), partition_for(b"85123A@UK", 1)
    (3, 0)
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
