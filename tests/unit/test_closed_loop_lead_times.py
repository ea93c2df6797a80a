"""The closed loop's warehouse with random lead times (streams/lead_times.py), in-process."""

from __future__ import annotations

import asyncio
import csv
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from agents.demand import epoch, period_start
from streams.closed_loop import DemoOptions, run_closed_loop
from streams.lead_times import lead_time_draws
from streams.panel import load_panel
from streams.settings import Settings
from streams.simulate import InProcessTransport, simulation_settings


def _daily_csv(path: Path, days: int = 160) -> None:
    rng = np.random.default_rng(5)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "sku", "location", "quantity", "unit_price"])
        for i in range(days):
            for sku, lam in (("A", 12.0), ("B", 4.0), ("C", 1.0)):
                q = int(rng.poisson(lam))
                if q:
                    w.writerow([f"{(date(2021, 1, 4) + timedelta(days=i)).isoformat()}T12:00:00", sku, "X", q,
                                "1.0"])


def _run(data: Path, learning: bool) -> tuple[dict[str, Any], list[Any], dict[str, Any], Any]:
    opts = DemoOptions(data=data, fmt="generic", freq="D", skus=None, json_path=None, plot_path=None,
                       progress=False, settings=Settings(lead_time_learning=learning),
                       lead_time_sd_days=3.0, late_probability=0.2, late_days=7.0, supply_seed=11)
    settings = simulation_settings(opts)
    panel = load_panel(data, "generic", "D", None)
    transport = InProcessTransport(settings, cache_size=50)
    sent: list[Any] = []
    publish = transport.publish

    async def spy(role: Any, events: list[Any]) -> None:
        sent.extend(events)
        await publish(role, events)

    transport.publish = spy  # type: ignore[method-assign]
    result = asyncio.run(run_closed_loop(opts, settings, panel, transport))
    return result, sent, transport.final_states(panel.keys), panel


def test_orders_arrive_after_the_drawn_lead_time_and_restock_learns_it(tmp_path: Path) -> None:
    data = tmp_path / "daily.csv"
    _daily_csv(data)
    result, sent, final, panel = _run(data, learning=True)
    draws = lead_time_draws(len(panel.keys), panel.n_periods, lead_time_days=7.0, sd_days=3.0,
                            late_probability=0.2, late_days=7.0, period_days=1.0, seed=11)
    assert draws is not None
    placed = {e.purchase_order_id: e for e in sent if e.kind == "purchase_order_placed"}
    received = {e.purchase_order_id: e for e in sent if e.kind == "stock_received" and e.purchase_order_id}
    assert len(placed) > 20 and set(received) <= set(placed)
    leads: dict[str, list[float]] = {}
    for po, rcv in received.items():
        order = placed[po]
        start = period_start("D", epoch(order.occurred_at))
        row, col = panel.keys.index(order.key), (start - panel.first) // panel.step
        assert epoch(rcv.occurred_at) == start + int(draws[row, col]) * 86400  # the SKU's draw of that day
        assert epoch(order.expected_arrival) == start + 7 * 86400  # the promise stays nominal
        leads.setdefault(order.key, []).append((epoch(rcv.occurred_at) - start) / 86400)
    assert len({x for v in leads.values() for x in v}) > 3  # random, not 7 every time
    for key, st in final.items():  # restock observed exactly those lead times
        assert st.lead_time.n == len(leads.get(key, []))
        if st.lead_time.n:
            assert abs(st.lead_time.mean - float(np.mean(leads[key]))) < 1e-9
    assert result["run"]["liveness_violations"] == 0
    assert result["run"]["lead_time_sd_days"] == 3.0 and result["run"]["lead_time_learning"] is True
    # seeded: the same run again is the same run
    again, _, _, _ = _run(data, learning=True)
    assert again["restock"] == result["restock"] and again["baseline"] == result["baseline"]
    # learning off: the same warehouse and baseline, nothing learned
    off, _, final_off, _ = _run(data, learning=False)
    assert off["baseline"] == result["baseline"]
    assert all(st.lead_time.n == 0 for st in final_off.values())
