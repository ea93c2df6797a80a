"""One factory builds every Kafka and Redis client with the same security (issue #18, 4)."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from streams.clients import PLAINTEXT, KafkaSecurity, redis_client, redis_client_for
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TLS = ROOT / "tests" / "data" / "tls"
CA, OTHER_CA = TLS / "ca.pem", TLS / "other-ca.pem"
CERT, KEY = TLS / "server.pem", TLS / "server.key"  # any cert/key pair will do for a client


def _settings(protocol: str, mechanism: str = "PLAIN", **kw: Any) -> Settings:
    sasl = protocol.startswith("SASL_")
    return Settings(kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism,
                    kafka_sasl_username="svc-restock" if sasl else None,
                    kafka_sasl_password=SecretStr("p4ss") if sasl else None,
                    kafka_ssl_cafile=CA if "SSL" in protocol else None, **kw)


def _ca_subjects(ctx: ssl.SSLContext) -> set[str]:
    return {dict(x[0] for x in c["subject"])["commonName"] for c in ctx.get_ca_certs()}


CASES = [("PLAINTEXT", "PLAIN"), ("SSL", "PLAIN"), ("SASL_PLAINTEXT", "PLAIN"),
         ("SASL_PLAINTEXT", "SCRAM-SHA-256"), ("SASL_SSL", "SCRAM-SHA-512"), ("SASL_SSL", "PLAIN")]


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_kafka_python_aiokafka_and_faust_get_the_same_security(protocol: str, mechanism: str) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from streams.app import faust_app_kwargs

    s = _settings(protocol, mechanism)
    sec = KafkaSecurity.from_settings(s)
    kp, ak = sec.kafka_python(), sec.aiokafka()
    faust = dict(credentials_to_aiokafka_auth(faust_app_kwargs(s)["broker_credentials"]))
    for kw in (kp, ak, faust):
        assert kw.get("security_protocol", "PLAINTEXT") == protocol
        if protocol.startswith("SASL_"):
            assert (kw["sasl_mechanism"], kw["sasl_plain_username"], kw["sasl_plain_password"]) == (
                mechanism, "svc-restock", "p4ss")
        else:
            assert "sasl_mechanism" not in kw or kw.get("sasl_plain_username") is None
    if "SSL" in protocol:
        assert kp["ssl_cafile"] == str(CA) and kp["ssl_check_hostname"] is True
        for ctx in (ak["ssl_context"], faust["ssl_context"]):
            assert _ca_subjects(ctx) == {"restock test CA"}
            assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    else:
        assert "ssl_cafile" not in kp and ak.get("ssl_context") is None and faust.get("ssl_context") is None


def test_mutual_tls_and_hostname_settings_reach_every_client() -> None:
    s = _settings("SSL", kafka_ssl_certfile=CERT, kafka_ssl_keyfile=KEY, kafka_ssl_check_hostname=False)
    sec = KafkaSecurity.from_settings(s)
    assert sec.kafka_python() == {"security_protocol": "SSL", "ssl_check_hostname": False,
                                  "ssl_cafile": str(CA), "ssl_certfile": str(CERT), "ssl_keyfile": str(KEY)}
    assert sec.aiokafka()["ssl_context"].check_hostname is False


def test_invalid_security_settings_fail_at_startup() -> None:
    with pytest.raises(ValidationError, match="needs kafka_sasl_username"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u")
    with pytest.raises(ValidationError, match="go together"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_certfile=CERT)
    with pytest.raises(ValidationError):
        Settings(kafka_sasl_mechanism="GSSAPI")
    with pytest.raises(ValueError, match="username and password"):
        KafkaSecurity(protocol="SASL_PLAINTEXT")


def test_the_password_is_never_printed() -> None:
    s = _settings("SASL_SSL")
    sec = KafkaSecurity.from_settings(s)
    assert "p4ss" not in repr(s) and "p4ss" not in repr(sec) and "p4ss" not in str(sec)
    assert "p4ss" not in repr(sec.faust_credentials())


def test_redis_tls_is_chosen_by_the_url_and_verified_with_the_ca() -> None:
    client = redis_client_for(Settings(redis_url="rediss://:pw@redis.example:6380/0", redis_ssl_ca_file=CA))
    kw = client.connection_pool.connection_kwargs
    assert kw["ssl_ca_certs"] == str(CA) and kw.get("ssl_cert_reqs", "required") == "required"
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    with pytest.raises(ValueError, match="rediss://"):
        redis_client("redis://127.0.0.1:6379/0", CA)  # a CA with a plain URL would not encrypt
    plain = redis_client_for(Settings(redis_url="redis://127.0.0.1:6379/0"))
    assert plain.connection_pool.connection_class.__name__ == "Connection"


class _Stop(Exception):
    pass


def _recorder(calls: list[tuple[str, dict[str, Any]]], name: str) -> Any:
    def make(*args: Any, **kwargs: Any) -> Any:
        calls.append((name, kwargs))
        raise _Stop(name)
    return make


def test_every_command_path_builds_its_clients_with_the_settings_security(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """lag, dlq list/replay and topic admin all reach the factory with the configured security."""
    import kafka

    from streams import dlq, kafka_admin, lag

    calls: list[tuple[str, dict[str, Any]]] = []
    for name in ("KafkaAdminClient", "KafkaConsumer", "KafkaProducer"):
        monkeypatch.setattr(kafka, name, _recorder(calls, name))
    sec = KafkaSecurity.from_settings(_settings("SASL_SSL", "SCRAM-SHA-256"))
    from datetime import UTC, datetime

    from schemas.events import DeadLetter

    letter = DeadLetter.from_failure("orders", 0, 1, b"A@W", b"{}", "validate", "x",
                                     datetime(2026, 1, 1, tzinfo=UTC))
    entry_points = [
        lambda: lag.consumer_lag("b:9092", "g", ["t"], security=sec),
        lambda: list(dlq.read_dead_letters("b:9092", "restock.dlq", security=sec)),
        lambda: dlq.replay("b:9092", [letter], security=sec),
        lambda: kafka_admin.ensure_topics("b:9092", {"t": 1}, security=sec),
        lambda: kafka_admin.partition_counts("b:9092", ["t"], security=sec),
        lambda: kafka_admin.check_copartitioned("b:9092", ["t"], security=sec),
    ]
    for call in entry_points:
        with pytest.raises((_Stop, kafka_admin.KafkaAdminError)):
            call()
    kafka_admin.delete_topics("b:9092", ["t"], security=sec)  # best effort: swallows the failure
    assert len(calls) == len(entry_points) + 1
    for _, kwargs in calls:
        assert kwargs.items() >= sec.kafka_python().items()
        assert kwargs["bootstrap_servers"] == ["b:9092"]


#: modules that may construct a client directly, and why
EXEMPT = {
    "streams/clients.py": "the factory itself",
    "streams/redis_state.py": "RedisStateStore.from_url, a plaintext convenience (callers pass a client)",
    "streams/workerproc.py": "test/demo helper on the embedded stack (owned by issue #16)",
}
CONSTRUCTORS = {"KafkaConsumer", "KafkaProducer", "KafkaAdminClient", "AIOKafkaProducer", "AIOKafkaConsumer",
                "from_url", "Redis", "StrictRedis"}


def test_no_client_is_built_outside_the_factory() -> None:
    offenders = []
    sources = [*ROOT.glob("agents/**/*.py"), *ROOT.glob("streams/**/*.py"), *ROOT.glob("bench/*.py")]
    for path in sorted(sources):
        rel = path.relative_to(ROOT).as_posix()
        if rel in EXEMPT:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
                if name in CONSTRUCTORS:
                    offenders.append(f"{rel}:{node.lineno} {name}(...)")
    assert not offenders, f"build these through streams.clients: {offenders}"


def test_plaintext_is_the_default() -> None:
    assert KafkaSecurity.from_settings(Settings()) == PLAINTEXT
    assert PLAINTEXT.kafka_python() == {} and PLAINTEXT.faust_credentials() is None


def test_worker_process_environment_carries_secrets_in_clear() -> None:
    """A spawned worker must get the real SASL password and Redis URL, not pydantic's mask."""
    from pydantic import SecretStr

    from streams.settings import Settings
    from streams.workerproc import settings_env

    s = Settings(redis_url=SecretStr("redis://:pw1@127.0.0.1:6379/0"),
                 kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
                 kafka_sasl_username="u", kafka_sasl_password=SecretStr("pw2"))
    env = settings_env(s)
    assert env["RESTOCK_REDIS_URL"] == "redis://:pw1@127.0.0.1:6379/0"
    assert env["RESTOCK_KAFKA_SASL_PASSWORD"] == "pw2"
    assert "*" not in "".join(env.values())
