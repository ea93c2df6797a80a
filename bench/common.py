"""Shared helpers of the benchmark scripts: stack, topics, publishing, workers, tables, JSON.

Every script under ``bench/`` measures its figure as a ratio against a baseline run in the same
process or the same run, on the embedded stack (or on ``KAFKA_BOOTSTRAP_SERVERS``/``REDIS_URL``
when both are set). Pure helpers (percentiles, Redis Cluster slots, formatting) are unit-tested
in ``tests/unit/test_bench_common.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT = ROOT / "out" / "bench"

# --------------------------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------------------------


def percentiles(
    values: Sequence[float], qs: Sequence[float] = (50, 95, 99)
) -> dict[str, float | None]:
    """``{"p50": .., "p95": .., "p99": ..}`` of ``values`` (linear interpolation; None if empty).

    >>> percentiles([1, 2, 3, 4, 5], (50, 100))
    {'p50': 3.0, 'p100': 5.0}
    >>> percentiles([])
    {'p50': None, 'p95': None, 'p99': None}
    """
    import numpy as np

    if len(values) == 0:
        return {f"p{q:g}": None for q in qs}
    arr = np.asarray(values, dtype=float)
    return {f"p{q:g}": float(np.percentile(arr, q)) for q in qs}


def _crc16_xmodem(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key: str | bytes) -> int:
    """Redis Cluster hash slot of ``key`` (CRC16/XMODEM of the hash tag, mod 16384).

    The hash tag is the substring between the first ``{`` and the next ``}`` when non-empty.

    >>> key_slot("123456789")  # CRC16 0x31C3 from the Redis Cluster specification
    12739
    >>> key_slot("{user1000}.following") == key_slot("{user1000}.followers")
    True
    """
    raw = key.encode() if isinstance(key, str) else key
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return _crc16_xmodem(raw) % 16384


def ratio(num: float | None, den: float | None) -> float | None:
    """``num / den`` rounded to 3 decimals, or None when either is missing or ``den`` is 0.

    >>> ratio(3, 4), ratio(1, 0), ratio(None, 2)
    (0.75, None, None)
    """
    if num is None or den is None or den == 0:
        return None
    return round(num / den, 3)


def fmt(v: Any) -> str:
    """Compact human formatting of a table cell.

    >>> fmt(1234567.0), fmt(0.81234), fmt(None), fmt(True), fmt("x")
    ('1,234,567', '0.812', '-', 'yes', 'x')
    """
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.3f}"
    return str(v)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table (rich when available, else plain text)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        print(title)  # noqa: T201
        for r in [header, *rows]:
            print(" | ".join(fmt(c) for c in r))  # noqa: T201
        return
    t = Table(title=title)
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[fmt(c) for c in r])
    Console(width=160).print(t)


def write_json(path: Path | None, obj: dict[str, Any]) -> None:
    """Write ``obj`` as indented JSON (creating the directory)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def machine() -> dict[str, Any]:
    """What the numbers were measured on (CPU count and load at the start)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": round(load[0], 2) if load[0] is not None else None,
        "python": sys.version.split()[0],
    }


# --------------------------------------------------------------------------------------------
# stack, topics, events
# --------------------------------------------------------------------------------------------


@dataclass
class Env:
    """A running broker + Redis (embedded or external) and a scratch directory."""

    kafka: str
    redis_url: str
    tmp: Path
    run: str = field(default="")


@contextlib.contextmanager
def stack() -> Iterator[Env]:
    """Embedded stack on free ports (or the external services when both env vars are set)."""
    from streams.ports import free_port
    from streams.stack import LocalStack

    tmp = Path(tempfile.mkdtemp(prefix="restock-bench-"))
    kafka, redis_url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("REDIS_URL")
    st = None
    if not (kafka and redis_url):
        st = LocalStack(tmp / "stack", free_port(), free_port())
        st.up()
        kafka, redis_url = st.kafka_bootstrap, st.redis_url
    try:
        yield Env(kafka, redis_url, tmp, tmp.name.removeprefix("restock-bench-"))
    finally:
        if st is not None:
            st.down()


def security() -> Any:
    """Kafka TLS / SASL from the ``RESTOCK_KAFKA_*`` environment (:mod:`streams.clients`)."""
    from streams.clients import KafkaSecurity
    from streams.settings import Settings

    return KafkaSecurity.from_settings(Settings())


def redis_ca_file() -> Any:
    """``RESTOCK_REDIS_SSL_CA_FILE`` (for ``rediss://`` URLs), or None."""
    from streams.settings import Settings

    return Settings().redis_ssl_ca_file


def topic_set(env: Env, name: str, partitions: int) -> dict[str, str]:
    """Create run-unique input/output topics for one measured configuration."""
    from streams.kafka_admin import ensure_topics

    topics = {
        r: f"bench-{name}-{r}-{env.run}"
        for r in ("orders", "inventory", "promotions", "reorders", "dlq")
    }
    ensure_topics(env.kafka, {t: partitions for t in topics.values()}, security=security())
    return topics


def bench_settings(
    env: Env, name: str, topics: dict[str, str], partitions: int, **overrides: Any
) -> Any:
    """Settings of a measured worker: production defaults, short group timings (Tansu joins)."""
    from streams.config import run_settings
    from streams.settings import Settings

    kw: dict[str, Any] = dict(
        kafka_bootstrap_servers=env.kafka,
        redis_url=env.redis_url,
        topic_partitions=partitions,
        metrics_port=0,
        worker_data_dir=env.tmp / name,
        commit_interval_s=0.1,
        lag_refresh_interval_s=0,
    )
    kw.update(overrides)
    return run_settings(Settings(), run_id=f"bench-{name}-{env.run}", work_dir=env.tmp, topics=topics, **kw)


def online_retail_orders(n: int | None = None, start: int = 0) -> list[Any]:
    """Real cleaned Online Retail order lines as ``OrderPlaced`` events, in event-time order.

    ``n=None`` returns every line from ``start`` on (a full replay).
    """
    from schemas.events import OrderPlaced
    from streams.cli import DEFAULT_DATA
    from streams.datasets import load

    sales = load(DEFAULT_DATA).sales
    end = len(sales) if n is None else start + n
    if end > len(sales):
        raise ValueError(f"asked for {end} order lines; the shipped data has {len(sales)}")
    return [
        OrderPlaced(
            event_id=f"{r.order_id}:{i}",
            occurred_at=r.occurred_at,
            sku=r.sku,
            location=r.location,
            order_id=r.order_id,
            quantity=r.quantity,
            unit_price=r.unit_price or 0.0,
        )
        for i, r in enumerate(sales[start:end], start)
    ]


def publish(kafka: str, topic: str, events: Sequence[Any]) -> dict[tuple[str, int], int]:
    """Produce events keyed by ``sku@location`` as fast as possible; return next offsets."""
    from schemas.events import encode_event
    from streams.clients import kafka_producer

    producer = kafka_producer(kafka, security(), linger_ms=20, batch_size=256 * 1024)
    futs = [producer.send(topic, key=e.key.encode(), value=encode_event(e)) for e in events]
    producer.flush()
    targets: dict[tuple[str, int], int] = {}
    for f in futs:
        md = f.get(timeout=60)
        targets[(md.topic, md.partition)] = max(
            targets.get((md.topic, md.partition), 0), md.offset + 1
        )
    producer.close()
    return targets


# --------------------------------------------------------------------------------------------
# workers
# --------------------------------------------------------------------------------------------


class EmptyWorker:
    """A Faust worker whose agent only takes batches and acks them (``bench/empty_worker.py``).

    Same ``faust.App`` arguments and the same ``noack_take``/ack loop as the restock worker:
    the framework's ceiling on this broker.
    """

    def __init__(self, settings: Any, log_path: Path) -> None:
        from streams.workerproc import WorkerProcess

        self._w = WorkerProcess(settings, log_path)

    def start(self) -> EmptyWorker:
        from streams.workerproc import settings_env

        env = dict(os.environ)
        for k in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
            env.pop(k, None)
        env.update(settings_env(self._w.settings))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        self._w.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self._w.log_path.open("ab")
        self._w.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "empty_worker.py")],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._w, name)


def restock_worker(settings: Any, log_path: Path) -> Any:
    """A real ``restock worker`` process (``python -m streams.cli worker``) from this checkout."""
    from streams.workerproc import WorkerProcess

    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    return WorkerProcess(settings, log_path)


class GroupWatch:
    """Committed offsets of one consumer group through one long-lived admin client."""

    def __init__(self, kafka: str, group: str) -> None:
        from streams.clients import kafka_admin

        self.group = group
        self.admin = kafka_admin(kafka, security())

    def done(self, targets: dict[tuple[str, int], int]) -> int:
        """Events committed so far, counting each partition up to its target."""
        from streams.workerproc import _group_offsets

        have = _group_offsets(self.admin, self.group)
        return sum(min(max(have.get(k, 0), 0), v) for k, v in targets.items())

    def close(self) -> None:
        self.admin.close()


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (bytes; 0 when gone)."""
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:  # noqa: BLE001 - process gone or psutil missing
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when gone)."""
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except Exception:  # noqa: BLE001 - process gone or psutil missing
        return 0.0


def drain(
    workers: Sequence[Any],
    watch: GroupWatch,
    targets: dict[tuple[str, int], int],
    settle_s: float = 2.0,
    timeout_s: float = 1800.0,
) -> dict[str, Any]:
    """Start ``workers``, wait until all are ready for ``settle_s`` in a row, then measure.

    The measured window starts once the group is stable (every worker ready continuously for
    ``settle_s``; start-up and the group join are excluded) and ends when the group has
    committed every target offset. Returns events/s over the window and peak worker RSS.
    """
    for w in workers:
        w.start()
    try:
        deadline = time.monotonic() + 180
        stable_since: float | None = None
        while True:
            for w in workers:
                if w.proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {w.proc.returncode}:\n{w.log_tail()}")
            if all(w.ready() for w in workers):
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= settle_s:
                    break
            else:
                stable_since = None
            if time.monotonic() > deadline:
                raise TimeoutError(
                    "workers not ready:\n" + "\n".join(w.log_tail() for w in workers)
                )
            time.sleep(0.1)
        n = sum(targets.values())
        c0, t0 = watch.done(targets), time.perf_counter()
        cpu0 = [cpu_seconds(w.pid) for w in workers]
        peak = [0] * len(workers)
        last_rss = 0.0
        while True:
            c = watch.done(targets)
            now = time.perf_counter()
            if now - last_rss > 0.5:
                peak = [max(p, rss_bytes(w.pid)) for p, w in zip(peak, workers, strict=True)]
                last_rss = now
            if c >= n:
                break
            if now - t0 > timeout_s:
                raise TimeoutError(f"only {c}/{n} events committed after {timeout_s:.0f}s")
            time.sleep(0.05)
        dt = time.perf_counter() - t0
        cpu = [round(cpu_seconds(w.pid) - c, 2) for c, w in zip(cpu0, workers, strict=True)]
        peak = [max(p, rss_bytes(w.pid)) for p, w in zip(peak, workers, strict=True)]
        return {
            "worker_cpu_s": cpu,
            "worker_cpu_utilisation": [round(c / dt, 3) if dt > 0 else None for c in cpu],
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
            "events": n,
            "window_events": n - c0,
            "window_s": round(dt, 3),
            "events_per_s": round((n - c0) / dt, 1) if dt > 0 else None,
            "worker_rss_peak_bytes": peak,
        }
    finally:
        for w in workers:
            w.stop()
