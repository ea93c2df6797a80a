"""Kafka topic administration: create, inspect, co-partitioning check, delete.

Every function opens its own short-lived kafka-python ``KafkaAdminClient`` and always closes it.
kafka-python is used for admin only (its group consumers do not work against the embedded Tansu
broker; aiokafka / Faust are used for consuming).

Restock's input topics (``orders``, ``inventory``, ``promotions``, ``policies``) must be co-partitioned (same
partition count) because they are all keyed by the SKU key and one partition owns every event
of a SKU; :func:`check_copartitioned` enforces that at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from streams.clients import PLAINTEXT, KafkaSecurity, kafka_admin

__all__ = [
    "CopartitioningError",
    "KafkaAdminError",
    "PartitionCountMismatchError",
    "UnknownTopicError",
    "check_copartitioned",
    "delete_topics",
    "ensure_topics",
    "partition_counts",
]

log = logging.getLogger(__name__)

_ERR_NONE = 0
_ERR_UNKNOWN_TOPIC = 3
_ERR_TOPIC_EXISTS = 36
_POLL_S = 0.05


class KafkaAdminError(RuntimeError):
    """An admin operation failed (broker unreachable, request rejected, timeout)."""


class UnknownTopicError(KafkaAdminError):
    """One or more topics do not exist.

    Attributes
    ----------
    topics : list[str]
        The missing topic names.
    """

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = sorted(topics)
        super().__init__(f"unknown topic(s): {', '.join(self.topics)}")


class PartitionCountMismatchError(KafkaAdminError):
    """A topic already exists with a different partition count than requested.

    Attributes
    ----------
    mismatches : dict[str, tuple[int, int]]
        ``topic -> (existing, requested)``.
    """

    def __init__(self, mismatches: dict[str, tuple[int, int]]) -> None:
        self.mismatches = dict(mismatches)
        parts = ", ".join(
            f"{t} has {have} partition(s), {want} requested"
            for t, (have, want) in sorted(self.mismatches.items())
        )
        super().__init__(f"existing topic(s) with a different partition count: {parts}")


class CopartitioningError(KafkaAdminError):
    """Topics that must be co-partitioned have different partition counts.

    Attributes
    ----------
    counts : dict[str, int]
        ``topic -> partition count``.
    """

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = dict(counts)
        parts = ", ".join(f"{t}={n}" for t, n in self.counts.items())
        super().__init__(
            f"topics are not co-partitioned (partition counts differ): {parts}; every input "
            "topic keyed by the SKU key must have the same number of partitions"
        )


@contextlib.contextmanager
def _admin(bootstrap: str, timeout_s: float, security: KafkaSecurity = PLAINTEXT) -> Iterator[Any]:
    """Open a KafkaAdminClient (:func:`streams.clients.kafka_admin`) and close it whatever happens."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    timeout_ms = max(1000, int(timeout_s * 1000))
    configs: dict[str, Any] = {
        "client_id": "restock-admin",
        "request_timeout_ms": timeout_ms,
    }
    # kafka-python 3 bounds the bootstrap with bootstrap_timeout_ms, 2.x with the api-version probe
    for key in ("bootstrap_timeout_ms", "api_version_auto_timeout_ms"):
        if key in KafkaAdminClient.DEFAULT_CONFIG:
            configs[key] = timeout_ms
            break
    try:
        client = kafka_admin(bootstrap, security, **configs)
    except (KafkaError, OSError, ValueError) as exc:
        raise KafkaAdminError(f"cannot reach Kafka at {bootstrap}: {exc!r}") from exc
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _describe(client: Any, names: list[str]) -> dict[str, int | None]:
    """Return ``topic -> partition count`` (None when the topic does not exist / not ready)."""
    out: dict[str, int | None] = {}
    if not names:
        return out
    for desc in client.describe_topics(names):
        name = desc["name"]
        err = desc.get("error_code", _ERR_NONE)
        parts = desc.get("partitions") or []
        if err != _ERR_NONE or not parts:
            out[name] = None
            continue
        leaders = [p.get("leader_id", p.get("leader")) for p in parts]
        if any(leader is not None and leader < 0 for leader in leaders):
            out[name] = None  # partitions without a leader yet
            continue
        out[name] = len(parts)
    for name in names:
        out.setdefault(name, None)
    return out


def ensure_topics(
    bootstrap: str,
    topics: dict[str, int],
    replication: int = 1,
    timeout_s: float = 15,
    *,
    strict: bool = True,
    security: KafkaSecurity = PLAINTEXT,
    configs: dict[str, dict[str, str]] | None = None,
) -> None:
    """Create the missing topics and wait until metadata shows all their partitions.

    Idempotent: existing topics (and a concurrent creator's ``TopicAlreadyExists``) are fine.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers, ``host:port[,host:port...]``.
    topics : dict[str, int]
        ``topic name -> partition count`` (>= 1).
    replication : int
        Replication factor for created topics.
    timeout_s : float
        Seconds for the whole operation (create + metadata wait).
    strict : bool
        Raise when an existing topic has a different partition count than requested.
    security : KafkaSecurity
        TLS / SASL of the admin client (:mod:`streams.clients`); plaintext by default.
    configs : dict, optional
        ``topic name -> {config: value}`` for created topics (e.g. ``{"cleanup.policy":
        "compact"}``); existing topics are not altered.

    Raises
    ------
    ValueError
        On a partition count < 1.
    PartitionCountMismatchError
        ``strict`` and an existing topic's partition count differs.
    KafkaAdminError
        When the broker is unreachable, rejects a creation, or the topics do not show up in
        metadata within ``timeout_s``.
    """
    if not topics:
        return
    for name, n in topics.items():
        if int(n) < 1:
            raise ValueError(f"topic {name!r}: partition count must be >= 1, got {n}")
    from kafka.admin import NewTopic

    deadline = time.monotonic() + timeout_s
    names = list(topics)
    with _admin(bootstrap, timeout_s, security) as client:
        existing = set(client.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            cfg = configs or {}
            req = [NewTopic(n, int(topics[n]), int(replication), topic_configs=dict(cfg.get(n, {})))
                   for n in missing]
            remaining_ms = max(1000, int((deadline - time.monotonic()) * 1000))
            resp = client.create_topics(req, timeout_ms=remaining_ms, raise_errors=False)
            errors = []
            for res in _topic_results(resp):
                code = res.get("error_code", _ERR_NONE)
                if code not in (_ERR_NONE, _ERR_TOPIC_EXISTS):
                    errors.append(f"{res.get('name')}: error {code} {res.get('error_message')}")
            if errors:
                raise KafkaAdminError("topic creation failed: " + "; ".join(errors))
            log.debug("created topics %s", missing)
        while True:
            counts = _describe(client, names)
            if all(c is not None for c in counts.values()):
                break
            if time.monotonic() > deadline:
                pending = sorted(n for n, c in counts.items() if c is None)
                raise KafkaAdminError(
                    f"topics not visible in metadata after {timeout_s} s: {', '.join(pending)}"
                )
            time.sleep(_POLL_S)
    mismatches = {
        n: (int(c), int(topics[n])) for n, c in counts.items() if c is not None and c != topics[n]
    }
    if mismatches and strict:
        raise PartitionCountMismatchError(mismatches)


def _topic_results(resp: Any) -> list[dict[str, Any]]:
    """Normalise kafka-python's create/delete topic responses into a list of dicts."""
    if isinstance(resp, dict):
        return list(resp.get("topics", []))
    if hasattr(resp, "to_object"):
        return list(resp.to_object().get("topics", []))
    results = getattr(resp, "topics", None) or getattr(resp, "topic_errors", None) or []
    out = []
    for r in results:
        if isinstance(r, tuple):
            message = r[2] if len(r) > 2 else None
            out.append({"name": r[0], "error_code": r[1], "error_message": message})
        elif isinstance(r, dict):
            out.append(r)
        else:
            out.append({k: getattr(r, k, None) for k in ("name", "error_code", "error_message")})
    return out


def partition_counts(
    bootstrap: str, names: Iterable[str], *, missing_ok: bool = False, timeout_s: float = 10,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[str, int]:
    """Return the partition count of each topic.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers.
    names : Iterable[str]
        Topic names.
    missing_ok : bool
        Leave absent topics out of the result instead of raising.
    timeout_s : float
        Request timeout in seconds.
    security : KafkaSecurity
        TLS / SASL of the admin client; plaintext by default.

    Returns
    -------
    dict[str, int]
        ``topic -> partition count``, in the order of ``names``.

    Raises
    ------
    UnknownTopicError
        When a topic does not exist (unless ``missing_ok``).
    KafkaAdminError
        When the broker is unreachable.
    """
    wanted = list(dict.fromkeys(names))
    with _admin(bootstrap, timeout_s, security) as client:
        counts = _describe(client, wanted)
    missing = [n for n in wanted if counts.get(n) is None]
    if missing and not missing_ok:
        raise UnknownTopicError(missing)
    return {n: int(c) for n in wanted if (c := counts.get(n)) is not None}


def check_copartitioned(bootstrap: str, names: Iterable[str], timeout_s: float = 10, *,
                        security: KafkaSecurity = PLAINTEXT) -> int:
    """Check that the topics exist and share one partition count.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers.
    names : Iterable[str]
        Topics that must be co-partitioned (at least one).
    timeout_s : float
        Request timeout in seconds.
    security : KafkaSecurity
        TLS / SASL of the admin client; plaintext by default.

    Returns
    -------
    int
        The common partition count.

    Raises
    ------
    ValueError
        When ``names`` is empty.
    UnknownTopicError
        When a topic does not exist.
    CopartitioningError
        When the partition counts differ (the message names every topic and its count).
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise ValueError("check_copartitioned needs at least one topic")
    counts = partition_counts(bootstrap, wanted, timeout_s=timeout_s, security=security)
    if len(set(counts.values())) != 1:
        raise CopartitioningError(counts)
    return next(iter(counts.values()))


def delete_topics(bootstrap: str, names: Iterable[str], timeout_s: float = 10, *,
                  security: KafkaSecurity = PLAINTEXT) -> list[str]:
    """Delete topics, best effort (never raises for absent topics or an unreachable broker).

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers.
    names : Iterable[str]
        Topics to delete.
    timeout_s : float
        Request timeout in seconds.
    security : KafkaSecurity
        TLS / SASL of the admin client; plaintext by default.

    Returns
    -------
    list[str]
        The topics the broker reported as deleted.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    try:
        with _admin(bootstrap, timeout_s, security) as client:
            present = [n for n in wanted if n in set(client.list_topics())]
            if not present:
                return []
            resp = client.delete_topics(
                present, timeout_ms=int(timeout_s * 1000), raise_errors=False
            )
    except Exception as exc:  # best effort by contract
        log.warning("deleting topics %s failed: %r", wanted, exc)
        return []
    deleted = []
    for res in _topic_results(resp):
        if res.get("error_code", _ERR_NONE) == _ERR_NONE:
            deleted.append(str(res.get("name")))
        else:
            log.warning("deleting topic %s: error %s", res.get("name"), res.get("error_code"))
    return deleted
