"""The fault tests once more, with the worker's Redis on a local Redis Cluster (issue #21).

Same scenario, same reference (the session's ``fault_scenario``: the reference state is the
same bytes on any Redis), same checks as ``test_faults.py`` and ``test_reliability.py``; only the
worker's ``REDIS_URL`` is the session's cluster (3 masters). One run each, with a seed of their
own (101: its consumer group, key prefix and output topic differ from the single-node runs):
worker ``kill -9`` at a random moment, an exit right after a batch's state was written and
before its offsets were committed, and a second worker joining then one leaving mid-stream.
Reusing the session's reference instead of a second pytest session keeps the cluster pass of
``make test`` cheap; ``make test-cluster`` runs every integration test on a cluster.
"""

from __future__ import annotations

import pytest

from streams.redis_cluster import LocalRedisCluster

from . import test_faults, test_reliability
from .reliability import Scenario, scaled

SEED = 101


@pytest.mark.timeout(int(scaled(240)))
def test_kill_minus_9_with_the_state_on_a_cluster(kafka_bootstrap: str, redis_cluster: LocalRedisCluster,
                                                  fault_scenario: Scenario) -> None:
    test_faults.test_kill_minus_9_at_a_random_moment(kafka_bootstrap, redis_cluster.url, fault_scenario, SEED)


@pytest.mark.timeout(int(scaled(240)))
def test_exit_after_the_state_write_with_the_state_on_a_cluster(
        kafka_bootstrap: str, redis_cluster: LocalRedisCluster, fault_scenario: Scenario) -> None:
    test_faults.test_exit_between_output_state_and_commit(kafka_bootstrap, redis_cluster.url, fault_scenario,
                                                          "after_save", SEED)


@pytest.mark.timeout(int(scaled(300)))
def test_a_worker_joins_then_one_leaves_with_the_state_on_a_cluster(
        kafka_bootstrap: str, redis_cluster: LocalRedisCluster, fault_scenario: Scenario) -> None:
    test_reliability.test_a_worker_joins_then_one_leaves_mid_stream(kafka_bootstrap, redis_cluster.url,
                                                                    fault_scenario, "kill-9", SEED)
