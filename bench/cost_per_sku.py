"""Bench 4: cost per SKU@location: Redis bytes, worker memory, and events/s vs SKU count.

A. **Online Retail replay** (``--replay-events``, default all cleaned order lines): one restock
   worker drains them; then ``MEMORY USAGE`` of every SKU's keys (one hash per SKU@location,
   ``{prefix}:{sku@location}:state``; median and p99), each SKU's share of the per-partition
   index sets, the worker's peak RSS, and a Redis Cluster check: every key carrying a SKU's
   hash tag maps to one slot (CRC16 of the tag), listed with the keys that carry no SKU tag.
B. **Synthetic SKUs**: the same number of order events (``--synthetic-events``) spread
   uniformly over 10k, 100k and 1M SKUs (``--skus``) and ``--days`` days of event time, with
   ``hot_sku_cache_size`` = ``--cache-size`` (below every SKU count: cold SKUs are evicted and
   rehydrated from Redis). Baseline: the smallest SKU count, same run. events/s should stay flat
   (ratio ~1) and peak worker RSS stay bounded by the cache, not the SKU count.

    python bench/cost_per_sku.py --json out/bench/cost_per_sku.json
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    OUT,
    GroupWatch,
    bench_settings,
    drain,
    key_slot,
    machine,
    online_retail_orders,
    percentiles,
    print_table,
    publish,
    ratio,
    redis_ca_file,
    restock_worker,
    stack,
    topic_set,
    write_json,
)


def synthetic_orders(n: int, skus: int, days: int, seed: int = 7) -> list[Any]:
    """``n`` orders over ``skus`` SKUs (uniform), event time evenly over ``days`` days."""
    from schemas.events import OrderPlaced

    rng = random.Random(seed)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    step = days * 86400.0 / n
    return [
        OrderPlaced(
            event_id=f"s{i}",
            occurred_at=t0 + timedelta(seconds=i * step),
            sku=f"SYN{rng.randrange(skus):07d}",
            location="WH1",
            order_id=f"o{i}",
            quantity=1 + rng.randrange(5),
            unit_price=1.0,
        )
        for i in range(n)
    ]


def redis_footprint(redis_url: str, prefix: str) -> dict[str, Any]:
    """Bytes per SKU (MEMORY USAGE over its keys), index share, and the Cluster slot check."""
    from streams.clients import redis_client

    r = redis_client(redis_url, redis_ca_file())
    per_tag: dict[str, list[tuple[str, int]]] = {}
    untagged: list[str] = []
    keys = [k.decode() for k in r.scan_iter(match=f"{prefix}:*", count=2000)]
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.memory_usage(k, samples=0)
    sizes = pipe.execute()
    untagged_bytes = 0
    for k, size in zip(keys, sizes, strict=True):
        a, b = k.find("{"), k.find("}")
        if a >= 0 and b > a + 1:
            per_tag.setdefault(k[a + 1 : b], []).append((k, int(size or 0)))
        else:
            untagged.append(k)
            untagged_bytes += int(size or 0)
    per_sku = [sum(s for _, s in v) for v in per_tag.values()]
    # where a SKU's bytes go: length of each part of the state value (median over SKUs)
    from streams.redis_state import decode_value

    state_keys = [k for v in per_tag.values() for k, _ in v if k.endswith(":state")]
    pipe = r.pipeline(transaction=False)
    for k in state_keys:
        pipe.get(k)
    parts: dict[str, list[int]] = {"value": [], "core": [], "model": []}
    for raw in pipe.execute():
        if raw:
            _, core, model, _, _ = decode_value(raw)
            parts["value"].append(len(raw))
            parts["core"].append(len(core))
            parts["model"].append(len(model))
    field_bytes = {f: percentiles(v, (50,))["p50"] for f, v in parts.items() if v}
    one_slot = all(len({key_slot(k) for k, _ in v}) == 1 for v in per_tag.values())
    p = percentiles(per_sku, (50, 99))
    n = max(1, len(per_tag))
    return {
        "skus": len(per_tag),
        "keys_per_sku_max": max((len(v) for v in per_tag.values()), default=0),
        "bytes_per_sku_median": p["p50"],
        "bytes_per_sku_p99": p["p99"],
        "field_value_bytes_median": field_bytes,
        "index_sets": sorted(untagged),
        "index_bytes_per_sku": round(untagged_bytes / n, 1),
        "cluster_one_slot_per_sku": one_slot,
        "index_sets_slots": {k: key_slot(k) for k in sorted(untagged)},
        "used_memory_bytes": int(r.info("memory")["used_memory"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--replay-events", type=int, default=None, help="Online Retail lines (default: all)"
    )
    ap.add_argument("--synthetic-events", type=int, default=100_000)
    ap.add_argument("--skus", default="10000,100000,1000000")
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument(
        "--cache-size", type=int, default=5_000, help="hot_sku_cache_size (synthetic part)"
    )
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--skip-replay", action="store_true")
    ap.add_argument("--json", type=Path, default=OUT / "cost_per_sku.json")
    args = ap.parse_args()

    t_start = time.perf_counter()
    sku_counts = [int(x) for x in args.skus.split(",") if x]
    if any(k <= args.cache_size for k in sku_counts):
        ap.error("--cache-size must be below every SKU count (cold SKUs must be evicted)")
    out: dict[str, Any] = {"bench": "cost_per_sku", "partitions": args.partitions}
    with stack() as env:
        if not args.skip_replay:
            events = online_retail_orders(args.replay_events)
            topics = topic_set(env, "replay", args.partitions)
            targets = publish(env.kafka, topics["orders"], events)
            s = bench_settings(env, "replay", topics, args.partitions)
            watch = GroupWatch(env.kafka, s.app_id)
            try:
                r = drain([restock_worker(s, env.tmp / "replay.log")], watch, targets)
            finally:
                watch.close()
            fp = redis_footprint(env.redis_url, s.redis_key_prefix)
            out["replay"] = {
                "events": len(events),
                "events_per_s": r["events_per_s"],
                "worker_rss_peak_bytes": r["worker_rss_peak_bytes"][0],
                "hot_sku_cache_size": s.hot_sku_cache_size,
                **fp,
                "target_bytes_per_sku_median": 2048,
                "met": fp["bytes_per_sku_median"] is not None
                and fp["bytes_per_sku_median"] <= 2048,
            }
            print(
                f"replay: {len(events)} events, {r['events_per_s']:.0f} events/s, "
                f"{fp['skus']} SKUs, median {fp['bytes_per_sku_median']:.0f} B/SKU",
                flush=True,
            )
        syn: list[dict[str, Any]] = []
        for k in sku_counts:
            events = synthetic_orders(args.synthetic_events, k, args.days)
            name = f"syn{k}"
            topics = topic_set(env, name, args.partitions)
            targets = publish(env.kafka, topics["orders"], events)
            s = bench_settings(
                env, name, topics, args.partitions, hot_sku_cache_size=args.cache_size
            )
            watch = GroupWatch(env.kafka, s.app_id)
            try:
                r = drain([restock_worker(s, env.tmp / f"{name}.log")], watch, targets)
            finally:
                watch.close()
            distinct = len({e.key for e in events})
            syn.append(
                {
                    "skus": k,
                    "distinct_skus_touched": distinct,
                    "events": len(events),
                    "events_per_s": r["events_per_s"],
                    "worker_rss_peak_bytes": r["worker_rss_peak_bytes"][0],
                }
            )
            print(
                f"synthetic {k} SKUs: {r['events_per_s']:.0f} events/s, "
                f"RSS {r['worker_rss_peak_bytes'][0] / 2**20:.0f} MiB",
                flush=True,
            )
    base = syn[0] if syn else None
    for row in syn:
        row["events_per_s_ratio"] = ratio(row["events_per_s"], base["events_per_s"])
        row["rss_ratio"] = ratio(row["worker_rss_peak_bytes"], base["worker_rss_peak_bytes"])
    out.update(
        {
            "synthetic": syn,
            "synthetic_days": args.days,
            "hot_sku_cache_size": args.cache_size,
            "events_per_s_flat": all(0.8 <= (r["events_per_s_ratio"] or 0) <= 1.25 for r in syn),
            "rss_bounded": all((r["rss_ratio"] or 0) <= 1.25 for r in syn),
            "wall_s": round(time.perf_counter() - t_start, 1),
            "machine": machine(),
        }
    )
    if "replay" in out:
        rp = out["replay"]
        print_table(
            f"4a. Redis per SKU@location after an Online Retail replay ({rp['events']:,} orders)",
            ["measure", "value"],
            [
                ["SKUs", rp["skus"]],
                ["keys per SKU (max)", rp["keys_per_sku_max"]],
                ["bytes/SKU median (MEMORY USAGE)", rp["bytes_per_sku_median"]],
                ["bytes/SKU p99", rp["bytes_per_sku_p99"]],
                ["partition index bytes/SKU", rp["index_bytes_per_sku"]],
                ["median / 2 KB target", ratio(rp["bytes_per_sku_median"], 2048)],
                ["one Cluster slot per SKU", rp["cluster_one_slot_per_sku"]],
                ["worker RSS peak (MiB)", rp["worker_rss_peak_bytes"] / 2**20],
                ["events/s", rp["events_per_s"]],
            ],
        )
    print_table(
        f"4b. synthetic SKUs ({args.synthetic_events:,} orders each, "
        f"hot_sku_cache_size={args.cache_size:,})",
        ["SKUs", "touched", "events/s", "ratio", "RSS MiB", "RSS ratio"],
        [
            [
                r["skus"],
                r["distinct_skus_touched"],
                r["events_per_s"],
                r["events_per_s_ratio"],
                r["worker_rss_peak_bytes"] / 2**20,
                r["rss_ratio"],
            ]
            for r in syn
        ],
    )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
