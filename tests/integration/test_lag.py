"""`restock lag` against the real broker: a consumer that stops mid-topic shows its lag."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer

from streams.lag import consumer_lag, within


def _produce_one_by_one(kafka: str, topic: str, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka)
    try:
        for i in range(n):
            producer.send(topic, key=b"k", value=str(i).encode()).get(timeout=10)  # exact log end
    finally:
        producer.close()


async def _consume_and_commit(kafka: str, topic: str, group: str, n: int) -> None:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", session_timeout_ms=4000,
                                heartbeat_interval_ms=500, max_poll_records=n)
    await consumer.start()
    try:
        got = 0
        deadline = time.monotonic() + 30
        while got < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=n - got)
            for tp, msgs in batch.items():
                got += len(msgs)
                await consumer.commit({tp: msgs[-1].offset + 1})
        assert got == n
    finally:
        await consumer.stop()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", "lag", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.timeout(120)
def test_a_consumer_stopped_mid_topic_shows_its_lag(kafka_bootstrap: str, new_topics, unique_name) -> None:
    topic = new_topics({"lag": 1})["lag"]
    group = unique_name("g")
    _produce_one_by_one(kafka_bootstrap, topic, 50)
    asyncio.run(_consume_and_commit(kafka_bootstrap, topic, group, 20))
    time.sleep(1.2)
    result = consumer_lag(kafka_bootstrap, group, [topic])
    (p,) = result.partitions
    assert (p.committed_offset, p.log_end_offset, p.lag_messages) == (20, 50, 30)
    assert p.lag_seconds > 1.0
    assert within(result, max_lag=30, max_seconds=None)
    assert not within(result, max_lag=29, max_seconds=None)
    assert not within(result, max_lag=None, max_seconds=0.5)

    env = dict(os.environ, RESTOCK_KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    over = _cli("--group", group, "--topic", topic, "--max-lag", "10", env=env)
    assert over.returncode == 1, over.stderr
    ok = _cli("--group", group, "--topic", topic, "--max-lag", "100", "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    assert '"total_lag_messages": 30' in ok.stdout


@pytest.mark.timeout(60)
def test_lag_on_an_unreachable_broker_exits_2_with_a_message() -> None:
    from streams.ports import free_port

    env = dict(os.environ, RESTOCK_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    res = _cli("--group", "nobody", "--topic", "nothing", env=env)
    assert res.returncode == 2
    assert "cannot read consumer lag" in res.stderr
    assert "Traceback" not in res.stderr
