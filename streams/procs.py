"""Process control of the local stack's services: liveness, command lines, parent-death signal."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import time
from pathlib import Path


def proc_state(pid: int) -> str | None:
    """Return the one-letter /proc state of ``pid`` (None when unknown / not Linux)."""
    return proc_state_of(f"/proc/{pid}/stat")


def wait_stopped(pid: int, timeout_s: float = 5.0) -> bool:
    """Wait until every thread of ``pid`` is in the stopped state after a SIGSTOP.

    ``kill(SIGSTOP)`` returns before the group stop is complete: one thread of a busy process
    may still run (and answer a request) until it is scheduled again. This polls
    ``/proc/<pid>/task/*/stat`` until all threads read ``T`` (stopped) or ``t`` (traced).

    Parameters
    ----------
    pid : int
        Process id.
    timeout_s : float
        Seconds to wait.

    Returns
    -------
    bool
        True when all threads are stopped (or when /proc is not available to tell), False on
        time-out or when the process is gone.
    """
    if not Path("/proc").is_dir():
        return True
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            tasks = [t.name for t in Path(f"/proc/{pid}/task").iterdir()]
        except OSError:
            return False
        states = {proc_state_of(f"/proc/{pid}/task/{t}/stat") for t in tasks}
        if states and states <= {"T", "t"}:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def proc_state_of(stat_path: str) -> str | None:
    """The one-letter state in a /proc ``stat`` file (None when unreadable)."""
    try:
        stat = Path(stat_path).read_text()
    except OSError:
        return None
    # the command name is in parentheses and may contain spaces
    return stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else None


def proc_cmdline(pid: int) -> list[str] | None:
    """Return the command line of ``pid`` from /proc (None when unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_running(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie (reaping it when it is our child)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by somebody else
    return proc_state(pid) != "Z"


_PR_SET_PDEATHSIG = 1
_libc_prctl = None
if os.name == "posix" and Path("/proc").is_dir():
    with contextlib.suppress(OSError, AttributeError, TypeError):
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc_prctl = _libc.prctl


def die_with_parent() -> None:
    """Ask the kernel to SIGTERM this process when its parent thread exits (Linux; ``preexec_fn``)."""
    if _libc_prctl is not None:
        _libc_prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
