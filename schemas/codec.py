"""Decoding and encoding: strict decoders per topic role, ``encode_event``, ``topic_of``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, TypeAlias

from pydantic import (
    BaseModel,
    TypeAdapter,
    ValidationError,
)

from schemas.common import (
    TOPIC_DLQ,
    TOPIC_INVENTORY,
    TOPIC_ORDERS,
    TOPIC_POLICIES,
    TOPIC_PROMOTIONS,
    TOPIC_REORDERS,
    EventBase,
    TopicRole,
)
from schemas.dead_letters import DeadLetter
from schemas.decisions import DecisionEvent, OverstockDetected, ReorderSuggested
from schemas.inputs import (
    InventoryEvent,
    OrderCancelled,
    OrderEvent,
    OrderPlaced,
    PolicyDeleted,
    PolicySet,
    PromotionCancelled,
    PromotionEvent,
    PromotionPlanned,
    PurchaseOrderCancelled,
    PurchaseOrderPlaced,
    StockAdjusted,
    StockReceived,
    StockSnapshot,
)

__all__ = [
    "EventValidationError",
    "decode_dead_letter",
    "decode_decision",
    "decode_for_topic_role",
    "decode_inventory",
    "decode_order",
    "decode_policy",
    "decode_policy_tombstone",
    "decode_promotion",
    "encode_event",
    "to_wire_dict",
    "topic_of",
]

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
_POLICY_ADAPTER: TypeAdapter[PolicySet] = TypeAdapter(PolicySet)
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
    schemas.codec.EventValidationError: quantity: Input should be greater than 0

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
    schemas.codec.EventValidationError: kind: Input tag 'stock_count' found using 'kind' ...

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


def decode_policy(raw: RawMessage) -> PolicySet:
    """Decode one ``policies`` message value (a tombstone is :func:`decode_policy_tombstone`'s).

    Parameters
    ----------
    raw : bytes
        The UTF-8 JSON message value.

    Returns
    -------
    PolicySet

    Raises
    ------
    EventValidationError
        Not UTF-8, not JSON, unknown ``kind``, any field invalid, or both service targets set.

    Examples
    --------
    >>> decode_policy(b'{"kind":"policy_set","event_id":"p","sku":"A","location":"uk",'
    ...               b'"occurred_at":"2024-03-01T00:00:00Z","version":2,"pack_size":6}').pack_size
    6
    >>> decode_policy(b'{"kind":"policy_set","event_id":"p","sku":"A","version":2,'
    ...               b'"occurred_at":"2024-03-01T00:00:00Z","fill_rate":0.9,"cycle_service_level":0.9}')
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    schemas.codec.EventValidationError: cycle_service_level: set either fill_rate or ...

    """
    return _decode(_POLICY_ADAPTER, raw, frozenset())  # type: ignore[no-any-return]


def decode_policy_tombstone(key: bytes | bytearray | memoryview | str | None) -> PolicyDeleted:
    """Decode the key of a tombstone (null value) on ``policies``: the SKU whose policy is deleted.

    Parameters
    ----------
    key : bytes or None
        The record's key, UTF-8 ``sku@location``.

    Returns
    -------
    PolicyDeleted

    Raises
    ------
    EventValidationError
        No key, not UTF-8, not of the form ``sku@location``, or a part invalid (see
        :class:`schemas.common.EventBase`).

    Examples
    --------
    >>> decode_policy_tombstone(b"85123A@uk").key
    '85123A@uk'
    >>> decode_policy_tombstone(b"85123A")
    Traceback (most recent call last):
    ...
    schemas.codec.EventValidationError: <root>: a tombstone's key must be sku@location, got '85123A'

    """
    if key is None or len(key) == 0:
        raise EventValidationError([(_ROOT, "a tombstone needs the key sku@location of the policy "
                                            "it deletes")])
    if isinstance(key, memoryview):
        key = key.tobytes()
    try:
        text = key if isinstance(key, str) else bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        raise EventValidationError([(_ROOT, "a tombstone's key is not UTF-8")]) from None
    sku, at, location = text.partition("@")
    if not at:
        raise EventValidationError([(_ROOT, f"a tombstone's key must be sku@location, got {text[:140]!r}")])
    try:
        return PolicyDeleted(sku=sku, location=location)
    except ValidationError as exc:
        raise EventValidationError.from_validation_error(exc) from exc


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
    "policies": decode_policy,
}


def decode_for_topic_role(role: TopicRole, raw: RawMessage) -> EventBase:
    """Decode a message value of the input topic playing ``role``.

    Parameters
    ----------
    role : {"orders", "inventory", "promotions", "policies"}
        Role of the topic the message came from (topic names may be prefixed in deployment).
    raw : bytes
        The UTF-8 JSON message value.

    Returns
    -------
    EventBase
        One of the order, inventory, promotion or policy events (a tombstone on
        ``policies`` is not a message value: see :func:`decode_policy_tombstone`).

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
    schemas.codec.EventValidationError: kind: Input tag 'promotion_cancelled' found ...

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
    PolicySet: TOPIC_POLICIES,
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
        ``"orders"``, ``"inventory"``, ``"promotions"``, ``"policies"``, ``"reorders"`` or
        ``"restock.dlq"``.

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
