"""Redis losing its tail, rebalances, and broker / Redis outages lose nothing (issue #9, 3-6).

Every run consumes the reference scenario (:mod:`tests.integration.reliability`) and is compared
with the uninterrupted reference: state byte for byte, decisions by id and payload. Runs that
restart or freeze Redis use a Redis of their own (an embedded redis-server on a free port).
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
import redis

from streams.app import REDIS_REGRESSION_EXIT_CODE
from streams.ports import free_port
from streams.redis_state import RedisStateStore
from streams.stack import REDIS, LocalStack
from streams.workerproc import WorkerProcess, committed_offsets, wait_caught_up

from .reliability import (
    OUTAGE_S,
    OUTAGE_SEEDS,
    REBALANCE_CASES,
    SEEDS,
    Scenario,
    check_against_reference,
    progress_total,
    scaled,
    settings_for,
    wait_for,
)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _progress_reached(redis_url: str, s, sc: Scenario) -> bool:
    """True when Redis holds durable progress for every input record of the scenario."""
    store = RedisStateStore.from_url(redis_url, s.redis_key_prefix)
    have = store.read_progress(range(4))
    return all(have.get(tp, -1) >= target - 1 for tp, target in sc.targets.items())


@pytest.mark.timeout(int(scaled(300)))
@pytest.mark.parametrize("seed", SEEDS)
def test_redis_restored_from_an_older_snapshot_is_rebuilt_from_kafka(
        kafka_bootstrap: str, redis_url: str, fault_scenario: Scenario, own_redis: LocalStack,
        seed: int) -> None:
    """Redis comes back from an older RDB snapshot while the worker runs: the worker notices that
    Redis is behind its own durable writes, exits without committing, and the restarted worker
    seeks back to Redis' progress and replays the lost updates."""
    started = time.monotonic()
    sc, rng = fault_scenario, random.Random(f"restore-{seed}")
    url = own_redis.redis_url
    tag = f"restore-{seed}"
    s = settings_for(kafka_bootstrap, url, sc.topics, tag, sc.tmp, fault_batch_delay_s=0.02)
    total = sum(sc.targets.values())
    snap_at, restore_at = rng.uniform(0.15, 0.5), rng.uniform(0.6, 1.0)
    w = WorkerProcess(s, sc.tmp / f"{tag}.log").start()
    try:
        wait_for(lambda: progress_total(url, s.redis_key_prefix) >= snap_at * total, scaled(120),
                 "progress before the snapshot")
        client = redis.Redis.from_url(url)
        client.save()  # the snapshot the restore goes back to
        client.close()
        wait_for(lambda: progress_total(url, s.redis_key_prefix) >= restore_at * total, scaled(120),
                 "progress after it")
        own_redis.kill(REDIS, signal.SIGKILL)
        own_redis.up(which=[REDIS])  # loads dump.rdb: everything after the snapshot is lost
        assert w.proc is not None
        code = w.proc.wait(timeout=scaled(60))
        assert code == REDIS_REGRESSION_EXIT_CODE, f"worker did not stop on the regression:\n{w.log_tail()}"
        assert "Redis is behind this worker's last durable write" in w.log_path.read_text()
    finally:
        w.stop(sig=signal.SIGKILL)
    with WorkerProcess(s, sc.tmp / f"{tag}-restart.log") as w2:
        w2.wait_ready()
        wait_for(lambda: _progress_reached(url, s, sc), scaled(120),
                 "the replay to reach the end of the input")
        wait_caught_up(s, sc.targets, timeout_s=scaled(60))
    check_against_reference(kafka_bootstrap, url, s, sc, "redis restore (older snapshot)", seed, started)


@pytest.mark.timeout(int(scaled(300)))
@pytest.mark.parametrize(("leave", "seed"), REBALANCE_CASES)
def test_a_worker_joins_then_one_leaves_mid_stream(kafka_bootstrap: str, redis_url: str,
                                                  fault_scenario: Scenario, leave: str, seed: int) -> None:
    """A second worker joins mid-stream (partitions split), later one leaves (SIGTERM or kill -9)."""
    started = time.monotonic()
    sc, rng = fault_scenario, random.Random(f"rebalance-{leave}-{seed}")
    tag = f"rebal-{leave.replace('-', '')}-{seed}"
    s = settings_for(kafka_bootstrap, redis_url, sc.topics, tag, sc.tmp, fault_batch_delay_s=0.1)
    s2 = s.model_copy(update={"web_port": free_port(), "metrics_port": free_port()})
    total = sum(sc.targets.values())
    w1 = WorkerProcess(s, sc.tmp / f"{tag}-w1.log").start()
    w2 = WorkerProcess(s2, sc.tmp / f"{tag}-w2.log")
    try:
        w1.wait_ready()
        wait_for(lambda: progress_total(redis_url, s.redis_key_prefix) >= rng.uniform(0.05, 0.3) * total,
                 scaled(120), "progress before the join")
        w2.start().wait_ready()
        leaver = w2 if rng.random() < 0.5 else w1
        wait_for(lambda: progress_total(redis_url, s.redis_key_prefix) >= rng.uniform(0.5, 0.8) * total,
                 scaled(120), "progress before the leave")
        leaver.stop(sig=signal.SIGTERM if leave == "sigterm" else signal.SIGKILL)
        wait_caught_up(s, sc.targets, timeout_s=scaled(180))
    finally:
        w1.stop()
        w2.stop()
    check_against_reference(kafka_bootstrap, redis_url, s, sc, f"rebalance: join, then leave by {leave}",
                            seed, started)


def _assert_outage_handled(w: WorkerProcess, outage_s: float, what: str) -> float:
    """During an outage: not ready, alive, not spinning. Returns the CPU seconds it used."""
    cpu0 = _cpu_seconds(w.pid)
    t0 = time.monotonic()
    wait_for(lambda: not w.ready(), 15, f"/health/ready to report not-ready while {what}", interval_s=0.2)
    while time.monotonic() - t0 < outage_s:
        assert w.proc is not None and w.proc.poll() is None, f"worker died while {what}:\n{w.log_tail()}"
        time.sleep(0.2)
    cpu = _cpu_seconds(w.pid) - cpu0
    assert cpu < 0.5 * outage_s, f"worker used {cpu:.1f} s of CPU in {outage_s:.0f} s while {what}: it spins"
    return cpu


@pytest.mark.timeout(int(scaled(300)))
@pytest.mark.parametrize("seed", OUTAGE_SEEDS)
@pytest.mark.parametrize("dependency", ["broker", "redis"])
def test_dependency_unavailable_mid_stream(kafka_bootstrap: str, redis_url: str, fault_scenario: Scenario,
                                           local_stack: LocalStack, own_redis: LocalStack, dependency: str,
                                           seed: int) -> None:
    """The broker or Redis freezes (SIGSTOP) for ``RESTOCK_OUTAGE_S``: not ready, no crash, no spin,
    catches up; while Redis is frozen no offset is committed either."""
    started = time.monotonic()
    sc, rng = fault_scenario, random.Random(f"{dependency}-{seed}")
    if dependency == "broker":
        url, tag, what = redis_url, f"broker-{seed}", "the broker is frozen"
        freeze, thaw = local_stack.pause_kafka, local_stack.resume_kafka
    else:  # a Redis of the test's own: the session's is shared
        url, tag, what = own_redis.redis_url, f"redisdown-{seed}", "Redis is frozen"
        freeze = lambda: own_redis.kill(REDIS, signal.SIGSTOP, wait=False)  # noqa: E731
        thaw = lambda: own_redis.kill(REDIS, signal.SIGCONT, wait=False)  # noqa: E731
    s = settings_for(kafka_bootstrap, url, sc.topics, tag, sc.tmp, fault_batch_delay_s=0.05)
    total = sum(sc.targets.values())
    with WorkerProcess(s, sc.tmp / f"{tag}.log") as w:
        w.wait_ready()
        wait_for(lambda: progress_total(url, s.redis_key_prefix) >= rng.uniform(0.1, 0.6) * total,
                 scaled(120), "progress before the outage")
        freeze()
        try:
            if dependency == "broker":  # (committed offsets cannot be read from a frozen broker)
                _assert_outage_handled(w, OUTAGE_S, what)
            else:
                settle = min(2.0, OUTAGE_S / 3)
                time.sleep(settle)  # let a batch in flight finish or block
                before = committed_offsets(kafka_bootstrap, s.app_id)
                _assert_outage_handled(w, OUTAGE_S - settle, what)
                after = committed_offsets(kafka_bootstrap, s.app_id)
                assert after == before, "offsets were committed while Redis was unavailable"
        finally:
            thaw()
        wait_for(w.ready, 60, f"the worker to be ready again after the {dependency} came back",
                 interval_s=0.2)
        wait_caught_up(s, sc.targets, timeout_s=scaled(180))
    check_against_reference(kafka_bootstrap, url, s, sc, f"{dependency} unavailable", seed, started)
