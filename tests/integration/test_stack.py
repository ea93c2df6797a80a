"""The services every integration test relies on: broker, redis-server, admin helpers, stack."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli_stack import stack as stack_cli
from streams.kafka_admin import (
    CopartitioningError,
    PartitionCountMismatchError,
    UnknownTopicError,
    check_copartitioned,
    ensure_topics,
    partition_counts,
)
from streams.ports import free_port
from streams.probes import probe_kafka, probe_redis
from streams.stack import LocalStack, StackError

REPO = Path(__file__).resolve().parents[2]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


# ------------------------------------------------------------------------------------------------
# (a) Kafka round trip with aiokafka (the client family Faust uses)
# ------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_kafka_produce_consume_keyed_roundtrip(kafka_bootstrap, new_topics, unique_name):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = new_topics({"orders": 4})["orders"]
    skus = [f"SKU-{i % 10:03d}@DC1" for i in range(100)]
    sent = {
        i: {"seq": i, "sku_key": skus[i], "qty": i % 7 + 1}
        for i in range(100)
    }

    async def run() -> list[tuple[str, dict, int]]:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap,
            key_serializer=str.encode,
            value_serializer=lambda v: json.dumps(v).encode(),
            linger_ms=20,
            request_timeout_ms=10_000,
        )
        await producer.start()
        try:
            futures = [
                await producer.send(topic, key=msg["sku_key"], value=msg)  # enqueue only
                for msg in sent.values()
            ]
            metas = await asyncio.wait_for(asyncio.gather(*futures), timeout=15)
        finally:
            await producer.stop()
        assert len(metas) == 100

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=unique_name("g"),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            key_deserializer=bytes.decode,
            value_deserializer=json.loads,
            request_timeout_ms=10_000,
        )
        await consumer.start()
        received: list[tuple[str, dict, int]] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while len(received) < 100 and loop.time() < deadline:
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                for _tp, records in batches.items():
                    received.extend((r.key, r.value, r.partition) for r in records)
        finally:
            await consumer.stop()
        return received

    received = asyncio.run(run())

    assert len(received) == 100, f"received {len(received)} of 100 messages"
    by_seq = {value["seq"]: (key, value) for key, value, _ in received}
    assert set(by_seq) == set(sent)
    for seq, (key, value) in by_seq.items():
        assert value == sent[seq]
        assert key == sent[seq]["sku_key"]
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    for key, _value, partition in received:
        partitions_of_key[key].add(partition)
    assert all(len(p) == 1 for p in partitions_of_key.values()), partitions_of_key
    assert all(0 <= next(iter(p)) < 4 for p in partitions_of_key.values())
    # order within a key (= within a partition) is preserved
    for key in partitions_of_key:
        seqs = [v["seq"] for k, v, _ in received if k == key]
        assert seqs == sorted(seqs)


# ------------------------------------------------------------------------------------------------
# (b) Redis round trip
# ------------------------------------------------------------------------------------------------


def test_redis_hash_and_transaction(redis_client):
    assert redis_client.dbsize() == 0  # the fixture hands out a flushed database
    key = "restock:{SKU-1@DC1}:state"
    assert redis_client.hset(key, mapping={"on_hand": 12, "period_qty": "3.5"}) == 2
    assert redis_client.hget(key, "on_hand") == b"12"
    assert redis_client.hgetall(key) == {b"on_hand": b"12", b"period_qty": b"3.5"}

    fence = "restock:{SKU-1@DC1}:fence"
    with redis_client.pipeline(transaction=True) as pipe:
        pipe.hset(key, "on_hand", 9)
        pipe.hset(fence, "orders:0", 41)
        pipe.hincrby(fence, "orders:0", 1)
        results = pipe.execute()
    assert results == [0, 1, 42]
    assert redis_client.hget(key, "on_hand") == b"9"
    assert redis_client.hget(fence, "orders:0") == b"42"


def test_redis_client_starts_from_empty_db(redis_client):
    # the previous test left keys behind; FLUSHDB must have removed them
    assert redis_client.keys("restock:*") == []


# ------------------------------------------------------------------------------------------------
# (c) admin helpers
# ------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_ensure_topics_idempotent_and_copartitioning(kafka_bootstrap, unique_name):
    orders, inventory, promos = (unique_name(p) for p in ("orders", "inventory", "promos"))

    ensure_topics(kafka_bootstrap, {orders: 4, inventory: 4})
    ensure_topics(kafka_bootstrap, {orders: 4, inventory: 4})  # no-op, no error
    ensure_topics(kafka_bootstrap, {orders: 4, promos: 2})  # mix of existing and new
    assert partition_counts(kafka_bootstrap, [orders, inventory, promos]) == {
        orders: 4,
        inventory: 4,
        promos: 2,
    }

    assert check_copartitioned(kafka_bootstrap, [orders, inventory]) == 4
    with pytest.raises(CopartitioningError) as err:
        check_copartitioned(kafka_bootstrap, [orders, inventory, promos])
    msg = str(err.value)
    assert f"{orders}=4" in msg and f"{promos}=2" in msg
    assert err.value.counts == {orders: 4, inventory: 4, promos: 2}

    with pytest.raises(PartitionCountMismatchError):
        ensure_topics(kafka_bootstrap, {promos: 4})
    missing = unique_name("missing")
    with pytest.raises(UnknownTopicError) as unknown:
        check_copartitioned(kafka_bootstrap, [orders, missing])
    assert unknown.value.topics == [missing]
    assert partition_counts(kafka_bootstrap, [orders, missing], missing_ok=True) == {orders: 4}


def test_new_topics_fixture(kafka_bootstrap, new_topics):
    names = new_topics({"orders": 3, "reorders": 1})
    assert set(names) == {"orders", "reorders"}
    assert names["orders"] != names["reorders"]
    assert partition_counts(kafka_bootstrap, names.values()) == {
        names["orders"]: 3,
        names["reorders"]: 1,
    }


# ------------------------------------------------------------------------------------------------
# (d) LocalStack lifecycle and the CLI
# ------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_local_stack_lifecycle_and_cli(tmp_path):
    kafka_port = free_port()
    redis_port = free_port(exclude={kafka_port})
    stack = LocalStack(tmp_path / "stack", kafka_port, redis_port)
    cli_args = [
        "--state-dir", str(stack.state_dir),
        "--kafka-port", str(kafka_port),
        "--redis-port", str(redis_port),
    ]
    pids: list[int] = []
    try:
        first = stack.up(timeout_s=20)
        assert first.healthy, first
        pids = [first.kafka.pid, first.redis.pid]
        assert all(pids) and all(_pid_alive(p) for p in pids)
        assert (stack.state_dir / "kafka.pid").read_text().strip() == str(first.kafka.pid)
        assert (stack.state_dir / "kafka.log").exists() and (stack.state_dir / "redis.log").exists()

        # idempotent: a second up() (also from a fresh instance, as the CLI would) starts nothing
        second = stack.up(timeout_s=20)
        again = LocalStack(stack.state_dir, kafka_port, redis_port).up(timeout_s=20)
        assert [second.kafka.pid, second.redis.pid] == pids
        assert [again.kafka.pid, again.redis.pid] == pids

        status = stack.status()
        assert status.healthy
        assert status.kafka.address == f"127.0.0.1:{kafka_port}" == stack.kafka_bootstrap
        assert stack.redis_url == f"redis://127.0.0.1:{redis_port}/0"
        assert probe_kafka("127.0.0.1", kafka_port)[0]
        assert probe_redis("127.0.0.1", redis_port) == (True, "PONG")

        # fault-injection helpers
        stack.pause_kafka()
        paused = stack.status()
        assert paused.kafka.alive and not paused.kafka.healthy
        stack.resume_kafka()
        assert stack.wait_healthy(timeout_s=10).healthy

        runner = CliRunner()
        result = runner.invoke(stack_cli, ["status", *cli_args])
        assert result.exit_code == 0, result.output
        assert "healthy" in result.output

        # a second stack on the same ports is refused with a clear error
        with pytest.raises(StackError, match="already in use"):
            LocalStack(tmp_path / "other", kafka_port, redis_port).up(timeout_s=5)
    finally:
        stack.down(timeout_s=10)

    assert pids and not any(_pid_alive(p) for p in pids)
    assert not (stack.state_dir / "kafka.pid").exists()
    assert not (stack.state_dir / "redis.pid").exists()
    down = stack.status()
    assert not down.kafka.alive and not down.redis.alive and not down.healthy
    stack.down()  # stopping a stopped stack is a no-op

    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTOCK_")}
    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli_stack", "status", *cli_args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "down" in proc.stdout


@pytest.mark.timeout(60)
def test_cli_up_down_subprocess(tmp_path):
    """The services outlive the `stack up` process and `stack down` removes them."""
    kafka_port = free_port()
    redis_port = free_port(exclude={kafka_port})
    state = tmp_path / "cli-stack"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTOCK_")}
    env.update(
        RESTOCK_STACK_DIR=str(state),
        RESTOCK_KAFKA_PORT=str(kafka_port),
        RESTOCK_REDIS_PORT=str(redis_port),
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli_stack", *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
        )

    stack = LocalStack(state, kafka_port, redis_port)
    try:
        up = cli("up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{kafka_port}" in up.stdout
        status = stack.status()  # the launching process has exited; the services live on
        assert status.healthy, status
        pids = [status.kafka.pid, status.redis.pid]
        assert cli("status").returncode == 0
        down = cli("down")
        assert down.returncode == 0, down.stdout + down.stderr
    finally:
        stack.down()
    assert not any(_pid_alive(p) for p in pids if p)
    assert cli("status").returncode == 1
