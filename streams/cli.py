"""The ``restock`` command line: stack, worker, backtest, demo, schemas.

Every command reads :class:`streams.settings.Settings` (``RESTOCK_*`` environment variables,
plus ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL``) and lets options override it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

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


@main.command()
@click.option("--loglevel", default="info", type=click.Choice(["crit", "error", "warn", "info", "debug"]))
def worker(loglevel: str) -> None:
    """Run one restock worker (Faust) against the configured Kafka and Redis."""
    import faust  # noqa: F401  (imported here: slow import, only for this command)

    from agents.worker import create_app
    from streams.kafka_admin import check_copartitioned, ensure_topics
    from streams.topics import all_topics, input_roles

    settings = Settings()
    # Create what is missing; existing topics keep their partition count, but the input topics
    # must agree with each other (co-partitioning) or the worker refuses to run.
    security = KafkaSecurity.from_settings(settings)
    ensure_topics(settings.kafka_bootstrap_servers, all_topics(settings), strict=False, security=security)
    partitions = check_copartitioned(settings.kafka_bootstrap_servers, list(input_roles(settings)),
                                     security=security)
    app = create_app(settings, input_partitions=partitions)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    from faust.worker import Worker

    if settings.log_json:
        import os

        # mode's own handler goes to /dev/null; the app's JSON handler (see create_app) writes
        # one object per line to stderr.
        Worker(app, loglevel=loglevel, quiet=True, logfile=os.devnull).execute_from_commandline()
    else:
        Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


@main.command()
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=DEFAULT_DATA, show_default="shipped Online Retail file")
@click.option("--format", "fmt", type=click.Choice(["online-retail", "generic", "auto"]), default="auto")
@click.option("--freq", type=click.Choice(["H", "D", "W"]), default="D")
@click.option("--horizon", type=int, default=7, show_default=True, help="Forecast horizon H (periods).")
@click.option("--skus", type=int, default=None, help="Only the N SKUs with the largest volume.")
@click.option("--baselines", default="naive,seasonal_naive,croston_sba,tsb,adida,auto_ets",
              show_default=True, help="Comma-separated baselines ('' for none).")
@click.option("--refit-every", type=int, default=28, show_default=True,
              help="Baselines are refit every this many periods.")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
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

    opts = BacktestOptions(
        data=data_path, fmt=fmt, freq=freq, horizon=horizon, skus=skus,  # type: ignore[arg-type]
        baselines=tuple(b for b in baselines.split(",") if b), refit_every=refit_every,
        predictions=predictions, json_path=json_path, plot_path=plot_path, progress=not no_progress,
        covariates=None if covariates == "auto" else covariates == "on", plan_lead=plan_lead,
        season_length=season_length,
    )
    report = run_backtest(opts)
    print_report(report)


@main.command()
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=DEFAULT_DATA, show_default="shipped Online Retail file")
@click.option("--format", "fmt", type=click.Choice(["online-retail", "generic", "auto"]), default="auto")
@click.option("--freq", type=click.Choice(["H", "D", "W"]), default="D")
@click.option("--skus", type=int, default=300, show_default=True,
              help="The N SKUs with the largest volume in the warm-up period (0: all).")
@click.option("--start", default=None, help="First date replayed (YYYY-MM-DD).")
@click.option("--end", default=None, help="Last date replayed (YYYY-MM-DD).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("out/demo_kpis.json"), show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("out/demo_skus.png"), show_default=True)
@click.option("--backorders", is_flag=True, help="Unserved orders become backorders (default: lost sales).")
@click.option("--no-progress", is_flag=True, help="Disable the progress bar.")
def demo(data_path: Path, fmt: str, freq: str, skus: int, start: str | None, end: str | None,
         json_path: Path, plot_path: Path, backorders: bool, no_progress: bool) -> None:
    """The main job: replay real orders through Kafka, the worker and Redis, closed loop."""
    from streams.demo import DemoOptions, print_kpis, run_demo

    opts = DemoOptions(data=data_path, fmt=fmt, freq=freq, skus=skus or None,  # type: ignore[arg-type]
                       start=start, end=end, json_path=json_path, plot_path=plot_path,
                       unmet_demand="backorder" if backorders else "lost_sales",
                       progress=not no_progress)
    kpis = run_demo(opts)
    print_kpis(kpis)


@main.command()
@click.option("--group", default=None, help="Consumer group (default: the worker's app_id).")
@click.option("--topic", "topics", multiple=True, help="Topics to report (default: the input topics).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--max-lag", type=int, default=None, help="Exit 1 when total lag (messages) is above.")
@click.option("--max-seconds", type=float, default=None, help="Exit 1 when any lag (seconds) is above.")
def lag(group: str | None, topics: tuple[str, ...], as_json: bool, max_lag: int | None,
        max_seconds: float | None) -> None:
    """Consumer lag in messages and seconds. Exit 0 within thresholds, 1 over, 2 on errors."""
    import json

    from streams.lag import consumer_lag, within
    from streams.topics import input_roles

    settings = Settings()
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

        table = Table(title=f"consumer lag of group {result.group}")
        for col in ("topic", "partition", "committed", "log end", "lag (messages)", "lag (s)"):
            table.add_column(col, justify="left" if col == "topic" else "right")
        for p in result.partitions:
            table.add_row(p.topic, str(p.partition), str(p.committed_offset), str(p.log_end_offset),
                          str(p.lag_messages), f"{p.lag_seconds:.1f}")
        table.add_row("total", "", "", "", str(result.total_messages), f"{result.max_seconds:.1f}")
        Console().print(table)
    sys.exit(0 if within(result, max_lag, max_seconds) else 1)


@main.group()
def dlq() -> None:
    """List and replay dead letters (``restock.dlq``)."""


@dlq.command("list")
@click.option("--stage", default=None, help="Only this stage (decode, validate, process, late).")
@click.option("--json", "as_json", is_flag=True, help="One JSON envelope per line.")
def dlq_list(stage: str | None, as_json: bool) -> None:
    """Print the dead letters: source position, stage and error."""
    from schemas.events import encode_event
    from streams.dlq import read_dead_letters

    settings = Settings()
    n = 0
    for dl in read_dead_letters(settings.kafka_bootstrap_servers, settings.dlq_topic,
                                security=KafkaSecurity.from_settings(settings)):
        if stage and dl.stage != stage:
            continue
        n += 1
        if as_json:
            click.echo(encode_event(dl).decode())
        else:
            click.echo(f"{dl.source_topic}[{dl.partition}] offset={dl.offset} stage={dl.stage} "
                       f"{dl.error_type}: {dl.error_message[:200]}")
    if not as_json:
        click.echo(f"{n} dead letter(s)")


@dlq.command("replay")
@click.option("--stage", default=None, help="Only this stage.")
@click.option("--source-topic", default=None, help="Only letters from this topic.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dlq_replay(stage: str | None, source_topic: str | None, yes: bool) -> None:
    """Send dead letters' original bytes back to their source topics."""
    from streams.dlq import read_dead_letters, replay

    settings = Settings()
    security = KafkaSecurity.from_settings(settings)
    letters = [dl for dl in read_dead_letters(settings.kafka_bootstrap_servers, settings.dlq_topic,
                                              security=security)
               if (stage is None or dl.stage == stage)
               and (source_topic is None or dl.source_topic == source_topic)]
    if not letters:
        click.echo("nothing to replay")
        return
    if not yes:
        click.confirm(f"replay {len(letters)} dead letter(s) to their source topics?", abort=True)
    click.echo(f"replayed {replay(settings.kafka_bootstrap_servers, letters, security=security)} message(s)")


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
