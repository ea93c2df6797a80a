"""Wire contracts: the pydantic v2 models of every Kafka message restock reads or writes.

Every message is one UTF-8 JSON object. Input topics (``orders``, ``inventory``,
``promotions``) and the output topic ``reorders`` are keyed by the *SKU key*
``"{sku}@{location}"``; ``restock.dlq`` is keyed by ``"{topic}/{partition}/{offset}"`` of the
failed message.

Models are immutable (``frozen=True``) and reject unknown fields (``extra="forbid"``). Every
timestamp must carry a UTC offset and is normalised to UTC; floats must be finite.

Decoding from the wire goes through :func:`decode_order`, :func:`decode_inventory`,
:func:`decode_promotion`, :func:`decode_decision` (or :func:`decode_for_topic_role`). They
validate in *strict* mode (no ``"5"`` for ``5``, no ``5.0`` for an integer, no Unix
timestamps for datetimes), so the JSON Schema exported from these models describes exactly
what the decoders accept, except for the few cross-field rules noted in the model docstrings.
Constructing models in Python is lax (``numpy.int64`` quantities are fine).

Examples
--------
>>> from datetime import datetime, timezone
>>> order = OrderPlaced(event_id="e-1", occurred_at=datetime(2024, 3, 1, 9, tzinfo=timezone.utc),
...                     sku="SKU-1", order_id="o-1", quantity=2, unit_price=3.5)
>>> raw = encode_event(order)
>>> raw[:60]
b'{"schema_version":1,"event_id":"e-1","occurred_at":"2024-03-'
>>> decode_order(raw) == order
True
>>> decode_order(b'{"kind": "order_placed"}')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
schemas.events.EventValidationError: event_id: Field required; occurred_at: Field required; ...

"""

from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeAlias, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "BASE64_PATTERN",
    "DEAD_LETTER_STAGES",
    "MAX_ERROR_MESSAGE_CHARS",
    "MAX_ID_CHARS",
    "MAX_KEY_PART_CHARS",
    "MAX_ORDER_QUANTITY",
    "MAX_STOCK_UNITS",
    "SCHEMA_VERSION",
    "DECISION_SCHEMA_VERSION",
    "TOPIC_DLQ",
    "TOPIC_INVENTORY",
    "TOPIC_ORDERS",
    "TOPIC_PROMOTIONS",
    "TOPIC_REORDERS",
    "DeadLetter",
    "DeadLetterStage",
    "DecisionBase",
    "DecisionEvent",
    "DecisionExplanation",
    "EventBase",
    "EventValidationError",
    "InventoryEvent",
    "OrderCancelled",
    "OrderEvent",
    "OrderPlaced",
    "OverstockDetected",
    "PromotionCancelled",
    "PromotionEvent",
    "PromotionPlanned",
    "PurchaseOrderCancelled",
    "PurchaseOrderPlaced",
    "ReorderSuggested",
    "StockAdjusted",
    "StockReceived",
    "StockSnapshot",
    "TopicRole",
    "KEY_PART_PATTERN",
    "decode_dead_letter",
    "decode_decision",
    "decode_for_topic_role",
    "decode_inventory",
    "decode_order",
    "decode_promotion",
    "encode_event",
    "sku_key",
    "to_wire_dict",
    "topic_of",
]

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

SCHEMA_VERSION: Final = 1
"""Wire schema version of the input events (orders, inventory, promotions) and dead letters."""
DECISION_SCHEMA_VERSION: Final = 2
"""Wire schema version of the decisions on ``reorders``. 2 (issue #18): ``days_of_cover`` in
days (was demand periods), ``excess_units`` measured against the explicit
``explanation.overstock_threshold_units``, new explanation fields ``forecast_mean_per_day``,
``overstock_cover_days`` and ``overstock_threshold_units``."""

TOPIC_ORDERS: Final = "orders"
TOPIC_INVENTORY: Final = "inventory"
TOPIC_PROMOTIONS: Final = "promotions"
TOPIC_REORDERS: Final = "reorders"
TOPIC_DLQ: Final = "restock.dlq"

MAX_ID_CHARS: Final = 128
"""Maximum length of every identifier (event, order, purchase order, promotion ...)."""
MAX_KEY_PART_CHARS: Final = 64
"""Maximum length of ``sku`` and ``location``."""
MAX_ORDER_QUANTITY: Final = 1_000_000
"""Largest quantity (units) one order line or cancellation may carry."""
MAX_STOCK_UNITS: Final = 1_000_000_000
"""Largest absolute stock quantity (units) of an inventory event; guards int64 arithmetic."""
MAX_ERROR_MESSAGE_CHARS: Final = 8192
""":meth:`DeadLetter.from_failure` truncates longer error messages to this many characters."""

TopicRole: TypeAlias = Literal["orders", "inventory", "promotions"]
DeadLetterStage: TypeAlias = Literal["decode", "validate", "process", "late", "fence", "missing_key",
                                     "wrong_partition"]
DEAD_LETTER_STAGES: Final[tuple[str, ...]] = ("decode", "validate", "process", "late", "fence", "missing_key",
                                              "wrong_partition")

# --------------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------------

#: ECMA-262 and Python compatible pattern of a valid ``sku`` / ``location``.
KEY_PART_PATTERN: Final = r"^[^@\s\x00-\x1f\x7f-\x9f\ufeff]+$"
_KEY_PART_FORBIDDEN = re.compile(r"[@\s\x00-\x1f\x7f-\x9f\ufeff]")


def _check_key_part(value: str) -> str:
    if _KEY_PART_FORBIDDEN.search(value) is not None:
        raise PydanticCustomError(
            "key_part_invalid",
            "must not contain '@', whitespace or control characters",
        )
    return value


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise PydanticCustomError(
            "timezone_aware",
            "naive datetime rejected: add a UTC offset such as 'Z' or '+00:00'",
        )
    if value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)


def _check_base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError("base64_invalid", "must be standard base64") from None
    return value


def _reject_bool(value: Any) -> Any:
    # Literal[1] would accept ``true`` (True == 1); the JSON Schema ``const: 1`` does not.
    if isinstance(value, bool):
        raise PydanticCustomError("literal_error", "Input should be 1")
    return value


def _check_nonzero(value: int) -> int:
    if value == 0:
        raise PydanticCustomError("nonzero", "must not be 0")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_reject_bool)]
DecisionSchemaVersion = Annotated[Literal[2], BeforeValidator(_reject_bool)]
KeyPart = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_KEY_PART_CHARS),
    AfterValidator(_check_key_part),
    Field(json_schema_extra={"pattern": KEY_PART_PATTERN}),
]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]
OrderQuantity = Annotated[int, Field(gt=0, le=MAX_ORDER_QUANTITY)]
StockQuantity = Annotated[int, Field(gt=0, le=MAX_STOCK_UNITS)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1)]
Offset = Annotated[int, Field(ge=0)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
BASE64_PATTERN: Final = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
Base64Str = Annotated[
    str,
    AfterValidator(_check_base64),
    Field(json_schema_extra={"contentEncoding": "base64", "pattern": BASE64_PATTERN}),
]


_SECTION_RE = re.compile(r"^(\w[\w ]*)\n-{3,}$", re.MULTILINE)


def _docstring_sections(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a numpy-style docstring into its summary and its ``Attributes`` descriptions."""
    text = inspect.cleandoc(doc or "")
    headings = list(_SECTION_RE.finditer(text))
    summary = text[: headings[0].start()].strip() if headings else text.strip()
    attributes: dict[str, str] = {}
    for i, heading in enumerate(headings):
        if heading.group(1) != "Attributes":
            continue
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        names: list[str] = []
        for line in text[heading.end() : end].splitlines():
            if not line.strip():
                continue
            if not line.startswith(" "):
                names = [n.strip() for n in line.split(" : ")[0].split(",")]
                continue
            for name in names:
                prev = attributes.get(name)
                attributes[name] = f"{prev} {line.strip()}" if prev else line.strip()
    return summary, attributes


def _document_schema(schema: dict[str, Any], cls: type[Any]) -> None:
    """Describe the JSON Schema from the numpy docstrings; mark ``kind`` as required.

    Decoders need ``kind`` to pick the model, so it is required on the wire even though the
    Python constructors default it.
    """
    summary, _ = _docstring_sections(cls.__dict__.get("__doc__"))
    schema["description"] = " ".join(summary.split())
    properties = schema.get("properties", {})
    for klass in reversed(cls.__mro__):
        _, attributes = _docstring_sections(klass.__dict__.get("__doc__"))
        for name, text in attributes.items():
            if name in properties:
                properties[name]["description"] = text
    if "kind" in properties:
        required = schema.setdefault("required", [])
        if "kind" not in required:
            required.insert(0, "kind")


class _WireModel(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra=_document_schema,
    )


def sku_key(sku: str, location: str = "default") -> str:
    """Return the Kafka key ``"{sku}@{location}"`` of a SKU at a location.

    Parameters
    ----------
    sku : str
        Stock keeping unit identifier.
    location : str
        Stocking location identifier.

    Returns
    -------
    str
        The SKU key used by every input topic and by ``reorders``.

    Examples
    --------
    >>> sku_key("85123A", "uk")
    '85123A@uk'

    """
    return f"{sku}@{location}"


class EventBase(_WireModel):
    """Fields common to every input and decision event.

    Attributes
    ----------
    schema_version : int
        Always 1.
    event_id : str
        Producer-assigned unique id (1 to 128 characters), used for de-duplication.
    occurred_at : datetime
        Event time; must carry a UTC offset, normalised to UTC.
    sku : str
        Stock keeping unit (1 to 64 characters, no ``@``, whitespace or control characters).
    location : str
        Stocking location, same rules as ``sku``; ``"default"`` when omitted.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> ev = PromotionCancelled(event_id="e", sku="A", location="uk", promotion_id="p",
    ...     occurred_at=datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    >>> ev.key, ev.occurred_at.isoformat()
    ('A@uk', '2024-01-01T00:00:00+00:00')

    """

    schema_version: SchemaVersion = 1
    event_id: Identifier
    occurred_at: UtcDatetime
    sku: KeyPart
    location: KeyPart = "default"

    @property
    def key(self) -> str:
        """Kafka key ``"{sku}@{location}"``."""
        return f"{self.sku}@{self.location}"


# --------------------------------------------------------------------------------------------
# orders
# --------------------------------------------------------------------------------------------


class OrderPlaced(EventBase):
    """A customer ordered ``quantity`` units of a SKU (topic ``orders``).

    Attributes
    ----------
    order_id : str
        Order (or order line) identifier.
    quantity : int
        Units ordered, 1 to 1,000,000. Never negative: see :class:`OrderCancelled`.
    unit_price : float
        Price paid in ``currency`` per unit, finite and >= 0.
    currency : str
        ISO 4217 code, three upper-case letters; ``"GBP"`` by default.
    customer_id : str or None
        Customer identifier, when known.
    channel : str
        Sales channel, ``"web"`` by default.
    promo : bool
        Whether the line was sold under a promotion.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> ev = OrderPlaced(event_id="e-1", occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc),
    ...                  sku="85123A", order_id="536365", quantity=6, unit_price=2.55)
    >>> ev.kind, ev.key, ev.currency
    ('order_placed', '85123A@default', 'GBP')

    """

    kind: Literal["order_placed"] = "order_placed"
    order_id: Identifier
    quantity: OrderQuantity
    unit_price: NonNegativeFloat
    currency: Currency = "GBP"
    customer_id: Identifier | None = None
    channel: Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY_PART_CHARS)] = "web"
    promo: bool = False


class OrderCancelled(EventBase):
    """An order was cancelled or goods were returned (topic ``orders``).

    Cancellations and returns are explicit events, *not* negative demand: producers must never
    send an :class:`OrderPlaced` with a negative quantity (it is rejected). When ``restock`` is
    true the ``quantity`` units go back on hand.

    Attributes
    ----------
    order_id : str
        The order the units belonged to.
    quantity : int
        Units cancelled or returned, 1 to 1,000,000.
    reason : {"cancelled", "returned"}
        Cancelled before shipping, or returned by the customer.
    restock : bool
        Whether the units are back on hand (default true).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> ev = OrderCancelled(event_id="e-2", occurred_at=datetime(2024, 3, 2, tzinfo=timezone.utc),
    ...                     sku="85123A", order_id="536365", quantity=1, reason="returned")
    >>> ev.kind, ev.restock
    ('order_cancelled', True)

    """

    kind: Literal["order_cancelled"] = "order_cancelled"
    order_id: Identifier
    quantity: OrderQuantity
    reason: Literal["cancelled", "returned"]
    restock: bool = True


OrderEvent = Annotated[Union[OrderPlaced, OrderCancelled], Field(discriminator="kind")]  # noqa: UP007

# --------------------------------------------------------------------------------------------
# inventory
# --------------------------------------------------------------------------------------------


class StockSnapshot(EventBase):
    """Absolute stock count at ``occurred_at`` (topic ``inventory``).

    The snapshot counts every movement with ``occurred_at <= `` its own ``occurred_at``.

    Attributes
    ----------
    on_hand : int
        Units physically on hand, 0 to 1,000,000,000.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> StockSnapshot(event_id="s", occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc),
    ...               sku="A", on_hand=40).on_hand
    40

    """

    kind: Literal["stock_snapshot"] = "stock_snapshot"
    on_hand: Annotated[int, Field(ge=0, le=MAX_STOCK_UNITS)]


class StockReceived(EventBase):
    """Goods arrived at the location (topic ``inventory``).

    Attributes
    ----------
    quantity : int
        Units received, 1 to 1,000,000,000.
    purchase_order_id : str or None
        The purchase order the delivery fulfils (closes that much of it), when known.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> StockReceived(event_id="r", occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc),
    ...               sku="A", quantity=24, purchase_order_id="po-7").kind
    'stock_received'

    """

    kind: Literal["stock_received"] = "stock_received"
    quantity: StockQuantity
    purchase_order_id: Identifier | None = None


class StockAdjusted(EventBase):
    """Signed on-hand correction (topic ``inventory``).

    Attributes
    ----------
    delta : int
        Units added (positive) or removed (negative); never 0; ``|delta| <= 1,000,000,000``.
    reason : {"damage", "shrinkage", "count_correction", "other"}
        Why stock changed.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> StockAdjusted(event_id="a", occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc),
    ...               sku="A", delta=-3, reason="damage").delta
    -3

    """

    kind: Literal["stock_adjusted"] = "stock_adjusted"
    delta: Annotated[
        int,
        Field(ge=-MAX_STOCK_UNITS, le=MAX_STOCK_UNITS, json_schema_extra={"not": {"const": 0}}),
        AfterValidator(_check_nonzero),
    ]
    reason: Literal["damage", "shrinkage", "count_correction", "other"]


class PurchaseOrderPlaced(EventBase):
    """A purchase order was placed with a supplier (topic ``inventory``).

    ``expected_arrival`` must not be before ``occurred_at`` (checked by the decoders, not
    expressible in the JSON Schema).

    Attributes
    ----------
    purchase_order_id : str
        Purchase order identifier.
    quantity : int
        Units ordered, 1 to 1,000,000,000.
    expected_arrival : datetime
        When the goods are expected (aware, normalised to UTC).
    decision_id : str or None
        ``event_id`` of the :class:`ReorderSuggested` this order answers, if any.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> po = PurchaseOrderPlaced(
    ...     event_id="p", occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc), sku="A",
    ...     purchase_order_id="po-7", quantity=48,
    ...     expected_arrival=datetime(2024, 3, 4, tzinfo=timezone.utc))
    >>> (po.expected_arrival - po.occurred_at).days
    3

    """

    kind: Literal["purchase_order_placed"] = "purchase_order_placed"
    purchase_order_id: Identifier
    quantity: StockQuantity
    expected_arrival: UtcDatetime
    decision_id: Identifier | None = None

    @field_validator("expected_arrival")
    @classmethod
    def _arrival_after_order(cls, value: datetime, info: ValidationInfo) -> datetime:
        occurred_at = info.data.get("occurred_at")
        if occurred_at is not None and value < occurred_at:
            raise PydanticCustomError("arrival_before_order", "must not be before occurred_at")
        return value


class PurchaseOrderCancelled(EventBase):
    """An open purchase order was cancelled (topic ``inventory``).

    Attributes
    ----------
    purchase_order_id : str
        The cancelled purchase order.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> PurchaseOrderCancelled(event_id="c", occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc),
    ...                        sku="A", purchase_order_id="po-7").purchase_order_id
    'po-7'

    """

    kind: Literal["purchase_order_cancelled"] = "purchase_order_cancelled"
    purchase_order_id: Identifier


InventoryEvent = Annotated[
    Union[  # noqa: UP007
        StockSnapshot, StockReceived, StockAdjusted, PurchaseOrderPlaced, PurchaseOrderCancelled
    ],
    Field(discriminator="kind"),
]

# --------------------------------------------------------------------------------------------
# promotions
# --------------------------------------------------------------------------------------------


class PromotionPlanned(EventBase):
    """A price / promotion plan for a SKU (topic ``promotions``).

    ``valid_to`` must be after ``valid_from`` (checked by the decoders, not expressible in the
    JSON Schema). Re-sending a ``promotion_id`` replaces the earlier plan.

    Attributes
    ----------
    promotion_id : str
        Promotion identifier.
    valid_from, valid_to : datetime
        The half-open validity interval ``[valid_from, valid_to)`` (aware, UTC).
    unit_price : float or None
        Planned price per unit during the promotion (finite, >= 0), when it changes. Without
        it, the forecaster assumes ``regular price * (1 - depth)``.
    promo_kind : {"discount", "display", "feature", "multi_buy", "none"}
        Mechanism of the promotion; ``"none"`` plans a price (or covariate values) without a
        promotion mechanism, e.g. a price change published ahead.
    depth : float
        Fractional discount in [0, 1] (0.2 means 20 % off).
    covariates : dict[str, float] or None
        Optional planned values of extra numeric covariates (names as configured in
        ``RESTOCK_COVARIATE_EXTRAS``, e.g. ``{"x_promo_share": 0.6}``) over the interval.

    The plan is what the forecaster *forecasts with*; what it learns from is what happened:
    the ``unit_price`` and ``promo`` of the orders.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> p = PromotionPlanned(event_id="pp", occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc),
    ...     sku="A", promotion_id="spring", valid_from=datetime(2024, 3, 8, tzinfo=timezone.utc),
    ...     valid_to=datetime(2024, 3, 15, tzinfo=timezone.utc), promo_kind="discount", depth=0.2)
    >>> p.depth, p.unit_price
    (0.2, None)

    """

    kind: Literal["promotion_planned"] = "promotion_planned"
    promotion_id: Identifier
    valid_from: UtcDatetime
    valid_to: UtcDatetime
    unit_price: NonNegativeFloat | None = None
    promo_kind: Literal["discount", "display", "feature", "multi_buy", "none"]
    depth: Probability
    covariates: dict[Identifier, FiniteFloat] | None = None

    @field_validator("valid_to")
    @classmethod
    def _to_after_from(cls, value: datetime, info: ValidationInfo) -> datetime:
        valid_from = info.data.get("valid_from")
        if valid_from is not None and value <= valid_from:
            raise PydanticCustomError("interval_empty", "must be after valid_from")
        return value


class PromotionCancelled(EventBase):
    """A planned promotion was withdrawn (topic ``promotions``).

    Attributes
    ----------
    promotion_id : str
        The withdrawn promotion.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> PromotionCancelled(event_id="pc", occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc),
    ...                    sku="A", promotion_id="spring").kind
    'promotion_cancelled'

    """

    kind: Literal["promotion_cancelled"] = "promotion_cancelled"
    promotion_id: Identifier


PromotionEvent = Annotated[
    Union[PromotionPlanned, PromotionCancelled],  # noqa: UP007
    Field(discriminator="kind"),
]

# --------------------------------------------------------------------------------------------
# reorders (output)
# --------------------------------------------------------------------------------------------


class DecisionExplanation(_WireModel):
    """Everything a planner needs to audit a decision.

    Quantities are units; ``*_periods`` are numbers of demand periods of length ``period``
    (``"H"`` hour, ``"D"`` day, ``"W"`` week). ``*_lead_time`` forecasts cover the lead time
    L, ``*_protection`` forecasts the protection interval L + R.

    Attributes
    ----------
    on_hand, on_order, backorders, inventory_position : int
        Inventory state when deciding (``inventory_position = on_hand + on_order -
        backorders``; ``on_order`` and ``backorders`` are >= 0).
    period : {"H", "D", "W"}
        Demand period.
    lead_time_periods, lead_time_std_periods, review_period_periods : float
        Mean and standard deviation of the lead time L, and the review period R (all >= 0).
    forecast_mean_lead_time, forecast_q90_lead_time, forecast_q95_lead_time : float
        Demand over L: mean, 90 % and 95 % quantiles (units, >= 0).
    forecast_mean_protection, forecast_q90_protection, forecast_q95_protection : float
        Demand over L + R: mean, 90 % and 95 % quantiles (units, >= 0).
    safety_stock, reorder_point, order_up_to : float
        Safety stock, reorder point s and order-up-to level S (units).
    service_level_target : float
        Target in (0, 1), interpreted per ``service_level_kind``.
    service_level_kind : {"cycle", "fill_rate"}
        Cycle service level (probability of no stockout per cycle) or fill rate.
    model : str
        Forecasting model name.
    model_version : int
        Number of periods the model has learned (>= 0).
    model_recent_mae : float or None
        Recent mean absolute one-step error (units per period), when known.
    trigger_event_id, trigger_topic, trigger_partition, trigger_offset
        The input message that caused the decision.
    promotions : list of str
        Ids of the promotions that moved the forecast.
    forecast_mean_per_day : float or None
        Mean forecast demand over the forecast horizon, in units per **day** (the per-period
        mean divided by the period length in days). Set on ``OverstockDetected``, None on
        ``ReorderSuggested``.
    overstock_cover_days : float or None
        Days of cover above which stock counts as excess (``RESTOCK_OVERSTOCK_COVER_DAYS`` or
        the SKU's override). Set on ``OverstockDetected`` only.
    overstock_threshold_units : float or None
        ``max(order_up_to, overstock_cover_days * forecast_mean_per_day)``: the stock level
        above which units are excess (``OverstockDetected.excess_units`` is measured against
        it). Set on ``OverstockDetected`` only.

    Examples
    --------
    >>> from schemas.export import example_events
    >>> example_events()["reorder_suggested"].explanation.period
    'D'

    """

    on_hand: int
    on_order: Annotated[int, Field(ge=0)]
    backorders: Annotated[int, Field(ge=0)]
    inventory_position: int
    period: Literal["H", "D", "W"]
    lead_time_periods: NonNegativeFloat
    lead_time_std_periods: NonNegativeFloat
    review_period_periods: NonNegativeFloat
    forecast_mean_lead_time: NonNegativeFloat
    forecast_q90_lead_time: NonNegativeFloat
    forecast_q95_lead_time: NonNegativeFloat
    forecast_mean_protection: NonNegativeFloat
    forecast_q90_protection: NonNegativeFloat
    forecast_q95_protection: NonNegativeFloat
    safety_stock: float
    reorder_point: float
    order_up_to: float
    service_level_target: Annotated[float, Field(gt=0, lt=1)]
    service_level_kind: Literal["cycle", "fill_rate"]
    model: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
    model_version: Annotated[int, Field(ge=0)]
    model_recent_mae: NonNegativeFloat | None = None
    trigger_event_id: Identifier
    trigger_topic: Annotated[str, StringConstraints(min_length=1, max_length=249)]
    trigger_partition: Offset
    trigger_offset: Offset
    promotions: list[Identifier] = []
    forecast_mean_per_day: NonNegativeFloat | None = None
    overstock_cover_days: NonNegativeFloat | None = None
    overstock_threshold_units: float | None = None


class DecisionBase(EventBase):
    """Fields common to decisions (topic ``reorders``).

    ``event_id`` is the deterministic decision id and ``occurred_at`` the event time of the
    triggering input event. ``schema_version`` is :data:`DECISION_SCHEMA_VERSION` (2).

    Examples
    --------
    >>> from schemas.export import example_events
    >>> isinstance(example_events()["overstock_detected"], DecisionBase)
    True

    """

    schema_version: DecisionSchemaVersion = 2  # type: ignore[assignment]
    explanation: DecisionExplanation


class ReorderSuggested(DecisionBase):
    """Suggest a purchase order of ``quantity`` units (topic ``reorders``).

    Attributes
    ----------
    quantity : int
        Units to order, rounded to whole packs (>= 0).
    reason : {"projected_stockout", "below_reorder_point"}
        Why the suggestion was made.
    projected_stockout_at : datetime or None
        When on-hand stock is expected to run out, if within the horizon.
    stockout_probability : float
        Probability in [0, 1] of a stockout before an order placed now arrives.
    expires_at : datetime or None
        After this time the suggestion is stale (must not be before ``occurred_at``).

    Examples
    --------
    >>> from schemas.export import example_events
    >>> ev = example_events()["reorder_suggested"]
    >>> ev.kind, ev.quantity, ev.reason
    ('reorder_suggested', 48, 'below_reorder_point')

    """

    kind: Literal["reorder_suggested"] = "reorder_suggested"
    quantity: Annotated[int, Field(ge=0)]
    reason: Literal["projected_stockout", "below_reorder_point"]
    projected_stockout_at: UtcDatetime | None = None
    stockout_probability: Probability
    expires_at: UtcDatetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _expires_after_decision(
        cls, value: datetime | None, info: ValidationInfo
    ) -> datetime | None:
        occurred_at = info.data.get("occurred_at")
        if value is not None and occurred_at is not None and value < occurred_at:
            raise PydanticCustomError("expiry_before_decision", "must not be before occurred_at")
        return value


class OverstockDetected(DecisionBase):
    """Flag stock well above what the SKU needs (topic ``reorders``).

    Attributes
    ----------
    excess_units : int
        Units of inventory position above ``explanation.overstock_threshold_units``:
        ``floor(inventory_position - overstock_threshold_units)`` (>= 1), where the threshold
        is ``max(order_up_to, overstock_cover_days * forecast_mean_per_day)``.
    days_of_cover : float or None
        Days (calendar days, whatever the demand period) the inventory position lasts at the
        forecast mean: ``inventory_position / explanation.forecast_mean_per_day``, rounded to
        0.01; None when the forecast has no demand.
    suggested_action : {"cancel_open_purchase_orders", "pause_replenishment", "markdown"}
        What the planner should consider.

    Examples
    --------
    >>> from schemas.export import example_events
    >>> example_events()["overstock_detected"].suggested_action
    'cancel_open_purchase_orders'

    """

    kind: Literal["overstock_detected"] = "overstock_detected"
    excess_units: Annotated[int, Field(ge=0)]
    days_of_cover: NonNegativeFloat | None = None
    suggested_action: Literal["cancel_open_purchase_orders", "pause_replenishment", "markdown"]


DecisionEvent = Annotated[
    Union[ReorderSuggested, OverstockDetected],  # noqa: UP007
    Field(discriminator="kind"),
]

# --------------------------------------------------------------------------------------------
# restock.dlq
# --------------------------------------------------------------------------------------------


class DeadLetter(_WireModel):
    """Envelope of a message restock could not apply (topic ``restock.dlq``).

    Attributes
    ----------
    dead_letter_id : str
        Deterministic id, see :meth:`from_failure`.
    source_topic : str
        Topic of the failed message.
    partition, offset : int
        Its partition and offset (>= 0).
    key_b64 : str or None
        The original key bytes, standard base64, or None when the message had no key.
    value_b64 : str
        The original value bytes, standard base64.
    stage : {"decode", "validate", "process", "late", "fence", "missing_key", "wrong_partition"}
        Where it failed: ``decode`` a record of a topic that has no decoder (not an input
        topic); ``validate`` not UTF-8, not JSON, a schema violation, or a message key other
        than the payload's ``sku@location``; ``process`` applying it raised; ``late`` too late
        for its demand period; ``fence`` rejected by the offset fence; ``missing_key`` a
        record without a key; ``wrong_partition`` a record on another partition than its
        key's under Kafka's default (murmur2) partitioner (one partition owns a SKU).
    error_type, error_message : str
        Exception class name and message.
    failed_at : datetime
        Processing (wall-clock) time of the failure, UTC.
    occurred_at : datetime or None
        Event time of the failed message, when it could be decoded.
    value_size : int or None
        Size of the original value in bytes.
    value_truncated : bool
        True when only the first ``max_value_bytes`` of a huge value are kept (so the dead
        letter itself fits in a Kafka message); the full value stays at the source
        topic/partition/offset for as long as that topic's retention keeps it.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> dl = DeadLetter.from_failure("orders", 0, 42, b"A@uk", b"not json", "decode",
    ...                              ValueError("boom"), datetime(2024, 3, 1, tzinfo=timezone.utc))
    >>> dl.original_value(), dl.error_type, dl.key
    (b'not json', 'ValueError', 'orders/0/42')

    """

    schema_version: SchemaVersion = 1
    dead_letter_id: Identifier
    source_topic: Annotated[str, StringConstraints(min_length=1, max_length=249)]
    partition: Offset
    offset: Offset
    key_b64: Base64Str | None = None
    value_b64: Base64Str
    stage: DeadLetterStage
    error_type: Annotated[str, StringConstraints(min_length=1)]
    error_message: str
    failed_at: UtcDatetime
    occurred_at: UtcDatetime | None = None
    value_size: Annotated[int, Field(ge=0)] | None = None
    value_truncated: bool = False

    @property
    def key(self) -> str:
        """Kafka key of the dead letter: ``"{source_topic}/{partition}/{offset}"``."""
        return f"{self.source_topic}/{self.partition}/{self.offset}"

    @staticmethod
    def make_id(source_topic: str, partition: int, offset: int, stage: str) -> str:
        """Return the deterministic dead-letter id.

        Parameters
        ----------
        source_topic : str
            Topic of the failed message.
        partition, offset : int
            Its partition and offset.
        stage : str
            Failure stage.

        Returns
        -------
        str
            First 32 hex characters of ``sha256("{topic}/{partition}/{offset}/{stage}")``.

        Examples
        --------
        >>> DeadLetter.make_id("orders", 0, 42, "decode") == DeadLetter.make_id(
        ...     "orders", 0, 42, "decode")
        True
        >>> len(DeadLetter.make_id("orders", 0, 42, "decode"))
        32

        """
        digest = hashlib.sha256(f"{source_topic}/{partition}/{offset}/{stage}".encode())
        return digest.hexdigest()[:32]

    @classmethod
    def from_failure(
        cls,
        source_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        stage: DeadLetterStage,
        exc_or_message: BaseException | str,
        failed_at: datetime,
        *,
        occurred_at: datetime | None = None,
        max_value_bytes: int = 512 * 1024,
    ) -> DeadLetter:
        """Build the dead letter of a failed message.

        Parameters
        ----------
        source_topic : str
            Topic the message was consumed from.
        partition, offset : int
            Its partition and offset.
        key : bytes or None
            Original key bytes (None when absent).
        value : bytes or None
            Original value bytes (None, a tombstone, is stored as empty bytes).
        stage : {"decode", "validate", "process", "late", "fence", "missing_key", "wrong_partition"}
            Where processing failed.
        exc_or_message : BaseException or str
            The exception (its class name becomes ``error_type``) or a message (``error_type``
            is then ``"Error"``). Messages longer than 8192 characters are truncated.
        failed_at : datetime
            Processing time of the failure (aware).
        occurred_at : datetime or None, keyword-only
            Event time of the message, when known.
        max_value_bytes : int, keyword-only
            Values longer than this (bytes) are truncated (``value_truncated=True``) so that the
            base64 envelope stays below Kafka's default 1 MB message limit.

        Returns
        -------
        DeadLetter
            With ``dead_letter_id = DeadLetter.make_id(source_topic, partition, offset, stage)``,
            so re-processing the same message after a crash yields the same id.

        Raises
        ------
        pydantic.ValidationError
            When an argument violates the model (naive ``failed_at``, negative offset...).

        Examples
        --------
        >>> from datetime import datetime, timezone
        >>> dl = DeadLetter.from_failure("inventory", 3, 7, None, b"{}", "late",
        ...     "period already closed", datetime(2024, 3, 1, tzinfo=timezone.utc))
        >>> dl.error_type, dl.error_message, dl.key_b64
        ('Error', 'period already closed', None)

        """
        if isinstance(exc_or_message, BaseException):
            error_type = type(exc_or_message).__name__
            message = str(exc_or_message) or repr(exc_or_message)
        else:
            error_type = "Error"
            message = str(exc_or_message)
        if len(message) > MAX_ERROR_MESSAGE_CHARS:
            message = message[: MAX_ERROR_MESSAGE_CHARS - 15] + "... (truncated)"
        return cls(
            dead_letter_id=cls.make_id(source_topic, partition, offset, stage),
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            key_b64=None if key is None else base64.b64encode(bytes(key)).decode("ascii"),
            value_b64=base64.b64encode(bytes(value or b"")[:max_value_bytes]).decode("ascii"),
            stage=stage,
            error_type=error_type,
            error_message=message,
            failed_at=failed_at,
            occurred_at=occurred_at,
            value_size=len(value or b""),
            value_truncated=len(value or b"") > max_value_bytes,
        )

    def original_value(self) -> bytes:
        """Return the original message value bytes.

        Examples
        --------
        >>> from schemas.export import example_events
        >>> example_events()["dead_letter"].original_value()
        b'{"kind":"order_placed","quantity":-1}'

        """
        return base64.b64decode(self.value_b64)

    def original_key(self) -> bytes | None:
        """Return the original message key bytes, or None when it had no key.

        Examples
        --------
        >>> from schemas.export import example_events
        >>> example_events()["dead_letter"].original_key()
        b'85123A@uk'

        """
        return None if self.key_b64 is None else base64.b64decode(self.key_b64)


# --------------------------------------------------------------------------------------------
# Decoding / encoding
# --------------------------------------------------------------------------------------------

_MAX_REPORTED_ERRORS: Final = 20
_ROOT: Final = "<root>"


def _format_loc(loc: Sequence[str | int]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts) or _ROOT


class EventValidationError(ValueError):
    """A message is not a valid event; raised by every ``decode_*`` function.

    ``str()`` lists ``"<field path>: <problem>"`` pairs separated by ``"; "``; the path is
    ``<root>`` for problems with the message as a whole (invalid JSON, not UTF-8, not an
    object) and ``kind`` for a missing or unknown discriminator.

    Parameters
    ----------
    errors : iterable of (str, str)
        ``(field path, message)`` pairs.

    Attributes
    ----------
    errors : list of (str, str)
        The same pairs.

    Examples
    --------
    >>> try:
    ...     decode_order(b'{"kind": "order_placed", "quantity": 0}')
    ... except EventValidationError as exc:
    ...     ("quantity", "Input should be greater than 0") in exc.errors
    True
    >>> str(EventValidationError([("sku", "Field required")]))
    'sku: Field required'

    """

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        self.errors: list[tuple[str, str]] = [(str(loc), str(msg)) for loc, msg in errors]
        super().__init__("; ".join(f"{loc}: {msg}" for loc, msg in self.errors))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errors,))

    @classmethod
    def from_validation_error(
        cls, exc: ValidationError, union_tags: frozenset[str] = frozenset()
    ) -> EventValidationError:
        """Convert a pydantic ``ValidationError``, dropping the union tag from locations.

        Parameters
        ----------
        exc : pydantic.ValidationError
            The error raised by a ``TypeAdapter``.
        union_tags : frozenset of str
            Discriminator values of the union validated (stripped from the paths).

        Returns
        -------
        EventValidationError

        Examples
        --------
        >>> from pydantic import TypeAdapter, ValidationError
        >>> try:
        ...     TypeAdapter(int).validate_json(b"x")
        ... except ValidationError as exc:
        ...     str(EventValidationError.from_validation_error(exc))
        '<root>: Invalid JSON: expected value at line 1 column 1'

        """
        raw = exc.errors(include_url=False, include_context=False, include_input=False)
        pairs: list[tuple[str, str]] = []
        for err in raw[:_MAX_REPORTED_ERRORS]:
            loc = err["loc"]
            if loc and union_tags and isinstance(loc[0], str) and loc[0] in union_tags:
                loc = loc[1:]
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                path = "kind"
            else:
                path = _format_loc(loc)
            pairs.append((path, err["msg"]))
        if len(raw) > _MAX_REPORTED_ERRORS:
            pairs.append((_ROOT, f"... and {len(raw) - _MAX_REPORTED_ERRORS} more errors"))
        return cls(pairs)


def _union_tags(*models: type[BaseModel]) -> frozenset[str]:
    return frozenset(model.model_fields["kind"].default for model in models)


_ORDER_ADAPTER: TypeAdapter[OrderPlaced | OrderCancelled] = TypeAdapter(OrderEvent)
_INVENTORY_ADAPTER: TypeAdapter[
    StockSnapshot | StockReceived | StockAdjusted | PurchaseOrderPlaced | PurchaseOrderCancelled
] = TypeAdapter(InventoryEvent)
_PROMOTION_ADAPTER: TypeAdapter[PromotionPlanned | PromotionCancelled] = TypeAdapter(PromotionEvent)
_DECISION_ADAPTER: TypeAdapter[ReorderSuggested | OverstockDetected] = TypeAdapter(DecisionEvent)
_DEAD_LETTER_ADAPTER: TypeAdapter[DeadLetter] = TypeAdapter(DeadLetter)

_ORDER_TAGS = _union_tags(OrderPlaced, OrderCancelled)
_INVENTORY_TAGS = _union_tags(
    StockSnapshot, StockReceived, StockAdjusted, PurchaseOrderPlaced, PurchaseOrderCancelled
)
_PROMOTION_TAGS = _union_tags(PromotionPlanned, PromotionCancelled)
_DECISION_TAGS = _union_tags(ReorderSuggested, OverstockDetected)

RawMessage: TypeAlias = "bytes | bytearray | memoryview | str"


def _decode(adapter: TypeAdapter[Any], raw: RawMessage | None, tags: frozenset[str]) -> Any:
    if raw is None:
        raise EventValidationError([(_ROOT, "empty message value (tombstone)")])
    if isinstance(raw, memoryview):
        raw = raw.tobytes()
    try:
        return adapter.validate_json(raw, strict=True)
    except ValidationError as exc:
        raise EventValidationError.from_validation_error(exc, tags) from exc


def decode_order(raw: RawMessage) -> OrderPlaced | OrderCancelled:
    """Decode one ``orders`` message value.

    Parameters
    ----------
    raw : bytes
        The UTF-8 JSON message value.

    Returns
    -------
    OrderPlaced or OrderCancelled

    Raises
    ------
    EventValidationError
        Not UTF-8, not JSON, unknown ``kind`` or any field invalid.

    Examples
    --------
    >>> decode_order(b'{"kind":"order_cancelled","event_id":"e","sku":"A","order_id":"o",'
    ...              b'"occurred_at":"2024-03-01T10:00:00+02:00","quantity":1,'
    ...              b'"reason":"cancelled"}').occurred_at.hour
    8
    >>> decode_order(b'{"kind":"order_placed","event_id":"e","sku":"A","order_id":"o",'
    ...              b'"occurred_at":"2024-03-01T10:00:00Z","quantity":-1,"unit_price":1}')
    Traceback (most recent call last):
    ...
    schemas.events.EventValidationError: quantity: Input should be greater than 0

    """
    return _decode(_ORDER_ADAPTER, raw, _ORDER_TAGS)  # type: ignore[no-any-return]


def decode_inventory(
    raw: RawMessage,
) -> StockSnapshot | StockReceived | StockAdjusted | PurchaseOrderPlaced | PurchaseOrderCancelled:
    """Decode one ``inventory`` message value.

    Parameters
    ----------
    raw : bytes
        The UTF-8 JSON message value.

    Returns
    -------
    StockSnapshot, StockReceived, StockAdjusted, PurchaseOrderPlaced or PurchaseOrderCancelled

    Raises
    ------
    EventValidationError
        Not UTF-8, not JSON, unknown ``kind`` or any field invalid.

    Examples
    --------
    >>> decode_inventory(b'{"kind":"stock_snapshot","event_id":"s","sku":"A",'
    ...                  b'"occurred_at":"2024-03-01T00:00:00Z","on_hand":12}').on_hand
    12
    >>> decode_inventory(b'{"kind":"stock_count"}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    schemas.events.EventValidationError: kind: Input tag 'stock_count' found using 'kind' ...

    """
    return _decode(_INVENTORY_ADAPTER, raw, _INVENTORY_TAGS)  # type: ignore[no-any-return]


def decode_promotion(raw: RawMessage) -> PromotionPlanned | PromotionCancelled:
    """Decode one ``promotions`` message value.

    Parameters
    ----------
    raw : bytes
        The UTF-8 JSON message value.

    Returns
    -------
    PromotionPlanned or PromotionCancelled

    Raises
    ------
    EventValidationError
        Not UTF-8, not JSON, unknown ``kind`` or any field invalid.

    Examples
    --------
    >>> decode_promotion(b'{"kind":"promotion_cancelled","event_id":"c","sku":"A",'
    ...                  b'"occurred_at":"2024-03-01T00:00:00Z","promotion_id":"p"}').promotion_id
    'p'

    """
    return _decode(_PROMOTION_ADAPTER, raw, _PROMOTION_TAGS)  # type: ignore[no-any-return]


def decode_decision(raw: RawMessage) -> ReorderSuggested | OverstockDetected:
    """Decode one ``reorders`` message value.

    Parameters
    ----------
    raw : bytes
        The UTF-8 JSON message value.

    Returns
    -------
    ReorderSuggested or OverstockDetected

    Raises
    ------
    EventValidationError
        Not UTF-8, not JSON, unknown ``kind`` or any field invalid.

    Examples
    --------
    >>> from schemas.export import example_events
    >>> ev = example_events()["overstock_detected"]
    >>> decode_decision(encode_event(ev)) == ev
    True

    """
    return _decode(_DECISION_ADAPTER, raw, _DECISION_TAGS)  # type: ignore[no-any-return]


def decode_dead_letter(raw: RawMessage) -> DeadLetter:
    """Decode one ``restock.dlq`` message value.

    Parameters
    ----------
    raw : bytes
        The UTF-8 JSON message value.

    Returns
    -------
    DeadLetter

    Raises
    ------
    EventValidationError
        Not UTF-8, not JSON or any field invalid.

    Examples
    --------
    >>> from schemas.export import example_events
    >>> dl = example_events()["dead_letter"]
    >>> decode_dead_letter(encode_event(dl)) == dl
    True

    """
    return _decode(_DEAD_LETTER_ADAPTER, raw, frozenset())  # type: ignore[no-any-return]


_DECODERS: Final = {
    "orders": decode_order,
    "inventory": decode_inventory,
    "promotions": decode_promotion,
}


def decode_for_topic_role(role: TopicRole, raw: RawMessage) -> EventBase:
    """Decode a message value of the input topic playing ``role``.

    Parameters
    ----------
    role : {"orders", "inventory", "promotions"}
        Role of the topic the message came from (topic names may be prefixed in deployment).
    raw : bytes
        The UTF-8 JSON message value.

    Returns
    -------
    EventBase
        One of the order, inventory or promotion events.

    Raises
    ------
    EventValidationError
        The message is invalid for that role.
    ValueError
        ``role`` is not an input topic role (a programming error, not a bad message).

    Examples
    --------
    >>> decode_for_topic_role("promotions", b'{"kind":"promotion_cancelled","event_id":"c",'
    ...     b'"sku":"A","occurred_at":"2024-03-01T00:00:00Z","promotion_id":"p"}').kind
    'promotion_cancelled'
    >>> decode_for_topic_role("orders", b'{"kind":"promotion_cancelled"}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    schemas.events.EventValidationError: kind: Input tag 'promotion_cancelled' found ...

    """
    try:
        decoder = _DECODERS[role]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown topic role {role!r}; expected one of {sorted(_DECODERS)}"
        ) from None
    return decoder(raw)


_TOPIC_BY_TYPE: Final[dict[type[BaseModel], str]] = {
    OrderPlaced: TOPIC_ORDERS,
    OrderCancelled: TOPIC_ORDERS,
    StockSnapshot: TOPIC_INVENTORY,
    StockReceived: TOPIC_INVENTORY,
    StockAdjusted: TOPIC_INVENTORY,
    PurchaseOrderPlaced: TOPIC_INVENTORY,
    PurchaseOrderCancelled: TOPIC_INVENTORY,
    PromotionPlanned: TOPIC_PROMOTIONS,
    PromotionCancelled: TOPIC_PROMOTIONS,
    ReorderSuggested: TOPIC_REORDERS,
    OverstockDetected: TOPIC_REORDERS,
    DeadLetter: TOPIC_DLQ,
}


def topic_of(model: BaseModel) -> str:
    """Return the (unprefixed) topic a wire model is published to.

    Parameters
    ----------
    model : pydantic.BaseModel
        An event or dead letter.

    Returns
    -------
    str
        ``"orders"``, ``"inventory"``, ``"promotions"``, ``"reorders"`` or ``"restock.dlq"``.

    Raises
    ------
    TypeError
        ``model`` is not a wire model.

    Examples
    --------
    >>> from schemas.export import example_events
    >>> topic_of(example_events()["stock_adjusted"])
    'inventory'

    """
    try:
        return _TOPIC_BY_TYPE[type(model)]
    except KeyError:
        raise TypeError(f"{type(model).__name__} is not a restock wire model") from None


def encode_event(model: BaseModel) -> bytes:
    """Serialise a wire model to compact UTF-8 JSON (``model_dump_json()``).

    Parameters
    ----------
    model : pydantic.BaseModel
        An event, decision or dead letter.

    Returns
    -------
    bytes
        The message value; datetimes as ISO 8601 with ``Z``.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> encode_event(PromotionCancelled(event_id="c", sku="A", promotion_id="p",
    ...     occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc)))
    b'{"schema_version":1,"event_id":"c","occurred_at":"2024-03-01T00:00:00Z","sku":"A","location":"default","kind":"promotion_cancelled","promotion_id":"p"}'

    """
    return model.model_dump_json().encode("utf-8")


def to_wire_dict(model: BaseModel) -> dict[str, Any]:
    """Return the JSON-compatible dict of a wire model (what :func:`encode_event` writes).

    Parameters
    ----------
    model : pydantic.BaseModel
        An event, decision or dead letter.

    Returns
    -------
    dict
        Plain JSON types only (datetimes as strings).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> to_wire_dict(StockSnapshot(event_id="s", sku="A", on_hand=3,
    ...     occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc)))["occurred_at"]
    '2024-03-01T00:00:00Z'

    """
    return model.model_dump(mode="json")
