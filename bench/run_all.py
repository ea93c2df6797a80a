"""Run every benchmark (``make bench``) and print one summary table from their JSON files.

Each script runs in its own process, in this order (later ones read bench 1's JSON):
throughput, scaleout, latency, cost_per_sku, backtest_vs_statsforecast, whole_job, and the
hot-path profile. ``--quick`` uses reduced knobs (minutes instead of the full run's hour);
``--summary-only`` just reprints the table from ``out/bench/*.json``.

    python bench/run_all.py            # full knobs (see FULL below)
    python bench/run_all.py --quick    # reduced knobs, marked as such in the summary
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, ROOT, fmt, machine, print_table, write_json  # noqa: E402

FULL: dict[str, list[str]] = {
    "throughput": ["--events", "200000"],
    "scaleout": ["--events", "200000"],
    "latency": ["--warmup-events", "60000", "--probe-events", "20000", "--duration-s", "60"],
    "latency_live": ["--live", "--flush-interval-s", "0.02", "--warmup-events", "60000", "--probe-events",
                     "20000", "--duration-s", "60", "--json", str(OUT / "latency_live.json")],
    "cost_per_sku": [],
    "backtest_vs_statsforecast": ["--skus", "200"],
    "whole_job": [],
    "profile": ["--skip", "40000", "--events", "20000"],
}
QUICK: dict[str, list[str]] = {
    "throughput": ["--events", "60000"],
    "scaleout": ["--events", "60000"],
    "latency": ["--warmup-events", "40000", "--probe-events", "10000", "--duration-s", "30"],
    "latency_live": ["--live", "--flush-interval-s", "0.02", "--warmup-events", "40000", "--probe-events",
                     "10000", "--duration-s", "30", "--json", str(OUT / "latency_live.json")],
    "cost_per_sku": ["--replay-events", "60000", "--synthetic-events", "30000", "--days", "14"],
    "backtest_vs_statsforecast": ["--skus", "100"],
    "whole_job": [],
    "profile": ["--skip", "40000", "--events", "10000"],
}
SCRIPTS = {"profile": "profile_hot_path", "latency_live": "latency"}


def _get(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _cpu(s: dict[str, Any]) -> str:
    """Worker CPU utilisation of the scale-out runs, when recorded."""
    runs = s.get("runs", {})
    if not all("worker_cpu_utilisation" in runs.get(k, {}) for k in ("1", "2")):
        return ""
    one = runs["1"]["worker_cpu_utilisation"][0]
    two = "+".join(f"{u:.2f}" for u in runs["2"]["worker_cpu_utilisation"])
    return f"; worker CPU {one:.2f} vs {two} cores"


def summary_rows(out_dir: Path) -> list[list[Any]]:
    """One row per benchmark: figure, baseline, ratio, target, met (from the JSON files)."""
    rows: list[list[Any]] = []
    if t := _get(out_dir / "throughput.json"):
        rows.append(
            [
                "1 throughput (b)/(a)",
                f"{t['events']:,} orders",
                f"restock {fmt(t['restock_events_per_s'])}/s vs empty agent "
                f"{fmt(t['empty_agent_events_per_s'])}/s",
                t["ratio_restock_over_empty"],
                ">= 0.8",
                t["met"],
            ]
        )
    if s := _get(out_dir / "scaleout.json"):
        rows.append(
            [
                "2 scale-out 2 vs 1 worker",
                f"{s['events']:,} orders, {s['partitions']} partitions",
                f"{fmt(s['two_workers_events_per_s'])}/s vs {fmt(s['one_worker_events_per_s'])}/s"
                + _cpu(s),
                s["speedup"],
                ">= 1.6",
                s["met"],
            ]
        )
    if lat := _get(out_dir / "latency.json"):
        d, k = lat["durable_ms"], lat["decision_ms"]
        rate = lat["achieved_rate_events_per_s"]
        rows.append(
            [
                "3 latency order->decision p99",
                f"{fmt(rate)}/s = {lat['load']} x {fmt(lat['max_rate_events_per_s'])}/s",
                f"p50/p95/p99 {fmt(k['p50'])}/{fmt(k['p95'])}/{fmt(k['p99'])} ms "
                f"({lat['decisions']} decisions)",
                (k["p99"] / 50.0) if k["p99"] else None,
                "< 50 ms",
                lat["decision_p99_met"],
            ]
        )
        rows.append(
            [
                "3 latency order->durable p99",
                f"flush_interval_s={lat['flush_interval_s']}",
                f"p50/p95/p99 {fmt(d['p50'])}/{fmt(d['p95'])}/{fmt(d['p99'])} ms",
                lat["durable_p99_over_flush_interval"],
                "<= 2 x flush interval",
                (lat["durable_p99_over_flush_interval"] or 99) <= 2.0,
            ]
        )
    if (live := _get(out_dir / "latency_live.json")) and live.get("live"):
        own, d = live["decision_own_sku_ms"], live["durable_ms"]
        close, during = live["decision_period_close_ms"], live.get("durable_during_close_ms") or {}
        setup = (f"live event time, close of {live['extra_skus']:,}+ SKUs in the window, "
                 f"{fmt(live['achieved_rate_events_per_s'])}/s, flush_interval_s={live['flush_interval_s']}")
        rows.append(["3b live: order->decision about the ordering SKU p99", setup,
                     f"p50/p95/p99 {fmt(own['p50'])}/{fmt(own['p95'])}/{fmt(own['p99'])} ms "
                     f"({live['decisions_own_sku']} decisions); the close's "
                     f"{live['decisions_on_period_close']:,}: p99 {fmt(close['p99'])} ms, "
                     f"last {fmt(live['last_close_decision_after_crossing_ms'])} ms",
                     (own["p99"] / 50.0) if own["p99"] else None, "< 50 ms",
                     own["p99"] is not None and own["p99"] < 50.0])
        rows.append(["3b live: order->durable p99", setup,
                     f"p50/p95/p99 {fmt(d['p50'])}/{fmt(d['p95'])}/{fmt(d['p99'])} ms; during the close "
                     f"p99 {fmt(during.get('p99'))} ms", live["durable_p99_over_flush_interval"],
                     "<= 2 x flush interval", (live["durable_p99_over_flush_interval"] or 99) <= 2.0])
    if c := _get(out_dir / "cost_per_sku.json"):
        if rp := c.get("replay"):
            rows.append(
                [
                    "4 Redis bytes/SKU@location median",
                    f"{rp['skus']:,} SKUs ({rp['events']:,} orders)",
                    f"median {fmt(rp['bytes_per_sku_median'])} B, "
                    f"p99 {fmt(rp['bytes_per_sku_p99'])} B, "
                    f"+{fmt(rp['index_bytes_per_sku'])} B index; "
                    f"one slot/SKU: {fmt(rp['cluster_one_slot_per_sku'])}; "
                    f"RSS {rp['worker_rss_peak_bytes'] / 2**20:.0f} MiB",
                    round(rp["bytes_per_sku_median"] / 2048, 3),
                    "<= 2048 B",
                    rp["met"],
                ]
            )
        syn = c.get("synthetic") or []
        if syn:
            last = syn[-1]
            rows.append(
                [
                    f"4 events/s {last['skus']:,} vs {syn[0]['skus']:,} SKUs",
                    f"cache {c['hot_sku_cache_size']:,}, {last['events']:,} orders",
                    ", ".join(f"{r['skus']:,}: {fmt(r['events_per_s'])}/s" for r in syn),
                    last["events_per_s_ratio"],
                    "~1 (flat)",
                    c["events_per_s_flat"],
                ]
            )
            rows.append(
                [
                    f"4 worker RSS {last['skus']:,} vs {syn[0]['skus']:,} SKUs",
                    "",
                    ", ".join(f"{r['worker_rss_peak_bytes'] / 2**20:.0f}" for r in syn) + " MiB",
                    last["rss_ratio"],
                    "bounded (~1)",
                    c["rss_bounded"],
                ]
            )
    if b := _get(out_dir / "backtest_vs_statsforecast.json"):
        ets = next((r for r in b["statsforecast"] if r["model"] == "AutoETS"), None)
        rows.append(
            [
                "5 backtest time sf/restock",
                f"{b['skus']} SKUs x {b['windows']} cutoffs x h=7",
                f"restock {fmt(b['restock_wall_s'])} s vs sf all four "
                f"{fmt(b['statsforecast_total_wall_s'])} s"
                + (f" (AutoETS {fmt(ets['wall_s'])} s)" if ets else ""),
                b["time_ratio_total"],
                ">= 10",
                (b["time_ratio_total"] or 0) >= 10,
            ]
        )
        rows.append(
            [
                "5 backtest WAPE restock/best sf",
                f"{b['cells']:,} cells",
                f"restock {fmt(b['restock_wape'])}; "
                + ", ".join(f"{r['model']} {fmt(r['wape'])}" for r in b["statsforecast"]),
                b["wape_ratio_max"],
                "<= 1",
                (b["wape_ratio_max"] or 9) <= 1,
            ]
        )
    if w := _get(out_dir / "whole_job.json"):
        rows.append(
            [
                "6 whole job (restock demo)",
                f"{w['skus']} SKUs, {w['events_published']:,} events",
                f"{fmt(w['wall_s'])} s (compute floor {fmt(w['compute_floor_s'])} s)",
                w["ratio_wall_over_target"],
                "< 180 s",
                w["met"],
            ]
        )
    return rows


def markdown_table(rows: list[list[Any]]) -> str:
    """The summary rows as a Markdown table.

    >>> print(markdown_table([["1 x", "setup", "m", 0.5, ">= 1", False]]))
    | benchmark | setup | measured | ratio | target | met |
    |---|---|---|---:|---|---|
    | 1 x | setup | m | 0.500 | >= 1 | no |
    """
    out = ["| benchmark | setup | measured | ratio | target | met |", "|---|---|---|---:|---|---|"]
    out += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="reduced knobs")
    ap.add_argument("--only", default="", help="comma-separated subset, e.g. throughput,latency")
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument(
        "--markdown", action="store_true", help="print the summary as a Markdown table too"
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar='NAME="ARGS"',
        help='override one script\'s knobs, e.g. --set cost_per_sku="--replay-events 200000"',
    )
    args = ap.parse_args()

    knobs = dict(QUICK if args.quick else FULL)
    for item in args.set:
        name, _, rest = item.partition("=")
        if name not in knobs:
            ap.error(f"--set: unknown benchmark {name!r} (one of {', '.join(knobs)})")
        knobs[name] = rest.split()
    only = [x for x in args.only.split(",") if x] or list(knobs)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
    )
    if not args.summary_only:
        for name in only:
            script = ROOT / "bench" / f"{SCRIPTS.get(name, name)}.py"
            cmd = [sys.executable, str(script), *knobs[name]]
            print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
            t0 = time.perf_counter()
            rc = subprocess.call(cmd, cwd=ROOT, env=env)
            timings[name] = round(time.perf_counter() - t0, 1)
            if rc != 0:
                print(f"!!! {name} failed with exit code {rc}", flush=True)
    rows = summary_rows(OUT)
    print_table(
        f"restock benchmarks ({'QUICK knobs' if args.quick else 'full knobs'}; "
        f"ratios against a baseline "
        f"measured in the same run; {os.cpu_count()} CPUs)",
        ["benchmark", "setup", "measured", "ratio", "target", "met"],
        rows,
    )
    if args.markdown:
        print(markdown_table(rows))
    if not args.summary_only:
        write_json(
            OUT / "summary.json",
            {
                "knobs": "quick" if args.quick else "full",
                "overrides": args.set,
                "args": {k: knobs[k] for k in only},
                "script_wall_s": timings,
                "total_wall_s": round(time.perf_counter() - t_all, 1),
                "rows": rows,
                "machine": machine(),
            },
        )
        print(f"total wall time {time.perf_counter() - t_all:.0f} s; per script {timings}")


if __name__ == "__main__":
    main()
