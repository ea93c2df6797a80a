"""The UCI Online Retail loader and its cleaning rules."""

from __future__ import annotations

import csv
import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from streams.datasets.files import gc_paused, open_text
from streams.datasets.finish import finish_dataset
from streams.datasets.rows import CleaningReport, Dataset, ReturnRow, SaleRow

#: Online Retail StockCodes that are not products (postage, fees, manual lines, vouchers...),
#: compared after upper-casing. Codes starting with one of ``NON_PRODUCT_PREFIXES`` too.
NON_PRODUCT_CODES: frozenset[str] = frozenset(
    {"POST", "DOT", "M", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"}
)
NON_PRODUCT_PREFIXES: tuple[str, ...] = ("GIFT_0001_", "DCGS")

ONLINE_RETAIL_COLUMNS: tuple[str, ...] = (
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
    "CustomerID", "Country",
)

_LONDON = ZoneInfo("Europe/London")


_PRODUCT, _NON_PRODUCT, _BAD_DEBT, _INVALID = 0, 1, 2, 3
_INF = float("inf")


def _code_kind(raw: str) -> tuple[str, int]:
    """Normalised (upper-case) StockCode and its kind: product, non-product, bad debt, invalid."""
    code = raw.strip().upper()
    if not code:
        return code, _INVALID
    if code == "B":
        return code, _BAD_DEBT
    if code in NON_PRODUCT_CODES or code.startswith(NON_PRODUCT_PREFIXES):
        return code, _NON_PRODUCT
    return code, _PRODUCT


def load_online_retail(path: str | Path, *, skus: int | None = None, start: date | None = None,
                       end: date | None = None, location: str = "UK",
                       cancel_window: timedelta | None = timedelta(hours=1)) -> Dataset:
    """Load and clean the UCI Online Retail invoice lines.

    Cleaning rules, applied to each row in this order; the first rule that matches decides the
    row's fate and the :class:`CleaningReport` field it is counted under:

    1. **duplicates** -- a row identical (all eight columns) to an earlier row is dropped
       (5,268 in the shipped file; the first occurrence goes through the rules below).
    2. **invalid** -- wrong number of columns, empty StockCode, unparseable Quantity,
       InvoiceDate or UnitPrice: dropped.
    3. **bad_debt** -- ``A`` invoices or StockCode ``B`` ("Adjust bad debt"): dropped.
    4. **non_product** -- StockCodes of postage, fees, manual lines, vouchers, charity,
       samples (:data:`NON_PRODUCT_CODES`, codes starting with ``gift_0001_`` or ``DCGS``):
       dropped, cancelled or not.
    5. **cancellations** -- ``C`` invoices become :class:`ReturnRow` (``quantity = -Quantity``):
       a cancellation is not negative demand, and the order it cancels stays in the demand.
    6. **stock_adjustments** -- negative Quantity on a non-``C`` invoice ("damaged", "thrown
       away", ...): inventory movements, not demand; dropped.
    7. **zero_quantity** -- Quantity 0 on a non-``C`` invoice: dropped.
    8. **zero_price** -- UnitPrice <= 0 (free samples / adjustments): dropped.
    9. **cancelled_orders** -- an order line voided by a cancellation of the same customer,
       SKU and quantity at most ``cancel_window`` later (default 1 hour; the latest unmatched
       line is taken) is dropped from demand; the cancellation itself stays a
       :class:`ReturnRow`. This removes data-entry errors such as 74,215 units of 23166 on
       2011-01-18 and 80,995 units of 23843 on 2011-12-09, each cancelled within ~15 minutes
       (in the shipped file: 430 lines, 172,749 units). ``cancel_window=None`` keeps them.
    10. The window ``[start, end]`` (inclusive UTC dates of ``occurred_at``) drops the other
       rows (**outside_window**), then ``skus=N`` keeps the N SKUs with the most kept units in
       the window, ties broken by code (**not_selected** for the rest, returns included).

    StockCode is upper-cased (``85123a`` and ``85123A`` are one product). InvoiceDate is UK
    local time (``YYYY-MM-DD HH:MM:SS``) converted from ``Europe/London`` to UTC with
    :mod:`zoneinfo` (GMT in winter, BST = UTC+1 in summer; an ambiguous autumn hour takes its
    first, BST, occurrence -- the shop never trades at 01:00). Every line goes to the one
    ``location`` (the retailer ships from one warehouse). CustomerID ``17850.0`` is read as
    ``"17850"``, empty as None; ``promo`` is None (unknown); ``extra`` is empty.

    Parameters
    ----------
    path : str or Path
        The CSV, plain or gzip-compressed.
    skus : int, optional
        Keep only the N SKUs with the largest total units sold (after cleaning, in the window).
    start, end : date, optional
        Inclusive bounds on the UTC date of ``occurred_at``.
    location : str
        Location of every row.
    cancel_window : timedelta or None
        Rule 9's matching window; None disables it.

    Returns
    -------
    Dataset
        ``fmt == "online-retail"``; ``report.accounted() == report.rows_read``.

    Raises
    ------
    ValueError
        When the header lacks one of the Online Retail columns.
    FileNotFoundError
        When ``path`` does not exist.

    References
    ----------
    Chen, D., Sain, S. L., & Guo, K. (2012). Data mining for the online retail industry.
    Journal of Database Marketing & Customer Strategy Management, 19(3), 197-208.

    """
    p = Path(path)
    report = CleaningReport()
    sales: list[SaleRow] = []
    returns: list[ReturnRow] = []
    seen: set[bytes] = set()
    times: dict[str, datetime] = {}
    prices: dict[str, float] = {}
    customers: dict[str, str | None] = {}
    return_customers: list[str | None] = []
    with gc_paused(), open_text(p) as fh:
        reader = csv.reader(fh)
        header = [c.strip() for c in next(reader, [])]
        missing = [c for c in ONLINE_RETAIL_COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"{p}: not an Online Retail file, missing column(s) {', '.join(missing)}")
        ix = [header.index(c) for c in ONLINE_RETAIL_COLUMNS]
        width = len(header)
        i_inv, i_code, _, i_qty, i_date, i_price, i_cust, _ = ix
        kinds: dict[str, tuple[str, int]] = {}  # raw StockCode -> (code, kind)
        blake2b = hashlib.blake2b
        for row in reader:
            if not row:
                continue  # blank line: not a data row
            report.rows_read += 1
            digest = blake2b("\x1f".join(row).encode(), digest_size=16).digest()
            if digest in seen:
                report.duplicates += 1
                continue
            seen.add(digest)
            if len(row) != width:
                report.invalid += 1
                continue
            inv = row[i_inv].strip()
            rc = row[i_code]
            ck = kinds.get(rc)
            if ck is None:
                ck = kinds[rc] = _code_kind(rc)
            code, kind = ck
            d = row[i_date]
            try:
                qty = int(row[i_qty])
                ts = times.get(d)
                if ts is None:
                    ts = times[d] = (datetime.fromisoformat(d.strip()).replace(tzinfo=_LONDON)
                                     .astimezone(UTC))
                ps = row[i_price]
                price = prices.get(ps)
                if price is None:
                    price = prices[ps] = float(ps)
            except ValueError:
                report.invalid += 1
                continue
            if kind == _INVALID or not inv or price != price or price in (_INF, -_INF):
                report.invalid += 1
            elif inv[0] in "Aa" or kind == _BAD_DEBT:
                report.bad_debt += 1
            elif kind == _NON_PRODUCT:
                report.non_product += 1
            elif inv[0] in "Cc":
                if qty < 0:
                    returns.append(ReturnRow(ts, code, location, -qty, inv, "cancelled"))
                    cs = row[i_cust].strip()
                    return_customers.append((cs[:-2] if cs.endswith(".0") else cs) or None)
                else:
                    report.invalid += 1  # a cancellation must remove units
            elif qty < 0:
                report.stock_adjustments += 1
            elif qty == 0:
                report.zero_quantity += 1
            elif price <= 0.0:
                report.zero_price += 1
            else:
                cs = row[i_cust]
                cust = customers.get(cs, "")
                if cust == "":
                    c = cs.strip()
                    cust = customers[cs] = (c[:-2] if c.endswith(".0") else c) or None
                sales.append(SaleRow(ts, code, location, qty, price, None, inv, cust, ()))
    if cancel_window is not None:
        with gc_paused():
            sales = _drop_voided_orders(sales, returns, return_customers, cancel_window, report)
    return finish_dataset(sales, returns, report, skus, start, end, p, "online-retail")


def _drop_voided_orders(sales: list[SaleRow], returns: list[ReturnRow],
                        return_customers: list[str | None], window: timedelta,
                        report: CleaningReport) -> list[SaleRow]:
    """Drop each order line voided by a cancellation of the same customer, SKU and quantity.

    For every cancellation (oldest first) with a known customer, the latest not yet matched
    sale of the same (customer, SKU, quantity) with ``t_cancel - window <= occurred_at <=
    t_cancel`` is dropped (``report.cancelled_orders``).
    """
    wanted = {(c, r.sku, r.quantity) for r, c in zip(returns, return_customers, strict=True)
              if c is not None}
    if not wanted:
        return sales
    cand: dict[tuple[str | None, str, int], list[int]] = {}
    for i, s in enumerate(sales):
        k = (s.customer_id, s.sku, s.quantity)
        if k in wanted:
            cand.setdefault(k, []).append(i)
    voided: set[int] = set()
    order = sorted(range(len(returns)), key=lambda j: (returns[j].occurred_at, returns[j].order_id))
    for j in order:
        c = return_customers[j]
        if c is None:
            continue
        r = returns[j]
        best = -1
        for i in cand.get((c, r.sku, r.quantity), ()):
            t = sales[i].occurred_at
            if (i not in voided and r.occurred_at - window <= t <= r.occurred_at
                    and (best < 0 or t >= sales[best].occurred_at)):
                best = i
        if best >= 0:
            voided.add(best)
    report.cancelled_orders += len(voided)
    return [s for i, s in enumerate(sales) if i not in voided] if voided else sales
