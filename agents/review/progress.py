"""The period review of a whole partition, in chunks: which SKUs it covers and how far it got.

When a partition's watermark crosses a period boundary, every SKU of the partition whose open
period closed must be reviewed (its zeros learned, its levels and decisions recomputed), cached
in the worker or not. :class:`agents.pipeline.Pipeline` runs that review in bounded chunks
between batches, so that orders keep flowing; :class:`PartitionSweep` is its cursor over the
partition's SKU keys (sorted) and the rule that makes the chunked review equal to one review of
every SKU at the crossing:

* a SKU is **part of the review** (:meth:`PartitionSweep.covers`) when its open period closed
  at the review's watermark (``open_start + period <= watermark - lateness``, the rule of the
  eager close) and it existed at the crossing: none of its fence offsets is above the
  ``frontier`` (the last offset of each input topic-partition applied before the crossing;
  a topic-partition first seen after the crossing gets ``offset - 1`` of its first record);
* the pipeline reviews such a SKU **before applying any later event of it** (the event's SKU
  is reviewed first, with the review's trigger), and finishes the whole review **before the
  watermark enters the next period** (before the partition's pool is re-published).

So each SKU sees the same sequence of operations as with the eager close (its events before
the crossing, the review at the crossing's time and trigger, its events after), whatever the
chunk boundaries, batch boundaries, restarts or cache evictions: states are byte-identical and
decision ids are ``decision_id(sku, kind, trigger)`` of the crossing record. A reviewed SKU's
open period is past the watermark, so it is never reviewed twice (the review is idempotent per
SKU); the cursor only saves re-reading SKUs already passed. The record
(:class:`agents.state.ReviewProgress`) is written with each batch while the review spans
batches, so a crash or a rebalance resumes it.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import replace

from agents.processor import EventMeta
from agents.state import ReviewProgress, SkuState

__all__ = ["PartitionSweep"]


class PartitionSweep:
    """Cursor of one partition's period review over its sorted SKU keys (module docstring).

    Parameters
    ----------
    record : ReviewProgress
        The review (trigger, watermark, frontier, cursor).
    keys : list of str
        The partition's SKU keys, sorted (its stored index and its cached SKUs); keys at or
        before ``record.cursor`` are skipped.
    step_s : int
        Period length, seconds.
    lateness_s : float
        Allowed lateness, seconds.

    Examples
    --------
    >>> from agents.state import ReviewProgress
    >>> rec = ReviewProgress(86400, 90000, "orders", 0, 9, "e9", True, {"orders:0": 9})
    >>> sw = PartitionSweep(rec, ["A@W", "B@W", "C@W"], 86400, 0.0)
    >>> sw.take(2), sw.record.cursor, sw.done
    (['A@W', 'B@W'], 'B@W', False)
    >>> sw.take(5), sw.done
    (['C@W'], True)
    """

    __slots__ = ("record", "keys", "pos", "step_s", "horizon")

    def __init__(self, record: ReviewProgress, keys: list[str], step_s: int, lateness_s: float) -> None:
        self.record = record
        self.keys = keys
        self.pos = bisect_right(keys, record.cursor) if record.cursor else 0
        self.step_s = step_s
        self.horizon = int(record.watermark - lateness_s)  # periods ending at or before it close

    @property
    def done(self) -> bool:
        """True when the cursor has passed every key."""
        return self.pos >= len(self.keys)

    @property
    def remaining(self) -> int:
        """Keys not yet passed."""
        return max(0, len(self.keys) - self.pos)

    @property
    def meta(self) -> EventMeta:
        """Position of the record that crossed the boundary (the decisions' trigger)."""
        r = self.record
        return EventMeta(r.topic, r.partition, r.offset)

    def take(self, n: int) -> list[str]:
        """The next ``n`` keys (fewer at the end); moves the cursor past them."""
        out = self.keys[self.pos: self.pos + max(0, n)]
        if out:
            self.pos += len(out)
            self.record.cursor = out[-1]
        return out

    def see(self, topic: str, partition: int, offset: int) -> None:
        """Note a record applied after the crossing.

        Fixes the frontier of a topic-partition first seen now: every offset below ``offset``
        was applied before the crossing.
        """
        tp = f"{topic}:{partition}"
        if tp not in self.record.frontier:
            self.record.frontier[tp] = offset - 1

    def covers(self, state: SkuState) -> bool:
        """True when ``state`` is part of this review and not yet reviewed (module docstring)."""
        start = state.demand.open_start
        if start is None or start + self.step_s > self.horizon:
            return False
        frontier = self.record.frontier
        return all(off <= frontier.get(tp, math.inf) for tp, off in state.fence.items())

    def copy(self) -> PartitionSweep:
        """An independent cursor (the keys list is shared: it is never mutated)."""
        out = PartitionSweep.__new__(PartitionSweep)
        out.record = replace(self.record, frontier=dict(self.record.frontier))
        out.keys, out.pos, out.step_s, out.horizon = self.keys, self.pos, self.step_s, self.horizon
        return out
