"""Redis implementation of :class:`agents.state.StateStore`: offset-fenced, pipelined, single node or cluster.

Layout: one string key per SKU@location, ``{prefix}:{<sku@location>}:state`` (the ``{...}``
hash tag keeps every key of a SKU in one Redis Cluster slot), whose value (format 1) is

* bytes 0-19: ``seq``, the monotone write sequence (sum of fenced offsets + 1, see below),
  ASCII decimal, zero-padded to 20 digits: the fencing script reads it with ``GETRANGE``
  without loading the rest;
* then one msgpack array ``[1, core, model, model_name, updated_at]``: the format number,
  ``core`` (versioned msgpack: fence, demand accumulator, inventory position, open decisions),
  ``model`` (the forecaster's compact bytes, :func:`agents.forecasting.encode`), the candidate
  currently serving forecasts (for humans) and the event time of the last applied event
  (epoch seconds).

One value instead of a hash of five fields: a hash whose values exceed Redis'
``hash-max-listpack-value`` (64 bytes; ``core`` and ``model`` do) is stored as a real hash
table, ~470 bytes more per SKU than the same bytes in one string (measured with ``MEMORY
USAGE``; ``bench/cost_per_sku.py``). States written by earlier versions as a hash with the
fields ``seq``, ``core``, ``model``, ``model_name``, ``updated_at`` are still read, and are
replaced by the string layout on their next write.

A set per input partition, ``{prefix}:{{prefix}:p<p>}:skus``, indexes the SKUs its owner
wrote, so that a worker that is assigned the partition can load them all and keep closing their
periods on the partition watermark (SKUs that fall silent still learn their zeros). The
covariate pool of a partition is a pseudo-SKU (``@pool@<p>``, :func:`agents.state.pool_key`)
stored like a SKU: one key, one slot, one fenced script.

A hash per input partition, ``{prefix}:{{prefix}:p<p>}:progress``, maps each input topic to the
highest offset of that ``topic[p]`` whose batch is durable here (its states written, its
decisions already on Kafka). It is the **recovery point** after Redis loses writes (a crash
with ``appendfsync everysec``, a failover to a lagging replica, a restore from an older
snapshot): a worker assigned the partition seeks to ``progress + 1`` when the group's committed
offset is further ahead, and replays; the per-SKU fences skip what Redis still has. A worker
also notices when Redis falls *behind its own last write* (every batch write first checks the
stored progress, see :meth:`RedisStateStore.save_many`) and stops (:class:`StateRegressionError`).

The index and progress keys of a partition share the hash tag ``{<prefix>:p<p>}``: one slot per
partition on a Redis Cluster. (Earlier versions named them ``{prefix}:partition:<p>:skus``
and ``...:progress``, untagged. They are not migrated: the migration is a rebuild from Kafka,
the existing "Redis behind Kafka" path. An upgraded worker finds no progress under the new
names and replays each partition from its earliest retained offset; the per-SKU fences skip
every event a state already holds, the progress is written anew, and the SKU index refills
as SKUs are written. For an index that lists silent SKUs at once, rebuild into a new key prefix.)

A write is one Lua script per SKU, atomic in Redis: it stores state and fence together and
**refuses a write whose sequence is lower than the stored one** (a zombie worker that lost its
partitions cannot overwrite newer state). Its only key is the SKU's (passed as ``KEYS[1]``), so
it runs in the SKU's slot. On a single Redis a whole flush is one round trip (``EVALSHA`` x n
plus the progress script), never one round trip per event, wrapped in ``MULTI``/``EXEC`` so
that a batch is durable as a whole or not at all: Redis appends a transaction to its AOF as one
unit and drops an incomplete one on load, so a tail loss loses whole batches and the progress
hash never runs ahead of the states it covers.

On a **Redis Cluster** (redis-py's ``RedisCluster`` client, :func:`streams.clients.redis_client`)
the keys of a batch span slots and nodes, and a cross-slot ``MULTI`` does not exist. A flush is
then three pipelined steps: (1) the check that Redis still holds this writer's progress (``HGET``
per partition, ``RedisCluster.pipeline()``); (2) per primary, one pipeline on one connection:
the index ``SADD`` s and SKU scripts of the keys it serves, then ``WAIT 1`` when it has a replica
(the primaries one after the other, from the client's slot map); (3) only when every reply of
step 2 is a success, the progress scripts, one per partition (in its slot,
``RedisCluster.pipeline()``), which re-check the expected progress atomically before advancing
it. So the progress never runs ahead of the states it covers, and no failover can lose a state
below it: replication is asynchronous, but a state is acknowledged by a replica before the
progress that covers it is written (``WAIT`` on the writing connection; Redis promotes the
replica with the highest replication offset). What a failover loses is the tail of the
progress; the worker notices (the progress check) and the replay from the stored progress
re-applies exactly what is missing, because every state carries its own offset fence
(``docs/reliability.md``). ``RedisCluster.pipeline()`` is not used for step 2 because ``WAIT``
only covers the writes of its own connection, which a cluster pipeline does not expose.

Cold SKUs expire after ``ttl_s`` without a write (0 disables it) and are rehydrated as new.
Cold SKUs expire after ``ttl_s`` without a write (0 disables it) and are rehydrated as new.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import msgpack
import redis

from agents.state import SkuState, StateRegressionError, TopicPartition, lagging_progress
from streams.clients import is_cluster_client, redis_client

__all__ = ["RedisStateStore", "ReplicaAckTimeout", "StateRegressionError", "decode_value", "encode_value"]

# KEYS[1]: the SKU's state key; ARGV: seq, value (starting with the padded seq), ttl_s.
# The stale-write rule is agents.state.is_stale_write (stored seq > new seq: refused), run here
# inside Redis so that check and write are atomic; the state-store contract suite checks both.
# A hash is a state of the earlier layout: its seq fences the write, then it is replaced.
_PUT_LUA = """
local cur
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  cur = redis.call('HGET', KEYS[1], 'seq')
  if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
  redis.call('DEL', KEYS[1])
else
  cur = redis.call('GETRANGE', KEYS[1], 0, 19)
  if cur ~= '' and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"""

VALUE_FORMAT = 1
_SEQ_DIGITS = 20


def encode_value(seq: int, core: bytes, model: bytes, model_name: str, updated_at: int) -> bytes:
    """Encode a SKU's state as its stored value (format 1, see the module docstring).

    Raises
    ------
    ValueError
        When ``seq`` is negative or has more than 20 digits.

    Examples
    --------
    >>> v = encode_value(42, b"core", b"model", "tsb", 1_300_000_000)
    >>> v[:20]
    b'00000000000000000042'
    >>> decode_value(v)
    (42, b'core', b'model', 'tsb', 1300000000)
    """
    if seq < 0 or seq >= 10**_SEQ_DIGITS:
        raise ValueError(f"seq must be in [0, 1e20), got {seq}")
    body = msgpack.packb([VALUE_FORMAT, core, model, model_name, int(updated_at)],
                         use_bin_type=True)
    return b"%020d" % seq + body


def decode_value(value: bytes) -> tuple[int, bytes, bytes, str, int]:
    """Decode a stored value into ``(seq, core, model, model_name, updated_at)``.

    Raises
    ------
    ValueError
        When the value is not of a known format.
    """
    try:
        seq = int(value[:_SEQ_DIGITS])
        fmt, core, model, name, updated_at = msgpack.unpackb(value[_SEQ_DIGITS:], raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ValueError(f"not a restock state value: {exc}") from exc
    if fmt != VALUE_FORMAT:
        raise ValueError(f"unknown state value format {fmt!r}")
    return seq, core, model, name, int(updated_at)


def _is_legacy(reply: object) -> bool:
    """True when a string command's reply says the key is a hash of the earlier layout.

    Raises
    ------
    redis.RedisError
        Any other error reply (re-raised).
    """
    if isinstance(reply, redis.ResponseError) and "WRONGTYPE" in str(reply):
        return True
    if isinstance(reply, Exception):
        raise reply
    return False


# KEYS[i]: the progress hash of a partition; ARGV[2i-1..2i]: topic, new offset (never lowered).
_PROGRESS_LUA = """
for i = 1, #KEYS do
  local c = redis.call('HGET', KEYS[i], ARGV[2 * i - 1])
  if (not c) or tonumber(ARGV[2 * i]) > tonumber(c) then
    redis.call('HSET', KEYS[i], ARGV[2 * i - 1], ARGV[2 * i])
  end
end
return 1
"""

# Cluster flavour, one partition per call (its slot). KEYS[1]: the partition's progress hash;
# ARGV: triples topic, new offset, expected offset (-2: no expectation). When a stored offset is
# below its expected one (a missing entry counts as -1), nothing is written and 0 is returned.
_PROGRESS_FENCED_LUA = """
for i = 1, #ARGV, 3 do
  local e = tonumber(ARGV[i + 2])
  if e > -2 then
    local c = redis.call('HGET', KEYS[1], ARGV[i])
    if (c and tonumber(c) or -1) < e then return 0 end
  end
end
for i = 1, #ARGV, 3 do
  local c = redis.call('HGET', KEYS[1], ARGV[i])
  if (not c) or tonumber(ARGV[i + 1]) > tonumber(c) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
"""

class ReplicaAckTimeout(redis.RedisError):
    """No replica acknowledged a batch's states in time (cluster with replicas; retried)."""


class RedisStateStore:
    """SKU states in Redis (see module docstring for the key layout and fencing).

    Parameters
    ----------
    client : redis.Redis or redis.cluster.RedisCluster
        A connected client (``decode_responses=False``); a ``RedisCluster`` switches the
        batch write to the per-node pipelined form (module docstring).
    prefix : str
        Key prefix, e.g. ``"restock"``.
    ttl_s : int
        Expiry of a SKU's hash after its last write, seconds (0: never).
    replica_ack_timeout_ms : int
        Cluster with replicas: how long a batch waits for a replica of each primary it wrote
        to acknowledge (``WAIT 1``), milliseconds; beyond it :class:`ReplicaAckTimeout`.

    Raises
    ------
    redis.RedisError
        Propagated from the client (the worker backs off and stops committing offsets).
    """

    name = "Redis"

    def __init__(self, client: redis.Redis, prefix: str = "restock", ttl_s: int = 0,
                 replica_ack_timeout_ms: int = 2000) -> None:
        self.client = client
        self.replica_ack_timeout_ms = int(replica_ack_timeout_ms)
        self.prefix = prefix
        self.ttl_s = int(ttl_s)
        self.cluster = is_cluster_client(client)
        self._put = client.register_script(_PUT_LUA)
        self._progress = client.register_script(_PROGRESS_LUA)
        self._progress_fenced = client.register_script(_PROGRESS_FENCED_LUA)
        self.last_write_s = 0.0
        self.writes = 0
        self.stale_writes = 0

    @classmethod
    def from_url(cls, url: str, prefix: str = "restock", ttl_s: int = 0) -> RedisStateStore:
        """Connect to ``url`` (``redis://host:port/db``, or ``redis+cluster://host:port,...``)."""
        return cls(redis_client(url, socket_timeout=10, socket_connect_timeout=5), prefix, ttl_s)

    def redis_key(self, key: str) -> str:
        """Redis key of a SKU key (hash-tagged)."""
        return f"{self.prefix}:{{{key}}}:state"

    def load_many(self, keys: list[str]) -> dict[str, SkuState]:
        """States of ``keys`` that exist, in one pipelined round trip.

        States of the earlier hash layout cost a second round trip (``HMGET``) for those keys.
        """
        if not keys:
            return {}
        parts = self.read_parts(keys)
        return {k: SkuState.decode_parts(core, model) for k, (core, model) in parts.items()}

    def read_parts(self, keys: list[str]) -> dict[str, tuple[bytes, bytes]]:
        """``key -> (core, model)`` of the stored states among ``keys`` (either layout)."""
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.get(self.redis_key(k))
        out: dict[str, tuple[bytes, bytes]] = {}
        legacy: list[str] = []
        for k, raw in zip(keys, pipe.execute(raise_on_error=False), strict=True):
            if _is_legacy(raw):
                legacy.append(k)
            elif raw is not None:
                _, core, model, _, _ = decode_value(raw)
                out[k] = (core, model)
        if legacy:
            pipe = self.client.pipeline(transaction=False)
            for k in legacy:
                pipe.hmget(self.redis_key(k), "core", "model")
            for k, (core, model) in zip(legacy, pipe.execute(), strict=True):
                if core is not None and model is not None:
                    out[k] = (core, model)
        return out

    def sequences(self, keys: list[str]) -> dict[str, int]:
        """Write sequence ``seq`` of the stored states among ``keys`` (one round trip).

        A state with sequence ``s`` holds every event of its fences; for a SKU fed by one
        topic-partition, it holds offset ``o`` once ``s >= o + 1``.
        """
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.getrange(self.redis_key(k), 0, _SEQ_DIGITS - 1)
        out: dict[str, int] = {}
        legacy: list[str] = []
        for k, raw in zip(keys, pipe.execute(raise_on_error=False), strict=True):
            if _is_legacy(raw):
                legacy.append(k)
            elif raw:
                out[k] = int(raw)
        for k in legacy:
            raw = self.client.hget(self.redis_key(k), "seq")
            if raw is not None:
                out[k] = int(raw)
        return out

    def partition_key(self, partition: int) -> str:
        """Redis set of the SKU keys owned by input partition ``partition`` (the partition's slot)."""
        return f"{self.prefix}:{{{self.prefix}:p{partition}}}:skus"

    def keys_of_partition(self, partition: int) -> list[str]:
        """SKU keys in the partition index (read once per partition assignment)."""
        return sorted(k.decode() if isinstance(k, bytes) else k
                      for k in self.client.smembers(self.partition_key(partition)))

    def progress_key(self, partition: int) -> str:
        """Redis hash ``topic -> highest durable offset`` of input partition ``partition`` (its slot)."""
        return f"{self.prefix}:{{{self.prefix}:p{partition}}}:progress"

    def read_progress(self, partitions: Iterable[int]) -> dict[TopicPartition, int]:
        """Durable progress ``(topic, partition) -> offset`` of ``partitions`` (one round trip).

        Partitions or topics without an entry are absent from the result.
        """
        parts = sorted(set(partitions))
        if not parts:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for p in parts:
            pipe.hgetall(self.progress_key(p))
        out: dict[TopicPartition, int] = {}
        for p, entries in zip(parts, pipe.execute(), strict=True):
            for topic, offset in entries.items():
                t = topic.decode() if isinstance(topic, bytes) else topic
                out[(t, p)] = int(offset)
        return out

    def behind(self, expected: dict[TopicPartition, int]) -> dict[TopicPartition, tuple[int, int]]:
        """Entries of ``expected`` whose stored progress is lower: ``tp -> (stored, expected)``."""
        return lagging_progress(self.read_progress({p for _, p in expected}), expected)

    def save_many(self, states: Iterable[SkuState], partition_of: dict[str, int] | None = None,
                  progress: dict[TopicPartition, int] | None = None,
                  expected: dict[TopicPartition, int] | None = None) -> int:
        """Write a batch: one atomic fenced script per SKU and the progress.

        Single Redis: one ``MULTI``/``EXEC`` transaction (with ``WATCH`` on the progress when
        ``expected`` is given). Redis Cluster: check, states, then progress, each pipelined per
        node (module docstring); the progress is written only after every state of the batch.

        Parameters
        ----------
        states : iterable of SkuState
            The batch's dirty states.
        partition_of : dict, optional
            SKU key -> input partition, for the partition index.
        progress : dict, optional
            ``(topic, partition) -> highest offset`` of the batch's records (applied, skipped
            or dead-lettered alike): advanced (never lowered) with the states.
        expected : dict, optional
            ``(topic, partition) -> offset`` this writer last made durable (or read on
            assignment). When Redis holds less, it lost writes: the progress is not advanced
            and :class:`StateRegressionError` is raised: nothing of the batch is written
            (cluster: unless Redis lost them between the check and the write, in which case
            the states are written, the progress is not, and the replay fences them).

        Returns
        -------
        int
            States written; the rest were older than what Redis holds (counted in
            ``stale_writes``).

        Raises
        ------
        StateRegressionError
            See ``expected``.
        redis.RedisError
            Connection or server errors (single node: nothing of the batch is applied;
            cluster: some states may be, never the progress).
        """
        batch = list(states)
        progress = progress or {}
        if not batch and not progress:
            return 0
        by_partition: dict[int, list[str]] = {}
        for key, p in (partition_of or {}).items():
            by_partition.setdefault(p, []).append(key)
        if self.cluster:
            return self._count(batch, self._save_cluster(batch, by_partition, progress, expected or {}))
        tps = sorted(progress)
        watched = sorted({self.progress_key(p) for _, p in (expected or {})})
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if watched:
                        # Optimistic check-then-write: nothing of the batch is written when
                        # Redis is behind (otherwise states ahead of the recovery point would
                        # move the partition watermark of the replay).
                        pipe.watch(*watched)
                        lagging = self._lagging(pipe, expected or {})
                        if lagging:
                            raise StateRegressionError(lagging, where=self.name)
                        pipe.multi()
                    self._queue(pipe, batch, by_partition, tps, progress)
                    t0 = time.perf_counter()
                    results = pipe.execute()
                    self.last_write_s = time.perf_counter() - t0
                    break
                except redis.WatchError:  # a progress entry moved between check and write
                    continue
        return self._count(batch, results[len(by_partition): len(by_partition) + len(batch)])

    def _count(self, batch: list[SkuState], puts: list[object]) -> int:
        written = sum(int(r) for r in puts)  # type: ignore[call-overload]
        self.writes += written
        self.stale_writes += len(batch) - written
        return written

    def _save_cluster(self, batch: list[SkuState], by_partition: dict[int, list[str]],
                      progress: dict[TopicPartition, int],
                      expected: dict[TopicPartition, int]) -> list[object]:
        """The cluster form of :meth:`save_many`; returns the SKU scripts' replies (batch order)."""
        if expected:
            lagging = self._lagging_pipelined(expected)
            if lagging:
                raise StateRegressionError(lagging, where=self.name)
        t0 = time.perf_counter()
        # step 2: per primary, one pipeline on one connection: index SADDs, SKU scripts, WAIT
        groups: dict[str, tuple[Any, int, list[tuple[str, str, list[object]]]]] = {}

        def add(key: str, op: str, args: list[object]) -> None:
            node, replicas = self._node_of(key)
            groups.setdefault(node.name, (node, replicas, []))[2].append((op, key, args))

        for p, keys in by_partition.items():
            add(self.partition_key(p), "sadd", list(keys))
        for i, st in enumerate(batch):
            seq = st.sequence
            value = encode_value(seq, st.encode_core(), st.encode_model(), st.model.served_model,
                                 st.updated_at)
            add(self.redis_key(st.key), f"put:{i}", [seq, value, self.ttl_s])
        puts: list[object] = [0] * len(batch)
        for node, replicas, ops in groups.values():
            for (op, _, _), reply in zip(ops, self._run_on_node(node, replicas, ops), strict=True):
                if op.startswith("put:"):
                    puts[int(op[4:])] = reply
        # step 3: the progress, last, fenced by the expected progress inside each script
        if progress:
            parts: dict[int, list[object]] = {}
            for (topic, p), offset in sorted(progress.items()):
                parts.setdefault(p, []).extend([topic, offset, expected.get((topic, p), -2)])

            def advance(pipe: redis.client.Pipeline) -> None:
                for p, args in parts.items():
                    self._progress_fenced(keys=[self.progress_key(p)], args=args, client=pipe)

            if not all(int(r) for r in self._run_pipelined(advance)):  # type: ignore[call-overload]
                # Redis lost this writer's progress between the check and now (a failover)
                lagging = self._lagging_pipelined(expected)
                raise StateRegressionError(lagging or {tp: (-1, o) for tp, o in expected.items()},
                                           where=self.name)
        self.last_write_s = time.perf_counter() - t0
        return puts

    def _node_of(self, key: str) -> tuple[Any, int]:
        """The primary serving ``key``'s slot and how many replicas it has (client's slot map).

        Raises
        ------
        redis.exceptions.ClusterDownError
            When the client knows no node for the slot.
        """
        slot = self.client.keyslot(key)
        nodes = self.client.nodes_manager.slots_cache.get(slot) or []
        if not nodes:
            self._refresh_topology()
            raise redis.exceptions.ClusterDownError(f"no node serves slot {slot}")
        return nodes[0], len(nodes) - 1

    def _refresh_topology(self) -> None:
        """Re-read the slot map (after a failover, a MOVED or a dead node); best effort."""
        try:
            self.client.nodes_manager.initialize()
        except (redis.RedisError, redis.exceptions.RedisClusterException):
            pass  # the cluster is still failing over: the caller's retry comes back here

    def _run_on_node(self, node: Any, replicas: int,
                     ops: list[tuple[str, str, list[object]]]) -> list[object]:
        """Run ``ops`` on one primary in one pipeline, then ``WAIT`` for a replica (if it has one).

        ``WAIT`` runs on the connection that wrote, so it covers these writes: once it returns,
        a replica holds them, and a failover of this primary (Redis elects the replica with the
        highest replication offset) keeps them. Only then is the progress written (step 3):
        asynchronous replication can lose the progress's tail, never a state below it.

        Raises
        ------
        redis.RedisError
            An error reply (``MOVED`` after a failover, ``CLUSTERDOWN``, ...), a dead node, or
            :class:`ReplicaAckTimeout`; the slot map is re-read before it propagates.
        """
        conn = self.client.get_redis_connection(node)
        for attempt in range(2):
            pipe = conn.pipeline(transaction=False)
            for op, key, args in ops:
                if op == "sadd":
                    pipe.sadd(key, *args)
                else:
                    pipe.evalsha(self._put.sha, 1, key, *args)
            if replicas:
                pipe.execute_command("WAIT", 1, self.replica_ack_timeout_ms)
            try:
                results = pipe.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError):
                self._refresh_topology()
                raise
            if attempt == 0 and any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
                conn.script_load(_PUT_LUA)  # a promoted replica or a restarted node: empty cache
                continue
            for r in results:
                if isinstance(r, Exception):
                    self._refresh_topology()
                    raise r
            if replicas and int(results[-1]) < 1:
                self._refresh_topology()
                raise ReplicaAckTimeout(f"no replica of {node.name} acknowledged the batch within "
                                        f"{self.replica_ack_timeout_ms} ms")
            return list(results[:-1] if replicas else results)
        raise AssertionError("unreachable")

    def _run_pipelined(self, queue: object) -> list[object]:
        """Run the commands ``queue(pipe)`` adds in one non-transactional pipeline (per node).

        A node without the scripts (a promoted replica, a flushed cache) answers NOSCRIPT: the
        scripts are loaded on every primary and the whole pipeline runs again (every command
        in it is idempotent: fenced writes, ``SADD``, monotone progress).

        Raises
        ------
        redis.RedisError
            The first error reply, or the pipeline's own error.
        """
        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            queue(pipe)  # type: ignore[operator]
            results = pipe.execute(raise_on_error=False)
            if attempt == 0 and any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
                for script in (self._put, self._progress, self._progress_fenced):
                    script.sha = self.client.script_load(script.script)
                continue
            for r in results:
                if isinstance(r, Exception):
                    raise r
            return list(results)
        raise AssertionError("unreachable")

    def _lagging_pipelined(self, expected: dict[TopicPartition, int],
                           ) -> dict[TopicPartition, tuple[int, int]]:
        tps = sorted(expected)
        pipe = self.client.pipeline(transaction=False)
        for topic, p in tps:
            pipe.hget(self.progress_key(p), topic)
        stored = {tp: int(raw) for tp, raw in zip(tps, pipe.execute(), strict=True) if raw is not None}
        return lagging_progress(stored, expected)

    def _queue_put(self, pipe: redis.client.Pipeline, s: SkuState) -> None:
        seq = s.sequence
        value = encode_value(seq, s.encode_core(), s.encode_model(), s.model.served_model, s.updated_at)
        self._put(keys=[self.redis_key(s.key)], args=[seq, value, self.ttl_s], client=pipe)

    def _queue(self, pipe: redis.client.Pipeline, batch: list[SkuState], by_partition: dict[int, list[str]],
               tps: list[TopicPartition], progress: dict[TopicPartition, int]) -> None:
        for p, keys in by_partition.items():
            pipe.sadd(self.partition_key(p), *keys)
        for s in batch:
            self._queue_put(pipe, s)
        if tps:
            args: list[object] = []
            for tp in tps:
                args += [tp[0], progress[tp]]
            self._progress(keys=[self.progress_key(p) for _, p in tps], args=args, client=pipe)

    def _lagging(self, client: redis.Redis | redis.client.Pipeline,
                 expected: dict[TopicPartition, int]) -> dict[TopicPartition, tuple[int, int]]:
        stored: dict[TopicPartition, int] = {}
        for topic, p in sorted(expected):
            raw = client.hget(self.progress_key(p), topic)
            if raw is not None:
                stored[(topic, p)] = int(raw)
        return lagging_progress(stored, expected)

    def keys(self) -> list[str]:
        """Every stored SKU key (SCAN, on every primary of a cluster; for tools and tests)."""
        pat = f"{self.prefix}:{{*}}:state"
        out = []
        for raw in self.client.scan_iter(match=pat, count=1000):
            k = raw.decode() if isinstance(raw, bytes) else raw
            out.append(k[len(self.prefix) + 2 : -len("}:state")])
        return sorted(out)

    def dump(self) -> dict[str, bytes]:
        """Canonical dump ``sku key -> core + model bytes`` (tests compare runs with it)."""
        parts = self.read_parts(self.keys())
        return {k: core + b"|" + model for k, (core, model) in sorted(parts.items())}

    def memory_usage(self, key: str) -> int | None:
        """``MEMORY USAGE`` of a SKU's state key in bytes."""
        v = self.client.memory_usage(self.redis_key(key))
        return None if v is None else int(v)
