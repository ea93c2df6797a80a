"""Export the wire contracts as JSON Schema files and an AsyncAPI 3.0 document.

``python -m schemas.export`` regenerates ``schemas/json/*.schema.json`` and
``schemas/asyncapi.yaml``; ``python -m schemas.export --check`` only compares and exits 1,
listing the stale files, when anything differs. Output is deterministic (sorted keys, two-space
indent, trailing newline), so the check is stable.

Examples
--------
>>> sorted(json_schemas())[:3]
['dead_letter.schema.json', 'decision_event.schema.json', 'inventory_event.schema.json']
>>> build_asyncapi()["channels"]["restock.dlq"]["address"]
'restock.dlq'

"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, TypeAdapter

from schemas.codec import to_wire_dict
from schemas.common import (
    KEY_PART_PATTERN,
    MAX_KEY_PART_CHARS,
    TOPIC_DLQ,
    TOPIC_INVENTORY,
    TOPIC_ORDERS,
    TOPIC_POLICIES,
    TOPIC_PROMOTIONS,
    TOPIC_REORDERS,
)
from schemas.dead_letters import DeadLetter
from schemas.decisions import DecisionEvent, DecisionExplanation, OverstockDetected, ReorderSuggested
from schemas.inputs import (
    InventoryEvent,
    OrderCancelled,
    OrderEvent,
    OrderPlaced,
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
    "CONCRETE_MODELS",
    "SCHEMA_DIR",
    "build_asyncapi",
    "example_events",
    "json_schemas",
    "main",
    "render_files",
    "write_all",
]

SCHEMA_DIR: Final = Path(__file__).resolve().parent
"""Directory holding ``json/`` and ``asyncapi.yaml`` (the ``schemas`` package)."""

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION: Final = "3.0.0"
KAFKA_BINDING_VERSION: Final = "0.5.0"
LOCAL_KAFKA: Final = "127.0.0.1:19092"

CONCRETE_MODELS: Final[tuple[type[BaseModel], ...]] = (
    OrderPlaced,
    OrderCancelled,
    StockSnapshot,
    StockReceived,
    StockAdjusted,
    PurchaseOrderPlaced,
    PurchaseOrderCancelled,
    PromotionPlanned,
    PromotionCancelled,
    PolicySet,
    ReorderSuggested,
    OverstockDetected,
    DeadLetter,
)
"""Every concrete message model, one JSON Schema file and one AsyncAPI message each."""

_UNIONS: Final[dict[str, tuple[str, Any, tuple[type[BaseModel], ...]]]] = {
    "order_event": ("OrderEvent", OrderEvent, (OrderPlaced, OrderCancelled)),
    "inventory_event": (
        "InventoryEvent",
        InventoryEvent,
        (StockSnapshot, StockReceived, StockAdjusted, PurchaseOrderPlaced, PurchaseOrderCancelled),
    ),
    "promotion_event": ("PromotionEvent", PromotionEvent, (PromotionPlanned, PromotionCancelled)),
    "decision_event": ("DecisionEvent", DecisionEvent, (ReorderSuggested, OverstockDetected)),
}

_CHANNELS: Final[tuple[tuple[str, str, tuple[type[BaseModel], ...]], ...]] = (
    (TOPIC_ORDERS, "Customer orders, cancellations and returns.", (OrderPlaced, OrderCancelled)),
    (
        TOPIC_INVENTORY,
        "Stock snapshots, receipts, adjustments and purchase orders.",
        _UNIONS["inventory_event"][2],
    ),
    (TOPIC_PROMOTIONS, "Price and promotion plans.", (PromotionPlanned, PromotionCancelled)),
    (
        TOPIC_POLICIES,
        "Per-SKU replenishment policies (log-compacted: `cleanup.policy=compact`). Only the "
        "highest `version` per key counts; a null value (tombstone) with the key `sku@location` "
        "deletes the SKU's policy.",
        (PolicySet,),
    ),
    (
        TOPIC_REORDERS,
        "Replenishment decisions: reorder suggestions and overstock alerts.",
        (ReorderSuggested, OverstockDetected),
    ),
    (
        TOPIC_DLQ,
        "Dead letters: messages restock could not apply, with the original bytes.",
        (DeadLetter,),
    ),
)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def example_events() -> dict[str, BaseModel]:
    """Return one valid example of every concrete wire model.

    Returns
    -------
    dict of str to pydantic.BaseModel
        Keyed by the snake-case model name (the schema file stem), in :data:`CONCRETE_MODELS`
        order. Used in the exported schemas, the AsyncAPI document, doctests and tests.

    Examples
    --------
    >>> list(example_events())[:2]
    ['order_placed', 'order_cancelled']
    >>> example_events()["order_placed"].key
    '85123A@uk'

    """
    t0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    day = timedelta(days=1)
    where = {"sku": "85123A", "location": "uk"}
    explanation = DecisionExplanation(
        on_hand=12,
        on_order=0,
        backorders=0,
        inventory_position=12,
        period="D",
        lead_time_periods=3.0,
        lead_time_std_periods=0.5,
        review_period_periods=1.0,
        forecast_mean_lead_time=18.0,
        forecast_q90_lead_time=24.5,
        forecast_q95_lead_time=26.75,
        forecast_mean_protection=24.0,
        forecast_q90_protection=31.5,
        forecast_q95_protection=34.0,
        safety_stock=10.0,
        reorder_point=28.0,
        order_up_to=60.0,
        service_level_target=0.95,
        service_level_kind="cycle",
        model="holt_winters",
        model_version=42,
        model_recent_mae=1.75,
        trigger_event_id="ord-536365-1",
        trigger_topic=TOPIC_ORDERS,
        trigger_partition=3,
        trigger_offset=1234,
        promotions=["spring-sale"],
        policy_version=7,
    )
    events: list[BaseModel] = [
        OrderPlaced(
            event_id="ord-536365-1",
            occurred_at=t0,
            **where,
            order_id="536365",
            quantity=6,
            unit_price=2.55,
            customer_id="17850",
            promo=True,
        ),
        OrderCancelled(
            event_id="ord-536365-1-c",
            occurred_at=t0 + day,
            **where,
            order_id="536365",
            quantity=2,
            reason="returned",
        ),
        StockSnapshot(event_id="inv-snap-1", occurred_at=t0, **where, on_hand=40),
        StockReceived(
            event_id="inv-rcv-1",
            occurred_at=t0 + 3 * day,
            **where,
            quantity=48,
            purchase_order_id="po-1001",
        ),
        StockAdjusted(event_id="inv-adj-1", occurred_at=t0, **where, delta=-3, reason="damage"),
        PurchaseOrderPlaced(
            event_id="inv-po-1001",
            occurred_at=t0,
            **where,
            purchase_order_id="po-1001",
            quantity=48,
            expected_arrival=t0 + 3 * day,
            decision_id="5d41402abc4b2a76b9719d911017c592",
        ),
        PurchaseOrderCancelled(
            event_id="inv-po-1001-c",
            occurred_at=t0 + day,
            **where,
            purchase_order_id="po-1001",
        ),
        PromotionPlanned(
            event_id="promo-spring-1",
            occurred_at=t0,
            **where,
            promotion_id="spring-sale",
            valid_from=t0 + 7 * day,
            valid_to=t0 + 14 * day,
            unit_price=2.04,
            promo_kind="discount",
            depth=0.2,
        ),
        PromotionCancelled(
            event_id="promo-spring-1-c",
            occurred_at=t0 + day,
            **where,
            promotion_id="spring-sale",
        ),
        PolicySet(
            event_id="policy-85123A-uk-7",
            occurred_at=t0,
            **where,
            version=7,
            fill_rate=0.98,
            lead_time_days=10.0,
            lead_time_std_days=2.0,
            pack_size=6,
            moq=12,
            supplier_id="acme",
        ),
        ReorderSuggested(
            event_id="5d41402abc4b2a76b9719d911017c592",
            occurred_at=t0,
            **where,
            explanation=explanation,
            quantity=48,
            reason="below_reorder_point",
            projected_stockout_at=t0 + 2 * day,
            stockout_probability=0.35,
            expires_at=t0 + day,
        ),
        OverstockDetected(
            event_id="7d793037a0760186574b0282f2f435e7",
            occurred_at=t0,
            **where,
            explanation=explanation.model_copy(
                update={"on_hand": 140, "inventory_position": 188, "on_order": 48,
                        "forecast_mean_per_day": 0.5, "overstock_cover_days": 90.0,
                        "overstock_threshold_units": 60.0}
            ),
            excess_units=128,  # floor(188 - max(60, 90 * 0.5))
            days_of_cover=376.0,  # 188 / 0.5
            suggested_action="cancel_open_purchase_orders",
        ),
        DeadLetter.from_failure(
            TOPIC_ORDERS,
            3,
            1235,
            b"85123A@uk",
            b'{"kind":"order_placed","quantity":-1}',
            "validate",
            "quantity: Input should be greater than 0",
            t0 + timedelta(seconds=2),
        ),
    ]
    return {_snake(type(event).__name__): event for event in events}


def _model_json_schema(model: type[BaseModel], **kwargs: Any) -> dict[str, Any]:
    return model.model_json_schema(mode="validation", **kwargs)


def json_schemas() -> dict[str, dict[str, Any]]:
    """Return every JSON Schema (draft 2020-12) file, keyed by file name.

    Returns
    -------
    dict of str to dict
        ``order_event``, ``inventory_event``, ``promotion_event``, ``decision_event`` (the
        discriminated unions, ``oneOf`` on ``kind``), ``dead_letter`` and one file per concrete
        event, each ``<name>.schema.json``, with ``examples`` of valid payloads.

    Examples
    --------
    >>> schemas = json_schemas()
    >>> len(schemas)
    17
    >>> schemas["order_placed.schema.json"]["properties"]["quantity"]["maximum"]
    1000000

    """
    examples = {name: to_wire_dict(event) for name, event in example_events().items()}
    out: dict[str, dict[str, Any]] = {}
    for model in CONCRETE_MODELS:
        stem = _snake(model.__name__)
        schema = {"$schema": JSON_SCHEMA_DIALECT, **_model_json_schema(model)}
        schema["examples"] = [examples[stem]]
        out[f"{stem}.schema.json"] = schema
    for stem, (title, union, members) in _UNIONS.items():
        schema = {"$schema": JSON_SCHEMA_DIALECT, **TypeAdapter(union).json_schema()}
        schema["title"] = title
        schema["description"] = (
            "One of " + ", ".join(m.__name__ for m in members) + ", selected by `kind`."
        )
        schema["examples"] = [examples[_snake(m.__name__)] for m in members]
        out[f"{stem}.schema.json"] = schema
    return dict(sorted(out.items()))


def _kafka_key_binding(model: type[BaseModel]) -> dict[str, Any]:
    if model is DeadLetter:
        key = {
            "type": "string",
            "description": "`{source_topic}/{partition}/{offset}` of the failed message.",
        }
    else:
        part = KEY_PART_PATTERN.removeprefix("^").removesuffix("+$")  # one allowed character
        key = {
            "type": "string",
            "description": "SKU key `{sku}@{location}`; every input topic and `reorders` share "
            "the partition count, so one partition owns all events of a SKU.",
            "pattern": f"^{part}{{1,{MAX_KEY_PART_CHARS}}}@{part}{{1,{MAX_KEY_PART_CHARS}}}$",
        }
    return {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}}


def build_asyncapi() -> dict[str, Any]:
    """Return the AsyncAPI 3.0.0 document of restock's Kafka interface.

    Channels ``orders``, ``inventory``, ``promotions``, ``policies``, ``reorders`` and ``restock.dlq`` (ids
    equal to the topic addresses); one message per concrete model whose payload references
    ``#/components/schemas/<Model>`` (the JSON Schemas, embedded); operations: restock
    *receives* the four input channels and *sends* ``reorders`` and ``restock.dlq``.

    Returns
    -------
    dict
        The document, JSON/YAML serialisable.

    Examples
    --------
    >>> doc = build_asyncapi()
    >>> doc["asyncapi"], doc["servers"]["local"]["host"]
    ('3.0.0', '127.0.0.1:19092')
    >>> sorted(op["action"] for op in doc["operations"].values())
    ['receive', 'receive', 'receive', 'receive', 'send', 'send']

    """
    examples = example_events()
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for model in CONCRETE_MODELS:
        schema = _model_json_schema(model, ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        example = examples[_snake(model.__name__)]
        messages[model.__name__] = {
            "name": model.__name__,
            "title": model.__name__,
            "summary": schema.get("description", "").split(". ")[0].rstrip("."),
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
            "bindings": _kafka_key_binding(model),
            "examples": [{"name": f"{model.__name__}Example", "payload": to_wire_dict(example)}],
        }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for address, description, models in _CHANNELS:
        channels[address] = {
            "address": address,
            "description": description,
            "messages": {
                m.__name__: {"$ref": f"#/components/messages/{m.__name__}"} for m in models
            },
        }
        if address == TOPIC_POLICIES:
            channels[address]["bindings"] = {"kafka": {
                "topicConfiguration": {"cleanup.policy": ["compact"]},
                "bindingVersion": KAFKA_BINDING_VERSION}}
        receive = address in (TOPIC_ORDERS, TOPIC_INVENTORY, TOPIC_PROMOTIONS, TOPIC_POLICIES)
        op_id = ("receive" if receive else "send") + "".join(
            part.capitalize() for part in re.split(r"[.\-_]", address)
        )
        operations[op_id] = {
            "action": "receive" if receive else "send",
            "channel": {"$ref": f"#/channels/{address}"},
            "summary": ("restock consumes " if receive else "restock produces ") + address,
            "messages": [{"$ref": f"#/channels/{address}/messages/{m.__name__}"} for m in models],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "restock",
            "version": "0.1.0",
            "description": "Event-driven streaming demand forecaster and replenishment "
            "optimizer. Messages are UTF-8 JSON, one event per message; timestamps are "
            "RFC 3339 with an offset and are normalised to UTC.",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": LOCAL_KAFKA,
                "protocol": "kafka",
                "description": "Local Kafka-protocol broker started by `restock stack up`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": dict(sorted(schemas.items())), "messages": messages},
    }


def _dump_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _dump_yaml(document: dict[str, Any]) -> str:
    import yaml  # tooling-only dependency, kept out of the runtime import path

    return str(
        yaml.safe_dump(
            document, sort_keys=True, allow_unicode=True, default_flow_style=False, width=100
        )
    )


def render_files() -> dict[str, str]:
    """Return the generated files' text, keyed by path relative to the schemas directory.

    Returns
    -------
    dict of str to str
        ``json/<name>.schema.json`` for each JSON Schema and ``asyncapi.yaml``.

    Examples
    --------
    >>> files = render_files()
    >>> files["asyncapi.yaml"].splitlines()[0]
    'asyncapi: 3.0.0'
    >>> all(text.endswith(chr(10)) for text in files.values())
    True

    """
    files = {f"json/{name}": _dump_json(schema) for name, schema in json_schemas().items()}
    files["asyncapi.yaml"] = _dump_yaml(build_asyncapi())
    return files


def write_all(out_dir: str | Path | None = None, check: bool = False) -> list[str]:
    """Write the generated schema files, or only report the stale ones.

    Parameters
    ----------
    out_dir : str or Path or None
        Target directory; the ``schemas`` package directory when None.
    check : bool
        When true nothing is written or deleted.

    Returns
    -------
    list of str
        Sorted paths (relative to ``out_dir``) whose content differs from the generated text,
        including missing files and ``json/*.schema.json`` files that are no longer generated
        (those are deleted unless ``check``). Empty when everything is up to date.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     first = write_all(tmp)
    ...     again = write_all(tmp, check=True)
    >>> len(first), again
    (18, [])

    """
    root = Path(out_dir) if out_dir is not None else SCHEMA_DIR
    files = render_files()
    stale: list[str] = []
    for rel, text in files.items():
        path = root / rel
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            stale.append(rel)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8", newline="\n")
    json_dir = root / "json"
    if json_dir.is_dir():
        for path in json_dir.glob("*.schema.json"):
            rel = f"json/{path.name}"
            if rel not in files:
                stale.append(rel)
                if not check:
                    path.unlink()
    return sorted(stale)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point of ``python -m schemas.export [--check] [--out-dir DIR]``.

    Parameters
    ----------
    argv : sequence of str or None
        Arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    int
        0 on success; 1 when ``--check`` found stale files (listed on stderr).

    Examples
    --------
    >>> main(["--check"])
    0

    """
    parser = argparse.ArgumentParser(
        prog="python -m schemas.export",
        description="Regenerate schemas/json/*.schema.json and schemas/asyncapi.yaml.",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if any generated file is out of date"
    )
    parser.add_argument("--out-dir", default=None, help="target directory (default: schemas/)")
    args = parser.parse_args(argv)
    changed = write_all(args.out_dir, check=args.check)
    if args.check and changed:
        sys.stderr.write(
            "stale schema files (run `python -m schemas.export`):\n"
            + "".join(f"  {rel}\n" for rel in changed)
        )
        return 1
    if not args.check:
        for rel in changed:
            sys.stdout.write(f"wrote {rel}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
