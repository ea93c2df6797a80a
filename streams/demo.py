"""``restock demo``: replay real orders through Kafka, a restock worker and Redis, closed loop.

What runs (all on loopback, embedded stack unless ``KAFKA_BOOTSTRAP_SERVERS``/``REDIS_URL``):

* a **restock worker** in its own process (``restock worker``), exactly as in production;
* a **replayer** that publishes the history as ``OrderPlaced`` events in event-time order;
* a **warehouse simulator**, a separate consumer of ``reorders``: each ``ReorderSuggested``
  becomes a ``PurchaseOrderPlaced`` (the suggested quantity) and, ``lead_time_days`` later, a
  ``StockReceived`` at the start of that day;
* a **baseline** policy on the same demand, in-process: a static (s, S) fitted on the warm-up
  period (the first quarter of the history, no forecasting), same lead time, same lost-sales rule.

Determinism: time advances one period (day) at a time in three phases, each released only when
the worker has committed every event published so far (consumer lag 0 on the input topics):
(A) purchase orders answering the previous day's suggestions and receipts due today (at
00:00), (B) the day's orders, (C) reading the resulting states from Redis and collecting every
decision the states say were emitted. Two runs with the same input therefore give the same KPIs.
Restock's KPIs of a day are computed from that day's state bytes in one background thread (in
day order), so decoding the models overlaps the worker's next day.

Seeding rule: every SKU starts with ``on_hand = ceil(S)`` of the baseline's static policy (the
order-up-to level fitted on the warm-up period), for both policies, by a ``StockSnapshot`` at the
first day's 00:00. KPIs are measured on the days after the warm-up period.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import SecretStr

from agents.demand import epoch, period_seconds, period_start, to_datetime
from agents.inventory import InventoryPosition
from agents.policy import PolicyParams, compute_levels, order_quantity
from agents.state import SkuState
from schemas.events import (
    OrderPlaced,
    PurchaseOrderPlaced,
    ReorderSuggested,
    StockReceived,
    StockSnapshot,
    decode_decision,
    encode_event,
)
from streams.kpis import PolicyTally
from streams.panel import load_panel
from streams.settings import Settings
from streams.workerproc import WorkerProcess, free_port


@dataclass(frozen=True)
class DemoOptions:
    """Options of :func:`run_demo` (see ``restock demo --help``)."""

    data: Path
    fmt: str = "auto"
    freq: Literal["H", "D", "W"] = "D"
    skus: int | None = 300
    start: str | None = None
    end: str | None = None
    json_path: Path | None = Path("out/demo_kpis.json")
    plot_path: Path | None = Path("out/demo_skus.png")
    unmet_demand: Literal["lost_sales", "backorder"] = "lost_sales"
    progress: bool = True
    warmup_fraction: float = 0.25
    plot_skus: int = 4
    settings: Settings | None = None
    run_id: str | None = None


@dataclass
class SkuSim:
    """Baseline-side simulation state and plot traces of one SKU."""

    s: float
    S: float
    mean: float
    price: float
    pos: InventoryPosition = field(default_factory=InventoryPosition)
    arrivals: dict[int, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    cycle_stockout: bool = False
    served_total: int = 0
    restock_cycle_stockout: bool = False
    trace: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def _fit_static_policy(daily: np.ndarray, params: PolicyParams, horizon: int) -> tuple[float, float, float]:
    """Static (s, S) from warm-up daily demand: constant mean and variance per period."""
    mean = float(daily.mean()) if daily.size else 0.0
    var = float(daily.var(ddof=1)) if daily.size > 1 else 0.0
    lv = compute_levels(np.full(horizon, mean), np.full(horizon, var), params)
    return lv.reorder_point, lv.order_up_to, mean


class _Lockstep:
    """Publish events and wait until the worker group has committed all of them."""

    def __init__(self, producer: Any, admin: Any, group: str) -> None:
        self.producer = producer
        self.admin = admin
        self.group = group
        self.target: dict[tuple[str, int], int] = {}
        self.published = 0
        self.lag_messages = 0  # consumer lag seen when the last wait began

    async def publish(self, topic: str, events: Iterable[Any]) -> None:
        futs = []
        for ev in events:
            futs.append(await self.producer.send(topic, key=ev.key.encode(), value=encode_event(ev)))
        for md in await asyncio.gather(*futs):
            k = (md.topic, md.partition)
            self.target[k] = max(self.target.get(k, 0), md.offset + 1)
        self.published += len(futs)

    async def wait_caught_up(self, timeout_s: float = 120.0) -> None:
        from kafka import TopicPartition

        deadline = time.monotonic() + timeout_s
        first = True
        while True:
            offsets = await asyncio.to_thread(self.admin.list_group_offsets, self.group)
            got = offsets.get(self.group, {}) if isinstance(offsets, dict) else {}
            have = {k: (om.offset if (om := got.get(TopicPartition(*k))) is not None else 0)
                    for k in self.target}
            behind = [k for k, want in self.target.items() if have[k] < want]
            if first:
                self.lag_messages = sum(max(0, want - have[k]) for k, want in self.target.items())
                first = False
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker did not catch up within {timeout_s:.0f}s: {behind[:4]}")
            await asyncio.sleep(0.02)


async def _run(opts: DemoOptions, kafka: str, redis_url: str) -> dict[str, Any]:
    import redis
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from kafka import KafkaAdminClient

    from streams.kafka_admin import ensure_topics
    from streams.redis_state import RedisStateStore
    from streams.topics import all_topics

    t_start = time.perf_counter()
    # Every run gets fresh topics, consumer group and Redis namespace (a label may prefix them).
    run_id = f"{opts.run_id}-{uuid.uuid4().hex[:8]}" if opts.run_id else uuid.uuid4().hex[:8]
    base = opts.settings or Settings()
    settings = base.model_copy(update={
        "kafka_bootstrap_servers": kafka,
        "app_id": f"restock-demo-{run_id}",
        "orders_topic": f"demo-{run_id}.orders",
        "inventory_topic": f"demo-{run_id}.inventory",
        "promotions_topic": f"demo-{run_id}.promotions",
        "reorders_topic": f"demo-{run_id}.reorders",
        "dlq_topic": f"demo-{run_id}.dlq",
        "redis_key_prefix": f"restock-demo-{run_id}",
        "freq": opts.freq,
        "allowed_lateness_s": 0.0,
        "flush_interval_s": 0.03,
        "commit_interval_s": 0.03,
        "session_timeout_s": 4.0,
        "heartbeat_interval_s": 0.5,
        "rebalance_timeout_s": 1.0,
        "unmet_demand": opts.unmet_demand,
        "web_port": free_port(),
        "metrics_port": 0,
        "worker_data_dir": Path(f".restock/demo-{run_id}"),
    })
    step = period_seconds(opts.freq)
    params = PolicyParams(
        lead_time_periods=settings.days_to_periods(settings.lead_time_days),
        review_period_periods=settings.days_to_periods(settings.review_period_days),
        cycle_service_level=settings.cycle_service_level,
        pack_size=settings.pack_size, moq=settings.moq,
    )
    lead_s = int(settings.lead_time_days * 86400)

    # --- data and the baseline's static policy -----------------------------------------
    panel = load_panel(opts.data, opts.fmt, opts.freq, opts.skus, opts.start, opts.end,
                       opts.warmup_fraction)
    ds, keys, first, last = panel.dataset, panel.keys, panel.first, panel.last
    sales, n_periods, warm, warm_end = panel.sales, panel.n_periods, panel.warmup_periods, panel.warm_end
    sims: dict[str, SkuSim] = {}
    horizon = settings.forecast_horizon_periods
    for i, k in enumerate(keys):
        s, S, mean = _fit_static_policy(panel.demand[i, :warm].astype(float), params, horizon)
        sims[k] = SkuSim(s=s, S=S, mean=mean, price=float(panel.price[i]))
        sims[k].pos.snapshot(math.ceil(S), at=first)
    by_period = panel.by_period()
    plot_keys = keys[: opts.plot_skus]
    # Generic CSV: each SKU-period's price / promotion flag / x_* values are the plan of that
    # period, published on the promotions topic `forecast_horizon_periods` ahead ("known in
    # advance", as in `restock backtest`).
    plans_due: dict[int, list[Any]] = defaultdict(list)
    if ds.fmt == "generic":
        from streams.backtest import plan_events

        chosen = set(keys)
        for ev in plan_events([r for r in sales if r.key in chosen], opts.freq,
                              settings.forecast_horizon_periods):
            plans_due[max(first, period_start(opts.freq, epoch(ev.occurred_at)))].append(ev)

    # --- services: topics, worker process ------------------------------------------------
    ensure_topics(kafka, all_topics(settings))
    settings = settings.model_copy(update={"redis_url": SecretStr(redis_url)})
    worker = WorkerProcess(settings, Path(".restock") / f"demo-{run_id}-worker.log").start()
    rclient = redis.Redis.from_url(redis_url)
    store = RedisStateStore(rclient, settings.redis_key_prefix)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, linger_ms=5, max_batch_size=1 << 20)
    decisions_consumer = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False,
                                          auto_offset_reset="earliest")
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    accounting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-accounting")
    try:
        await asyncio.to_thread(worker.wait_ready)
        await producer.start()
        await decisions_consumer.start()
        decisions_consumer.assign([_atp(settings.reorders_topic, p)
                                   for p in range(settings.topic_partitions)])
        lock = _Lockstep(producer, admin, settings.app_id)
        restock = PolicyTally()
        baseline = PolicyTally()
        seen_decisions: dict[str, ReorderSuggested] = {}
        pending_pos: list[ReorderSuggested] = []
        receipts_due: dict[int, list[StockReceived]] = defaultdict(list)
        restock_prev_received: dict[str, int] = {}
        eval_days = 0

        def account_day(parts: dict[str, tuple[bytes, bytes]], p0: int, in_eval: bool,
                        demand_today: dict[str, int], new: list[Any]) -> None:
            """Restock's KPIs and plot traces of day ``p0`` from its states' bytes."""
            states = {k: SkuState.decode_parts(core, model) for k, (core, model) in parts.items()}
            for k in keys:
                st = states.get(k)
                sim = sims[k]
                q = demand_today.get(k, 0)
                mean_today, q90_today = _forecast_for(st, p0, step, k in plot_keys)
                if st is not None:
                    rec = st.position.received
                    if rec > restock_prev_received.get(k, 0):
                        if in_eval:
                            restock.cycles += 1
                            restock.cycles_with_stockout += int(sim.restock_cycle_stockout)
                        sim.restock_cycle_stockout = False
                    if in_eval:
                        restock.received_units += rec - restock_prev_received.get(k, 0)
                    restock_prev_received[k] = rec
                lost_total = st.counters.get("lost_units", 0) if st else 0
                lost_before = sim.trace["_lost_total"][-1] if sim.trace["_lost_total"] else 0
                lost_today = lost_total - int(lost_before)
                sim.trace["_lost_total"].append(lost_total)
                if lost_today:
                    sim.restock_cycle_stockout = True
                on_hand = st.position.on_hand if st else 0
                if in_eval:
                    restock.demand_units += q
                    restock.served_units += q - lost_today
                    restock.lost_units += lost_today
                    restock.served_value += (q - lost_today) * sim.price
                    restock.on_hand_unit_days += on_hand
                    restock.on_hand_value_days += on_hand * sim.price
                    restock.stockout_sku_days += int(on_hand == 0)
                    restock.sku_days += 1
                    restock.abs_error += abs(q - mean_today)
                    restock.forecast_demand += q
                if k in plot_keys:
                    sim.trace["demand"].append(q)
                    sim.trace["forecast"].append(mean_today)
                    sim.trace["q90"].append(q90_today)
                    sim.trace["on_hand"].append(on_hand)
                    sim.trace["day"].append(float(p0))
                    sim.trace["reorder"].append(float(sum(
                        d.quantity for d in new if isinstance(d, ReorderSuggested) and d.key == k)))

        accounted: list[Future[None]] = []
        await lock.publish(settings.inventory_topic, [
            StockSnapshot(event_id=f"seed-{k}", occurred_at=to_datetime(first), sku=k.split("@")[0],
                          location=k.split("@")[1], on_hand=math.ceil(sims[k].S))
            for k in keys
        ])
        await lock.wait_caught_up()  # the seed counts must be applied before the first order
        progress = _progress(opts.progress, n_periods)
        with progress:
            task = progress.add_task("replay", total=n_periods, date="", eps=0.0, lag=0)
            for i in range(n_periods):
                p0 = first + i * step
                day = to_datetime(p0)
                in_eval = p0 >= warm_end
                # (A) purchase orders for yesterday's suggestions, receipts due today.
                inv: list[Any] = []
                for d in pending_pos:
                    po_id = f"PO-{d.event_id[:16]}"
                    arrival = period_start(opts.freq, epoch(d.occurred_at)) + lead_s
                    inv.append(PurchaseOrderPlaced(
                        event_id=f"po-{po_id}", occurred_at=d.occurred_at, sku=d.sku, location=d.location,
                        purchase_order_id=po_id, quantity=d.quantity, expected_arrival=to_datetime(arrival),
                        decision_id=d.event_id))
                    receipts_due[arrival].append(StockReceived(
                        event_id=f"rcv-{po_id}", occurred_at=to_datetime(arrival), sku=d.sku,
                        location=d.location, quantity=d.quantity, purchase_order_id=po_id))
                    if in_eval:
                        restock.purchase_orders += 1
                pending_pos = []
                inv.extend(receipts_due.pop(p0, []))
                if inv:
                    await lock.publish(settings.inventory_topic, inv)
                    await lock.wait_caught_up()
                # Baseline receipts (same timing rule).
                for sim in sims.values():
                    for po_id, q in sim.arrivals.pop(p0, []):
                        sim.pos.receive(q, po_id, at=p0)
                        if in_eval:
                            baseline.received_units += q
                            baseline.cycles += 1
                            baseline.cycles_with_stockout += int(sim.cycle_stockout)
                        sim.cycle_stockout = False
                # (A2) plans published today (generic CSV only).
                if plans_due.get(p0):
                    await lock.publish(settings.promotions_topic, plans_due.pop(p0))
                    await lock.wait_caught_up()
                # (B) the day's orders.
                day_rows = by_period.get(p0, [])
                orders = [
                    OrderPlaced(event_id=f"{r.order_id}:{r.sku}:{j}", occurred_at=r.occurred_at, sku=r.sku,
                                location=r.location, order_id=r.order_id, quantity=r.quantity,
                                unit_price=r.unit_price or 0.0, customer_id=r.customer_id,
                                promo=bool(r.promo))
                    for j, r in enumerate(day_rows)
                ]
                if orders:
                    await lock.publish(settings.orders_topic, orders)
                    await lock.wait_caught_up()
                demand_today: dict[str, int] = defaultdict(int)
                for r in day_rows:
                    demand_today[r.key] += r.quantity
                # Baseline: serve, then review at the end of the day.
                for k, sim in sims.items():
                    q = demand_today.get(k, 0)
                    served, short = (sim.pos.sell(q, at=p0 + step - 1, unmet=opts.unmet_demand)
                                     if q else (0, 0))
                    sim.served_total += served
                    if short:
                        sim.cycle_stockout = True
                    ip = sim.pos.inventory_position
                    if ip <= sim.s and sim.S > 0:
                        oq = order_quantity(ip, sim.s, sim.S, params.pack_size, params.moq)
                        if oq > 0:
                            po_id = f"B-{k}-{i}"
                            sim.pos.place_purchase_order(po_id, oq, expected_arrival=p0 + lead_s)
                            sim.arrivals[p0 + lead_s].append((po_id, oq))
                            if in_eval:
                                baseline.purchase_orders += 1
                    if in_eval:
                        baseline.demand_units += q
                        baseline.served_units += served
                        baseline.lost_units += short
                        baseline.served_value += served * sim.price
                        baseline.on_hand_unit_days += sim.pos.on_hand
                        baseline.on_hand_value_days += sim.pos.on_hand * sim.price
                        baseline.stockout_sku_days += int(sim.pos.on_hand == 0)
                        baseline.sku_days += 1
                        baseline.abs_error += abs(q - sim.mean)
                        baseline.forecast_demand += q
                    if k in plot_keys:
                        sim.trace["baseline_on_hand"].append(sim.pos.on_hand)
                # (C) states from Redis: the decisions emitted (their counters), then restock's
                # inventory and forecasts. Only the counters are needed before the next day; the
                # accounting (decoding every model, today's forecast) runs in one background
                # thread, day after day in order, overlapping the worker's next day.
                parts = store.read_parts(keys)
                expected = 0
                for core, _ in parts.values():
                    counters = SkuState.decode_counters(core)
                    expected += counters.get("reorders", 0) + counters.get("overstocks", 0)
                new = await _collect_decisions(decisions_consumer, seen_decisions, expected)
                # A newer suggestion for a SKU replaces its open one: act on the latest only.
                latest = {d.key: d for d in new if isinstance(d, ReorderSuggested)}
                pending_pos.extend(sorted(latest.values(), key=lambda d: (d.occurred_at, d.key)))
                accounted.append(accounting.submit(account_day, parts, p0, in_eval, demand_today, new))
                if accounted[0].done():
                    accounted.pop(0).result()  # re-raise a failure of the accounting now
                if in_eval:
                    eval_days += 1
                elapsed = time.perf_counter() - t_start
                progress.update(task, advance=1, date=day.date().isoformat(),
                                eps=lock.published / max(elapsed, 1e-9), lag=lock.lag_messages)
            for fut in accounted:
                fut.result()
        wall = time.perf_counter() - t_start
        final = store.load_many(keys)
        seeded = sum(math.ceil(sims[k].S) for k in keys)
        conservation = {
            "restock": {
                "start_on_hand_units": seeded,
                "received_units": sum(st.position.received for st in final.values()),
                "served_units": sum(st.counters.get("served_units", 0) for st in final.values()),
                "lost_sales_units": sum(st.counters.get("lost_units", 0) for st in final.values()),
                "end_on_hand_units": sum(st.position.on_hand for st in final.values()),
            },
            "baseline": {
                "start_on_hand_units": seeded,
                "received_units": sum(sim.pos.received for sim in sims.values()),
                "served_units": sum(sim.served_total for sim in sims.values()),
                "lost_sales_units": sum(sim.pos.lost_sales for sim in sims.values()),
                "end_on_hand_units": sum(sim.pos.on_hand for sim in sims.values()),
            },
        }
        result = {
            "restock": restock.kpis(eval_days, panel.period_days),
            "baseline": baseline.kpis(eval_days, panel.period_days),
            "run": {
                "data": str(opts.data),
                "skus": len(keys),
                "freq": opts.freq,
                "first_period": to_datetime(first).date().isoformat(),
                "last_period": to_datetime(last).date().isoformat(),
                "warmup_periods": warm,
                "evaluation_periods": eval_days,
                "lead_time_days": settings.lead_time_days,
                "cycle_service_level_target": settings.cycle_service_level,
                "unmet_demand": opts.unmet_demand,
                "events_published": lock.published,
                "run_id": run_id,
                "topics": {"orders": settings.orders_topic, "inventory": settings.inventory_topic,
                           "reorders": settings.reorders_topic},
                "conservation": conservation,
                "decisions": len(seen_decisions),
                "wall_time_s": round(wall, 2),
                "events_per_s": round(lock.published / wall, 1),
                "cleaning": ds.report.as_dict(),
            },
        }
        if opts.plot_path:
            _plot(opts.plot_path, plot_keys, sims)
            result["run"]["plot"] = str(opts.plot_path)
        if opts.json_path:
            opts.json_path.parent.mkdir(parents=True, exist_ok=True)
            opts.json_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        return result
    finally:
        accounting.shutdown(wait=True, cancel_futures=True)
        worker.stop()
        shutil.rmtree(settings.worker_data_dir, ignore_errors=True)
        await producer.stop()
        await decisions_consumer.stop()
        admin.close()
        rclient.close()


def _atp(topic: str, partition: int) -> Any:
    from aiokafka import TopicPartition

    return TopicPartition(topic, partition)


def _forecast_for(st: SkuState | None, p0: int, step: int, with_q90: bool) -> tuple[float, float]:
    """Mean (and q90 when asked: plots only, it costs a distribution) for period ``p0``."""
    if st is None or st.demand.open_start is None or st.model.n_periods == 0:
        return 0.0, 0.0
    h = max(1, (p0 - st.demand.open_start) // step + 1)
    if not with_q90:
        return float(st.model.forecast(h)[h - 1]), 0.0
    dist = st.model.forecast_distribution(h)
    q90 = dist.quantiles.get(0.9)
    return float(dist.mean[h - 1]), float(q90[h - 1]) if q90 is not None else float(dist.mean[h - 1])


async def _collect_decisions(consumer: Any, seen: dict[str, Any], expected: int,
                             timeout_s: float = 30.0) -> list[Any]:
    """Read ``reorders`` until the states' decision counters are all accounted for."""
    new: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(seen) < expected:
        batch = await consumer.getmany(timeout_ms=50)
        for msgs in batch.values():
            for m in msgs:
                d = decode_decision(m.value)
                if d.event_id not in seen:
                    seen[d.event_id] = d
                    new.append(d)
        if time.monotonic() > deadline:
            raise TimeoutError(f"expected {expected} decisions, saw {len(seen)}")
    # Run-independent order (ids hash run-specific topic names): event time, SKU, trigger.
    new.sort(key=lambda d: (d.occurred_at, d.key, d.explanation.trigger_partition,
                            d.explanation.trigger_offset, d.kind))
    return new


def _progress(enabled: bool, total: int) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]demo[/] {task.fields[date]}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[eps]:.0f} events/s"),
        TextColumn("consumer lag {task.fields[lag]} msgs at release"), TimeElapsedColumn(),
        disable=not enabled, transient=False,
    )


def _plot(path: Path, keys: list[str], sims: dict[str, SkuSim]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(keys), 1, figsize=(11, 2.8 * len(keys)), sharex=True, squeeze=False)
    for ax, k in zip(axes[:, 0], keys, strict=True):
        tr = sims[k].trace
        days = [to_datetime(d) for d in tr["day"]]
        ax.bar(days, tr["demand"], color="#bbbbbb", width=1.0, label="demand (units)")
        ax.plot(days, tr["forecast"], color="C0", lw=1, label="forecast mean")
        ax.fill_between(days, 0, tr["q90"], color="C0", alpha=0.15, label="forecast q90 band")
        ax.plot(days, tr["on_hand"], color="C2", lw=1.2, label="on_hand (restock)")
        ax.plot(days, tr["baseline_on_hand"], color="C3", lw=1, ls="--", label="on_hand (baseline)")
        marks = [d for d, q in zip(days, tr["reorder"], strict=True) if q > 0]
        ax.plot(marks, [0] * len(marks), "v", color="C1", label="reorder")
        ax.set_title(k, fontsize=9)
        ax.legend(fontsize=6, ncol=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run_demo(opts: DemoOptions, kafka: str | None = None, redis_url: str | None = None) -> dict[str, Any]:
    """Run the closed-loop demo (see module docstring) and return the KPI dictionary.

    ``kafka`` / ``redis_url`` point it at running services; by default it uses
    ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` or starts the embedded stack.

    Raises
    ------
    TimeoutError
        When the worker does not become ready or does not catch up.
    """
    from streams.stack import services

    if kafka and redis_url:
        return asyncio.run(_run(opts, kafka, redis_url))
    settings = opts.settings or Settings()
    kafka_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("RESTOCK_KAFKA_BOOTSTRAP_SERVERS")
    redis_env = os.environ.get("REDIS_URL") or os.environ.get("RESTOCK_REDIS_URL")
    with services(kafka_env, redis_env, settings.stack_dir, settings.kafka_port, settings.redis_port) as svc:
        return asyncio.run(_run(opts, svc.kafka_bootstrap, svc.redis_url))


def print_kpis(result: dict[str, Any]) -> None:
    """Print restock's KPIs next to the baseline's."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="restock vs static (s,S) baseline, evaluation window")
    table.add_column("KPI")
    table.add_column("restock", justify="right")
    table.add_column("baseline", justify="right")
    for k in result["restock"]:
        table.add_row(k, str(result["restock"][k]), str(result["baseline"][k]))
    console = Console()
    console.print(table)
    run = result["run"]
    console.print(f"{run['events_published']} events in {run['wall_time_s']} s "
                  f"({run['events_per_s']} events/s), {run['skus']} SKUs, {run['decisions']} decisions")

