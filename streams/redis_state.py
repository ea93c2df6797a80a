"""Redis implementation of :class:`agents.state.StateStore`: offset-fenced, pipelined, cluster-safe.

Layout: one hash per SKU@location, ``{prefix}:{<sku@location>}:state`` (the ``{...}`` hash tag
keeps every key of a SKU in one Redis Cluster slot), with fields

``seq``         monotone write sequence (sum of fenced offsets + 1), see below
``core``        versioned msgpack: fence, demand accumulator, inventory position, open decisions
``model``       the forecaster's compact bytes (:func:`agents.forecasting.encode`)
``model_name``  the candidate currently serving forecasts (for humans)
``updated_at``  event time of the last applied event (epoch seconds)

A set per input partition, ``{prefix}:partition:<p>:skus``, indexes the SKUs its owner wrote,
so that a worker that is assigned the partition can load them all and keep closing their
periods on the partition watermark (SKUs that fall silent still learn their zeros).

A write is one Lua script per SKU, atomic in Redis: it stores state and fence together and
**refuses a write whose sequence is lower than the stored one** (a zombie worker that lost its
partitions cannot overwrite newer state). A whole flush is one pipelined round trip
(``EVALSHA`` x n), never one round trip per event.

Cold SKUs expire after ``ttl_s`` without a write (0 disables it) and are rehydrated as new.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from agents.state import SkuState

_PUT_LUA = """
local cur = redis.call('HGET', KEYS[1], 'seq')
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'core', ARGV[2], 'model', ARGV[3],
           'model_name', ARGV[4], 'updated_at', ARGV[5])
if tonumber(ARGV[6]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[6]) end
return 1
"""


class RedisStateStore:
    """SKU states in Redis (see module docstring for the key layout and fencing).

    Parameters
    ----------
    client : redis.Redis
        A connected client (``decode_responses=False``).
    prefix : str
        Key prefix, e.g. ``"restock"``.
    ttl_s : int
        Expiry of a SKU's hash after its last write, seconds (0: never).

    Raises
    ------
    redis.RedisError
        Propagated from the client (the worker backs off and stops committing offsets).
    """

    def __init__(self, client: redis.Redis, prefix: str = "restock", ttl_s: int = 0) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_s = int(ttl_s)
        self._put = client.register_script(_PUT_LUA)
        self.last_write_s = 0.0
        self.writes = 0
        self.stale_writes = 0

    @classmethod
    def from_url(cls, url: str, prefix: str = "restock", ttl_s: int = 0) -> RedisStateStore:
        """Connect to ``url`` (``redis://host:port/db``)."""
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5), prefix, ttl_s)

    def redis_key(self, key: str) -> str:
        """Redis key of a SKU key (hash-tagged)."""
        return f"{self.prefix}:{{{key}}}:state"

    def load_many(self, keys: list[str]) -> dict[str, SkuState]:
        """States of ``keys`` that exist, in one pipelined round trip."""
        if not keys:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.hmget(self.redis_key(k), "core", "model")
        out: dict[str, SkuState] = {}
        for k, (core, model) in zip(keys, pipe.execute(), strict=True):
            if core is not None and model is not None:
                out[k] = SkuState.decode_parts(core, model)
        return out

    def partition_key(self, partition: int) -> str:
        """Redis set of the SKU keys owned by input partition ``partition``."""
        return f"{self.prefix}:partition:{partition}:skus"

    def keys_of_partition(self, partition: int) -> list[str]:
        """SKU keys in the partition index (read once per partition assignment)."""
        return sorted(k.decode() if isinstance(k, bytes) else k
                      for k in self.client.smembers(self.partition_key(partition)))

    def save_many(self, states: Iterable[SkuState], partition_of: dict[str, int] | None = None) -> int:
        """Write states, one atomic fenced script per SKU, all in one round trip.

        Returns
        -------
        int
            States written; the rest were older than what Redis holds (counted in
            ``stale_writes``).
        """
        batch = list(states)
        if not batch:
            return 0
        pipe = self.client.pipeline(transaction=False)
        by_partition: dict[int, list[str]] = {}
        for key, p in (partition_of or {}).items():
            by_partition.setdefault(p, []).append(key)
        for p, keys in by_partition.items():
            pipe.sadd(self.partition_key(p), *keys)
        for s in batch:
            self._put(
                keys=[self.redis_key(s.key)],
                args=[s.sequence, s.encode_core(), s.encode_model(), s.model.served_model,
                      s.updated_at, self.ttl_s],
                client=pipe,
            )
        t0 = time.perf_counter()
        results = pipe.execute()[len(by_partition):]
        self.last_write_s = time.perf_counter() - t0
        written = sum(int(r) for r in results)
        self.writes += written
        self.stale_writes += len(batch) - written
        return written

    def keys(self) -> list[str]:
        """Every stored SKU key (SCAN; for tools and tests, not the hot path)."""
        pat = f"{self.prefix}:{{*}}:state"
        out = []
        for raw in self.client.scan_iter(match=pat, count=1000):
            k = raw.decode() if isinstance(raw, bytes) else raw
            out.append(k[len(self.prefix) + 2 : -len("}:state")])
        return sorted(out)

    def dump(self) -> dict[str, bytes]:
        """Canonical dump ``sku key -> core + model bytes`` (tests compare runs with it)."""
        keys = self.keys()
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.hmget(self.redis_key(k), "core", "model")
        return {k: (c or b"") + b"|" + (m or b"") for k, (c, m) in zip(keys, pipe.execute(), strict=True)}

    def memory_usage(self, key: str) -> int | None:
        """``MEMORY USAGE`` of a SKU's hash in bytes."""
        v = self.client.memory_usage(self.redis_key(key))
        return None if v is None else int(v)
