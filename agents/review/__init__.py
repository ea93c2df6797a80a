"""The period review over many SKUs at once: a vectorised kernel and the pipeline's sweep.

* :mod:`agents.review.kernel`: pure functions on column arrays (one entry per SKU that closes a
  period): the policy levels, the projections, the overstock check and the decide masks, equal
  float for float to the scalar path (:mod:`agents.policy`, :mod:`agents.processor.decisions`).
* :mod:`agents.review.sweep`: :class:`PeriodReview`, which closes and learns the due SKUs'
  periods one by one (the forecasters learn per SKU), gathers the review inputs column-wise,
  calls the kernel once per policy group and applies the decisions to the states.
"""

from __future__ import annotations

from agents.review.kernel import (
    DecideMasks,
    LevelColumns,
    OverstockColumns,
    ProjectionColumns,
    decide_masks,
    level_columns,
    order_quantities,
    overstock_columns,
    projection_columns,
    z_for_fill_rates,
)

__all__ = [
    "DecideMasks",
    "LevelColumns",
    "OverstockColumns",
    "ProjectionColumns",
    "decide_masks",
    "level_columns",
    "order_quantities",
    "overstock_columns",
    "projection_columns",
    "z_for_fill_rates",
]
