"""The worker's garbage-collector settings (streams.gc_tuning): freeze survivors, collect garbage."""

from __future__ import annotations

import gc
import weakref

import pytest

from streams.gc_tuning import FREEZE_EVERY_S, FULL_COLLECT_EVERY_S, GcTuning
from streams.settings import GC_GEN0_THRESHOLD, Settings


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def clean_gc():
    """Restore the interpreter's collector state after the test."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_defaults_of_the_worker():
    s = Settings()
    assert s.gc_freeze is True
    assert s.gc_gen0_threshold == GC_GEN0_THRESHOLD


def test_apply_sets_only_the_generation_0_threshold(clean_gc):
    _, g1, g2 = gc.get_threshold()
    GcTuning(gen0_threshold=12_345).apply()
    assert gc.get_threshold() == (12_345, g1, g2)
    GcTuning(gen0_threshold=None).apply()
    assert gc.get_threshold() == (12_345, g1, g2)


def test_threshold_below_one_is_refused():
    with pytest.raises(ValueError, match="gen0_threshold"):
        GcTuning(gen0_threshold=0)


def _cycles(n: int) -> tuple[list[_Cycle], list[weakref.ref[_Cycle]]]:
    objs = [_Cycle() for _ in range(n)]
    return objs, [weakref.ref(o) for o in objs]


def test_after_batch_frees_garbage_cycles_and_freezes_the_survivors(clean_gc):
    gc.unfreeze()
    now = [0.0]
    t = GcTuning(freeze=True, clock=lambda: now[0])
    t.after_batch()  # the start-up heap: collected in full and frozen
    live, live_refs = _cycles(50)
    garbage, refs = _cycles(50)
    del garbage  # unreachable cycles: only the cyclic collector frees them
    now[0] = FREEZE_EVERY_S / 2
    t.after_batch()  # too soon: nothing happens
    assert all(r() is not None for r in refs)
    now[0] = FREEZE_EVERY_S
    frozen = gc.get_freeze_count()
    t.after_batch()
    assert all(r() is None for r in refs)  # the young cycles were collected before the freeze
    assert gc.get_freeze_count() >= frozen + len(live)
    assert all(r() is not None for r in live_refs)


def test_without_freeze_nothing_is_frozen(clean_gc):
    gc.unfreeze()
    GcTuning(freeze=False).after_batch()
    assert gc.get_freeze_count() == 0


def test_a_full_collection_unfreezes_the_heap_periodically(clean_gc):
    gc.unfreeze()
    now = [0.0]
    t = GcTuning(freeze=True, clock=lambda: now[0])
    t.after_batch()
    cycles, refs = _cycles(20)
    now[0] = 2 * FREEZE_EVERY_S
    t.after_batch()  # alive: frozen
    del cycles  # garbage now, but frozen: an ordinary freeze does not reclaim it
    now[0] = FULL_COLLECT_EVERY_S - 1.0
    t.after_batch()
    assert all(r() is not None for r in refs)
    now[0] = FULL_COLLECT_EVERY_S + 1.0
    t.after_batch()  # unfreeze + full collection
    assert all(r() is None for r in refs)
    assert gc.get_freeze_count() > 0  # and frozen again
