"""Liveness and readiness of a worker: what ``/health/live`` and ``/health/ready`` answer.

Ready means: partitions are assigned (:attr:`streams.committer.BatchCommitter.assigned`), the
last store and broker calls succeeded (:attr:`streams.committer.BatchCommitter.ready`), and both
the broker and Redis answer a wire-level probe right now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis


@dataclass
class DependencyProbe:
    """Probe the worker's broker(s) and Redis, each within about a second.

    Parameters
    ----------
    kafka : callable
        ``kafka() -> (ok, detail)``: a :class:`streams.clients.KafkaProbe` (same security
        configuration as every other client).
    redis_client : redis.Redis
        A client with a short timeout (``PING``), from :func:`streams.clients.redis_client_for`.
    """

    kafka: Callable[[], tuple[bool, str]]
    redis_client: redis.Redis

    def __call__(self) -> dict[str, str | bool]:
        """``{"kafka": bool, "redis": bool, "detail": str}`` (blocking: run it in an executor)."""
        kafka_ok, detail = self.kafka()
        try:
            redis_ok = bool(self.redis_client.ping())
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:  # cluster unreachable
            redis_ok = False
            detail = f"{detail}; redis: {exc}"
        return {"kafka": kafka_ok, "redis": redis_ok, "detail": detail}


def readiness(assigned: bool, last_call_ok: bool,
              deps: dict[str, str | bool]) -> tuple[dict[str, object], int]:
    """The ``/health/ready`` body and HTTP status.

    200 when partitions are assigned, the last broker/store call succeeded and both dependencies
    answer now; ``partitions_assigned`` and ``last_call_ok`` are reported separately (a failing
    Redis write clears only the second).

    Examples
    --------
    >>> body, status = readiness(True, True, {"kafka": True, "redis": False, "detail": "redis: down"})
    >>> body["ready"], body["partitions_assigned"], status
    (False, True, 503)
    >>> readiness(True, False, {"kafka": True, "redis": True, "detail": ""})[0]["partitions_assigned"]
    True
    """
    ok = assigned and last_call_ok and bool(deps["kafka"]) and bool(deps["redis"])
    body = {"ready": ok, "partitions_assigned": assigned, "last_call_ok": last_call_ok, **deps}
    return body, 200 if ok else 503
