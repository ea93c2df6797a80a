"""The one module that touches faust-streaming's (and aiokafka's) private code.

restock needs four things Faust does not offer publicly:

* **a hook after Faust's seek to the committed offsets** (``Consumer.perform_seek``), so that the
  worker can seek back to the progress its state store holds when the store lost writes
  (:func:`after_seek`);
* **a shorter fetch wait** than the ``fetch_max_wait_ms=1500`` Faust hard-codes when it builds
  its aiokafka consumer (``AIOKafkaConsumerThread._create_worker_consumer``, which sets
  aiokafka's ``_fetch_max_wait_ms``): brokers that hold a multi-partition fetch for the full wait
  (Tansu does) would add up to 1.5 s to every event (:func:`limit_fetch_wait`);
* **the set of delivered, unacked messages** (``Consumer._unacked_messages``), out of which the
  worker takes the records its event-time aligner holds, so that a rebalance does not wait for
  them (:func:`in_flight`);
* **the group's committed offsets** as the consumer knows them (``Consumer._committed_offset``)
  (:func:`committed_offsets`).

Every access goes through this module, and ``tests/unit/test_faust_compat.py`` runs
:func:`check` against the installed versions: a Faust or aiokafka upgrade that renames or
re-types any of these fails that test loudly instead of silently disabling a safety mechanism.

The patches are process-wide (they replace methods of Faust's classes) and idempotent; the
per-app behaviour is looked up in a registry keyed by the app, never in attributes set on it.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

#: Faust and aiokafka versions this module was last checked against (see :func:`check`).
CHECKED_VERSIONS = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}

SeekHook = Callable[[Any], Awaitable[None]]

_after_seek: weakref.WeakKeyDictionary[Any, SeekHook] = weakref.WeakKeyDictionary()
_fetch_wait_ms: dict[str, int] = {}


class FaustCompatError(RuntimeError):
    """The installed Faust or aiokafka no longer has an internal restock relies on."""


def check() -> None:
    """Verify every Faust/aiokafka internal this module uses, on the installed versions.

    Raises
    ------
    FaustCompatError
        Naming the internal that is missing or changed (and the versions checked against).
    """
    import aiokafka
    import faust
    from faust.transport.consumer import Consumer
    from faust.transport.drivers import aiokafka as faust_aiokafka

    def fail(what: str) -> FaustCompatError:
        return FaustCompatError(
            f"{what} (faust-streaming {faust.__version__}, aiokafka {aiokafka.__version__}; "
            f"streams.faust_compat was written against {CHECKED_VERSIONS})")

    original = _original(Consumer, "perform_seek")
    if not inspect.iscoroutinefunction(original) or list(inspect.signature(original).parameters) != ["self"]:
        raise fail("Consumer.perform_seek is no longer `async def perform_seek(self)`")
    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    create = _original(thread_cls, "_create_worker_consumer")
    if list(inspect.signature(create).parameters) != ["self", "transport"]:
        raise fail("AIOKafkaConsumerThread._create_worker_consumer(self, transport) changed")
    if "fetch_max_wait_ms" not in inspect.getsource(create):
        raise fail("AIOKafkaConsumerThread._create_worker_consumer no longer sets fetch_max_wait_ms")
    if "self._fetch_max_wait_ms" not in inspect.getsource(aiokafka.AIOKafkaConsumer.__init__):
        raise fail("aiokafka.AIOKafkaConsumer no longer keeps _fetch_max_wait_ms")
    probe = faust.App("restock-faust-compat-probe", broker="kafka://127.0.0.1:1", store="memory://",
                      web_enabled=False)
    consumer = probe.consumer
    unacked = getattr(consumer, "_unacked_messages", None)
    if unacked is None or not all(hasattr(unacked, m) for m in ("add", "discard", "__len__")):
        raise fail("Consumer._unacked_messages is no longer a set of messages")
    committed = getattr(consumer, "_committed_offset", None)
    if not hasattr(committed, "get"):
        raise fail("Consumer._committed_offset is no longer a mapping TP -> offset")
    for name in ("highwater", "seek_wait", "earliest_offsets", "assignment"):
        if not callable(getattr(consumer, name, None)):
            raise fail(f"Consumer.{name} is gone")


def _original(cls: type, name: str) -> Any:
    """``cls.name`` as Faust defines it (before a patch of this module)."""
    return getattr(cls, f"_restock_original_{name}", None) or getattr(cls, name)


def after_seek(app: Any, hook: SeekHook) -> None:
    """Await ``hook(consumer)`` each time ``app``'s consumer has sought to the committed offsets.

    Patches ``Consumer.perform_seek`` once per process; apps without a hook are unaffected.
    """
    from faust.transport.consumer import Consumer

    _after_seek[app] = hook
    if getattr(Consumer, "_restock_original_perform_seek", None):
        return
    original = Consumer.perform_seek

    async def perform_seek(self: Any) -> None:
        await original(self)
        registered = _after_seek.get(self.app)
        if registered is not None:
            await registered(self)

    Consumer._restock_original_perform_seek = original  # type: ignore[attr-defined]
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]


def limit_fetch_wait(max_wait_ms: int) -> None:
    """Make Faust's aiokafka consumers use ``max_wait_ms`` instead of the fixed 1500 ms.

    Process-wide (the consumer thread does not know its app's settings): the latest call wins.
    """
    from faust.transport.drivers import aiokafka as faust_aiokafka

    _fetch_wait_ms["value"] = int(max_wait_ms)
    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread_cls, "_restock_original__create_worker_consumer", None):
        return
    original = thread_cls._create_worker_consumer

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = _fetch_wait_ms["value"]  # read when the fetcher starts
        return consumer

    thread_cls._restock_original__create_worker_consumer = original  # type: ignore[attr-defined]
    thread_cls._create_worker_consumer = create  # type: ignore[method-assign]


def in_flight(consumer: Any) -> Any:
    """Faust's set of delivered, unacked messages (what a rebalance waits for), or None."""
    return getattr(consumer, "_unacked_messages", None)


def hold(consumer: Any, messages: Iterable[Any]) -> None:
    """Take ``messages`` out of the consumer's in-flight set (a rebalance no longer waits)."""
    unacked = in_flight(consumer)
    if unacked is not None:
        for m in messages:
            unacked.discard(m)


def unhold(consumer: Any, messages: Iterable[Any]) -> None:
    """Put ``messages`` back into the consumer's in-flight set (they are about to be acked)."""
    unacked = in_flight(consumer)
    if unacked is not None:
        for m in messages:
            unacked.add(m)


def committed_offsets(consumer: Any, tps: Iterable[Any]) -> dict[Any, int | None]:
    """The group's committed offset of each topic-partition as the consumer knows it (or None)."""
    committed = consumer._committed_offset
    return {tp: committed.get(tp) for tp in tps}
