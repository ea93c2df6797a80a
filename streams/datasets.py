"""Input data for ``restock backtest`` / ``restock demo``: CSV loaders, cleaning and period grids.

Two formats are read (plain or gzip-compressed, detected by the gzip magic bytes, not the
file name):

* ``online-retail`` -- the UCI *Online Retail* invoice lines (Chen, Sain & Guo 2012; see
  ``data/online_retail/README.md``), cleaned by :func:`load_online_retail`;
* ``generic`` -- one order line per row with ``timestamp,sku,quantity`` and optional
  ``location,unit_price,promo,order_id,customer_id`` and numeric ``x_*`` covariates, read by
  :func:`load_generic`.

Both return a :class:`Dataset`: demand lines (:class:`SaleRow`, sorted by event time),
cancellations/returns (:class:`ReturnRow`, kept apart: a cancellation is not negative demand)
and a :class:`CleaningReport` that accounts for every input row exactly once.

This module needs only the standard library (``csv``, ``gzip``, ``zoneinfo``) plus numpy for
:func:`demand_matrix`; pandas is not used. The 541,909-row Online Retail file loads in about
two seconds.

The period helpers (:func:`period_floor`, :func:`period_delta`, :func:`season_length`) use the
same UTC grid as :mod:`agents.demand`: hours, days, and weeks starting Monday 00:00 UTC.
"""

from __future__ import annotations

import csv
import gc
import gzip
import hashlib
import io
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import numpy as np

from agents import demand as _demand
from agents.demand import Freq

Format = Literal["online-retail", "generic", "auto"]

__all__ = [
    "CleaningReport",
    "Dataset",
    "DemandMatrix",
    "ReturnRow",
    "SaleRow",
    "demand_matrix",
    "detect_format",
    "load",
    "load_generic",
    "load_online_retail",
    "period_delta",
    "period_floor",
    "season_length",
]

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
GENERIC_REQUIRED: tuple[str, ...] = ("timestamp", "sku", "quantity")

_LONDON = ZoneInfo("Europe/London")
_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})


# ------------------------------------------------------------------------------------------------
# rows and reports
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SaleRow:
    """One order line: demand of ``quantity`` units of a SKU at a location.

    Attributes
    ----------
    occurred_at : datetime
        Event time, timezone-aware UTC.
    sku : str
        Product code (Online Retail: StockCode, upper case).
    location : str
        Stocking location (warehouse / store).
    quantity : int
        Units ordered, > 0.
    unit_price : float or None
        Currency per unit (> 0), None when unknown.
    promo : bool or None
        Whether the line was on promotion, None when unknown.
    order_id : str
        Order (invoice) identifier.
    customer_id : str or None
        Customer identifier, None when unknown.
    extra : tuple of (str, float)
        Numeric covariates from ``x_*`` columns, sorted by name.

    """

    occurred_at: datetime
    sku: str
    location: str
    quantity: int
    unit_price: float | None
    promo: bool | None
    order_id: str
    customer_id: str | None
    extra: tuple[tuple[str, float], ...] = ()

    @property
    def key(self) -> str:
        """The SKU key ``"{sku}@{location}"`` (Kafka message key, series id)."""
        return f"{self.sku}@{self.location}"


@dataclass(frozen=True, slots=True)
class ReturnRow:
    """A cancelled (or returned) order line; never counted as (negative) demand.

    Attributes
    ----------
    occurred_at : datetime
        Event time, timezone-aware UTC.
    sku, location : str
        As in :class:`SaleRow`.
    quantity : int
        Units cancelled, > 0.
    order_id : str
        The cancelling invoice / order identifier.
    reason : str
        ``"cancelled"``.

    """

    occurred_at: datetime
    sku: str
    location: str
    quantity: int
    order_id: str
    reason: str = "cancelled"

    @property
    def key(self) -> str:
        """The SKU key ``"{sku}@{location}"``."""
        return f"{self.sku}@{self.location}"


@dataclass
class CleaningReport:
    """Accounting of every input data row: kept, diverted to returns, or dropped (by reason).

    Each row is counted under exactly one reason, so ``rows_read == rows_kept + cancellations
    + stock_adjustments + bad_debt + zero_price + non_product + duplicates + invalid
    + zero_quantity + cancelled_orders + outside_window + not_selected`` (see
    :meth:`accounted`).

    Attributes
    ----------
    rows_read : int
        Data rows in the file (header excluded).
    rows_kept : int
        Rows kept as :class:`SaleRow`.
    cancellations : int
        Rows diverted to :class:`ReturnRow` (``C`` invoices; generic: negative quantity).
    stock_adjustments : int
        Negative quantity without a ``C`` invoice (damages, write-offs): dropped.
    bad_debt : int
        ``A`` invoices / StockCode ``B``: dropped.
    zero_price : int
        Unit price <= 0: dropped.
    non_product : int
        Postage, fees, manual lines, vouchers (:data:`NON_PRODUCT_CODES`): dropped.
    duplicates : int
        Exact repeats of an earlier row: dropped.
    invalid : int
        Unparseable or incomplete rows: dropped.
    zero_quantity : int
        Quantity 0: dropped.
    outside_window : int
        Valid rows (sales or returns) outside ``[start, end]``: dropped.
    not_selected : int
        Valid rows of SKUs not among the ``skus`` largest: dropped.
    cancelled_orders : int
        Orders voided by a matching cancellation shortly after (Online Retail, see
        ``cancel_window``): dropped from demand.
    skus_kept : int
        Distinct SKU keys among the kept sales.
    returns_kept : int
        Returns kept (equals ``cancellations``; stated for readability).

    """

    rows_read: int = 0
    rows_kept: int = 0
    cancellations: int = 0
    stock_adjustments: int = 0
    bad_debt: int = 0
    zero_price: int = 0
    non_product: int = 0
    duplicates: int = 0
    invalid: int = 0
    zero_quantity: int = 0
    outside_window: int = 0
    not_selected: int = 0
    cancelled_orders: int = 0
    skus_kept: int = 0
    returns_kept: int = 0
    _DROP_FIELDS: ClassVar[tuple[str, ...]] = (
        "cancellations", "stock_adjustments", "bad_debt", "zero_price", "non_product",
        "duplicates", "invalid", "zero_quantity", "cancelled_orders", "outside_window",
        "not_selected",
    )

    def accounted(self) -> int:
        """Rows kept plus rows diverted or dropped under every reason (should equal rows_read)."""
        return self.rows_kept + sum(int(getattr(self, f)) for f in self._DROP_FIELDS)

    def as_dict(self) -> dict[str, int]:
        """Plain ``{name: count}`` (JSON-ready), public fields only."""
        names = ("rows_read", "rows_kept", *self._DROP_FIELDS, "skus_kept", "returns_kept")
        return {n: int(getattr(self, n)) for n in names}


@dataclass
class Dataset:
    """Loaded and cleaned order history.

    Attributes
    ----------
    sales : list[SaleRow]
        Demand lines sorted by ``(occurred_at, order_id, sku)``.
    returns : list[ReturnRow]
        Cancellations, same order.
    report : CleaningReport
        Row accounting.
    source : str
        Path of the file read.
    fmt : str
        ``"online-retail"`` or ``"generic"``.

    """

    sales: list[SaleRow]
    returns: list[ReturnRow]
    report: CleaningReport
    source: str
    fmt: str


# ------------------------------------------------------------------------------------------------
# periods
# ------------------------------------------------------------------------------------------------
def period_floor(ts: datetime, freq: Freq) -> datetime:
    """Start of the UTC period (hour, day, or week starting Monday 00:00 UTC) containing ``ts``.

    Parameters
    ----------
    ts : datetime
        Timezone-aware time (any zone; converted to UTC).
    freq : {"H", "D", "W"}
        Period length: hour, day, week.

    Returns
    -------
    datetime
        Aware UTC datetime ``p`` with ``p <= ts < p + period_delta(freq)``.

    Raises
    ------
    ValueError
        When ``ts`` is naive or ``freq`` is unknown.

    Examples
    --------
    >>> t = datetime(2011, 1, 6, 15, 42, 7, tzinfo=UTC)   # a Thursday
    >>> period_floor(t, "H").isoformat(), period_floor(t, "D").isoformat()
    ('2011-01-06T15:00:00+00:00', '2011-01-06T00:00:00+00:00')
    >>> period_floor(t, "W").isoformat()
    '2011-01-03T00:00:00+00:00'

    """
    if ts.tzinfo is None:
        raise ValueError("period_floor needs a timezone-aware datetime; got a naive one")
    # One definition of periods for loaders and agents: agents.demand.period_start.
    return _demand.to_datetime(_demand.period_start(freq, _demand.epoch(ts)))


def period_delta(freq: Freq) -> timedelta:
    """Length of one period.

    Raises
    ------
    ValueError
        When ``freq`` is not H, D or W.

    Examples
    --------
    >>> period_delta("W")
    datetime.timedelta(days=7)

    """
    return timedelta(seconds=_demand.period_seconds(freq))


def season_length(freq: Freq) -> int:
    """Periods per season: 24 (hours of a day), 7 (days of a week), 52 (weeks of a year).

    Raises
    ------
    ValueError
        When ``freq`` is not H, D or W.

    Examples
    --------
    >>> [season_length(f) for f in ("H", "D", "W")]
    [24, 7, 52]

    """
    if freq not in ("H", "D", "W"):
        raise ValueError(f"freq must be one of H, D, W; got {freq!r}")
    return _demand.season_length(freq)


# ------------------------------------------------------------------------------------------------
# file access
# ------------------------------------------------------------------------------------------------
@contextmanager
def _open_text(path: Path) -> Iterator[io.TextIOBase]:
    """Open a CSV as text, transparently gunzipping (by magic bytes); UTF-8 with BOM tolerated."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    raw: Any = gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="") as txt:
        yield txt


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building ~10^6 small objects.

    The loaders allocate no reference cycles; repeated gen-2 collections over the growing row
    lists would otherwise cost about a quarter of the load time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _header(path: Path) -> list[str]:
    with _open_text(path) as fh:
        row = next(csv.reader(fh), [])
    return [c.strip() for c in row]


def detect_format(path: str | Path) -> Literal["online-retail", "generic"]:
    """Detect a file's format from its header row.

    Returns
    -------
    str
        ``"online-retail"`` when the header has ``InvoiceNo`` and ``StockCode``; ``"generic"``
        when it has ``timestamp``, ``sku`` and ``quantity`` (case-insensitive).

    Raises
    ------
    ValueError
        When neither header is recognised.

    """
    p = Path(path)
    cols = _header(p)
    if {"InvoiceNo", "StockCode"} <= set(cols):
        return "online-retail"
    if set(GENERIC_REQUIRED) <= {c.lower() for c in cols}:
        return "generic"
    raise ValueError(f"{p}: unrecognised CSV header {cols[:10]!r}; expected the Online Retail "
                     f"columns or at least {', '.join(GENERIC_REQUIRED)}")


# ------------------------------------------------------------------------------------------------
# shared post-processing: window, top-N selection, sorting
# ------------------------------------------------------------------------------------------------
def _in_window(ts: datetime, start: date | None, end: date | None) -> bool:
    if start is None and end is None:
        return True
    d = ts.date()
    return (start is None or d >= start) and (end is None or d <= end)


def _finish(sales: list[SaleRow], returns: list[ReturnRow], report: CleaningReport,
            skus: int | None, start: date | None, end: date | None, source: Path,
            fmt: str) -> Dataset:
    """Apply the date window and the top-N selection (by kept units), sort, fill the report."""
    with _gc_paused():
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


# ------------------------------------------------------------------------------------------------
# Online Retail
# ------------------------------------------------------------------------------------------------
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
    with _gc_paused(), _open_text(p) as fh:
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
        with _gc_paused():
            sales = _drop_voided_orders(sales, returns, return_customers, cancel_window, report)
    return _finish(sales, returns, report, skus, start, end, p, "online-retail")


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


# ------------------------------------------------------------------------------------------------
# generic
# ------------------------------------------------------------------------------------------------
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
    with _gc_paused(), _open_text(p) as fh:
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
    return _finish(sales, returns, report, skus, start, end, p, "generic")


def load(path: str | Path, fmt: Format = "auto", **kw: Any) -> Dataset:
    """Load a dataset in the given format (``"auto"``: detected from the header row).

    Parameters
    ----------
    path : str or Path
        CSV file, plain or gzip-compressed.
    fmt : {"online-retail", "generic", "auto"}
        Format; ``"auto"`` uses :func:`detect_format`.
    **kw
        Passed to :func:`load_online_retail` or :func:`load_generic` (``skus``, ``start``,
        ``end``, ``location`` / ``default_location``).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown ``fmt`` or unrecognised header.

    """
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "online-retail":
        return load_online_retail(path, **kw)
    if fmt == "generic":
        return load_generic(path, **kw)
    raise ValueError(f"fmt must be 'online-retail', 'generic' or 'auto'; got {fmt!r}")


# ------------------------------------------------------------------------------------------------
# demand matrix
# ------------------------------------------------------------------------------------------------
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
