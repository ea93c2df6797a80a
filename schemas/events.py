"""Wire contracts: the pydantic v2 models of every Kafka message restock reads or writes.

Every message is one UTF-8 JSON object (a null value on ``policies`` is a tombstone). Input
topics (``orders``, ``inventory``, ``promotions``, ``policies``) and the output topic
``reorders`` are keyed by the *SKU key* ``"{sku}@{location}"``; ``restock.dlq`` is keyed by
``"{topic}/{partition}/{offset}"`` of the failed message.

Models are immutable (``frozen=True``) and reject unknown fields (``extra="forbid"``). Every
timestamp must carry a UTC offset and is normalised to UTC; floats must be finite.

Decoding from the wire goes through :func:`decode_order`, :func:`decode_inventory`,
:func:`decode_promotion`, :func:`decode_policy`, :func:`decode_decision` (or
:func:`decode_for_topic_role`). They
validate in *strict* mode (no ``"5"`` for ``5``, no ``5.0`` for an integer, no Unix
timestamps for datetimes), so the JSON Schema exported from these models describes exactly
what the decoders accept, except for the few cross-field rules noted in the model docstrings.
Constructing models in Python is lax (``numpy.int64`` quantities are fine).

This module is the integrators' public import path (``from schemas.events import OrderPlaced,
decode_order``): it re-exports the public names of the modules that define them, one reason to
change each:

* :mod:`schemas.common`: constants, topic names and roles, field types, ``EventBase``, ``sku_key``;
* :mod:`schemas.inputs`: input events of ``orders``, ``inventory``, ``promotions`` and ``policies``;
* :mod:`schemas.decisions`: decisions on ``reorders`` and their explanation;
* :mod:`schemas.dead_letters`: the ``restock.dlq`` envelope;
* :mod:`schemas.codec`: the strict decoders, ``encode_event``, ``topic_of``, ``to_wire_dict``;
* :mod:`schemas.docschema`: model and field descriptions of the JSON Schema from the docstrings.

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
schemas.codec.EventValidationError: event_id: Field required; occurred_at: Field required; ...

"""

from __future__ import annotations

from schemas.codec import (
    EventValidationError,
    decode_dead_letter,
    decode_decision,
    decode_for_topic_role,
    decode_inventory,
    decode_order,
    decode_policy,
    decode_policy_tombstone,
    decode_promotion,
    encode_event,
    to_wire_dict,
    topic_of,
)
from schemas.common import (
    BASE64_PATTERN,
    DEAD_LETTER_STAGES,
    DECISION_SCHEMA_VERSION,
    KEY_PART_PATTERN,
    MAX_ERROR_MESSAGE_CHARS,
    MAX_ID_CHARS,
    MAX_KEY_PART_CHARS,
    MAX_ORDER_QUANTITY,
    MAX_STOCK_UNITS,
    SCHEMA_VERSION,
    TOPIC_DLQ,
    TOPIC_INVENTORY,
    TOPIC_ORDERS,
    TOPIC_POLICIES,
    TOPIC_PROMOTIONS,
    TOPIC_REORDERS,
    DeadLetterStage,
    EventBase,
    TopicRole,
    sku_key,
)
from schemas.dead_letters import (
    DeadLetter,
)
from schemas.decisions import (
    DecisionBase,
    DecisionEvent,
    DecisionExplanation,
    OverstockDetected,
    ReorderSuggested,
)
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
    "TOPIC_POLICIES",
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
    "PolicyDeleted",
    "PolicySet",
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
    "decode_policy",
    "decode_policy_tombstone",
    "decode_promotion",
    "encode_event",
    "sku_key",
    "to_wire_dict",
    "topic_of",
]
