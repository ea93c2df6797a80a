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

``--store`` instead measures the state store alone, same run: ms per batch (load 50 SKU states,
save them with their index and progress) on one redis-server vs on the cluster, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import signal
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
    machine,
    online_retail_orders,
    print_table,
    publish,
    ratio,
    restock_worker,
    topic_set,
    write_json,
)


def _answered(port: int, timeout_s: float = 10.0) -> bool:
    """``/health/ready`` answered 200 within ``timeout_s`` (a busy worker answers late)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=timeout_s) as r:  # noqa: S310
            return bool(r.status == 200)
    except OSError:
        return False


def _drain(workers: list, watch: GroupWatch, targets: dict, timeout_s: float = 1800.0) -> dict:
    """Like ``common.drain``, with a patient readiness check.

    ``common.drain`` waits for ``/health/ready`` with a 1 s timeout; a worker that is already
    draining a full backlog on a shared 2-core machine answers in 2-3 s (its event loop is busy),
    so it never looks ready. Here the window starts once every worker has answered 200 once
    (10 s timeout); the events committed before are excluded from the window.
    """
    for w in workers:
        w.start()
    try:
        deadline, pending = time.monotonic() + 300, list(workers)
        while pending:
            for w in workers:
                if w.proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {w.proc.returncode}:\n{w.log_tail()}")
            pending = [w for w in pending if not _answered(w.settings.web_port)]
            if pending and time.monotonic() > deadline:
                raise TimeoutError("workers not ready:\n" + "\n".join(w.log_tail() for w in pending))
            time.sleep(0.1)
        n = sum(targets.values())
        c0, t0 = watch.done(targets), time.perf_counter()
        cpu0 = [cpu_seconds(w.pid) for w in workers]
        while (c := watch.done(targets)) < n:
            if time.perf_counter() - t0 > timeout_s:
                raise TimeoutError(f"only {c}/{n} events committed after {timeout_s:.0f}s")
            time.sleep(0.05)
        dt = time.perf_counter() - t0
        cpu = [round(cpu_seconds(w.pid) - c, 2) for c, w in zip(cpu0, workers, strict=True)]
        return {"worker_cpu_s": cpu, "events": n, "window_events": n - c0, "window_s": round(dt, 3),
                "events_per_s": round((n - c0) / dt, 1) if dt > 0 else None,
                "loadavg_1m_at_end": round(os.getloadavg()[0], 2)}
    finally:
        for w in workers:
            w.stop()


def store_batches() -> None:
    """``--store``: ms per batch of the state store, single redis-server vs the cluster (ratio)."""
    from agents.state import SkuState
    from streams.clients import redis_client
    from streams.ports import free_port
    from streams.redis_cluster import LocalRedisCluster
    from streams.redis_state import RedisStateStore
    from streams.stack import REDIS, LocalStack

    def state(key: str, b: int) -> SkuState:
        s = SkuState.new(key)
        s.mark_applied("orders", b % 8, b)
        s.updated_at = 1_300_000_000 + b
        return s

    def run(store: RedisStateStore, batches: int = 100, per: int = 50) -> float:
        t0 = time.perf_counter()
        for b in range(batches):
            keys = [f"S{(b * 7 + i) % 400}@W" for i in range(per)]
            store.load_many(keys)
            store.save_many([state(k, b) for k in keys], {k: b % 8 for k in keys},
                            progress={("orders", b % 8): b}, expected={})
        return (time.perf_counter() - t0) / batches * 1000

    tmp = Path(tempfile.mkdtemp(prefix="restock-bench-"))
    single = LocalStack(tmp / "single", free_port(), free_port())
    cluster = LocalRedisCluster(tmp / "cluster", masters=3)
    try:
        single.up(which=[REDIS])
        cluster.up()
        one = RedisStateStore(redis_client(single.redis_url), "b")
        many = RedisStateStore(redis_client(cluster.url), "b")
        run(one, 20), run(many, 20)  # warm-up
        rows = []
        for rep in range(3):
            a, c = run(one), run(many)
            rows.append([str(rep + 1), round(a, 2), round(c, 2), ratio(c, a)])
    finally:
        cluster.down()
        single.down(which=[REDIS])
    print_table("state store, ms per batch of 50 SKUs (load + save + progress)",
                ["rep", "single redis-server", "cluster (3 masters)", "ratio"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--masters", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=0)
    ap.add_argument("--json", type=Path, default=OUT / "scaleout_cluster.json")
    ap.add_argument("--store", action="store_true", help="measure the state store alone (see above)")
    args = ap.parse_args()
    if args.store:
        store_batches()
        return
    if 1 not in args.workers:
        ap.error("--workers must include 1 (the baseline)")

    from streams.ports import free_port
    from streams.redis_cluster import LocalRedisCluster
    from streams.stack import KAFKA, LocalStack

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop every process
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
                r = _drain(workers, watch, targets)
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
