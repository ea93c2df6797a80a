"""restock settings: one frozen object, read from ``RESTOCK_*`` environment variables.

Every value that Faust, Redis or the agents use comes from here and is passed into them
explicitly, so Faust's own environment variables are never a hidden second source.

``KAFKA_BOOTSTRAP_SERVERS`` and ``REDIS_URL`` (without prefix) are honoured as well, so the same
variables that point the test fixtures at external services point the worker there too.

Where the stack is (one source of truth)
----------------------------------------
Every command (``worker``, ``lag``, ``dlq``, ``demo``) finds Kafka and Redis the same way; the
first of these wins:

1. ``--bootstrap-servers`` / ``--redis-url`` on the command line;
2. ``RESTOCK_KAFKA_BOOTSTRAP_SERVERS`` or ``KAFKA_BOOTSTRAP_SERVERS``, ``RESTOCK_REDIS_URL`` or
   ``REDIS_URL`` in the environment;
3. ``<stack dir>/endpoints.json``, written by ``restock stack up`` (whatever ports it was given)
   and removed by ``restock stack down`` (stack dir: ``RESTOCK_STACK_DIR``, default
   ``.restock/stack`` under the working directory);
4. ``RESTOCK_KAFKA_PORT`` / ``RESTOCK_REDIS_PORT`` (a stack on 127.0.0.1 at those ports);
5. the defaults, ``127.0.0.1:19092`` and ``redis://127.0.0.1:16379/0``.

Examples
--------
>>> s = Settings(redis_url="redis://:hunter2@127.0.0.1:6379/0")
>>> s.topic_partitions
4
>>> "hunter2" in repr(s)
False
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agents.demand import Freq
from schemas.common import (
    TOPIC_DLQ,
    TOPIC_INVENTORY,
    TOPIC_ORDERS,
    TOPIC_POLICIES,
    TOPIC_PROMOTIONS,
    TOPIC_REORDERS,
)

ENDPOINTS_FILE = "endpoints.json"
"""Name of the file ``restock stack up`` writes into its state directory."""
#: the worker's generation-0 GC threshold (docs/performance.md, "Garbage collection")
GC_GEN0_THRESHOLD = 10_000
DEFAULT_STACK_DIR = Path(".restock/stack")
#: forecast horizon (periods) unless the lead time plus review period needs more; also the
#: static (s,S) fit's horizon of the baseline rules (streams.rules)
DEFAULT_HORIZON_PERIODS = 28


def write_endpoints(stack_dir: Path, kafka_bootstrap_servers: str, redis_url: str) -> Path:
    """Record where a running embedded stack listens (read back by every :class:`Settings`).

    Parameters
    ----------
    stack_dir : Path
        The stack's state directory.
    kafka_bootstrap_servers : str
        ``host:port`` of its broker.
    redis_url : str
        ``redis://host:port/db`` of its Redis (no password: the embedded Redis has none).

    Returns
    -------
    Path
        The file written.
    """
    path = Path(stack_dir) / ENDPOINTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kafka_bootstrap_servers": kafka_bootstrap_servers, "redis_url": redis_url}))
    return path


def clear_endpoints(stack_dir: Path) -> None:
    """Forget a stopped stack's endpoints (no error when there is no file)."""
    (Path(stack_dir) / ENDPOINTS_FILE).unlink(missing_ok=True)


class _StackEndpoints(PydanticBaseSettingsSource):
    """Kafka and Redis of the embedded stack: its endpoints file, else ``RESTOCK_*_PORT``."""

    def __init__(self, settings_cls: type[BaseSettings], stack_dir: Any) -> None:
        super().__init__(settings_cls)
        self.stack_dir = Path(stack_dir or os.environ.get("RESTOCK_STACK_DIR") or DEFAULT_STACK_DIR)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # not used: __call__ returns the whole mapping

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("kafka_port", "redis_port"):
            raw = os.environ.get(f"RESTOCK_{name.upper()}")
            if raw and raw.strip().isdigit():
                key = "kafka_bootstrap_servers" if name == "kafka_port" else "redis_url"
                out[key] = f"127.0.0.1:{raw.strip()}" if name == "kafka_port" else f"redis://127.0.0.1:{raw.strip()}/0"
        path = self.stack_dir / ENDPOINTS_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return out
        if isinstance(data, dict):
            out.update({k: str(v) for k, v in data.items() if k in ("kafka_bootstrap_servers", "redis_url")})
        return out


class Settings(BaseSettings):
    """Runtime configuration of a restock worker, the demo and the backtest.

    Units are in the names: ``*_s`` seconds, ``*_days`` days, ``*_periods`` demand periods
    (one period is an hour, a day or a week, see ``freq``).

    Raises
    ------
    pydantic.ValidationError
        When a value is out of range (e.g. a service level outside (0, 1)).
    """

    model_config = SettingsConfigDict(
        env_prefix="RESTOCK_", frozen=True, extra="ignore", populate_by_name=True,
        env_parse_none_str="none",
    )

    # --- services -------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices("RESTOCK_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS",
                                      "kafka_bootstrap_servers"),
    )
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:16379/0"),
        validation_alias=AliasChoices("RESTOCK_REDIS_URL", "REDIS_URL", "redis_url"),
    )
    redis_cluster: bool = Field(
        default=False,
        description="treat a redis:// or rediss:// URL as a startup node of a Redis Cluster "
                    "(redis-py's RedisCluster); a redis+cluster:// URL always is one")
    external_services: bool = Field(
        default=False,
        description="True when KAFKA_BOOTSTRAP_SERVERS / REDIS_URL point at services we do not start.",
    )
    # Managed Kafka (Confluent Cloud, MSK, Aiven ...) and Redis: every client restock creates
    # gets these through one factory (streams.clients). Redis TLS: a rediss:// URL.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka security protocol (SASL_SSL for most managed clusters)")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", description="SASL mechanism with SASL_PLAINTEXT / SASL_SSL")
    kafka_sasl_username: str | None = Field(default=None, description="SASL username (API key)")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (API secret); never printed")
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA bundle (PEM) to verify the brokers; system CAs when unset")
    kafka_ssl_certfile: Path | None = Field(default=None, description="client certificate (PEM), mutual TLS")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="client private key (PEM), mutual TLS")
    kafka_ssl_check_hostname: bool = Field(default=True, description="verify the broker's hostname")
    redis_ssl_ca_file: Path | None = Field(
        default=None,
        description="CA bundle (PEM) to verify Redis with a rediss:// URL; system CAs when unset")
    stack_dir: Path = Path(".restock/stack")
    kafka_port: int = 19092
    redis_port: int = 16379

    # --- Faust application ------------------------------------------------------------------
    app_id: str = "restock"
    topic_partitions: int = Field(default=4, ge=1)
    orders_topic: str = TOPIC_ORDERS
    inventory_topic: str = TOPIC_INVENTORY
    promotions_topic: str = TOPIC_PROMOTIONS
    policies_topic: str = Field(default=TOPIC_POLICIES,
                                description="per-SKU policies (PolicySet), log-compacted, keyed sku@location")
    reorders_topic: str = TOPIC_REORDERS
    dlq_topic: str = TOPIC_DLQ
    web_port: int = 6066
    web_host: str = Field(default="127.0.0.1", description="bind address of /health/*; 0.0.0.0 in containers")
    metrics_port: int = Field(default=9464, ge=0, description="Prometheus /metrics port; 0 disables")
    metrics_host: str = "127.0.0.1"
    log_json: bool = False
    # Fault injection for the reliability tests: exit abruptly (no cleanup, like kill -9) at
    # this point of batch number `fault_after_batches`. Never set in production.
    fault_point: Literal["after_produce", "after_save"] | None = None
    fault_after_batches: int = Field(default=0, ge=0)
    # Reliability tests only: sleep this long after each batch, so that a scenario lasts long
    # enough for a worker to join or leave mid-stream. Never set in production.
    fault_batch_delay_s: float = Field(default=0.0, ge=0)
    lag_refresh_interval_s: float = Field(default=15.0, ge=0, description="consumer-lag gauges; 0 disables")
    progress_check_interval_s: float = Field(
        default=5.0, ge=0,
        description="how often an idle worker checks that Redis still holds its durable progress; 0 disables")
    worker_data_dir: Path = Path(".restock/worker")

    # --- batching / state -------------------------------------------------------------------
    flush_every_events: int = Field(default=500, ge=1)
    flush_interval_s: float = Field(
        default=0.02, gt=0,
        description="longest wait of a batch for more records (s); a full batch goes at once, so it "
                    "bounds latency at low load and costs no throughput (bench/throughput.py: (b)/(a) "
                    "0.173 at 0.2 s and at 0.02 s)")
    commit_interval_s: float = Field(default=0.5, gt=0)
    # Tansu completes a group join only after the rebalance timeout when a member is new, so
    # keep it short; the session timeout bounds how long a dead worker keeps its partitions.
    rebalance_timeout_s: float = Field(default=3.0, gt=0)
    session_timeout_s: float = Field(default=10.0, gt=0)
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    # faust-streaming hard-codes fetch_max_wait_ms=1500; brokers that hold a multi-partition
    # fetch for the full wait (Tansu does) then add up to 1.5 s of latency to every event.
    fetch_max_wait_ms: int = Field(default=50, ge=1)
    hot_sku_cache_size: int = Field(default=200_000, ge=1)
    # The period review of a partition (every SKU, cached or not) runs in review-only batches of
    # at most this many SKUs between the batches of records (the committer's ticks), so orders
    # keep flowing (agents.review.progress); a batch of records waits for at most one of them.
    review_chunk_skus: int = Field(
        default=25, ge=1,
        description="SKUs of a partition's period review passed per review-only batch (bounds an "
                    "order's wait during a close; smaller: shorter waits, a longer close). 25: "
                    "durable p99 during a close of 15k SKUs 153 ms against 317 ms with 100, the "
                    "close 17 s against 10 s (bench/latency.py --live)")
    # Garbage collection of the worker process (streams.gc_tuning; applied by `restock worker`
    # only, never by the simulator, the backtest or tests' in-process pipelines).
    gc_freeze: bool = Field(
        default=True,
        description="after each batch, collect the new objects and freeze the survivors (the cached "
                    "states) out of the collector's scans; a full collection every 15 min")
    gc_gen0_threshold: int | None = Field(
        default=GC_GEN0_THRESHOLD, ge=1,
        description="the worker's generation-0 GC threshold (allocations between young collections); "
                    "None keeps Python's 700")
    # Event-time alignment of the input topics (agents.alignment): a held record waits at most
    # this long for an input partition whose state the broker has not reported yet (the only
    # processing-time rule; a partition known to hold unread records is always waited for).
    alignment_idle_s: float = Field(
        default=10.0, ge=0,
        description="seconds a record waits for an input partition of unknown state")
    alignment_max_buffered: int = Field(
        default=100_000, ge=1,
        description="records the aligner holds at most before it releases by arrival")
    redis_key_prefix: str = "restock"
    cold_sku_ttl_s: int = Field(default=180 * 86400, ge=0, description="0 disables expiry")

    # --- demand -----------------------------------------------------------------------------
    freq: Freq = "D"
    allowed_lateness_s: float = Field(default=3600.0, ge=0)
    forecast_horizon_periods: int | None = Field(
        default=None, ge=1,
        description="forecast horizon (periods); default (none): 28, or the default policy's lead "
                    "time + review period in periods when that is longer (hourly data); read "
                    "through horizon_periods")
    min_history_days: float = Field(
        default=28.0, ge=0,
        description="days of history a SKU must have before restock decides about it (converted to "
                    "periods: 28 daily, 4 weekly)")
    min_history_periods: int | None = Field(
        default=None, ge=0,
        description="the same in periods; overrides min_history_days when set")
    covariates_enabled: bool = Field(
        default=True, description="learn/forecast with order prices and promotion plans (issue #8)")
    covariate_extras: str = Field(
        default="", description="comma-separated extra numeric covariates read from "
                                "PromotionPlanned.covariates, e.g. 'x_promo_share'")

    # --- replenishment policy defaults (overridable per SKU) ---------------------------------
    lead_time_days: float = Field(default=7.0, gt=0)
    lead_time_std_days: float = Field(default=0.0, ge=0)
    review_period_days: float = Field(default=1.0, gt=0)
    lead_time_learning: bool = Field(
        default=True,
        description="learn each SKU's lead time (mean and sd) from its purchase orders and receipts, "
                    "with lead_time_days as the prior, pooled per supplier within a partition "
                    "(agents.supply); off: the configured lead time")
    lead_time_prior_receipts: float = Field(
        default=4.0, gt=0,
        description="how many receipts the configured lead time (and a supplier's pooled one) counts as")
    cycle_service_level: float = Field(
        default=0.95, gt=0, lt=1,
        description="cycle service level target (share of replenishment cycles without a stockout); "
                    "restock's target when fill_rate is none (RESTOCK_FILL_RATE=none), and the "
                    "static baseline's target in demo and simulate")
    fill_rate: float | None = Field(
        default=0.95, gt=0, lt=1,
        description="fill-rate target (units served / units demanded), the default target; "
                    "RESTOCK_FILL_RATE=none targets cycle_service_level instead")
    unit_cost: float = Field(default=1.0, ge=0)
    holding_cost_rate: float = Field(default=0.25, ge=0)
    ordering_cost: float | None = None
    pack_size: int = Field(default=1, ge=1)
    moq: int = Field(default=0, ge=0)
    overstock_cover_days: float = Field(default=90.0, gt=0)
    suggestion_expiry_days: float = Field(default=14.0, gt=0)
    reemit_change_fraction: float = Field(default=0.25, ge=0)
    unmet_demand: Literal["lost_sales", "backorder"] = "lost_sales"
    stockout_demand: Literal["published", "hidden"] = Field(
        default="published",
        description="what the storefront does while a SKU is out of stock: 'published' still "
                    "publishes its orders (lost sales are seen); 'hidden' takes none, so a period "
                    "with a stock-out is learned as censored (sales + stock-out fraction x expected "
                    "demand) and the fill-rate controller counts the imputed unseen units as lost")
    demand_source: Literal["window", "forecaster"] = Field(
        default="window",
        description="demand the reorder levels read: the recent rate and long-run dispersion "
                    "(window) or the forecaster's moments scaled by the actual/forecast ratio")
    rate_window_days: float = Field(
        default=56.0, gt=0,
        description="long window of the demand rate, days (equal to the short one by default: one "
                    "56-day mean; docs/decisions.md)")
    rate_short_window_days: float = Field(
        default=56.0, gt=0, description="short window of the demand rate, days (the rate is the lower mean)")
    dispersion_span_days: float = Field(
        default=730.0, gt=0, description="memory (EWMA span) of the long-run demand dispersion, days")
    promotion_lift: bool = Field(
        default=False,
        description="window demand: regular-price rate, planned periods lifted by the forecaster's "
                    "learned promotion/price effect")
    lost_unit_cost: float | None = Field(
        default=None, gt=0,
        description="currency per lost unit: each SKU's service level becomes p / (p + holding cost "
                    "of its unit value per review period), replacing the service target")
    fill_control: Literal["partition", "formula"] = Field(
        default="partition",
        description="how a fill-rate target is met: 'partition' learns one cost per lost unit per "
                    "input partition from the fill rate achieved (agents.policy.controller); "
                    "'formula' solves it per SKU with the normal loss function")
    fill_control_base_cost: float = Field(
        default=0.1, gt=0, description="starting cost per lost unit of the partition controller, currency")
    lumpiness_discount: float = Field(
        default=1.0, ge=0,
        description="k: with a lost-unit cost (set or learned), each SKU's holding cost in its critical "
                    "fractile is multiplied by 1 + k CV^2 of its per-period demand (lumpy SKUs get "
                    "lower levels); 0 = the plain fractile")
    repeat_buyers: bool = Field(
        default=True,
        description="model each SKU's repeat bulk buyers (a customer with a line above "
                    "repeat_buyer_bulk_days of the SKU's total demand rate) apart from its regular demand: "
                    "their lines leave the rate window and the levels add their compound Poisson "
                    "demand (agents.repeat_buyers; issue #17)")
    repeat_buyer_bulk_days: float = Field(
        default=4.0, gt=0, description="a line above this many days of the SKU's total demand rate "
                                       "(buyers included) marks its customer as a repeat buyer, days")
    repeat_buyer_prior_orders: float = Field(
        default=1.0, gt=0, description="gamma prior of a buyer's purchase rate: this many purchases ...")
    repeat_buyer_prior_days: float = Field(
        default=90.0, gt=0, description="... over this many days")
    repeat_buyers_max: int = Field(default=8, ge=1, description="repeat buyers kept per SKU@location")
    policy_overrides_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, environment, then the embedded stack's endpoints (see the module docstring)."""
        stack_dir = init_settings().get("stack_dir")  # type: ignore[operator]
        return (init_settings, env_settings, dotenv_settings, _StackEndpoints(settings_cls, stack_dir),
                file_secret_settings)

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"kafka_security_protocol={self.kafka_security_protocol} needs "
                             "kafka_sasl_username and kafka_sasl_password")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("kafka_ssl_certfile and kafka_ssl_keyfile go together (mutual TLS)")
        return self

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _strip_scheme(cls, v: str) -> str:
        return v.removeprefix("kafka://").strip()

    @property
    def redis_dsn(self) -> str:
        """The Redis URL in clear text (for clients only; never log it)."""
        return self.redis_url.get_secret_value()

    @property
    def period_days(self) -> float:
        """Length of one demand period in days (H: 1/24, D: 1, W: 7)."""
        return {"H": 1 / 24, "D": 1.0, "W": 7.0}[self.freq]

    @property
    def service_target(self) -> tuple[str, float]:
        """The service target in force: ``("fill_rate", v)`` or ``("cycle_service_level", v)``."""
        if self.fill_rate is not None:
            return "fill_rate", self.fill_rate
        return "cycle_service_level", self.cycle_service_level

    @property
    def horizon_periods(self) -> int:
        """The forecast horizon in periods: ``forecast_horizon_periods``, else the default.

        The default is 28 periods, or ``ceil(L + R)`` (lead time plus review period, in periods)
        when that is longer, so that the default policy's levels are covered
        (:meth:`agents.processor.ProcessorConfig.check_horizon_covers`): 192 on hourly data with
        the 7-day lead time and 1-day review period.
        """
        if self.forecast_horizon_periods is not None:
            return self.forecast_horizon_periods
        needed = self.days_to_periods(self.lead_time_days) + self.days_to_periods(self.review_period_days)
        return max(DEFAULT_HORIZON_PERIODS, math.ceil(needed - 1e-9))

    @property
    def min_history(self) -> int:
        """Periods of history required before deciding (``min_history_periods`` or the days)."""
        if self.min_history_periods is not None:
            return self.min_history_periods
        return math.ceil(self.days_to_periods(self.min_history_days) - 1e-9)

    def days_to_periods(self, days: float) -> float:
        """Convert a duration in days into demand periods of ``freq``."""
        return days / self.period_days


def load_settings(**overrides: object) -> Settings:
    """Build :class:`Settings` from the environment plus explicit overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
