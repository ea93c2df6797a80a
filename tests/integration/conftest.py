"""Fixtures of the integration tests: the reliability reference scenario (issue #9)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.ports import free_port
from streams.stack import REDIS, LocalStack
from streams.workerproc import WorkerProcess, wait_caught_up

from .reliability import Scenario, decisions_of, publish_scenario, scaled, settings_for, state_parts


@pytest.fixture(scope="session")
def fault_scenario(kafka_bootstrap: str, redis_url: str, tmp_path_factory: Any) -> Scenario:
    """The published input and the outcome of one uninterrupted worker over it."""
    tmp = tmp_path_factory.mktemp("rel")
    topics, targets, events = publish_scenario(kafka_bootstrap, tmp)
    ref = settings_for(kafka_bootstrap, redis_url, topics, "reference", tmp)
    with WorkerProcess(ref, tmp / "reference.log") as w:
        w.wait_ready()
        wait_caught_up(ref, targets, timeout_s=scaled(180))
    state = state_parts(redis_url, ref.redis_key_prefix)
    decisions = decisions_of(kafka_bootstrap, ref.reorders_topic)
    assert len(state) >= 35 and len(decisions) >= 20, "the slice produces states and decisions"
    assert any(t == topics["inventory"] for t, _ in targets), "the scenario has inventory events"
    log = (tmp / "reference.log").read_text()
    assert "released by processing time" not in log, "the reference was aligned by event time only"
    return Scenario(topics, targets, state, decisions, tmp, events)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalStack]:
    """A redis-server of this test's own (restartable; loads ``dump.rdb`` from its dir on start)."""
    stack = LocalStack(tmp_path / "redis", kafka_port=free_port(), redis_port=free_port(),
                       die_with_parent=True)
    stack.up(which=[REDIS])
    try:
        yield stack
    finally:
        stack.down(which=[REDIS])
