"""``restock stack``: start, stop and inspect the embedded Kafka (Tansu) + Redis stack.

The services run detached from the shell; their pid files and logs live in the state directory
(``--state-dir``, default ``.restock/stack``). ``status`` exits 0 when both services answer and
1 otherwise, so it can be used as a readiness check in scripts.

Run standalone with ``python -m streams.cli_stack up``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from streams.settings import clear_endpoints, write_endpoints
from streams.stack import LocalStack, StackError, StackStatus

__all__ = ["stack"]

F = TypeVar("F", bound=Callable[..., Any])


def _stack_options(func: F) -> F:
    """Add ``--state-dir``, ``--kafka-port`` and ``--redis-port`` to a command."""
    func = click.option(
        "--redis-port",
        type=click.IntRange(1, 65535),
        default=16379,
        show_default=True,
        envvar="RESTOCK_REDIS_PORT",
        help="Port of the embedded redis-server on 127.0.0.1 [env: RESTOCK_REDIS_PORT].",
    )(func)
    func = click.option(
        "--kafka-port",
        type=click.IntRange(1, 65535),
        default=19092,
        show_default=True,
        envvar="RESTOCK_KAFKA_PORT",
        help="Port of the embedded Kafka broker on 127.0.0.1 [env: RESTOCK_KAFKA_PORT].",
    )(func)
    func = click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(".restock/stack"),
        show_default=True,
        envvar="RESTOCK_STACK_DIR",
        help="Directory for pid files, logs and Redis data [env: RESTOCK_STACK_DIR].",
    )(func)
    return func


def _render(status: StackStatus) -> None:
    table = Table(title="restock stack", show_lines=False)
    table.add_column("service")
    table.add_column("pid", justify="right")
    table.add_column("address")
    table.add_column("state")
    table.add_column("detail", overflow="fold")
    for svc in status.services:
        if svc.healthy:
            state = "[green]healthy[/green]"
        elif svc.alive:
            state = "[yellow]unhealthy[/yellow]"
        else:
            state = "[red]down[/red]"
        table.add_row(svc.name, str(svc.pid or "-"), svc.address, state, svc.detail)
    Console(soft_wrap=False).print(table)


@click.group(name="stack")
def stack() -> None:
    """Manage the embedded local Kafka (Tansu) + Redis stack (no Docker needed, memory only)."""


@stack.command("up")
@_stack_options
@click.option("--aof/--no-aof", default=False, show_default=True,
              help="Persist Redis with an append-only file (fsync every second).")
@click.option("--timeout", "timeout_s", type=float, default=20.0, show_default=True,
              help="Seconds to wait for both services to answer.")
def up_cmd(state_dir: Path, kafka_port: int, redis_port: int, aof: bool, timeout_s: float) -> None:
    """Start the services that are not running and wait until both answer.

    Memory only: the broker keeps its log in memory (every topic and offset is gone after
    `down` or a crash) and Redis writes nothing to disk unless --aof is given. The endpoints are
    recorded in <state dir>/endpoints.json, which every restock command run from this directory
    reads (unless --bootstrap-servers/--redis-url or the environment say otherwise).
    """
    local = LocalStack(state_dir, kafka_port, redis_port, aof=aof)
    try:
        status = local.up(timeout_s=timeout_s)
    except (StackError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _render(status)
    path = write_endpoints(state_dir, local.kafka_bootstrap, local.redis_url)
    click.echo(f"KAFKA_BOOTSTRAP_SERVERS={local.kafka_bootstrap}")
    click.echo(f"REDIS_URL={local.redis_url}")
    click.echo(f"(recorded in {path}: restock worker/lag/dlq run from this directory use this stack)")


@stack.command("down")
@_stack_options
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
              help="Seconds to wait after SIGTERM before SIGKILL.")
def down_cmd(state_dir: Path, kafka_port: int, redis_port: int, timeout_s: float) -> None:
    """Stop both services (SIGTERM, then SIGKILL) and remove their pid files."""
    local = LocalStack(state_dir, kafka_port, redis_port)
    try:
        local.down(timeout_s=timeout_s)
    except (StackError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    clear_endpoints(state_dir)
    click.echo(f"stack in {state_dir} stopped")


@stack.command("status")
@_stack_options
def status_cmd(state_dir: Path, kafka_port: int, redis_port: int) -> None:
    """Show both services; exit 0 when both are healthy, 1 otherwise."""
    try:
        local = LocalStack(state_dir, kafka_port, redis_port)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    status = local.status()
    _render(status)
    click.get_current_context().exit(0 if status.healthy else 1)


if __name__ == "__main__":
    stack()
