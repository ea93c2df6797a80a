"""The Redis state store against a real redis-server: fencing, progress and lost-write detection."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from agents.state import SkuState
from streams.redis_state import RedisStateStore, StateRegressionError

from .helpers import T0


def _state(key: str, offset: int) -> SkuState:
    s = SkuState.new(key)
    s.mark_applied("orders", 0, offset)
    s.updated_at = int((T0 + timedelta(seconds=offset)).timestamp())
    return s


def test_progress_advances_with_the_batch_and_never_moves_back(redis_client: redis.Redis) -> None:
    store = RedisStateStore(redis_client, "t")
    assert store.read_progress([0, 1]) == {}
    store.save_many([_state("A@W", 4)], {"A@W": 0}, progress={("orders", 0): 4, ("inventory", 0): 7})
    assert store.read_progress([0, 1]) == {("orders", 0): 4, ("inventory", 0): 7}
    # a record batch with nothing to write (all dead-lettered, say) still advances the progress
    store.save_many([], progress={("orders", 1): 3}, expected={})
    store.save_many([], progress={("orders", 0): 2}, expected={("orders", 0): 4})  # lower: kept
    assert store.read_progress([0, 1]) == {("orders", 0): 4, ("inventory", 0): 7, ("orders", 1): 3}
    assert store.behind({("orders", 0): 4, ("orders", 1): 3}) == {}
    assert store.behind({("orders", 0): 9, ("orders", 2): 0}) == {("orders", 0): (4, 9), ("orders", 2): (-1, 0)}


def test_a_writer_notices_that_redis_lost_its_writes(redis_client: redis.Redis) -> None:
    store = RedisStateStore(redis_client, "t")
    store.save_many([_state("A@W", 10)], {"A@W": 0}, progress={("orders", 0): 10})
    redis_client.hset(store.progress_key(0), "orders", 6)  # as after a restore of an older snapshot
    newer = _state("A@W", 12)
    with pytest.raises(StateRegressionError) as err:
        store.save_many([newer], {"A@W": 0}, progress={("orders", 0): 12}, expected={("orders", 0): 10})
    assert err.value.lagging == {("orders", 0): (6, 10)}
    assert "orders[0] at 6 < 10" in str(err.value)
    # nothing of the batch is written: the recovery point stays, no state runs ahead of it
    assert store.read_progress([0]) == {("orders", 0): 6}
    assert store.load_many(["A@W"])["A@W"].fence == {"orders:0": 10}
    redis_client.delete(store.progress_key(0))  # total loss of the progress entry
    with pytest.raises(StateRegressionError) as err:
        store.save_many([], progress={("orders", 0): 13}, expected={("orders", 0): 12})
    assert err.value.lagging == {("orders", 0): (-1, 12)}


def test_a_batch_is_one_transaction(redis_client: redis.Redis) -> None:
    """MULTI/EXEC: a reader never sees half a batch, and the AOF keeps or drops it whole."""
    store = RedisStateStore(redis_client, "t")
    states = [_state(f"S{i}@W", 5) for i in range(50)]
    redis_client.config_resetstat()
    store.save_many(states, {s.key: 0 for s in states}, progress={("orders", 0): 5})
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_multi"]["calls"] == 1 and stats["cmdstat_exec"]["calls"] == 1
    # with an expected progress, the check and the write are one optimistic transaction
    store.save_many([_state("S0@W", 6)], {"S0@W": 0}, progress={("orders", 0): 6}, expected={("orders", 0): 5})
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_watch"]["calls"] == 1 and stats["cmdstat_exec"]["calls"] == 2
    assert len(store.keys()) == 50 and store.read_progress([0]) == {("orders", 0): 6}
