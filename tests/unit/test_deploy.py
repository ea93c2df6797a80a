"""Static checks of deploy/: manifests parse and agree with the code (no Docker, no network).

Every ``RESTOCK_*`` variable must be a real setting, probe paths and ports must be the worker's,
and every metric in the Grafana dashboard and the Prometheus rules must be exported by
``streams/metrics.py``.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from streams import metrics as restock_metrics
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
PROM_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "restock.json"
GRAFANA_DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
GRAFANA_PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "restock.yaml"
WORKER_SRC = ROOT / "streams" / "app.py"

YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
SETTING_VARS = {f"RESTOCK_{name.upper()}" for name in Settings.model_fields}
DEFAULTS = {name: field.default for name, field in Settings.model_fields.items()}
RESTOCK_VAR = re.compile(r"\bRESTOCK_[A-Z0-9_]*[A-Z0-9]\b")


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_one(path: Path) -> Any:
    docs = load_all(path)
    assert len(docs) == 1, f"{path}: expected one YAML document, got {len(docs)}"
    return docs[0]


def k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in sorted(K8S.glob("*.yaml")) for d in load_all(p)]


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in k8s_docs() if d.get("kind") == kind]


def the(kind: str) -> dict[str, Any]:
    docs = k8s_kind(kind)
    assert len(docs) == 1, f"expected exactly one {kind} in deploy/k8s, got {len(docs)}"
    return docs[0]


def worker_deployment() -> dict[str, Any]:
    return the("Deployment")


def worker_container() -> dict[str, Any]:
    containers = worker_deployment()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def configmap_data() -> dict[str, str]:
    return the("ConfigMap")["data"]


def compose() -> dict[str, Any]:
    return load_one(COMPOSE)


def compose_env(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a worker with exactly this environment would see them."""
    import os

    for key in list(os.environ):
        if key.startswith("RESTOCK_") or key in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


# --- metric names exported by streams/metrics.py ------------------------------------------------

def exported_metrics() -> dict[str, tuple[str, ...]]:
    """Series name as scraped -> label names (suffixes by type: counter _total, histogram
    _bucket/_sum/_count, gauge as is)."""
    out: dict[str, tuple[str, ...]] = {}
    for obj in vars(restock_metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        labels = tuple(getattr(obj, "_labelnames", ()))
        for family in obj.describe():
            if family.type == "counter":
                names = [f"{family.name}_total"]
            elif family.type == "histogram":
                names = [f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"]
            else:
                names = [family.name]
            for n in names:
                out[n] = labels + (("le",) if n.endswith("_bucket") else ())
    return out


# Series Prometheus itself synthesises for every target.
PROMETHEUS_SYNTHETIC = {"up": (), "scrape_duration_seconds": (), "scrape_samples_scraped": ()}
TARGET_LABELS = {"instance", "job", "pod", "namespace", "container"}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                   "group_left", "group_right", "inf", "nan", "atan2"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def promql_metrics(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, grouping labels) referenced by a PromQL expression."""
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)       # string literals
    e = re.sub(r"\{[^}]*\}", "", e)                     # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                    # range selectors: [5m], [$__rate_interval]
    labels = {lbl.strip() for m in GROUPING.finditer(e) for lbl in m.group(2).split(",") if lbl.strip()}
    e = GROUPING.sub(" ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", e):
        token = m.group(0)
        if token.lower() in PROMQL_KEYWORDS or e[m.end():].lstrip().startswith("("):
            continue  # keyword, function or aggregation operator
        names.add(token)
    return names, labels


def dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    panels = list(dash["panels"])
    for p in dash["panels"]:
        panels.extend(p.get("panels", []))  # collapsed rows
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", []) if t.get("expr")]


def rule_files() -> list[Path]:
    """Host paths of the rule files Prometheus loads (container path -> compose bind mount)."""
    mounts = compose_bind_mounts("prometheus")
    out = []
    for container_path in load_one(PROM_CONFIG).get("rule_files", []) or []:
        assert container_path in mounts, f"rule file {container_path} is not mounted into prometheus"
        out.append(mounts[container_path])
    return out


def rule_exprs() -> list[tuple[str, str]]:
    out = []
    for path in rule_files():
        for group in load_one(path)["groups"]:
            for rule in group["rules"]:
                out.append((rule.get("alert") or rule.get("record"), str(rule["expr"])))
    return out


def compose_bind_mounts(service: str) -> dict[str, Path]:
    """container path -> host path (resolved relative to deploy/) of a service's bind mounts."""
    out = {}
    for vol in compose()["services"][service].get("volumes", []) or []:
        if isinstance(vol, dict):
            source, target = vol.get("source", ""), vol["target"]
        else:
            source, target = vol.split(":")[:2]
        if source.startswith((".", "/")):
            out[target] = (DEPLOY / source).resolve()
    return out


# --- YAML / JSON parse --------------------------------------------------------------------------

def test_deploy_files_exist() -> None:
    for path in (DOCKERFILE, COMPOSE, PROM_CONFIG, DASHBOARD, GRAFANA_DATASOURCE, GRAFANA_PROVIDER,
                 DEPLOY / "README.md"):
        assert path.is_file(), path
    for name in ("configmap", "deployment", "service", "podmonitor", "keda-scaledobject",
                 "secret.example"):
        assert (K8S / f"{name}.yaml").is_file(), name


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    docs = load_all(path)
    assert docs, f"{path} has no YAML document"
    assert all(isinstance(d, dict) for d in docs), f"{path}: every document must be a mapping"


def test_dashboard_json_parses() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["title"] and dash["uid"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


# --- compose ------------------------------------------------------------------------------------

def test_compose_files_referenced_exist() -> None:
    services = compose()["services"]
    build = services["worker"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT, "the image builds from the repository root"
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    for name in services:
        for target, source in compose_bind_mounts(name).items():
            assert source.exists(), f"{name}: bind mount {source} -> {target} does not exist"
    prom = compose_bind_mounts("prometheus")
    assert prom["/etc/prometheus/prometheus.yml"] == PROM_CONFIG.resolve()
    graf = compose_bind_mounts("grafana")
    assert graf["/etc/grafana/provisioning/datasources"] == GRAFANA_DATASOURCE.parent.resolve()
    assert graf["/etc/grafana/provisioning/dashboards"] == GRAFANA_PROVIDER.parent.resolve()
    # the dashboard provider's path is where the dashboard directory is mounted
    provider_path = load_one(GRAFANA_PROVIDER)["providers"][0]["options"]["path"]
    assert graf[provider_path] == DASHBOARD.parent.resolve()


def test_compose_services_have_healthchecks() -> None:
    services = compose()["services"]
    for name in ("kafka", "redis", "worker", "prometheus", "grafana"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "/health/live" in json.dumps(services["worker"]["healthcheck"]["test"])
    deps = services["worker"]["depends_on"]
    assert deps["kafka"]["condition"] == deps["redis"]["condition"] == "service_healthy"


def test_compose_kafka_kraft() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = compose_env("kafka")
    for key in ("KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
                "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_CONTROLLER_QUORUM_VOTERS",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"):
        assert key in env, key
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@")
    protocols = dict(kv.split(":") for kv in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for listener in env["KAFKA_LISTENERS"].split(","):
        assert listener.split("://")[0] in protocols, listener
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in protocols
    # auto-created topics get the same partition count the workers expect
    assert int(env["KAFKA_NUM_PARTITIONS"]) == int(compose_env("worker")["RESTOCK_TOPIC_PARTITIONS"])
    # workers reach Kafka through an advertised listener
    advertised = {a.split("://")[1] for a in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert compose_env("worker")["RESTOCK_KAFKA_BOOTSTRAP_SERVERS"] in advertised


def test_compose_redis_aof() -> None:
    redis = compose()["services"]["redis"]
    cmd = redis["command"]
    cmd = cmd if isinstance(cmd, list) else shlex.split(cmd)
    assert cmd[0] == "redis-server"
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--appendfsync") + 1] == "everysec"
    assert any(str(v).split(":")[1] == "/data" for v in redis["volumes"]), "AOF needs a volume on /data"


def test_compose_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = compose()["services"]["worker"]
    env = compose_env("worker")
    s = settings_from(env, monkeypatch)  # values must validate
    assert s.metrics_host == "0.0.0.0", "containers must bind /metrics on every interface"
    replicas = worker["deploy"]["replicas"]
    assert 1 <= replicas <= s.topic_partitions
    assert "ports" not in worker, "host ports on a replicated service collide"


def test_prometheus_scrapes_worker_metrics_port() -> None:
    config = load_one(PROM_CONFIG)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "restock")
    ports = [sd["port"] for sd in job.get("dns_sd_configs", [])]
    ports += [int(t.rsplit(":", 1)[1]) for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert ports and all(p == DEFAULTS["metrics_port"] for p in ports)
    names = [n for sd in job.get("dns_sd_configs", []) for n in sd["names"]]
    assert all(n in compose()["services"] for n in names)


def test_grafana_datasource_matches_dashboard() -> None:
    ds = load_one(GRAFANA_DATASOURCE)["datasources"][0]
    assert ds["type"] == "prometheus"
    assert ds["url"].startswith("http://prometheus:")
    dash = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    for panel in dash["panels"]:
        uid = panel["datasource"]["uid"]
        if uid.startswith("${"):
            assert variables[uid[2:-1]]["query"] == "prometheus"
        else:
            assert uid == ds["uid"], panel["title"]


# --- settings: every RESTOCK_* variable is a real field ------------------------------------------

def test_every_restock_variable_is_a_setting() -> None:
    unknown: dict[str, set[str]] = {}
    for path in sorted(DEPLOY.rglob("*")):
        if not path.is_file():
            continue
        for var in RESTOCK_VAR.findall(path.read_text()):
            if var not in SETTING_VARS:
                unknown.setdefault(var, set()).add(str(path.relative_to(ROOT)))
    assert not unknown, f"RESTOCK_* variables that are not fields of Settings: {unknown}"


def test_structured_env_keys_are_settings() -> None:
    keys = set(compose_env("worker")) | set(configmap_data())
    keys |= {e["name"] for e in worker_container().get("env", [])}
    restock_keys = {k for k in keys if k.startswith("RESTOCK_")}
    assert restock_keys, "no RESTOCK_* settings found"
    assert restock_keys <= SETTING_VARS, restock_keys - SETTING_VARS
    assert keys - restock_keys <= {"REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"}, keys - restock_keys


def test_configmap_values_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from(configmap_data(), monkeypatch)
    assert s.metrics_host == "0.0.0.0"
    assert s.web_port == DEFAULTS["web_port"] and s.metrics_port == DEFAULTS["metrics_port"]


# --- Kubernetes manifests -----------------------------------------------------------------------

def test_k8s_required_fields() -> None:
    docs = k8s_docs()
    assert docs
    for path, doc in docs:
        assert doc.get("apiVersion"), path
        assert doc.get("kind"), path
        assert doc.get("metadata", {}).get("name"), path
    kinds = {d["kind"]: d["apiVersion"] for _, d in docs}
    assert kinds["Deployment"] == "apps/v1"
    assert kinds["ConfigMap"] == kinds["Service"] == kinds["Secret"] == "v1"
    assert kinds["PodMonitor"] == "monitoring.coreos.com/v1"
    assert kinds["ScaledObject"] == "keda.sh/v1alpha1"


def test_deployment_selector_matches_template() -> None:
    dep = worker_deployment()
    template_labels = dep["spec"]["template"]["metadata"]["labels"]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector and selector.items() <= template_labels.items()
    for kind in ("Service", "PodMonitor"):
        sel = the(kind)["spec"]["selector"]
        sel = sel.get("matchLabels", sel)
        assert sel and sel.items() <= template_labels.items(), kind


def test_deployment_replicas_and_resources() -> None:
    dep = worker_deployment()
    assert 1 <= dep["spec"]["replicas"] <= DEFAULTS["topic_partitions"]
    resources = worker_container()["resources"]
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} & set(resources[section]), section
    assert "memory" in resources["limits"]


def test_deployment_ports_match_settings() -> None:
    ports = {p["name"]: p["containerPort"] for p in worker_container()["ports"]}
    assert ports == {"web": DEFAULTS["web_port"], "metrics": DEFAULTS["metrics_port"]}
    annotations = worker_deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == DEFAULTS["metrics_port"]
    service_ports = {p["name"]: p for p in the("Service")["spec"]["ports"]}
    assert set(service_ports) == set(ports)
    for name, p in service_ports.items():
        assert p["targetPort"] in (name, ports[name])
        assert p["port"] == ports[name]
    endpoints = the("PodMonitor")["spec"]["podMetricsEndpoints"]
    assert [e["port"] for e in endpoints] == ["metrics"]


def probe_target(probe: dict[str, Any]) -> tuple[str, int]:
    """(path, port) a liveness/readiness probe checks (httpGet or an exec'd URL)."""
    if "httpGet" in probe:
        port = probe["httpGet"]["port"]
        ports = {p["name"]: p["containerPort"] for p in worker_container()["ports"]}
        return probe["httpGet"]["path"], int(ports.get(port, port))
    command = " ".join(probe["exec"]["command"])
    m = re.search(r"https?://[^/:'\"]+:(\d+)(/[\w/.-]*)", command)
    assert m, f"no URL in exec probe {command!r}"
    return m.group(2), int(m.group(1))


def test_probes_hit_worker_health_endpoints() -> None:
    source = WORKER_SRC.read_text()
    container = worker_container()
    expected = {"livenessProbe": "/health/live", "readinessProbe": "/health/ready"}
    for probe_name, path in expected.items():
        assert f'"{path}"' in source, f"{path} is not served by streams/app.py"
        got_path, port = probe_target(container[probe_name])
        assert got_path == path, probe_name
        assert port == DEFAULTS["web_port"], probe_name
    if "startupProbe" in container:
        assert probe_target(container["startupProbe"])[0] in expected.values()


def test_redis_url_from_secret() -> None:
    assert "RESTOCK_REDIS_URL" not in configmap_data(), "RESTOCK_REDIS_URL would override the Secret"
    assert "REDIS_URL" not in configmap_data()
    container = worker_container()
    env = {e["name"]: e for e in container.get("env", [])}
    ref = env["REDIS_URL"]["valueFrom"]["secretKeyRef"]
    secret = the("Secret")
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in (secret.get("stringData") or secret.get("data") or {})
    config_refs = [s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s]
    assert config_refs == [the("ConfigMap")["metadata"]["name"]]


def test_keda_scaled_object() -> None:
    so = the("ScaledObject")
    spec = so["spec"]
    assert spec["scaleTargetRef"]["name"] == worker_deployment()["metadata"]["name"]
    assert spec["minReplicaCount"] == 1
    partitions = Settings.model_fields["topic_partitions"].default
    assert spec["maxReplicaCount"] <= partitions
    assert spec["maxReplicaCount"] <= int(configmap_data()["RESTOCK_TOPIC_PARTITIONS"])
    triggers = [t for t in spec["triggers"] if t["type"] == "kafka"]
    assert triggers
    topics = {t["metadata"]["topic"] for t in triggers}
    assert "orders" in topics
    cm = configmap_data()
    input_topics = {cm.get("RESTOCK_ORDERS_TOPIC", DEFAULTS["orders_topic"]),
                    cm.get("RESTOCK_INVENTORY_TOPIC", DEFAULTS["inventory_topic"]),
                    cm.get("RESTOCK_PROMOTIONS_TOPIC", DEFAULTS["promotions_topic"])}
    assert topics <= input_topics
    for t in triggers:
        md = t["metadata"]
        assert md["consumerGroup"] == cm.get("RESTOCK_APP_ID", DEFAULTS["app_id"]) == "restock"
        assert md["bootstrapServers"] == cm["RESTOCK_KAFKA_BOOTSTRAP_SERVERS"]
        assert int(md["lagThreshold"]) > 0


def test_lag_cronjob_uses_the_lag_command() -> None:
    for job in k8s_kind("CronJob"):
        container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][0] == "lag"
        assert container["image"] == worker_container()["image"]


# --- metrics: dashboards and rules only use exported series --------------------------------------

def test_metric_extraction_helper() -> None:
    names, labels = promql_metrics(
        'histogram_quantile(0.95, sum by (le) (rate(restock_batch_seconds_bucket{job="x"}[5m])))'
        " > 1e3 and on (instance) up == 0")
    assert names == {"restock_batch_seconds_bucket", "up"}
    assert labels == {"le", "instance"}


def check_exprs(exprs: list[tuple[str, str]]) -> None:
    exported = exported_metrics()
    known = {**exported, **PROMETHEUS_SYNTHETIC}
    assert exprs
    for title, expr in exprs:
        names, labels = promql_metrics(expr)
        assert names, f"{title}: no metric in {expr!r}"
        unknown = names - set(known)
        assert not unknown, f"{title}: {sorted(unknown)} not exported by streams/metrics.py ({expr!r})"
        allowed = TARGET_LABELS.union(*(known[n] for n in names))
        assert labels <= allowed, f"{title}: grouping labels {sorted(labels - allowed)} do not exist"


def test_exported_metrics_include_lag() -> None:
    exported = exported_metrics()
    assert exported["restock_consumer_lag_messages"] == ("topic", "partition")
    assert exported["restock_consumer_lag_seconds"] == ("topic", "partition")
    assert "restock_events_consumed_total" in exported
    assert "restock_batch_seconds_bucket" in exported


def test_dashboard_metrics_exist() -> None:
    check_exprs(dashboard_exprs())


def test_dashboard_covers_required_panels() -> None:
    used = set().union(*(promql_metrics(e)[0] for _, e in dashboard_exprs()))
    for name in ("restock_events_consumed_total", "restock_events_applied_total",
                 "restock_dead_letters_total", "restock_decisions_total",
                 "restock_batch_seconds_bucket", "restock_redis_write_seconds_bucket",
                 "restock_redis_errors_total", "restock_skus_cached",
                 "restock_consumer_lag_messages", "restock_consumer_lag_seconds"):
        assert name in used, f"dashboard has no panel on {name}"
    exprs = " ".join(e for _, e in dashboard_exprs())
    assert "histogram_quantile(0.95" in exprs


def test_prometheus_rule_metrics_exist() -> None:
    if not rule_files():
        pytest.skip("no Prometheus rule files")
    check_exprs(rule_exprs())


# --- Dockerfile ---------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    # Docker drops comment lines first (also inside continuations), then joins continuations.
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines) + "\n")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    return ins[last_from:]


def test_dockerfile_runtime() -> None:
    stage = final_stage()
    ops = {op: rest for op, rest in stage}  # last one of each wins, as in Docker
    assert stage[0][1].split()[0] == "python:3.11-slim"
    user = ops["USER"].split(":")[0]
    assert user not in ("root", "0"), "the image must run as a non-root user"
    assert json.loads(ops["ENTRYPOINT"]) == ["restock"]
    assert json.loads(ops["CMD"]) == ["worker"]
    assert set(ops["EXPOSE"].split()) >= {str(DEFAULTS["web_port"]), str(DEFAULTS["metrics_port"])}
    assert "/health/live" in ops["HEALTHCHECK"] and "curl" not in ops["HEALTHCHECK"]
    assert "RESTOCK_METRICS_HOST=0.0.0.0" in ops.get("ENV", "")


def test_dockerfile_installs_package_from_context() -> None:
    ins = dockerfile_instructions()
    assert any(op == "RUN" and re.search(r"pip install (\S+ )*\.( |$)", rest) for op, rest in ins)
    ignore = DEPLOY / "Dockerfile.dockerignore"
    allowed = {line[1:].strip("/") for line in ignore.read_text().splitlines() if line.startswith("!")}
    for op, rest in ins:
        if op == "COPY" and "--from" not in rest:
            *sources, _dest = rest.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY source {src} missing from the build context"
                assert src.rstrip("/") in allowed, f"{src} is excluded by {ignore.name}"
    # pip install . reads these
    assert {"pyproject.toml", "README.md"} <= allowed
