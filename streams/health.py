"""Liveness and readiness of a worker: what ``/health/live`` and ``/health/ready`` answer.

Ready means: partitions are assigned (and the last store and broker calls succeeded, see
:attr:`streams.committer.BatchCommitter.ready`), and both the broker and Redis answer a
wire-level probe right now (:mod:`streams.probes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from streams.probes import probe_kafka


@dataclass
class DependencyProbe:
    """Probe the worker's broker(s) and Redis, each within about a second.

    Parameters
    ----------
    bootstrap_servers : str
        ``host:port[,host:port...]``; the first that answers counts.
    redis_url : str
        Redis URL (a client is kept and reused; ``PING`` with a 1 s timeout).
    """

    bootstrap_servers: str
    redis_url: str

    def __post_init__(self) -> None:
        self._client = redis.Redis.from_url(self.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def __call__(self) -> dict[str, str | bool]:
        """``{"kafka": bool, "redis": bool, "detail": str}`` (blocking: run it in an executor)."""
        kafka_ok, detail = False, "no bootstrap server answered"
        for server in self.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            kafka_ok, detail = probe_kafka(host or "127.0.0.1", int(port), timeout_s=1.0)
            if kafka_ok:
                break
        try:
            redis_ok = bool(self._client.ping())
        except redis.RedisError as exc:
            redis_ok = False
            detail = f"{detail}; redis: {exc}"
        return {"kafka": kafka_ok, "redis": redis_ok, "detail": detail}


def readiness(assigned: bool, deps: dict[str, str | bool]) -> tuple[dict[str, object], int]:
    """The ``/health/ready`` body and HTTP status: 200 when assigned and both dependencies answer.

    Examples
    --------
    >>> body, status = readiness(True, {"kafka": True, "redis": False, "detail": "redis: down"})
    >>> body["ready"], body["partitions_assigned"], status
    (False, True, 503)
    """
    ok = assigned and bool(deps["kafka"]) and bool(deps["redis"])
    return {"ready": ok, "partitions_assigned": assigned, **deps}, 200 if ok else 503
