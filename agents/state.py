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

from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack

from agents.demand import DemandAccumulator
from agents.forecasting import DemandForecaster, decode, encode
from agents.forecasting.covariates import CovariatePool
from agents.inventory import InventoryPosition
from agents.inventory_demand import InventoryDemand

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
    promotions : dict[str, list[float]]
        Planned promotions ``id -> [valid_from s, valid_to s, unit_price or -1, depth, kind]``.
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
    promotions: dict[str, list[Any]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    updated_at: int = 0
    level_ratio: list[float] = field(default_factory=lambda: [0.0, 0.0])
    reference_price: float = 0.0
    period_sales: dict[int, list[float]] = field(default_factory=dict)
    pool: CovariatePool | None = None
    inventory_demand: InventoryDemand = field(default_factory=InventoryDemand)
    derived: Any = field(default=None, repr=False, compare=False)  # cached forecast/levels, not stored

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
        return msgpack.packb(
            [
                STATE_VERSION,
                self.key,
                dict(sorted(self.fence.items())),
                self.demand.to_list(),
                position,
                self.reorder.to_list() if self.reorder else None,
                self.overstock.to_list() if self.overstock else None,
                dict(sorted(self.promotions.items())),
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
        return cls(
            key=str(key),
            fence={str(k): int(v) for k, v in fence.items()},
            demand=DemandAccumulator.from_list(demand),
            model=decode(model),
            position=InventoryPosition.from_list(position),
            reorder=OpenDecision.from_list(reorder) if reorder else None,
            overstock=OpenDecision.from_list(overstock) if overstock else None,
            promotions={str(k): list(v) for k, v in promos.items()},
            counters={str(k): int(v) for k, v in counters.items()},
            updated_at=int(updated),
            level_ratio=[float(ratio[0]), float(ratio[1])],
            reference_price=float(cov[0]) if cov else 0.0,
            period_sales=({int(k): [float(x) for x in v] for k, v in cov[1].items()}
                          if cov else {}),
            pool=CovariatePool.from_list(pool) if pool else None,
            inventory_demand=InventoryDemand.from_list(inv) if inv else InventoryDemand(),
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


class StateStore(Protocol):
    """Where SKU states live between batches (Redis in production, a dict in unit tests).

    Implementations write each SKU's state and its fence atomically, and refuse a write whose
    :attr:`SkuState.sequence` is lower than the stored one (a zombie worker's stale write).
    """

    def load_many(self, keys: list[str]) -> dict[str, SkuState]:
        """States of the given keys that exist (missing keys are absent from the result)."""
        ...

    def save_many(self, states: list[SkuState], partition_of: dict[str, int] | None = None) -> int:
        """Persist states; returns how many were written (stale ones are skipped).

        ``partition_of`` (SKU key -> input partition) maintains the partition index that
        :meth:`keys_of_partition` reads after a rebalance.
        """
        ...

    def keys(self) -> list[str]:
        """Every stored SKU key."""
        ...

    def keys_of_partition(self, partition: int) -> list[str]:
        """SKU keys last written by the owner of input partition ``partition``."""
        ...


class InMemoryStateStore:
    """A :class:`StateStore` in a dict of encoded blobs (encoding is exercised as in Redis)."""

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[int, bytes]] = {}
        self._partitions: dict[int, set[str]] = {}

    def load_many(self, keys: list[str]) -> dict[str, SkuState]:
        """See :meth:`StateStore.load_many`."""
        return {k: SkuState.decode(self._blobs[k][1]) for k in keys if k in self._blobs}

    def save_many(self, states: list[SkuState], partition_of: dict[str, int] | None = None) -> int:
        """See :meth:`StateStore.save_many`."""
        for k, p in (partition_of or {}).items():
            self._partitions.setdefault(p, set()).add(k)
        n = 0
        for s in states:
            old = self._blobs.get(s.key)
            if old is not None and old[0] > s.sequence:
                continue
            self._blobs[s.key] = (s.sequence, s.encode())
            n += 1
        return n

    def keys(self) -> list[str]:
        """See :meth:`StateStore.keys`."""
        return sorted(self._blobs)

    def keys_of_partition(self, partition: int) -> list[str]:
        """See :meth:`StateStore.keys_of_partition`."""
        return sorted(self._partitions.get(partition, set()) & set(self._blobs))
