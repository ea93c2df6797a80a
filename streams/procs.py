"""Process control of the local stack's services: liveness, command lines, parent-death signal."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
from pathlib import Path


def proc_state(pid: int) -> str | None:
    """Return the one-letter /proc state of ``pid`` (None when unknown / not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
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
