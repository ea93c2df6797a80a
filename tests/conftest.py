"""Session fixtures shared by the whole suite.

Service resolution (each of Kafka and Redis independently, first match wins):

1. ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` environment variables (external services);
2. testcontainers' Kafka / Redis when a Docker engine answers a ping within ~2 s
   (set ``RESTOCK_TEST_DOCKER=0`` to skip this step);
3. one embedded :class:`streams.stack.LocalStack` (Tansu + redis-server) on free ports in a
   pytest tmp dir, torn down at session end.

``RESTOCK_TEST_REDIS=cluster`` (without ``REDIS_URL``): the session's Redis is a real local
Redis Cluster (:class:`streams.redis_cluster.LocalRedisCluster`, 3 masters, no replica) and
``redis_url`` is its ``redis+cluster://`` URL; ``local_stack`` then skips (its Redis is not
the session's). ``make test-cluster`` runs the integration suite so.

The services start lazily: a run that only collects unit tests starts nothing.

Fixtures
--------
kafka_bootstrap, redis_url
    Session-scoped addresses.
local_stack
    The embedded LocalStack (for fault injection); skips when Kafka or Redis is external.
redis_cluster
    A session-wide local Redis Cluster (3 masters), started on first use (the session's Redis
    itself with ``RESTOCK_TEST_REDIS=cluster``).
redis_client
    Function-scoped client (bytes responses) on a FLUSHDB-ed database: ``redis.Redis``, or
    ``RedisCluster`` on a cluster (FLUSHDB on every primary).
unique_name
    Factory ``unique_name(prefix="t") -> "t-<testname>-<uuid8>"`` (valid Kafka topic name).
new_topics
    Factory ``new_topics({"orders": 4, ...}) -> {"orders": "t-orders-<test>-<uuid8>", ...}``;
    the topics exist (all partitions visible) when it returns and are deleted after the test.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from streams.clients import redis_client as make_redis_client
from streams.kafka_admin import delete_topics, ensure_topics
from streams.ports import free_port
from streams.redis_cluster import LocalRedisCluster
from streams.stack import KAFKA, REDIS, LocalStack

_INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


# ------------------------------------------------------------------------------------------------
# markers
# ------------------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration with ``integration``."""
    for item in items:
        path = Path(str(getattr(item, "path", item.fspath))).resolve()
        if _INTEGRATION_DIR == path or _INTEGRATION_DIR in path.parents:
            item.add_marker(pytest.mark.integration)


# ------------------------------------------------------------------------------------------------
# service resolution
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Endpoints:
    kafka_bootstrap: str
    redis_url: str
    stack: LocalStack | None  # set only when the embedded stack provides BOTH services
    origin: dict[str, str]  # service -> "env" | "docker" | "embedded"


def _docker_available() -> bool:
    """True when a Docker engine answers a ping (gives up within ~2 s)."""
    if os.environ.get("RESTOCK_TEST_DOCKER", "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def _kafka_container() -> Iterator[str]:
    try:
        from testcontainers.community.kafka import KafkaContainer  # type: ignore[import-not-found]
    except ImportError:
        from testcontainers.kafka import KafkaContainer
    container = KafkaContainer()
    container.start()
    try:
        yield str(container.get_bootstrap_server())
    finally:
        container.stop()


@contextlib.contextmanager
def _redis_container() -> Iterator[str]:
    try:
        from testcontainers.community.redis import RedisContainer  # type: ignore[import-not-found]
    except ImportError:
        from testcontainers.redis import RedisContainer
    container = RedisContainer()
    container.start()
    try:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(6379)
        yield f"redis://{host}:{port}/0"
    finally:
        container.stop()


def _cluster_mode() -> bool:
    return os.environ.get("RESTOCK_TEST_REDIS", "").strip().lower() == "cluster"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A local Redis Cluster of 3 masters for the session (started on first use)."""
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("cluster"), masters=3, die_with_parent=True)
    atexit.register(_quiet_down, cluster)
    try:
        cluster.up(timeout_s=30)
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def _endpoints(tmp_path_factory: pytest.TempPathFactory,
               request: pytest.FixtureRequest) -> Iterator[_Endpoints]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None
    redis_url = os.environ.get("REDIS_URL", "").strip() or None
    origin = {KAFKA: "env" if kafka else "", REDIS: "env" if redis_url else ""}
    if redis_url is None and _cluster_mode():
        redis_url = request.getfixturevalue("redis_cluster").url
        origin[REDIS] = "cluster"
    with contextlib.ExitStack() as cleanup:
        if (kafka is None or redis_url is None) and _docker_available():
            if kafka is None:
                kafka = cleanup.enter_context(_kafka_container())
                origin[KAFKA] = "docker"
            if redis_url is None:
                redis_url = cleanup.enter_context(_redis_container())
                origin[REDIS] = "docker"
        stack: LocalStack | None = None
        need = [s for s, v in ((KAFKA, kafka), (REDIS, redis_url)) if v is None]
        if need:
            kafka_port = free_port()
            redis_port = free_port(exclude={kafka_port})
            local = LocalStack(
                tmp_path_factory.mktemp("stack"), kafka_port, redis_port, die_with_parent=True
            )
            # registered before up(): a failed start-up or an interpreter exit that skips the
            # fixture teardown still stops whatever was started
            atexit.register(_quiet_down, local)
            cleanup.callback(local.down)
            local.up(timeout_s=30, which=need)
            kafka = kafka or local.kafka_bootstrap
            redis_url = redis_url or local.redis_url
            for s in need:
                origin[s] = "embedded"
            stack = local if len(need) == 2 else None
        assert kafka is not None and redis_url is not None
        yield _Endpoints(kafka, redis_url, stack, origin)


def _quiet_down(stack: LocalStack | LocalRedisCluster) -> None:
    with contextlib.suppress(Exception):
        stack.down(timeout_s=5)


@pytest.fixture(scope="session")
def kafka_bootstrap(_endpoints: _Endpoints) -> str:
    """Kafka bootstrap servers for the session (``host:port``)."""
    return _endpoints.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(_endpoints: _Endpoints) -> str:
    """Redis URL for the session (``redis://host:port/db``, or ``redis+cluster://...``)."""
    return _endpoints.redis_url


@pytest.fixture(scope="session")
def local_stack(_endpoints: _Endpoints) -> LocalStack:
    """The embedded LocalStack, for fault-injection tests (skips with external services)."""
    if _endpoints.stack is None:
        pytest.skip(
            "fault injection needs the embedded LocalStack, but the session uses "
            f"kafka={_endpoints.origin[KAFKA]}, redis={_endpoints.origin[REDIS]} "
            "(unset KAFKA_BOOTSTRAP_SERVERS / REDIS_URL and set RESTOCK_TEST_DOCKER=0)"
        )
    return _endpoints.stack


# ------------------------------------------------------------------------------------------------
# per-test helpers
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a freshly FLUSHDB-ed database (bytes responses; ``RedisCluster`` on a cluster)."""
    client = make_redis_client(redis_url, socket_timeout=10, socket_connect_timeout=5)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


_TOPIC_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Factory of unique, Kafka-legal names: ``unique_name("t") -> "t-<testname>-<uuid8>"``."""
    test = _TOPIC_UNSAFE.sub("-", request.node.name).strip("-.")[:60] or "test"

    def make(prefix: str = "t") -> str:
        prefix = _TOPIC_UNSAFE.sub("-", prefix).strip("-") or "t"
        return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def new_topics(
    kafka_bootstrap: str, unique_name: Callable[..., str]
) -> Iterator[Callable[..., dict[str, str]]]:
    """Factory creating uniquely named topics: ``{"orders": 4} -> {"orders": actual_name}``.

    Topics are created with :func:`streams.kafka_admin.ensure_topics` (all partitions visible
    on return) and deleted, best effort, after the test.
    """
    created: list[str] = []

    def make(roles: dict[str, int], replication: int = 1) -> dict[str, str]:
        names = {role: unique_name(f"t-{role}") for role in roles}
        ensure_topics(
            kafka_bootstrap, {names[r]: n for r, n in roles.items()}, replication=replication
        )
        created.extend(names.values())
        return names

    yield make
    if created:
        delete_topics(kafka_bootstrap, created, timeout_s=5)
