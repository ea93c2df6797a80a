"""Profile of the worker hot path: where one event's time goes, per stage (cProfile).

Drives the worker's own :class:`agents.pipeline.Pipeline` (decode, fence, apply, decide,
encode) and :meth:`streams.redis_state.RedisStateStore.save_many` (fenced Lua writes, one
pipelined round trip per batch) in this process, in batches of ``flush_every_events`` real
Online Retail orders, against a real redis-server; exactly what ``streams.app.apply_events``
does per batch minus Faust (consume, produce, ack, commit). The first ``--skip`` orders are
processed unprofiled so the profiled window is the steady state (SKUs past their 28 learning
days, deciding); ``--skip 0`` profiles the cold start.

Stages are cumulative times of the named functions (nested stages overlap: ``processor.apply``
contains the model, policy and decision stages), in microseconds per event. The per-event
Faust cost is taken from bench 1 (``--throughput-json``): 1 / events/s of the empty agent.

    python bench/profile_hot_path.py --skip 40000 --events 20000 --json out/bench/profile.json

Garbage collection: every collection in the measured window is timed through ``gc.callbacks``
(count and seconds per generation, and their share of the window's wall time). ``--gc-freeze``
and ``--gc-gen0-threshold`` apply the worker's start-up settings (``RESTOCK_GC_FREEZE``,
``RESTOCK_GC_GEN0_THRESHOLD``, :func:`streams.gc_tuning.apply`) to this process, and
``--no-cprofile`` times the window without cProfile (wall time and GC only), which is what to
compare the GC settings with.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    OUT,
    machine,
    online_retail_orders,
    print_table,
    redis_ca_file,
    stack,
    write_json,
)

# (label, file suffix, function name): cumulative time of that function
STAGES: list[tuple[str, str, str]] = [
    ("pipeline.process (all in-process work but Redis save)", "agents/pipeline.py", "process"),
    ("  decode + validate (pydantic)", "schemas/codec.py", "decode_for_topic_role"),
    ("  state load on cache miss (Redis HMGET + decode)", "agents/pipeline.py", "_ensure_loaded"),
    ("  processor.apply", "agents/processor/dispatch.py", "apply"),
    ("    demand periods (add/advance)", "agents/demand.py", "add"),
    ("    forecaster learn_one (closed periods)", "agents/forecasting/selection.py", "learn_one"),
    ("    processor.decide (policy + decisions)", "agents/processor/decisions.py", "decide"),
    ("      processor.derived (forecast + levels)", "agents/processor/derived.py", "derived"),
    ("      forecast_distribution", "agents/forecasting/selection.py", "forecast_distribution"),
    ("      policy.compute_levels", "agents/policy/levels.py", "compute_levels"),
    ("      projection (project_inventory)", "agents/policy/projection.py", "project_inventory"),
    ("      build ReorderSuggested (pydantic)", "agents/processor/decisions.py", "_reorder"),
    ("      build OverstockDetected (pydantic)", "agents/processor/decisions.py", "_overstock"),
    ("  partition watermark (silent SKUs)", "agents/pipeline.py", "_advance_partition"),
    ("  encode decisions (encode_event)", "schemas/codec.py", "encode_event"),
    ("save_many (encode state + Redis round trip)", "streams/redis_state.py", "save_many"),
    ("  encode_core (msgpack)", "agents/state.py", "encode_core"),
    ("  encode_model (forecaster bytes)", "agents/state.py", "encode_model"),
    ("  Redis pipeline execute", "redis/client.py", "execute"),
]


class GcPauses:
    """Count and time the garbage collector's runs per generation (a ``gc.callbacks`` entry)."""

    def __init__(self) -> None:
        self.count: dict[int, int] = {}
        self.seconds: dict[int, float] = {}
        self.longest = 0.0
        self._t0 = 0.0

    def callback(self, phase: str, info: dict[str, int]) -> None:
        """``gc.callbacks`` hook: ``phase`` is "start" or "stop", ``info["generation"]`` 0-2."""
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        dt = time.perf_counter() - self._t0
        g = info["generation"]
        self.count[g] = self.count.get(g, 0) + 1
        self.seconds[g] = self.seconds.get(g, 0.0) + dt
        self.longest = max(self.longest, dt)


def stage_times(stats: pstats.Stats) -> dict[str, dict[str, float]]:
    """Cumulative seconds and calls of each stage function (summed over same-named matches)."""
    out: dict[str, dict[str, float]] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for label, file_suffix, func in STAGES:
        cum, calls = 0.0, 0
        for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in raw.items():
            if name == func and filename.replace("\\", "/").endswith(file_suffix):
                cum += ct
                calls += nc
        out[label] = {"cum_s": cum, "calls": calls}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", type=int, default=40_000, help="orders processed before profiling")
    ap.add_argument("--events", type=int, default=20_000, help="orders profiled")
    ap.add_argument("--batch", type=int, default=500, help="flush_every_events")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--throughput-json", type=Path, default=OUT / "throughput.json")
    ap.add_argument(
        "--top", type=int, default=25, help="also print the top N functions by own time"
    )
    ap.add_argument("--json", type=Path, default=OUT / "profile.json")
    ap.add_argument("--pstats", type=Path, default=None, help="also dump the cProfile stats here")
    ap.add_argument("--no-cprofile", action="store_true",
                    help="time the window without cProfile (wall time and GC pauses only)")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="the worker's gc_freeze: freeze the heap after each batch's states are saved")
    ap.add_argument("--gc-gen0-threshold", type=int, default=None,
                    help="the worker's gc_gen0_threshold (default: Python's, 700)")
    args = ap.parse_args()

    from agents.pipeline import Pipeline, Record
    from agents.processor import SkuProcessor
    from schemas.events import encode_event
    from streams.clients import redis_client
    from streams.config import processor_config
    from streams.redis_state import RedisStateStore
    from streams.settings import Settings

    events = online_retail_orders(args.skip + args.events)
    offsets = [0] * args.partitions
    records = []
    for ev in events:
        p = hash(ev.key) % args.partitions  # any stable partitioning; the pipeline only needs one
        records.append(
            Record(
                "orders",
                p,
                offsets[p],
                ev.key.encode(),
                encode_event(ev),
                int(ev.occurred_at.timestamp() * 1000),
            )
        )
        offsets[p] += 1
    with stack() as env:
        settings = Settings(redis_url=env.redis_url, redis_key_prefix=f"profile-{env.run}")
        store = RedisStateStore(
            redis_client(env.redis_url, redis_ca_file(), socket_timeout=10, socket_connect_timeout=5),
            settings.redis_key_prefix, settings.cold_sku_ttl_s,
        )
        pipe = Pipeline(
            SkuProcessor(processor_config(settings)),
            store,
            {"orders": "orders"},
            cache_size=settings.hot_sku_cache_size,
        )
        decisions = 0
        from streams.gc_tuning import GcTuning

        tuning = GcTuning(freeze=args.gc_freeze, gen0_threshold=args.gc_gen0_threshold)
        tuning.apply()

        def run(recs: list[Any]) -> None:
            nonlocal decisions
            for i in range(0, len(recs), args.batch):
                out = pipe.process(recs[i : i + args.batch])
                decisions += len(out.decisions)
                store.save_many(out.dirty, out.partition_of)
                tuning.after_batch()

        t0 = time.perf_counter()
        run(records[: args.skip])
        warm_s = time.perf_counter() - t0
        decisions = 0
        pauses = GcPauses()
        prof = cProfile.Profile()
        gc.callbacks.append(pauses.callback)
        t0 = time.perf_counter()
        if not args.no_cprofile:
            prof.enable()
        run(records[args.skip :])
        if not args.no_cprofile:
            prof.disable()
        wall = time.perf_counter() - t0
        gc.callbacks.remove(pauses.callback)
    n = len(records) - args.skip
    gc_out = {
        "freeze": args.gc_freeze,
        "thresholds": list(gc.get_threshold()),
        "collections": {str(g): c for g, c in sorted(pauses.count.items())},
        "seconds": {str(g): round(v, 4) for g, v in sorted(pauses.seconds.items())},
        "longest_s": round(pauses.longest, 4),
        "share_of_wall": round(sum(pauses.seconds.values()) / wall, 4),
    }
    print(f"window: {n:,} orders in {wall:.2f} s ({1e6 * wall / n:.0f} us/order"
          f"{'' if args.no_cprofile else ', cProfile on'}); GC {gc_out}", flush=True)
    if args.no_cprofile:
        write_json(args.json, {"bench": "profile", "skip": args.skip, "events": n, "batch": args.batch,
                               "decisions_in_window": decisions, "wall_s": round(wall, 3),
                               "us_per_event": round(1e6 * wall / n, 1), "gc": gc_out,
                               "machine": machine()})
        return
    if args.pstats is not None:
        prof.dump_stats(str(args.pstats))
    stats = pstats.Stats(prof)
    stages = stage_times(stats)
    faust_us = None
    if args.throughput_json and args.throughput_json.exists():
        tj = json.loads(args.throughput_json.read_text())
        faust_us = 1e6 / tj["empty_agent_events_per_s"]
        worker_us = 1e6 / tj["restock_events_per_s"]
    else:
        worker_us = None
    rows = [
        [label, v["calls"], 1e6 * v["cum_s"] / n, v["cum_s"] / wall] for label, v in stages.items()
    ]
    if faust_us is not None:
        rows.append(
            ["Faust consume/ack/commit (1 / empty-agent events/s, bench 1)", None, faust_us, None]
        )
        rows.append(["whole worker (1 / restock events/s, bench 1)", None, worker_us, None])
    own = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[: args.top]  # type: ignore[attr-defined]
    top = [
        {
            "function": f"{Path(fn).name}:{line}:{name}",
            "own_us_per_event": 1e6 * tt / n,
            "cum_us_per_event": 1e6 * ct / n,
            "calls": nc,
        }
        for (fn, line, name), (_cc, nc, tt, ct, _c) in own
    ]
    out = {
        "bench": "profile",
        "skip": args.skip,
        "events": n,
        "batch": args.batch,
        "decisions_in_window": decisions,
        "warmup_s": round(warm_s, 2),
        "profiled_wall_s": round(wall, 2),
        "profiled_us_per_event": round(1e6 * wall / n, 1),
        "stages_us_per_event": {k: round(1e6 * v["cum_s"] / n, 1) for k, v in stages.items()},
        "stage_calls": {k: v["calls"] for k, v in stages.items()},
        "faust_us_per_event_empty_agent": faust_us,
        "worker_us_per_event": worker_us,
        "top_own_time": top,
        "gc": gc_out,
        "note": "cProfile inflates small calls ~1.5-2x; compare stages with each other",
        "machine": machine(),
    }
    print_table(
        f"hot path per event (cProfile, orders {args.skip:,}..{args.skip + n:,}, "
        f"{decisions:,} decisions, {1e6 * wall / n:.0f} us/event profiled)",
        ["stage (cumulative; indented = nested)", "calls", "us/event", "share"],
        rows,
    )
    print_table(
        "top functions by own time",
        ["function", "calls", "own us/event", "cum us/event"],
        [[t["function"], t["calls"], t["own_us_per_event"], t["cum_us_per_event"]] for t in top],
    )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
