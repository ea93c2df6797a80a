"""Throughput of the restock worker against Faust's own ceiling, and Redis bytes per SKU.

Publishes the same N real Online Retail orders to two identical topic sets, then measures, in
the same run and on the same broker:

(a) a Faust worker whose agent does nothing but take batches (the framework's ceiling), and
(b) the full restock worker (decode, validate, periods, models, inventory, policy, Redis, decisions),

both consuming from the beginning. Prints events/s of each and the ratio (b)/(a), then the
Redis ``MEMORY USAGE`` of every SKU's hash (median and p99, bytes). Run::

    .venv/bin/python bench/bench_worker.py --events 50000 --json out/bench_worker.json

Uses ``KAFKA_BOOTSTRAP_SERVERS``/``REDIS_URL`` when set, else the embedded stack on free ports.
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas.events import OrderPlaced, encode_event  # noqa: E402
from streams.cli import DEFAULT_DATA  # noqa: E402
from streams.datasets import load  # noqa: E402
from streams.kafka_admin import ensure_topics  # noqa: E402
from streams.redis_state import RedisStateStore  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.stack import LocalStack, free_port  # noqa: E402
from streams.workerproc import WorkerProcess, committed_offsets, settings_env  # noqa: E402

EMPTY_WORKER = '''
import sys, faust
from agents.worker import _limit_fetch_wait
from streams.settings import Settings
s = Settings()
_limit_fetch_wait(s.fetch_max_wait_ms)
app = faust.App(s.app_id, broker=f"kafka://{s.kafka_bootstrap_servers}", store="memory://",
                topic_partitions=s.topic_partitions, web_enabled=True, web_port=s.web_port,
                web_bind="127.0.0.1", consumer_auto_offset_reset="earliest",
                broker_commit_every=s.flush_every_events, broker_commit_interval=s.commit_interval_s,
                broker_session_timeout=s.session_timeout_s, broker_heartbeat_interval=s.heartbeat_interval_s,
                broker_rebalance_timeout=s.rebalance_timeout_s, datadir=str(s.worker_data_dir))
topic = app.topic(s.orders_topic, s.inventory_topic, s.promotions_topic, key_serializer="raw", value_serializer="raw")
@app.agent(topic)
async def empty(stream):
    async for events in stream.take_events(s.flush_every_events, within=s.flush_interval_s):
        pass
@app.page("/health/ready")
async def ready(web, request):
    return web.json({"ready": True})
from faust.worker import Worker
Worker(app, loglevel="warn", quiet=True).execute_from_commandline()
'''


def publish(kafka: str, topic: str, events: list[OrderPlaced]) -> dict[tuple[str, int], int]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=20, batch_size=256 * 1024)
    futs = [producer.send(topic, key=e.key.encode(), value=encode_event(e)) for e in events]
    producer.flush()
    targets: dict[tuple[str, int], int] = {}
    for f in futs:
        md = f.get(timeout=60)
        targets[(md.topic, md.partition)] = max(targets.get((md.topic, md.partition), 0), md.offset + 1)
    producer.close()
    return targets


def run_worker(settings: Settings, targets: dict[tuple[str, int], int], log: Path, empty: bool) -> float:
    """Start a worker, return events/s from ready until the group committed every target."""
    if empty:
        env = dict(os.environ, **settings_env(settings))
        proc = subprocess.Popen([sys.executable, "-c", EMPTY_WORKER], env=env, cwd=ROOT,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)
        w = WorkerProcess(settings, log)
        w.proc = proc
    else:
        w = WorkerProcess(settings, log).start()
    try:
        w.wait_ready(timeout_s=120)
        t0 = time.perf_counter()
        n = sum(targets.values())
        while True:
            have = committed_offsets(settings.kafka_bootstrap_servers, settings.app_id)
            if all(have.get(k, -1) >= v for k, v in targets.items()):
                return n / (time.perf_counter() - t0)
            time.sleep(0.05)
    finally:
        w.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    sales = load(DEFAULT_DATA).sales[: args.events]
    events = [OrderPlaced(event_id=f"{r.order_id}:{i}", occurred_at=r.occurred_at, sku=r.sku,
                          location=r.location, order_id=r.order_id, quantity=r.quantity,
                          unit_price=r.unit_price or 0.0) for i, r in enumerate(sales)]
    tmp = Path(tempfile.mkdtemp(prefix="restock-bench-"))
    kafka, redis_url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("REDIS_URL")
    stack = None
    if not (kafka and redis_url):
        stack = LocalStack(tmp / "stack", free_port(), free_port())
        stack.up()
        kafka, redis_url = stack.kafka_bootstrap, stack.redis_url
    try:
        results: dict[str, float] = {}
        for name, empty in (("empty_agent", True), ("restock", False)):
            topics = {r: f"bench-{name}-{r}-{tmp.name}" for r in ("orders", "inventory", "promotions", "reorders", "dlq")}
            ensure_topics(kafka, {t: args.partitions for t in topics.values()})
            targets = publish(kafka, topics["orders"], events)
            s = Settings(kafka_bootstrap_servers=kafka, redis_url=redis_url, app_id=f"bench-{name}-{tmp.name}",
                         orders_topic=topics["orders"], inventory_topic=topics["inventory"],
                         promotions_topic=topics["promotions"], reorders_topic=topics["reorders"],
                         dlq_topic=topics["dlq"], topic_partitions=args.partitions,
                         redis_key_prefix=f"bench-{tmp.name}", web_port=free_port(),
                         worker_data_dir=tmp / name, session_timeout_s=4.0, heartbeat_interval_s=0.5,
                         rebalance_timeout_s=1.0, commit_interval_s=0.1)
            results[name] = run_worker(s, targets, tmp / f"{name}.log", empty)
            print(f"{name:12s} {results[name]:10.0f} events/s", flush=True)
        store = RedisStateStore.from_url(redis_url, f"bench-{tmp.name}")
        sizes = np.array([store.memory_usage(k) or 0 for k in store.keys()], dtype=float)
        out = {
            "events": len(events),
            "partitions": args.partitions,
            "empty_agent_events_per_s": round(results["empty_agent"], 1),
            "restock_events_per_s": round(results["restock"], 1),
            "ratio_restock_over_empty": round(results["restock"] / results["empty_agent"], 3),
            "skus": int(sizes.size),
            "redis_bytes_per_sku_median": float(np.median(sizes)) if sizes.size else None,
            "redis_bytes_per_sku_p99": float(np.percentile(sizes, 99)) if sizes.size else None,
        }
        print(json.dumps(out, indent=2))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=2) + "\n")
    finally:
        if stack is not None:
            stack.down()


if __name__ == "__main__":
    main()
