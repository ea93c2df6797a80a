"""The period review of a partition's due SKUs: close and learn one by one, decide column-wise.

:class:`PeriodReview` is what :meth:`agents.pipeline.Pipeline._advance_partition` calls when the
partition's watermark crosses a period boundary (``Pipeline(column_review=True)``, the default).
For the SKUs whose open period the watermark closed it

1. closes and learns their periods one SKU at a time (:meth:`SkuProcessor.close_periods`: the
   forecasters learn per SKU, as on the scalar path);
2. gathers the review inputs of the SKUs that are decided (those with
   :attr:`DecisionMaker.first_decision_periods` learned) column-wise: the demand moments the
   levels read (:meth:`LevelsDeriver.window_moments`), the inventory position, the open
   suggestion and overstock;
3. calls the kernel (:mod:`agents.review.kernel`) once per policy group (SKUs sharing their
   :class:`PolicyParams` object, :meth:`LevelsDeriver.params_for`: defaults, overrides file and
   run-time policy): levels, decide masks;
4. computes the full-horizon forecast moments only for the SKUs that reorder or may be
   overstocked, their projections and overstock checks in one kernel call each;
5. applies to each state, in the partition's order, exactly what :meth:`DecisionMaker.decide`
   applies: the derived cache (``state.derived``, so the SKU's next event reuses the levels),
   expiry of the open suggestion, the ``ReorderSuggested`` / ``OverstockDetected`` (built by
   :class:`DecisionMaker`, deterministic ids), the counters and ``liveness_violations``.

The states, decision events and their order are byte-identical to
:meth:`SkuProcessor.advance` per SKU (``tests/unit/test_review_sweep.py``). SKUs whose levels the
kernel does not cover (``demand_source="forecaster"``, a derived cache that is still current)
are decided by the scalar :meth:`SkuProcessor.decide`, in place.
"""

from __future__ import annotations

import math

import numpy as np

from agents.demand import period_seconds
from agents.forecasting.covariates import CovariatePool
from agents.policy import OverstockCheck, PolicyLevels, PolicyParams
from agents.processor import EventMeta, SkuProcessor
from agents.processor.config import ApplyResult, Decision
from agents.processor.derived import Derived, DerivedInputs, cached_derived, derived_inputs
from agents.review.kernel import decide_masks, level_columns, overstock_columns, projection_columns
from agents.state import SkuState

__all__ = ["PeriodReview"]

_LEVEL_FIELDS = ("mean_lead_time", "var_lead_time", "mean_protection", "var_protection",
                 "q90_lead_time", "q95_lead_time", "q90_protection", "q95_protection", "z",
                 "safety_stock", "reorder_point", "order_up_to")


class _Group:
    """The decided SKUs of one policy group and their gathered inputs."""

    __slots__ = ("params", "horizon", "cost", "index", "states", "inputs", "service", "mean", "var", "csl")

    def __init__(self, params: PolicyParams, horizon: int, cost: float | None) -> None:
        self.params = params
        self.horizon = horizon
        self.cost = cost  # the lost-unit cost setting each SKU's critical fractile (None: the target)
        self.index: list[int] = []  # position in the review's state list
        self.states: list[SkuState] = []
        self.inputs: list[DerivedInputs] = []  # what each SKU's levels are derived from
        self.service: list[PolicyParams] = []  # the SKU's params after its service target
        self.mean: list[np.ndarray] = []
        self.var: list[np.ndarray] = []
        self.csl: list[float] = []


class PeriodReview:
    """Close the due SKUs' periods and decide them in one vectorised pass (module docstring).

    Parameters
    ----------
    processor : SkuProcessor
        The per-SKU logic whose :meth:`~SkuProcessor.advance` this reproduces.
    """

    def __init__(self, processor: SkuProcessor) -> None:
        self.processor = processor
        self.config = processor.config
        self.deriver = processor.deriver
        self.decisions = processor.decisions
        self.features = processor.features

    def run(self, states: list[SkuState], watermark: int, meta: EventMeta, trigger_event_id: str,
            pool: CovariatePool | None = None) -> list[ApplyResult]:
        """Review ``states`` at a partition watermark: :meth:`SkuProcessor.advance` of each, batched.

        Parameters
        ----------
        states : list of SkuState
            The partition's due SKUs, in the partition's order (mutated).
        watermark : int
            Event time of the review (epoch s): closes periods, expires suggestions, stamps
            decisions.
        meta : EventMeta
            Position of the event that moved the watermark (the decision ids' trigger).
        trigger_event_id : str
            Its event id (in the explanations).
        pool : CovariatePool, optional
            The partition's covariate pool (as :meth:`SkuProcessor.advance`).

        Returns
        -------
        list of ApplyResult
            One per state, aligned with ``states``: ``skipped`` when no period closed, else
            ``applied`` with the periods closed, ``pool_changed`` and the decisions.

        Raises
        ------
        ValueError
            On an invalid forecast or level (as the scalar path).
        """
        results = [self.processor.close_periods(st, watermark, pool) for st in states]
        applied = [i for i, r in enumerate(results) if r.status == "applied"]
        if self.config.demand_source != "window":
            for i in applied:
                results[i].decisions = self.processor.decide(states[i], meta, trigger_event_id, watermark,
                                                             pool, review=True)
            return results
        decided: dict[int, list[Decision]] = {}
        groups: dict[int, _Group] = {}
        scalar: set[int] = set()
        first = self.decisions.first_decision_periods
        coef = None if pool is None else pool.coef
        for i in applied:
            st = states[i]
            if st.model.n_periods < first or st.demand.open_start is None:
                continue  # no decision (and, as in decide(), no derived levels)
            inputs = derived_inputs(st, self.deriver.pool_boundary(st, pool))
            if cached_derived(st, inputs) is not None:
                scalar.add(i)  # levels already current: the scalar decide reuses them
                continue
            base = self.deriver.params_for(st)
            g = groups.get(id(base))
            if g is None:
                g = groups[id(base)] = _Group(base, self.deriver.levels_horizon(base),
                                              self.deriver.lost_unit_cost(base, pool))
            if st.model.covariates_enabled:
                st.model.set_pool_mean(coef)
            svc = self.deriver.fractile_params(st, base, g.cost)
            mean, var = self.deriver.window_moments(st, g.horizon)
            g.index.append(i)
            g.states.append(st)
            g.inputs.append(inputs)
            g.service.append(svc)
            g.mean.append(mean)
            g.var.append(var)
            if g.cost is not None:
                g.csl.append(float(svc.cycle_service_level))  # type: ignore[arg-type]
        for g in groups.values():
            self._decide_group(g, watermark, meta, trigger_event_id, pool, decided)
        for i in applied:
            if i in scalar:
                results[i].decisions = self.processor.decide(states[i], meta, trigger_event_id, watermark,
                                                             pool, review=True)
            else:
                results[i].decisions = decided.get(i, [])
        return results

    # --- one policy group ---------------------------------------------------------------------
    def _decide_group(self, g: _Group, t: int, meta: EventMeta, trigger_event_id: str,
                      pool: CovariatePool | None, decided: dict[int, list[Decision]]) -> None:
        p = g.params
        n = len(g.states)
        lc = level_columns(np.array(g.mean), np.array(g.var), p,
                           np.array(g.csl) if g.csl else None)
        ip = np.empty(n)
        has_open = np.zeros(n, dtype=bool)
        exp_at = np.zeros(n, dtype=np.int64)
        o_level = np.zeros(n)
        o_qty = np.zeros(n)
        has_over = np.zeros(n, dtype=bool)
        for k, st in enumerate(g.states):
            ip[k] = st.position.inventory_position
            r = st.reorder
            if r is not None:
                has_open[k] = True
                exp_at[k] = r.expires_at
                o_level[k] = r.level
                o_qty[k] = r.quantity
            has_over[k] = st.overstock is not None
        dm = decide_masks(ip, lc, t, open_expires_at=exp_at, open_level=o_level, open_quantity=o_qty,
                          has_open=has_open, has_overstock=has_over,
                          reemit_change_fraction=self.config.reemit_change_fraction,
                          pack_size=p.pack_size, moq=p.moq, review=True)
        # the derived cache, as LevelsDeriver.derived leaves it
        cols = [getattr(lc, f).tolist() for f in _LEVEL_FIELDS]
        eoq = None if lc.order_quantity_eoq is None else lc.order_quantity_eoq.tolist()
        lead = max(1, math.ceil(p.lead_time_periods))
        derived: list[Derived] = []
        for k, st in enumerate(g.states):
            lv = PolicyLevels(*(c[k] for c in cols), order_quantity_eoq=None if eoq is None else eoq[k])
            st.derived = Derived(st, g.inputs[k], lv, g.service[k], lead, st.model.served_model,
                                 self.deriver.full_horizon(st, pool), g.cost)
            derived.append(st.derived)
        proj = self._projections(g, derived, dm.reorder, t)
        over = self._overstocks(g, derived, dm.overstock_candidate)
        reorder, qty, expire = dm.reorder.tolist(), dm.quantity.tolist(), dm.expire.tolist()
        live, reset = dm.liveness_violation.tolist(), dm.overstock_reset.tolist()
        for k, st in enumerate(g.states):
            d = derived[k]
            out: list[Decision] = []
            if expire[k]:
                st.reorder = None
            if reorder[k]:
                first_so, prob = proj[k]
                out.append(self.decisions.reorder_event(st, d, meta, trigger_event_id, t, int(qty[k]),
                                                        first_so, prob))
            if live[k]:
                st.bump("liveness_violations")  # see DecisionMaker.decide
            if reset[k]:
                st.overstock = None
            elif k in over:
                ev = self.decisions.overstock_event(st, d, meta, trigger_event_id, t, over[k])
                if ev is not None:
                    out.append(ev)
            if out:
                decided[g.index[k]] = out

    def _projections(self, g: _Group, derived: list[Derived], mask: np.ndarray,
                     t: int) -> dict[int, tuple[int | None, float]]:
        """First stockout period and stockout probability of the reordering SKUs (by position)."""
        ks = np.flatnonzero(mask).tolist()
        if not ks:
            return {}
        h = self.config.horizon_periods
        step = period_seconds(self.config.freq)
        mean = np.empty((len(ks), h))
        var = np.empty((len(ks), h))
        rc = np.zeros((len(ks), h))
        on_hand = np.empty(len(ks))
        back = np.empty(len(ks))
        for j, k in enumerate(ks):
            st, d = g.states[k], derived[k]
            mean[j], var[j] = self.decisions.projection_inputs(st, d)
            pos = st.position
            on_hand[j], back[j] = pos.on_hand, pos.backorders
            assert st.demand.open_start is not None
            for period, units in pos.scheduled_receipts(t, step, st.demand.open_start):
                if period < h:
                    rc[j, period] += units
        within = derived[ks[0]].lead_time_periods
        pc = projection_columns(on_hand, back, rc, mean, var, within)
        firsts, probs = pc.first_stockout_period.tolist(), pc.stockout_probability.tolist()
        return {k: (None if firsts[j] < 0 else firsts[j], probs[j]) for j, k in enumerate(ks)}

    def _overstocks(self, g: _Group, derived: list[Derived], mask: np.ndarray) -> dict[int, OverstockCheck]:
        """The overstock checks of the candidate SKUs (by position in the group)."""
        ks = np.flatnonzero(mask).tolist()
        if not ks:
            return {}
        mean = np.array([np.asarray(derived[k].moments[0], dtype=float) for k in ks])
        ip = [float(g.states[k].position.inventory_position) for k in ks]
        S = [derived[k].levels.order_up_to for k in ks]
        oc = overstock_columns(ip, S, mean, g.params)
        cols = (oc.flagged.tolist(), oc.excess_units.tolist(), oc.threshold_units.tolist(),
                oc.rate_per_period.tolist(), oc.periods_of_cover.tolist())
        return {k: OverstockCheck(cols[0][j], cols[1][j], cols[2][j], cols[3][j],
                                  None if math.isnan(cols[4][j]) else cols[4][j])
                for j, k in enumerate(ks)}
