"""``restock policies``: publish per-SKU policies to the compacted ``policies`` topic, or delete them.

The production path for per-SKU policies (issue #20): a worker applies a ``PolicySet`` at once
and re-decides the SKU; the overrides file (``RESTOCK_POLICY_OVERRIDES_FILE``) stays for local
runs. ``publish`` reads the overrides file's format, a JSON or YAML mapping of SKU key to policy
fields, with two differences:

* every key must be ``sku@location`` (the topic is keyed like every input, so a policy is
  co-partitioned with its SKU's events); a bare ``sku`` is refused;
* only the fields a run-time policy carries are accepted: ``fill_rate``,
  ``cycle_service_level``, ``lead_time_days``, ``lead_time_std_days``, ``pack_size``, ``moq``,
  ``unit_cost``, ``holding_cost_rate``, ``ordering_cost``, ``supplier_id``; the overrides file's
  ``lead_time_periods`` / ``lead_time_std_periods`` are converted to days with the settings'
  period (``RESTOCK_FREQ``). Other ``PolicyParams`` fields (review period, overstock cover,
  distribution) stay settings-wide.

Each message replaces the SKU's whole run-time policy (omitted fields take the defaults). Its
``version`` is ``--version`` or, by default, the current time in epoch milliseconds, so that a
later publication supersedes an earlier one; a worker ignores (and counts) a version that is not
above the SKU's last one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from schemas.codec import encode_event
from schemas.inputs import POLICY_PARAMETERS, PolicySet
from streams.clients import KafkaSecurity
from streams.settings import Settings

__all__ = ["PERIOD_FIELDS", "load_policy_file", "policies", "policy_events", "publish_policies"]

#: Overrides-file fields in periods -> the policy field in days they are converted to.
PERIOD_FIELDS = {"lead_time_periods": "lead_time_days", "lead_time_std_periods": "lead_time_std_days"}


def load_policy_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read a policy file: a JSON (``.json``) or YAML mapping ``sku@location -> {field: value}``.

    Raises
    ------
    ValueError
        When the file is not such a mapping.
    """
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict) or not all(isinstance(v, dict | None) for v in data.values()):
        raise ValueError(f"{path}: expected a mapping of sku@location to policy fields")
    return {str(k): dict(v or {}) for k, v in data.items()}


def _event_id(key: str, version: int) -> str:
    """A deterministic event id of one publication (at most 128 characters whatever the key)."""
    return f"policy-{hashlib.sha256(key.encode()).hexdigest()[:20]}-v{version}"


def policy_events(entries: Mapping[str, Mapping[str, Any]], settings: Settings, version: int,
                  occurred_at: datetime) -> list[PolicySet]:
    """The ``PolicySet`` events of a policy file's entries.

    Parameters
    ----------
    entries : mapping
        ``sku@location -> {field: value}`` (:func:`load_policy_file`).
    settings : Settings
        Period length (``lead_time_periods`` -> days); the entries are checked as a worker with
        these settings checks them (defaults, overrides file, forecast horizon).
    version : int
        The version of every event (>= 1).
    occurred_at : datetime
        Event time of every event (timezone-aware).

    Returns
    -------
    list of PolicySet
        One per entry, in the file's order.

    Raises
    ------
    ValueError
        Naming the key: not ``sku@location``, a field a run-time policy does not carry, an
        invalid value, or parameters that do not fit the settings' defaults (e.g. an ordering
        cost with a zero holding cost).
    """
    from agents.processor import SkuProcessor
    from agents.state import SkuPolicy
    from streams.config import processor_config

    deriver = SkuProcessor(processor_config(settings)).deriver  # what a worker with these settings checks
    out: list[PolicySet] = []
    for key, fields in entries.items():
        sku, at, location = key.partition("@")
        if not at:
            raise ValueError(f"{key!r}: a run-time policy is per SKU@location: write the key as "
                             f"'{key}@<location>'")
        params: dict[str, Any] = {}
        for name, value in fields.items():
            if name in PERIOD_FIELDS:
                params[PERIOD_FIELDS[name]] = value * settings.period_days
            elif name in POLICY_PARAMETERS:
                params[name] = value
            else:
                allowed = sorted(POLICY_PARAMETERS | set(PERIOD_FIELDS))
                raise ValueError(f"{key!r}: {name!r} is not a run-time policy field (one of "
                                 f"{', '.join(allowed)}); set it in the settings")
        try:
            ev = PolicySet(event_id=_event_id(key, version), occurred_at=occurred_at, sku=sku,
                           location=location, version=version, **params)
            base_key, base = deriver.base_params(ev.key)
            deriver.effective_params(base_key, base, SkuPolicy(version, tuple(ev.parameters().items())))
        except (ValidationError, ValueError, TypeError) as exc:
            raise ValueError(f"{key!r}: invalid policy: {exc}") from exc
        out.append(ev)
    return out


def publish_policies(settings: Settings, events: Sequence[PolicySet], deletes: Sequence[str] = ()) -> int:
    """Produce policies (and tombstones for ``deletes`` keys) to ``settings.policies_topic``.

    Keyed ``sku@location`` with Kafka's default partitioner (kafka-python's murmur2), like
    every input. Returns the number of messages written (every delivery is awaited).
    """
    from streams.clients import kafka_producer

    producer = kafka_producer(settings.kafka_bootstrap_servers, KafkaSecurity.from_settings(settings),
                              linger_ms=5)
    try:
        futures = [producer.send(settings.policies_topic, key=ev.key.encode(), value=encode_event(ev))
                   for ev in events]
        futures += [producer.send(settings.policies_topic, key=key.encode(), value=None) for key in deletes]
        producer.flush()
        for f in futures:
            f.get(timeout=30)
        return len(futures)
    finally:
        producer.close()


@click.group()
def policies() -> None:
    """Per-SKU policies at run time: the compacted topic RESTOCK_POLICIES_TOPIC (default policies)."""


@policies.command("publish")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="JSON or YAML mapping of sku@location to policy fields (the overrides file's format).")
@click.option("--version", "version", type=click.IntRange(1, 2**53), default=None,
              help="Version of every message (default: now in epoch milliseconds). Must rise per SKU.")
@click.option("--occurred-at", type=click.DateTime(), default=None,
              help="Event time (UTC) of the messages (default: now).")
@click.option("--dry-run", is_flag=True, help="Print the messages (one JSON per line) without publishing.")
@click.option("--bootstrap-servers", default=None, metavar="HOST:PORT[,...]",
              help="Kafka bootstrap servers (default: as every command, see `restock worker --help`).")
def policies_publish(path: Path, version: int | None, occurred_at: datetime | None, dry_run: bool,
                     bootstrap_servers: str | None) -> None:
    """Publish one PolicySet per sku@location of a policy file to the policies topic."""
    settings = Settings(**({"kafka_bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}))
    now = datetime.now(UTC)
    try:
        events = policy_events(load_policy_file(path), settings,
                               version if version is not None else int(now.timestamp() * 1000),
                               occurred_at.replace(tzinfo=UTC) if occurred_at else now)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if dry_run:
        for ev in events:
            click.echo(encode_event(ev).decode())
        return
    n = publish_policies(settings, events)
    shown = events[0].version if events else "-"
    click.echo(f"published {n} message(s), version {shown}, to {settings.policies_topic}")


@policies.command("delete")
@click.argument("keys", nargs=-1, required=True)
@click.option("--bootstrap-servers", default=None, metavar="HOST:PORT[,...]", help="Kafka bootstrap servers.")
def policies_delete(keys: tuple[str, ...], bootstrap_servers: str | None) -> None:
    """Delete the run-time policy of each sku@location KEY (a tombstone): back to the defaults."""
    from schemas.codec import EventValidationError, decode_policy_tombstone

    try:
        for key in keys:
            decode_policy_tombstone(key.encode())
    except EventValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    settings = Settings(**({"kafka_bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}))
    n = publish_policies(settings, [], list(keys))
    click.echo(f"deleted {n} polic{'y' if n == 1 else 'ies'} on {settings.policies_topic}")
