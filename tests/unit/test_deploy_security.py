"""deploy/ takes Kafka and Redis credentials from the Secret, and probes the worker directly (issue #18)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from streams.settings import Settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def _doc(name: str) -> dict[str, Any]:
    return yaml.safe_load((K8S / name).read_text())


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def test_credentials_come_from_the_secret_for_workers_and_the_lag_probe() -> None:
    secret = _doc("secret.example.yaml")
    keys = set(secret["stringData"])
    config = _doc("configmap.yaml")["data"]
    for name in ("deployment.yaml", "lag-cronjob.yaml"):
        pod = _pod(_doc(name))
        (container,) = pod["containers"]
        env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        for var, key in [("REDIS_URL", "url"), ("RESTOCK_KAFKA_SASL_USERNAME", "kafka-sasl-username"),
                         ("RESTOCK_KAFKA_SASL_PASSWORD", "kafka-sasl-password")]:
            assert env[var]["name"] == secret["metadata"]["name"] and env[var]["key"] == key, (name, var)
            assert key in keys
            assert var not in config  # a ConfigMap value would bypass the Secret
        tls = next(v for v in pod["volumes"] if v["name"] == "tls")
        assert tls["secret"]["secretName"] == secret["metadata"]["name"] and tls["secret"]["optional"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        paths = {f"{mounts['tls']}/{i['path']}" for i in tls["secret"]["items"]}
        assert paths == {"/etc/restock/tls/kafka-ca.pem", "/etc/restock/tls/redis-ca.pem"}
        commented = (K8S / "configmap.yaml").read_text()
        assert all(p in commented for p in paths)  # the ConfigMap's examples point at the mounts


def test_probes_are_http_because_the_health_server_binds_the_configured_host() -> None:
    config = _doc("configmap.yaml")["data"]
    s = Settings(**{k.removeprefix("RESTOCK_").lower(): v for k, v in config.items()
                    if k in {"RESTOCK_WEB_HOST", "RESTOCK_WEB_PORT"}})
    assert s.web_host == "0.0.0.0"
    from streams.app import faust_app_kwargs

    assert faust_app_kwargs(s)["web_bind"] == "0.0.0.0" and faust_app_kwargs(s)["web_port"] == s.web_port
    (container,) = _pod(_doc("deployment.yaml"))["containers"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "exec" not in container[probe] and container[probe]["httpGet"]["port"] == "web"
