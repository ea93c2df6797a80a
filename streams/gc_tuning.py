"""Garbage-collector settings of a worker process: freeze the long-lived heap between batches.

A worker keeps tens of thousands of long-lived objects (its cached SKU states: forecasters,
positions, demand windows). CPython's cyclic collector re-scans all of them at every full
(generation-2) collection, which it starts whenever the objects promoted to generation 2 since
the last one exceed a quarter of those it already holds; with 10-50k cached states each full
collection is a 0.6-2 s pause inside a batch (docs/performance.md, "Every SKU at each close").
A dropped state is freed by reference counting, so scanning them finds nothing: its one cycle
(the cached :class:`~agents.processor.derived.Derived` refers back to the state) is cut when
the pipeline drops it (``Pipeline._uncache``). Before that cut, every state a period review
loaded and dropped stayed frozen until the next full collection (worker RSS 603 -> 1,186 MiB
from 10k to 100k SKUs; flat at 305-313 MiB with the cut, bench/cost_per_sku.py).

:class:`GcTuning` applies two worker start-up settings (``RESTOCK_GC_FREEZE``,
``RESTOCK_GC_GEN0_THRESHOLD``; never applied by library code, tests or the simulator):

* ``freeze``: after a batch, at most every :data:`FREEZE_EVERY_S` seconds, collect the young
  generations (the objects created since the previous freeze: only unfrozen objects are
  traversed) and move every survivor to the permanent generation (:func:`gc.freeze`, O(1)), so
  collections never traverse the cached states again. An object frozen while alive that later
  becomes part of a garbage cycle (or was promoted to generation 2 between two freezes) is only
  reclaimed by the full collection run every :data:`FULL_COLLECT_EVERY_S` seconds
  (``gc.unfreeze`` then ``gc.collect``): reference-counted garbage, the states included, is
  freed at once as usual.
* ``gen0_threshold``: the generation-0 allocation threshold (CPython's default is 700); a
  larger one makes fewer, larger young collections.

Neither changes any result: the collector only reclaims unreachable objects.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["FREEZE_EVERY_S", "FULL_COLLECT_EVERY_S", "GcTuning"]

#: seconds between the full collections (unfrozen) of a worker that freezes its heap
FULL_COLLECT_EVERY_S = 900.0
#: at most one young collection + freeze per this many seconds (batches come every 0.2 s or less)
FREEZE_EVERY_S = 1.0


@dataclass
class GcTuning:
    """The worker's garbage-collector settings (see the module docstring).

    Parameters
    ----------
    freeze : bool
        Freeze the surviving heap after every batch (:meth:`after_batch`).
    gen0_threshold : int, optional
        Generation-0 threshold (allocations minus deallocations between young collections);
        None keeps the interpreter's.
    clock : callable
        Monotonic clock in seconds (tests).

    Raises
    ------
    ValueError
        When ``gen0_threshold`` is below 1.

    Examples
    --------
    >>> t = GcTuning(freeze=False, gen0_threshold=None)
    >>> t.apply(); t.after_batch()   # nothing to do: the interpreter's defaults
    """

    freeze: bool = False
    gen0_threshold: int | None = None
    clock: Callable[[], float] = time.monotonic
    _last_full: float | None = field(default=None, init=False, repr=False)
    _last_freeze: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.gen0_threshold is not None and self.gen0_threshold < 1:
            raise ValueError(f"gen0_threshold must be at least 1 (or None), got {self.gen0_threshold}")

    def apply(self) -> None:
        """Set the generation-0 threshold (process-wide; call once at worker start-up)."""
        if self.gen0_threshold is not None:
            _, g1, g2 = gc.get_threshold()
            gc.set_threshold(self.gen0_threshold, g1, g2)

    def after_batch(self) -> None:
        """With ``freeze``, at most every :data:`FREEZE_EVERY_S`: collect young objects, freeze survivors.

        The young generations (0 and 1, which hold everything created since the previous
        freeze) are collected, then every survivor is frozen. Every :data:`FULL_COLLECT_EVERY_S`
        seconds the heap is unfrozen and fully collected instead, so that cycles formed among
        frozen objects are reclaimed too.
        """
        if not self.freeze:
            return
        now = self.clock()
        if self._last_full is None:  # the first batch: the start-up heap, once, in full
            self._last_full = self._last_freeze = now
            gc.collect()
        elif now - self._last_full >= FULL_COLLECT_EVERY_S:
            self._last_full = self._last_freeze = now
            gc.unfreeze()
            gc.collect()
        elif now - self._last_freeze >= FREEZE_EVERY_S:
            self._last_freeze = now
            gc.collect(1)
        else:
            return
        gc.freeze()
