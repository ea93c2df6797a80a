"""The actual/forecast demand ratio that scales the forecaster's moments for inventory levels.

Used by ``ProcessorConfig.demand_source="forecaster"`` (the policy before issue #17, kept for
comparison on the frontier); learned for every SKU so that switching the source needs no replay.
"""

from __future__ import annotations

from typing import Any

from agents.processor.config import ProcessorConfig
from agents.state import SkuState

__all__ = ["learn_level_ratio", "level_ratio"]


def learn_level_ratio(state: SkuState, units: float, x: dict[str, Any], alpha: float) -> None:
    """Update the SKU's ``level_ratio`` EWMAs with a closed period, before the model learns it.

    Parameters
    ----------
    state : SkuState
        The SKU (its ``level_ratio`` ``[actual, one-step forecast]``, units per period, mutated).
    units : float
        The period's demand (units).
    x : dict
        The period's features (calendar and covariates) for the one-step forecast.
    alpha : float
        EWMA weight in (0, 1] (``level_ratio_alpha``); 0 or less: nothing is learned.
    """
    if alpha > 0:
        f = state.model.forecast(1, [x])[0]
        r = state.level_ratio
        r[0] += alpha * (units - r[0])
        r[1] += alpha * (f - r[1])


def level_ratio(state: SkuState, config: ProcessorConfig) -> float:
    """Bias correction of the demand used for inventory levels (dimensionless).

    The forecaster's point forecast is tuned for accuracy (outlier-robust updating damps
    wholesale spikes, so its mean runs low on SKUs with recurring bulk orders). Inventory
    needs unbiased demand: the mean over L and L+R is scaled by the ratio of the SKU's
    recent actual demand to its recent one-step forecasts (exponentially weighted,
    ``level_ratio_alpha``), clipped to ``level_ratio_bounds``; variances by the same ratio (the
    dispersion of a negative binomial, variance/mean, is kept). 1 until the SKU has
    ``min_history_periods``.

    Parameters
    ----------
    state : SkuState
        The SKU.
    config : ProcessorConfig
        Supplies ``level_ratio_alpha``, ``level_ratio_bounds`` and ``min_history_periods``.

    Returns
    -------
    float
        The clipped ratio, or 1.0.
    """
    y, f = state.level_ratio
    if (config.level_ratio_alpha <= 0 or f <= 0
            or state.model.n_periods < config.min_history_periods):
        return 1.0
    lo, hi = config.level_ratio_bounds
    return float(min(hi, max(lo, y / f)))
