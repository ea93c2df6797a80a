"""Sampling profile (py-spy) of a real restock worker process: where its CPU time goes.

Publishes ``--skip + --events`` Online Retail orders, starts one ``restock worker`` (exactly
as in production), waits until it has committed the first ``--skip`` (cold start excluded),
then samples it with ``py-spy record --format raw`` for ``--duration-s`` and attributes every
sample to the innermost stage on its stack (so stages are exclusive and add up to 100 %,
unlike the cumulative cProfile view of ``profile_hot_path.py``). Everything not under a named
restock stage is Faust/aiokafka/asyncio/redis-py machinery (consume, ack, commit, produce).

Needs py-spy (``pip install py-spy``, in the ``bench`` extra) and ptrace permission.

    python bench/pyspy_worker.py --skip 40000 --events 40000 --duration-s 30
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    OUT,
    GroupWatch,
    bench_settings,
    machine,
    online_retail_orders,
    print_table,
    publish,
    restock_worker,
    stack,
    topic_set,
    write_json,
)

# innermost match wins (a stack is walked from its leaf to its root)
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("Redis round trip (pipeline execute)", ("execute (redis/client.py",)),
    ("encode state (encode_core/encode_model)", ("encode_core (", "encode_model (")),
    ("encode decisions/dead letters (encode_event)", ("encode_event (",)),
    ("policy.compute_levels (scipy quantiles)", ("compute_levels (",)),
    ("projection (project_inventory)", ("project_inventory (",)),
    ("forecast_distribution", ("forecast_distribution (",)),
    ("forecaster learn_one", ("learn_one (agents/forecasting",)),
    (
        "build decision events (pydantic)",
        (
            "_reorder (agents/processor",
            "_overstock (agents/processor",
            "_explanation (agents/processor",
        ),
    ),
    ("decode + validate (pydantic)", ("decode_for_topic_role (",)),
    ("state load on cache miss", ("load_many (",)),
    (
        "other processor/pipeline/demand code",
        (
            "agents/processor/",
            "agents/pipeline.py",
            "agents/demand.py",
            "agents/state.py",
            "agents/inventory.py",
        ),
    ),
    ("produce decisions (FaustTransport.produce -> aiokafka)", ("produce (streams/app",)),
    ("metrics", ("streams/metrics.py",)),
]


def classify(stack: str) -> str:
    """Stage of one collapsed stack (frames separated by ``;``, root first).

    >>> classify("main (x.py:1);process (agents/pipeline.py:9);"
    ...          "compute_levels (agents/policy/levels.py:7);ppf (s.py:1)")
    'policy.compute_levels (scipy quantiles)'
    >>> classify("run (asyncio/events.py:1);_run_once (asyncio/base_events.py:2)")
    'Faust / aiokafka / asyncio machinery'
    """
    frames = stack.split(";")
    for frame in reversed(frames):
        for label, needles in STAGES:
            if any(n in frame for n in needles):
                return label
    return "Faust / aiokafka / asyncio machinery"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", type=int, default=40_000)
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--duration-s", type=float, default=30.0)
    ap.add_argument("--rate-hz", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--json", type=Path, default=OUT / "pyspy_worker.json")
    ap.add_argument("--raw-out", type=Path, default=None,
                    help="also keep py-spy's raw collapsed stacks here (for other views)")
    args = ap.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        sys.exit("py-spy not found: pip install py-spy")

    events = online_retail_orders(args.skip + args.events)
    with stack() as env:
        topics = topic_set(env, "pyspy", args.partitions)
        warm = publish(env.kafka, topics["orders"], events[: args.skip])
        s = bench_settings(env, "pyspy", topics, args.partitions)
        w = restock_worker(s, env.tmp / "pyspy.log").start()
        watch = GroupWatch(env.kafka, s.app_id)
        raw = env.tmp / "pyspy.txt"
        try:
            w.wait_ready(timeout_s=180)
            while watch.done(warm) < sum(warm.values()):
                time.sleep(0.1)
            publish(env.kafka, topics["orders"], events[args.skip :])
            rc = subprocess.call(
                [
                    pyspy,
                    "record",
                    "--pid",
                    str(w.pid),
                    "--duration",
                    str(int(args.duration_s)),
                    "--rate",
                    str(args.rate_hz),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            if rc != 0 or not raw.exists():
                sys.exit(f"py-spy failed ({rc}); ptrace may be forbidden here")
            text = raw.read_text()
            if args.raw_out is not None:
                args.raw_out.write_text(text)
        finally:
            watch.close()
            w.stop()
    counts: dict[str, int] = {}
    total = 0
    for line in text.splitlines():
        stack_str, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        counts[classify(stack_str)] = counts.get(classify(stack_str), 0) + int(n)
        total += int(n)
    shares = {k: round(v / total, 4) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}
    out = {
        "bench": "pyspy_worker",
        "skip": args.skip,
        "duration_s": args.duration_s,
        "samples": total,
        "rate_hz": args.rate_hz,
        "share_of_samples": shares,
        "machine": machine(),
    }
    print_table(
        f"restock worker, py-spy {args.duration_s:.0f} s at {args.rate_hz} Hz ({total} samples, "
        f"orders after #{args.skip:,}); innermost stage per sample",
        ["stage", "samples", "share"],
        [[k, counts[k], v] for k, v in shares.items()],
    )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
