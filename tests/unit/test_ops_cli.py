"""Operations rough edges (issue #18, 3): where the stack is, dead-letter selection, CLI help."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import DEAD_LETTER_STAGES, DeadLetter
from streams.cli import main
from streams.dlq import Selection
from streams.settings import Settings, clear_endpoints, write_endpoints

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "RESTOCK_KAFKA_BOOTSTRAP_SERVERS",
                "RESTOCK_REDIS_URL", "RESTOCK_KAFKA_PORT", "RESTOCK_REDIS_PORT"):
        monkeypatch.delenv(var, raising=False)
    stack_dir = tmp_path / "stack"
    monkeypatch.setenv("RESTOCK_STACK_DIR", str(stack_dir))
    return stack_dir


def test_where_the_stack_is_follows_the_documented_precedence(clean_env: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert (s.kafka_bootstrap_servers, s.redis_dsn) == ("127.0.0.1:19092", "redis://127.0.0.1:16379/0")
    monkeypatch.setenv("RESTOCK_KAFKA_PORT", "29092")  # 4. the stack's ports
    monkeypatch.setenv("RESTOCK_REDIS_PORT", "26379")
    s = Settings()
    assert (s.kafka_bootstrap_servers, s.redis_dsn) == ("127.0.0.1:29092", "redis://127.0.0.1:26379/0")
    write_endpoints(clean_env, "127.0.0.1:31111", "redis://127.0.0.1:32222/0")  # 3. `stack up` wrote it
    s = Settings()
    assert (s.kafka_bootstrap_servers, s.redis_dsn) == ("127.0.0.1:31111", "redis://127.0.0.1:32222/0")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")  # 2. environment
    monkeypatch.setenv("REDIS_URL", "redis://redis.example:6379/0")
    s = Settings()
    assert (s.kafka_bootstrap_servers, s.redis_dsn) == ("kafka.example:9092", "redis://redis.example:6379/0")
    s = Settings(kafka_bootstrap_servers="cli:1", redis_url="redis://cli:2/0")  # 1. command line
    assert (s.kafka_bootstrap_servers, s.redis_dsn) == ("cli:1", "redis://cli:2/0")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS")
    monkeypatch.delenv("REDIS_URL")
    clear_endpoints(clean_env)  # `stack down`
    assert Settings().kafka_bootstrap_servers == "127.0.0.1:29092"


@pytest.mark.parametrize("command", [["worker"], ["lag"], ["dlq", "list"], ["dlq", "replay"]])
def test_every_service_command_takes_the_stack_location(command: list[str]) -> None:
    out = CliRunner().invoke(main, [*command, "--help"], terminal_width=200).output
    assert "--bootstrap-servers" in out and "restock stack up" in out
    if command == ["worker"]:
        assert "--redis-url" in out and "[default: info]" in out


def test_cli_options_override_the_environment(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streams import cli

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    assert cli._settings("opt:9092").kafka_bootstrap_servers == "opt:9092"
    assert cli._settings(None).kafka_bootstrap_servers == "env:9092"


def _walk(cmd: click.Command, path: list[str]) -> list[tuple[str, click.Parameter]]:
    out = [(" ".join(path), p) for p in cmd.params if isinstance(p, click.Option)]
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            out += _walk(sub, [*path, name])
    return out


def test_every_option_has_help_text() -> None:
    missing = [f"{where} {p.opts[0]}" for where, p in _walk(main, ["restock"])
               if not p.help and p.opts[0] not in {"--help", "--version"}]
    assert not missing, missing


def _letter(stage: str, partition: int, offset: int, minutes: int) -> DeadLetter:
    return DeadLetter.from_failure("orders", partition, offset, b"A@W", b"{}", stage, "x",
                                   T0 + timedelta(minutes=minutes))


letters = st.lists(st.builds(_letter, st.sampled_from(DEAD_LETTER_STAGES), st.integers(0, 3),
                             st.integers(0, 50), st.integers(0, 100)), max_size=30)


@given(letters, st.sampled_from(DEAD_LETTER_STAGES), st.integers(0, 3), st.integers(0, 50),
       st.integers(0, 50), st.integers(0, 100))
def test_selection_is_the_conjunction_of_its_criteria(dls: list[DeadLetter], stage: str, partition: int,
                                                      lo: int, hi: int, since_min: int) -> None:
    since = T0 + timedelta(minutes=since_min)
    sel = Selection(stage=stage, partition=partition, from_offset=lo, to_offset=hi, since=since)
    got = [d for d in dls if sel.matches(d)]
    assert got == [d for d in dls if d.stage == stage and d.partition == partition and lo <= d.offset <= hi
                   and d.failed_at >= since]
    assert all(Selection().matches(d) for d in dls) and Selection().empty and not sel.empty
    if dls:
        one = dls[0].dead_letter_id
        assert all(d.dead_letter_id == one for d in dls if Selection(ids={one}).matches(d))


def test_replay_requires_a_selection_and_validates_the_stage() -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["dlq", "replay", "--yes", "--bootstrap-servers", "127.0.0.1:1"])
    assert res.exit_code == 2 and "--all" in res.output
    res = runner.invoke(main, ["dlq", "replay", "--stage", "decodee", "--yes"])
    assert res.exit_code == 2 and "fence" in res.output and "missing_key" in res.output


def test_endpoints_file_is_json_with_both_addresses(tmp_path: Path) -> None:
    path = write_endpoints(tmp_path, "127.0.0.1:1", "redis://127.0.0.1:2/0")
    assert json.loads(path.read_text()) == {"kafka_bootstrap_servers": "127.0.0.1:1",
                                            "redis_url": "redis://127.0.0.1:2/0"}
