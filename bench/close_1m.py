"""Bench: one daily close of a million SKUs in one worker's pipeline, cold, in bounded memory.

Issue #19 asks that the daily close of every SKU of a 1M-SKU worker completes, emits its
decisions, and reports its duration, with the worker's memory bounded and stated per SKU.

``--skus`` clones (default 1,000,000) of a template SKU with 30 learned days (stock 0 and no open
suggestion: every SKU reorders at the close; ``bench/review_sweep.py``'s template), stored in the
in-memory state store (every state encoded and decoded as in Redis; no network: it stands in for
Redis, and its blobs are not the worker's memory), all under partition 0. A pipeline with
restock's default settings and a hot cache of ``--cache`` SKUs is assigned the partition, one
order crossing midnight (+ the allowed lateness) starts the close, and the close runs as the
worker runs it: review-only batches of ``FORCED_REVIEW_CHUNK_SKUS`` keys (the committer's drain
of a review that fell behind; the ticks use ``review_chunk_skus``), each saved before the next.

Reported: the close's wall time and time per SKU, the decisions, and the process's RSS before
the close (the store's blobs, the cached states) and its peak during the close: the difference
is what the close costs in memory, which must not grow with the SKU count (``--skus`` 100000
against 1000000 says whether it does).

    python bench/close_1m.py [--skus 1000000] [--cache 5000] [--json out/bench/close_1m.json]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, machine, print_table, write_json  # noqa: E402
from review_sweep import ROLES, crossing, partition_store, template  # noqa: E402

from agents.pipeline import Pipeline  # noqa: E402
from agents.processor import SkuProcessor  # noqa: E402
from streams.committer import FORCED_REVIEW_CHUNK_SKUS  # noqa: E402
from streams.config import processor_config  # noqa: E402
from streams.settings import Settings  # noqa: E402


def rss() -> int:
    """Resident set size of this process, bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skus", type=int, default=1_000_000)
    ap.add_argument("--cache", type=int, default=5_000, help="hot_sku_cache_size")
    ap.add_argument("--json", type=Path, default=OUT / "close_1m.json")
    a = ap.parse_args(argv)
    settings = Settings()
    blob, offset = template(settings)
    t0 = time.perf_counter()
    store = partition_store(blob, a.skus)
    seeded_s = time.perf_counter() - t0
    pipe = Pipeline(SkuProcessor(processor_config(settings)), store, ROLES, cache_size=a.cache,
                    review_chunk_skus=settings.review_chunk_skus)
    pipe.assign({0})
    gc.collect()
    rss_before = peak = rss()
    decisions = batches = 0
    t0 = time.perf_counter()
    out = pipe.process([crossing(offset)])
    while True:
        store.save_many(out.dirty, out.partition_of)
        decisions += len(out.decisions)
        batches += 1
        if batches % 50 == 0:
            peak = max(peak, rss())
        if not pipe.sweeping:
            break
        out = pipe.process([], FORCED_REVIEW_CHUNK_SKUS)
    close_s = time.perf_counter() - t0
    peak = max(peak, rss())
    res = {"skus": a.skus, "cache": a.cache, "seeded_s": seeded_s, "close_s": close_s,
           "us_per_sku": 1e6 * close_s / a.skus, "decisions": decisions, "batches": batches,
           "rss_before_bytes": rss_before, "rss_peak_bytes": peak,
           "rss_growth_bytes": peak - rss_before, "rss_growth_bytes_per_sku": (peak - rss_before) / a.skus,
           "machine": machine()}
    print_table(f"Daily close of {a.skus:,} cold SKUs (cache {a.cache:,}; in-memory store)",
                ["SKUs", "close s", "us/SKU", "decisions", "RSS before MiB", "RSS peak MiB", "growth B/SKU"],
                [[a.skus, close_s, res["us_per_sku"], decisions, rss_before / 2**20, peak / 2**20,
                  res["rss_growth_bytes_per_sku"]]])
    write_json(a.json, res)
    return res


if __name__ == "__main__":
    main()
