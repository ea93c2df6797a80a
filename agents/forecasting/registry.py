"""The registry of candidate models a per-SKU forecaster selects among."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from agents.forecasting.base import OnlineForecaster
from agents.forecasting.intermittent import SBA, TSB, Croston
from agents.forecasting.seasonal import RiverRegressor, SeasonalProfile

__all__ = ["CANDIDATES", "COVARIATE_TWINS", "DEFAULT_CANDIDATES", "TWIN_SUFFIX", "build_candidates"]

#: candidates that get a covariate-aware twin (``name + "+cov"``) when covariates are enabled
COVARIATE_TWINS: tuple[str, ...] = ("seasonal_sba", "seasonal_tsb", "sba", "tsb")
#: suffix of a covariate twin's name
TWIN_SUFFIX = "+cov"

#: registry of candidate models: name -> factory(season_length) -> fresh forecaster
CANDIDATES: dict[str, Callable[[int], OnlineForecaster]] = {
    "croston": lambda m: Croston(alpha=0.1),
    "sba": lambda m: SBA(alpha=0.1),
    "tsb": lambda m: TSB(alpha_demand=0.1, alpha_probability=0.1),
    "seasonal_tsb": lambda m: SeasonalProfile(base="tsb", season_length=m),
    "seasonal_sba": lambda m: SeasonalProfile(base="sba", season_length=m),
    "river_lr": lambda m: RiverRegressor(season_length=m),
}

#: default candidate set; the first one is served until ``min_periods_to_switch``
DEFAULT_CANDIDATES: tuple[str, ...] = ("seasonal_sba", "seasonal_tsb", "sba", "tsb", "river_lr")


def build_candidates(
    candidates: Sequence[str] | Mapping[str, OnlineForecaster] | None, season_length: int
) -> tuple[list[str], list[OnlineForecaster]]:
    """Names and fresh models of a forecaster's candidates.

    Parameters
    ----------
    candidates
        ``None`` for :data:`DEFAULT_CANDIDATES`, names from :data:`CANDIDATES`, or a mapping
        name -> unlearned :class:`~agents.forecasting.base.OnlineForecaster` (cloned).
    season_length
        Positions per season given to registry candidates.

    Returns
    -------
    tuple
        ``(names, models)``.

    Raises
    ------
    ValueError
        On unknown, duplicate or no candidates, or a model that is not an OnlineForecaster.
    """
    if candidates is None:
        candidates = DEFAULT_CANDIDATES
    if isinstance(candidates, Mapping):
        names = [str(k) for k in candidates]
        models = []
        for name, model in candidates.items():
            if not isinstance(model, OnlineForecaster):
                raise ValueError(
                    f"candidate {name!r} must be an OnlineForecaster (it needs a float state for "
                    f"serialization); got {type(model).__name__}."
                )
            models.append(model.clone())
    else:
        if isinstance(candidates, str):
            raise ValueError("candidates must be a sequence of names, not a single string.")
        names = list(candidates)
        unknown = [n for n in names if n not in CANDIDATES]
        if unknown:
            raise ValueError(
                f"unknown candidate names {unknown}; known names are {sorted(CANDIDATES)}."
            )
        models = [CANDIDATES[n](season_length) for n in names]
    if not names:
        raise ValueError("candidates must name at least one model.")
    if len(set(names)) != len(names):
        raise ValueError(f"candidate names must be unique; got {names}.")
    return names, models
