"""Rows and reports of a loaded dataset: demand lines, cancellations/returns, the cleaning report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


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
