"""Domain configuration built from :class:`streams.settings.Settings`, in one place.

The settings speak in days and seconds; the domain (:mod:`agents.policy`,
:mod:`agents.processor`) speaks in demand periods. Every conversion happens here, once:
:func:`policy_params` (the default replenishment policy), :func:`load_policy_overrides` (per-SKU
policies from a file) and :func:`processor_config` (everything a :class:`SkuProcessor` needs).
:func:`run_settings` builds the settings of one isolated run (demo, test, benchmark).

No Faust, Kafka or Redis is imported here, so unit tests get the production configuration
without the transport.

Examples
--------
>>> s = Settings(freq="W", lead_time_days=14, lead_time_std_days=3.5, unit_cost=2.0)
>>> p = policy_params(s)
>>> p.lead_time_periods, p.lead_time_std_periods, p.unit_cost, p.periods_per_year
(2.0, 0.5, 2.0, 52.142857142857146)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from agents.policy import PolicyParams
from agents.processor import ProcessorConfig
from streams.ports import free_port
from streams.settings import Settings

#: Consumer-group timings of a short-lived run (tests, demo, benchmarks): Tansu completes a
#: group join only after the rebalance timeout, so keep it short (seconds).
RUN_GROUP_TIMINGS: Mapping[str, float] = {
    "session_timeout_s": 4.0, "heartbeat_interval_s": 0.5, "rebalance_timeout_s": 1.0,
}

#: The topic roles of a run, input and output: ``role -> Settings`` field.
TOPIC_FIELDS: Mapping[str, str] = {
    "orders": "orders_topic", "inventory": "inventory_topic", "promotions": "promotions_topic",
    "policies": "policies_topic", "reorders": "reorders_topic", "dlq": "dlq_topic",
}


#: Fewest periods of the (short, long) demand-rate windows per period length, whatever the windows'
#: length in days. Weekly data: both windows are at least 104 weeks (two years, the dispersion's
#: span), so the rate is the SKU's mean week of the last two years. On the tuna and cheese panels
#: (weekly, lead time one week) longer windows held less stock at equal fill at every length
#: measured (8/26, 13, 26, 52, 104 weeks; `restock simulate --targets default`, docs/decisions.md):
#: a weekly panel has few periods and spikes of 10-80x, and a mean of 8 weeks is a noisy rate
#: (relative standard error CV / sqrt(8)). Daily and hourly windows are the days configured (56
#: and 56 by default: one 56-day mean, measured on Online Retail, where 84 days was worse).
RATE_WINDOW_MIN_PERIODS: Mapping[str, tuple[int, int]] = {"W": (104, 104)}


def policy_params(settings: Settings) -> PolicyParams:
    """The default :class:`PolicyParams` the settings describe (days converted to periods).

    Carries every policy field the settings hold: lead time and its spread, review period,
    service level, costs (unit cost in currency per unit, holding cost rate per year, ordering
    cost in currency per order), pack size and MOQ (units), overstock cover.

    Parameters
    ----------
    settings : Settings
        Durations in days (``*_days``), converted with :meth:`Settings.days_to_periods`.

    Returns
    -------
    PolicyParams
        Durations in demand periods of ``settings.freq``; ``periods_per_year = 365 / period_days``.

    Raises
    ------
    pydantic.ValidationError
        When the combination is invalid (see :class:`PolicyParams`).
    """
    return PolicyParams(
        lead_time_periods=settings.days_to_periods(settings.lead_time_days),
        lead_time_std_periods=settings.days_to_periods(settings.lead_time_std_days),
        review_period_periods=settings.days_to_periods(settings.review_period_days),
        cycle_service_level=None if settings.fill_rate is not None else settings.cycle_service_level,
        fill_rate=settings.fill_rate,
        unit_cost=settings.unit_cost,
        holding_cost_rate=settings.holding_cost_rate,
        ordering_cost=settings.ordering_cost,
        periods_per_year=365.0 / settings.period_days,
        pack_size=settings.pack_size,
        moq=settings.moq,
        overstock_cover_periods=settings.days_to_periods(settings.overstock_cover_days),
    )


def load_policy_overrides(path: Path, base: PolicyParams) -> dict[str, PolicyParams]:
    """Per-SKU policy parameters from a JSON or YAML file.

    The file maps ``"sku"`` or ``"sku@location"`` to fields of :class:`PolicyParams` (periods
    and units as there), e.g. ``{"85123A@UK": {"lead_time_periods": 14, "pack_size": 12}}``;
    unspecified fields keep the defaults from the settings.

    Raises
    ------
    ValueError
        When the file is not a mapping or a value is invalid (naming the SKU).
    """
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sku or sku@location to policy fields")
    out: dict[str, PolicyParams] = {}
    for key, fields in data.items():
        try:
            out[str(key)] = base.with_overrides(**(fields or {}))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: invalid policy for {key!r}: {exc}") from exc
    return out


def processor_config(settings: Settings) -> ProcessorConfig:
    """The :class:`ProcessorConfig` the settings describe (days converted to periods).

    Raises
    ------
    ValueError
        When the policy overrides file is invalid (:func:`load_policy_overrides`).
    """
    policy = policy_params(settings)
    overrides = (load_policy_overrides(settings.policy_overrides_file, policy)
                 if settings.policy_overrides_file else {})
    floors = RATE_WINDOW_MIN_PERIODS.get(settings.freq, (1, 1))
    return ProcessorConfig(
        overrides=overrides,
        freq=settings.freq,
        allowed_lateness_s=settings.allowed_lateness_s,
        horizon_periods=settings.horizon_periods,
        policy=policy,
        suggestion_expiry_s=settings.suggestion_expiry_days * 86400.0,
        reemit_change_fraction=settings.reemit_change_fraction,
        unmet_demand=settings.unmet_demand,
        stockout_demand=settings.stockout_demand,
        min_history_periods=settings.min_history,
        demand_source=settings.demand_source,
        rate_window_periods=max(floors[1], round(settings.days_to_periods(settings.rate_window_days))),
        rate_short_window_periods=max(floors[0],
                                      round(settings.days_to_periods(settings.rate_short_window_days))),
        dispersion_span_periods=settings.days_to_periods(settings.dispersion_span_days),
        lost_unit_cost=settings.lost_unit_cost,
        fill_control=settings.fill_control == "partition",
        fill_control_base_cost=settings.fill_control_base_cost,
        lumpiness_discount=settings.lumpiness_discount,
        repeat_buyers=settings.repeat_buyers,
        repeat_buyer_bulk_periods=settings.days_to_periods(settings.repeat_buyer_bulk_days),
        repeat_buyer_prior_orders=settings.repeat_buyer_prior_orders,
        repeat_buyer_prior_periods=settings.days_to_periods(settings.repeat_buyer_prior_days),
        repeat_buyers_max=settings.repeat_buyers_max,
        lead_time_learning=settings.lead_time_learning,
        lead_time_prior_receipts=settings.lead_time_prior_receipts,
        promotion_lift=settings.promotion_lift,
        covariates=settings.covariates_enabled,
        covariate_extras=tuple(n.strip() for n in settings.covariate_extras.split(",") if n.strip()),
    )


def run_settings(base: Settings | None = None, *, run_id: str, work_dir: Path,
                 topics: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings of one isolated run: its own topics, consumer group, Redis namespace and ports.

    The one place that builds run-scoped settings (demo, integration tests, benchmarks).

    Parameters
    ----------
    base : Settings, optional
        What the run starts from (default: the environment's settings).
    run_id : str
        Unique name of the run: the consumer group (``app_id``) and the Redis key prefix.
    work_dir : Path
        The worker's data directory is ``work_dir / f"worker-{run_id}"``.
    topics : mapping, optional
        Role (``orders``, ``inventory``, ``promotions``, ``policies``, ``reorders``, ``dlq``) ->
        topic name; default ``f"{run_id}.{role}"`` for every role missing from it.
    **overrides
        Any other :class:`Settings` field; applied last.

    Returns
    -------
    Settings
        Validated; a free ``web_port`` and the short group timings of :data:`RUN_GROUP_TIMINGS`
        unless overridden.

    Raises
    ------
    pydantic.ValidationError
        When an override is invalid.

    Examples
    --------
    >>> s = run_settings(Settings(), run_id="t1", work_dir=Path("/tmp/x"), metrics_port=0)
    >>> s.app_id, s.orders_topic, s.dlq_topic, s.redis_key_prefix, s.session_timeout_s
    ('t1', 't1.orders', 't1.dlq', 't1', 4.0)
    """
    base = base or Settings()
    names = {role: f"{run_id}.{role}" for role in TOPIC_FIELDS}
    names.update(topics or {})
    fields: dict[str, Any] = dict(base.model_dump())
    fields.update({f: names[role] for role, f in TOPIC_FIELDS.items()})
    fields.update(app_id=run_id, redis_key_prefix=run_id, web_port=free_port(),
                  worker_data_dir=work_dir / f"worker-{run_id}", **RUN_GROUP_TIMINGS)
    fields.update(overrides)
    return Settings(**fields)
