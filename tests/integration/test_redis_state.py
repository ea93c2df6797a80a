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
    assert store.behind({("orders", 0): 9, ("orders", 2): 0}) == {("orders", 0): (4, 9),
                                                                  ("orders", 2): (-1, 0)}


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
    if store.cluster:
        pytest.skip("single node only: a cluster batch spans slots (tests/integration/test_redis_cluster.py)")
    states = [_state(f"S{i}@W", 5) for i in range(50)]
    redis_client.config_resetstat()
    store.save_many(states, {s.key: 0 for s in states}, progress={("orders", 0): 5})
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_multi"]["calls"] == 1 and stats["cmdstat_exec"]["calls"] == 1
    # with an expected progress, the check and the write are one optimistic transaction
    store.save_many([_state("S0@W", 6)], {"S0@W": 0}, progress={("orders", 0): 6},
                    expected={("orders", 0): 5})
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_watch"]["calls"] == 1 and stats["cmdstat_exec"]["calls"] == 2
    assert len(store.keys()) == 50 and store.read_progress([0]) == {("orders", 0): 6}


def test_state_round_trips_as_one_fenced_string_value(redis_client: redis.Redis) -> None:
    store = RedisStateStore(redis_client, "t", ttl_s=3600)
    st = _state("A@W", 7)
    assert store.save_many([st], {"A@W": 0}) == 1
    key = store.redis_key("A@W")
    assert redis_client.type(key) == b"string"
    assert 0 < redis_client.ttl(key) <= 3600
    loaded = store.load_many(["A@W", "missing@W"])
    assert set(loaded) == {"A@W"} and loaded["A@W"].encode() == st.encode()
    assert store.sequences(["A@W", "missing@W"]) == {"A@W": st.sequence}
    # a zombie worker's older state is refused, a newer one replaces it
    assert store.save_many([_state("A@W", 3)]) == 0 and store.stale_writes == 1
    assert store.load_many(["A@W"])["A@W"].encode() == st.encode()
    assert store.save_many([_state("A@W", 9)]) == 1
    assert store.sequences(["A@W"]) == {"A@W": _state("A@W", 9).sequence}


def test_states_of_the_earlier_hash_layout_are_read_fenced_and_migrated(redis_client: redis.Redis) -> None:
    store = RedisStateStore(redis_client, "t")
    old = _state("H@W", 20)
    key = store.redis_key("H@W")
    redis_client.hset(key, mapping={"seq": old.sequence, "core": old.encode_core(),
                                    "model": old.encode_model(), "model_name": old.model.served_model,
                                    "updated_at": old.updated_at})
    mixed = store.load_many(["H@W", "A@W"])  # one key of each layout in the same round trip
    assert set(mixed) == {"H@W"} and mixed["H@W"].encode() == old.encode()
    assert store.dump() == {"H@W": old.encode_core() + b"|" + old.encode_model()}
    assert store.sequences(["H@W"]) == {"H@W": old.sequence}
    assert store.save_many([_state("H@W", 5)]) == 0  # the hash's seq fences the write too
    assert redis_client.type(key) == b"hash"
    assert store.save_many([_state("H@W", 25), _state("A@W", 1)]) == 2
    assert redis_client.type(key) == b"string"
    assert store.load_many(["H@W"])["H@W"].encode() == _state("H@W", 25).encode()


def test_one_value_costs_less_redis_memory_than_the_five_field_hash(redis_client: redis.Redis) -> None:
    # the point of the layout: a hash with values over hash-max-listpack-value is a real hash
    # table (bench/cost_per_sku.py measures the full replay)
    store = RedisStateStore(redis_client, "t")
    st = _state("A@W", 7)
    store.save_many([st])
    as_string = store.memory_usage("A@W")
    redis_client.delete(store.redis_key("A@W"))
    redis_client.hset(store.redis_key("A@W"), mapping={
        "seq": st.sequence, "core": st.encode_core(), "model": st.encode_model(),
        "model_name": st.model.served_model, "updated_at": st.updated_at})
    as_hash = store.memory_usage("A@W")
    assert as_string is not None and as_hash is not None and as_string < as_hash
