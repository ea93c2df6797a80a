"""Bench 2: scale-out, 1 vs 2 restock workers in one consumer group, same run.

Publishes the same N real Online Retail orders to two identical topic sets with
``--partitions`` (>= 4) partitions, then drains one with a single restock worker and the other
with two workers in one group. events/s is measured from the moment every worker has been ready
(partitions assigned) for ``settle_s`` until the group has committed every produced offset.
Reports both rates and the speed-up (target >= 1.6 on 2 cores).

    python bench/scaleout.py --events 200000 --json out/bench/scaleout.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    OUT,
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
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--json", type=Path, default=OUT / "scaleout.json")
    args = ap.parse_args()
    if args.partitions < 2:
        ap.error("--partitions must be >= 2")

    t_start = time.perf_counter()
    events = online_retail_orders(args.events)
    res: dict[int, dict] = {}
    with stack() as env:
        configs = []
        for n in (1, 2):
            topics = topic_set(env, f"scale{n}", args.partitions)
            configs.append((n, topics, publish(env.kafka, topics["orders"], events)))
        for n, topics, targets in configs:
            s = bench_settings(env, f"scale{n}", topics, args.partitions)
            workers = []
            for i in range(n):
                from streams.ports import free_port

                si = s.model_copy(
                    update={"web_port": free_port(), "worker_data_dir": env.tmp / f"scale{n}-{i}"}
                )
                workers.append(restock_worker(si, env.tmp / f"scale{n}-{i}.log"))
            watch = GroupWatch(env.kafka, s.app_id)
            try:
                res[n] = drain(workers, watch, targets, settle_s=3.0)
            finally:
                watch.close()
            print(f"{n} worker(s): {res[n]['events_per_s']:.0f} events/s", flush=True)
    one, two = res[1]["events_per_s"], res[2]["events_per_s"]
    out = {
        "bench": "scaleout",
        "events": len(events),
        "partitions": args.partitions,
        "one_worker_events_per_s": one,
        "two_workers_events_per_s": two,
        "speedup": ratio(two, one),
        "target": ">= 1.6",
        "met": two / one >= 1.6,
        "runs": {str(k): v for k, v in res.items()},
        "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": machine(),
    }
    print_table(
        f"2. scale-out ({len(events):,} orders, {args.partitions} partitions, one group)",
        ["workers", "events/s", "speed-up"],
        [["1", one, 1.0], ["2", two, out["speedup"]]],
    )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
