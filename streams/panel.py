"""The demand panel every closed-loop simulator replays: SKU selection, periods, prices, warm-up.

``restock demo`` (Kafka path), ``restock simulate`` (in-process) and the baseline reorder rules
(:mod:`streams.rules`) read the same :class:`DemandPanel`, so they see the same SKUs, the same
demand per period and the same evaluation window.

Selection rule: the ``skus`` SKU@locations with the largest demand (units) in the warm-up
window, ties by key; the warm-up window is the first ``warmup_fraction`` of the periods between
the first and the last sale (at least one period). KPIs are measured on the periods after it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from agents.demand import Freq, epoch, period_seconds, period_start


@dataclass(frozen=True)
class DemandPanel:
    """Demand of the selected SKUs per period, with what the simulators need around it.

    Attributes
    ----------
    keys : list of str
        ``sku@location`` of the selected SKUs, largest warm-up demand first; row order of the
        arrays below.
    freq : {"H", "D", "W"}
        Demand period.
    first : int
        Start of the first period (epoch seconds, UTC).
    step : int
        Period length in seconds.
    warmup_periods : int
        Periods ``[0, warmup_periods)`` are the warm-up; KPIs use the periods after it.
    demand : numpy.ndarray, shape (n_skus, n_periods), int64
        Units ordered per SKU and period (event time).
    price : numpy.ndarray, shape (n_skus,), float
        Unit value of each SKU in the data's currency (median positive unit price; 1.0 when the
        data has none), used to value on-hand stock.
    sales : list of streams.datasets.SaleRow
        The selected SKUs' order lines in event-time order (what the event-driven simulators
        publish).
    dataset : streams.datasets.Dataset
        The loaded data set (format, cleaning report).
    """

    keys: list[str]
    freq: Freq
    first: int
    step: int
    warmup_periods: int
    demand: np.ndarray
    price: np.ndarray
    sales: list[Any]
    dataset: Any

    @property
    def n_periods(self) -> int:
        """Number of periods from the first to the last sale (inclusive)."""
        return int(self.demand.shape[1])

    @property
    def last(self) -> int:
        """Start of the last period (epoch seconds)."""
        return self.first + (self.n_periods - 1) * self.step

    @property
    def warm_end(self) -> int:
        """Start of the first evaluation period (epoch seconds)."""
        return self.first + self.warmup_periods * self.step

    @property
    def period_days(self) -> float:
        """Length of one period in days (1/24 hourly, 1 daily, 7 weekly)."""
        return self.step / 86400.0

    def by_period(self) -> dict[int, list[Any]]:
        """Order lines grouped by their period start (epoch seconds), event order kept."""
        out: dict[int, list[Any]] = defaultdict(list)
        for r in self.sales:
            out[period_start(self.freq, epoch(r.occurred_at))].append(r)
        return out


def load_panel(data: Path | str, fmt: str = "auto", freq: Freq = "D", skus: int | None = 300,
               start: str | None = None, end: str | None = None,
               warmup_fraction: float = 0.25) -> DemandPanel:
    """Load, clean and select the demand panel (module docstring).

    Parameters
    ----------
    data : path
        Online Retail file or generic CSV (:func:`streams.datasets.load`).
    fmt : {"auto", "online-retail", "generic"}
        File format.
    freq : {"H", "D", "W"}
        Demand period.
    skus : int or None
        How many SKUs to keep (None or 0: all).
    start, end : str, optional
        ISO dates bounding the history read.
    warmup_fraction : float
        Share of the periods used as warm-up (fitting the static baseline, seeding stock).

    Raises
    ------
    ValueError
        When the selection holds no sales.
    """
    from streams.datasets import load

    d0 = datetime.fromisoformat(start).date() if start else None
    d1 = datetime.fromisoformat(end).date() if end else None
    ds = load(data, fmt, start=d0, end=d1)
    sales = ds.sales
    if not sales:
        raise ValueError("no sales in the selected data")
    step = period_seconds(freq)
    first = period_start(freq, epoch(sales[0].occurred_at))
    last = period_start(freq, epoch(sales[-1].occurred_at))
    n_periods = (last - first) // step + 1
    warm = max(1, int(n_periods * warmup_fraction))
    warm_end = first + warm * step
    vol: dict[str, int] = defaultdict(int)
    for r in sales:
        if epoch(r.occurred_at) < warm_end:
            vol[r.key] += r.quantity
    keys = sorted(vol, key=lambda k: (-vol[k], k))
    if skus:
        keys = keys[:skus]
    row = {k: i for i, k in enumerate(keys)}
    sales = [r for r in sales if r.key in row]
    demand = np.zeros((len(keys), n_periods), dtype=np.int64)
    prices: dict[str, list[float]] = defaultdict(list)
    for r in sales:
        demand[row[r.key], (period_start(freq, epoch(r.occurred_at)) - first) // step] += r.quantity
        if r.unit_price:
            prices[r.key].append(r.unit_price)
    price = np.array([float(np.median(prices[k])) if prices[k] else 1.0 for k in keys])
    return DemandPanel(keys=keys, freq=freq, first=first, step=step, warmup_periods=warm,
                       demand=demand, price=price, sales=sales, dataset=ds)
