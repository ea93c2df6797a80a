"""Per-SKU online probabilistic demand forecasting on River's ``Forecaster`` protocol.

Candidates (:data:`CANDIDATES`): Croston, SBA, TSB (intermittent demand), SeasonalProfile
(intermittent level times a day-of-week profile) and RiverRegressor (River linear regression on
seasonal/level features). :class:`DemandForecaster` runs them side by side, serves the one with
the lowest decayed one-step MAE and produces calibrated negative-binomial quantiles;
:func:`encode` / :func:`decode` store it compactly without pickle.

Examples
--------
>>> from agents.forecasting import DemandForecaster, encode, decode
>>> f = DemandForecaster()
>>> for t in range(28):
...     f.learn_one([5, 0, 3, 0, 4, 0, 0][t % 7], {"season_pos": t % 7})
>>> [round(v, 1) for v in decode(encode(f)).forecast(3)] == [round(v, 1) for v in f.forecast(3)]
True

"""

from __future__ import annotations

from agents.forecasting.base import OnlineForecaster
from agents.forecasting.distribution import ForecastDistribution
from agents.forecasting.intermittent import SBA, TSB, Croston
from agents.forecasting.seasonal import RiverRegressor, SeasonalProfile
from agents.forecasting.selection import (
    CANDIDATES,
    DEFAULT_CANDIDATES,
    FORMAT_VERSION,
    DemandForecaster,
)
from agents.forecasting.serialization import decode, encode

__all__ = [
    "CANDIDATES",
    "DEFAULT_CANDIDATES",
    "FORMAT_VERSION",
    "SBA",
    "TSB",
    "Croston",
    "DemandForecaster",
    "ForecastDistribution",
    "OnlineForecaster",
    "RiverRegressor",
    "SeasonalProfile",
    "decode",
    "encode",
]
