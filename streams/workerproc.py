"""Run a restock worker in its own process and wait for it: used by the demo and the tests.

The worker is started exactly as in production (``python -m streams.cli worker``) with its
settings passed as ``RESTOCK_*`` environment variables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from streams.ports import free_port
from streams.settings import Settings

__all__ = ["WorkerProcess", "committed_offsets", "free_port", "settings_env", "wait_committed"]


def settings_env(settings: Settings) -> dict[str, str]:
    """``RESTOCK_*`` environment variables that reproduce ``settings`` in another process.

    Secrets (``SecretStr`` fields: the Redis URL, the Kafka SASL password) are passed in clear:
    the child process needs them, and its environment is not printed.
    """
    env: dict[str, str] = {}
    for k, v in settings.model_dump().items():
        if v is None:
            continue
        env[f"RESTOCK_{k.upper()}"] = v.get_secret_value() if isinstance(v, SecretStr) else str(v)
    return env


class WorkerProcess:
    """A ``restock worker`` subprocess.

    Parameters
    ----------
    settings : Settings
        The worker's settings (topics, group id = ``app_id``, Redis prefix, ports).
    log_path : Path
        Where the worker's stdout/stderr go.
    """

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        """Start the process (returns immediately; see :meth:`wait_ready`)."""
        env = dict(os.environ)
        for k in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
            env.pop(k, None)
        env.update(settings_env(self.settings))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker",
             "--loglevel", os.environ.get("RESTOCK_WORKER_LOGLEVEL", "warn")],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        """Process id (raises when not started)."""
        assert self.proc is not None, "worker not started"
        return self.proc.pid

    def ready(self) -> bool:
        """True when ``/health/ready`` answers 200."""
        url = f"http://127.0.0.1:{self.settings.web_port}/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until the worker is ready.

        Raises
        ------
        RuntimeError
            When the process exits first (with the tail of its log).
        TimeoutError
            When it is not ready in time.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"restock worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"restock worker not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        """Last ``n`` lines of the worker's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int | None:
        """Send ``sig`` (SIGTERM: graceful; SIGKILL: crash) and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets ``(topic, partition) -> offset`` (kafka-python admin)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return _group_offsets(admin, group)
    finally:
        admin.close()


def _group_offsets(admin: Any, group: str) -> dict[tuple[str, int], int]:
    got = admin.list_group_offsets(group).get(group, {})
    return {(tp.topic, tp.partition): om.offset for tp, om in got.items()}


def wait_caught_up(settings: Settings, targets: dict[tuple[str, int], int], timeout_s: float = 60.0) -> None:
    """Block until the worker group of ``settings`` has processed ``targets`` and finished its reviews.

    :func:`wait_committed`, then until no input partition's pseudo-state in Redis records a
    period review in progress: a review runs in review-only batches after the batch that
    started it (:meth:`streams.committer.BatchCommitter.tick`), so the states are final only
    then.

    Raises
    ------
    TimeoutError
        When either does not happen within ``timeout_s`` seconds in all.
    """
    from agents.state import review_in_progress
    from streams.clients import redis_client_for
    from streams.redis_state import RedisStateStore

    deadline = time.monotonic() + timeout_s
    wait_committed(settings.kafka_bootstrap_servers, settings.app_id, targets, timeout_s)
    client = redis_client_for(settings)
    try:
        store = RedisStateStore(client, settings.redis_key_prefix)
        while review_in_progress(store, settings.topic_partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {settings.app_id}: a period review still in progress after "
                                   f"{timeout_s:.0f} s")
            time.sleep(0.02)
    finally:
        client.close()


def wait_committed(bootstrap: str, group: str, targets: dict[tuple[str, int], int],
                   timeout_s: float = 60.0, admin: Any = None) -> None:
    """Block until ``group`` has committed at least ``targets`` (``(topic, p) -> next offset``).

    This is "consumer lag 0" measured against offsets we produced ourselves, which stays exact
    on brokers whose reported log-end offset lags (Tansu reports the last batch's base offset).

    Raises
    ------
    TimeoutError
        Naming the partitions still behind.
    """
    from kafka import KafkaAdminClient

    own = admin is None
    admin = admin or KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            have = _group_offsets(admin, group)
            behind = {k: (have.get(k), v) for k, v in targets.items() if have.get(k, -1) < v}
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {group} still behind after {timeout_s:.0f}s: {behind}")
            time.sleep(0.02)
    finally:
        if own:
            admin.close()
