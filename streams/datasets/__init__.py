"""Input data for ``restock backtest`` / ``restock demo``: CSV loaders, cleaning and period grids.

Two formats are read (plain or gzip-compressed, detected by the gzip magic bytes, not the
file name):

* ``online-retail`` -- the UCI *Online Retail* invoice lines (Chen, Sain & Guo 2012; see
  ``data/online_retail/README.md``), cleaned by :func:`load_online_retail`;
* ``generic`` -- one order line per row with ``timestamp,sku,quantity`` and optional
  ``location,unit_price,promo,order_id,customer_id`` and numeric ``x_*`` covariates, read by
  :func:`load_generic`.

Both return a :class:`Dataset`: demand lines (:class:`SaleRow`, sorted by event time),
cancellations/returns (:class:`ReturnRow`, kept apart: a cancellation is not negative demand)
and a :class:`CleaningReport` that accounts for every input row exactly once.

This module needs only the standard library (``csv``, ``gzip``, ``zoneinfo``) plus numpy for
:func:`demand_matrix`; pandas is not used. The 541,909-row Online Retail file loads in about
two seconds.

The period helpers (:func:`period_floor`, :func:`period_delta`, :func:`season_length`) use the
same UTC grid as :mod:`agents.demand`: hours, days, and weeks starting Monday 00:00 UTC.

Modules (one reason to change each); this package re-exports their public names:

* :mod:`streams.datasets.rows`: :class:`SaleRow`, :class:`ReturnRow`, :class:`CleaningReport`,
  :class:`Dataset`;
* :mod:`streams.datasets.online_retail`: :func:`load_online_retail` and its cleaning rules;
* :mod:`streams.datasets.generic`: :func:`load_generic`;
* :mod:`streams.datasets.formats`: :func:`detect_format`, :func:`load` (picks the loader);
* :mod:`streams.datasets.files`, :mod:`streams.datasets.finish`: file access and the
  post-processing shared by the loaders (window, top-N SKUs, sorting);
* :mod:`streams.datasets.periods`: the period helpers;
* :mod:`streams.datasets.matrix`: :class:`DemandMatrix`, :func:`demand_matrix` (the panel of
  SKUs x periods).
"""

from __future__ import annotations

from streams.datasets.formats import Format, detect_format, load
from streams.datasets.generic import GENERIC_REQUIRED, load_generic
from streams.datasets.matrix import DemandMatrix, demand_matrix
from streams.datasets.online_retail import (
    NON_PRODUCT_CODES,
    NON_PRODUCT_PREFIXES,
    ONLINE_RETAIL_COLUMNS,
    load_online_retail,
)
from streams.datasets.periods import period_delta, period_floor, season_length
from streams.datasets.rows import CleaningReport, Dataset, ReturnRow, SaleRow

__all__ = [
    "GENERIC_REQUIRED",
    "NON_PRODUCT_CODES",
    "NON_PRODUCT_PREFIXES",
    "ONLINE_RETAIL_COLUMNS",
    "CleaningReport",
    "Dataset",
    "DemandMatrix",
    "Format",
    "ReturnRow",
    "SaleRow",
    "demand_matrix",
    "detect_format",
    "load",
    "load_generic",
    "load_online_retail",
    "period_delta",
    "period_floor",
    "season_length",
]
