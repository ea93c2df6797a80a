"""Common wire types: constants, topic names and roles, field types, the base model and ``EventBase``."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from schemas.docschema import document_schema

__all__ = [
    "BASE64_PATTERN",
    "DEAD_LETTER_STAGES",
    "DECISION_SCHEMA_VERSION",
    "DeadLetterStage",
    "EventBase",
    "KEY_PART_PATTERN",
    "MAX_ERROR_MESSAGE_CHARS",
    "MAX_ID_CHARS",
    "MAX_KEY_PART_CHARS",
    "MAX_ORDER_QUANTITY",
    "MAX_STOCK_UNITS",
    "SCHEMA_VERSION",
    "TOPIC_DLQ",
    "TOPIC_INVENTORY",
    "TOPIC_ORDERS",
    "TOPIC_POLICIES",
    "TOPIC_PROMOTIONS",
    "TOPIC_REORDERS",
    "TopicRole",
    "WireModel",
    "sku_key",
]

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

SCHEMA_VERSION: Final = 1
"""Wire schema version of the input events (orders, inventory, promotions, policies) and dead letters."""
DECISION_SCHEMA_VERSION: Final = 2
"""Wire schema version of the decisions on ``reorders``. 2 (issue #18): ``days_of_cover`` in
days (was demand periods), ``excess_units`` measured against the explicit
``explanation.overstock_threshold_units``, new explanation fields ``forecast_mean_per_day``,
``overstock_cover_days`` and ``overstock_threshold_units``."""

TOPIC_ORDERS: Final = "orders"
TOPIC_INVENTORY: Final = "inventory"
TOPIC_PROMOTIONS: Final = "promotions"
TOPIC_POLICIES: Final = "policies"
"""Per-SKU replenishment policies (``PolicySet``), log-compacted, keyed like every input; a null
value (tombstone) deletes the SKU's policy."""
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

TopicRole: TypeAlias = Literal["orders", "inventory", "promotions", "policies"]
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


class WireModel(BaseModel):
    """Base of every wire model: frozen, unknown fields rejected, finite floats, schema from docstrings."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra=document_schema,
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


class EventBase(WireModel):
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
    >>> from schemas.inputs import PromotionCancelled
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
