"""A real Redis Cluster on loopback, no Docker: N masters and R replicas each, one redis-server each.

Every node is the same ``redis-server`` binary the embedded stack uses
(:func:`streams.binaries.redis_binary`), started with ``--cluster-enabled yes``, a short
``--cluster-node-timeout`` (1000 ms by default: a killed master is voted out and its replica
promoted within a few seconds) and its ``--cluster-config-file`` in its own directory under the
state directory. The cluster is then formed the way ``redis-cli --cluster create`` does it,
with plain commands: ``CLUSTER ADDSLOTS`` (the 16384 slots split evenly over the masters),
``CLUSTER MEET`` (every node meets the first), ``CLUSTER REPLICATE`` (replica ``j`` of master
``i``), then a wait until every node reports ``cluster_state:ok`` and sees every slot served.

Nodes run memory-only (``--save ""``, ``--appendonly no``): a killed master loses what its
replica had not received yet (replication is asynchronous), which is exactly the loss the
failover test wants restock to rebuild from Kafka.

Files under ``state_dir``: ``node-<port>/`` (working directory, ``nodes.conf``),
``node-<port>.pid`` and ``node-<port>.log``; ``cluster.json`` lists the ports. :meth:`down`
removes all of them (nothing is left behind).

Examples
--------
>>> c = LocalRedisCluster(Path("/tmp/restock-doc-cluster"), ports=[17001, 17002, 17003])
>>> c.url
'redis+cluster://127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003'
>>> slot_ranges(3)
[(0, 5460), (5461, 10922), (10923, 16383)]
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.binaries import StackError, redis_binary
from streams.ports import HOST, port_bindable
from streams.procs import die_with_parent, pid_running, proc_cmdline

__all__ = ["BUS_OFFSET", "CLUSTER_SLOTS", "ClusterNodeStatus", "LocalRedisCluster", "free_cluster_port",
           "slot_ranges"]

CLUSTER_SLOTS = 16384
_POLL_S = 0.05


BUS_OFFSET = 10000
"""A node's cluster bus listens on its port + 10000 (Redis' fixed rule)."""


def free_cluster_port(exclude: set[int] | frozenset[int] = frozenset()) -> int:
    """A port ``p`` with ``p`` and its bus port ``p + 10000`` both free, in [20000, 32000).

    Below Linux' ephemeral range, so that outgoing connections do not take it meanwhile.

    Raises
    ------
    StackError
        When no such port is found after 200 tries.
    """
    import random

    rng = random.Random()
    for _ in range(200):
        p = rng.randrange(20000, 32000)
        taken = p in exclude or p + BUS_OFFSET in exclude
        if not taken and port_bindable(p) and port_bindable(p + BUS_OFFSET):
            return p
    raise StackError("no free port pair (port, port + 10000) for a cluster node")


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """Split the 16384 hash slots into ``masters`` contiguous inclusive ranges (as redis-cli does).

    Raises
    ------
    ValueError
        When ``masters`` is not in [1, 16384].
    """
    if not 1 <= masters <= CLUSTER_SLOTS:
        raise ValueError(f"a cluster needs 1..{CLUSTER_SLOTS} masters, got {masters}")
    per = CLUSTER_SLOTS / masters
    out, first = [], 0
    for i in range(masters):
        last = CLUSTER_SLOTS - 1 if i == masters - 1 else round((i + 1) * per) - 1
        out.append((first, last))
        first = last + 1
    return out


@dataclass(frozen=True)
class ClusterNodeStatus:
    """One node as ``CLUSTER NODES`` (asked of any live node) and its pid file describe it.

    Attributes
    ----------
    port : int
        TCP port on 127.0.0.1.
    pid : int or None
        Pid from the pid file.
    alive : bool
        The pid is a running redis-server of this port.
    role : str
        ``"master"``, ``"replica"``, ``"fail"`` (flagged failed by the cluster) or ``"?"``.
    slots : int
        Number of hash slots it serves (masters).
    master_port : int or None
        Port of its master (replicas).
    """

    port: int
    pid: int | None
    alive: bool
    role: str
    slots: int
    master_port: int | None


class LocalRedisCluster:
    """Start, inspect, fault and stop a local Redis Cluster.

    Parameters
    ----------
    state_dir : Path
        Directory for the nodes' directories, pid files and logs (created on :meth:`up`).
    ports : list of int, optional
        Ports of the nodes, masters first (``masters * (1 + replicas)`` of them). Read from
        ``state_dir/cluster.json`` when it exists, else free ports are picked.
    masters : int
        Number of masters (slots split evenly), default 3.
    replicas : int
        Replicas per master, default 0.
    node_timeout_ms : int
        ``cluster-node-timeout``: after this long unreachable a master is failed over.
    die_with_parent : bool
        Linux: SIGTERM the nodes when the launching thread exits (test fixtures).

    Raises
    ------
    ValueError
        When the number of ports does not match ``masters * (1 + replicas)``.
    """

    def __init__(self, state_dir: Path, ports: list[int] | None = None, masters: int = 3,
                 replicas: int = 0, node_timeout_ms: int = 1000, *, die_with_parent: bool = False) -> None:
        self.state_dir = Path(state_dir)
        saved = self._saved()
        if ports is None and saved is not None:
            ports, masters, replicas = saved["ports"], saved["masters"], saved["replicas"]
        n = masters * (1 + replicas)
        if ports is None:
            ports = []
            for _ in range(n):
                ports.append(free_cluster_port(exclude=set(ports)))
        if len(ports) != n:
            raise ValueError(f"{masters} masters x (1 + {replicas} replicas) need {n} ports, "
                             f"got {len(ports)}")
        slot_ranges(masters)
        self.ports = [int(p) for p in ports]
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = int(node_timeout_ms)
        self.die_with_parent = die_with_parent
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def __repr__(self) -> str:
        """Show the state directory, ports and shape."""
        return (f"LocalRedisCluster(state_dir={str(self.state_dir)!r}, ports={self.ports}, "
                f"masters={self.masters}, replicas={self.replicas})")

    # ---- addresses -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...`` (every node a startup node)."""
        return "redis+cluster://" + ",".join(f"{HOST}:{p}" for p in self.ports)

    def pid_path(self, port: int) -> Path:
        """Pid file of the node on ``port``."""
        return self.state_dir / f"node-{port}.pid"

    def log_path(self, port: int) -> Path:
        """Log file of the node on ``port``."""
        return self.state_dir / f"node-{port}.log"

    def node_dir(self, port: int) -> Path:
        """Working directory (``nodes.conf``) of the node on ``port``."""
        return self.state_dir / f"node-{port}"

    def pid(self, port: int) -> int | None:
        """Pid recorded for the node on ``port`` (None without a readable pid file)."""
        try:
            return int(self.pid_path(port).read_text().strip())
        except (OSError, ValueError):
            return None

    def pids(self) -> dict[int, int]:
        """``port -> pid`` of the live nodes."""
        return {p: pid for p in self.ports if (pid := self.pid(p)) is not None and self._is_ours(p, pid)}

    # ---- lifecycle -------------------------------------------------------------------------------

    def up(self, timeout_s: float = 30) -> list[ClusterNodeStatus]:
        """Start the nodes, form the cluster and wait until it serves every slot.

        Idempotent: live nodes are left alone; an already formed cluster is only waited for.

        Parameters
        ----------
        timeout_s : float
            Seconds for the whole start-up.

        Returns
        -------
        list of ClusterNodeStatus
            One per node, masters first.

        Raises
        ------
        StackError
            When a port is taken, a node exits, or the cluster is not ok within ``timeout_s``
            (the nodes started by this call are stopped again).
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "cluster.json").write_text(json.dumps(
            {"ports": self.ports, "masters": self.masters, "replicas": self.replicas}))
        deadline = time.monotonic() + timeout_s
        launched: list[int] = []
        try:
            for port in self.ports:
                pid = self.pid(port)
                if pid is not None and self._is_ours(port, pid):
                    continue
                bus = port + BUS_OFFSET
                if not (port_bindable(port) and bus < 65536 and port_bindable(bus)):
                    raise StackError(f"cannot start a cluster node: port {port} or its bus port "
                                     f"{port + BUS_OFFSET} is in use (or above 65535)")
                self._launch(port)
                launched.append(port)
            for port in self.ports:
                self._wait(lambda p=port: self._ping(p), deadline, f"node {port} to answer PING", port)
            if self._info(self.ports[0]).get("cluster_slots_assigned") != str(CLUSTER_SLOTS):
                self._form(deadline)
            self.wait_ok(max(0.1, deadline - time.monotonic()))
        except BaseException:
            if launched:
                self.down(timeout_s=5)
            raise
        return self.status()

    def _form(self, deadline: float) -> None:
        masters, rest = self.ports[: self.masters], self.ports[self.masters:]
        for port, (first, last) in zip(masters, slot_ranges(self.masters), strict=True):
            self._cmd(port, "CLUSTER", "ADDSLOTS", *range(first, last + 1))
        for port in self.ports[1:]:
            self._cmd(port, "CLUSTER", "MEET", HOST, self.ports[0])
        ids = {p: self._cmd(p, "CLUSTER", "MYID").decode() for p in masters}
        for j, port in enumerate(rest):
            master = masters[j % self.masters]
            # a replica can only follow a master it already knows (gossip after MEET)
            self._wait(lambda p=port, m=master: ids[m].encode() in self._cmd(p, "CLUSTER", "NODES"),
                       deadline, f"node {port} to learn master {master}", port)
            self._cmd(port, "CLUSTER", "REPLICATE", ids[master])

    def wait_ok(self, timeout_s: float = 30) -> None:
        """Wait until every live node says ``cluster_state:ok`` and every slot is served.

        Raises
        ------
        StackError
            On timeout.
        """
        deadline = time.monotonic() + timeout_s

        def ok() -> bool:
            live = list(self.pids())
            return bool(live) and all(
                (i := self._info(p)).get("cluster_state") == "ok"
                and i.get("cluster_slots_ok") == str(CLUSTER_SLOTS) for p in live)

        self._wait(ok, deadline, "cluster_state:ok on every node", self.ports[0])

    def wait_replicas_synced(self, timeout_s: float = 30) -> None:
        """Wait until every replica's link to its master is up (``master_link_status:up``).

        Raises
        ------
        StackError
            On timeout.
        """
        deadline = time.monotonic() + timeout_s

        def synced() -> bool:
            for p in self.pids():
                info = self._info(p, "replication")
                if info.get("role") == "slave" and info.get("master_link_status") != "up":
                    return False
            return True

        self._wait(synced, deadline, "replicas in sync", self.ports[0])

    def down(self, timeout_s: float = 10) -> None:
        """Stop every node (SIGTERM, then SIGKILL) and remove pid files and node directories.

        Raises
        ------
        StackError
            When a node survives SIGKILL.
        """
        victims = {p: pid for p in self.ports if (pid := self.pid(p)) is not None and self._is_ours(p, pid)}
        for pid in victims.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
                os.kill(pid, signal.SIGCONT)
        alive = self._wait_exit(victims, time.monotonic() + timeout_s)
        for pid in alive.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        alive = self._wait_exit(alive, time.monotonic() + 5)
        if alive:
            raise StackError(f"cluster nodes survived SIGKILL: {alive}")
        for port in self.ports:
            self.pid_path(port).unlink(missing_ok=True)
            self.log_path(port).unlink(missing_ok=True)
            shutil.rmtree(self.node_dir(port), ignore_errors=True)
            self._procs.pop(port, None)
        (self.state_dir / "cluster.json").unlink(missing_ok=True)

    def kill(self, port: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the node on ``port`` and (for SIGKILL) wait until it has exited.

        Raises
        ------
        StackError
            When the node is not running or does not exit within 10 s.
        """
        pid = self.pid(port)
        if pid is None or not self._is_ours(port, pid):
            raise StackError(f"cluster node {port} is not running")
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            if self._wait_exit({port: pid}, time.monotonic() + 10):
                raise StackError(f"cluster node {port} (pid {pid}) did not exit")
            # a node killed on purpose is not a crash: the waits (wait_ok) watch the others only
            self._procs.pop(port, None)

    # ---- inspection ------------------------------------------------------------------------------

    def status(self) -> list[ClusterNodeStatus]:
        """Every node: pid, liveness, role and slots as the cluster sees it (``CLUSTER NODES``)."""
        live = self.pids()
        view: dict[int, tuple[str, int, int | None]] = {}
        for port in live:
            try:
                view = _parse_nodes(self._cmd(port, "CLUSTER", "NODES").decode())
                break
            except Exception:  # noqa: BLE001, S112 - ask the next node
                continue
        out = []
        for port in self.ports:
            role, slots, master = view.get(port, ("?", 0, None))
            out.append(ClusterNodeStatus(port, self.pid(port), port in live, role, slots, master))
        return out

    def master_ports(self) -> list[int]:
        """Ports of the live masters that serve slots (as the cluster sees it now)."""
        return [s.port for s in self.status() if s.alive and s.role == "master" and s.slots]

    def replica_of(self, master_port: int) -> list[int]:
        """Ports of the live replicas of ``master_port``."""
        return [s.port for s in self.status()
                if s.alive and s.role == "replica" and s.master_port == master_port]

    # ---- internals -------------------------------------------------------------------------------

    def _saved(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.state_dir / "cluster.json").read_text())
        except (OSError, ValueError):
            return None

    def _command(self, port: int) -> list[str]:
        return [redis_binary(), "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
                "--dir", str(self.node_dir(port).resolve()), "--daemonize", "no",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                # always fail over to a replica, however long it was cut off (loopback tests)
                "--cluster-replica-validity-factor", "0"]

    def _launch(self, port: int) -> None:
        self.node_dir(port).mkdir(parents=True, exist_ok=True)
        cmd = self._command(port)
        with self.log_path(port).open("ab") as log:
            log.write(f"==== {datetime.now(UTC).isoformat(timespec='seconds')} restock cluster: "
                      f"{' '.join(cmd)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.node_dir(port), close_fds=True, start_new_session=True,
                                        preexec_fn=die_with_parent if self.die_with_parent else None)
            except OSError as exc:
                raise StackError(f"cannot start cluster node {port}: {cmd[0]}: {exc}") from exc
        self._procs[port] = proc
        tmp = self.pid_path(port).with_suffix(".pid.tmp")
        tmp.write_text(f"{proc.pid}\n")
        tmp.replace(self.pid_path(port))

    def _is_ours(self, port: int, pid: int) -> bool:
        proc = self._procs.get(port)
        if proc is not None and proc.pid == pid:
            return proc.poll() is None
        if not pid_running(pid):
            return False
        cmdline = proc_cmdline(pid)
        return cmdline is None or ("redis" in " ".join(cmdline) and str(port) in " ".join(cmdline))

    def _client(self, port: int) -> Any:
        from streams.clients import redis_client

        return redis_client(f"redis://{HOST}:{port}/0", socket_timeout=2, socket_connect_timeout=1)

    def _cmd(self, port: int, *args: Any) -> Any:
        client = self._client(port)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def _ping(self, port: int) -> bool:
        try:
            return bool(self._cmd(port, "PING"))
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def _info(self, port: int, section: str = "cluster") -> dict[str, str]:
        try:
            args = ("CLUSTER", "INFO") if section == "cluster" else ("INFO", section)
            raw = self._cmd(port, *args)
        except Exception:  # noqa: BLE001 - a dead or starting node has no info
            return {}
        if isinstance(raw, dict):
            return {str(k): str(v) for k, v in raw.items()}
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def _wait(self, cond: Any, deadline: float, what: str, port: int) -> None:
        while not cond():
            for p, proc in self._procs.items():
                if proc.poll() is not None:
                    raise StackError(f"cluster node {p} exited with code {proc.returncode}" + self._tail(p))
            if time.monotonic() > deadline:
                raise StackError(f"timed out waiting for {what}" + self._tail(port))
            time.sleep(_POLL_S)

    def _wait_exit(self, pids: dict[int, int], deadline: float) -> dict[int, int]:
        alive = dict(pids)
        while alive:
            for port, pid in list(alive.items()):
                proc = self._procs.get(port)
                mine = proc is not None and proc.pid == pid
                done = proc.poll() is not None if mine else not pid_running(pid)  # type: ignore[union-attr]
                if done:
                    del alive[port]
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(_POLL_S)
        return alive

    def _tail(self, port: int) -> str:
        try:
            lines = self.log_path(port).read_text(errors="replace").strip().splitlines()[-20:]
        except OSError:
            return ""
        return f"\n--- last lines of {self.log_path(port)} ---\n" + "\n".join(lines)


def _parse_nodes(text: str) -> dict[int, tuple[str, int, int | None]]:
    """``port -> (role, slot count, master port)`` from a ``CLUSTER NODES`` reply."""
    rows = [line.split() for line in text.strip().splitlines() if line.strip()]
    port_of = {r[0]: int(r[1].split("@")[0].rsplit(":", 1)[1]) for r in rows}
    out: dict[int, tuple[str, int, int | None]] = {}
    for r in rows:
        flags = r[2].split(",")
        role = ("fail" if "fail" in flags else "master" if "master" in flags
                else "replica" if "slave" in flags else "?")
        slots = 0
        for part in r[8:]:
            if part.startswith("["):
                continue  # a slot being migrated
            first, _, last = part.partition("-")
            slots += int(last or first) - int(first) + 1
        out[port_of[r[0]]] = (role, slots, port_of.get(r[3]) if r[3] != "-" else None)
    return out
