"""``restock stack``: start, stop and inspect the embedded Kafka (Tansu) + Redis stack.

The services run detached from the shell; their pid files and logs live in the state directory
(``--state-dir``, default ``.restock/stack``). ``status`` exits 0 when both services answer and
1 otherwise, so it can be used as a readiness check in scripts.

``up --redis-cluster [N] [--replicas R]`` replaces the single redis-server by a local Redis
Cluster (:mod:`streams.redis_cluster`: N masters, default 3, R replicas each) on the ports
``--redis-port`` .. ``--redis-port + N*(1+R) - 1``, in ``<state dir>/redis-cluster``; its
``redis+cluster://`` URL goes into the endpoints file. ``status`` then lists the nodes, their
roles and slots; ``down`` stops them and removes their files.

Run standalone with ``python -m streams.cli_stack up``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from streams.redis_cluster import CLUSTER_SLOTS, ClusterNodeStatus, LocalRedisCluster
from streams.settings import clear_endpoints, write_endpoints
from streams.stack import KAFKA, REDIS, LocalStack, ServiceStatus, StackError, StackStatus

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


def _cluster_dir(state_dir: Path) -> Path:
    return state_dir / "redis-cluster"


def _existing_cluster(state_dir: Path) -> LocalRedisCluster | None:
    """The cluster recorded in the state directory (``cluster.json``), if any."""
    if not (_cluster_dir(state_dir) / "cluster.json").exists():
        return None
    return LocalRedisCluster(_cluster_dir(state_dir))


def _served(nodes: list[ClusterNodeStatus]) -> int:
    """Slots served by live masters."""
    return sum(n.slots for n in nodes if n.alive and n.role == "master")


def _redis_row(url: str, nodes: list[ClusterNodeStatus]) -> ServiceStatus:
    ok = _served(nodes) == CLUSTER_SLOTS
    return ServiceStatus(REDIS, None, url, any(n.alive for n in nodes), ok,
                         f"redis cluster, {_served(nodes)}/{CLUSTER_SLOTS} slots served (below)")


def _render_cluster(nodes: list[ClusterNodeStatus]) -> bool:
    """Print the nodes (role, slots); True when every slot is served by a live master."""
    table = Table(title="redis cluster", show_lines=False)
    for col in ("port", "pid", "role", "slots", "master"):
        table.add_column(col)
    served = _served(nodes)
    for n in nodes:
        role = n.role if n.alive else "[red]down[/red]"
        table.add_row(str(n.port), str(n.pid or "-"), role, str(n.slots or "-"), str(n.master_port or "-"))
    Console(soft_wrap=False).print(table)
    click.echo(f"{served}/{CLUSTER_SLOTS} slots served by {sum(n.alive for n in nodes)} live nodes")
    return served == CLUSTER_SLOTS


@click.group(name="stack")
def stack() -> None:
    """Manage the embedded local Kafka (Tansu) + Redis stack (no Docker needed, memory only)."""


@stack.command("up")
@_stack_options
@click.option("--aof/--no-aof", default=False, show_default=True,
              help="Persist Redis with an append-only file (fsync every second).")
@click.option("--redis-cluster", "masters", type=click.IntRange(1, 64), is_flag=False, flag_value=3,
              default=None, help="Run Redis as a local Redis Cluster of N masters (default 3).")
@click.option("--replicas", type=click.IntRange(0, 4), default=0, show_default=True,
              help="With --redis-cluster: replicas per master.")
@click.option("--timeout", "timeout_s", type=float, default=20.0, show_default=True,
              help="Seconds to wait for both services to answer.")
def up_cmd(state_dir: Path, kafka_port: int, redis_port: int, aof: bool, masters: int | None,
           replicas: int, timeout_s: float) -> None:
    """Start the services that are not running and wait until both answer.

    Memory only: the broker keeps its log in memory (every topic and offset is gone after
    `down` or a crash) and Redis writes nothing to disk unless --aof is given. The endpoints are
    recorded in <state dir>/endpoints.json, which every restock command run from this directory
    reads (unless --bootstrap-servers/--redis-url or the environment say otherwise).
    """
    local = LocalStack(state_dir, kafka_port, redis_port, aof=aof)
    cluster = None
    try:
        if masters is not None:
            if aof:
                raise click.ClickException("--aof is not supported with --redis-cluster (memory only)")
            n = masters * (1 + replicas)
            cluster = _existing_cluster(state_dir) or LocalRedisCluster(
                _cluster_dir(state_dir), ports=list(range(redis_port, redis_port + n)),
                masters=masters, replicas=replicas)
            status = local.up(timeout_s=timeout_s, which=[KAFKA])
            try:
                cluster.up(timeout_s=max(timeout_s, 30))
            except BaseException:
                local.down(which=[KAFKA])
                raise
            redis_url = cluster.url
        else:
            status = local.up(timeout_s=timeout_s)
            redis_url = local.redis_url
    except (StackError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if cluster is None:
        _render(status)
    else:
        nodes = cluster.status()
        _render(StackStatus(kafka=status.kafka, redis=_redis_row(redis_url, nodes)))
        _render_cluster(nodes)
    path = write_endpoints(state_dir, local.kafka_bootstrap, redis_url)
    click.echo(f"KAFKA_BOOTSTRAP_SERVERS={local.kafka_bootstrap}")
    click.echo(f"REDIS_URL={redis_url}")
    click.echo(f"(recorded in {path}: restock worker/lag/dlq run from this directory use this stack)")


@stack.command("down")
@_stack_options
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
              help="Seconds to wait after SIGTERM before SIGKILL.")
def down_cmd(state_dir: Path, kafka_port: int, redis_port: int, timeout_s: float) -> None:
    """Stop both services (SIGTERM, then SIGKILL) and remove their pid files (cluster: every node file)."""
    local = LocalStack(state_dir, kafka_port, redis_port)
    try:
        local.down(timeout_s=timeout_s)
        cluster = _existing_cluster(state_dir)
        if cluster is not None:
            cluster.down(timeout_s=timeout_s)
            with contextlib.suppress(OSError):
                _cluster_dir(state_dir).rmdir()
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
    cluster = _existing_cluster(state_dir)
    if cluster is None:
        status = local.status()
        _render(status)
        click.get_current_context().exit(0 if status.healthy else 1)
    kafka, nodes = local.status().kafka, cluster.status()
    _render(StackStatus(kafka=kafka, redis=_redis_row(cluster.url, nodes)))
    ok = _render_cluster(nodes)
    click.get_current_context().exit(0 if kafka.healthy and ok else 1)


if __name__ == "__main__":
    stack()
