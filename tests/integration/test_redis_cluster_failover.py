"""A Redis Cluster master is killed (kill -9) mid-stream: its replica takes over, nothing is lost.

3 masters with one replica each (``cluster-node-timeout`` 1 s). The worker consumes the
reliability reference scenario (:mod:`tests.integration.reliability`); at a seeded moment a
seeded master is killed with SIGKILL. Half of the seeds first freeze that master's replica
(SIGSTOP) for a seeded fraction of a second before the kill, so that the promoted replica
lacks the master's last writes (asynchronous replication). States are acknowledged by a
replica (``WAIT``) before the progress that covers them is written, so only the progress's tail
can be lost: while the replica is frozen, the writes to its master time out
(``ReplicaAckTimeout``) and are retried, and the batch's progress is not written. If a progress
tail is lost anyway, the worker notices that Redis fell behind its durable writes, exits (75)
and the test restarts it (the "Redis behind Kafka" replay). In the runs so far the worker rode
through the failover on its retries (connection errors for about the node timeout) and never
had to restart. The final state must equal the uninterrupted reference byte for byte and the
decisions by id and payload.

Not in ``make test`` (marker ``soak``: one seed costs ~55 s, over the cluster pass's budget);
``make soak`` runs ``RESTOCK_FAULT_SEEDS`` (20) seeds, ``pytest -m soak <this file>`` one.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.app import REDIS_REGRESSION_EXIT_CODE
from streams.redis_cluster import LocalRedisCluster
from streams.redis_state import RedisStateStore
from streams.workerproc import WorkerProcess, wait_caught_up

from .reliability import Scenario, check_against_reference, progress_total, scaled, settings_for, wait_for

pytestmark = pytest.mark.soak

#: one seed by default; ``RESTOCK_FAULT_SEEDS`` (20) under ``RESTOCK_SOAK=1`` (``make soak``)
_SOAK = os.environ.get("RESTOCK_SOAK") == "1"
SEEDS = tuple(range(1, 1 + (int(os.environ.get("RESTOCK_FAULT_SEEDS", "3")) if _SOAK else 1)))


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster(tmp_path / "cluster", masters=3, replicas=1, die_with_parent=True)
    try:
        cluster.up(timeout_s=30)
        cluster.wait_replicas_synced(30)
        yield cluster
    finally:
        cluster.down()


def _done(url: str, prefix: str, sc: Scenario) -> bool:
    store = RedisStateStore.from_url(url, prefix)
    try:
        have = store.read_progress(range(4))
    except Exception:  # noqa: BLE001 - the cluster may still be failing over
        return False
    finally:
        store.client.close()
    return all(have.get(tp, -1) >= target - 1 for tp, target in sc.targets.items())


@pytest.mark.timeout(int(scaled(360)))
@pytest.mark.parametrize("seed", SEEDS)
def test_a_master_killed_mid_stream_fails_over_and_nothing_is_lost(
        kafka_bootstrap: str, fault_scenario: Scenario, replicated_cluster: LocalRedisCluster,
        seed: int) -> None:
    started = time.monotonic()
    sc, rng, cluster = fault_scenario, random.Random(f"failover-{seed}"), replicated_cluster
    url, tag = cluster.url, f"failover-{seed}"
    s = settings_for(kafka_bootstrap, url, sc.topics, tag, sc.tmp, fault_batch_delay_s=0.05)
    total = sum(sc.targets.values())
    kill_at, lag_replica = rng.uniform(0.2, 0.7), seed % 2 == 1
    workers = [WorkerProcess(s, sc.tmp / f"{tag}.log").start()]
    try:
        wait_for(lambda: progress_total(url, s.redis_key_prefix) >= kill_at * total, scaled(120),
                 "progress before the kill")
        victim = rng.choice(sorted(cluster.master_ports()))
        replica = cluster.replica_of(victim)[0]
        if lag_replica:  # the replica misses the master's last writes
            cluster.kill(replica, signal.SIGSTOP)
            time.sleep(rng.uniform(0.2, 0.8))
        cluster.kill(victim, signal.SIGKILL)
        if lag_replica:
            cluster.kill(replica, signal.SIGCONT)
        wait_for(lambda: replica in cluster.master_ports(), scaled(60), "the replica's promotion")
        cluster.wait_ok(scaled(60))
        # a worker that finds Redis behind its durable writes stops; a supervisor restarts it
        deadline = time.monotonic() + scaled(240)
        while not _done(url, s.redis_key_prefix, sc):
            w = workers[-1]
            assert w.proc is not None
            code = w.proc.poll()
            if code is not None:
                assert code == REDIS_REGRESSION_EXIT_CODE, f"worker exited with {code}:\n{w.log_tail()}"
                workers.append(WorkerProcess(s, sc.tmp / f"{tag}-{len(workers)}.log").start())
            assert time.monotonic() < deadline, "the run did not reach the end of the input"
            time.sleep(0.2)
        workers[-1].wait_ready()
        wait_caught_up(s, sc.targets, timeout_s=scaled(60))
    finally:
        for w in workers:
            w.stop(sig=signal.SIGKILL)
    check_against_reference(kafka_bootstrap, url, s, sc, "redis cluster failover (kill -9 a master)", seed,
                            started)
