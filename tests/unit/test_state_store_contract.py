"""The StateStore contract: one suite, run against every store.

:class:`StateStoreContract` holds the checks; a subclass provides two fixtures, ``make_store``
(a fresh, empty store per call) and ``lose_progress`` (make the store forget a partition's
progress, as a Redis that lost writes would). Here: :class:`agents.state.InMemoryStateStore`;
``tests/integration/test_state_store_contract_redis.py`` runs the same class against
:class:`streams.redis_state.RedisStateStore` on a real redis-server.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.state import InMemoryStateStore, SkuState, StateRegressionError, StateStore

MakeStore = Callable[[], Any]


def state(key: str, **fences: int) -> SkuState:
    """A state whose fence holds ``topic_partition=offset`` entries (``orders_0=5``)."""
    s = SkuState.new(key)
    for tp, offset in fences.items():
        topic, _, p = tp.rpartition("_")
        s.mark_applied(topic, int(p), offset)
    s.bump("events", sum(fences.values()))
    return s


class StateStoreContract:
    """Checks every :class:`agents.state.StateStore` must pass (subclass and add the fixtures)."""

    def test_implements_every_protocol_member_with_the_same_parameters(self, make_store: MakeStore) -> None:
        store = make_store()
        assert isinstance(store.name, str) and store.name
        members = [n for n, v in vars(StateStore).items() if inspect.isfunction(v) and not n.startswith("_")]
        assert set(members) == {"load_many", "save_many", "keys", "keys_of_partition", "read_progress",
                                "behind"}
        for name in members:
            want = list(inspect.signature(getattr(StateStore, name)).parameters)
            got = list(inspect.signature(getattr(type(store), name)).parameters)
            assert got == want, f"{type(store).__name__}.{name}{got} != StateStore.{name}{want}"

    def test_saved_states_load_byte_identical_and_missing_keys_are_absent(
            self, make_store: MakeStore) -> None:
        store = make_store()
        a, b = state("A@W", orders_0=3), state("B@W", orders_1=7, inventory_1=2)
        assert store.save_many([a, b], {"A@W": 0, "B@W": 1}) == 2
        loaded = store.load_many(["B@W", "missing@W", "A@W"])
        assert set(loaded) == {"A@W", "B@W"}
        assert loaded["A@W"].encode() == a.encode() and loaded["B@W"].encode() == b.encode()
        assert store.load_many([]) == {}
        assert store.keys() == ["A@W", "B@W"]
        assert store.keys_of_partition(0) == ["A@W"] and store.keys_of_partition(1) == ["B@W"]
        assert store.keys_of_partition(2) == []

    def test_a_stale_write_is_refused_and_an_equal_one_rewritten(self, make_store: MakeStore) -> None:
        store = make_store()
        assert store.save_many([state("A@W", orders_0=9)]) == 1
        zombie = state("A@W", orders_0=4)  # a worker that lost the partition, still flushing
        assert store.save_many([zombie]) == 0
        assert store.load_many(["A@W"])["A@W"].fence == {"orders:0": 9}
        replay = state("A@W", orders_0=9)
        replay.bump("replayed")
        assert store.save_many([replay]) == 1  # same sequence: a replay of the same events
        assert store.load_many(["A@W"])["A@W"].counters["replayed"] == 1

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(offsets=st.lists(st.integers(0, 50), min_size=1, max_size=8))
    def test_the_stored_state_is_the_highest_sequence_written(self, make_store: MakeStore,
                                                              offsets: list[int]) -> None:
        store = make_store()
        for i, o in enumerate(offsets):
            s = state("A@W", orders_0=o)
            s.bump("write", i)
            store.save_many([s])
        top = max(offsets)
        last_top = max(i for i, o in enumerate(offsets) if o == top)
        got = store.load_many(["A@W"])["A@W"]
        assert got.fence == {"orders:0": top}
        assert got.counters.get("write", 0) == last_top

    def test_progress_advances_with_the_batch_and_never_moves_back(self, make_store: MakeStore) -> None:
        store = make_store()
        assert store.read_progress([0, 1]) == {}
        store.save_many([state("A@W", orders_0=4)], {"A@W": 0},
                        progress={("orders", 0): 4, ("inventory", 0): 7})
        assert store.read_progress([0, 1]) == {("orders", 0): 4, ("inventory", 0): 7}
        store.save_many([], progress={("orders", 1): 3})  # a batch of dead letters still advances it
        store.save_many([], progress={("orders", 0): 2}, expected={("orders", 0): 4})  # lower: kept
        assert store.read_progress([0, 1]) == {("orders", 0): 4, ("inventory", 0): 7, ("orders", 1): 3}
        assert store.read_progress([1]) == {("orders", 1): 3}
        assert store.read_progress([]) == {}

    def test_behind_lists_the_partitions_whose_stored_progress_is_lower(self, make_store: MakeStore) -> None:
        store = make_store()
        store.save_many([], progress={("orders", 0): 4, ("orders", 1): 3})
        assert store.behind({("orders", 0): 4, ("orders", 1): 3}) == {}
        assert store.behind({("orders", 0): 9, ("orders", 2): 0}) == {("orders", 0): (4, 9),
                                                                      ("orders", 2): (-1, 0)}
        assert store.behind({}) == {}

    def test_a_writer_whose_progress_the_store_lost_writes_nothing(
            self, make_store: MakeStore, lose_progress: Callable[[Any, int], None]) -> None:
        store = make_store()
        store.save_many([state("A@W", orders_0=10)], {"A@W": 0}, progress={("orders", 0): 10})
        lose_progress(store, 0)
        with pytest.raises(StateRegressionError) as err:
            store.save_many([state("A@W", orders_0=12), state("B@W", orders_0=11)], {"B@W": 0},
                            progress={("orders", 0): 12}, expected={("orders", 0): 10})
        assert err.value.lagging == {("orders", 0): (-1, 10)}
        assert (f"{store.name} is behind this worker's last durable write: orders[0] at -1 < 10"
                in str(err.value))
        # nothing of the batch is written: no state runs ahead of the recovery point
        assert store.read_progress([0]) == {}
        assert store.load_many(["A@W"])["A@W"].fence == {"orders:0": 10}
        assert store.keys() == ["A@W"]

    def test_an_empty_batch_writes_and_checks_nothing(
            self, make_store: MakeStore, lose_progress: Callable[[Any, int], None]) -> None:
        store = make_store()
        store.save_many([], progress={("orders", 0): 5})
        lose_progress(store, 0)
        assert store.save_many([], expected={("orders", 0): 5}) == 0


class TestInMemoryStateStore(StateStoreContract):
    """The contract on the in-memory store (backtest, unit tests)."""

    @pytest.fixture
    def make_store(self) -> MakeStore:
        return InMemoryStateStore

    @pytest.fixture
    def lose_progress(self) -> Callable[[Any, int], None]:
        return lambda store, partition: store.lose_progress(partition)
