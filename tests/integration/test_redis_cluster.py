"""restock on a real local Redis Cluster (3 masters on loopback, no Docker; issue #21).

Cluster-specific behaviour, in every ``make test``: the slot of every key, a batch spread over
the nodes with its progress written last, the fence and the lost-write check across slots,
scripts missing on a node, a worker end to end, and ``restock stack up --redis-cluster``.
The rest of the integration suite runs on a cluster with ``RESTOCK_TEST_REDIS=cluster``
(``make test-cluster``; a lean subset in ``make test``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.cluster import RedisCluster

from agents.state import SkuState, is_pool_key, pool_key
from streams.clients import cluster_startup, redis_client
from streams.ports import free_port, port_bindable
from streams.redis_cluster import CLUSTER_SLOTS, LocalRedisCluster, free_cluster_port, slot_ranges
from streams.redis_state import RedisStateStore, ReplicaAckTimeout, StateRegressionError
from streams.workerproc import WorkerProcess, wait_caught_up

from .helpers import T0, publish, steady_orders, worker_settings
from .test_state_store_contract_redis import _contract, _prefixes


def _state(key: str, offset: int, partition: int = 0) -> SkuState:
    s = SkuState.new(key)
    s.mark_applied("orders", partition, offset)
    s.updated_at = int((T0 + timedelta(seconds=offset)).timestamp())
    return s


@pytest.fixture
def cluster_client(redis_cluster: LocalRedisCluster) -> Iterator[RedisCluster]:
    client = redis_client(redis_cluster.url, socket_timeout=10, socket_connect_timeout=5)
    assert isinstance(client, RedisCluster)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


class TestClusterStateStore(_contract().StateStoreContract):  # type: ignore[misc]
    """The StateStore contract on the cluster (the single-node run: test_state_store_contract_redis.py)."""

    @pytest.fixture
    def make_store(self, cluster_client: RedisCluster) -> Callable[[], RedisStateStore]:
        return lambda: RedisStateStore(cluster_client, f"contract{next(_prefixes)}")

    @pytest.fixture
    def lose_progress(self, cluster_client: RedisCluster) -> Callable[[Any, int], None]:
        return lambda store, partition: cluster_client.delete(store.progress_key(partition))


def _node_of(client: RedisCluster, key: str) -> str:
    return str(client.get_node_from_key(key).name)


def test_the_cluster_url_names_every_startup_node(redis_cluster: LocalRedisCluster) -> None:
    single, nodes = cluster_startup(redis_cluster.url)
    assert [p for _, p in nodes] == redis_cluster.ports and single.startswith("redis://127.0.0.1:")
    assert slot_ranges(3) == [(0, 5460), (5461, 10922), (10923, 16383)]
    assert [s.slots for s in redis_cluster.status()] == [5461, 5462, 5461]


@given(st.integers(min_value=1, max_value=CLUSTER_SLOTS))
def test_slot_ranges_cover_every_slot_once_in_near_equal_parts(masters: int) -> None:
    ranges = slot_ranges(masters)
    assert len(ranges) == masters and ranges[0][0] == 0 and ranges[-1][1] == CLUSTER_SLOTS - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False))  # contiguous
    sizes = [last - first + 1 for first, last in ranges]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_every_atomic_step_lives_in_one_slot(cluster_client: RedisCluster) -> None:
    store = RedisStateStore(cluster_client, "t")
    slot = lambda key: int(cluster_client.execute_command("CLUSTER KEYSLOT", key))  # noqa: E731
    # a SKU's state is in the slot of its {sku@location} tag; a pool pseudo-state likewise
    assert slot(store.redis_key("A@W1")) == slot("{A@W1}") == slot("A@W1")
    assert slot(store.redis_key(pool_key(3))) == slot(pool_key(3))
    # a partition's index and progress share a slot, and partitions spread over the slots
    for p in range(8):
        assert slot(store.partition_key(p)) == slot(store.progress_key(p)) == slot(f"t:p{p}")
    assert len({slot(store.progress_key(p)) for p in range(8)}) == 8
    assert len({_node_of(cluster_client, store.progress_key(p)) for p in range(8)}) == 3


def test_a_batch_over_every_node_is_written_with_its_progress(cluster_client: RedisCluster) -> None:
    store = RedisStateStore(cluster_client, "t")
    assert store.cluster
    states = [_state(f"S{i}@W", 5) for i in range(60)]
    assert len({_node_of(cluster_client, store.redis_key(s.key)) for s in states}) == 3
    written = store.save_many(states, {s.key: 0 for s in states}, progress={("orders", 0): 5})
    assert written == 60 and store.read_progress([0]) == {("orders", 0): 5}
    assert store.keys() == sorted(s.key for s in states)  # SCAN on every primary
    assert store.keys_of_partition(0) == sorted(s.key for s in states)
    assert store.load_many(["S7@W"])["S7@W"].fence == {"orders:0": 5}
    # the fence holds in every slot: an older write is refused, the newer state stays
    assert store.save_many([_state("S7@W", 3)], {"S7@W": 0}, progress={("orders", 0): 3},
                           expected={("orders", 0): 5}) == 0
    assert store.load_many(["S7@W"])["S7@W"].fence == {"orders:0": 5}
    assert store.read_progress([0]) == {("orders", 0): 5}  # never lowered


def test_the_progress_is_not_written_when_a_state_of_the_batch_failed(cluster_client: RedisCluster) -> None:
    """Cross-slot batches are not atomic: the progress (the recovery point) is written last."""
    store = RedisStateStore(cluster_client, "t")
    states = [_state(f"S{i}@W", 9) for i in range(30)]
    poisoned = store.redis_key("S11@W")
    cluster_client.rpush(poisoned, b"not a state")  # its script fails with WRONGTYPE
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        store.save_many(states, {s.key: 0 for s in states}, progress={("orders", 0): 9})
    assert store.read_progress([0]) == {}, "the progress must not run ahead of the states"
    # some primaries took their states before the failing one stopped the batch: not atomic
    others = [s.key for s in states if s.key != "S11@W"]
    assert all(st.fence == {"orders:0": 9} for st in store.load_many(others).values())
    # the retry of the same batch (as the committer does) is exact: the fences accept equal seqs
    cluster_client.delete(poisoned)
    assert store.save_many(states, {s.key: 0 for s in states}, progress={("orders", 0): 9}) == 30
    assert store.read_progress([0]) == {("orders", 0): 9}


def test_a_writer_notices_that_the_cluster_lost_its_writes(cluster_client: RedisCluster) -> None:
    store = RedisStateStore(cluster_client, "t")
    store.save_many([_state("A@W", 10)], {"A@W": 0}, progress={("orders", 0): 10})
    cluster_client.hset(store.progress_key(0), "orders", 6)  # a failover to a lagging replica
    with pytest.raises(StateRegressionError) as err:
        store.save_many([_state("A@W", 12)], {"A@W": 0}, progress={("orders", 0): 12},
                        expected={("orders", 0): 10})
    assert err.value.lagging == {("orders", 0): (6, 10)}
    assert store.read_progress([0]) == {("orders", 0): 6}
    assert store.load_many(["A@W"])["A@W"].fence == {"orders:0": 10}


def test_nodes_that_lost_the_scripts_get_them_again(cluster_client: RedisCluster) -> None:
    """A promoted replica or a restarted node has an empty script cache (NOSCRIPT)."""
    store = RedisStateStore(cluster_client, "t")
    store.save_many([_state("A@W", 1)], {"A@W": 0}, progress={("orders", 0): 1})
    cluster_client.script_flush()
    states = [_state(f"S{i}@W", 2) for i in range(20)]
    assert store.save_many(states, {s.key: 0 for s in states}, progress={("orders", 0): 2}) == 20
    assert store.read_progress([0]) == {("orders", 0): 2}


def test_with_replicas_the_progress_waits_for_a_replica_to_hold_the_states(tmp_path: Path) -> None:
    """WAIT 1 on each writing connection: a failover cannot lose a state below the progress."""
    cluster = LocalRedisCluster(tmp_path / "replicated", masters=3, replicas=1, die_with_parent=True)
    try:
        cluster.up(timeout_s=30)
        cluster.wait_replicas_synced(30)
        client = redis_client(cluster.url, socket_timeout=10)
        store = RedisStateStore(client, "t", replica_ack_timeout_ms=300)
        states = [_state(f"S{i}@W", 4) for i in range(30)]
        assert store.save_many(states, {s.key: 0 for s in states}, progress={("orders", 0): 4}) == 30
        frozen = cluster.replica_of(cluster.master_ports()[0])[0]
        cluster.kill(frozen, signal.SIGSTOP)  # that master's replica stops acknowledging
        try:
            newer = [_state(f"S{i}@W", 8) for i in range(30)]
            with pytest.raises(ReplicaAckTimeout):
                store.save_many(newer, {s.key: 0 for s in newer}, progress={("orders", 0): 8},
                                expected={("orders", 0): 4})
            assert store.read_progress([0]) == {("orders", 0): 4}, "no progress over unacknowledged states"
        finally:
            cluster.kill(frozen, signal.SIGCONT)
        assert store.save_many(newer, {s.key: 0 for s in newer}, progress={("orders", 0): 8},
                               expected={("orders", 0): 4}) == 30
        assert store.read_progress([0]) == {("orders", 0): 8}
        client.close()
    finally:
        cluster.down()


@pytest.mark.timeout(120)
def test_a_worker_on_the_cluster(kafka_bootstrap: str, redis_cluster: LocalRedisCluster,
                                 cluster_client: RedisCluster, new_topics, tmp_path: Path) -> None:
    topics = new_topics({"orders": 4, "inventory": 4, "promotions": 4, "reorders": 4, "dlq": 4})
    skus = [f"S{i}" for i in range(12)]
    orders = sorted((o for i, s in enumerate(skus) for o in steady_orders(s, days=10, per_day=i % 3 + 1)),
                    key=lambda o: o.occurred_at)
    targets = publish(kafka_bootstrap, topics["orders"], orders)
    s = worker_settings(kafka_bootstrap, redis_cluster.url, topics, "cluster", tmp_path)
    with WorkerProcess(s, tmp_path / "worker.log") as w:
        w.wait_ready()
        wait_caught_up(s, targets, timeout_s=60)
    store = RedisStateStore.from_url(redis_cluster.url, s.redis_key_prefix)
    keys = store.keys()  # the SKUs, and the pools of the partitions (the fill-rate controller)
    assert [k for k in keys if not is_pool_key(k)] == sorted(f"{sku}@W1" for sku in skus)
    assert {k for k in keys if is_pool_key(k)} <= {pool_key(p) for p in range(4)}
    assert len({_node_of(cluster_client, store.redis_key(k)) for k in keys}) == 3
    assert store.load_many(["S4@W1"])["S4@W1"].counters["orders_units"] == 10 * 2
    assert store.read_progress(range(4)) == {tp: o - 1 for tp, o in targets.items()}


@pytest.mark.timeout(120)
def test_stack_up_with_a_redis_cluster_and_down_leaves_nothing(tmp_path: Path) -> None:
    state = tmp_path / "stack"
    cli = [sys.executable, "-m", "streams.cli_stack"]
    base = next(p for p in range(free_cluster_port(), 32000, 7)
                if all(port_bindable(q) and port_bindable(q + 10000) for q in range(p, p + 6)))
    ports = ["--state-dir", str(state), "--kafka-port", str(free_port(exclude=range(base, base + 6))),
             "--redis-port", str(base)]
    up = subprocess.run([*cli, "up", *ports, "--redis-cluster", "3", "--replicas", "1"],
                        capture_output=True, text=True, timeout=90)
    try:
        assert up.returncode == 0, up.stderr
        url = json.loads((state / "endpoints.json").read_text())["redis_url"]
        assert url.startswith("redis+cluster://") and url.count(",") == 5
        status = subprocess.run([*cli, "status", *ports], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("│ master") == 3 and status.stdout.count("│ replica") == 3
        assert "16384/16384 slots" in status.stdout
        client = redis_client(url)
        client.set("k", b"v")
        assert client.get("k") == b"v"
        client.close()
    finally:
        down = subprocess.run([*cli, "down", *ports], capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not [p.name for p in state.iterdir() if not p.name.endswith(".log") or "node-" in p.name]
