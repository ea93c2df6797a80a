"""Bench: scale-out on a Redis Cluster, 1, 2 and 4 restock workers in one group on 8 partitions.

The embedded broker (Tansu) plus a local Redis Cluster (:mod:`streams.redis_cluster`, 3
masters by default) on this machine. The same N real Online Retail orders are published to
three identical topic sets of ``--partitions`` partitions; each set is drained by 1, 2 or 4
workers (one process each) in one consumer group. Reported per run: events/s over the
measured window (every worker ready, until the group committed every offset; start-up
excluded), the wall speed-up against 1 worker (same run), the CPU seconds of every process
(broker, each Redis node, each worker; ``/proc``) over the drain, and the events per worker CPU
second with its ratio to 1 worker: the efficiency that scales on a real cluster, where each
worker has its own cores. On a 2-core machine the broker, the Redis nodes and the workers
share the cores, so the wall speed-up is capped by the machine, not by restock.

    python bench/scaleout_cluster.py --events 60000 --json out/bench/scaleout_cluster.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    OUT,
    Env,
    GroupWatch,
    bench_settings,
    cpu_seconds,
    drain,
    machine,
    online_retail_orders,
    print_table,
    publish,
    ratio,
    restock_worker,
    topic_set,
    write_json,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--masters", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=0)
    ap.add_argument("--json", type=Path, default=OUT / "scaleout_cluster.json")
    args = ap.parse_args()
    if 1 not in args.workers:
        ap.error("--workers must include 1 (the baseline)")

    from streams.ports import free_port
    from streams.redis_cluster import LocalRedisCluster
    from streams.stack import KAFKA, LocalStack

    t_start = time.perf_counter()
    events = online_retail_orders(args.events)
    tmp = Path(tempfile.mkdtemp(prefix="restock-bench-"))
    broker = LocalStack(tmp / "stack", free_port(), free_port())
    cluster = LocalRedisCluster(tmp / "cluster", masters=args.masters, replicas=args.replicas)
    res: dict[int, dict] = {}
    try:
        broker.up(which=[KAFKA])
        cluster.up()
        env = Env(broker.kafka_bootstrap, cluster.url, tmp, tmp.name.removeprefix("restock-bench-"))
        configs = []
        for n in args.workers:
            topics = topic_set(env, f"cscale{n}", args.partitions)
            configs.append((n, topics, publish(env.kafka, topics["orders"], events)))
        broker_pid = broker.pid(KAFKA)
        assert broker_pid is not None
        for n, topics, targets in configs:
            s = bench_settings(env, f"cscale{n}", topics, args.partitions)
            workers = [restock_worker(s.model_copy(update={"web_port": free_port(),
                                                          "worker_data_dir": env.tmp / f"cscale{n}-{i}"}),
                                      env.tmp / f"cscale{n}-{i}.log") for i in range(n)]
            nodes = cluster.pids()
            pids = {"broker": broker_pid} | {f"redis:{p}": pid for p, pid in nodes.items()}
            cpu0 = {k: cpu_seconds(pid) for k, pid in pids.items()}
            watch = GroupWatch(env.kafka, s.app_id)
            try:
                r = drain(workers, watch, targets, settle_s=3.0)
            finally:
                watch.close()
            r["service_cpu_s"] = {k: round(cpu_seconds(pid) - cpu0[k], 2) for k, pid in pids.items()}
            worker_cpu = sum(r["worker_cpu_s"])
            r["events_per_worker_cpu_s"] = round(r["window_events"] / worker_cpu, 1) if worker_cpu else None
            res[n] = r
            print(f"{n} worker(s): {r['events_per_s']:.0f} events/s, worker CPU {r['worker_cpu_s']} s, "
                  f"services {r['service_cpu_s']}", flush=True)
    finally:
        cluster.down()
        broker.down()
    base = res[1]
    rows, runs = [], {}
    for n, r in res.items():
        speedup = ratio(r["events_per_s"], base["events_per_s"])
        eff = ratio(r["events_per_worker_cpu_s"], base["events_per_worker_cpu_s"])
        redis_cpu = round(sum(v for k, v in r["service_cpu_s"].items() if k.startswith("redis:")), 1)
        rows.append([str(n), r["events_per_s"], speedup, r["events_per_worker_cpu_s"], eff,
                     round(sum(r["worker_cpu_s"]), 1), r["service_cpu_s"]["broker"], redis_cpu,
                     r["window_s"]])
        runs[str(n)] = r | {"speedup": speedup, "efficiency_vs_1": eff}
    out = {
        "bench": "scaleout_cluster",
        "events": len(events),
        "partitions": args.partitions,
        "redis": f"cluster, {args.masters} masters x {args.replicas} replicas (local)",
        "runs": runs,
        "targets": {"efficiency_vs_1": ">= 0.9", "speedup_2_workers": ">= 1.6 where the machine allows"},
        "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": machine(),
    }
    print_table(
        f"scale-out on a Redis Cluster ({len(events):,} orders, {args.partitions} partitions, one group)",
        ["workers", "events/s", "speed-up", "ev/worker-CPU-s", "efficiency", "worker CPU s",
         "broker CPU s", "redis CPU s", "window s"],
        rows,
    )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
