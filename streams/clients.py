"""The one factory of Kafka and Redis clients: every client restock creates is built here.

Managed Kafka (Confluent Cloud, Amazon MSK, Aiven) needs TLS and SASL; managed Redis needs TLS.
:class:`KafkaSecurity` holds the Kafka side once, from :class:`streams.settings.Settings`
(``RESTOCK_KAFKA_SECURITY_PROTOCOL``, ``RESTOCK_KAFKA_SASL_MECHANISM``,
``RESTOCK_KAFKA_SASL_USERNAME``, ``RESTOCK_KAFKA_SASL_PASSWORD``, ``RESTOCK_KAFKA_SSL_CAFILE``,
``RESTOCK_KAFKA_SSL_CERTFILE``, ``RESTOCK_KAFKA_SSL_KEYFILE``,
``RESTOCK_KAFKA_SSL_CHECK_HOSTNAME``), and renders it for each client library:

* :meth:`KafkaSecurity.kafka_python` -- keyword arguments of kafka-python's ``KafkaProducer``,
  ``KafkaConsumer`` and ``KafkaAdminClient`` (``restock lag``, ``restock dlq``, topic admin,
  benchmarks);
* :meth:`KafkaSecurity.aiokafka` -- keyword arguments of aiokafka's producer and consumer
  (the demo, the latency benchmark);
* :meth:`KafkaSecurity.faust_credentials` -- ``broker_credentials`` of the Faust app (the
  worker), which Faust turns into the same aiokafka arguments.

Redis: the URL decides (``rediss://`` is TLS; ``redis+cluster://host:port,...`` is a Redis
Cluster, as is any URL with ``RESTOCK_REDIS_CLUSTER=true``); :func:`redis_client` adds the CA
bundle (``RESTOCK_REDIS_SSL_CA_FILE``) for TLS URLs.

Examples
--------
>>> from pydantic import SecretStr
>>> from streams.settings import Settings
>>> sec = KafkaSecurity.from_settings(Settings(kafka_security_protocol="SASL_PLAINTEXT",
...     kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="svc",
...     kafka_sasl_password=SecretStr("s3cret")))
>>> sec
KafkaSecurity(protocol='SASL_PLAINTEXT', sasl_mechanism='SCRAM-SHA-512', username='svc', ...)
>>> sorted(sec.kafka_python())
['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol']
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

if TYPE_CHECKING:
    import redis

    from streams.settings import Settings

__all__ = ["PLAINTEXT", "KafkaProbe", "KafkaSecurity", "aiokafka_consumer", "aiokafka_producer",
           "cluster_startup", "is_cluster_client", "is_cluster_url", "kafka_admin", "kafka_consumer",
           "kafka_producer", "redis_client", "redis_client_for"]


@dataclass(frozen=True)
class KafkaSecurity:
    """How restock's Kafka clients authenticate and encrypt (one value for all of them).

    Parameters
    ----------
    protocol : {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
        Kafka ``security.protocol``.
    sasl_mechanism : {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
        Used with the ``SASL_*`` protocols.
    username : str or None
        SASL username.
    password : SecretStr or None
        SASL password (masked in ``repr``).
    cafile, certfile, keyfile : str or None
        PEM files: CA bundle to verify the brokers (system CAs when None), client certificate
        and key (mutual TLS).
    check_hostname : bool
        Verify that the broker certificate names the host connected to.

    Raises
    ------
    ValueError
        On an unknown protocol or mechanism, a SASL protocol without username and password, or
        a certificate without its key.
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}:
            raise ValueError(f"unknown Kafka security protocol {self.protocol!r}")
        if self.sasl_mechanism not in {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}:
            raise ValueError(f"unsupported SASL mechanism {self.sasl_mechanism!r}")
        if self.uses_sasl and not (self.username and self.password):
            raise ValueError(f"{self.protocol} needs a SASL username and password")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("a client certificate needs its key (and a key its certificate)")

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity:
        """The security configuration ``settings`` describes."""
        def path(p: Path | None) -> str | None:
            return None if p is None else str(p)

        return cls(protocol=settings.kafka_security_protocol, sasl_mechanism=settings.kafka_sasl_mechanism,
                   username=settings.kafka_sasl_username, password=settings.kafka_sasl_password,
                   cafile=path(settings.kafka_ssl_cafile), certfile=path(settings.kafka_ssl_certfile),
                   keyfile=path(settings.kafka_ssl_keyfile), check_hostname=settings.kafka_ssl_check_hostname)

    @property
    def uses_ssl(self) -> bool:
        """True for ``SSL`` and ``SASL_SSL``."""
        return self.protocol in {"SSL", "SASL_SSL"}

    @property
    def uses_sasl(self) -> bool:
        """True for ``SASL_PLAINTEXT`` and ``SASL_SSL``."""
        return self.protocol.startswith("SASL_")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context (CA bundle, client certificate, hostname check), or None without TLS.

        Raises
        ------
        OSError
            When a certificate or key file cannot be read.
        ssl.SSLError
            When a file is not valid PEM.
        """
        if not self.uses_ssl:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.cafile)
        ctx.check_hostname = self.check_hostname
        if self.certfile is not None:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        return ctx

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python ``KafkaProducer`` / ``KafkaConsumer`` / ``KafkaAdminClient``."""
        kw: dict[str, Any] = {"security_protocol": self.protocol} if self.protocol != "PLAINTEXT" else {}
        if self.uses_sasl:
            assert self.password is not None
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                      sasl_plain_password=self.password.get_secret_value())
        if self.uses_ssl:
            kw.update(ssl_check_hostname=self.check_hostname)
            if self.cafile is not None:
                kw["ssl_cafile"] = self.cafile
            if self.certfile is not None:
                kw.update(ssl_certfile=self.certfile, ssl_keyfile=self.keyfile)
        return kw

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka ``AIOKafkaProducer`` / ``AIOKafkaConsumer``."""
        kw: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            assert self.password is not None
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                      sasl_plain_password=self.password.get_secret_value())
        if self.uses_ssl:
            kw["ssl_context"] = self.ssl_context()
        return kw

    def faust_credentials(self) -> Any:
        """``broker_credentials`` for ``faust.App`` (None for PLAINTEXT)."""
        import faust

        if self.protocol == "PLAINTEXT":
            return None
        if self.protocol == "SSL":
            return faust.SSLCredentials(self.ssl_context())
        assert self.password is not None
        return faust.SASLCredentials(username=self.username, password=self.password.get_secret_value(),
                                     ssl_context=self.ssl_context(), mechanism=self.sasl_mechanism)


PLAINTEXT = KafkaSecurity()
"""No TLS, no SASL: the embedded stack and most local brokers."""


def _servers(bootstrap: str) -> list[str]:
    return [s.strip() for s in bootstrap.removeprefix("kafka://").split(",") if s.strip()]


def kafka_consumer(bootstrap: str, security: KafkaSecurity = PLAINTEXT, **kwargs: Any) -> Any:
    """A kafka-python ``KafkaConsumer`` (extra ``kwargs`` passed through)."""
    from kafka import KafkaConsumer

    return KafkaConsumer(bootstrap_servers=_servers(bootstrap), **security.kafka_python(), **kwargs)


def kafka_producer(bootstrap: str, security: KafkaSecurity = PLAINTEXT, **kwargs: Any) -> Any:
    """A kafka-python ``KafkaProducer`` (extra ``kwargs`` passed through)."""
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=_servers(bootstrap), **security.kafka_python(), **kwargs)


def kafka_admin(bootstrap: str, security: KafkaSecurity = PLAINTEXT, **kwargs: Any) -> Any:
    """A kafka-python ``KafkaAdminClient`` (extra ``kwargs`` passed through)."""
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=_servers(bootstrap), **security.kafka_python(), **kwargs)


def aiokafka_producer(bootstrap: str, security: KafkaSecurity = PLAINTEXT, **kwargs: Any) -> Any:
    """An aiokafka ``AIOKafkaProducer`` (create it inside the running event loop)."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(bootstrap_servers=_servers(bootstrap), **security.aiokafka(), **kwargs)


def aiokafka_consumer(*topics: str, bootstrap: str, security: KafkaSecurity = PLAINTEXT,
                      **kwargs: Any) -> Any:
    """An aiokafka ``AIOKafkaConsumer`` (create it inside the running event loop)."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(*topics, bootstrap_servers=_servers(bootstrap), **security.aiokafka(), **kwargs)


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
"""URL schemes that name a Redis Cluster: ``redis+cluster://host:port[,host:port...]`` (TLS: ``rediss+``)."""


def is_cluster_url(url: str) -> bool:
    """True for a ``redis+cluster://`` or ``rediss+cluster://`` URL.

    Examples
    --------
    >>> is_cluster_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"), is_cluster_url("redis://h:1/0")
    (True, False)
    """
    return url.startswith(CLUSTER_SCHEMES)


def cluster_startup(url: str) -> tuple[str, list[tuple[str, int]]]:
    """Split a cluster URL into a single-node URL (scheme, credentials) and its startup nodes.

    The first node makes the single-node URL (``redis://[user:pw@]host:port``, ``rediss://``
    for TLS), which redis-py's ``RedisCluster.from_url`` parses for credentials and TLS; every
    node of the list is a startup node (any live one is enough to discover the cluster).

    Raises
    ------
    ValueError
        When the URL names no node, or a node without a port.

    Examples
    --------
    >>> cluster_startup("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001")
    ('redis://:pw@10.0.0.1:7000', [('10.0.0.1', 7000), ('10.0.0.2', 7001)])
    """
    scheme, _, rest = url.partition("://")
    plain = scheme.replace("+cluster", "")
    creds, _, hosts = rest.rpartition("@")
    hosts = hosts.split("/", 1)[0]
    nodes: list[tuple[str, int]] = []
    for part in (h.strip() for h in hosts.split(",") if h.strip()):
        host, sep, port = part.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"a cluster node needs host:port, got {part!r}")
        nodes.append((host or "127.0.0.1", int(port)))
    if not nodes:
        raise ValueError(f"no node in the Redis Cluster URL {scheme}://...")
    first = f"{nodes[0][0]}:{nodes[0][1]}"
    return f"{plain}://{creds + '@' if creds else ''}{first}", nodes


def redis_client(url: str, ca_file: str | Path | None = None, *, asyncio: bool = False,
                 cluster: bool = False, **kwargs: Any) -> redis.Redis:
    """A redis-py client for ``url``: a ``RedisCluster`` for a cluster, a ``Redis`` otherwise.

    Parameters
    ----------
    url : str
        ``redis://[:password@]host:port/db``, ``rediss://...`` (TLS), or a cluster:
        ``redis+cluster://[:password@]host:port[,host:port...]`` (``rediss+cluster://``: TLS).
    ca_file : str or Path, optional
        CA bundle (PEM) that signed the server certificate (TLS URLs only; system CAs when
        None).
    asyncio : bool
        Return a ``redis.asyncio`` client (same configuration) instead.
    cluster : bool
        Treat a plain ``redis://`` URL as a startup node of a cluster
        (``RESTOCK_REDIS_CLUSTER=true``).
    **kwargs
        Passed to ``from_url`` / ``RedisCluster`` (timeouts ...).

    Returns
    -------
    redis.Redis or redis.cluster.RedisCluster
        A cluster client discovers the slots from any startup node, follows ``MOVED``/``ASK``
        and re-reads the topology after a connection error (a failover).

    Raises
    ------
    ValueError
        When ``ca_file`` is given with a plain (non-TLS) URL (it would silently not encrypt),
        or a cluster URL is malformed.
    """
    import redis

    tls = url.startswith(("rediss://", "rediss+cluster://"))
    if ca_file is not None:
        if not tls:
            raise ValueError("a Redis CA file needs a rediss:// URL (TLS); got a plain redis:// URL")
        kwargs.setdefault("ssl_ca_certs", str(ca_file))
    if is_cluster_url(url) or cluster:
        single, nodes = cluster_startup(url) if is_cluster_url(url) else (url, [])
        if asyncio:
            from redis.asyncio.cluster import ClusterNode as AsyncNode
            from redis.asyncio.cluster import RedisCluster as AsyncCluster

            if nodes:
                kwargs["startup_nodes"] = [AsyncNode(h, p) for h, p in nodes]
            return AsyncCluster.from_url(single, **kwargs)  # type: ignore[return-value]
        from redis.cluster import ClusterNode, RedisCluster

        if nodes:
            kwargs["startup_nodes"] = [ClusterNode(h, p) for h, p in nodes]
        return RedisCluster.from_url(single, **kwargs)  # type: ignore[return-value]
    if asyncio:
        import redis.asyncio

        return redis.asyncio.Redis.from_url(url, **kwargs)  # type: ignore[return-value]
    return redis.Redis.from_url(url, **kwargs)


def is_cluster_client(client: object) -> bool:
    """True when ``client`` is redis-py's ``RedisCluster`` (sync or asyncio)."""
    from redis.asyncio.cluster import RedisCluster as AsyncCluster
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster | AsyncCluster)


def redis_client_for(settings: Settings, **kwargs: Any) -> redis.Redis:
    """:func:`redis_client` for ``settings.redis_url``, ``redis_ssl_ca_file`` and ``redis_cluster``."""
    return redis_client(settings.redis_dsn, settings.redis_ssl_ca_file,
                        cluster=settings.redis_cluster, **kwargs)


class KafkaProbe:
    """Readiness probe of the brokers, speaking the configured security protocol.

    PLAINTEXT: a raw ApiVersions + Metadata exchange with each bootstrap server
    (:func:`streams.stack.probe_kafka`, no client state). With TLS or SASL: ``describe_cluster``
    through one long-lived kafka-python admin client from this factory, so that the TLS
    handshake (certificate verified with the CA) and the SASL login are part of the check.

    Parameters
    ----------
    bootstrap : str
        Bootstrap servers, ``host:port[,host:port...]``.
    security : KafkaSecurity
        How to connect.
    timeout_s : float
        Connect and request timeout, seconds.
    """

    def __init__(self, bootstrap: str, security: KafkaSecurity = PLAINTEXT, timeout_s: float = 1.0) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.timeout_s = timeout_s
        self._admin: Any = None

    def __call__(self) -> tuple[bool, str]:
        """``(True, "brokers: ...")`` when the cluster answered, else ``(False, reason)``."""
        if self.security.protocol == "PLAINTEXT":
            from streams.stack import probe_kafka

            ok, detail = False, "no bootstrap server answered"
            for server in _servers(self.bootstrap):
                host, _, port = server.rpartition(":")
                ok, detail = probe_kafka(host or "127.0.0.1", int(port), timeout_s=self.timeout_s)
                if ok:
                    break
            return ok, detail
        ms = max(1000, int(self.timeout_s * 1000))
        try:
            if self._admin is None:
                self._admin = kafka_admin(self.bootstrap, self.security, client_id="restock-probe",
                                          request_timeout_ms=ms, bootstrap_timeout_ms=ms)
            brokers = self._admin.describe_cluster().get("brokers", [])
            return bool(brokers), "brokers: " + ", ".join(f"{b['host']}:{b['port']}" for b in brokers)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the client is rebuilt
            self.close()
            return False, f"no answer from {self.bootstrap} over {self.security.protocol} ({exc!r})"

    def close(self) -> None:
        """Close the admin client (a new one is made on the next call)."""
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken client is best effort
                pass
