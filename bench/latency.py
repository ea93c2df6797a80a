"""Bench 3: end-to-end latency at half of the worker's maximum rate.

1. Warm-up: publish the first ``--warmup-events`` Online Retail orders and let one restock
   worker drain them (the SKUs get the 28 learned days restock needs before it decides).
   Baseline: publish the next ``--probe-events`` at once and time the drain: that is the
   worker's maximum rate in this regime, in this run (unless ``--rate`` or
   ``--throughput-json`` from bench 1 gives it).
2. Measured phase: publish the following orders at ``--load`` x max rate (default 0.5) for
   ``--duration-s``, each with its produce time as the record timestamp (CreateTime), and
   measure per order:

   (i)  **order -> durable in Redis**: a poller in this process (one pipelined ``GETRANGE`` of
        the pending SKUs' ``seq`` every ``--poll-ms``) sees the SKU's state with
        ``seq >= offset + 1``.
        With orders as the only input, ``seq`` (the sum of the SKU's fenced offsets + 1, written
        atomically with the state by the fenced Lua script) is exactly "this order's effect is
        in Redis". Sampled: every ``--sample-every``-th order. Resolution: the poll interval.
   (ii) **order -> decision on ``reorders``**: every ``ReorderSuggested``/``OverstockDetected``
        carries ``explanation.trigger_topic/partition/offset``; the latency is the ``reorders``
        record's timestamp (set by the worker's producer when it sends, ms) minus the
        triggering order's produce time; also reported: when this process's consumer of
        ``reorders`` received it.

``--live`` measures what the issue's target describes: a storefront in real time while a
period close is in progress. After the probe, ``--extra-skus`` synthetic SKUs get one order each
on the probe's last day (so the close reviews the Online Retail SKUs and these); the measured
orders are then re-stamped so that event time runs at wall-clock speed from ``--lead-s`` seconds
before the watermark crosses the next day (``allowed_lateness_s`` after midnight). The close of
every SKU of each partition starts during the window and runs in review chunks between the
order batches. Reported separately: decisions about the ordering SKU, and the close's own
decisions (from the crossing order's produce time), and how long after the crossing the last
of them came. Without ``--live`` the orders keep their historical event times, a day of orders
passes in about a second, and nearly every close falls behind event time.

The worker runs with production batching (``flush_every_events``, ``flush_interval_s``; Faust's
``noack_take`` flushes a batch when it is full or ``flush_interval_s`` after the previous one),
so latency at low load is dominated by the flush interval. ``--flush-interval-s`` shows the
trade-off.

    python bench/latency.py --json out/bench/latency.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    OUT,
    GroupWatch,
    bench_settings,
    machine,
    online_retail_orders,
    percentiles,
    print_table,
    publish,
    redis_ca_file,
    restock_worker,
    security,
    stack,
    topic_set,
    write_json,
)


async def measured_phase(
    env: Any,
    settings: Any,
    topics: dict[str, str],
    events: list[Any],
    rate: float,
    duration_s: float,
    sample_every: int,
    poll_ms: float,
    drain_s: float,
    restamp: Any = None,
    lead_s: float = 0.0,
) -> dict[str, Any]:
    from aiokafka import TopicPartition

    from schemas.events import encode_event
    from streams.clients import aiokafka_consumer, aiokafka_producer, redis_client

    n_total = min(len(events), int(rate * duration_s))
    sent_at: dict[
        tuple[int, int], tuple[float, str]
    ] = {}  # (partition, offset) -> (produce time, key)
    pending: dict[str, list[tuple[int, float]]] = {}  # sku key -> [(offset, produce time)]
    durable: list[float] = []
    durable_at: list[float] = []  # produce time of each durable sample
    decision_ts: list[float] = []
    decision_rx: list[float] = []
    decision_own: list[float] = []  # decisions about the ordering SKU itself
    decision_close: list[float] = []  # decisions about other SKUs, on a partition period close
    decisions_other = 0
    close_triggers: set[tuple[int, int]] = set()  # the orders whose watermark crossing started a close
    stop = asyncio.Event()

    producer = aiokafka_producer(env.kafka, security(), linger_ms=0, acks=1)
    consumer = aiokafka_consumer(
        bootstrap=env.kafka,
        security=security(),
        enable_auto_commit=False,
        fetch_max_wait_ms=5,
        auto_offset_reset="latest",
    )
    r = redis_client(env.redis_url, redis_ca_file(), asyncio=True)
    await producer.start()
    await consumer.start()
    parts = consumer.partitions_for_topic(topics["reorders"]) or set(
        range(settings.topic_partitions)
    )
    tps = [TopicPartition(topics["reorders"], p) for p in sorted(parts)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)

    def on_sent(key: str, ts: float, sample: bool):
        def cb(fut: asyncio.Future) -> None:
            if fut.cancelled() or fut.exception() is not None:
                return
            md = fut.result()
            sent_at[(md.partition, md.offset)] = (ts, key)
            if sample:
                pending.setdefault(key, []).append((md.offset, ts))

        return cb

    async def produce() -> None:
        t0 = time.perf_counter()
        i = 0
        while i < n_total:
            due = min(n_total, int((time.perf_counter() - t0) * rate) + 1)
            while i < due:
                ev = events[i]
                if restamp is not None:  # event time at wall-clock speed (--live)
                    ev = restamp(ev, time.perf_counter() - t0)
                ts = time.time()
                fut = await producer.send(
                    topics["orders"],
                    value=encode_event(ev),
                    key=ev.key.encode(),
                    timestamp_ms=int(ts * 1000),
                )
                fut.add_done_callback(on_sent(ev.key, ts, i % sample_every == 0))
                i += 1
            await asyncio.sleep(0.001)
        await producer.flush()

    async def poll_durable() -> None:
        prefix = settings.redis_key_prefix
        while not (stop.is_set() and not pending):
            keys = list(pending)
            if keys:
                pipe = r.pipeline(transaction=False)
                for k in keys:  # the value starts with the zero-padded seq (streams.redis_state)
                    pipe.getrange(f"{prefix}:{{{k}}}:state", 0, 19)
                seqs = await pipe.execute()
                now = time.time()
                for k, seq in zip(keys, seqs, strict=True):
                    if not seq:
                        continue
                    s = int(seq)
                    left = []
                    for off, ts in pending.get(k, []):
                        if s >= off + 1:
                            durable.append(now - ts)
                            durable_at.append(ts)
                        else:
                            left.append((off, ts))
                    if left:
                        pending[k] = left
                    else:
                        pending.pop(k, None)
            await asyncio.sleep(poll_ms / 1000)

    async def consume_decisions() -> None:
        nonlocal decisions_other
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=20)
            now = time.time()
            for recs in batch.values():
                for rec in recs:
                    d = json.loads(rec.value)
                    ex = d.get("explanation", {})
                    sent = sent_at.get(
                        (int(ex.get("trigger_partition", -1)), int(ex.get("trigger_offset", -1)))
                    )
                    if ex.get("trigger_topic") != topics["orders"] or sent is None:
                        decisions_other += 1
                        continue
                    ts, order_key = sent
                    decision_ts.append(rec.timestamp / 1000 - ts)
                    decision_rx.append(now - ts)
                    own = f"{d.get('sku')}@{d.get('location', 'default')}" == order_key
                    (decision_own if own else decision_close).append(rec.timestamp / 1000 - ts)
                    if not own:
                        close_triggers.add((int(ex["trigger_partition"]), int(ex["trigger_offset"])))

    tasks = [asyncio.create_task(poll_durable()), asyncio.create_task(consume_decisions())]
    wall0 = time.time()
    t0 = time.perf_counter()
    await produce()
    produce_s = time.perf_counter() - t0
    await asyncio.sleep(drain_s)  # let the last batches land
    stop.set()
    lost_samples = sum(len(v) for v in pending.values())
    pending.clear()
    await asyncio.gather(*tasks)
    await producer.stop()
    await consumer.stop()
    await r.aclose()
    ms = 1000.0
    split: dict[str, Any] = {}
    if restamp is not None and decision_close:  # --live: durable latency before / during / after the close
        start, end = wall0 + lead_s, wall0 + lead_s + max(decision_close)
        phases = (("before_close", lambda t: t < start), ("during_close", lambda t: start <= t < end),
                  ("after_close", lambda t: t >= end))
        for name, keep in phases:
            xs = [d for d, t in zip(durable, durable_at, strict=True) if keep(t)]
            split[f"durable_{name}_samples"] = len(xs)
            split[f"durable_{name}_ms"] = {k: (v * ms if v is not None else None)
                                           for k, v in percentiles(xs).items()}
    return {
        **split,
        "orders_published": n_total,
        "achieved_rate_events_per_s": round(n_total / produce_s, 1),
        "durable_samples": len(durable),
        "durable_samples_not_seen": lost_samples,
        "durable_ms": {
            k: (v * ms if v is not None else None) for k, v in percentiles(durable).items()
        },
        "decisions": len(decision_ts),
        "decisions_untracked": decisions_other,
        "decision_ms": {
            k: (v * ms if v is not None else None) for k, v in percentiles(decision_ts).items()
        },
        "decisions_own_sku": len(decision_own),
        "decision_own_sku_ms": {
            k: (v * ms if v is not None else None) for k, v in percentiles(decision_own).items()
        },
        "decisions_on_period_close": len(decision_close),
        "decision_period_close_ms": {
            k: (v * ms if v is not None else None) for k, v in percentiles(decision_close).items()
        },
        "decision_received_ms": {
            k: (v * ms if v is not None else None) for k, v in percentiles(decision_rx).items()
        },
        "period_closes_with_decisions": len(close_triggers),
        "last_close_decision_after_crossing_ms": max(decision_close) * ms if decision_close else None,
    }


def live_phase(env: Any, settings: Any, topics: dict[str, str], watch: Any, last: Any,
               extra_skus: int, lead_s: float) -> tuple[Any, dict[str, Any]]:
    """Seed ``extra_skus`` SKUs on ``last``'s day; the re-stamping of the measured orders.

    Returns ``(restamp, facts)``: ``restamp(ev, elapsed_s)`` gives the order the event time
    ``crossing - lead_s + elapsed_s``, where ``crossing`` is the next midnight plus the allowed
    lateness (the partition watermark then enters the next day: the close starts).
    """
    from datetime import datetime, timedelta

    from schemas.events import OrderPlaced

    t_last = last.occurred_at
    day_end = datetime(t_last.year, t_last.month, t_last.day, tzinfo=t_last.tzinfo) + timedelta(days=1)
    step = (day_end - t_last) / (extra_skus + 1)
    seed = [OrderPlaced(event_id=f"syn-{i}", occurred_at=t_last + step * (i + 1), sku=f"SYN{i:06d}",
                        location="UK", order_id=f"syn-{i}", quantity=1 + i % 5, unit_price=1.0)
            for i in range(extra_skus)]
    t0 = time.perf_counter()
    targets = publish(env.kafka, topics["orders"], seed)
    while watch.done(targets) < sum(targets.values()):
        time.sleep(0.05)
    crossing = day_end + timedelta(seconds=settings.allowed_lateness_s)
    base = crossing - timedelta(seconds=lead_s)
    print(f"seeded {extra_skus} SKUs on {t_last.date()} in {time.perf_counter() - t0:.1f} s; the "
          f"watermark crosses {day_end.date()} {lead_s:g} s into the measured phase", flush=True)

    def restamp(ev: Any, elapsed_s: float) -> Any:
        return ev.model_copy(update={"occurred_at": base + timedelta(seconds=elapsed_s)})

    return restamp, {"extra_skus": extra_skus, "lead_s": lead_s, "crossing_event_time": crossing.isoformat()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup-events", type=int, default=60_000)
    ap.add_argument(
        "--probe-events",
        type=int,
        default=20_000,
        help="published at once after the warm-up; their drain rate is the max rate",
    )
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--load", type=float, default=0.5, help="fraction of the maximum rate")
    ap.add_argument(
        "--rate", type=float, default=None, help="events/s (overrides the measured max)"
    )
    ap.add_argument(
        "--throughput-json",
        type=Path,
        default=None,
        help="take the max rate from bench 1's restock_events_per_s",
    )
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--flush-interval-s", type=float, default=None, help="worker flush_interval_s")
    ap.add_argument(
        "--flush-every-events", type=int, default=None, help="worker flush_every_events"
    )
    ap.add_argument("--live", action="store_true",
                    help="event time at wall-clock speed, a period close during the window")
    ap.add_argument("--extra-skus", type=int, default=12_000,
                    help="--live: synthetic SKUs with one order on the probe's last day")
    ap.add_argument("--lead-s", type=float, default=15.0,
                    help="--live: seconds of orders before the watermark crosses the day")
    ap.add_argument("--review-chunk-skus", type=int, default=None, help="worker review_chunk_skus")
    ap.add_argument("--sample-every", type=int, default=5)
    ap.add_argument("--poll-ms", type=float, default=2.0)
    ap.add_argument("--json", type=Path, default=OUT / "latency.json")
    args = ap.parse_args()

    t_start = time.perf_counter()
    overrides: dict[str, Any] = {}
    if args.flush_interval_s is not None:
        overrides["flush_interval_s"] = args.flush_interval_s
    if args.flush_every_events is not None:
        overrides["flush_every_events"] = args.flush_every_events
    if args.review_chunk_skus is not None:
        overrides["review_chunk_skus"] = args.review_chunk_skus
    max_needed = int((args.rate or 10_000) * args.duration_s)
    all_events = online_retail_orders()
    w_end, p_end = args.warmup_events, args.warmup_events + args.probe_events
    warm, probe, rest = (
        all_events[:w_end],
        all_events[w_end:p_end],
        all_events[p_end : p_end + max_needed],
    )
    with stack() as env:
        topics = topic_set(env, "latency", args.partitions)
        s = bench_settings(env, "latency", topics, args.partitions, **overrides)
        targets = publish(env.kafka, topics["orders"], warm)
        w = restock_worker(s, env.tmp / "latency.log").start()
        watch = GroupWatch(env.kafka, s.app_id)
        try:
            w.wait_ready(timeout_s=180)
            while watch.done(targets) < sum(targets.values()):
                time.sleep(0.05)
            # max-rate probe on warm SKUs (the regime of the measured phase: deciding SKUs)
            probe_targets = publish(env.kafka, topics["orders"], probe)
            t0, c0 = time.perf_counter(), watch.done(probe_targets)
            while watch.done(probe_targets) < sum(probe_targets.values()):
                time.sleep(0.05)
            warm_rate = (sum(probe_targets.values()) - c0) / (time.perf_counter() - t0)
            if args.rate:
                max_rate, source = args.rate / args.load, "--rate"
            elif args.throughput_json and args.throughput_json.exists():
                max_rate = float(
                    json.loads(args.throughput_json.read_text())["restock_events_per_s"]
                )
                source = str(args.throughput_json)
            else:
                max_rate, source = warm_rate, "probe drain (this run)"
            rate = args.load * max_rate
            restamp, live = None, {}
            if args.live:
                restamp, live = live_phase(env, s, topics, watch, probe[-1], args.extra_skus, args.lead_s)
            print(
                f"probe drained at {warm_rate:.0f} events/s; max rate {max_rate:.0f} ({source}); "
                f"measuring at {rate:.0f} events/s for {args.duration_s:.0f} s",
                flush=True,
            )
            res = asyncio.run(
                measured_phase(
                    env,
                    s,
                    topics,
                    rest,
                    rate,
                    args.duration_s,
                    args.sample_every,
                    args.poll_ms,
                    drain_s=max(3.0, 5 * s.flush_interval_s),
                    restamp=restamp,
                    lead_s=args.lead_s,
                )
            )
            rss = w.pid and __import__("common").rss_bytes(w.pid)
        finally:
            watch.close()
            w.stop()
    d, k, rx = res["durable_ms"], res["decision_ms"], res["decision_received_ms"]
    out = {
        "bench": "latency",
        "warmup_events": len(warm),
        "probe_events": len(probe),
        "probe_drain_events_per_s": round(warm_rate, 1),
        "max_rate_events_per_s": round(max_rate, 1),
        "max_rate_source": source,
        "load": args.load,
        "target_rate_events_per_s": round(rate, 1),
        "flush_interval_s": s.flush_interval_s,
        "flush_every_events": s.flush_every_events,
        "fetch_max_wait_ms": s.fetch_max_wait_ms,
        "poll_ms": args.poll_ms,
        "review_chunk_skus": s.review_chunk_skus,
        "live": args.live,
        **live,
        **res,
        "decision_p99_target_ms": 50.0,
        "decision_p99_met": k["p99"] is not None and k["p99"] < 50.0,
        "durable_p99_over_flush_interval": (d["p99"] / (1000 * s.flush_interval_s))
        if d["p99"]
        else None,
        "worker_rss_bytes": rss,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": machine(),
    }
    print_table(
        f"3. latency at {args.load:g} x max rate = "
        f"{res['achieved_rate_events_per_s']:.0f} events/s "
        f"(flush_interval_s={s.flush_interval_s}, flush_every_events={s.flush_every_events})",
        ["path", "samples", "p50 ms", "p95 ms", "p99 ms"],
        [
            [
                "order -> durable in Redis (seq fence)",
                res["durable_samples"],
                d["p50"],
                d["p95"],
                d["p99"],
            ],
            *([[f"  {name.replace('_', ' ')} (--live)", res[f"durable_{name}_samples"],
                 *res[f"durable_{name}_ms"].values()]
               for name in ("before_close", "during_close", "after_close")]
              if "durable_before_close_samples" in res else []),
            [
                "order -> decision on reorders (record ts)",
                res["decisions"],
                k["p50"],
                k["p95"],
                k["p99"],
            ],
            [
                "  of which about the ordering SKU",
                res["decisions_own_sku"],
                *res["decision_own_sku_ms"].values(),
            ],
            [
                "  of which the period close's (from the crossing order)",
                res["decisions_on_period_close"],
                *res["decision_period_close_ms"].values(),
            ],
            [
                "order -> decision received by a consumer",
                res["decisions"],
                rx["p50"],
                rx["p95"],
                rx["p99"],
            ],
        ],
    )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
