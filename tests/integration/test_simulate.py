"""Backtest = production: ``restock simulate`` (in-process) and ``restock demo`` (Kafka, worker,
Redis) give the same KPI JSON on a real slice, daily and weekly with promotion plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.cli import DEFAULT_DATA
from streams.demo import DemoOptions, run_demo
from streams.simulate import run_simulation

PROMO = Path(__file__).resolve().parents[3] / "shared" / "data" / "promo" / "tuna_weekly.csv"


def _comparable(result: dict) -> dict:
    """The KPIs and the run block without what depends on the transport (ids, timing, topics)."""
    run = {k: v for k, v in result["run"].items()
           if k not in {"wall_time_s", "events_per_s", "run_id", "topics", "plot"}}
    return {"restock": result["restock"], "baseline": result["baseline"], "run": run}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", ["daily", "weekly"])
def test_simulate_equals_demo(case: str, kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    if case == "daily":
        opts = dict(data=DEFAULT_DATA, skus=25, start="2011-03-01", end="2011-05-15")
    else:
        if not PROMO.exists():
            pytest.skip(f"{PROMO} not present (the promo sets are not shipped)")
        opts = dict(data=PROMO, fmt="generic", freq="W", skus=4, start="1990-01-01", end="1991-12-31")
    demo = run_demo(DemoOptions(json_path=tmp_path / "demo.json", plot_path=None, progress=False,
                                run_id="eq", **opts),  # type: ignore[arg-type]
                    kafka=kafka_bootstrap, redis_url=redis_url)
    sim = run_simulation(DemoOptions(json_path=tmp_path / "sim.json", plot_path=None, progress=False,
                                     **opts))  # type: ignore[arg-type]
    assert demo["run"]["decisions"] > 0
    assert demo["restock"]["purchase_orders"] > 0
    assert _comparable(sim) == _comparable(demo)
    assert _comparable(json.loads((tmp_path / "sim.json").read_text())) == _comparable(
        json.loads((tmp_path / "demo.json").read_text()))
