"""The StateStore contract (tests/unit/test_state_store_contract.py) on a real redis-server."""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from streams.redis_state import RedisStateStore


def _contract() -> Any:
    """The shared suite (one source for both stores; tests/unit is not a package)."""
    path = Path(__file__).resolve().parent.parent / "unit" / "test_state_store_contract.py"
    spec = importlib.util.spec_from_file_location("restock_state_store_contract", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_prefixes = itertools.count()


class TestRedisStateStore(_contract().StateStoreContract):  # type: ignore[misc]
    """The contract on the Redis store (production)."""

    @pytest.fixture
    def make_store(self, redis_client: redis.Redis) -> Callable[[], RedisStateStore]:
        return lambda: RedisStateStore(redis_client, f"contract{next(_prefixes)}")

    @pytest.fixture
    def lose_progress(self, redis_client: redis.Redis) -> Callable[[Any, int], None]:
        return lambda store, partition: redis_client.delete(store.progress_key(partition))
