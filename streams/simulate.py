"""``restock simulate``: the closed loop of ``restock demo`` in one process, no broker, no Redis.

The same loop (:mod:`streams.closed_loop`: storefront, warehouse, baseline, accounting) drives
the same :class:`~agents.pipeline.Pipeline` and :class:`~agents.processor.SkuProcessor` the Faust
worker runs, with the in-memory state store (:class:`~agents.state.InMemoryStateStore`) in place
of Redis. Records are given the partition Kafka's default partitioner would give their key
(:func:`streams.partitioning.partition_for`: murmur2 of the key bytes, as the Java client,
kafka-python and aiokafka compute it) and the
offsets the broker would give them (per topic-partition, in publish order), so the decisions, the
states and the KPI JSON equal the demo's (``tests/integration/test_simulate.py`` holds them
equal on a real slice): backtest = production, only the transport differs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.pipeline import Pipeline, Record
from agents.processor import SkuProcessor
from agents.state import InMemoryStateStore, SkuState
from schemas.codec import decode_decision, encode_event
from schemas.common import TopicRole
from streams.closed_loop import DemoOptions, in_production_order, progress_display, run_closed_loop
from streams.committer import FORCED_REVIEW_CHUNK_SKUS
from streams.panel import load_panel
from streams.partitioning import partition_for
from streams.settings import Settings

__all__ = ["DemoOptions", "InProcessTransport", "run_frontier", "run_simulation",
           "simulation_settings"]


class InProcessTransport:
    """Records straight into the worker's pipeline; states in the in-memory store.

    Parameters
    ----------
    settings : Settings
        The run's settings (topic names, partition count, processor configuration).
    cache_size : int
        Hot SKUs kept by the pipeline (at least every simulated SKU: nothing is evicted).
    """

    def __init__(self, settings: Settings, cache_size: int) -> None:
        from streams.config import processor_config

        self.settings = settings
        self.store = InMemoryStateStore()
        self._topics: dict[TopicRole, str] = {"orders": settings.orders_topic,
                                         "inventory": settings.inventory_topic,
                                         "promotions": settings.promotions_topic}
        roles: dict[str, Any] = {t: r for r, t in self._topics.items()}
        self.pipeline = Pipeline(SkuProcessor(processor_config(settings)), self.store, roles,
                                 cache_size=cache_size, review_chunk_skus=settings.review_chunk_skus)
        self._offsets: dict[tuple[str, int], int] = {}
        self._decisions: list[Any] = []
        self._dirty: dict[str, SkuState] = {}
        self._partition_of: dict[str, int] = {}
        self.published = 0
        self.lag_messages = 0
        self.dead_letters: list[bytes] = []

    async def publish(self, role: TopicRole, events: list[Any]) -> None:
        """Number the events as the broker would and apply them as one batch."""
        topic = self._topics[role]
        n = self.settings.topic_partitions
        records = []
        for ev in events:
            key = ev.key.encode()
            p = partition_for(key, n)
            off = self._offsets.get((topic, p), 0)
            self._offsets[(topic, p)] = off + 1
            records.append(Record(topic, p, off, key, encode_event(ev)))
        self.published += len(records)
        while True:  # as streams.committer.BatchCommitter.commit
            out = self.pipeline.process(records)
            self._take(out)
            if out.stopped_at is None:
                break
            records = records[out.stopped_at:]
            while self.pipeline.sweeping:  # a review that fell behind event time, in chunks
                self._take(self.pipeline.process([], FORCED_REVIEW_CHUNK_SKUS))
        while self.pipeline.sweeping:  # the worker's idle ticks: finish the period review
            self._take(self.pipeline.process([]))

    def _take(self, out: Any) -> None:
        self._decisions.extend(decode_decision(v) for _, v in out.decisions)
        self.dead_letters.extend(v for _, v in out.dead_letters)
        for st in out.dirty:
            self._dirty[st.key] = st
        self._partition_of.update(out.partition_of)

    async def end_period(self, keys: list[str]) -> tuple[Callable[[], dict[str, SkuState]], list[Any]]:
        """Persist the period's dirty states; the live states and the period's decisions."""
        self.store.save_many(list(self._dirty.values()), self._partition_of)
        self._dirty.clear()
        self._partition_of = {}
        new = in_production_order(self._decisions)
        self._decisions = []
        cache = self.pipeline.cache

        def states() -> dict[str, SkuState]:
            return {k: cache[k] for k in keys if k in cache}

        return states, new

    def final_states(self, keys: list[str]) -> dict[str, SkuState]:
        """States as written to the in-memory store."""
        return self.store.load_many(keys)


def simulation_settings(opts: DemoOptions, base: Settings | None = None) -> Settings:
    """The settings of a closed-loop run (the demo's worker gets the same processing knobs)."""
    base = base or opts.settings or Settings()
    return base.model_copy(update={
        "freq": opts.freq,
        "allowed_lateness_s": 0.0,
        "unmet_demand": opts.unmet_demand,
        "orders_topic": "sim.orders",
        "inventory_topic": "sim.inventory",
        "promotions_topic": "sim.promotions",
        "reorders_topic": "sim.reorders",
        "dlq_topic": "sim.dlq",
    })


def run_simulation(opts: DemoOptions) -> dict[str, Any]:
    """Run the closed loop in-process (module docstring) and return the KPI dictionary.

    Raises
    ------
    ValueError
        When the selected data holds no sales.
    RuntimeError
        When an event of the loop itself is dead-lettered (a defect, never expected).
    """
    settings = simulation_settings(opts)
    panel = load_panel(opts.data, opts.fmt, opts.freq, opts.skus, opts.start, opts.end,
                       opts.warmup_fraction)
    transport = InProcessTransport(settings, cache_size=max(settings.hot_sku_cache_size,
                                                            len(panel.keys) + settings.topic_partitions))
    with progress_display(opts.progress, "simulate") as progress:
        result = asyncio.run(run_closed_loop(opts, settings, panel, transport, progress=progress))
    if transport.dead_letters:
        raise RuntimeError(f"{len(transport.dead_letters)} loop event(s) dead-lettered, first: "
                           f"{transport.dead_letters[0][:300]!r}")
    return result


def with_target(opts: DemoOptions, kind: str, value: float) -> DemoOptions:
    """``opts`` with a service target of ``kind`` (``fill_rate`` or ``cycle_service_level``)."""
    base = opts.settings or Settings()
    if kind == "fill_rate":
        s = base.model_copy(update={"fill_rate": value})
    else:
        s = base.model_copy(update={"fill_rate": None, "cycle_service_level": value})
    return replace(opts, settings=s)


#: Default restock sweep of ``restock simulate --targets`` per target kind.
DEFAULT_TARGETS: dict[str, tuple[float, ...]] = {
    # dense where the curves are read (fill 0.90-0.95): a straight line between sparse points
    # of a convex curve over-states the stock (0.83 against 0.81x the best baseline at 0.90)
    "lost_unit_cost": (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0,
                       2.0, 3.0, 5.0, 10.0, 30.0),
    "fill_rate": (0.85, 0.90, 0.93, 0.95, 0.98),
    "cycle_service_level": (0.8, 0.9, 0.95, 0.98, 0.99),
}
#: Fill rates at which the curves are compared (issue #17 reads 0.90, 0.93, 0.95; the weekly sets'
#: curves reach only the lower ones).
SUMMARY_FILLS = (0.80, 0.85, 0.90, 0.93, 0.95)
#: Service targets the baseline rules are swept over (wide, so their curves cover the fills read).
BASELINE_TARGETS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999)


def run_frontier(opts: DemoOptions, kind: str, targets: tuple[float, ...], out_dir: Path, *,
                 label: str = "", workers: int = 2, ablation: bool = False,
                 baselines: bool = True) -> dict[str, Any]:
    """Restock's frontier against the baseline reorder rules, on the same demand and seed.

    restock runs the closed loop (:func:`run_simulation`) once per target, ``workers`` runs at a
    time (separate processes); the baselines (:func:`streams.frontier.run_baselines`: static,
    rolling windows, batch forecast when statsforecast is installed) are swept over
    :data:`BASELINE_TARGETS` cycle service levels from the same seed stock (the loop's static
    policy at its own target). Writes ``frontier.json`` (rows, summary, timing), ``frontier.md``
    (tables) and ``frontier.png`` into ``out_dir``.

    Parameters
    ----------
    opts : DemoOptions
        Data, period, SKUs and loop options (its settings give lead time and review period).
    kind : {"lost_unit_cost", "fill_rate", "cycle_service_level"}
        What ``targets`` are: currency per lost unit, or a service target.
    targets : tuple of float
        restock's sweep.
    out_dir : Path
        Output folder (created).
    label : str
        Title of the plot and tables (the data set).
    workers : int
        Simulations run at once.
    ablation : bool
        Also run restock's previous policy (``demand_source="forecaster"``) at cycle service
        levels 0.8, 0.9, 0.95 as the curve ``restock_forecaster`` (shown, not a baseline).
    baselines : bool
        Run the baseline rules (False: restock only).

    Returns
    -------
    dict
        ``rows`` (frontier rows of every policy), ``summary`` (restock against the best baseline
        at the fill rates of :data:`SUMMARY_FILLS`; :func:`streams.frontier.summary`),
        ``timing_s``.

    Raises
    ------
    ValueError
        On an unknown ``kind``.
    """
    import json
    from concurrent.futures import ProcessPoolExecutor

    from streams.closed_loop import static_baseline_params
    from streams.frontier import (
        format_summary,
        format_table,
        frontier_row,
        plot_frontier,
        run_baselines,
        summary,
    )

    if kind not in DEFAULT_TARGETS:
        raise ValueError(f"unknown target kind {kind!r}; expected one of {sorted(DEFAULT_TARGETS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    base = opts.settings or Settings()
    quiet = replace(opts, json_path=None, plot_path=None, progress=False, per_sku=False)
    jobs: list[tuple[str, str, float, DemoOptions]] = []
    for t in targets:
        if kind == "lost_unit_cost":
            s = base.model_copy(update={"lost_unit_cost": float(t)})
        elif kind == "fill_rate":
            s = base.model_copy(update={"fill_rate": float(t), "lost_unit_cost": None})
        else:
            s = base.model_copy(update={"fill_rate": None, "lost_unit_cost": None,
                                        "cycle_service_level": float(t)})
        jobs.append(("restock", kind, float(t), replace(quiet, settings=s)))
    if ablation:
        for t in (0.8, 0.9, 0.95):
            s = base.model_copy(update={"demand_source": "forecaster", "fill_rate": None,
                                        "lost_unit_cost": None, "cycle_service_level": t})
            jobs.append(("restock_forecaster", "cycle_service_level", t, replace(quiet, settings=s)))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(run_simulation, [j[3] for j in jobs]))
    timing = {"restock_runs": len(jobs), "restock_wall_s": round(time.perf_counter() - t0, 1)}
    rows = [frontier_row(name, k, t, r["restock"]) for (name, k, t, _), r in zip(jobs, results, strict=True)]
    if baselines:
        settings = simulation_settings(opts)
        panel = load_panel(opts.data, opts.fmt, opts.freq, opts.skus, opts.start, opts.end,
                           opts.warmup_fraction)
        params = static_baseline_params(settings)
        t1 = time.perf_counter()
        from streams.lead_times import lead_time_draws

        leads = lead_time_draws(len(panel.keys), panel.n_periods, lead_time_days=settings.lead_time_days,
                                sd_days=opts.lead_time_sd_days, late_probability=opts.late_probability,
                                late_days=opts.late_days, period_days=panel.period_days,
                                seed=opts.supply_seed)
        base_rows, base_timing = run_baselines(panel, params, BASELINE_TARGETS, unmet=opts.unmet_demand,
                                               seed_params=params, lead_periods=leads,
                                               hidden_stockouts=opts.hidden_stockouts)
        timing["baselines_wall_s"] = round(time.perf_counter() - t1, 1)
        timing.update({k: round(v, 3) for k, v in base_timing.items()})
        rows += base_rows
    compared = [r for r in rows if r["policy"] != "restock_forecaster"]
    summ = summary(compared, fills=SUMMARY_FILLS)
    result = {"label": label, "data": str(opts.data), "freq": opts.freq, "target_kind": kind,
              "rows": rows, "summary": summ, "timing_s": timing,
              "run": {k: v for k, v in results[0]["run"].items() if k not in ("cleaning", "plot")}}
    (out_dir / "frontier.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out_dir / "frontier.md").write_text(
        f"# Frontier: {label or opts.data}\n\n{format_summary(summ)}\n\n{format_table(rows)}\n")
    plot_frontier(rows, out_dir / "frontier.png", title=label or str(opts.data))
    return result
