"""Post-processing shared by the loaders: date window, top-N SKU selection, sorting."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from pathlib import Path

from streams.datasets.files import gc_paused
from streams.datasets.rows import CleaningReport, Dataset, ReturnRow, SaleRow


def _in_window(ts: datetime, start: date | None, end: date | None) -> bool:
    if start is None and end is None:
        return True
    d = ts.date()
    return (start is None or d >= start) and (end is None or d <= end)


def finish_dataset(sales: list[SaleRow], returns: list[ReturnRow], report: CleaningReport,
                   skus: int | None, start: date | None, end: date | None, source: Path,
                   fmt: str) -> Dataset:
    """Apply the date window and the top-N selection (by kept units), sort, fill the report."""
    with gc_paused():
        return _finish_unpaused(sales, returns, report, skus, start, end, source, fmt)


def _finish_unpaused(sales: list[SaleRow], returns: list[ReturnRow], report: CleaningReport,
                     skus: int | None, start: date | None, end: date | None, source: Path,
                     fmt: str) -> Dataset:
    if start is not None or end is not None:
        n_s, n_r = len(sales), len(returns)
        sales = [r for r in sales if _in_window(r.occurred_at, start, end)]
        returns = [r for r in returns if _in_window(r.occurred_at, start, end)]
        report.outside_window += (n_s - len(sales)) + (n_r - len(returns))
    if skus is not None:
        if skus < 0:
            raise ValueError(f"skus must be >= 0; got {skus}")
        units: Counter[str] = Counter()
        for r in sales:
            units[r.key] += r.quantity
        chosen = set(sorted(units, key=lambda k: (-units[k], k))[:skus])
        n_s, n_r = len(sales), len(returns)
        sales = [r for r in sales if r.key in chosen]
        returns = [r for r in returns if r.key in chosen]
        report.not_selected += (n_s - len(sales)) + (n_r - len(returns))
    sales.sort(key=lambda r: (r.occurred_at, r.order_id, r.sku))
    returns.sort(key=lambda r: (r.occurred_at, r.order_id, r.sku))
    report.rows_kept = len(sales)
    report.cancellations = report.returns_kept = len(returns)
    report.skus_kept = len({r.key for r in sales})
    return Dataset(sales=sales, returns=returns, report=report, source=str(source), fmt=fmt)
