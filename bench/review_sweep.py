"""Bench: the period review of a whole partition, cold SKUs included, and the stall orders see.

One partition of ``--skus`` SKUs (default 10,000), all with the same learned history (a template
SKU: 30 days of orders, cloned under new keys, stock 0 and no open suggestion: every SKU reorders
at the close), stored in the in-memory state store (every state
encoded and decoded as in Redis; no network). The daily close is triggered by one order whose
event time crosses midnight (+ the allowed lateness); the settings are restock's defaults
(fill rate 0.95 with the partition's fill-rate controller, covariates on).

* **A. cost per SKU of a close, cached vs cold**: the close of all SKUs, with every SKU in the
  worker's cache (``cache = skus``) and with a cache of ``--cold-cache`` SKUs (the review loads the
  others ``REVIEW_LOAD_CHUNK`` at a time, reviews them and hands them to the batch's save); the
  time of ``Pipeline.process([crossing order])`` plus ``save_many`` of its dirty states, per SKU.
  Both runs must give byte-identical states (checked).
* **B. the stall an order sees during the close**: the crossing order is followed by
  ``--batches`` batches of ``--batch`` orders of cached SKUs (same day); each batch is
  ``process`` + ``save_many``, as the worker's batch committer does. "Before": the whole review
  runs inside the crossing batch (``review_chunk_skus=None``, the previous behaviour); "after":
  ``review_chunk_skus`` (default: the worker's setting) SKU keys per batch, then idle ticks
  (``process([])``) until the review is done. Reported: the longest batch while the review is in
  progress (an order waits at most that long behind it), the same without the batches in which
  Python ran a full (generation-2) garbage collection (a pause of ~0.5 s over 10k cached states,
  whatever the review does), the median batch, the batches and the wall time until the review
  is done.

Prints tables and writes ``out/bench/review_sweep.json``:

    python bench/review_sweep.py [--skus 10000] [--cold-cache 500] [--chunk 250] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import OUT, machine, print_table, ratio, write_json  # noqa: E402

from agents.pipeline import Pipeline, Record  # noqa: E402
from agents.processor import SkuProcessor  # noqa: E402
from agents.state import InMemoryStateStore, SkuState  # noqa: E402
from schemas.events import encode_event  # noqa: E402
from schemas.inputs import OrderPlaced, StockSnapshot  # noqa: E402
from streams.config import processor_config  # noqa: E402
from streams.settings import Settings  # noqa: E402

ROLES: dict[str, Any] = {"orders": "orders", "inventory": "inventory", "promotions": "promotions"}
T0 = datetime(2011, 1, 3, tzinfo=UTC)
DAYS = 30


def _order(sku: str, at: datetime, n: int, qty: int = 2) -> OrderPlaced:
    return OrderPlaced(event_id=f"{sku}-{n}", occurred_at=at, sku=sku, location="W", order_id=f"{sku}-{n}",
                       quantity=qty, unit_price=3.0)


def template(settings: Settings) -> tuple[bytes, int]:
    """A SKU with ``DAYS`` days of learned demand (encoded) and the next free orders offset."""
    pipe = Pipeline(SkuProcessor(processor_config(settings)), InMemoryStateStore(), ROLES)
    evs: list[tuple[str, Any]] = [("inventory", StockSnapshot(event_id="seed", occurred_at=T0, sku="T",
                                                              location="W", on_hand=60))]
    for d in range(DAYS):
        for j in range(1 + d % 3):
            evs.append(("orders", _order("T", T0 + timedelta(days=d, hours=9 + j), d * 10 + j)))
    offs: dict[str, int] = {}
    recs = []
    for topic, ev in evs:
        recs.append(Record(topic, 0, offs.get(topic, 0), ev.key.encode(), encode_event(ev)))
        offs[topic] = offs.get(topic, 0) + 1
    pipe.process(recs)
    return pipe.cache["T@W"].encode(), offs["orders"]


def partition_store(blob: bytes, n: int, chunk: int = 10_000) -> InMemoryStateStore:
    """``n`` clones of the template under keys ``S000000@W``..., indexed under partition 0.

    Saved ``chunk`` at a time, so that a million clones never live as objects at once.
    """
    store = InMemoryStateStore()
    for lo in range(0, n, chunk):
        states = []
        for i in range(lo, min(n, lo + chunk)):
            st = SkuState.decode(blob)
            st.key = f"S{i:06d}@W"
            st.reorder = st.overstock = None  # every SKU reorders at the close (position 0 <= s)
            st.position.on_hand = 0
            states.append(st)
        store.save_many(states, {s.key: 0 for s in states})
    return store


def copy_store(src: InMemoryStateStore) -> InMemoryStateStore:
    """An independent copy (the blobs are immutable bytes)."""
    dst = InMemoryStateStore()
    dst._blobs = dict(src._blobs)
    dst._partitions = {p: set(k) for p, k in src._partitions.items()}
    return dst


def crossing(offset: int) -> Record:
    """An order of the first SKU at 02:00 of the day after the template's last: closes that day."""
    ev = _order("S000000", T0 + timedelta(days=DAYS, hours=2), 10**6)
    return Record("orders", 0, offset, ev.key.encode(), encode_event(ev))


def later_orders(offset: int, batches: int, size: int, hot: int) -> list[list[Record]]:
    """``batches`` batches of ``size`` orders of the first ``hot`` SKUs, later the same day."""
    out, k = [], 0
    for _ in range(batches):
        batch = []
        for _j in range(size):
            sku = f"S{k % hot:06d}"
            ev = _order(sku, T0 + timedelta(days=DAYS, hours=3, seconds=k), 2 * 10**6 + k, 1)
            batch.append(Record("orders", 0, offset + k, ev.key.encode(), encode_event(ev)))
            k += 1
        out.append(batch)
    return out


def run_close(settings: Settings, store: InMemoryStateStore, cache: int, offset: int
              ) -> tuple[float, int, dict[str, bytes]]:
    """The close of every SKU (one crossing batch, whole review): seconds, decisions, final states."""
    pipe = Pipeline(SkuProcessor(processor_config(settings)), store, ROLES, cache_size=cache)
    pipe.assign({0})
    t0 = time.perf_counter()
    out = pipe.process([crossing(offset)])
    store.save_many(out.dirty, out.partition_of)
    dt = time.perf_counter() - t0
    return dt, len(out.decisions), {k: st.encode() for k, st in store.load_many(store.keys()).items()}


def run_stall(settings: Settings, store: InMemoryStateStore, chunk: int | None, offset: int,
              batches: int, size: int) -> dict[str, Any]:
    """Batch times after the crossing, with the review whole or in chunks (module docstring B)."""
    n = len(store.keys())
    pipe = Pipeline(SkuProcessor(processor_config(settings)), store, ROLES, cache_size=n + 10,
                    review_chunk_skus=chunk)
    pipe.assign({0})
    queue = [[crossing(offset)], *later_orders(offset + 1, batches, size, hot=min(n, 500))]
    times: list[float] = []
    no_gc: list[float] = []  # batches without a full (generation 2) garbage collection
    t_start = time.perf_counter()
    done_at = None
    decisions = 0
    while queue or pipe.sweeping:
        recs = queue.pop(0) if queue else []
        full = gc.get_stats()[2]["collections"]
        t0 = time.perf_counter()
        out = pipe.process(recs)
        store.save_many(out.dirty, out.partition_of)
        dt = time.perf_counter() - t0
        decisions += len(out.decisions)
        if done_at is None:
            times.append(dt)
            if gc.get_stats()[2]["collections"] == full:
                no_gc.append(dt)
            if not pipe.sweeping:
                done_at = time.perf_counter() - t_start
    return {"chunk": chunk, "batches_during_review": len(times), "max_batch_ms": 1000 * max(times),
            "max_batch_no_full_gc_ms": 1000 * max(no_gc, default=float("nan")),
            "median_batch_ms": 1000 * statistics.median(times), "review_done_s": done_at,
            "decisions": decisions}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skus", type=int, default=10_000)
    ap.add_argument("--cold-cache", type=int, default=500, help="hot cache of the cold run (SKUs)")
    ap.add_argument("--chunk", type=int, default=None, help="review_chunk_skus after (default: the setting)")
    ap.add_argument("--batches", type=int, default=40, help="order batches after the crossing (B)")
    ap.add_argument("--batch", type=int, default=50, help="orders per batch (B)")
    ap.add_argument("--quick", action="store_true", help="--skus 2000")
    ap.add_argument("--json", type=Path, default=OUT / "review_sweep.json")
    a = ap.parse_args(argv)
    if a.quick:
        a.skus = min(a.skus, 2000)
    settings = Settings()
    chunk = a.chunk or settings.review_chunk_skus
    blob, offset = template(settings)
    base = partition_store(blob, a.skus)
    res: dict[str, Any] = {"machine": machine(), "skus": a.skus, "cold_cache": a.cold_cache}
    # A. cached vs cold
    t_hot, d_hot, s_hot = run_close(settings, copy_store(base), a.skus + 10, offset)
    t_cold, d_cold, s_cold = run_close(settings, copy_store(base), a.cold_cache, offset)
    assert s_hot == s_cold and d_hot == d_cold, "the cold close must give the cached close's states"
    us_hot, us_cold = 1e6 * t_hot / a.skus, 1e6 * t_cold / a.skus
    res["close"] = {"cached_us_per_sku": us_hot, "cold_us_per_sku": us_cold,
                    "cold_over_cached": ratio(us_cold, us_hot), "decisions": d_hot, "cached_s": t_hot,
                    "cold_s": t_cold}
    print_table(f"A. Daily close of {a.skus:,} SKUs (process + save, in-memory store; us per SKU)",
                ["cache", "seconds", "us/SKU", "decisions", "vs cached"],
                [[f"all {a.skus:,}", t_hot, us_hot, d_hot, 1.0],
                 [f"{a.cold_cache:,} (cold: {a.skus - a.cold_cache:,})", t_cold, us_cold, d_cold,
                  ratio(us_cold, us_hot)]])
    # B. stall
    before = run_stall(settings, copy_store(base), None, offset, a.batches, a.batch)
    after = run_stall(settings, copy_store(base), chunk, offset, a.batches, a.batch)
    res["stall"] = {"before": before, "after": after,
                    "max_batch_before_over_after": ratio(before["max_batch_ms"], after["max_batch_ms"])}
    rows = [[label, r["chunk"] or "whole", r["max_batch_ms"], r["max_batch_no_full_gc_ms"],
             r["median_batch_ms"], r["batches_during_review"], r["review_done_s"]]
            for label, r in (("before", before), ("after", after))]
    print_table(f"B. Batches of {a.batch} orders during the close of {a.skus:,} SKUs (process + save)",
                ["", "review per batch", "max batch ms", "max w/o full GC", "median ms", "batches",
                 "review done s"], rows)
    write_json(a.json, res)
    return res


if __name__ == "__main__":
    main()
