"""Service/stock frontier: fill rate against mean on-hand value, one curve per policy.

A policy run at several service targets gives points ``(fill rate, mean on-hand value)``; the
frontier compares policies at equal fill rate, each read on its own curve
(:func:`interpolate_value_at_fill`), and reports restock's stock as a ratio to the best baseline
(:func:`summary`). Values are in the data's currency (GBP for Online Retail), on-hand units in
units of stock, stockouts in SKU-periods (the KPI dictionaries' ``stockout_sku_days`` counts
periods).

:func:`run_baselines` sweeps the ERP reorder rules of :mod:`streams.rules` over targets and
returns the rows; the restock side adds its own rows from its KPI dictionaries
(:func:`frontier_rows`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agents.policy import PolicyParams
from streams.panel import DemandPanel
from streams.rules import RuleSpec, Unmet, baseline_specs, rule_moments, simulate_rule, static_seed

TargetKind = Literal["cycle_service_level", "fill_rate", "lost_unit_cost"]
#: Short labels of the target kinds in tables and plots.
TARGET_LABELS = {"cycle_service_level": "CSL", "fill_rate": "fill", "lost_unit_cost": "lost-unit cost"}

#: Columns of a frontier row, in table order.
ROW_KEYS = ("policy", "target_kind", "target", "fill_rate", "cycle_service_level", "mean_on_hand_units",
            "mean_on_hand_value", "inventory_turns_per_year", "purchase_orders", "stockout_sku_periods")


def frontier_row(policy: str, target_kind: TargetKind, target: float,
                 kpis: Mapping[str, Any]) -> dict[str, Any]:
    """One frontier row from a KPI dictionary of :meth:`streams.kpis.PolicyTally.kpis`.

    Parameters
    ----------
    policy : str
        Policy name (``restock``, ``static``, ``rolling_56d``, ...).
    target_kind : {"cycle_service_level", "fill_rate", "lost_unit_cost"}
        Kind of target the run was given (a service level, or currency per lost unit).
    target : float
        Target value in (0, 1).
    kpis : mapping
        The run's KPIs (keys ``fill_rate``, ``cycle_service_level``, ``mean_on_hand_units``,
        ``mean_on_hand_value_gbp``, ``inventory_turns_per_year``, ``purchase_orders``,
        ``stockout_sku_days``).

    Returns
    -------
    dict
        The :data:`ROW_KEYS`; ``mean_on_hand_value`` in the data's currency,
        ``stockout_sku_periods`` in SKU-periods.

    Raises
    ------
    KeyError
        When a KPI is missing.
    """
    return {
        "policy": policy, "target_kind": target_kind, "target": float(target),
        "fill_rate": kpis["fill_rate"], "cycle_service_level": kpis["cycle_service_level"],
        "mean_on_hand_units": kpis["mean_on_hand_units"],
        "mean_on_hand_value": kpis["mean_on_hand_value_gbp"],
        "inventory_turns_per_year": kpis["inventory_turns_per_year"],
        "purchase_orders": kpis["purchase_orders"], "stockout_sku_periods": kpis["stockout_sku_days"],
    }


def frontier_rows(runs: Iterable[tuple[str, TargetKind, float, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (policy, target): see :func:`frontier_row`.

    Parameters
    ----------
    runs : iterable of (policy, target_kind, target, kpis)
        The runs, in any order.

    Returns
    -------
    list of dict
        Rows sorted by policy (first appearance) then target.
    """
    rows = [frontier_row(p, kind, t, k) for p, kind, t, k in runs]
    order = {p: i for i, p in reversed(list(enumerate(r["policy"] for r in rows)))}
    return sorted(rows, key=lambda r: (order[r["policy"]], r["target"]))


def efficient_points(rows: Iterable[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """The efficient (Pareto) points of one policy's curve, by increasing fill rate.

    A point ``(fill, value)`` is kept when no other point reaches at least its fill rate for at
    most its value (strictly better in one): along the result both fill rate and value
    strictly increase. Rows without a fill rate (no demand) are ignored.

    Parameters
    ----------
    rows : iterable of mapping
        Frontier rows of one policy (keys ``fill_rate``, ``mean_on_hand_value``).

    Returns
    -------
    list of (float, float)
        ``(fill rate, mean on-hand value)`` pairs.

    Examples
    --------
    >>> efficient_points([{"fill_rate": 0.9, "mean_on_hand_value": 100.0},
    ...                   {"fill_rate": 0.88, "mean_on_hand_value": 120.0},
    ...                   {"fill_rate": 0.95, "mean_on_hand_value": 150.0}])
    [(0.9, 100.0), (0.95, 150.0)]
    """
    pts = sorted({(float(r["fill_rate"]), float(r["mean_on_hand_value"])) for r in rows
                  if r.get("fill_rate") is not None and r.get("mean_on_hand_value") is not None},
                 key=lambda fv: (-fv[0], fv[1]))
    out: list[tuple[float, float]] = []
    best = float("inf")
    for f, v in pts:  # from the highest fill down: keep a point only if it is cheaper than all above
        if v < best:
            out.append((f, v))
            best = v
    return out[::-1]


def interpolate_value_at_fill(rows: Iterable[Mapping[str, Any]], fill: float) -> float | None:
    """Mean on-hand value of one policy at a fill rate, read on its own efficient curve.

    The curve is the policy's efficient points (:func:`efficient_points`: for each fill rate
    the least value reached at that fill or above), joined by straight lines. Between two
    points the value is interpolated linearly in the fill rate; at or below the lowest efficient
    point it is that point's value (the least value known to reach the fill rate); above the
    highest fill rate reached it is None (the curve does not get there).

    Parameters
    ----------
    rows : iterable of mapping
        Frontier rows of one policy (keys ``fill_rate``, ``mean_on_hand_value``).
    fill : float
        Fill rate in [0, 1].

    Returns
    -------
    float or None
        Mean on-hand value (data's currency), or None when the curve does not reach ``fill``.

    Examples
    --------
    >>> rows = [{"fill_rate": 0.8, "mean_on_hand_value": 100.0},
    ...         {"fill_rate": 0.9, "mean_on_hand_value": 200.0}]
    >>> round(interpolate_value_at_fill(rows, 0.85), 6), interpolate_value_at_fill(rows, 0.95)
    (150.0, None)
    """
    pts = efficient_points(rows)
    if not pts or fill > pts[-1][0]:
        return None
    if fill <= pts[0][0]:
        return pts[0][1]
    f = np.array([p[0] for p in pts])
    v = np.array([p[1] for p in pts])
    return float(np.interp(fill, f, v))


def summary(rows: Sequence[Mapping[str, Any]], fills: Sequence[float] = (0.90, 0.93, 0.95),
            policy: str = "restock") -> list[dict[str, Any]]:
    """Each policy's mean on-hand value at given fill rates and ``policy``'s ratio to the best baseline.

    Parameters
    ----------
    rows : sequence of mapping
        Frontier rows of every policy.
    fills : sequence of float
        Fill rates to read the curves at.
    policy : str
        The policy compared; every other policy is a baseline.

    Returns
    -------
    list of dict
        Per fill: ``fill``, ``values`` (policy -> value or None), ``best_baseline`` (the baseline
        with the least value, None when no baseline reaches the fill), ``best_baseline_value``
        and ``ratio`` (``policy``'s value / best baseline value, None when either is missing).

    Examples
    --------
    >>> rows = [{"policy": "restock", "fill_rate": 0.95, "mean_on_hand_value": 80.0},
    ...         {"policy": "static", "fill_rate": 0.95, "mean_on_hand_value": 100.0}]
    >>> summary(rows, fills=(0.9,))[0]["ratio"]
    0.8
    """
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    out = []
    for fill in fills:
        values = {p: interpolate_value_at_fill([r for r in rows if r["policy"] == p], fill) for p in policies}
        base = {p: v for p, v in values.items() if p != policy and v is not None}
        best = min(base, key=lambda p: base[p]) if base else None
        mine = values.get(policy)
        ratio = (mine / base[best]) if best is not None and mine is not None and base[best] > 0 else None
        out.append({"fill": float(fill), "values": values, "best_baseline": best,
                    "best_baseline_value": base[best] if best is not None else None,
                    "ratio": None if ratio is None else round(ratio, 4)})
    return out


def _fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of frontier rows (one line per policy and target).

    Parameters
    ----------
    rows : sequence of mapping
        Frontier rows.

    Returns
    -------
    str
        Markdown, one header line, one separator line and one line per row.
    """
    head = ("| policy | target | fill rate | cycle service level | mean on-hand units | mean on-hand value "
            "| turns/year | purchase orders | stockout SKU-periods |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        kind = TARGET_LABELS.get(r["target_kind"], r["target_kind"])
        lines.append(
            f"| {r['policy']} | {kind} {r['target']:g} | {_fmt(r['fill_rate'])} | "
            f"{_fmt(r['cycle_service_level'])} | {_fmt(r['mean_on_hand_units'], 0)} | "
            f"{_fmt(r['mean_on_hand_value'], 0)} | {_fmt(r['inventory_turns_per_year'], 2)} | "
            f"{_fmt(r['purchase_orders'])} | {_fmt(r['stockout_sku_periods'])} |")
    return "\n".join(lines)


def format_summary(summ: Sequence[Mapping[str, Any]], policy: str = "restock") -> str:
    """Markdown table of :func:`summary`: one line per fill rate, one column per policy.

    Parameters
    ----------
    summ : sequence of mapping
        Output of :func:`summary`.
    policy : str
        The compared policy (named in the ratio column).

    Returns
    -------
    str
        Markdown table; ``-`` where a curve does not reach the fill rate.
    """
    policies = list(dict.fromkeys(p for s in summ for p in s["values"]))
    head = "| fill rate | " + " | ".join(f"{p} value" for p in policies) + \
        f" | best baseline | {policy} / best baseline |"
    lines = [head, "|---:|" + "---:|" * len(policies) + "---|---:|"]
    for s in summ:
        vals = " | ".join(_fmt(s["values"].get(p), 0) for p in policies)
        lines.append(f"| {s['fill']:.2f} | {vals} | {s['best_baseline'] or '-'} | {_fmt(s['ratio'], 3)} |")
    return "\n".join(lines)


def plot_frontier(rows: Sequence[Mapping[str, Any]], path: Path | str, title: str = "") -> Path:
    """PNG of the frontier: fill rate (x) against mean on-hand value (y), one curve per policy.

    Each policy's points are joined in fill-rate order and labelled with their target.

    Parameters
    ----------
    rows : sequence of mapping
        Frontier rows.
    path : path
        PNG file to write (parent directories are created).
    title : str
        Plot title.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 6))
    for i, p in enumerate(dict.fromkeys(r["policy"] for r in rows)):
        pts = sorted((r["fill_rate"], r["mean_on_hand_value"], r["target"]) for r in rows
                     if r["policy"] == p and r["fill_rate"] is not None)
        if not pts:
            continue
        xs, ys, ts = zip(*pts, strict=True)
        ax.plot(xs, ys, "-o", color=f"C{i}", ms=4, lw=1.3, label=p)
        for x, y, t in pts:
            ax.annotate(f"{t:g}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6,
                        color=f"C{i}")
    ax.set_xlabel("fill rate (units served / units demanded)")
    ax.set_ylabel("mean on-hand value (data currency)")
    ax.set_title(title or "service / stock frontier", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_baselines(panel: DemandPanel, params: PolicyParams, targets: Sequence[float], *,
                  target_kind: TargetKind = "cycle_service_level", specs: Sequence[RuleSpec] | None = None,
                  unmet: Unmet = "lost_sales", seed_params: PolicyParams | None = None,
                  lead_periods: Any = None,
                  hidden_stockouts: bool = False) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Frontier rows of the ERP reorder rules swept over service targets.

    Each (rule, target) is simulated by :func:`streams.rules.simulate_rule` from the seed
    ``ceil(S_static)`` of that target (the demo's seeding rule; ``seed_params`` fixes one seed
    for all targets instead), the rule's demand moments fitted once per rule and reused over
    targets.

    Parameters
    ----------
    panel : DemandPanel
        The demand panel.
    params : PolicyParams
        Lead time and review period (periods), pack size, MOQ; the target is replaced.
    targets : sequence of float
        Service targets in (0, 1).
    target_kind : {"cycle_service_level", "fill_rate"}
        Which target the values are.
    specs : sequence of RuleSpec, optional
        Rules to run; default :func:`streams.rules.baseline_specs` of the panel's period.
    unmet : {"lost_sales", "backorder"}
        Unmet demand rule.
    seed_params : PolicyParams, optional
        When given, every run starts from :func:`streams.rules.static_seed` of these parameters
        (e.g. the demo's default target, CSL 0.95, as the issue #17 runs did).
    lead_periods : numpy.ndarray, shape (n_skus, n_periods), optional
        The warehouse's random lead times (:func:`streams.lead_times.lead_time_draws`), the
        same restock's closed loop faces; None: the fixed lead time.
    hidden_stockouts : bool
        The storefront hides stockouts: the rules refit on their own sales, during each run
        (:func:`streams.rules.simulate_rule`), instead of once per rule on the demand.

    Returns
    -------
    (list of dict, dict of str to float)
        Frontier rows, and wall seconds per rule: ``fit`` (moments, once) and ``per_target``
        (mean simulation time per target).

    Raises
    ------
    ImportError
        When a batch rule is asked for without statsforecast.
    """
    specs = list(specs) if specs is not None else baseline_specs(panel.freq)
    runs: list[tuple[str, TargetKind, float, Mapping[str, Any]]] = []
    timing: dict[str, float] = {}
    for spec in specs:
        t0 = time.perf_counter()
        mom = None if hidden_stockouts else rule_moments(
            panel, spec.rule, window_periods=spec.window_periods,
            refit_every_periods=spec.refit_every_periods, model=spec.model)
        timing[f"{spec.name}.fit_s"] = time.perf_counter() - t0
        sim_s = 0.0
        for t in targets:
            p = params.with_overrides(**{target_kind: float(t)})
            seed = static_seed(panel, seed_params or p)
            res = simulate_rule(panel, spec.rule, p, unmet=unmet, seed_on_hand=seed, moments=mom,
                                lead_periods=lead_periods, window_periods=spec.window_periods,
                                refit_every_periods=spec.refit_every_periods, model=spec.model,
                                hidden_stockouts=hidden_stockouts)
            sim_s += res.wall_s
            runs.append((spec.name, target_kind, float(t), res.kpis))
        timing[f"{spec.name}.per_target_s"] = sim_s / max(len(targets), 1)
    return frontier_rows(runs), timing
