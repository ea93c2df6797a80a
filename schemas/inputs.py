"""Input events: ``orders``, ``inventory``, ``promotions`` and ``policies`` topics (SKU-keyed)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from schemas.common import (
    MAX_KEY_PART_CHARS,
    MAX_STOCK_UNITS,
    Currency,
    EventBase,
    FiniteFloat,
    Identifier,
    KeyPart,
    NonNegativeFloat,
    OrderQuantity,
    Probability,
    StockQuantity,
    UtcDatetime,
    WireModel,
    _check_nonzero,
)
from schemas.docschema import document_schema

__all__ = [
    "POLICY_PARAMETERS",
    "InventoryEvent",
    "OrderCancelled",
    "OrderEvent",
    "OrderPlaced",
    "PolicyDeleted",
    "PolicySet",
    "PromotionCancelled",
    "PromotionEvent",
    "PromotionPlanned",
    "PurchaseOrderCancelled",
    "PurchaseOrderPlaced",
    "StockAdjusted",
    "StockReceived",
    "StockSnapshot",
]

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
# policies (log-compacted)
# --------------------------------------------------------------------------------------------

#: Largest policy version: the largest integer a JSON number holds exactly (IEEE double).
MAX_POLICY_VERSION = 2**53
#: Longest lead time (and lead-time standard deviation) a policy may carry, in days.
MAX_LEAD_TIME_DAYS = 3650.0

ServiceTarget = Annotated[float, Field(gt=0, lt=1)]


def _policy_schema(schema: dict[str, Any], cls: type[Any]) -> None:
    """The docstring schema plus the one-target rule (both targets numbers: invalid)."""
    document_schema(schema, cls)
    schema["not"] = {"required": ["fill_rate", "cycle_service_level"],
                     "properties": {"fill_rate": {"type": "number"},
                                    "cycle_service_level": {"type": "number"}}}


class PolicySet(EventBase):
    """The replenishment policy of one SKU@location (topic ``policies``, log-compacted).

    Each message replaces the SKU's whole policy: a field left out (or null) takes restock's
    default for it (settings, then the local overrides file); it does not keep an earlier
    message's value. A null message value (a Kafka tombstone) with the SKU key deletes the
    policy: back to the defaults. Only the highest ``version`` counts: a message whose version
    is not above the SKU's last applied one (including one older than a deletion) is ignored
    and counted as stale, never an error. Durations are in **days** (restock converts them to
    its demand periods), quantities in units, costs in currency.

    At most one of ``fill_rate`` and ``cycle_service_level`` may be set. Whether the resulting parameters fit
    together (e.g. an ordering cost needs a positive holding cost; lead time plus review
    period within the forecast horizon) is checked when restock applies the message: an
    invalid policy is dead-lettered (stage ``validate``) and the SKU keeps its previous one.

    Attributes
    ----------
    version : int
        Producer-assigned version, 1 to 2**53, increasing per SKU@location (e.g. epoch
        milliseconds of the change, which ``restock policies publish`` uses by default).
    fill_rate : float or None
        Target fill rate (fraction of demand served from shelf), in (0, 1).
    cycle_service_level : float or None
        Target cycle service level (probability of no stockout per replenishment cycle), in
        (0, 1).
    lead_time_days : float or None
        Mean replenishment lead time, days, in (0, 3650]: the prior of the lead time.
    lead_time_std_days : float or None
        Standard deviation of the lead time, days, in [0, 3650].
    pack_size : int or None
        Orders are placed in multiples of this many units (1 to 1,000,000).
    moq : int or None
        Minimum order quantity, units (0 to 1,000,000,000).
    unit_cost : float or None
        Purchase cost per unit (currency), >= 0.
    holding_cost_rate : float or None
        Holding cost per year as a fraction of the unit cost, >= 0.
    ordering_cost : float or None
        Fixed cost per purchase order (currency), >= 0; enables the EOQ.
    supplier_id : str or None
        The SKU's supplier (kept with the policy; not used by the levels).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> p = PolicySet(event_id="pol-1", occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc),
    ...               sku="A", location="uk", version=3, fill_rate=0.98, lead_time_days=14)
    >>> p.kind, p.key, p.version, p.cycle_service_level
    ('policy_set', 'A@uk', 3, None)

    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False,
                              json_schema_extra=_policy_schema)

    kind: Literal["policy_set"] = "policy_set"
    version: Annotated[int, Field(ge=1, le=MAX_POLICY_VERSION)]
    fill_rate: ServiceTarget | None = None
    cycle_service_level: ServiceTarget | None = None
    lead_time_days: Annotated[float, Field(gt=0, le=MAX_LEAD_TIME_DAYS)] | None = None
    lead_time_std_days: Annotated[float, Field(ge=0, le=MAX_LEAD_TIME_DAYS)] | None = None
    pack_size: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    moq: Annotated[int, Field(ge=0, le=MAX_STOCK_UNITS)] | None = None
    unit_cost: NonNegativeFloat | None = None
    holding_cost_rate: NonNegativeFloat | None = None
    ordering_cost: NonNegativeFloat | None = None
    supplier_id: Identifier | None = None

    @field_validator("cycle_service_level")
    @classmethod
    def _one_target(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("fill_rate") is not None:
            raise PydanticCustomError("two_targets", "set either fill_rate or cycle_service_level, not both")
        return value

    def parameters(self) -> dict[str, float | int | str]:
        """The parameters the message sets (fields other than the envelope, ``kind`` and ``version``).

        Returns
        -------
        dict
            ``field -> value`` of the fields that are not None, sorted by name (units as the
            attributes: days, units, currency).

        Examples
        --------
        >>> from datetime import datetime, timezone
        >>> PolicySet(event_id="p", occurred_at=datetime(2024, 3, 1, tzinfo=timezone.utc), sku="A",
        ...           version=1, pack_size=6, fill_rate=0.9).parameters()
        {'fill_rate': 0.9, 'pack_size': 6}
        """
        return {name: value for name in sorted(POLICY_PARAMETERS)
                if (value := getattr(self, name)) is not None}


#: The optional parameters of :class:`PolicySet` (everything but the envelope and ``version``).
POLICY_PARAMETERS: frozenset[str] = frozenset({
    "fill_rate", "cycle_service_level", "lead_time_days", "lead_time_std_days", "pack_size", "moq",
    "unit_cost", "holding_cost_rate", "ordering_cost", "supplier_id",
})



class PolicyDeleted(WireModel):
    """A tombstone on ``policies``: the SKU@location's policy is deleted (back to the defaults).

    Not a JSON message: it is what :func:`schemas.codec.decode_policy_tombstone` makes of a
    record with a null (or empty) value, from the record's key. It carries no event time and no
    version: it deletes whatever policy the SKU has, and the SKU keeps its last version, so that
    an older message replayed later is still stale.

    Attributes
    ----------
    sku, location : str
        The two parts of the record's key ``sku@location`` (same rules as every event's).

    Examples
    --------
    >>> PolicyDeleted(sku="A", location="uk").key
    'A@uk'
    """

    sku: KeyPart
    location: KeyPart

    @property
    def key(self) -> str:
        """Kafka key ``"{sku}@{location}"``."""
        return f"{self.sku}@{self.location}"
