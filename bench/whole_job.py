"""Bench 6: wall time of the README's main job, ``restock demo`` with its default arguments.

Runs ``python -m streams.cli demo`` from this checkout (default data, 300 SKUs, daily,
closed loop) on its own embedded stack (free ports, a scratch stack directory, so it cannot
collide with a stack already running), writing its KPI JSON under ``out/bench/``. Measures the
wall time of the whole command (stack start to stop) and reads the demo's own ``run`` block.

Baselines in the same run: the 3-minute target, and the *compute floor*: the events the demo
published divided by the restock worker's throughput from bench 1 (``--throughput-json``),
an indication of what the job would cost if the worker never waited (bench 1 replays all
SKUs, the demo 300, so the per-event cost differs). Where the time goes: the CPU seconds
(user + system) of the restock worker process, of the demo driver (replayer, warehouse
simulator, baseline, Redis reads) and of the broker and Redis, sampled every second with
psutil: a worker busy for most of the wall time means the job is compute-bound, not bound by
its per-day lock-step waits (the demo already runs the worker with 30 ms flush/commit
intervals).

    python bench/whole_job.py --json out/bench/whole_job.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, ROOT, machine, print_table, ratio, write_json  # noqa: E402


def _role(cmdline: list[str]) -> str:
    """Which part of the demo a process is (by its command line).

    >>> _role(["python", "-m", "streams.cli", "worker", "--loglevel", "warn"])
    'restock worker'
    >>> _role(["/x/tansu", "broker"]), _role(["redis-server", "*:6379"])
    ('broker', 'redis')
    """
    text = " ".join(cmdline)
    if "streams.cli" in text and " worker" in text:
        return "restock worker"
    if "streams.cli" in text and " demo" in text:
        return "demo driver"
    if "redis" in text:
        return "redis"
    if "tansu" in text or "broker" in text:
        return "broker"
    return "other"


def _sample_cpu(root_pid: int, cpu: dict[int, tuple[str, float]]) -> None:
    """Record the CPU seconds so far of ``root_pid`` and all its descendants."""
    try:
        import psutil

        root = psutil.Process(root_pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                t = p.cpu_times()
                cpu[p.pid] = (_role(p.cmdline()), t.user + t.system)
            except psutil.Error:
                continue
    except Exception:  # noqa: BLE001 - the demo exited between polls, or no psutil
        return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--skus", type=int, default=None, help="demo --skus (default: the demo's default, 300)"
    )
    ap.add_argument("--throughput-json", type=Path, default=OUT / "throughput.json")
    ap.add_argument("--target-s", type=float, default=180.0)
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="RESTOCK_X=V",
        help="what-if: extra worker/demo settings, e.g. RESTOCK_FLUSH_INTERVAL_S=0.02",
    )
    ap.add_argument("--json", type=Path, default=OUT / "whole_job.json")
    args = ap.parse_args()

    from streams.ports import free_port

    kpis = args.json.with_name(args.json.stem + "_kpis.json")
    cmd = [
        sys.executable,
        "-m",
        "streams.cli",
        "demo",
        "--no-progress",
        "--json",
        str(kpis),
        "--plot",
        str(OUT / "demo_skus.png"),
    ]
    if args.skus is not None:
        cmd += ["--skus", str(args.skus)]
    env = dict(os.environ)
    for k in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
        env.pop(k, None)
    env.update(
        RESTOCK_STACK_DIR=tempfile.mkdtemp(prefix="restock-bench-demo-"),
        RESTOCK_KAFKA_PORT=str(free_port()),
        RESTOCK_REDIS_PORT=str(free_port()),
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    for item in args.env:
        k, _, v = item.partition("=")
        env[k] = v
    OUT.mkdir(parents=True, exist_ok=True)
    log = args.json.with_suffix(".log")
    t0 = time.perf_counter()
    cpu: dict[int, tuple[str, float]] = {}
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            _sample_cpu(proc.pid, cpu)
            time.sleep(1.0)
        rc = proc.returncode
    wall = time.perf_counter() - t0
    cpu_by_role: dict[str, float] = {}
    for role, secs in cpu.values():
        cpu_by_role[role] = round(cpu_by_role.get(role, 0.0) + secs, 1)
    if rc != 0:
        sys.exit(f"restock demo failed ({rc}); see {log}")
    run = json.loads(kpis.read_text())["run"]
    floor = None
    if args.throughput_json.exists():
        rate = json.loads(args.throughput_json.read_text())["restock_events_per_s"]
        floor = run["events_published"] / rate
    out = {
        "bench": "whole_job",
        "command": " ".join(cmd[1:]),
        "env_overrides": args.env,
        "skus": run["skus"],
        "periods": run.get("evaluation_periods", 0) + run.get("warmup_periods", 0),
        "events_published": run["events_published"],
        "decisions": run["decisions"],
        "wall_s": round(wall, 1),
        "demo_reported_wall_s": run["wall_time_s"],
        "target_s": args.target_s,
        "ratio_wall_over_target": ratio(wall, args.target_s),
        "met": wall < args.target_s,
        "cpu_s_by_process": cpu_by_role,
        "worker_busy_fraction": ratio(cpu_by_role.get("restock worker"), wall),
        "compute_floor_s": round(floor, 1) if floor else None,
        "ratio_wall_over_compute_floor": ratio(wall, floor),
        "machine": machine(),
    }
    print_table(
        f"6. whole job: restock demo ({run['skus']} SKUs, {run['events_published']:,} events)",
        ["measure", "seconds", "ratio"],
        [
            ["wall time (stack up .. down)", wall, None],
            ["target", args.target_s, out["ratio_wall_over_target"]],
            [
                "compute floor (events / bench-1 events/s)",
                floor,
                out["ratio_wall_over_compute_floor"],
            ],
        ]
        + [[f"CPU s: {k}", v, ratio(v, wall)] for k, v in sorted(cpu_by_role.items())],
    )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
