"""Compact, versioned, pickle-free serialization of :class:`DemandForecaster`.

Layout of ``encode(model)``::

    byte 0      format version (``FORMAT_VERSION``)
    bytes 1..   msgpack array [params, candidates, state]
                params      [season_length, error_decay, min_periods_to_switch,
                             quantile_levels, variance_decay, calibration_rate,
                             robust, huber_k, switch_margin, total_window,
                             total_calibration_rate]
                candidates  nil (default set) | [name, ...] (registry names) |
                            [[name, class name, constructor params], ...]
                state       little-endian float64 bytes: selector state then each candidate's
                            state vector, in candidate order

Version 3 (this build, written only for a forecaster with covariates) appends a fourth element
``[covariate names, twin source indices]`` and, after the candidates' state vectors (twins
included, in candidate order), the covariate statistics (residual variance, count, information
matrix, score vector). A forecaster without covariates is still written as version 2, byte for
byte as before, and version-2 bytes decode as before.

Version 2 added the robust-updating, hysteresis and total-calibration parameters and,
in the selector state, the robust size and scale, the warm-up count, the total-inflation EWMAs,
the calibrated total levels and the ``total_window``-long ring buffers (demand, issued window
mean, variance, inflation and total levels); version-1 bytes are rejected (re-learn the SKU).

Every float is stored as its exact IEEE-754 bit pattern, so a decoded model forecasts and keeps
learning exactly like the original. A default-configured SKU takes about 1 KB.
"""

from __future__ import annotations

import math
import struct

import msgpack
import numpy as np

from agents.forecasting.base import OnlineForecaster
from agents.forecasting.intermittent import SBA, TSB, Croston
from agents.forecasting.seasonal import RiverRegressor, SeasonalProfile
from agents.forecasting.selection import FORMAT_VERSION, PLAIN_FORMAT_VERSION, DemandForecaster

__all__ = ["encode", "decode", "FORMAT_VERSION"]

_CLASSES: dict[str, type[OnlineForecaster]] = {
    cls.__name__: cls for cls in (Croston, SBA, TSB, SeasonalProfile, RiverRegressor)
}
_DTYPE = np.dtype("<f8")


def encode(model: DemandForecaster) -> bytes:
    """Serialize a forecaster (parameters and learned state) to bytes.

    Parameters
    ----------
    model
        The forecaster to serialize.

    Returns
    -------
    bytes
        Version byte followed by a msgpack document (about 1 KB with the default candidates).

    Raises
    ------
    ValueError
        When ``model`` is not a :class:`DemandForecaster` or a custom candidate is not one of
        restock's candidate classes.

    Examples
    --------
    >>> from agents.forecasting import DemandForecaster
    >>> f = DemandForecaster()
    >>> for y in [3, 0, 0, 5, 1, 0, 0]:
    ...     f.learn_one(y)
    >>> blob = encode(f)
    >>> blob[0], len(blob) < 1500
    (2, True)
    >>> decode(blob).forecast_distribution(7) == f.forecast_distribution(7)
    True
    >>> _ = f.enable_covariates()
    >>> f.learn_one(9, {"promo_display": 1.0})
    >>> blob = encode(f)
    >>> blob[0], decode(blob).forecast(2, [{}, {"promo_display": 1.0}]) == f.forecast(
    ...     2, [{}, {"promo_display": 1.0}])
    (3, True)

    """
    if not isinstance(model, DemandForecaster):
        raise ValueError(f"encode expects a DemandForecaster; got {type(model).__name__}.")
    spec = model.candidates
    if spec is None:
        cands = None
    elif isinstance(spec, dict) or hasattr(spec, "items"):
        cands = []
        k0 = len(model._models) - len(model._twin_sources)
        for name, cand in zip(model._names[:k0], model._models[:k0], strict=True):
            cls = type(cand).__name__
            if _CLASSES.get(cls) is not type(cand):
                raise ValueError(f"candidate {name!r} has unsupported class {cls}.")
            cands.append([name, cls, cand._get_params()])
    else:
        cands = list(model._names[: len(model._models) - len(model._twin_sources)])
    params = [
        model.season_length,
        model.error_decay,
        model.min_periods_to_switch,
        list(model.quantile_levels),
        model.variance_decay,
        model.calibration_rate,
        model.robust,
        model.huber_k,
        model.switch_margin,
        model.total_window,
        model.total_calibration_rate,
    ]
    # little-endian IEEE-754 float64 (struct "<d" packs the same bits as numpy's "<f8")
    values = model._selector_state()
    for m in model._models:
        values += m.state_values()
    cov = model.covariate_effects
    if cov is None:
        state = struct.pack(f"<{len(values)}d", *values)
        return bytes([PLAIN_FORMAT_VERSION]) + msgpack.packb([params, cands, state],
                                                             use_bin_type=True)
    values += np.asarray(cov.state(), dtype=_DTYPE).tolist()
    state = struct.pack(f"<{len(values)}d", *values)
    extra = [list(cov.names), list(model._twin_sources)]
    return bytes([FORMAT_VERSION]) + msgpack.packb([params, cands, state, extra],
                                                   use_bin_type=True)


def decode(data: bytes) -> DemandForecaster:
    r"""Rebuild a forecaster from :func:`encode`'s bytes.

    Parameters
    ----------
    data
        Bytes produced by :func:`encode`.

    Returns
    -------
    DemandForecaster
        A forecaster equal in parameters and learned state to the encoded one.

    Raises
    ------
    ValueError
        On an unknown format version or corrupt / truncated bytes.

    Examples
    --------
    >>> decode(b"\x09abc")
    Traceback (most recent call last):
    ...
    ValueError: unknown forecaster format version 9; this build reads versions 2 and 3.

    """
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) < 2:
        raise ValueError("forecaster bytes are empty or not bytes; cannot decode.")
    data = bytes(data)
    if data[0] not in (PLAIN_FORMAT_VERSION, FORMAT_VERSION):
        raise ValueError(
            f"unknown forecaster format version {data[0]}; this build reads versions "
            f"{PLAIN_FORMAT_VERSION} and {FORMAT_VERSION}."
        )
    try:
        doc = msgpack.unpackb(data[1:], raw=False, strict_map_key=True)
        extra = None
        if data[0] == FORMAT_VERSION:
            params, cands, state, extra = doc
        else:
            params, cands, state = doc
        (season_length, error_decay, min_periods, levels, variance_decay, calibration, robust,
         huber_k, switch_margin, total_window, total_rate) = params
        if not isinstance(robust, bool):
            raise ValueError(f"robust must be a bool; got {robust!r}")
        if cands is not None and cands and isinstance(cands[0], list):
            candidates: object = {
                name: _CLASSES[cls](**kwargs) for name, cls, kwargs in cands
            }
        else:
            candidates = cands
        model = DemandForecaster(
            candidates=candidates,  # type: ignore[arg-type]
            season_length=season_length,
            error_decay=error_decay,
            min_periods_to_switch=min_periods,
            quantile_levels=tuple(levels),
            variance_decay=variance_decay,
            calibration_rate=calibration,
            robust=robust,
            huber_k=huber_k,
            switch_margin=switch_margin,
            total_window=total_window,
            total_calibration_rate=total_rate,
        )
        if extra is not None:
            names, twins = extra
            model.enable_covariates([str(n) for n in names], [int(i) for i in twins])
        if not isinstance(state, bytes) or len(state) % 8:
            raise ValueError("state is not a float64 byte string")
        values = list(struct.unpack(f"<{len(state) // 8}d", state))  # = np.frombuffer(<f8).tolist()
        offset = model._selector_state_size
        sizes = [m.state_size for m in model._models]
        cov = model.covariate_effects
        cov_size = 0 if cov is None else cov.state_size
        if len(values) != offset + sum(sizes) + cov_size:
            raise ValueError(
                f"state holds {len(values)} floats, expected {offset + sum(sizes) + cov_size}")
        if not all(map(math.isfinite, values)):
            raise ValueError("state holds non-finite floats")
        model._load_selector_state(values[:offset])
        for m, size in zip(model._models, sizes, strict=True):
            m.load_state(values[offset : offset + size])
            offset += size
        if cov is not None:
            cov.load_state(np.asarray(values[offset:], dtype=_DTYPE))
    except (ValueError, TypeError, KeyError, IndexError, msgpack.exceptions.ExtraData,
            msgpack.exceptions.UnpackException) as exc:
        raise ValueError(f"corrupt forecaster bytes: {exc}") from exc
    return model
