"""The closed loop shared by ``restock demo`` (Kafka path) and ``restock simulate`` (in-process).

One loop, two transports. The loop is the storefront, the warehouse and the accountant; the
transport is how events reach restock's :class:`~agents.pipeline.Pipeline` and how its states and
decisions come back:

* :class:`streams.demo.KafkaTransport`: topics on a real broker, a ``restock worker`` process,
  states in Redis (the production path);
* :class:`streams.simulate.InProcessTransport`: the same ``Pipeline`` and ``SkuProcessor`` called
  in this process with the in-memory state store, records numbered per partition exactly as the
  broker numbers them (Kafka's default murmur2 partitioner), so decisions are identical.

Time advances one period at a time in three phases, each applied completely before the next:
(A) purchase orders answering the previous period's suggestions and receipts due now (at the
period's start), then the period's price/promotion plans (generic CSV only); (B) the period's
orders; (C) restock's states and the decisions they emitted are read back and accounted. A
warehouse turns each ``ReorderSuggested`` (the latest per SKU of a period) into a
``PurchaseOrderPlaced`` and, ``lead_time_days`` after the start of the decision's period, a
``StockReceived`` at the start of that period. With ``--lead-time-sd-days`` or
``--late-probability`` the lead time is random instead (:mod:`streams.lead_times`: gamma,
occasional late deliveries, whole periods, seeded), ``expected_arrival`` still the nominal one,
and the baseline waits as long as restock for an order of the same SKU and period. Orders beyond
on_hand are lost sales (or backorders with ``--backorders``).

With ``--hidden-stockouts`` (:attr:`DemoOptions.hidden_stockouts`) the storefront shows what is
on the shelf: it keeps its own copy of the SKU's on_hand (an
:class:`~agents.inventory.InventoryPosition` fed the same seed, receipts and published orders as
restock's, so the two are equal: ``run.storefront_on_hand_mismatches`` counts the SKUs where they
are not at the end) and publishes no order while the SKU has no stock (on_hand below one unit).
An order placed while some stock is left is published whole, and its part beyond on_hand is a
lost sale restock sees, as in the default storefront. The unpublished units stay unseen by
restock and are counted as demand and lost units in restock's KPIs
(``conservation.restock.hidden_lost_units``): the KPIs are measured on the true demand. Restock
learns such periods as censored only with ``RESTOCK_STOCKOUT_DEMAND=hidden``
(:mod:`agents.censoring`).

A **baseline** runs on the same demand in-process: a static (s, S) fitted on the warm-up period
(the first quarter of the history, no forecasting), same lead time, same lost-sales rule.

Seeding rule: every SKU starts with ``on_hand = ceil(S)`` of the baseline's static policy, for both
policies, by a ``StockSnapshot`` at the first period's start. KPIs are measured on the periods
after the warm-up period (:mod:`streams.panel`, :mod:`streams.kpis`).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from agents.demand import epoch, period_start, to_datetime
from agents.inventory import InventoryPosition
from agents.policy import PolicyParams
from agents.state import SkuState
from schemas.common import TopicRole
from schemas.decisions import ReorderSuggested
from schemas.inputs import OrderPlaced, PurchaseOrderPlaced, StockReceived, StockSnapshot
from streams.config import processor_config
from streams.kpis import PolicyTally
from streams.lead_times import lead_time_draws
from streams.panel import DemandPanel
from streams.rules import simulate_rule, static_seed
from streams.settings import Settings


@dataclass(frozen=True)
class DemoOptions:
    """Options of the closed loop (``restock demo`` / ``restock simulate``; see their ``--help``)."""

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
    per_sku: bool = False  # add a per-SKU block (mean on-hand value, lost units) to the result
    # the warehouse's random lead times (streams.lead_times): gamma sd (days), late deliveries
    lead_time_sd_days: float = 0.0
    late_probability: float = 0.0
    late_days: float = 7.0
    supply_seed: int = 0
    hidden_stockouts: bool = False  # the storefront publishes no order while the shelf is empty

    def __post_init__(self) -> None:
        if self.hidden_stockouts and self.unmet_demand != "lost_sales":
            raise ValueError("--hidden-stockouts (a storefront that takes no order while out of stock) "
                             "contradicts --backorders (one that takes backorders)")


class Transport(Protocol):
    """How the loop reaches restock (see the module docstring)."""

    published: int

    async def publish(self, role: TopicRole, events: list[Any]) -> None:
        """Deliver ``events`` on the input topic of ``role`` and return once all are applied."""
        ...

    async def end_period(self, keys: list[str]) -> tuple[Callable[[], dict[str, SkuState]], list[Any]]:
        """Close the period's phase C.

        Returns a thunk giving the states of ``keys`` as they are now (the demo decodes them in a
        background thread) and the decisions emitted since the last call, sorted by
        ``(occurred_at, key, trigger partition, trigger offset, kind)``.
        """
        ...

    def final_states(self, keys: list[str]) -> dict[str, SkuState]:
        """States of ``keys`` at the end of the run."""
        ...

    @property
    def lag_messages(self) -> int:
        """Consumer lag seen when the last phase was released (0 in-process)."""
        ...


@dataclass
class SkuSim:
    """restock-side accounting and plot traces of one SKU."""

    price: float
    restock_cycle_stockout: bool = False
    trace: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


class LeadTimeCalibration:
    """Bias and coverage of the lead-time demand restock's levels read, against what followed.

    Every ``ceil(L)`` evaluation periods (non-overlapping windows), each SKU decided by the
    policy (past its cold start) contributes its lead-time demand mean, its q90 and q95 and its
    reorder point s (the quantile at its own cycle service level) from the levels of its
    current state, and the demand of the ``ceil(L)`` periods after the review. The levels are
    derived from the state with the worker's own :class:`~agents.processor.LevelsDeriver`, so
    the report is the same for ``restock demo`` (states read from Redis) and ``restock
    simulate``. Calibrated quantiles cover their level; bias is (forecast - actual) / actual.

    Parameters
    ----------
    config : ProcessorConfig
        The worker's processor configuration (:func:`streams.config.processor_config`).
    panel : DemandPanel
        The replayed demand (units per period), for the realised windows.
    """

    def __init__(self, config: Any, panel: DemandPanel) -> None:
        from agents.processor import SkuProcessor

        self._deriver = SkuProcessor(config).deriver
        self._min_history = config.min_history_periods
        self._panel = panel
        self._row = {k: i for i, k in enumerate(panel.keys)}
        self._every = 1
        self._next: int | None = None
        self._sums: dict[str, float] = defaultdict(float)

    def review(self, states: dict[str, SkuState], p0: int) -> None:
        """Record the reviews of period ``p0`` (epoch s) when it starts a window."""
        panel = self._panel
        i = (p0 - panel.first) // panel.step
        if self._next is not None and i < self._next:
            return
        for k, st in states.items():
            if st.model.n_periods < self._min_history:
                continue  # cold start: reported by the decisions' explanations
            keep = st.derived
            try:
                d = self._deriver.derived(st, None)
            finally:
                st.derived = keep  # the worker's cache is the worker's
            if d is None:
                continue
            lv = d.levels
            window = max(1, math.ceil(d.params.lead_time_periods))
            self._every = window
            if i + 1 + window > panel.n_periods:
                continue
            actual = float(panel.demand[self._row[k], i + 1: i + 1 + window].sum())
            c = self._sums
            c["reviews"] += 1
            c["forecast"] += lv.mean_lead_time
            c["actual"] += actual
            c["q90"] += actual <= lv.q90_lead_time
            c["q95"] += actual <= lv.q95_lead_time
            c["s"] += actual <= lv.reorder_point
            c["level"] += d.params.cycle_service_level or 0.0
        self._next = i + self._every

    def report(self) -> dict[str, float | int | None]:
        """The calibration block of the KPI JSON's ``run``.

        ``reviews``; ``bias`` = (forecast - actual) / actual; ``coverage_q90``, ``coverage_q95``
        and ``coverage_reorder_point``, the shares of windows at or below each; and
        ``reorder_point_level``, the mean cycle service level s was set for (None when there
        were no reviews).
        """
        c, n = self._sums, int(self._sums["reviews"])
        if n == 0:
            return {"reviews": 0, "bias": None, "coverage_q90": None, "coverage_q95": None,
                    "coverage_reorder_point": None, "reorder_point_level": None}
        return {
            "reviews": n,
            "bias": round((c["forecast"] - c["actual"]) / c["actual"], 4) if c["actual"] else None,
            "coverage_q90": round(c["q90"] / n, 4),
            "coverage_q95": round(c["q95"] / n, 4),
            "coverage_reorder_point": round(c["s"] / n, 4),
            "reorder_point_level": round(c["level"] / n, 4),
        }


def in_production_order(decisions: list[Any]) -> list[Any]:
    """The period's decisions grouped by SKU key, each SKU's in the order the worker produced them.

    ``reorders`` is keyed by SKU, so one partition holds a SKU's decisions in production order,
    and a consumer sees them in that order whatever it reads first. The warehouse acts on a
    SKU's last suggestion (a newer one replaces the open one), so that order decides what is
    bought. Sorting by event time and trigger offset instead, as before, put a suggestion made
    when a receipt arrived after the one made on the period's demand (the offsets of two topics
    compared): the warehouse bought the pre-demand top-up and weekly SKUs sat at zero stock.
    Python's sort is stable, so sorting by key alone keeps each SKU's order.

    Parameters
    ----------
    decisions : list
        Decisions of one period, each SKU's in production order (a list per partition, or
        the pipeline's output order).

    Returns
    -------
    list
        The same decisions, sorted by SKU key, each SKU's order kept.
    """
    return sorted(decisions, key=lambda d: d.key)


def static_baseline_params(settings: Settings) -> PolicyParams:
    """The static baseline's parameters, days converted to periods.

    Lead time, review period, pack size, MOQ and the settings' cycle service level, whatever
    restock's own target is: the demo's baseline, and the seed stock of every policy.
    """
    return PolicyParams(
        lead_time_periods=settings.days_to_periods(settings.lead_time_days),
        review_period_periods=settings.days_to_periods(settings.review_period_days),
        cycle_service_level=settings.cycle_service_level,
        pack_size=settings.pack_size, moq=settings.moq,
    )


async def run_closed_loop(opts: DemoOptions, settings: Settings, panel: DemandPanel, transport: Transport,
                          *, progress: Any = None, run_extra: dict[str, Any] | None = None,
                          account_async: Callable[[Callable[[], None]], Any] | None = None) -> dict[str, Any]:
    """Run the closed loop over ``panel`` through ``transport``; return the KPI dictionary.

    Parameters
    ----------
    opts : DemoOptions
        Run options (data, period, SKUs, window, unmet-demand rule, outputs).
    settings : Settings
        The run's settings (lead time and review period in days, service target, horizon).
    panel : DemandPanel
        The selected SKUs' demand (:func:`streams.panel.load_panel`).
    transport : Transport
        Kafka (``restock demo``) or in-process (``restock simulate``).
    progress : rich.progress.Progress, optional
        Progress display (a period per step).
    run_extra : dict, optional
        Entries added to the result's ``run`` block (topics, run id).
    account_async : callable, optional
        ``account_async(fn)`` runs a period's accounting ``fn`` in order, possibly in a
        background thread, returning a future; None runs it at once.

    Returns
    -------
    dict
        ``restock`` and ``baseline`` KPIs (:meth:`streams.kpis.PolicyTally.kpis`) and a ``run``
        block (window, target, conservation of units, decisions, wall time, cleaning report).
    """
    t_start = time.perf_counter()
    step = panel.step
    params = static_baseline_params(settings)
    lead_s = int(settings.lead_time_days * 86400)
    keys, first, last = panel.keys, panel.first, panel.last
    n_periods, warm, warm_end = panel.n_periods, panel.warmup_periods, panel.warm_end
    plot_keys = keys[: opts.plot_skus]
    # The baseline: the static (s, S) of streams.rules on the same panel and timing (the demo's
    # per-SKU loop, vectorised; tests/unit/test_rules.py holds them equal). Its seed stock,
    # ceil(S), seeds restock too.
    horizon = settings.horizon_periods
    seed = static_seed(panel, params, horizon)
    leads = lead_time_draws(len(keys), n_periods, lead_time_days=settings.lead_time_days,
                            sd_days=opts.lead_time_sd_days, late_probability=opts.late_probability,
                            late_days=opts.late_days, period_days=panel.period_days, seed=opts.supply_seed)
    row_of = {k: i for i, k in enumerate(keys)}
    base = simulate_rule(panel, "static", params, unmet=opts.unmet_demand, seed_on_hand=seed,
                         track=plot_keys, horizon_periods=horizon, lead_periods=leads,
                         hidden_stockouts=opts.hidden_stockouts)
    sims = {k: SkuSim(price=float(panel.price[i])) for i, k in enumerate(keys)}
    by_period = panel.by_period()
    # Generic CSV: each SKU-period's price / promotion flag / x_* values are the plan of that
    # period, published on the promotions topic `horizon_periods` ahead ("known in
    # advance", as in `restock backtest`).
    plans_due: dict[int, list[Any]] = defaultdict(list)
    if panel.dataset.fmt == "generic":
        from streams.backtest import plan_events

        for ev in plan_events(panel.sales, opts.freq, settings.horizon_periods):
            plans_due[max(first, period_start(opts.freq, epoch(ev.occurred_at)))].append(ev)

    restock = PolicyTally()
    decisions_seen = 0
    pending_pos: list[ReorderSuggested] = []
    receipts_due: dict[int, list[StockReceived]] = defaultdict(list)
    restock_prev_received: dict[str, int] = {}
    per_sku: dict[str, dict[str, float]] = {k: defaultdict(float) for k in keys}
    eval_days = 0
    calibration = LeadTimeCalibration(processor_config(settings), panel)
    # the hidden-stockout storefront's view of the shelf (the same events as restock's position)
    shelf: dict[str, InventoryPosition] = {}
    if opts.hidden_stockouts:
        for i, k in enumerate(keys):
            shelf[k] = InventoryPosition()
            shelf[k].snapshot(int(seed[i]), at=first)
    hidden_total = 0

    def account_day(states: dict[str, SkuState], p0: int, in_eval: bool,
                    demand_today: dict[str, int], new: list[Any], hidden_today: dict[str, int]) -> None:
        """Restock's KPIs and plot traces of period ``p0`` from its states."""
        if in_eval:
            calibration.review(states, p0)
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
            # lost: orders restock saw and could not serve, and those the storefront never published
            lost_today = lost_total - int(lost_before) + hidden_today.get(k, 0)
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
                per_sku[k]["restock_value_days"] += on_hand * sim.price
                per_sku[k]["restock_lost_units"] += lost_today
                per_sku[k]["demand_units"] += q
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

    accounted: list[Any] = []
    await transport.publish("inventory", [
        StockSnapshot(event_id=f"seed-{k}", occurred_at=to_datetime(first), sku=k.split("@")[0],
                      location=k.split("@")[1], on_hand=int(seed[i]))
        for i, k in enumerate(keys)
    ])
    task = progress.add_task("replay", total=n_periods, date="", eps=0.0, lag=0) if progress else None
    for i in range(n_periods):
        p0 = first + i * step
        in_eval = p0 >= warm_end
        # (A) purchase orders for the previous period's suggestions, receipts due now.
        inv: list[Any] = []
        for d in pending_pos:
            po_id = f"PO-{d.event_id[:16]}"
            # The warehouse reads the previous period's suggestions as that period ends and places
            # their purchase orders then: stamped at the end of the previous period (or at the
            # decision's time when later), not with the decision's time, which is older when an
            # older event (a purchase order of the period before) triggered the decision. The lead
            # time runs from the start of the placement's period, which is what restock learns
            # (agents.supply) and what the baseline rules assume (streams.rules).
            at = max(epoch(d.occurred_at), p0 - 1)
            placed = period_start(opts.freq, at)
            if leads is None:
                arrival = max(placed + lead_s, p0)
            else:  # the draw of the SKU and the placement's period (the baseline's too)
                j = min(max((placed - first) // step, 0), n_periods - 1)
                arrival = max(placed + int(leads[row_of[d.key], j]) * step, p0)
            inv.append(PurchaseOrderPlaced(
                event_id=f"po-{po_id}", occurred_at=to_datetime(at), sku=d.sku, location=d.location,
                purchase_order_id=po_id, quantity=d.quantity,
                expected_arrival=to_datetime(max(placed + lead_s, p0)), decision_id=d.event_id))
            receipts_due[arrival].append(StockReceived(
                event_id=f"rcv-{po_id}", occurred_at=to_datetime(arrival), sku=d.sku,
                location=d.location, quantity=d.quantity, purchase_order_id=po_id))
            if in_eval:
                restock.purchase_orders += 1
        pending_pos = []
        inv.extend(receipts_due.pop(p0, []))
        if shelf:
            for ev in inv:
                if isinstance(ev, StockReceived):
                    shelf[ev.key].receive(ev.quantity, None, at=epoch(ev.occurred_at))
        if inv:
            await transport.publish("inventory", inv)
        # (A2) plans published now (generic CSV only).
        if plans_due.get(p0):
            await transport.publish("promotions", plans_due.pop(p0))
        # (B) the period's orders.
        day_rows = by_period.get(p0, [])
        hidden_today: dict[str, int] = defaultdict(int)
        orders = []
        for j, r in enumerate(day_rows):
            if shelf:  # the storefront takes no order while the shelf is empty
                pos = shelf[r.key]
                at = epoch(r.occurred_at)
                if pos.on_hand < 1 and at > pos.last_snapshot_at:  # (else in the seed count)
                    hidden_today[r.key] += r.quantity
                    continue
                pos.sell(r.quantity, at=at, unmet="lost_sales")
            orders.append(OrderPlaced(
                event_id=f"{r.order_id}:{r.sku}:{j}", occurred_at=r.occurred_at, sku=r.sku,
                location=r.location, order_id=r.order_id, quantity=r.quantity,
                unit_price=r.unit_price or 0.0, customer_id=r.customer_id, promo=bool(r.promo)))
        hidden_total += sum(hidden_today.values())
        if orders:
            await transport.publish("orders", orders)
        demand_today: dict[str, int] = defaultdict(int)
        for r in day_rows:
            demand_today[r.key] += r.quantity
        # (C) restock's states and the decisions they emitted.
        states_of, new = await transport.end_period(keys)
        decisions_seen += len(new)
        # A newer suggestion for a SKU replaces its open one: act on the latest only.
        latest = {d.key: d for d in new if isinstance(d, ReorderSuggested)}
        pending_pos.extend(sorted(latest.values(), key=lambda d: (d.occurred_at, d.key)))

        def account(states_of: Any = states_of, p0: int = p0, in_eval: bool = in_eval,
                    demand_today: dict[str, int] = demand_today, new: list[Any] = new,
                    hidden_today: dict[str, int] = hidden_today) -> None:
            account_day(states_of(), p0, in_eval, demand_today, new, hidden_today)

        if account_async is None:
            account()
        else:
            accounted.append(account_async(account))
            if accounted[0].done():
                accounted.pop(0).result()  # re-raise a failure of the accounting now
        if in_eval:
            eval_days += 1
        if progress is not None:
            elapsed = time.perf_counter() - t_start
            progress.update(task, advance=1, date=to_datetime(p0).date().isoformat(),
                            eps=transport.published / max(elapsed, 1e-9), lag=transport.lag_messages)
    for fut in accounted:
        fut.result()
    wall = time.perf_counter() - t_start
    final = transport.final_states(keys)
    seeded = int(seed.sum())
    conservation = {
        "restock": {
            "start_on_hand_units": seeded,
            "received_units": sum(st.position.received for st in final.values()),
            "served_units": sum(st.counters.get("served_units", 0) for st in final.values()),
            "lost_sales_units": sum(st.counters.get("lost_units", 0) for st in final.values()),
            "end_on_hand_units": sum(st.position.on_hand for st in final.values()),
            "hidden_lost_units": hidden_total,
        },
        "baseline": {
            "start_on_hand_units": int(base.start_on_hand.sum()),
            "received_units": int(base.received.sum()),
            "served_units": int(base.served.sum() + base.backorders_served.sum()),
            "lost_sales_units": int(base.lost.sum()),
            "end_on_hand_units": int(base.end_on_hand.sum()),
        },
    }
    result: dict[str, Any] = {
        "restock": restock.kpis(eval_days, panel.period_days),
        "baseline": base.kpis,
        "run": {
            "data": str(opts.data),
            "skus": len(keys),
            "freq": opts.freq,
            "first_period": to_datetime(first).date().isoformat(),
            "last_period": to_datetime(last).date().isoformat(),
            "warmup_periods": warm,
            "evaluation_periods": eval_days,
            "lead_time_days": settings.lead_time_days,
            "lead_time_sd_days": opts.lead_time_sd_days,
            "late_probability": opts.late_probability,
            "late_days": opts.late_days if opts.late_probability else 0.0,
            "supply_seed": opts.supply_seed,
            "lead_time_learning": settings.lead_time_learning,
            "cycle_service_level_target": settings.cycle_service_level,
            "service_target": dict([settings.service_target]),
            "unmet_demand": opts.unmet_demand,
            "storefront": "hidden_stockouts" if opts.hidden_stockouts else "published",
            "stockout_demand": settings.stockout_demand,
            "censored_periods": sum(st.counters.get("censored_periods", 0) for st in final.values()),
            "storefront_on_hand_mismatches": sum(
                1 for k, pos in shelf.items() if k in final and final[k].position.on_hand != pos.on_hand),
            "events_published": transport.published,
            "conservation": conservation,
            "decisions": decisions_seen,
            "liveness_violations": sum(st.counters.get("liveness_violations", 0) for st in final.values()),
            "lead_time_demand_calibration": calibration.report(),
            "wall_time_s": round(wall, 2),
            "events_per_s": round(transport.published / wall, 1),
            "cleaning": panel.dataset.report.as_dict(),
            **(run_extra or {}),
        },
    }
    if opts.per_sku:
        days = max(eval_days, 1)
        result["per_sku"] = {
            k: {"price": sims[k].price, "demand_units": int(v["demand_units"]),
                "restock_mean_on_hand_value": round(v["restock_value_days"] / days, 2),
                "restock_lost_units": int(v["restock_lost_units"])}
            for k, v in per_sku.items()}
    if opts.plot_path:
        for k in plot_keys:
            sims[k].trace["baseline_on_hand"] = [float(x) for x in base.traces[k]]
        plot_skus(opts.plot_path, plot_keys, sims)
        result["run"]["plot"] = str(opts.plot_path)
    if opts.json_path:
        opts.json_path.parent.mkdir(parents=True, exist_ok=True)
        opts.json_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


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


def progress_display(enabled: bool, label: str = "demo") -> Any:
    """A rich progress bar for the loop (one step per period)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(f"[bold]{label}[/] {{task.fields[date]}}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[eps]:.0f} events/s"),
        TextColumn("consumer lag {task.fields[lag]} msgs at release"), TimeElapsedColumn(),
        disable=not enabled, transient=False,
    )


def plot_skus(path: Path, keys: list[str], sims: dict[str, SkuSim]) -> None:
    """PNG of demand, forecast, q90 band, on_hand of both policies and reorders per SKU."""
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
