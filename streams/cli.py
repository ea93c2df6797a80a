"""The ``restock`` command line: stack, worker, backtest, demo, policies, schemas.

Every command reads :class:`streams.settings.Settings` (``RESTOCK_*`` environment variables,
plus ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL``) and lets options override it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from streams.cli_policies import policies
from streams.cli_stack import stack
from streams.clients import KafkaSecurity
from streams.settings import Settings

DEFAULT_DATA = Path(__file__).resolve().parent.parent / "data" / "online_retail" / \
    "online_retail_2010-12-01_2011-12-09.csv.gz"


@click.group()
@click.version_option(package_name="restock")
def main() -> None:
    """restock: streaming demand forecasting and replenishment on Kafka, Faust, River and Redis."""


main.add_command(stack)
main.add_command(policies)

F = TypeVar("F", bound=Callable[..., Any])


def _kafka_option(func: F) -> F:
    return click.option(
        "--bootstrap-servers", default=None, metavar="HOST:PORT[,...]",
        help="Kafka bootstrap servers. Default: RESTOCK_KAFKA_BOOTSTRAP_SERVERS / KAFKA_BOOTSTRAP_SERVERS, "
             "else the stack started by `restock stack up` (its endpoints file), else RESTOCK_KAFKA_PORT, "
             "else 127.0.0.1:19092.")(func)


def _redis_option(func: F) -> F:
    return click.option(
        "--redis-url", default=None, metavar="URL",
        help="Redis URL (rediss:// for TLS). Default: RESTOCK_REDIS_URL / REDIS_URL, else the stack "
             "started by `restock stack up`, else RESTOCK_REDIS_PORT, else redis://127.0.0.1:16379/0.")(func)


def _data_or_fail(path: Path | None) -> Path:
    """``--data``, or the shipped Online Retail file when it exists (a source checkout)."""
    if path is not None:
        return path
    if DEFAULT_DATA.is_file():
        return DEFAULT_DATA
    raise click.UsageError(
        f"no --data given and the Online Retail file is not here ({DEFAULT_DATA}: it ships with a "
        "source checkout, not with the wheel or the image). Pass --data PATH: a generic CSV with "
        "columns timestamp, sku, quantity (location, unit_price, promo, order_id, x_* optional).")


def _settings(bootstrap_servers: str | None = None, redis_url: str | None = None) -> Settings:
    """Settings with the command-line overrides on top (see :mod:`streams.settings` for the order)."""
    overrides: dict[str, Any] = {}
    if bootstrap_servers:
        overrides["kafka_bootstrap_servers"] = bootstrap_servers
    if redis_url:
        overrides["redis_url"] = redis_url
    return Settings(**overrides)


@main.command()
@click.option("--loglevel", default="info", show_default=True,
              type=click.Choice(["crit", "error", "warn", "info", "debug"]),
              help="Log level of restock and Faust (kafka/aiokafka client chatter stays at warn).")
@_kafka_option
@_redis_option
def worker(loglevel: str, bootstrap_servers: str | None, redis_url: str | None) -> None:
    """Run one restock worker (Faust) against the configured Kafka and Redis.

    Every other setting comes from RESTOCK_* environment variables (streams/settings.py).
    """
    import faust  # noqa: F401  (imported here: slow import, only for this command)

    from streams.app import create_app
    from streams.kafka_admin import check_copartitioned, ensure_topics, partition_counts
    from streams.topics import all_topics, input_roles, topic_configs

    settings = _settings(bootstrap_servers, redis_url)
    # Create what is missing (with the partition count the existing input topics agree on, so
    # that a topic added by an upgrade joins them); existing topics keep their partition count,
    # but the input topics must agree with each other (co-partitioning) or the worker refuses
    # to run.
    from streams.kafka_admin import KafkaAdminError

    security = KafkaSecurity.from_settings(settings)
    try:
        existing = set(partition_counts(settings.kafka_bootstrap_servers, list(input_roles(settings)),
                                        missing_ok=True, security=security).values())
        ensure_topics(settings.kafka_bootstrap_servers,
                      all_topics(settings, existing.pop() if len(existing) == 1 else None), strict=False,
                      security=security, configs=topic_configs(settings))
        partitions = check_copartitioned(settings.kafka_bootstrap_servers, list(input_roles(settings)),
                                         security=security)
    except (KafkaAdminError, ValueError) as exc:
        raise click.ClickException(
            f"{exc} (Kafka at {settings.kafka_bootstrap_servers}: set it with --bootstrap-servers, "
            "RESTOCK_KAFKA_BOOTSTRAP_SERVERS or `restock stack up`)") from exc
    app = create_app(settings, input_partitions=partitions)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    from faust.worker import Worker

    from streams.logs import quiet_client_loggers

    quiet_client_loggers(loglevel)
    if settings.log_json:
        import os

        # mode's own handler goes to /dev/null; the app's JSON handler (see create_app) writes
        # one object per line to stderr.
        Worker(app, loglevel=loglevel, quiet=True, logfile=os.devnull).execute_from_commandline()
    else:
        Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


@main.command()
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, show_default="the Online Retail file of a source checkout",
              help="Sales CSV (.csv or .csv.gz): Online Retail, or the generic columns timestamp, sku, "
                   "quantity[, location, unit_price, promo, order_id, x_*] (see the README).")
@click.option("--format", "fmt", type=click.Choice(["online-retail", "generic", "auto"]), default="auto",
              show_default=True, help="CSV layout (auto: from the header).")
@click.option("--freq", type=click.Choice(["H", "D", "W"]), default="D", show_default=True,
              help="Demand period: hour, day or week.")
@click.option("--horizon", type=int, default=7, show_default=True, help="Forecast horizon H (periods).")
@click.option("--skus", type=int, default=None, help="Only the N SKUs with the largest volume.")
@click.option("--baselines", default="naive,seasonal_naive,croston_sba,tsb,adida,auto_ets",
              show_default=True, help="Comma-separated baselines ('' for none).")
@click.option("--refit-every", type=int, default=28, show_default=True,
              help="Baselines are refit every this many periods.")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every forecast (series, origin, horizon, mean, quantiles) to this CSV.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report as JSON (strict: missing values are null).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Plot a few series with their forecasts to this PNG.")
@click.option("--no-progress", is_flag=True, help="Disable the progress bar.")
@click.option("--covariates", type=click.Choice(["auto", "on", "off"]), default="auto",
              show_default=True,
              help="Prices/promotions as plans known --plan-lead periods ahead (auto: generic CSV).")
@click.option("--plan-lead", type=int, default=None, help="Periods a plan is known ahead (default H).")
@click.option("--season-length", type=int, default=None, help="Season length (default 7 D, 52 W).")
def backtest(data_path: Path, fmt: str, freq: str, horizon: int, skus: int | None, baselines: str,
             refit_every: int, predictions: Path | None, json_path: Path | None,
             plot_path: Path | None, no_progress: bool, covariates: str, plan_lead: int | None,
             season_length: int | None) -> None:
    """Replay history through the agents' code (no Kafka) and score forecasts vs baselines."""
    from streams.backtest import BacktestOptions, print_report, run_backtest

    data_path = _data_or_fail(data_path)
    opts = BacktestOptions(
        data=data_path, fmt=fmt, freq=freq, horizon=horizon, skus=skus,  # type: ignore[arg-type]
        baselines=tuple(b for b in baselines.split(",") if b), refit_every=refit_every,
        predictions=predictions, json_path=json_path, plot_path=plot_path, progress=not no_progress,
        covariates=None if covariates == "auto" else covariates == "on", plan_lead=plan_lead,
        season_length=season_length,
    )
    report = run_backtest(opts)
    print_report(report)



def _loop_options(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of the closed loop, shared by ``demo`` and ``simulate`` (outputs named ``name``)."""
    options = [
        click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     default=None, show_default="the Online Retail file of a source checkout",
                     help="Sales CSV replayed as orders (Online Retail or generic columns)."),
        click.option("--format", "fmt", type=click.Choice(["online-retail", "generic", "auto"]),
                     default="auto", show_default=True, help="CSV layout (auto: from the header)."),
        click.option("--freq", type=click.Choice(["H", "D", "W"]), default="D", show_default=True,
                     help="Demand period: hour, day or week."),
        click.option("--skus", type=int, default=300, show_default=True,
                     help="The N SKUs with the largest volume in the warm-up period (0: all)."),
        click.option("--start", default=None, help="First date replayed (YYYY-MM-DD)."),
        click.option("--end", default=None, help="Last date replayed (YYYY-MM-DD)."),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                     default=Path(f"out/{name}_kpis.json"), show_default=True,
                     help="Write the KPIs as JSON here."),
        click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
                     default=Path(f"out/{name}_skus.png"), show_default=True,
                     help="Plot a few SKUs here (PNG)."),
        click.option("--backorders", is_flag=True,
                     help="Unserved orders become backorders (default: lost sales)."),
        click.option("--hidden-stockouts", is_flag=True,
                     help="The storefront takes no order beyond the stock on hand: lost demand is not "
                          "published (restock sees only sales) but counts in the KPIs; "
                          "RESTOCK_STOCKOUT_DEMAND=hidden makes restock learn it as censored."),
        click.option("--no-progress", is_flag=True, help="Disable the progress bar."),
        click.option("--lead-time-sd-days", type=float, default=0.0, show_default=True,
                     help="The warehouse's lead times are random: gamma around the lead time with this "
                          "sd (days), rounded to whole periods, at least one (0: deterministic)."),
        click.option("--late-probability", type=float, default=0.0, show_default=True,
                     help="Share of deliveries that are late by --late-days more."),
        click.option("--late-days", type=float, default=7.0, show_default=True,
                     help="Extra days of a late delivery."),
        click.option("--supply-seed", type=int, default=0, show_default=True,
                     help="Seed of the random lead times (the same seed, the same warehouse)."),
    ]

    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(options):
            fn = opt(fn)
        return fn

    return apply


def _loop_opts(data_path: Path | None, fmt: str, freq: str, skus: int, start: str | None, end: str | None,
               json_path: Path, plot_path: Path, backorders: bool, no_progress: bool,
               supply: dict[str, Any] | None = None, hidden_stockouts: bool = False) -> Any:
    from streams.closed_loop import DemoOptions

    if hidden_stockouts and backorders:
        raise click.UsageError("--hidden-stockouts and --backorders contradict each other: a storefront "
                               "that takes no order while out of stock takes no backorder")
    return DemoOptions(data=_data_or_fail(data_path), fmt=fmt, freq=freq,  # type: ignore[arg-type]
                       skus=skus or None, start=start, end=end, json_path=json_path, plot_path=plot_path,
                       unmet_demand="backorder" if backorders else "lost_sales", progress=not no_progress,
                       hidden_stockouts=hidden_stockouts, **(supply or {}))


@main.command()
@_loop_options("demo")
def demo(data_path: Path, fmt: str, freq: str, skus: int, start: str | None, end: str | None,
         json_path: Path, plot_path: Path, backorders: bool, hidden_stockouts: bool,
         no_progress: bool, **supply: Any) -> None:
    """The main job: replay real orders through Kafka, the worker and Redis, closed loop."""
    from streams.demo import print_kpis, run_demo

    print_kpis(run_demo(_loop_opts(data_path, fmt, freq, skus, start, end, json_path, plot_path,
                                   backorders, no_progress, supply, hidden_stockouts)))


@main.command()
@_loop_options("simulate")
@click.option("--targets", default=None,
              help="Sweep restock over these comma-separated targets (or 'default') and write its "
                   "frontier against the baseline reorder rules into --frontier-dir.")
@click.option("--target-kind", type=click.Choice(["lost_unit_cost", "fill_rate", "cycle_service_level"]),
              default="lost_unit_cost", show_default=True,
              help="What --targets are: currency per lost unit (each SKU's critical fractile) or a "
                   "service target.")
@click.option("--frontier-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("out/frontier"), show_default=True,
              help="Where frontier.json, frontier.md and frontier.png go.")
@click.option("--label", default="", help="Title of the frontier (the data set).")
@click.option("--ablation", is_flag=True,
              help="Also run restock's previous policy (forecaster moments) on the frontier.")
@click.option("--workers", type=int, default=2, show_default=True, help="Simulations run at once.")
def simulate(data_path: Path, fmt: str, freq: str, skus: int, start: str | None, end: str | None,
             json_path: Path, plot_path: Path, backorders: bool, hidden_stockouts: bool, no_progress: bool,
             targets: str | None, target_kind: str, frontier_dir: Path, label: str, ablation: bool,
             workers: int, **supply: Any) -> None:
    """The main job's closed loop in one process (same pipeline, in-memory state): same KPIs as demo.

    With --targets: restock's service/stock frontier against the ERP reorder rules (static,
    rolling windows, batch forecast), on the same demand (see README, "Decisions").
    """
    from streams.demo import print_kpis
    from streams.simulate import DEFAULT_TARGETS, run_frontier, run_simulation

    opts = _loop_opts(data_path, fmt, freq, skus, start, end, json_path, plot_path, backorders, no_progress,
                      supply, hidden_stockouts)
    if targets is None:
        print_kpis(run_simulation(opts))
        return
    values = (DEFAULT_TARGETS[target_kind] if targets == "default"
              else tuple(float(x) for x in targets.split(",") if x.strip()))
    from streams.frontier import format_summary

    result = run_frontier(opts, target_kind, values, frontier_dir, label=label, workers=workers,
                          ablation=ablation)
    click.echo(format_summary(result["summary"]))
    click.echo(f"wrote {frontier_dir}/frontier.json, frontier.md, frontier.png ({result['timing_s']})")


@main.command()
@click.option("--group", default=None, help="Consumer group (default: the worker's app_id, RESTOCK_APP_ID).")
@click.option("--topic", "topics", multiple=True,
              help="Topic to report; repeatable (default: the input topics, RESTOCK_*_TOPIC).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--max-lag", type=int, default=None, help="Exit 1 when total lag (messages) is above.")
@click.option("--max-seconds", type=float, default=None, help="Exit 1 when any lag (seconds) is above.")
@_kafka_option
def lag(group: str | None, topics: tuple[str, ...], as_json: bool, max_lag: int | None,
        max_seconds: float | None, bootstrap_servers: str | None) -> None:
    """Consumer lag in messages and seconds. Exit 0 within thresholds, 1 over, 2 on errors."""
    import json

    from streams.lag import consumer_lag, within
    from streams.topics import input_roles

    settings = _settings(bootstrap_servers)
    try:
        result = consumer_lag(settings.kafka_bootstrap_servers, group or settings.app_id,
                              list(topics) or list(input_roles(settings)),
                              security=KafkaSecurity.from_settings(settings))
    except Exception as exc:  # noqa: BLE001 - any client failure is an operational error
        click.echo(f"error: cannot read consumer lag from {settings.kafka_bootstrap_servers}: "
                   f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"consumer lag of group {result.group} at {settings.kafka_bootstrap_servers}")
        for col in ("topic", "partition", "committed", "log end", "lag (messages)", "lag (s)"):
            table.add_column(col, justify="left" if col == "topic" else "right", no_wrap=True)
        for p in result.partitions:
            committed = "-" if p.committed_offset is None else str(p.committed_offset)
            table.add_row(p.topic, str(p.partition), committed, str(p.log_end_offset), str(p.lag_messages),
                          f"{p.lag_seconds:.1f}")
        table.add_row("total", "", "", "", str(result.total_messages), f"{result.max_seconds:.1f}")
        Console(width=max(100, Console().width)).print(table)
        if any(p.committed_offset is None for p in result.partitions):
            click.echo("committed '-': the group has not committed there; the whole log counts as lag.")
    sys.exit(0 if within(result, max_lag, max_seconds) else 1)


@main.group()
def dlq() -> None:
    """List and replay dead letters (RESTOCK_DLQ_TOPIC, default restock.dlq)."""


STAGE_HELP = ("missing_key/wrong_partition: no key or not on its key's partition; validate: not UTF-8, "
              "not JSON or not a valid event; decode: topic without a decoder; process: applying it "
              "raised; late: too late for its period; fence: refused by the offset fence.")


def _selection_options(func: F) -> F:
    from schemas.common import DEAD_LETTER_STAGES

    for decorator in reversed([
        click.option("--id", "ids", multiple=True, help="Only this dead_letter_id; repeatable."),
        click.option("--stage", type=click.Choice(DEAD_LETTER_STAGES), default=None,
                     help="Only this stage. " + STAGE_HELP),
        click.option("--source-topic", default=None, help="Only letters from this topic."),
        click.option("--partition", type=int, default=None, help="Only letters from this source partition."),
        click.option("--from-offset", type=int, default=None, help="Only source offsets >= this."),
        click.option("--to-offset", type=int, default=None, help="Only source offsets <= this."),
        click.option("--since", type=click.DateTime(), default=None,
                     help="Only letters that failed at or after this UTC time (YYYY-MM-DDTHH:MM:SS)."),
        click.option("--until", type=click.DateTime(), default=None,
                     help="Only letters that failed at or before this UTC time."),
        _kafka_option,
    ]):
        func = decorator(func)
    return func


def _selection(ids: tuple[str, ...], stage: str | None, source_topic: str | None, partition: int | None,
               from_offset: int | None, to_offset: int | None, since: datetime | None,
               until: datetime | None) -> Any:
    from datetime import UTC

    from streams.dlq import Selection

    def utc(t: datetime | None) -> datetime | None:
        return None if t is None else t.replace(tzinfo=UTC)

    return Selection(ids=set(ids) or None, stage=stage, source_topic=source_topic, partition=partition,
                     from_offset=from_offset, to_offset=to_offset, since=utc(since), until=utc(until))


@dlq.command("list")
@_selection_options
@click.option("--json", "as_json", is_flag=True, help="One JSON envelope per line.")
def dlq_list(as_json: bool, bootstrap_servers: str | None, **criteria: Any) -> None:
    """Print the dead letters: id, source position, stage, error, and whether it was replayed."""
    from schemas.codec import encode_event
    from streams.dlq import read_dead_letters, read_replayed

    settings = _settings(bootstrap_servers)
    security = KafkaSecurity.from_settings(settings)
    selection = _selection(**criteria)
    replayed = read_replayed(settings.kafka_bootstrap_servers, settings.dlq_topic, security=security)
    n = 0
    for dl in read_dead_letters(settings.kafka_bootstrap_servers, settings.dlq_topic, security=security):
        if not selection.matches(dl):
            continue
        n += 1
        if as_json:
            click.echo(encode_event(dl).decode())
        else:
            rec = replayed.get(dl.dead_letter_id)
            mark = f" replayed={rec['replayed_at']}" if rec else ""
            click.echo(f"{dl.dead_letter_id} {dl.source_topic}[{dl.partition}] offset={dl.offset} "
                       f"stage={dl.stage} failed_at={dl.failed_at.isoformat()}{mark} "
                       f"{dl.error_type}: {dl.error_message[:200]}")
    if not as_json:
        click.echo(f"{n} dead letter(s)")


@dlq.command("replay")
@_selection_options
@click.option("--include-replayed", is_flag=True,
              help="Also resend letters already replayed (recorded on <dlq topic>.replayed).")
@click.option("--all", "replay_all", is_flag=True, help="Allow replaying without any selection criterion.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dlq_replay(bootstrap_servers: str | None, include_replayed: bool, replay_all: bool, yes: bool,
               **criteria: Any) -> None:
    """Send selected dead letters' original bytes back to their source topics.

    Each replayed letter is recorded on <dlq topic>.replayed; later replays skip it unless
    --include-replayed is given. Selecting nothing requires --all.
    """
    from streams.dlq import read_dead_letters, read_replayed, replay

    settings = _settings(bootstrap_servers)
    security = KafkaSecurity.from_settings(settings)
    selection = _selection(**criteria)
    if selection.empty and not replay_all:
        raise click.UsageError("select letters (--id, --stage, --source-topic, --partition, --from-offset, "
                               "--to-offset, --since, --until) or pass --all")
    done = read_replayed(settings.kafka_bootstrap_servers, settings.dlq_topic, security=security)
    chosen = [dl for dl in read_dead_letters(settings.kafka_bootstrap_servers, settings.dlq_topic,
                                             security=security) if selection.matches(dl)]
    letters = [dl for dl in chosen if include_replayed or dl.dead_letter_id not in done]
    skipped = len(chosen) - len(letters)
    note = f" ({skipped} already replayed; --include-replayed to resend)" if skipped else ""
    if not letters:
        click.echo("nothing to replay" + note)
        return
    if not yes:
        click.confirm(f"replay {len(letters)} dead letter(s) to their source topics?{note}", abort=True)
    n = replay(settings.kafka_bootstrap_servers, letters, security=security, dlq_topic=settings.dlq_topic)
    click.echo(f"replayed {n} message(s){note}; recorded on {settings.dlq_topic}.replayed")


@main.group()
def schemas() -> None:
    """JSON Schema and AsyncAPI files generated from the event models."""


@schemas.command("export")
@click.option("--check", is_flag=True, help="Exit 1 when the files on disk are stale.")
def schemas_export(check: bool) -> None:
    """Write (or check) schemas/json/*.schema.json and schemas/asyncapi.yaml."""
    from schemas.export import write_all

    changed = write_all(check=check)
    for name in changed:
        click.echo(("stale: " if check else "wrote: ") + name)
    if check and changed:
        sys.exit(1)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    main()
