"""Crashes at random and at exact points lose nothing and count nothing twice (issue #9, 1-2).

Each run consumes the reference scenario (:mod:`tests.integration.reliability`) and must end
with the reference's state, byte for byte, and the same set of distinct decision ids and
payloads (decisions re-emitted after a restart carry the same ids, which consumers dedupe):

* ``kill -9`` of the worker at a seeded random moment, then a restart;
* an abrupt exit right after a batch's decisions were produced and before its state was
  written (``after_produce``), and right after the state was written and before the batch was
  acked/committed (``after_save``), at a seeded random batch. restock never commits an offset
  before the state is durable, so "commit before write" cannot happen by construction.

``RESTOCK_FAULT_SEEDS`` seeds each: 3 in ``make test``, 20 in ``make soak``.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from agents.state import pool_key
from streams.redis_state import RedisStateStore
from streams.workerproc import WorkerProcess, wait_caught_up

from .reliability import (
    PARTITIONS,
    SEEDS,
    Scenario,
    check_against_reference,
    progress_total,
    scaled,
    settings_for,
    wait_for,
)


@pytest.mark.timeout(int(scaled(240)))
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("point", ["after_produce", "after_save"])
def test_exit_between_output_state_and_commit(kafka_bootstrap: str, redis_url: str,
                                              fault_scenario: Scenario, point: str, seed: int) -> None:
    started = time.monotonic()
    sc = fault_scenario
    rng = random.Random(f"{point}-{seed}")
    batch = rng.randint(2, max(2, sc.events // 100 - 2))
    tag = f"{point}-{seed}".replace("_", "")
    s = settings_for(kafka_bootstrap, redis_url, sc.topics, tag, sc.tmp, fault_point=point,
                     fault_after_batches=batch)
    w = WorkerProcess(s, sc.tmp / f"{tag}.log").start()
    assert w.proc is not None
    code = w.proc.wait(timeout=scaled(120))
    assert code == 86, f"the fault at batch {batch} did not fire:\n{w.log_tail()}"
    healthy = s.model_copy(update={"fault_point": None})
    with WorkerProcess(healthy, sc.tmp / f"{tag}-restart.log") as w2:
        w2.wait_ready()
        wait_caught_up(s, sc.targets, timeout_s=scaled(120))
    check_against_reference(kafka_bootstrap, redis_url, s, sc, f"exit {point}", seed, started)


@pytest.mark.timeout(int(scaled(240)))
@pytest.mark.parametrize("seed", SEEDS)
def test_kill_minus_9_at_a_random_moment(kafka_bootstrap: str, redis_url: str, fault_scenario: Scenario,
                                         seed: int) -> None:
    started = time.monotonic()
    sc = fault_scenario
    rng = random.Random(f"kill-{seed}")
    tag = f"kill-{seed}"
    total = sum(sc.targets.values())  # records of the scenario: the progress of a finished run
    # Spread the run over about 4 s (a sleep after each batch; the results do not depend on
    # timing) so that the kill lands mid-stream, which is asserted below.
    delay_s = 4.0 / max(1, total // 100)
    s = settings_for(kafka_bootstrap, redis_url, sc.topics, tag, sc.tmp, fault_batch_delay_s=delay_s)
    w = WorkerProcess(s, sc.tmp / f"{tag}.log").start()
    w.wait_ready()
    wait_for(lambda: progress_total(redis_url, s.redis_key_prefix) > 0, scaled(60), "a first durable batch")
    time.sleep(rng.uniform(0.0, 1.5))
    w.stop(sig=signal.SIGKILL)
    done = progress_total(redis_url, s.redis_key_prefix)
    assert 0 < done < total, f"the kill did not land mid-stream: {done} of {total} records durable"
    healthy = s.model_copy(update={"fault_batch_delay_s": 0.0})
    with WorkerProcess(healthy, sc.tmp / f"{tag}-restart.log") as w2:
        w2.wait_ready()
        wait_caught_up(s, sc.targets, timeout_s=scaled(120))
    check_against_reference(kafka_bootstrap, redis_url, s, sc, "worker kill -9", seed, started)


def reviews_in_progress(redis_url: str, prefix: str) -> int:
    """Partitions whose pseudo-state records a period review still in progress (issue #19)."""
    store = RedisStateStore.from_url(redis_url, prefix)
    try:
        keys = [pool_key(p) for p in range(PARTITIONS)]
        return sum(st.review is not None for st in store.load_many(keys).values())
    finally:
        store.client.close()


@pytest.mark.timeout(int(scaled(240)))
def test_kill_minus_9_during_a_period_review(kafka_bootstrap: str, redis_url: str,
                                             fault_scenario: Scenario) -> None:
    """The period review of a partition runs in chunks of one SKU between batches, and the hot cache
    holds 3 SKUs (the review loads, saves and evicts cold ones): kill -9 while a review is recorded
    in progress in Redis, restart, and end byte-identical to the reference (whose reviews ran
    whole, inside the batch that crossed each day), with the same decision ids."""
    started = time.monotonic()
    sc = fault_scenario
    tag = "kill-review"
    s = settings_for(kafka_bootstrap, redis_url, sc.topics, tag, sc.tmp, review_chunk_skus=1,
                     hot_sku_cache_size=3, flush_every_events=20,
                     fault_batch_delay_s=4.0 / max(1, sum(sc.targets.values()) // 20))
    total = sum(sc.targets.values())
    w = WorkerProcess(s, sc.tmp / f"{tag}.log").start()
    w.wait_ready()
    # past the first weeks (the SKUs decide by then), while a review is recorded in progress
    wait_for(lambda: (progress_total(redis_url, s.redis_key_prefix) > 0.4 * total
                      and reviews_in_progress(redis_url, s.redis_key_prefix) > 0), scaled(60),
             "a period review recorded in progress", interval_s=0.01)
    w.stop(sig=signal.SIGKILL)
    assert progress_total(redis_url, s.redis_key_prefix) < total, "the kill landed mid-stream"
    healthy = s.model_copy(update={"fault_batch_delay_s": 0.0})
    with WorkerProcess(healthy, sc.tmp / f"{tag}-restart.log") as w2:
        w2.wait_ready()
        wait_caught_up(s, sc.targets, timeout_s=scaled(120))
        wait_for(lambda: reviews_in_progress(redis_url, s.redis_key_prefix) == 0, scaled(60),
                 "the reviews to finish")
    check_against_reference(kafka_bootstrap, redis_url, s, sc, "worker kill -9 during a review", 1, started)
