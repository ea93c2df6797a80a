"""Policies at run time through the real broker and Redis (issue #20): the ``policies`` topic.

A worker creates the (compacted) ``policies`` topic co-partitioned with the existing inputs;
``restock policies publish`` sends a SKU a new target and lead time; the worker re-decides the
SKU at once, its decision names the policy version and its levels differ from the default's;
the policy is in the SKU's state in Redis and survives a restart (state rebuilt from Redis, not
from the topic); ``restock policies delete`` (a tombstone) resets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from schemas.events import StockReceived, decode_decision
from streams.kafka_admin import partition_counts
from streams.partitioning import partition_for
from streams.redis_state import RedisStateStore
from streams.workerproc import WorkerProcess, wait_caught_up

from .helpers import T0, publish, read_all, snapshot, steady_orders, worker_settings

PARTITIONS = 2
KEY = "P@W1"


def _cli(kafka: str, topic: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
    env.update({"RESTOCK_KAFKA_BOOTSTRAP_SERVERS": kafka, "RESTOCK_POLICIES_TOPIC": topic})
    done = subprocess.run([sys.executable, "-m", "streams.cli", "policies", *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _reorders(kafka: str, topic: str, expect: int) -> list:
    msgs = read_all(kafka, topic, PARTITIONS, expect=expect, idle_s=1.0)
    return [d for d in (decode_decision(m.value) for m in msgs) if d.kind == "reorder_suggested"]


@pytest.mark.timeout(180)
def test_a_policy_changes_the_next_decision_and_survives_a_restart(
    kafka_bootstrap: str, redis_url: str, redis_client, new_topics, tmp_path: Path
) -> None:
    # the policies topic is left to the worker (it creates it with the inputs' 2 partitions,
    # although RESTOCK_TOPIC_PARTITIONS says 4)
    topics = new_topics({r: PARTITIONS for r in ("orders", "inventory", "promotions", "reorders", "dlq")})
    s = worker_settings(kafka_bootstrap, redis_url, topics, f"pol-{tmp_path.name}", tmp_path)
    assert s.topic_partitions == 4 and s.policies_topic not in topics.values()
    part = partition_for(KEY.encode(), PARTITIONS)
    orders = steady_orders("P", days=30, per_day=10)
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(f"{KEY}: {{lead_time_days: 14, cycle_service_level: 0.99, pack_size: 5}}\n")
    with WorkerProcess(s, tmp_path / "worker1.log") as w:
        w.wait_ready()
        assert partition_counts(kafka_bootstrap, [s.policies_topic]) == {s.policies_topic: PARTITIONS}
        targets = publish(kafka_bootstrap, topics["inventory"], [snapshot("P", 250, T0)])
        wait_caught_up(s, targets, timeout_s=60)
        targets.update(publish(kafka_bootstrap, topics["orders"], orders))
        wait_caught_up(s, targets, timeout_s=60)
        before = _reorders(kafka_bootstrap, topics["reorders"], expect=1)
        assert before and all(d.explanation.policy_version is None for d in before)
        default = before[-1].explanation

        at = (T0 + timedelta(days=29, hours=12)).strftime("%Y-%m-%dT%H:%M:%S")
        out = _cli(kafka_bootstrap, s.policies_topic, "publish", "--file", str(policy_file), "--version", "3",
                   "--occurred-at", at)
        assert "published 1 message(s), version 3" in out
        targets[(s.policies_topic, part)] = 1
        wait_caught_up(s, targets, timeout_s=60)
        after = _reorders(kafka_bootstrap, topics["reorders"], expect=len(before) + 1)
        assert len(after) == len(before) + 1
        new = after[-1]
        x = new.explanation
        assert x.trigger_topic == s.policies_topic and x.policy_version == 3
        assert (x.lead_time_periods, x.service_level_kind, x.service_level_target) == (14.0, "cycle", 0.99)
        assert x.reorder_point > default.reorder_point and x.order_up_to > default.order_up_to
        assert new.quantity % 5 == 0
    store = RedisStateStore.from_url(redis_url, s.redis_key_prefix)
    stored = store.load_many([KEY])[KEY]
    assert stored.policy is not None and stored.policy.version == 3 and stored.policy_version == 3
    assert dict(stored.policy.parameters) == {"cycle_service_level": 0.99, "lead_time_days": 14.0,
                                              "pack_size": 5}

    # A restart resumes from the committed offsets with the state from Redis: the policy holds.
    with WorkerProcess(s, tmp_path / "worker2.log") as w:
        w.wait_ready()
        receipt = StockReceived(event_id="P-rcv", occurred_at=T0 + timedelta(days=29, hours=13), sku="P",
                                location="W1", quantity=5)
        targets.update(publish(kafka_bootstrap, topics["inventory"], [receipt]))
        wait_caught_up(s, targets, timeout_s=60)
        later = _reorders(kafka_bootstrap, topics["reorders"], expect=len(after) + 1)
        assert len(later) == len(after) + 1
        y = later[-1].explanation
        assert y.trigger_event_id == "P-rcv" and y.policy_version == 3 and y.lead_time_periods == 14.0

        # a tombstone (restock policies delete) resets the SKU to the defaults
        assert "deleted 1 policy" in _cli(kafka_bootstrap, s.policies_topic, "delete", KEY)
        targets[(s.policies_topic, part)] = 2
        wait_caught_up(s, targets, timeout_s=60)
    final = store.load_many([KEY])[KEY]
    assert final.policy is None and final.policy_version == 3
    assert final.counters["policies"] == 1 and final.counters["policy_deletes"] == 1
