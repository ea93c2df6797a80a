"""The generic CSV loader (``timestamp,sku,quantity`` and optional columns)."""

from __future__ import annotations

import csv
import math
from datetime import UTC, date, datetime
from pathlib import Path

from streams.datasets.files import gc_paused, open_text
from streams.datasets.finish import finish_dataset
from streams.datasets.rows import CleaningReport, Dataset, ReturnRow, SaleRow

GENERIC_REQUIRED: tuple[str, ...] = ("timestamp", "sku", "quantity")

_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})


def _parse_ts(s: str) -> datetime:
    """ISO 8601 date or date-time; naive = UTC; ``Z`` accepted."""
    s = s.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    ts = datetime.fromisoformat(s)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _parse_qty(s: str) -> int:
    v = float(s)
    if not math.isfinite(v) or v != int(v):
        raise ValueError(f"quantity must be a whole number of units; got {s!r}")
    return int(v)


def _parse_promo(s: str) -> bool | None:
    v = s.strip().lower()
    if v == "":
        return None
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"promo must be 0/1/true/false; got {s!r}")


def load_generic(path: str | Path, *, skus: int | None = None, start: date | None = None,
                 end: date | None = None, default_location: str = "default",
                 extra_columns: tuple[str, ...] = ()) -> Dataset:
    r"""Load a generic order-line CSV.

    Columns (header names case-insensitive; unknown columns ignored):

    * ``timestamp`` (required) -- ISO 8601; a date only means 00:00 UTC; a naive time is UTC;
      an offset or ``Z`` is converted to UTC.
    * ``sku`` (required), ``quantity`` (required, whole units): ``> 0`` is a sale, ``< 0`` a
      return (:class:`ReturnRow` of ``-quantity`` units, counted as **cancellations**), ``0``
      is dropped (**zero_quantity**).
    * ``location`` (optional; empty or absent -> ``default_location``).
    * ``unit_price`` (optional, currency per unit; empty -> None; ``<= 0`` -> dropped as
      **zero_price**).
    * ``promo`` (optional: ``0/1/true/false/yes/no``, empty -> None).
    * ``order_id`` (optional; empty or absent -> ``f"{path.stem}-{line_no}"`` with the
      1-based physical line number, the header being line 1), ``customer_id`` (optional).
    * ``x_*`` (optional numeric covariates) -> ``SaleRow.extra`` sorted by column name;
      empty cells are omitted.

    A row with an unparseable field or an empty sku is counted as **invalid** and skipped --
    one bad row never aborts the load. Rows are not de-duplicated (identical lines can be
    genuine separate orders in a daily file). Window and ``skus`` selection as in
    :func:`load_online_retail`, with ``skus`` counting SKU keys (``sku@location``).

    Parameters
    ----------
    path : str or Path
        The CSV, plain or gzip-compressed.
    skus : int, optional
        Keep the N SKU keys with the most units sold.
    start, end : date, optional
        Inclusive bounds on the UTC date of the timestamp.
    default_location : str
        Location of rows without one.
    extra_columns : tuple of str
        Further numeric columns read as covariates, named ``x_<column>`` (e.g.
        ``("promo_share",)`` gives ``x_promo_share``); a missing one raises ``ValueError``.

    Returns
    -------
    Dataset
        ``fmt == "generic"``.

    Raises
    ------
    ValueError
        When the header lacks ``timestamp``, ``sku`` or ``quantity`` (the message names it).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = Path(d, "orders.csv")
    ...     _ = f.write_text("timestamp,sku,quantity,promo,x_temp\n"
    ...                      "2024-03-04,A1,3,1,12.5\n2024-03-04T10:00:00+01:00,A1,-1,,\n"
    ...                      "2024-03-05,A1,oops,0,\n")
    ...     ds = load_generic(f)
    >>> ds.sales[0].occurred_at.isoformat(), ds.sales[0].promo, ds.sales[0].extra
    ('2024-03-04T00:00:00+00:00', True, (('x_temp', 12.5),))
    >>> ds.returns[0].occurred_at.isoformat(), ds.returns[0].quantity, ds.sales[0].order_id
    ('2024-03-04T09:00:00+00:00', 1, 'orders-2')
    >>> ds.report.rows_read, ds.report.rows_kept, ds.report.cancellations, ds.report.invalid
    (3, 1, 1, 1)

    """
    p = Path(path)
    report = CleaningReport()
    sales: list[SaleRow] = []
    returns: list[ReturnRow] = []
    times: dict[str, datetime] = {}
    stem = p.stem[:-4] if p.suffix == ".gz" and p.stem.endswith(".csv") else p.stem
    with gc_paused(), open_text(p) as fh:
        reader = csv.reader(fh)
        header = [c.strip().lower() for c in next(reader, [])]
        for col in GENERIC_REQUIRED:
            if col not in header:
                raise ValueError(f"{p}: missing required column {col!r} (header: {header!r})")
        pos = {c: i for i, c in enumerate(header)}
        i_ts, i_sku, i_qty = pos["timestamp"], pos["sku"], pos["quantity"]
        i_loc, i_price, i_promo = pos.get("location"), pos.get("unit_price"), pos.get("promo")
        i_oid, i_cust = pos.get("order_id"), pos.get("customer_id")
        xcols = sorted((c, i) for c, i in pos.items() if c.startswith("x_") and len(c) > 2)
        for c in extra_columns:
            if c.lower() not in pos:
                raise ValueError(f"{p}: missing covariate column {c!r} (header: {header!r})")
            xcols.append((f"x_{c.lower()}", pos[c.lower()]))
        xcols.sort()
        width = len(header)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            report.rows_read += 1
            line_no = reader.line_num
            if len(row) < width:
                row = row + [""] * (width - len(row))
            try:
                tss = row[i_ts]
                ts = times.get(tss)
                if ts is None:
                    ts = times[tss] = _parse_ts(tss)
                sku = row[i_sku].strip()
                if not sku:
                    raise ValueError("empty sku")
                qty = _parse_qty(row[i_qty])
                loc = (row[i_loc].strip() if i_loc is not None else "") or default_location
                price: float | None = None
                if i_price is not None and row[i_price].strip():
                    price = float(row[i_price])
                    if not math.isfinite(price):
                        raise ValueError("non-finite price")
                promo = _parse_promo(row[i_promo]) if i_promo is not None else None
                extra = tuple((c, float(row[i])) for c, i in xcols if row[i].strip())
                if any(not math.isfinite(v) for _, v in extra):
                    raise ValueError("non-finite covariate")
            except (ValueError, IndexError):
                report.invalid += 1
                continue
            oid = (row[i_oid].strip() if i_oid is not None else "") or f"{stem}-{line_no}"
            if qty == 0:
                report.zero_quantity += 1
                continue
            if qty < 0:
                returns.append(ReturnRow(ts, sku, loc, -qty, oid, "cancelled"))
                continue
            if price is not None and price <= 0.0:
                report.zero_price += 1
                continue
            cust = (row[i_cust].strip() or None) if i_cust is not None else None
            sales.append(SaleRow(ts, sku, loc, qty, price, promo, oid, cust, extra))
    return finish_dataset(sales, returns, report, skus, start, end, p, "generic")
