"""Operations against the real broker and redis-server (issue #18, 3).

Where the stack is, `restock lag` on a batched topic, replaying dead letters twice, readiness
while Redis writes fail, and a quiet idle worker log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from schemas.events import DeadLetter, encode_event
from streams.kafka_admin import ensure_topics
from streams.lag import consumer_lag
from streams.stack import REDIS, LocalStack, free_port
from streams.workerproc import WorkerProcess

from .helpers import T0, publish, read_all, ready_status, snapshot, steady_orders, worker_settings
from .reliability import wait_for


def _restock(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"} and not k.startswith("RESTOCK_")}
    env.update(extra)
    return env


@pytest.mark.timeout(120)
def test_commands_find_a_stack_started_on_other_ports(tmp_path: Path) -> None:
    """`stack up` on non-default ports records them; `lag` and `dlq list` then use that stack."""
    state = tmp_path / "stack"
    kafka_port, redis_port = free_port(), free_port()
    up = _restock("stack", "up", env=_clean_env(RESTOCK_STACK_DIR=str(state),
                                                RESTOCK_KAFKA_PORT=str(kafka_port),
                                                RESTOCK_REDIS_PORT=str(redis_port)))
    assert up.returncode == 0, up.stderr
    try:
        bootstrap = f"127.0.0.1:{kafka_port}"
        ensure_topics(bootstrap, {"only-on-this-stack": 1, "restock.dlq": 1})
        env = _clean_env(RESTOCK_STACK_DIR=str(state))  # no port, no address: the endpoints file
        lag = _restock("lag", "--topic", "only-on-this-stack", "--json", env=env)
        assert lag.returncode == 0, lag.stderr
        assert json.loads(lag.stdout)["partitions"][0]["topic"] == "only-on-this-stack"
        listed = _restock("dlq", "list", env=env)
        assert listed.returncode == 0 and "0 dead letter(s)" in listed.stdout, listed.stderr
        # an explicit option wins over the endpoints file
        other = _restock("lag", "--topic", "only-on-this-stack", "--bootstrap-servers",
                         f"127.0.0.1:{free_port()}", env=env)
        assert other.returncode == 2
    finally:
        down = _restock("stack", "down", env=_clean_env(RESTOCK_STACK_DIR=str(state),
                                                        RESTOCK_KAFKA_PORT=str(kafka_port),
                                                        RESTOCK_REDIS_PORT=str(redis_port)))
        assert down.returncode == 0, down.stderr
    assert not (state / "endpoints.json").exists()


@pytest.mark.timeout(120)
def test_lag_counts_every_message_of_a_batched_topic(kafka_bootstrap: str, new_topics, unique_name) -> None:
    topic = new_topics({"lag": 4})["lag"]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=200)  # a few large batches
    for i in range(40):
        producer.send(topic, key=f"k{i % 7}".encode(), value=str(i).encode())
    producer.flush()
    producer.close()
    per_partition = {p: 0 for p in range(4)}
    for m in read_all(kafka_bootstrap, topic, 4, expect=40):
        per_partition[m.partition] += 1
    group = unique_name("g")
    lag = consumer_lag(kafka_bootstrap, group, [topic])
    assert lag.total_messages == 40  # not one per batch
    assert {p.partition: p.log_end_offset for p in lag.partitions} == per_partition
    assert all(p.committed_offset is None for p in lag.partitions)
    # commit part of partition 0 only
    busy = max(per_partition, key=per_partition.get)  # type: ignore[arg-type]
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, busy): OffsetAndMetadata(2, "", -1)})
    consumer.close()
    lag = consumer_lag(kafka_bootstrap, group, [topic])
    mine = next(p for p in lag.partitions if p.partition == busy)
    assert (mine.committed_offset, mine.lag_messages) == (2, per_partition[busy] - 2)
    assert lag.total_messages == 38
    # a group that committed everything: the log end is the true end, not below the commit
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, busy): OffsetAndMetadata(per_partition[busy], "", -1)})
    consumer.close()
    mine = next(p for p in consumer_lag(kafka_bootstrap, group, [topic]).partitions if p.partition == busy)
    n = per_partition[busy]
    assert (mine.committed_offset, mine.log_end_offset, mine.lag_messages) == (n, n, 0)


@pytest.mark.timeout(120)
def test_replaying_twice_sends_each_dead_letter_once(kafka_bootstrap: str, new_topics) -> None:
    topics = new_topics({"orders": 2, "dlq": 2})
    at = datetime(2026, 1, 1, tzinfo=UTC)
    letters = [DeadLetter.from_failure(topics["orders"], i % 2, i, b"A@W1", b'{"bad": %d}' % i,
                                       "validate" if i < 3 else "late", "x", at) for i in range(5)]
    publish(kafka_bootstrap, topics["dlq"], [(dl.key.encode(), encode_event(dl)) for dl in letters], raw=True)
    env = _clean_env(RESTOCK_DLQ_TOPIC=topics["dlq"], KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    first = _restock("dlq", "replay", "--stage", "validate", "--yes", env=env)
    assert first.returncode == 0 and "replayed 3 message(s)" in first.stdout, first.stderr
    again = _restock("dlq", "replay", "--stage", "validate", "--yes", env=env)
    assert again.returncode == 0 and "nothing to replay (3 already replayed" in again.stdout, again.stderr
    one = _restock("dlq", "replay", "--id", letters[4].dead_letter_id, "--yes", env=env)
    assert "replayed 1 message(s)" in one.stdout, one.stderr
    resent = read_all(kafka_bootstrap, topics["orders"], 2, expect=4)
    assert sorted(m.value for m in resent) == [b'{"bad": 0}', b'{"bad": 1}', b'{"bad": 2}', b'{"bad": 4}']
    listed = _restock("dlq", "list", "--stage", "validate", env=env)
    assert listed.stdout.count("replayed=") == 3


@pytest.mark.timeout(180)
def test_failing_redis_writes_do_not_unassign_partitions_and_the_idle_log_is_quiet(
        kafka_bootstrap: str, new_topics, own_redis: LocalStack, tmp_path: Path) -> None:
    topics = new_topics({"orders": 2, "inventory": 2, "promotions": 2, "reorders": 2, "dlq": 2})
    s = worker_settings(kafka_bootstrap, own_redis.redis_url, topics, f"ops-{tmp_path.name}", tmp_path,
                        topic_partitions=2, lag_refresh_interval_s=1.0)
    with WorkerProcess(s, tmp_path / "worker.log") as w:
        w.wait_ready()
        publish(kafka_bootstrap, topics["inventory"], [snapshot("R1", 10, T0)])
        wait_for(lambda: ready_status(s.web_port)[1].get("last_call_ok") is True, 30, "the first batch")
        log_before = w.log_path.read_text()
        import time

        time.sleep(3)  # idle, with the lag gauges refreshed every second
        idle = w.log_path.read_text()[len(log_before):]
        assert "KafkaConnection" not in idle and "Updated metadata" not in idle, idle[-2000:]
        own_redis.down(which=[REDIS])  # Redis gone: the next batch's write fails and is retried
        publish(kafka_bootstrap, topics["orders"], steady_orders("R1", 2, 3))
        wait_for(lambda: ready_status(s.web_port)[1].get("last_call_ok") is False, 60, "a failed Redis call")
        status, body = ready_status(s.web_port)
        assert status == 503 and body["partitions_assigned"] is True and body["redis"] is False
