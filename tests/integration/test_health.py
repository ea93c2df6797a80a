"""Readiness follows the broker and Redis: false while either is unreachable, true after."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from streams.workerproc import WorkerProcess

from .helpers import ready_status, worker_settings

TOPICS = {"orders": 2, "inventory": 2, "promotions": 2, "reorders": 2, "dlq": 2}


@pytest.mark.timeout(120)
def test_readiness_tracks_redis_and_broker(local_stack, new_topics, redis_client, tmp_path: Path) -> None:
    topics = new_topics(TOPICS)
    s = worker_settings(local_stack.kafka_bootstrap, local_stack.redis_url, topics, "health", tmp_path,
                        topic_partitions=2)
    with WorkerProcess(s, tmp_path / "health.log") as w:
        w.wait_ready()
        assert ready_status(s.web_port)[0] == 200
        local_stack.kill("redis", signal.SIGSTOP)  # returns once every thread is stopped
        try:
            status, body = ready_status(s.web_port)
            assert status == 503 and body["redis"] is False
        finally:
            local_stack.kill("redis", signal.SIGCONT)
        local_stack.pause_kafka()
        try:
            status, body = ready_status(s.web_port)
            assert status == 503 and body["kafka"] is False
        finally:
            local_stack.resume_kafka()
        deadline = time.monotonic() + 30
        while ready_status(s.web_port)[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ready_status(s.web_port)[0] == 200
        assert w.proc is not None and w.proc.poll() is None
