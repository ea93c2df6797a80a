"""Wire-level health probes of a Kafka-protocol broker and of Redis (no client libraries).

Used by the local stack (``restock stack status``) and by the worker's readiness page
(:mod:`streams.health`): fast, dependency-free checks that the service answers.

* Kafka: an ``ApiVersions`` v0 followed by a ``Metadata`` v0 request (at least one broker must
  be advertised);
* Redis: ``PING`` must answer ``+PONG`` (``-LOADING`` while an AOF is replayed is "not yet").
"""

from __future__ import annotations

import socket
import struct


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by peer")
        buf += chunk
    return bytes(buf)


def _kafka_request(
    sock: socket.socket, api_key: int, version: int, corr: int, body: bytes
) -> bytes:
    client_id = b"restock-stack-probe"
    header = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    if size < 4 or size > 64 * 1024 * 1024:
        raise ConnectionError(f"implausible Kafka response size {size}")
    data = _recv_exact(sock, size)
    (got,) = struct.unpack(">i", data[:4])
    if got != corr:
        raise ConnectionError(f"correlation id mismatch ({got} != {corr})")
    return data[4:]


def probe_kafka(host: str, port: int, timeout_s: float = 1.0) -> tuple[bool, str]:
    """Ask a Kafka-protocol broker for ApiVersions and cluster metadata.

    Parameters
    ----------
    host : str
        Broker host.
    port : int
        Broker port.
    timeout_s : float
        Connect and per-read timeout in seconds.

    Returns
    -------
    tuple[bool, str]
        ``(True, "brokers: host:port, ...")`` when the broker answered both requests,
        otherwise ``(False, reason)``.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            resp = _kafka_request(sock, 18, 0, 1, b"")  # ApiVersions v0
            (err,) = struct.unpack(">h", resp[:2])
            if err != 0:
                return False, f"ApiVersions error code {err}"
            resp = _kafka_request(sock, 3, 0, 2, struct.pack(">i", 0))  # Metadata v0, all topics
            (n_brokers,) = struct.unpack(">i", resp[:4])
            pos, brokers = 4, []
            for _ in range(n_brokers):
                (_node, hlen) = struct.unpack(">ih", resp[pos : pos + 6])
                bhost = resp[pos + 6 : pos + 6 + hlen].decode()
                (bport,) = struct.unpack(">i", resp[pos + 6 + hlen : pos + 10 + hlen])
                brokers.append(f"{bhost}:{bport}")
                pos += 10 + hlen
            if not brokers:
                return False, "metadata lists no broker"
            return True, "brokers: " + ", ".join(brokers)
    except (OSError, ConnectionError, struct.error, UnicodeDecodeError) as exc:
        return False, f"no answer from {host}:{port} ({type(exc).__name__}: {exc})"


def probe_redis(host: str, port: int, timeout_s: float = 1.0) -> tuple[bool, str]:
    """Send ``PING`` to a Redis server.

    Parameters
    ----------
    host : str
        Redis host.
    port : int
        Redis port.
    timeout_s : float
        Connect and read timeout in seconds.

    Returns
    -------
    tuple[bool, str]
        ``(True, "PONG")`` when it answered ``+PONG``, otherwise ``(False, reason)`` (e.g. the
        ``-LOADING`` error while an append-only file is replayed).
    """
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            buf = b""
            while not buf.endswith(b"\r\n"):
                chunk = sock.recv(256)
                if not chunk:
                    raise ConnectionError("connection closed by peer")
                buf += chunk
    except (OSError, ConnectionError) as exc:
        return False, f"no answer from {host}:{port} ({type(exc).__name__}: {exc})"
    line = buf.decode(errors="replace").strip()
    if line == "+PONG":
        return True, "PONG"
    return False, f"PING answered {line!r}"
