"""Free TCP ports on the loopback interface: the one ``free_port`` of the project.

Examples
--------
>>> p = free_port()
>>> 1024 < p < 65536 and port_bindable(p)
True
>>> free_port(exclude={p}) != p
True
"""

from __future__ import annotations

import random
import socket
from collections.abc import Collection
from pathlib import Path

HOST = "127.0.0.1"
"""The loopback address every local service binds."""


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def port_bindable(port: int, host: str = HOST) -> bool:
    """Tell whether a TCP ``port`` on ``host`` can be bound right now (``SO_REUSEADDR``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(exclude: Collection[int] = ()) -> int:
    """Return a TCP port on 127.0.0.1 that is free right now.

    Ports are drawn below the kernel's ephemeral range, so an outgoing client connection cannot
    grab the port between this call and the server binding it.

    Parameters
    ----------
    exclude : Collection[int]
        Ports not to return (e.g. one already handed out for another service).

    Returns
    -------
    int
        A bindable port number.
    """
    lo, _hi = _ephemeral_range()
    upper = min(lo - 1, 32767)
    if upper > 20000:
        for _ in range(200):
            port = random.randint(20000, upper)
            if port not in exclude and port_bindable(port):
                return port
    while True:  # fall back to the kernel's choice
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port not in exclude:
            return port
