"""Covariate features of a SKU's periods: calendar, planned price/promotions, realised price/promotion share.

The definitions are in the :mod:`agents.processor` docstring ("Covariates"); the forecaster
side (how features move the forecast) is :mod:`agents.forecasting.covariates`.
"""

from __future__ import annotations

import math
from typing import Any

from agents.demand import period_seconds, period_start, season_length, season_position
from agents.forecasting.covariates import PROMO_KINDS
from agents.processor.config import ProcessorConfig
from agents.state import SkuState
from schemas.inputs import OrderPlaced

__all__ = ["CovariateFeatures", "dead_zone"]


class CovariateFeatures:
    """Features ``x`` of a SKU's periods for learning (realised) and forecasting (planned).

    Parameters
    ----------
    config : ProcessorConfig
        Period (``freq``), season length, covariate names and the reference-price smoothing.
    """

    def __init__(self, config: ProcessorConfig) -> None:
        self.config = config
        self._step = period_seconds(config.freq)
        self._season = config.season_length or season_length(config.freq)
        self._names = config.covariate_names

    def calendar(self, start: int) -> dict[str, Any]:
        """Calendar features of the period starting at ``start`` (``season_pos``)."""
        return {"season_pos": season_position(self.config.freq, start) % self._season}

    def planned_covariates(self, state: SkuState, start: int) -> dict[str, float]:
        """Planned covariates of the period ``[start, start + period)`` (non-zero ones only).

        Overlap-weighted over the SKU's plans: ``promo_<kind>`` is the share of the period the
        promotions of that kind cover (at most 1); ``log_price_ratio`` the overlap-weighted
        ``log(planned price / reference price)`` (planned ``unit_price``, else
        ``reference * (1 - depth)``); extras the overlap-weighted planned values. Without a
        plan or a reference price: no price effect.
        """
        out: dict[str, float] = {}
        if not state.promotions:
            return out
        end = start + self._step
        ref = state.reference_price
        for _pid, plan in sorted(state.promotions.items()):
            vf, vt = plan.valid_from, plan.valid_to
            price, depth, kind = plan.unit_price, plan.depth, plan.kind
            ov = (min(int(vt), end) - max(int(vf), start)) / self._step
            if ov <= 0.0:
                continue
            if kind in PROMO_KINDS:
                k = f"promo_{kind}"
                out[k] = min(1.0, out.get(k, 0.0) + ov)
            planned = float(price) if float(price) >= 0.0 else (
                ref * (1.0 - float(depth)) if float(depth) > 0.0 else ref)
            if ref > 0.0 and planned > 0.0:
                lpr = dead_zone(math.log(planned / ref))
                if lpr:
                    out["log_price_ratio"] = out.get("log_price_ratio", 0.0) + ov * lpr
            extras = plan.covariates or {}
            for name, v in sorted(extras.items()):
                if name in self._names and float(v):
                    out[name] = out.get(name, 0.0) + ov * float(v)
        return {k: v for k, v in out.items() if v}

    def period_features(self, state: SkuState, start: int, horizon: int) -> list[dict[str, Any]]:
        """Features ``xs`` of the ``horizon`` periods from ``start``: calendar + planned covariates.

        Without covariates (config off, or a SKU whose forecaster has none) only the calendar.
        """
        if not (self.config.covariates and state.model.covariates_enabled):
            return [self.calendar(start + i * self._step) for i in range(horizon)]
        xs = []
        for i in range(horizon):
            p = start + i * self._step
            xs.append({**self.calendar(p), **self.planned_covariates(state, p)})
        return xs

    def record_sale(self, state: SkuState, event: OrderPlaced, t: int) -> None:
        """Add an order to its period's ``[priced units, revenue, promotion units]`` (``period_sales``)."""
        p = period_start(self.config.freq, t)
        row = state.period_sales.setdefault(p, [0.0, 0.0, 0.0])
        if event.unit_price > 0.0:
            row[0] += event.quantity
            row[1] += event.quantity * event.unit_price
        if event.promo:
            row[2] += event.quantity

    def realised_covariates(self, state: SkuState, start: int, units: float) -> dict[str, float]:
        """Covariates of a closed period: realised price and promotion share, plan for the rest.

        Also updates the SKU's reference (regular) price: a regular period's price (promotion
        share under one half) raises it at once and lowers it by ``reference_price_alpha`` of
        the difference (a running upper envelope with slow decay: temporary price cuts barely
        move it, permanent changes are tracked; cf. the modal regular price of Hosken & Reiffen
        2004, Patterns of retail price variation, RAND J. Econ. 35(1)).
        """
        plan = self.planned_covariates(state, start)
        sales = state.period_sales.pop(start, None)
        feats = {k: v for k, v in plan.items() if k != "log_price_ratio"}
        ref = state.reference_price
        price = sales[1] / sales[0] if sales and sales[0] > 0.0 else None
        share = min(1.0, sales[2] / units) if sales and units > 0.0 else 0.0
        if share > 0.0:
            kinds = [k for k in feats if k.startswith("promo_")]
            k = kinds[0] if kinds else "promo_discount"
            feats[k] = max(feats.get(k, 0.0), share)
        if price is not None and ref > 0.0:
            lpr = dead_zone(math.log(price / ref))
            if lpr:
                feats["log_price_ratio"] = lpr
        if price is not None and share < 0.5:
            if ref <= 0.0 or price > ref:
                state.reference_price = price
            else:
                state.reference_price = ref + self.config.reference_price_alpha * (price - ref)
        elif price is not None and ref <= 0.0:
            state.reference_price = price
        return {k: v for k, v in feats.items() if v}


def dead_zone(v: float, eps: float = 0.005) -> float:
    """0 for ``|v| < eps`` (price differences under 0.5 % are rounding, not a price change)."""
    return 0.0 if abs(v) < eps else v
