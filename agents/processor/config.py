"""The processor's configuration and its results: ProcessorConfig, EventMeta, ApplyResult.

Durations in seconds, horizons and windows in periods, unless named otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from agents.demand import Freq, period_seconds
from agents.forecasting.covariates import COVARIATES
from agents.policy import PolicyParams
from agents.policy.controller import STEP
from agents.state import SkuState
from schemas.decisions import OverstockDetected, ReorderSuggested

__all__ = ["ApplyResult", "Decision", "EventMeta", "PeriodObserver", "PolicyRejected", "ProcessorConfig",
           "Status"]

Decision = ReorderSuggested | OverstockDetected
Status = Literal["applied", "skipped", "late"]


@dataclass(frozen=True, slots=True)
class EventMeta:
    """Where an event came from: ``topic[partition]@offset``."""

    topic: str
    partition: int
    offset: int


class PolicyRejected(ValueError):
    """A ``PolicySet`` whose parameters are invalid for its SKU; raised before the state changed.

    The pipeline dead-letters the event (stage ``validate``) and keeps the SKU's state as it was.
    """


@dataclass(slots=True)
class ApplyResult:
    """Outcome of applying one event (or one watermark) to one SKU."""

    status: Status
    decisions: list[Decision] = field(default_factory=list)
    periods_closed: int = 0
    error: str | None = None
    pool_changed: bool = False
    stale_policy: bool = False  # a PolicySet whose version is not above the SKU's: ignored (counted)


@dataclass(frozen=True)
class ProcessorConfig:
    """Knobs of :class:`SkuProcessor` (all durations in seconds unless named otherwise).

    Attributes
    ----------
    freq : {"H", "D", "W"}
        Demand period.
    allowed_lateness_s : float
        How long after its end a period stays open for late orders.
    horizon_periods : int
        Forecast horizon H (must cover lead time + review period).
    policy : PolicyParams
        Default replenishment parameters (lead time etc. in periods).
    overrides : dict[str, PolicyParams]
        Per ``sku@location`` (or per ``sku``) parameters.
    suggestion_expiry_s : float
        An open suggestion stops blocking new ones after this much event time.
    reemit_change_fraction : float
        Re-emit an open reorder when the order-up-to level S it was computed with moves by more
        than this fraction (a forecast shift), or when the quantity now needed exceeds the open
        suggestion's by more than this fraction; not for every unit demand depletes.
    unmet_demand : {"lost_sales", "backorder"}
        What an order that exceeds on_hand becomes.
    min_history_periods : int
        Periods a SKU must have learned before any decision is made about it.
    level_ratio_alpha : float
        Smoothing of the actual/forecast demand ratio used for inventory levels (0 disables).
    level_ratio_bounds : (float, float)
        Clip of that ratio.
    covariates : bool
        Learn and forecast with price / promotion covariates (module docstring).
    covariate_extras : tuple of str
        Names of extra numeric covariates taken from plans (``PromotionPlanned.covariates``),
        e.g. ``("x_promo_share",)``; appended to the standard ones.
    season_length : int or None
        Season length of new SKUs' forecasters (None: 24 hourly, 7 daily, 52 weekly); the
        season position of a period is taken modulo it.
    reference_price_alpha : float
        Downward smoothing of the regular price (a higher regular price is taken at once).
    demand_source : {"window", "forecaster"}
        Demand distribution the levels read. ``"window"`` (default): the rate of the last
        ``rate_window_periods`` periods and the long-run dispersion of
        :class:`~agents.inventory_demand.InventoryDemand` (flat over the protection interval,
        per-period variance ``CV^2 rate^2``). ``"forecaster"``: the forecaster's moments scaled
        by :meth:`SkuProcessor.level_ratio` (the policy before issue #17, kept for comparison).
    rate_window_periods : int
        Long window of the demand rate (periods; 56 days by default).
    rate_short_window_periods : int
        Short window (periods; 56 days by default, so the rate is one 56-day mean; issue #17
        frontier, docs/decisions.md). The rate is the lower of the two window
        means: it follows a fall in demand within the short window and a rise only as the long
        window confirms it, so one bulk order does not lift the levels for long.
    dispersion_span_periods : float
        Memory of the long-run dispersion (periods; 730 days by default).
    promotion_lift : bool
        With ``demand_source="window"``: learn the window from regular-price demand (each
        period divided by the lift the forecaster attributes to its realised promotion/price)
        and multiply planned periods by the planned lift. Off by default: on the Dominick's tuna
        panel (30-50x promotion weeks, lead time one week) it held 4x the stock for a higher
        fill rate, because an order placed during a promotion arrives after it; it needs an
        order rule on the projected position at the lead time (issue #17 note).
    lost_unit_cost : float or None
        Cost assigned to one lost (or backordered) unit of demand, in currency. When set, each
        SKU's service level is the critical fractile ``p / (p + h v R)`` of its own holding cost
        per review period (``h`` the policy's holding cost rate per year, ``v`` the SKU's unit
        value: its learned regular price, else the policy's ``unit_cost``; ``R`` in years), in
        place of the policy's target: the allocation that minimises stock value for the units
        served (the Lagrangian of a unit fill-rate constraint; Silver, Pyke & Thomas 2017, Ch. 7,
        cost per unit short, and Ch. 8 exchange curves). None: the policy's target.
    fill_control : bool
        With a fill-rate target (``policy.fill_rate``) and no ``lost_unit_cost``: the cost per
        lost unit is learned per input partition so that the partition's achieved fill rate
        meets the target (:class:`~agents.policy.controller.ServiceController`, a Robbins-Monro
        iteration on ``log p`` stepped once per period); each SKU whose parameters carry a
        fill-rate target then takes the critical fractile of the learned cost, as with
        ``lost_unit_cost``. False: the fill rate is solved per SKU by the normal loss function
        (:func:`~agents.policy.z_for_fill_rate`).
    fill_control_base_cost : float
        The controller's starting cost per lost unit ``p_0`` (currency).
    lumpiness_discount : float
        ``k >= 0``: where a lost-unit cost sets the service level, each SKU's holding cost in
        the critical fractile is multiplied by ``1 + k CV^2`` (CV^2: the squared coefficient of
        variation of its per-period demand). A lumpy SKU buys less fill per unit of stock (a
        bulk order above S loses its shortfall whatever S was), so at one price per lost unit
        it gets a lower level. Empirical, not from a formula: on Online Retail the per-SKU
        levels chosen in hindsight fall with CV^2 (correlation -0.37, docs/decisions.md), and
        k = 1 (restock's setting, ``RESTOCK_LUMPINESS_DISCOUNT``) lowers the stock at fill 0.90
        from 0.93x to 0.88x the best baseline's, and is no worse on the weekly sets. 0 (the
        default here) leaves the plain fractile.
    repeat_buyers : bool
        With ``demand_source="window"``: model each SKU's repeat bulk buyers apart from its
        regular demand (:mod:`agents.repeat_buyers`). A line above
        ``repeat_buyer_bulk_periods`` periods of the window's total rate makes its customer a repeat
        buyer; their lines leave the window (which keeps the total's dispersion for the
        lumpiness discount) and the levels add their compound Poisson demand. Off here (the
        settings turn it on: ``RESTOCK_REPEAT_BUYERS``); orders without ``customer_id`` are
        regular demand either way.
    repeat_buyer_bulk_periods : float
        A line larger than this many periods of the SKU's total demand rate (the window's,
        buyers included) marks its customer (periods; 4 days by default in the settings).
    repeat_buyer_prior_orders, repeat_buyer_prior_periods : float
        The gamma prior of a buyer's purchase rate: ``prior_orders`` purchases over
        ``prior_periods`` periods (1 over 90 days by default).
    repeat_buyers_max : int
        Buyers kept per SKU.
    stockout_demand : {"published", "hidden"}
        What the storefront does while a SKU is out of stock. ``"published"`` (default): it
        still publishes the orders (the ones beyond on_hand become lost sales or backorders), so
        every period's orders are its demand. ``"hidden"``: it stops taking orders, so a period
        with a stock-out fraction ``f > 0`` (share of its seconds with ``on_hand`` below one
        unit, of the period's demand when orders are stamped at period starts;
        :class:`~agents.censoring.StockoutClock`) has censored sales: it is learned as
        ``sales + f E[D]`` (:func:`~agents.censoring.censored_demand`; Nahmias 1994, Kaplan &
        Meier 1958), ``E[D]`` from before the period is learned: the short-window mean for the
        demand window (:meth:`~agents.processor.derived.LevelsDeriver.recent_rate`), the
        one-step forecast for the forecaster and the level ratio. The fill-rate controller
        counts the window's ``f E[D]`` as units demanded and lost, since no lost order reaches
        it. Requires ``unmet_demand="lost_sales"``.
    """

    freq: Freq = "D"
    allowed_lateness_s: float = 3600.0
    horizon_periods: int = 28
    policy: PolicyParams = field(default_factory=PolicyParams)
    overrides: dict[str, PolicyParams] = field(default_factory=dict)
    suggestion_expiry_s: float = 14 * 86400.0
    reemit_change_fraction: float = 0.25
    unmet_demand: Literal["lost_sales", "backorder"] = "lost_sales"
    min_history_periods: int = 28
    level_ratio_alpha: float = 0.03
    level_ratio_bounds: tuple[float, float] = (0.5, 3.0)
    covariates: bool = True
    covariate_extras: tuple[str, ...] = ()
    season_length: int | None = None
    reference_price_alpha: float = 0.05
    demand_source: Literal["window", "forecaster"] = "window"
    rate_window_periods: int = 56
    rate_short_window_periods: int = 56
    promotion_lift: bool = False
    dispersion_span_periods: float = 730.0
    lost_unit_cost: float | None = None
    fill_control: bool = False
    fill_control_base_cost: float = 0.1
    lumpiness_discount: float = 0.0
    lead_time_learning: bool = False
    lead_time_prior_receipts: float = 4.0
    stockout_demand: Literal["published", "hidden"] = "published"
    repeat_buyers: bool = False
    repeat_buyer_bulk_periods: float = 4.0
    repeat_buyer_prior_orders: float = 1.0
    repeat_buyer_prior_periods: float = 90.0
    repeat_buyers_max: int = 8

    @property
    def controlled_fill_rate(self) -> float | None:
        """The partition controller's fill-rate target, or None when it is off."""
        if self.fill_control and self.lost_unit_cost is None:
            return self.policy.fill_rate
        return None

    @property
    def fill_control_gain(self) -> float:
        """The controller's step ``eta`` per period: :data:`~agents.policy.controller.STEP` per day."""
        return STEP * period_seconds(self.freq) / 86400.0

    @property
    def partition_pool(self) -> bool:
        """Whether each partition keeps a pool pseudo-state (covariates, fill controller, lead times)."""
        return self.covariates or self.controlled_fill_rate is not None or self.lead_time_learning

    @property
    def covariate_names(self) -> tuple[str, ...]:
        """Standard covariates followed by the extras."""
        return (*COVARIATES, *self.covariate_extras)

    @property
    def buyers_on(self) -> bool:
        """Whether repeat buyers are modelled (``repeat_buyers`` with the window demand source)."""
        return self.repeat_buyers and self.demand_source == "window"

    @property
    def censored(self) -> bool:
        """Whether periods with a stock-out are learned as censored (``stockout_demand="hidden"``)."""
        return self.stockout_demand == "hidden"

    def __post_init__(self) -> None:
        if not (self.repeat_buyer_bulk_periods > 0 and self.repeat_buyer_prior_orders > 0
                and self.repeat_buyer_prior_periods > 0 and self.repeat_buyers_max >= 1):
            raise ValueError("repeat_buyer_bulk_periods, repeat_buyer_prior_orders and "
                             "repeat_buyer_prior_periods must be positive, repeat_buyers_max >= 1")
        if not self.lead_time_prior_receipts > 0:
            raise ValueError(
                f"lead_time_prior_receipts must be positive, got {self.lead_time_prior_receipts}")
        if self.stockout_demand not in ("published", "hidden"):
            raise ValueError(f"stockout_demand must be 'published' or 'hidden', got {self.stockout_demand!r}")
        if self.censored and self.unmet_demand != "lost_sales":
            raise ValueError("stockout_demand='hidden' (a storefront that takes no order while out of "
                             "stock) contradicts unmet_demand='backorder' (one that takes backorders)")
        self.check_horizon_covers(self.policy)

    def check_horizon_covers(self, params: PolicyParams) -> None:
        """Check that the forecast horizon covers ``params``' lead time plus review period.

        The levels read ``ceil(L + R)`` periods of the forecast (periods, not days).

        Raises
        ------
        ValueError
            When ``horizon_periods < ceil(L + R)``.
        """
        needed = params.lead_time_periods + params.review_period_periods
        if self.horizon_periods < math.ceil(needed):
            raise ValueError(
                f"horizon_periods ({self.horizon_periods}) must cover lead time + review period "
                f"({needed:g} periods)"
            )


#: ``observer(state, period_start_epoch_s, units)``: called for every closed period before it is learned.
PeriodObserver = Callable[[SkuState, int, float], None]
