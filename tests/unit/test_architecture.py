"""The allowed imports of docs/ARCHITECTURE.md, enforced on the source (an AST check).

* ``schemas/`` (wire contracts) imports only the standard library and pydantic (``yaml`` for the
  schema export tool);
* ``agents/`` (domain: decoding results in, decisions out, the maths) imports only ``schemas``,
  ``agents`` and the scientific stack: never Faust, Kafka, Redis or ``streams``;
* ``streams/`` (transport, drivers, CLI) may import everything;
* Faust's private internals are touched only in ``streams/faust_compat.py``;
* scipy's count distributions (negative binomial, Poisson) are used only in
  ``agents/count_quantiles.py``, the one quantile module.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCIENTIFIC = {"numpy", "scipy", "river", "msgpack", "pydantic", "pydantic_core"}
ALLOWED: dict[str, set[str]] = {
    "schemas": {"schemas", "pydantic", "pydantic_core", "yaml"},
    "agents": {"agents", "schemas"} | SCIENTIFIC,
}
FAUST_INTERNALS = {"_unacked_messages", "_committed_offset", "perform_seek", "_create_worker_consumer",
                   "_fetch_max_wait_ms"}


def imported_roots(path: Path) -> set[str]:
    """Top-level package of every import in ``path`` (module level or inside functions)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots - set(sys.stdlib_module_names) - {"__future__"}


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_the_architecture_allows(package: str) -> None:
    offenders = {str(p.relative_to(ROOT)): sorted(imported_roots(p) - ALLOWED[package])
                 for p in sources(package)}
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"{package}/ may import only {sorted(ALLOWED[package])} (docs/ARCHITECTURE.md)"


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef f():\n"
                 "    from streams.settings import Settings\n    import redis.client\n")
    assert imported_roots(f) == {"streams", "redis"}


def test_faust_internals_are_touched_only_in_faust_compat() -> None:
    allowed = ROOT / "streams" / "faust_compat.py"
    found: dict[str, set[str]] = {}
    for package in ("agents", "schemas", "streams", "bench"):
        for p in sources(package):
            if p == allowed:
                continue
            names = {n.attr for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Attribute)}
            names |= {n.id for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Name)}
            if names & FAUST_INTERNALS:
                found[str(p.relative_to(ROOT))] = names & FAUST_INTERNALS
    assert found == {}


def test_the_processor_config_comes_without_faust_kafka_or_redis() -> None:
    import subprocess

    code = ("import sys; from streams.config import processor_config; from streams.settings import Settings; "
            "processor_config(Settings()); "
            "print(sorted(m for m in ('faust', 'aiokafka', 'kafka', 'redis') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


COUNT_DISTRIBUTIONS = {"nbinom", "poisson", "nbdtrik", "nbdtri", "nbdtr", "nbdtrc", "pdtrik", "pdtr", "pdtrc",
                       "pdtri", "betainc"}


def test_count_distributions_are_used_only_in_the_quantile_module() -> None:
    allowed = ROOT / "agents" / "count_quantiles.py"
    found: dict[str, set[str]] = {}
    for package in ("agents", "schemas", "streams", "bench"):
        for p in sources(package):
            if p == allowed:
                continue
            tree = ast.parse(p.read_text())
            names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                     and not (isinstance(n.value, ast.Name) and n.value.id == "rng")}
            names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
            if names & COUNT_DISTRIBUTIONS:
                found[str(p.relative_to(ROOT))] = names & COUNT_DISTRIBUTIONS
    assert found == {}
    assert {"nbdtrik", "pdtrik"} <= {n.attr for n in ast.walk(ast.parse(allowed.read_text()))
                                     if isinstance(n, ast.Attribute)}


def test_schemas_events_is_a_facade_and_the_code_base_imports_the_defining_modules() -> None:
    """``schemas.events`` (the integrators' path) re-exports; restock's own code imports the modules."""
    import schemas
    import schemas.events as facade

    for name in facade.__all__:
        obj = getattr(facade, name)
        home = getattr(obj, "__module__", None)
        if home is not None and home.startswith("schemas.") and not name.isupper():
            assert home != "schemas.events", name  # defined in its own module, not in the facade
        assert getattr(schemas, name) is obj
    tree = ast.parse((ROOT / "schemas" / "events.py").read_text())
    assert not [n for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)]
    offenders = []
    for package in ("agents", "streams", "schemas"):
        for p in sources(package):
            if p.name == "__init__.py" and package == "schemas":
                continue
            for node in ast.walk(ast.parse(p.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module == "schemas.events":
                    offenders.append(str(p.relative_to(ROOT)))
    assert offenders == []
