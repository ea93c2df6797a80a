"""Per-SKU state, its compact encoding, and the state-store interface.

One :class:`SkuState` per SKU@location holds everything a decision needs: the demand
accumulator, the forecaster, the inventory position, the open decisions and the **fence**: the
last applied offset per ``topic:partition``. The fence makes applying an event idempotent: an
event at or below it is skipped, so a replay never double-counts.

The encoding is versioned msgpack of plain numbers and the forecaster's own compact bytes
(:func:`agents.forecasting.encode`): never a pickle, which would be large, version-fragile and
unsafe to load from a shared store.

Two stores implement :class:`StateStore`: :class:`InMemoryStateStore` here (backtest, unit
tests) and ``streams.redis_state.RedisStateStore`` (production, integration tests).

Examples
--------
>>> s = SkuState.new("85123A@UK")
>>> s.sku, s.location
('85123A', 'UK')
>>> s.fence_passed("orders", 0, 5)
True
>>> s.mark_applied("orders", 0, 5)
>>> s.fence_passed("orders", 0, 5), s.fence_passed("orders", 0, 6)
(False, True)
>>> SkuState.decode(s.encode()).fence
{'orders:0': 5}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import msgpack

from agents.censoring import StockoutClock
from agents.demand import DemandAccumulator
from agents.forecasting import DemandForecaster, decode, encode
from agents.forecasting.covariates import CovariatePool
from agents.inventory import InventoryPosition
from agents.inventory_demand import InventoryDemand
from agents.repeat_buyers import RepeatBuyers
from agents.supply import LeadTimeEstimator

if TYPE_CHECKING:
    from agents.processor.derived import Derived

STATE_VERSION = 1

#: key prefix of a partition's covariate pool state: ``"@pool@<partition>"``. A real SKU key
#: has a non-empty sku and exactly one ``@`` (``@`` is not allowed in a sku or location), so
#: this can never collide with one.
POOL_KEY_PREFIX = "@pool@"


def pool_key(partition: int) -> str:
    """Pseudo SKU key of input partition ``partition``'s covariate pool (``"@pool@3"``)."""
    return f"{POOL_KEY_PREFIX}{int(partition)}"


def is_pool_key(key: str) -> bool:
    """Tell whether ``key`` is a :func:`pool_key` (never true for a real ``sku@location``)."""
    return key.startswith(POOL_KEY_PREFIX)


def review_in_progress(store: StateStore, partitions: int) -> bool:
    """Tell whether a partition's period review is still in progress in ``store``.

    True when the pseudo-state of an input partition ``0 .. partitions - 1`` records a review
    (:class:`ReviewProgress`): a partition's states are final only once none does. One
    ``load_many`` of the pool keys.
    """
    keys = [pool_key(p) for p in range(partitions)]
    return any(st.review is not None for st in store.load_many(keys).values())


def split_key(key: str) -> tuple[str, str]:
    """Split ``"sku@location"`` into its parts (``location`` defaults to ``"default"``)."""
    sku, _, location = key.partition("@")
    return sku, location or "default"


@dataclass(slots=True)
class OpenDecision:
    """A decision that is still open (one per kind per SKU@location at most).

    Attributes
    ----------
    decision_id : str
        The deterministic id it was emitted with.
    quantity : int
        Units suggested (reorder) or found in excess (overstock).
    decided_at : int
        Event time of the decision (epoch s).
    expires_at : int
        Event time after which it no longer blocks a new decision (epoch s).
    level : float
        The order-up-to level S (units) it was computed with; a new suggestion replaces the
        open one only when S moves materially (not when demand merely depletes stock).
    """

    decision_id: str
    quantity: int
    decided_at: int
    expires_at: int
    level: float = 0.0

    def to_list(self) -> list[object]:
        """Compact encoding."""
        return [self.decision_id, self.quantity, self.decided_at, self.expires_at, self.level]

    @classmethod
    def from_list(cls, d: list[Any]) -> OpenDecision:
        """Inverse of :meth:`to_list`."""
        return cls(str(d[0]), int(d[1]), int(d[2]), int(d[3]), float(d[4]))


@dataclass(slots=True)
class ReviewProgress:
    """A partition's period review that is still in progress (kept on its pool pseudo-state).

    The review of the period that closed when the partition's watermark crossed ``boundary``
    runs in bounded chunks between batches (:class:`agents.review.progress.PartitionSweep`);
    this record is what a restarted worker, or the next owner of the partition, needs to finish
    it with the same trigger, so that states and decision ids are those of one uninterrupted
    review. Written with the batch whose end it describes (same fenced write), cleared once the
    review is done; never written for a review that finished within the batch that started it.

    Attributes
    ----------
    boundary : int
        Start of the period the watermark entered (epoch s): the review closes the periods
        before it.
    watermark : int
        Event time of the record that crossed (epoch s): the review's time ``t``.
    topic, partition, offset : str, int, int
        Position of that record (the decision ids' trigger, :func:`decision_id`).
    trigger_event_id : str
        Its event id (in the explanations).
    pool_live : bool
        Whether the reviews add to the partition's covariate pool (False: to a copy whose
        changes are dropped, because the pool already held the trigger when the review began).
    frontier : dict[str, int]
        ``"topic:partition" -> offset``: the last offset of each input topic-partition applied
        before the crossing. A SKU whose fence is above it on some topic-partition was created
        after the crossing and is not part of this review.
    cursor : str
        Last SKU key (in sorted order) the review has passed ("" before the first).

    Examples
    --------
    >>> r = ReviewProgress(86400, 90000, "orders", 1, 7, "e7", True, {"orders:1": 7}, "A@W")
    >>> ReviewProgress.from_list(r.to_list()) == r
    True
    """

    boundary: int
    watermark: int
    topic: str
    partition: int
    offset: int
    trigger_event_id: str
    pool_live: bool
    frontier: dict[str, int] = field(default_factory=dict)
    cursor: str = ""

    def to_list(self) -> list[Any]:
        """Compact encoding (maps with sorted keys)."""
        return [self.boundary, self.watermark, self.topic, self.partition, self.offset,
                self.trigger_event_id, self.pool_live, dict(sorted(self.frontier.items())), self.cursor]

    @classmethod
    def from_list(cls, d: list[Any]) -> ReviewProgress:
        """Inverse of :meth:`to_list`."""
        return cls(int(d[0]), int(d[1]), str(d[2]), int(d[3]), int(d[4]), str(d[5]), bool(d[6]),
                   {str(k): int(v) for k, v in d[7].items()}, str(d[8]))


@dataclass(frozen=True, slots=True)
class PromotionPlan:
    """A planned promotion or price of one SKU@location (from a ``PromotionPlanned`` event).

    Attributes
    ----------
    valid_from, valid_to : int
        Validity interval ``[valid_from, valid_to)``, epoch seconds (event time).
    unit_price : float
        Planned unit price (currency); ``-1.0`` when the plan gives none.
    depth : float
        Planned discount depth (fraction of the regular price, 0..1).
    kind : str
        Promotion kind (``discount``, ``display``, ``feature``, ``multi_buy``, ``none``).
    covariates : dict[str, float] or None
        Extra planned covariates ``x_* -> value``, sorted by name; None when there are none.

    The encoding is the list ``[valid_from, valid_to, unit_price, depth, kind]`` plus the
    covariates map when there is one, exactly as states stored it before the type existed.

    Examples
    --------
    >>> p = PromotionPlan(100, 200, -1.0, 0.2, "discount", {"x_b": 1.0, "x_a": 2.0})
    >>> p.to_list()
    [100, 200, -1.0, 0.2, 'discount', {'x_a': 2.0, 'x_b': 1.0}]
    >>> PromotionPlan.from_list(p.to_list()) == PromotionPlan(100, 200, -1.0, 0.2, "discount",
    ...                                                       {"x_a": 2.0, "x_b": 1.0})
    True
    """

    valid_from: int
    valid_to: int
    unit_price: float
    depth: float
    kind: str
    covariates: dict[str, float] | None = None

    def to_list(self) -> list[Any]:
        """Compact encoding (see the class docstring)."""
        out: list[Any] = [self.valid_from, self.valid_to, self.unit_price, self.depth, self.kind]
        if self.covariates:
            out.append(dict(sorted(self.covariates.items())))
        return out

    @classmethod
    def from_list(cls, d: list[Any]) -> PromotionPlan:
        """Inverse of :meth:`to_list` (values keep their stored types, for byte-identical re-encoding)."""
        extras = d[5] if len(d) > 5 and isinstance(d[5], dict) else None
        return cls(d[0], d[1], d[2], d[3], d[4], extras)


@dataclass(frozen=True, slots=True)
class SkuPolicy:
    """A SKU@location's run-time policy: the latest ``PolicySet`` applied (topic ``policies``).

    Attributes
    ----------
    version : int
        The message's ``version`` (>= 1).
    parameters : tuple of (str, value)
        The parameters the message set, sorted by name, as on the wire: durations in days
        (``lead_time_days``), quantities in units, costs in currency, ``supplier_id`` a string
        (:meth:`schemas.inputs.PolicySet.parameters`). :meth:`agents.processor.LevelsDeriver.params_for`
        turns them into :class:`~agents.policy.PolicyParams` (days into periods).

    Encoded as ``[version, {name: value}]``.

    Examples
    --------
    >>> p = SkuPolicy(3, (("fill_rate", 0.98), ("pack_size", 6)))
    >>> p.to_list()
    [3, {'fill_rate': 0.98, 'pack_size': 6}]
    >>> SkuPolicy.from_list(p.to_list()) == p
    True
    """

    version: int
    parameters: tuple[tuple[str, Any], ...] = ()

    def to_list(self) -> list[Any]:
        """Compact encoding (see the class docstring)."""
        return [self.version, dict(self.parameters)]

    @classmethod
    def from_list(cls, d: list[Any]) -> SkuPolicy:
        """Inverse of :meth:`to_list` (values keep their stored types)."""
        return cls(int(d[0]), tuple(sorted((str(k), v) for k, v in d[1].items())))


@dataclass(slots=True)
class SkuState:
    """Everything restock knows about one SKU@location.

    Attributes
    ----------
    key : str
        ``"sku@location"``.
    fence : dict[str, int]
        ``"topic:partition" -> last applied offset``.
    demand : DemandAccumulator
        Open demand periods and the SKU's event-time clock.
    model : DemandForecaster
        The per-SKU online forecaster (candidates + selection + calibration).
    position : InventoryPosition
        on_hand, on_order, backorders.
    reorder, overstock : OpenDecision | None
        The open suggestion of each kind, if any.
    promotions : dict[str, PromotionPlan]
        Planned promotions ``promotion_id -> plan``.
    counters : dict[str, int]
        ``events``, ``late``, ``periods``, ``orders_units`` and the like.
    updated_at : int
        Event time of the latest applied event (epoch s).
    level_ratio : list[float]
        ``[EWMA of actual demand, EWMA of the one-step mean forecast]`` per period (units), for
        the inventory-level bias correction in :mod:`agents.processor`.
    reference_price : float
        Online estimate of the regular (non-promotion) unit price (currency; 0 = unknown).
    period_sales : dict[int, list[float]]
        Per open period start (epoch s): ``[priced units, revenue, promotion units]`` of its
        orders, for the period's realised price and promotion share.
    pool : CovariatePool | None
        Only on a partition's pool pseudo-state (:func:`pool_key`): the shared covariate
        coefficient of the partition's SKUs.
    inventory_demand : InventoryDemand
        Recent demand window and long-run dispersion read by the replenishment decisions
        (:mod:`agents.inventory_demand`); encoded only once it has learned a period.
    stockout : StockoutClock
        Seconds out of stock (``on_hand`` below one unit) per open demand period, from the
        position changes (:mod:`agents.censoring`); encoded only while it holds something.
    policy : SkuPolicy | None
        The SKU's run-time policy (topic ``policies``); None: the defaults (settings, overrides
        file).
    policy_version : int
        Highest policy version applied (0: none). Kept when a tombstone deletes the policy, so
        that an older version replayed later is still stale. Both policy fields are encoded only
        once a policy was applied.
    lead_time : LeadTimeEstimator
        Open purchase orders' order times and the moments of the SKU's observed lead times
        (:mod:`agents.supply`); encoded only once it holds one (lead-time learning on).
    review : ReviewProgress | None
        Only on a partition's pool pseudo-state: the partition's period review in progress,
        while it spans batches (encoded only when set).
    buyers : RepeatBuyers
        The SKU's repeat bulk buyers and their open periods' lines (:mod:`agents.repeat_buyers`);
        encoded only once it holds one.

    The three covariate fields are encoded only when set, so a state without prices,
    promotions or pool encodes byte for byte as before they existed.
    """

    key: str
    fence: dict[str, int] = field(default_factory=dict)
    demand: DemandAccumulator = field(default_factory=DemandAccumulator)
    model: DemandForecaster = field(default_factory=DemandForecaster)
    position: InventoryPosition = field(default_factory=InventoryPosition)
    reorder: OpenDecision | None = None
    overstock: OpenDecision | None = None
    promotions: dict[str, PromotionPlan] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    updated_at: int = 0
    level_ratio: list[float] = field(default_factory=lambda: [0.0, 0.0])
    reference_price: float = 0.0
    period_sales: dict[int, list[float]] = field(default_factory=dict)
    pool: CovariatePool | None = None
    inventory_demand: InventoryDemand = field(default_factory=InventoryDemand)
    stockout: StockoutClock = field(default_factory=StockoutClock)
    policy: SkuPolicy | None = None
    policy_version: int = 0
    lead_time: LeadTimeEstimator = field(default_factory=LeadTimeEstimator)
    review: ReviewProgress | None = None
    buyers: RepeatBuyers = field(default_factory=RepeatBuyers)
    #: cached forecast and levels, not stored; current while its inputs are (agents.processor.derived)
    derived: Derived | None = field(default=None, repr=False, compare=False)

    @classmethod
    def new(cls, key: str) -> SkuState:
        """A SKU seen for the first time."""
        return cls(key=key)

    @property
    def sku(self) -> str:
        """The SKU part of the key."""
        return split_key(self.key)[0]

    @property
    def location(self) -> str:
        """The location part of the key."""
        return split_key(self.key)[1]

    # --- fencing ---------------------------------------------------------------------------
    def fence_passed(self, topic: str, partition: int, offset: int) -> bool:
        """True when the event at ``topic[partition]@offset`` has not been applied yet."""
        return offset > self.fence.get(f"{topic}:{partition}", -1)

    def mark_applied(self, topic: str, partition: int, offset: int) -> None:
        """Move the fence of ``topic:partition`` to ``offset``."""
        self.fence[f"{topic}:{partition}"] = max(offset, self.fence.get(f"{topic}:{partition}", -1))

    @property
    def sequence(self) -> int:
        """Monotone write sequence: the sum of fenced offsets (used to reject stale writes)."""
        return sum(o + 1 for o in self.fence.values())

    def bump(self, counter: str, n: int = 1) -> None:
        """Increment a counter."""
        self.counters[counter] = self.counters.get(counter, 0) + n

    # --- encoding ----------------------------------------------------------------------------
    def encode_core(self) -> bytes:
        """Everything but the model, as versioned msgpack."""
        # Maps are written with sorted keys so that equal states encode to equal bytes
        # whatever order their topics' events were applied in.
        position = self.position.to_list()
        position[2] = dict(sorted(self.position.purchase_orders.items()))
        ext: dict[str, Any] = {}
        if self.reference_price > 0.0 or self.period_sales:
            ext["cov"] = [self.reference_price, dict(sorted(self.period_sales.items()))]
        if self.pool is not None:
            ext["pool"] = self.pool.to_list()
        if self.inventory_demand.n:
            ext["inv"] = self.inventory_demand.to_list()
        if not self.stockout.idle:
            ext["so"] = self.stockout.to_list()
        if self.policy_version:
            ext["pol"] = [self.policy_version, None if self.policy is None else self.policy.to_list()]
        if self.lead_time:
            ext["lt"] = self.lead_time.to_list()
        if self.review is not None:
            ext["rev"] = self.review.to_list()
        if self.buyers:
            ext["rb"] = self.buyers.to_list()
        return msgpack.packb(
            [
                STATE_VERSION,
                self.key,
                dict(sorted(self.fence.items())),
                self.demand.to_list(),
                position,
                self.reorder.to_list() if self.reorder else None,
                self.overstock.to_list() if self.overstock else None,
                {k: v.to_list() for k, v in sorted(self.promotions.items())},
                dict(sorted(self.counters.items())),
                self.updated_at,
                list(self.level_ratio),
                *([ext] if ext else []),
            ],
            use_bin_type=True,
        )

    def encode_model(self) -> bytes:
        """The forecaster's compact bytes."""
        return encode(self.model)

    def encode(self) -> bytes:
        """Whole state as one blob (core + model)."""
        return msgpack.packb([self.encode_core(), self.encode_model()], use_bin_type=True)

    @classmethod
    def decode(cls, blob: bytes) -> SkuState:
        """Inverse of :meth:`encode`.

        Raises
        ------
        ValueError
            On an unknown state version or corrupt bytes.
        """
        core, model = msgpack.unpackb(blob, raw=False)
        return cls.decode_parts(core, model)

    @staticmethod
    def decode_counters(core: bytes) -> dict[str, int]:
        """The :attr:`counters` of an :meth:`encode_core` output, without decoding the model.

        Raises
        ------
        ValueError
            On an unknown state version or corrupt bytes.
        """
        return {str(k): int(v) for k, v in _unpack_core(core)[8].items()}

    @classmethod
    def decode_parts(cls, core: bytes, model: bytes) -> SkuState:
        """Rebuild a state from :meth:`encode_core` and :meth:`encode_model` outputs.

        Raises
        ------
        ValueError
            On an unknown state version or corrupt bytes.
        """
        d = _unpack_core(core)
        ext: dict[str, Any] = d[11] if len(d) > 11 else {}
        (_, key, fence, demand, position, reorder, overstock, promos, counters, updated,
         ratio) = d[:11]
        cov = ext.get("cov")
        pool = ext.get("pool")
        inv = ext.get("inv")
        so = ext.get("so")
        pol = ext.get("pol")
        lt = ext.get("lt")
        rev = ext.get("rev")
        rb = ext.get("rb")
        return cls(
            key=str(key),
            fence={str(k): int(v) for k, v in fence.items()},
            demand=DemandAccumulator.from_list(demand),
            model=decode(model),
            position=InventoryPosition.from_list(position),
            reorder=OpenDecision.from_list(reorder) if reorder else None,
            overstock=OpenDecision.from_list(overstock) if overstock else None,
            promotions={str(k): PromotionPlan.from_list(v) for k, v in promos.items()},
            counters={str(k): int(v) for k, v in counters.items()},
            updated_at=int(updated),
            level_ratio=[float(ratio[0]), float(ratio[1])],
            reference_price=float(cov[0]) if cov else 0.0,
            period_sales=({int(k): [float(x) for x in v] for k, v in cov[1].items()}
                          if cov else {}),
            pool=CovariatePool.from_list(pool) if pool else None,
            inventory_demand=InventoryDemand.from_list(inv) if inv else InventoryDemand(),
            stockout=StockoutClock.from_list(so) if so else StockoutClock(),
            policy=SkuPolicy.from_list(pol[1]) if pol and pol[1] else None,
            policy_version=int(pol[0]) if pol else 0,
            lead_time=LeadTimeEstimator.from_list(lt) if lt else LeadTimeEstimator(),
            review=ReviewProgress.from_list(rev) if rev else None,
            buyers=RepeatBuyers.from_list(rb) if rb else RepeatBuyers(),
        )


def _unpack_core(core: bytes) -> list[Any]:
    """The fields of an :meth:`SkuState.encode_core` output (ValueError if not a known version)."""
    try:
        d = msgpack.unpackb(core, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ValueError(f"corrupt SKU state: {exc}") from exc
    if not isinstance(d, list) or len(d) < 11 or d[0] != STATE_VERSION:
        raise ValueError(f"unknown SKU state version: {d[0] if isinstance(d, list) and d else d!r}")
    return d


TopicPartition = tuple[str, int]
"""``(topic, partition)`` of an input topic-partition."""


class StateRegressionError(RuntimeError):
    """The store holds less progress than this writer already made durable: it lost writes.

    Raised by :meth:`StateStore.save_many` (and reported by :meth:`StateStore.behind`) with
    ``lagging``: ``(topic, partition) -> (stored offset, expected offset)`` (stored ``-1`` when
    the progress entry is gone). The worker must stop without committing and be restarted: on
    partition assignment it rewinds to the stored progress and rebuilds the lost updates from
    Kafka.

    Examples
    --------
    >>> str(StateRegressionError({("orders", 0): (4, 9)}, where="Redis"))
    "Redis is behind this worker's last durable write: orders[0] at 4 < 9"
    """

    def __init__(self, lagging: dict[TopicPartition, tuple[int, int]],
                 where: str = "the state store") -> None:
        self.lagging = lagging
        detail = ", ".join(f"{t}[{p}] at {c} < {e}" for (t, p), (c, e) in sorted(lagging.items()))
        super().__init__(f"{where} is behind this worker's last durable write: {detail}")


def is_stale_write(stored_sequence: int | None, sequence: int) -> bool:
    """Tell whether a write of ``sequence`` over ``stored_sequence`` is a zombie's stale write.

    The one stale-write rule of every store: a write is refused when the stored
    :attr:`SkuState.sequence` is strictly higher (an equal one is a replay of the same state and
    is written again). ``streams.redis_state`` applies the same comparison inside its Lua script
    (it must run atomically in Redis); the conformance suite checks that both stores agree.

    Examples
    --------
    >>> is_stale_write(None, 0), is_stale_write(5, 5), is_stale_write(6, 5)
    (False, False, True)
    """
    return stored_sequence is not None and stored_sequence > sequence


def lagging_progress(stored: dict[TopicPartition, int], expected: dict[TopicPartition, int]
                     ) -> dict[TopicPartition, tuple[int, int]]:
    """Entries of ``expected`` whose ``stored`` progress is lower: ``tp -> (stored, expected)``.

    A missing stored entry counts as ``-1``.

    Examples
    --------
    >>> lagging_progress({("orders", 0): 7}, {("orders", 0): 9, ("orders", 1): 0})
    {('orders', 0): (7, 9), ('orders', 1): (-1, 0)}
    """
    return {tp: (stored.get(tp, -1), e) for tp, e in sorted(expected.items()) if stored.get(tp, -1) < e}


class StateStore(Protocol):
    """Where SKU states and partition progress live between batches (Redis, or a dict in tests).

    Everything the worker and its batch committer (``streams.committer``) use. Implementations
    write each SKU's state and its fence atomically, refuse a write whose
    :attr:`SkuState.sequence` is lower than the stored one (a zombie worker's stale write,
    :func:`is_stale_write`), and keep per input partition the *progress*: ``topic -> highest
    input offset`` whose effects are durable, advanced with the states of the same batch and
    never lowered. ``tests/unit/test_state_store_contract.py`` (in memory) and
    ``tests/integration/test_state_store_contract_redis.py`` run the same conformance checks.

    Attributes
    ----------
    name : str
        What the store is, for messages (``"Redis"``, ``"memory"``).
    """

    name: str

    def load_many(self, keys: list[str]) -> dict[str, SkuState]:
        """States of the given keys that exist (missing keys are absent from the result)."""
        ...

    def save_many(self, states: Iterable[SkuState], partition_of: dict[str, int] | None = None,
                  progress: dict[TopicPartition, int] | None = None,
                  expected: dict[TopicPartition, int] | None = None) -> int:
        """Persist a batch of states and its progress; returns how many states were written.

        Parameters
        ----------
        states : iterable of SkuState
            The batch's dirty states; stale ones (:func:`is_stale_write`) are skipped.
        partition_of : dict, optional
            SKU key -> input partition: maintains the index :meth:`keys_of_partition` reads.
        progress : dict, optional
            ``(topic, partition) -> highest input offset`` of the batch: advanced, never lowered.
        expected : dict, optional
            ``(topic, partition) -> offset`` this writer last made durable. When the store holds
            less it lost writes: nothing of the batch is written. (Not checked when there is
            nothing to write.)

        Raises
        ------
        StateRegressionError
            See ``expected``.
        """
        ...

    def keys(self) -> list[str]:
        """Every stored SKU key, sorted."""
        ...

    def keys_of_partition(self, partition: int) -> list[str]:
        """SKU keys last written by the owner of input partition ``partition``, sorted."""
        ...

    def read_progress(self, partitions: Iterable[int]) -> dict[TopicPartition, int]:
        """Durable progress ``(topic, partition) -> offset`` of ``partitions`` (absent: none)."""
        ...

    def behind(self, expected: dict[TopicPartition, int]) -> dict[TopicPartition, tuple[int, int]]:
        """Entries of ``expected`` whose stored progress is lower (:func:`lagging_progress`)."""
        ...


class InMemoryStateStore:
    """A :class:`StateStore` in dicts of encoded blobs (encoding is exercised as in Redis).

    Used by the backtest, the demo's baseline and the unit tests (the batch committer's included).

    Examples
    --------
    >>> store = InMemoryStateStore()
    >>> s = SkuState.new("A@W")
    >>> s.mark_applied("orders", 0, 3)
    >>> store.save_many([s], {"A@W": 0}, progress={("orders", 0): 3})
    1
    >>> store.keys_of_partition(0), store.read_progress([0])
    (['A@W'], {('orders', 0): 3})
    >>> store.behind({("orders", 0): 5})
    {('orders', 0): (3, 5)}
    """

    name = "memory"

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[int, bytes]] = {}
        self._partitions: dict[int, set[str]] = {}
        self._progress: dict[TopicPartition, int] = {}

    def load_many(self, keys: list[str]) -> dict[str, SkuState]:
        """See :meth:`StateStore.load_many`."""
        return {k: SkuState.decode(self._blobs[k][1]) for k in keys if k in self._blobs}

    def save_many(self, states: Iterable[SkuState], partition_of: dict[str, int] | None = None,
                  progress: dict[TopicPartition, int] | None = None,
                  expected: dict[TopicPartition, int] | None = None) -> int:
        """See :meth:`StateStore.save_many`.

        Raises
        ------
        StateRegressionError
            When the stored progress is behind ``expected`` (nothing is written).
        """
        batch = list(states)
        if not batch and not progress:
            return 0
        lagging = self.behind(expected or {})
        if lagging:
            raise StateRegressionError(lagging, where=self.name)
        for k, p in (partition_of or {}).items():
            self._partitions.setdefault(p, set()).add(k)
        n = 0
        for s in batch:
            old = self._blobs.get(s.key)
            if is_stale_write(None if old is None else old[0], s.sequence):
                continue
            self._blobs[s.key] = (s.sequence, s.encode())
            n += 1
        for tp, offset in (progress or {}).items():
            self._progress[tp] = max(offset, self._progress.get(tp, -1))
        return n

    def keys(self) -> list[str]:
        """See :meth:`StateStore.keys`."""
        return sorted(self._blobs)

    def keys_of_partition(self, partition: int) -> list[str]:
        """See :meth:`StateStore.keys_of_partition`."""
        return sorted(self._partitions.get(partition, set()) & set(self._blobs))

    def read_progress(self, partitions: Iterable[int]) -> dict[TopicPartition, int]:
        """See :meth:`StateStore.read_progress`."""
        wanted = set(partitions)
        return {tp: o for tp, o in sorted(self._progress.items()) if tp[1] in wanted}

    def behind(self, expected: dict[TopicPartition, int]) -> dict[TopicPartition, tuple[int, int]]:
        """See :meth:`StateStore.behind`."""
        return lagging_progress(self.read_progress({p for _, p in expected}), expected)

    def lose_progress(self, partition: int) -> None:
        """Forget the progress of ``partition`` (tests: a store that lost its latest writes)."""
        for tp in [tp for tp in self._progress if tp[1] == partition]:
            del self._progress[tp]
