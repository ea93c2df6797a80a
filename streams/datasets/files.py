"""File access shared by the loaders: plain or gzip CSV (detected by the magic bytes), the header row."""

from __future__ import annotations

import csv
import gc
import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def open_text(path: Path) -> Iterator[io.TextIOBase]:
    """Open a CSV as text, transparently gunzipping (by magic bytes); UTF-8 with BOM tolerated."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    raw: Any = gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="") as txt:
        yield txt


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building ~10^6 small objects.

    The loaders allocate no reference cycles; repeated gen-2 collections over the growing row
    lists would otherwise cost about a quarter of the load time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_header(path: Path) -> list[str]:
    """The CSV header row of ``path`` (plain or gzip)."""
    with open_text(path) as fh:
        row = next(csv.reader(fh), [])
    return [c.strip() for c in row]
