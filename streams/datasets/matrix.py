"""The demand matrix of a dataset: SKUs x periods on the UTC period grid."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from agents.demand import Freq
from streams.datasets.periods import period_delta, period_floor
from streams.datasets.rows import Dataset


@dataclass
class DemandMatrix:
    """Units sold per SKU key and period on a common UTC grid.

    Attributes
    ----------
    keys : list[str]
        SKU keys (``sku@location``), sorted; n of them.
    period_starts : list[datetime]
        Aware UTC period starts, T of them, from the period of the first sale to the period of
        the last sale, consecutive.
    y : np.ndarray, shape (n, T), float64
        Units per period, zero-filled.
    first_period : np.ndarray, shape (n,), int
        Index of each key's first sale; periods before it are not part of its series.
    freq : str
        ``"H"``, ``"D"`` or ``"W"``.

    """

    keys: list[str]
    period_starts: list[datetime]
    y: np.ndarray
    first_period: np.ndarray
    freq: str = "D"


def demand_matrix(dataset: Dataset, freq: Freq) -> DemandMatrix:
    """Aggregate a dataset's sales into units per SKU key and period (:func:`period_floor`).

    Returns are not subtracted (demand is what was ordered).

    Parameters
    ----------
    dataset : Dataset
        Loaded data (only ``sales`` is used).
    freq : {"H", "D", "W"}
        Period.

    Returns
    -------
    DemandMatrix
        ``y`` of shape (n_keys, T); empty (0, 0) when there are no sales.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> from streams.datasets.rows import CleaningReport, Dataset, SaleRow
    >>> t = datetime(2011, 1, 3, 9, tzinfo=UTC)
    >>> rows = [SaleRow(t, "A", "UK", 2, 1.0, None, "1", None),
    ...         SaleRow(t + timedelta(days=2), "B", "UK", 5, 1.0, None, "2", None),
    ...         SaleRow(t + timedelta(days=2, hours=3), "A", "UK", 1, 1.0, None, "3", None)]
    >>> dm = demand_matrix(Dataset(rows, [], CleaningReport(), "x", "generic"), "D")
    >>> dm.keys, dm.y.tolist(), dm.first_period.tolist()
    (['A@UK', 'B@UK'], [[2.0, 0.0, 1.0], [0.0, 0.0, 5.0]], [0, 2])

    """
    step = int(period_delta(freq).total_seconds())
    sales = dataset.sales
    if not sales:
        return DemandMatrix([], [], np.zeros((0, 0)), np.zeros(0, dtype=np.int64), freq)
    floors: dict[datetime, int] = {}
    cells: Counter[tuple[str, int]] = Counter()
    for r in sales:
        f = floors.get(r.occurred_at)
        if f is None:
            f = floors[r.occurred_at] = int(period_floor(r.occurred_at, freq).timestamp())
        cells[(r.key, f)] += r.quantity
    lo, hi = min(floors.values()), max(floors.values())
    T = (hi - lo) // step + 1
    keys = sorted({k for k, _ in cells})
    index = {k: i for i, k in enumerate(keys)}
    y = np.zeros((len(keys), T), dtype=np.float64)
    for (k, f), q in cells.items():
        y[index[k], (f - lo) // step] += q
    nz = y > 0
    first_period = np.where(nz.any(axis=1), nz.argmax(axis=1), T).astype(np.int64)
    starts = [datetime.fromtimestamp(lo + t * step, tz=UTC) for t in range(T)]
    return DemandMatrix(keys, starts, y, first_period, freq)
