"""Bench 1: throughput of the restock worker against the framework ceiling, same run.

Publishes the same N real Online Retail orders to two identical topic sets (before any worker
starts), then measures on the same broker, each worker consuming from the beginning:

(a) ``bench/empty_worker.py``: a Faust worker with the same app arguments and the same
    ``noack_take`` + ack loop but an empty body (the framework's ceiling), and
(b) the full restock worker (decode, validate, fence, periods, models, inventory, policy,
    decisions produced to ``reorders``, pipelined fenced Redis writes, ack).

events/s is measured from the moment the group is stable (start-up and join excluded) until
the group has committed every produced offset. Reports (a), (b) and (b)/(a) (target >= 0.8),
and the same per second of the worker process's CPU (what each worker costs, whatever share of
the shared cores it got in its window).
``--rounds 2`` alternates a, b, a, b and reports the medians (noisy shared machines).

    python bench/throughput.py --events 200000 --json out/bench/throughput.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    OUT,
    EmptyWorker,
    GroupWatch,
    bench_settings,
    drain,
    machine,
    online_retail_orders,
    print_table,
    publish,
    ratio,
    restock_worker,
    stack,
    topic_set,
    write_json,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--events", type=int, default=200_000, help="order events (>= 200k for the issue)"
    )
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1, help="a/b pairs; medians reported")
    ap.add_argument("--json", type=Path, default=OUT / "throughput.json")
    args = ap.parse_args()

    t_start = time.perf_counter()
    events = online_retail_orders(args.events)
    runs: dict[str, list[dict]] = {"empty_agent": [], "restock": []}
    with stack() as env:
        for rnd in range(args.rounds):
            configs = []
            for name in ("empty_agent", "restock"):
                run_name = f"{name}{rnd}"
                topics = topic_set(env, run_name, args.partitions)
                targets = publish(env.kafka, topics["orders"], events)
                configs.append((name, run_name, topics, targets))
            for name, run_name, topics, targets in configs:
                s = bench_settings(env, run_name, topics, args.partitions)
                log = env.tmp / f"{run_name}.log"
                w = EmptyWorker(s, log) if name == "empty_agent" else restock_worker(s, log)
                watch = GroupWatch(env.kafka, s.app_id)
                try:
                    r = drain([w], watch, targets)
                finally:
                    watch.close()
                runs[name].append(r)
                print(
                    f"round {rnd} {name:12s} {r['events_per_s']:10.0f} events/s "
                    f"({r['window_events']} events in {r['window_s']:.1f} s)",
                    flush=True,
                )
    a = statistics.median(r["events_per_s"] for r in runs["empty_agent"])
    b = statistics.median(r["events_per_s"] for r in runs["restock"])

    def per_cpu_s(r: dict) -> float | None:
        cpu = r["worker_cpu_s"][0]
        return round(r["window_events"] / cpu, 1) if cpu > 0 else None

    # events per second of worker CPU: what the worker costs, whatever share of the (shared)
    # cores it got during its window
    a_cpu = statistics.median(per_cpu_s(r) or 0.0 for r in runs["empty_agent"])
    b_cpu = statistics.median(per_cpu_s(r) or 0.0 for r in runs["restock"])
    out = {
        "bench": "throughput",
        "events": len(events),
        "partitions": args.partitions,
        "rounds": args.rounds,
        "empty_agent_events_per_s": a,
        "restock_events_per_s": b,
        "ratio_restock_over_empty": ratio(b, a),
        "empty_agent_events_per_cpu_s": a_cpu,
        "restock_events_per_cpu_s": b_cpu,
        "ratio_per_cpu_s": ratio(b_cpu, a_cpu),
        "target": ">= 0.8",
        "met": (b / a) >= 0.8,
        "restock_worker_rss_peak_bytes": max(
            r["worker_rss_peak_bytes"][0] for r in runs["restock"]
        ),
        "empty_worker_rss_peak_bytes": max(
            r["worker_rss_peak_bytes"][0] for r in runs["empty_agent"]
        ),
        "runs": runs,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": machine(),
    }
    print_table(
        f"1. throughput vs framework ceiling ({len(events):,} Online Retail orders, "
        f"{args.partitions} partitions, 1 worker)",
        ["worker", "events/s", "ratio", "events per worker CPU s", "ratio"],
        [
            ["(a) Faust, empty agent", a, 1.0, a_cpu, 1.0],
            ["(b) restock worker", b, out["ratio_restock_over_empty"], b_cpu, out["ratio_per_cpu_s"]],
        ],
    )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
