"""Replenishment policy parameters of one SKU@location (:class:`PolicyParams`).

Periods, units of stock and currency as in :mod:`agents.policy`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = ["PolicyParams"]


class PolicyParams(BaseModel):
    """Replenishment policy parameters of one SKU@location (immutable).

    Parameters
    ----------
    lead_time_periods : float, default 7
        Mean replenishment lead time ``L`` in periods; must be positive.
    lead_time_std_periods : float, default 0
        Standard deviation of the lead time ``sigma_L`` in periods; must be non-negative.
    review_period_periods : float, default 1
        Review period ``R`` in periods (time between two order decisions); must be positive.
    cycle_service_level : float or None, default 0.95
        Target cycle service level (probability of no stockout per replenishment cycle), in
        (0, 1). Exactly one of ``cycle_service_level`` and ``fill_rate`` is set: when
        ``fill_rate`` is given and ``cycle_service_level`` is not passed, the latter defaults
        to None; passing both explicitly is an error.
    fill_rate : float or None, default None
        Target fill rate ``beta`` (fraction of demand satisfied routinely from shelf), in (0, 1).
    unit_cost : float, default 1.0
        Purchase cost in currency per unit of stock; must be non-negative.
    holding_cost_rate : float, default 0.25
        Holding cost as a fraction of the unit cost per year (currency per currency per year);
        must be non-negative.
    ordering_cost : float or None, default None
        Fixed cost ``K`` in currency per order. When set, the EOQ is computed and used as the
        minimum cycle stock of the (s, S) policy; it then requires a positive holding cost.
    periods_per_year : float, default 365
        Number of periods in a year (365 for daily periods, 52 for weekly ones); positive.
    pack_size : int, default 1
        Orders are placed in multiples of this many units; at least 1.
    moq : int, default 0
        Minimum order quantity in units; non-negative.
    overstock_cover_periods : float, default 90
        Periods of cover above which stock counts as an overstock; positive.
    overstock_margin_units : float, default 0
        Units of tolerance above the overstock threshold (see :func:`is_overstock`) before the
        inventory position counts as an overstock; non-negative.
    distribution : {"normal", "negbin"}, default "normal"
        Demand distribution used for quantiles and safety stock: a normal approximation, or a
        negative binomial (Poisson when not over-dispersed) moment-matched to the forecast.

    Raises
    ------
    pydantic.ValidationError
        A subclass of ValueError, raised by the constructor with a full-sentence message when a
        value is out of range, non-finite, an unknown field is given, or the service target is
        ambiguous (both or neither of ``cycle_service_level`` and ``fill_rate``).

    References
    ----------
    [^1]: Silver, E. A., Pyke, D. F., & Thomas, D. J. (2017). *Inventory and Production
        Management in Supply Chains* (4th ed.). CRC Press. Ch. 6, "Individual Items with
        Probabilistic Demand" (service measures: cycle service level P1 and fill rate P2).

    Examples
    --------
    >>> p = PolicyParams(lead_time_periods=3, fill_rate=0.98)
    >>> p.cycle_service_level is None, p.fill_rate
    (True, 0.98)
    >>> p.with_overrides(cycle_service_level=0.9).fill_rate is None
    True
    >>> try:
    ...     PolicyParams(lead_time_periods=0)
    ... except ValueError as exc:
    ...     print("rejected")
    rejected

    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    lead_time_periods: float = 7.0
    lead_time_std_periods: float = 0.0
    review_period_periods: float = 1.0
    cycle_service_level: float | None = 0.95
    fill_rate: float | None = None
    unit_cost: float = 1.0
    holding_cost_rate: float = 0.25
    ordering_cost: float | None = None
    periods_per_year: float = 365.0
    pack_size: int = 1
    moq: int = 0
    overstock_cover_periods: float = 90.0
    overstock_margin_units: float = 0.0
    distribution: Literal["normal", "negbin"] = "normal"

    @model_validator(mode="before")
    @classmethod
    def _default_service_target(cls, data: Any) -> Any:
        # A fill-rate target given without an explicit cycle service level replaces the
        # default cycle service level (so ``PolicyParams(fill_rate=0.98)`` is valid).
        if isinstance(data, dict) and data.get("fill_rate") is not None:
            if "cycle_service_level" not in data:
                data = {**data, "cycle_service_level": None}
        return data

    @field_validator("lead_time_periods", "review_period_periods", "periods_per_year",
                     "overstock_cover_periods")
    @classmethod
    def _positive(cls, v: float, info: Any) -> float:
        if not v > 0:
            raise ValueError(f"The parameter {info.field_name} must be positive, got {v}.")
        return v

    @field_validator("lead_time_std_periods", "unit_cost", "holding_cost_rate",
                     "overstock_margin_units", "ordering_cost", "moq")
    @classmethod
    def _non_negative(cls, v: float | None, info: Any) -> float | None:
        if v is not None and v < 0:
            raise ValueError(f"The parameter {info.field_name} must be non-negative, got {v}.")
        return v

    @field_validator("cycle_service_level", "fill_rate")
    @classmethod
    def _probability(cls, v: float | None, info: Any) -> float | None:
        if v is not None and not 0.0 < v < 1.0:
            raise ValueError(
                f"The service target {info.field_name} must lie strictly between 0 and 1, "
                f"got {v}."
            )
        return v

    @field_validator("pack_size")
    @classmethod
    def _pack(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"The pack size must be at least 1 unit, got {v}.")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> PolicyParams:
        if (self.cycle_service_level is None) == (self.fill_rate is None):
            raise ValueError(
                "Exactly one service target must be set: give either cycle_service_level or "
                "fill_rate (and set the other to None)."
            )
        if self.ordering_cost is not None and self.unit_cost * self.holding_cost_rate <= 0:
            raise ValueError(
                "An ordering cost was given, so the EOQ needs a positive holding cost, but "
                "unit_cost * holding_cost_rate is zero."
            )
        return self

    def with_overrides(self, **kw: Any) -> PolicyParams:
        """Return a validated copy with some fields replaced.

        Switching the service target is allowed: overriding ``fill_rate`` with a value (and not
        ``cycle_service_level``) clears ``cycle_service_level``, and vice versa.

        Parameters
        ----------
        **kw : Any
            Field names and their new values (same units as the constructor).

        Returns
        -------
        PolicyParams
            A new, validated instance; ``self`` is unchanged.

        Raises
        ------
        pydantic.ValidationError
            (a ValueError) when the resulting parameters are invalid or a name is unknown.

        Examples
        --------
        >>> PolicyParams().with_overrides(lead_time_periods=2.5).lead_time_periods
        2.5

        """
        data = self.model_dump()
        if kw.get("fill_rate") is not None and "cycle_service_level" not in kw:
            data["cycle_service_level"] = None
        if kw.get("cycle_service_level") is not None and "fill_rate" not in kw:
            data["fill_rate"] = None
        data.update(kw)
        return type(self).model_validate(data)
