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

from streams.workerproc import WorkerProcess, wait_committed

from .reliability import (
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
        wait_committed(kafka_bootstrap, s.app_id, sc.targets, timeout_s=scaled(120))
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
        wait_committed(kafka_bootstrap, s.app_id, sc.targets, timeout_s=scaled(120))
    check_against_reference(kafka_bootstrap, redis_url, s, sc, "worker kill -9", seed, started)
