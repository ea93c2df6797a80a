"""Faust internals restock touches (streams.faust_compat): fail loudly when an upgrade changes them."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest

from streams import faust_compat


def test_every_faust_internal_we_touch_is_still_there() -> None:
    faust_compat.check()  # raises FaustCompatError naming what changed


def test_check_names_a_changed_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.transport.consumer import Consumer

    def perform_seek(self: Any, extra: int) -> None:  # no longer `async def perform_seek(self)`
        return None

    monkeypatch.setattr(Consumer, "perform_seek", perform_seek)
    monkeypatch.delattr(Consumer, "_restock_original_perform_seek", raising=False)
    with pytest.raises(faust_compat.FaustCompatError, match="perform_seek"):
        faust_compat.check()


def _app(name: str) -> faust.App:
    return faust.App(name, broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)


def test_after_seek_runs_only_the_hook_of_the_consumers_app(monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.transport.consumer import Consumer

    seeks: list[str] = []

    async def original(self: Any) -> None:
        seeks.append("faust")

    # a clean Consumer class for this test: our patch wraps this stand-in for Faust's seek
    monkeypatch.setattr(Consumer, "perform_seek", original)
    monkeypatch.delattr(Consumer, "_restock_original_perform_seek", raising=False)
    hooked, other = _app("compat-hooked"), _app("compat-other")

    async def hook(consumer: Any) -> None:
        seeks.append(f"hook:{consumer.app.conf.id}")

    faust_compat.after_seek(hooked, hook)
    asyncio.run(hooked.consumer.perform_seek())
    asyncio.run(other.consumer.perform_seek())
    assert seeks == ["faust", "hook:compat-hooked", "faust"]
    assert Consumer._restock_original_perform_seek is original  # type: ignore[attr-defined]


def test_limit_fetch_wait_sets_aiokafkas_wait_on_the_consumer_faust_builds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.transport.drivers import aiokafka as faust_aiokafka

    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    built: list[Any] = []

    class FakeConsumer:
        _fetch_max_wait_ms = 1500

    def create(self: Any, transport: Any) -> Any:
        built.append(FakeConsumer())
        return built[-1]

    monkeypatch.setattr(thread_cls, "_create_worker_consumer", create)
    monkeypatch.delattr(thread_cls, "_restock_original__create_worker_consumer", raising=False)
    faust_compat.limit_fetch_wait(50)
    faust_compat.limit_fetch_wait(40)  # idempotent patch; the latest value wins
    consumer = thread_cls._create_worker_consumer(object(), object())
    assert consumer is built[0] and consumer._fetch_max_wait_ms == 40


def test_hold_and_unhold_move_messages_out_of_and_into_fausts_in_flight_set() -> None:
    consumer = _app("compat-inflight").consumer

    class Msg:
        pass

    a, b = Msg(), Msg()
    in_flight = faust_compat.in_flight(consumer)
    in_flight.add(a)
    in_flight.add(b)
    faust_compat.hold(consumer, [a, b])
    assert len(in_flight) == 0
    faust_compat.unhold(consumer, [b])
    assert set(in_flight) == {b}


def test_committed_offsets_reads_the_consumers_committed_offsets() -> None:
    from faust.types import TP

    consumer = _app("compat-committed").consumer
    tp, other = TP("orders", 0), TP("orders", 1)
    consumer._committed_offset[tp] = 42
    assert faust_compat.committed_offsets(consumer, [tp, other]) == {tp: 42, other: None}
