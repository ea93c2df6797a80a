"""Pure helpers of the benchmark scripts (no broker, no Redis)."""

from __future__ import annotations

import binascii
import doctest
import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

common = importlib.import_module("common")


def test_key_slot_matches_the_cluster_spec() -> None:
    # Redis Cluster specification: CRC16("123456789") = 0x31C3; the tag decides the slot.
    assert common.key_slot("123456789") == 0x31C3 % 16384
    assert common.key_slot("{user1000}.following") == common.key_slot("{user1000}.followers")
    # empty tag: the whole key is hashed (CRC16/XMODEM, computed here with the standard library)
    assert common.key_slot("foo{}{bar}") == binascii.crc_hqx(b"foo{}{bar}", 0) % 16384
    assert common.key_slot("foo{}{bar}") != common.key_slot("bar")
    assert common.key_slot("foo{{bar}}zap") == common.key_slot("{bar")  # first { to next }


def test_restock_state_key_is_hash_tagged_per_sku() -> None:
    from streams.redis_state import RedisStateStore

    store = RedisStateStore.__new__(RedisStateStore)
    store.prefix = "restock"
    k = store.redis_key("85123A@UK")
    assert k == "restock:{85123A@UK}:state"
    assert common.key_slot(k) == common.key_slot("85123A@UK")


def test_percentiles_and_ratio() -> None:
    assert common.percentiles(list(range(101)), (50, 99)) == {"p50": 50.0, "p99": 99.0}
    assert common.percentiles([]) == {"p50": None, "p95": None, "p99": None}
    assert common.ratio(1, 3) == 0.333
    assert common.ratio(1, 0) is None


@pytest.mark.parametrize(
    "module", ["common", "backtest_vs_statsforecast", "whole_job", "pyspy_worker", "run_all"]
)
def test_doctests(module: str) -> None:
    mod = importlib.import_module(module)
    failed, _ = doctest.testmod(mod)
    assert failed == 0


def test_synthetic_orders_are_deterministic_and_spread() -> None:
    cost = importlib.import_module("cost_per_sku")
    a = cost.synthetic_orders(1000, 50, days=10, seed=1)
    b = cost.synthetic_orders(1000, 50, days=10, seed=1)
    assert [e.key for e in a] == [e.key for e in b]
    assert len({e.key for e in a}) == 50
    assert (a[-1].occurred_at - a[0].occurred_at).days == 9
    assert all(x.occurred_at <= y.occurred_at for x, y in zip(a, a[1:], strict=False))


def test_summary_rows_read_each_json(tmp_path: Path) -> None:
    run_all = importlib.import_module("run_all")
    (tmp_path / "throughput.json").write_text(
        json.dumps(
            {
                "events": 200000,
                "restock_events_per_s": 800.0,
                "empty_agent_events_per_s": 8000.0,
                "ratio_restock_over_empty": 0.1,
                "met": False,
            }
        )
    )
    (tmp_path / "scaleout.json").write_text(
        json.dumps(
            {
                "events": 200000,
                "partitions": 4,
                "one_worker_events_per_s": 800.0,
                "two_workers_events_per_s": 1400.0,
                "speedup": 1.75,
                "met": True,
            }
        )
    )
    rows = run_all.summary_rows(tmp_path)
    assert [r[0] for r in rows] == ["1 throughput (b)/(a)", "2 scale-out 2 vs 1 worker"]
    assert rows[0][3] == 0.1 and rows[0][5] is False
    assert rows[1][3] == 1.75 and rows[1][5] is True
