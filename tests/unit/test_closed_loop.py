"""The closed loop's warehouse (streams/closed_loop.py) on generated weekly data, in-process."""

from __future__ import annotations

import asyncio
import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from streams.closed_loop import DemoOptions, run_closed_loop
from streams.panel import load_panel
from streams.settings import Settings
from streams.simulate import InProcessTransport, simulation_settings


def _weekly_csv(path: Path, weeks: int = 60, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "sku", "location", "quantity", "unit_price"])
        d0 = date(2020, 1, 6)  # a Monday
        for i in range(weeks):
            for sku, lam in (("A", 40.0), ("B", 5.0), ("C", 0.7)):
                q = int(rng.poisson(lam))
                if q:
                    w.writerow([f"{(d0 + timedelta(weeks=i)).isoformat()}T12:00:00", sku, "X", q, "2.0"])


def test_weekly_lead_time_of_one_period_receives_every_purchase_order(tmp_path: Path) -> None:
    """Lead time = 1 period: a suggestion stamped with the previous period's time (one triggered by a
    purchase order event) must still arrive; before the fix its receipt was scheduled in the past
    and its units stayed on order forever, blocking reorders (the weekly closed-loop collapse)."""
    data = tmp_path / "weekly.csv"
    _weekly_csv(data)
    opts = DemoOptions(data=data, fmt="generic", freq="W", skus=None, json_path=None, plot_path=None,
                       progress=False, settings=Settings(min_history_periods=4))
    settings = simulation_settings(opts)
    panel = load_panel(data, "generic", "W", None)
    transport = InProcessTransport(settings, cache_size=100)
    result = asyncio.run(run_closed_loop(opts, settings, panel, transport))
    final = transport.final_states(panel.keys)
    assert result["restock"]["purchase_orders"] > 0
    for st in final.values():
        for _po, (qty, arrival) in st.position.purchase_orders.items():
            assert arrival > panel.last, f"{st.key}: a purchase order of {qty} due {arrival} never arrived"
    c = result["run"]["conservation"]["restock"]
    assert c["start_on_hand_units"] + c["received_units"] - c["served_units"] == c["end_on_hand_units"]
