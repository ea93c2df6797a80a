"""Process control helpers of the local stack (real child processes, Linux /proc)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streams.procs import proc_state, wait_stopped

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")

# a child with several busy threads: a group stop must catch every one of them
_BUSY = """
import threading
def spin():
    while True:
        pass
for _ in range(3):
    threading.Thread(target=spin, daemon=True).start()
print("up", flush=True)
spin()
"""


def test_wait_stopped_waits_for_every_thread() -> None:
    child = subprocess.Popen([sys.executable, "-c", _BUSY], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        assert not wait_stopped(child.pid, timeout_s=0.05)  # running threads: not stopped
        os.kill(child.pid, signal.SIGSTOP)
        assert wait_stopped(child.pid, timeout_s=5)
        tasks = list(Path(f"/proc/{child.pid}/task").iterdir())
        assert len(tasks) >= 4
        assert {proc_state(child.pid)} <= {"T", "t"}
        for t in tasks:
            assert (t / "stat").read_text().rsplit(")", 1)[-1].split()[0] in {"T", "t"}
        os.kill(child.pid, signal.SIGCONT)
        assert not wait_stopped(child.pid, timeout_s=0.05)
    finally:
        child.kill()
        child.wait()
    assert not wait_stopped(child.pid, timeout_s=0.05)  # gone: not "stopped"
