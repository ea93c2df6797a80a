"""Dataset formats: the ``Format`` names and :func:`load`, which picks the loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from streams.datasets.files import read_header
from streams.datasets.generic import GENERIC_REQUIRED, load_generic
from streams.datasets.online_retail import load_online_retail
from streams.datasets.rows import Dataset

Format = Literal["online-retail", "generic", "auto"]


def detect_format(path: str | Path) -> Literal["online-retail", "generic"]:
    """Detect a file's format from its header row.

    Returns
    -------
    str
        ``"online-retail"`` when the header has ``InvoiceNo`` and ``StockCode``; ``"generic"``
        when it has ``timestamp``, ``sku`` and ``quantity`` (case-insensitive).

    Raises
    ------
    ValueError
        When neither header is recognised.

    """
    p = Path(path)
    cols = read_header(p)
    if {"InvoiceNo", "StockCode"} <= set(cols):
        return "online-retail"
    if set(GENERIC_REQUIRED) <= {c.lower() for c in cols}:
        return "generic"
    raise ValueError(f"{p}: unrecognised CSV header {cols[:10]!r}; expected the Online Retail "
                     f"columns or at least {', '.join(GENERIC_REQUIRED)}")


def load(path: str | Path, fmt: Format = "auto", **kw: Any) -> Dataset:
    """Load a dataset in the given format (``"auto"``: detected from the header row).

    Parameters
    ----------
    path : str or Path
        CSV file, plain or gzip-compressed.
    fmt : {"online-retail", "generic", "auto"}
        Format; ``"auto"`` uses :func:`detect_format`.
    **kw
        Passed to :func:`load_online_retail` or :func:`load_generic` (``skus``, ``start``,
        ``end``, ``location`` / ``default_location``).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown ``fmt`` or unrecognised header.

    """
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "online-retail":
        return load_online_retail(path, **kw)
    if fmt == "generic":
        return load_generic(path, **kw)
    raise ValueError(f"fmt must be 'online-retail', 'generic' or 'auto'; got {fmt!r}")
