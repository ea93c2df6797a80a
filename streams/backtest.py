"""``restock backtest``: replay history through the agents' own code and score the forecasts.

The replay calls :class:`agents.processor.SkuProcessor` -- the very object the Faust agent
calls -- with an in-memory state per SKU instead of Redis, and the same event models
(:class:`schemas.events.OrderPlaced`). Evaluation is *progressive validation*: every time a
period closes, the model first forecasts the next H periods from what it knows (the observer
hook, called before learning), then learns the period. So each forecast of period ``t`` at
horizon ``h`` uses only data up to period ``t - h``.

Baselines are scored on exactly the same cells (same series, periods and horizons): naive,
seasonal naive and statsforecast's CrostonSBA, TSB, ADIDA and AutoETS refit every
``refit_every`` periods (:mod:`streams.baselines`). Metrics: WAPE, MAE, RMSE, MASE (scaled by
each series' in-sample seasonal-naive MAE), bias and q90/q95 coverage (:mod:`agents.metrics`),
overall and for the top-100 SKUs by volume.

Covariates ("known in advance")
-------------------------------
For the generic CSV (``--covariates auto`` turns them on for it, off for Online Retail, whose
prices are customer price tiers, not a plan), each SKU-period's ``unit_price`` (the
units-weighted average), ``promo`` flag and numeric ``x_*`` columns become a
:class:`~schemas.events.PromotionPlanned` for that period (``promo_kind`` ``discount`` when
flagged, else ``none``), published ``plan_lead`` periods (default: the horizon) before the
period starts, i.e. **the history's realised prices and promotions are assumed to have been
planned and known that far in advance**. The orders carry the same price and flag and are
what the model learns from. All SKUs share one covariate pool (as one partition), events are
replayed in event-time order across SKUs, the pool is re-published when event time enters a
new period and, at that moment, every SKU's finished periods are closed (a watermark), so no
forecast sees data of the period it forecasts, of any SKU.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agents.demand import epoch, period_seconds, period_start, season_length, to_datetime
from agents.forecasting.covariates import CovariatePool
from agents.forecasting.selection import period_quantiles
from agents.metrics import seasonal_naive_scale, summarize
from agents.policy import PolicyParams
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.state import SkuState
from schemas.inputs import OrderPlaced, PromotionPlanned

LEVELS = (0.5, 0.9, 0.95)


@dataclass(frozen=True)
class BacktestOptions:
    """Options of :func:`run_backtest` (see ``restock backtest --help``)."""

    data: Path
    fmt: str = "auto"
    freq: Literal["H", "D", "W"] = "D"
    horizon: int = 7
    skus: int | None = None
    baselines: Sequence[str] = ("naive", "seasonal_naive", "croston_sba", "tsb", "adida", "auto_ets")
    refit_every: int = 28
    min_history: int = 28
    predictions: Path | None = None
    json_path: Path | None = None
    plot_path: Path | None = None
    progress: bool = True
    top: int = 100
    n_jobs: int = 1
    covariates: bool | None = None
    plan_lead: int | None = None
    season_length: int | None = None


@dataclass
class BacktestArrays:
    """Actuals and out-of-sample forecasts on one grid.

    Attributes
    ----------
    keys : list[str]
        Series (``sku@location``), n of them.
    first : int
        Epoch seconds of period 0.
    y : np.ndarray, shape (n, T)
        Demand per period (units), as learned by the models.
    first_period : np.ndarray, shape (n,)
        Index of each series' first period.
    mean, q50, q90, q95 : np.ndarray, shape (n, T, H)
        Forecast of period t made at origin t - h (NaN where none).
    model : np.ndarray, shape (n, T, H), int8
        Index into ``model_names`` of the candidate that served the forecast.
    """

    keys: list[str]
    first: int
    step: int
    y: np.ndarray
    first_period: np.ndarray
    mean: np.ndarray
    q50: np.ndarray
    q90: np.ndarray
    q95: np.ndarray
    model: np.ndarray
    model_names: list[str]


def plan_events(sales: Sequence[Any], freq: Literal["H", "D", "W"], lead_periods: int
                ) -> list[PromotionPlanned]:
    """The history's prices, promotion flags and ``x_*`` values as per-period plans.

    One :class:`~schemas.events.PromotionPlanned` per SKU-period with a price, a promotion or
    an ``x_*`` value: ``unit_price`` the units-weighted average price, ``promo_kind``
    ``discount`` when any line is flagged (else ``none``), ``covariates`` the units-weighted
    mean of each ``x_*`` column; published (``occurred_at``) ``lead_periods`` periods before
    the period starts. Sorted by ``occurred_at``.
    """
    step = period_seconds(freq)
    groups: dict[tuple[str, int], list[Any]] = {}
    for r in sales:
        p = period_start(freq, epoch(r.occurred_at))
        g = groups.setdefault((r.key, p), [r, 0.0, 0.0, False, {}, 0.0])
        if r.unit_price:
            g[1] += r.quantity
            g[2] += r.quantity * r.unit_price
        g[3] = g[3] or bool(r.promo)
        for name, v in r.extra:
            g[4][name] = g[4].get(name, 0.0) + r.quantity * v
        g[5] += r.quantity
    out = []
    for (key, p), (r, units, revenue, promo, extra, qty) in groups.items():
        if not (units or promo or extra):
            continue
        out.append(PromotionPlanned(
            event_id=f"plan:{key}:{p}", occurred_at=to_datetime(p - lead_periods * step),
            sku=r.sku, location=r.location, promotion_id=f"plan-{p}",
            valid_from=to_datetime(p), valid_to=to_datetime(p + step),
            unit_price=revenue / units if units else None,
            promo_kind="discount" if promo else "none", depth=0.0,
            covariates={k: v / qty for k, v in sorted(extra.items())} or None))
    out.sort(key=lambda e: e.occurred_at)
    return out


def _fill_quantiles(mean: np.ndarray, phi: np.ndarray, levels: np.ndarray,
                    out: tuple[np.ndarray, ...], rows: int = 256) -> None:
    """Fill the quantile arrays ``out`` (each ``(n, T, H)``) of every forecast, ``rows`` series at a time.

    The forecast of period ``t + h`` made at origin ``t`` sits at ``[i, t + h, h]`` (as the
    means); its quantiles are :func:`agents.forecasting.selection.period_quantiles` of the
    origin's means, dispersion and calibrated levels, computed for all origins at once (the
    values are those of each origin's ``forecast_distribution``). Cells without a forecast stay NaN.
    """
    n, T, H = mean.shape
    h = np.arange(H)
    t = np.arange(T)[:, None] + h[None, :]  # target period of (origin, horizon)
    ok = t < T
    cell = (t[ok], np.broadcast_to(h, (T, H))[ok])  # (period, horizon) of each (origin, horizon)
    for lo in range(0, n, rows):
        sl = slice(lo, min(n, lo + rows))
        # the means by origin: at origin o, horizon h, the forecast of period o + h
        by_origin = np.full((sl.stop - lo, T, H), np.nan)
        by_origin[:, ok] = mean[sl][:, cell[0], cell[1]]
        made = ~np.isnan(phi[sl])
        q = np.full((sl.stop - lo, T, levels.shape[-1], H), np.nan)
        q[made] = period_quantiles(np.nan_to_num(by_origin[made]), phi[sl][made], levels[sl][made])
        for k, arr in enumerate(out):
            arr[sl][:, cell[0], cell[1]] = q[:, :, k, :][:, ok]


def replay(sales: Sequence[Any], freq: Literal["H", "D", "W"], horizon: int,
           progress: bool = False, covariates: bool = False, plan_lead: int | None = None,
           season_length: int | None = None) -> BacktestArrays:
    """Replay sales through :class:`SkuProcessor` and collect progressive-validation forecasts.

    Parameters
    ----------
    sales : sequence of streams.datasets.SaleRow
        Cleaned order lines sorted by event time.
    freq : {"H", "D", "W"}
        Demand period.
    horizon : int
        Forecast horizon H (periods).
    progress : bool
        Show a progress bar (rich) over the order lines.
    covariates : bool
        Learn from the orders' prices and promotion flags and forecast with the history's
        prices/promotions as plans published ``plan_lead`` periods ahead (module docstring).
    plan_lead : int, optional
        Periods between a plan's publication and its period (default: ``horizon``).
    season_length : int, optional
        Season length of the forecasters (default: 7 daily, 52 weekly, 24 hourly).

    Returns
    -------
    BacktestArrays
    """
    step = period_seconds(freq)
    keys = sorted({r.key for r in sales})
    index = {k: i for i, k in enumerate(keys)}
    first = period_start(freq, epoch(sales[0].occurred_at))
    last = period_start(freq, epoch(sales[-1].occurred_at))
    T = (last - first) // step + 1
    n, H = len(keys), horizon
    y = np.zeros((n, T))
    first_period = np.full(n, T, dtype=int)
    shape = (n, T, H)
    mean, q50, q90, q95 = (np.full(shape, np.nan) for _ in range(4))
    model = np.full(shape, -1, dtype=np.int8)
    names: dict[str, int] = {}

    phi = np.full((n, T), np.nan)  # dispersion of the forecasts made at origin t
    levels = np.full((n, T, 3), np.nan)  # their calibrated levels (nominal 0.5, 0.9, 0.95)

    def observe(state: SkuState, start: int, units: float) -> None:
        i = index[state.key]
        t = (start - first) // step
        y[i, t] = units
        first_period[i] = min(first_period[i], t)
        xs = proc.period_features(state, start, H)
        m, phi[i, t], levels[i, t] = state.model.quantile_inputs(H, xs)
        hs = min(H, T - t)
        rows = np.arange(hs)
        cols_t = t + rows
        mean[i, cols_t, rows] = m[:hs]
        model[i, cols_t, rows] = names.setdefault(state.model.served_model, len(names))

    extras = sorted({name for r in sales for name, _ in r.extra}) if covariates else []
    # no decisions: the forecaster source decides after min_history_periods (never); the
    # forecasters learn the same periods whatever the demand source of the levels
    cfg = ProcessorConfig(freq=freq, allowed_lateness_s=0.0, horizon_periods=max(H, 8),
                          policy=PolicyParams(), min_history_periods=10**9, demand_source="forecaster",
                          covariates=covariates, covariate_extras=tuple(extras),
                          season_length=season_length)
    proc = SkuProcessor(cfg, observer=observe)
    states: dict[str, SkuState] = {}
    events: list[tuple[Any, EventMeta, Any]] = []
    if covariates:
        plans = plan_events(sales, freq, H if plan_lead is None else plan_lead)
        # merge by event time; a plan published at t comes before the orders at t
        i = j = 0
        while i < len(plans) or j < len(sales):
            if j >= len(sales) or (i < len(plans) and plans[i].occurred_at <= sales[j].occurred_at):
                events.append((plans[i], EventMeta("promotions", 0, i), None))
                i += 1
            else:
                events.append((sales[j], EventMeta("orders", 0, j), None))
                j += 1
    else:
        events = [(r, EventMeta("orders", 0, off), None) for off, r in enumerate(sales)]
    pool = CovariatePool(cfg.covariate_names) if covariates else None
    boundary = -1
    it: Any = events
    if progress:
        from rich.progress import track

        it = track(it, total=len(events), description="backtest replay")
    for r, meta, _ in it:
        key = r.key
        st = states.get(key)
        if st is None:
            st = states[key] = SkuState.new(key)
        if isinstance(r, PromotionPlanned):
            ev: Any = r
        else:
            ev = OrderPlaced(event_id=f"{r.order_id}:{meta.offset}", occurred_at=r.occurred_at,
                             sku=r.sku, location=r.location, order_id=r.order_id,
                             quantity=r.quantity, unit_price=r.unit_price or 0.0,
                             promo=bool(r.promo))
        t = epoch(r.occurred_at)
        if pool is not None:
            pool.publish(period_start(freq, t))
        proc.apply(st, ev, meta, pool)
        if pool is not None and period_start(freq, t) > boundary:
            boundary = period_start(freq, t)  # watermark: close every SKU's finished periods
            for k in sorted(states):
                if k != key:
                    proc.advance(states[k], t, meta, "watermark", pool)
    end = last + step  # close the final period of every series
    for k in sorted(states):
        proc.advance(states[k], end, EventMeta("orders", 0, len(events)), "end-of-data", pool)
    _fill_quantiles(mean, phi, levels, (q50, q90, q95))
    return BacktestArrays(keys, first, step, y, first_period, mean, q50, q90, q95, model,
                          [n for n, _ in sorted(names.items(), key=lambda kv: kv[1])])


def evaluate(arr: BacktestArrays, baselines: dict[str, np.ndarray], m: int, min_history: int,
             top: int) -> dict[str, Any]:
    """Score restock and the baselines on the cells where every method has a forecast.

    ``out["all"]`` / ``out["top<N>"]`` compare every method on the common cells (``out["cells"]``),
    so restock's line there depends on the baselines chosen; ``out["restock_own"]`` scores
    restock alone on every cell it forecast (``out["restock_own_cells"]``), whatever the baselines.
    """
    n, T, H = arr.mean.shape
    t_idx = np.arange(T)[None, :, None]
    valid = (t_idx >= (arr.first_period[:, None, None] + min_history)) & np.isfinite(arr.mean)
    for f in baselines.values():
        valid &= np.isfinite(f)
    yy = np.broadcast_to(arr.y[:, :, None], arr.mean.shape)
    scales = np.array([
        seasonal_naive_scale(arr.y[i, arr.first_period[i]:], m) if arr.first_period[i] < T else np.nan
        for i in range(n)
    ])
    volume = arr.y.sum(axis=1)
    top_rows = np.argsort(-volume, kind="stable")[:top]
    subsets = {"all": np.arange(n), f"top{top}": top_rows}
    out: dict[str, Any] = {}
    for sub, rows in subsets.items():
        v = valid[rows]
        res: dict[str, Any] = {}
        sc = np.broadcast_to(scales[rows][:, None, None], v.shape)
        y_sub = np.where(v, yy[rows], np.nan)
        res["restock"] = summarize(y_sub, np.where(v, arr.mean[rows], np.nan),
                                   q90=np.where(v, arr.q90[rows], np.nan),
                                   q95=np.where(v, arr.q95[rows], np.nan), scale=sc)
        for name, f in baselines.items():
            res[name] = summarize(y_sub, np.where(v, f[rows], np.nan), scale=sc)
        out[sub] = res
    # restock's score on its own cells (every cell it forecast after min_history), which does not
    # depend on which baselines were asked for; the table above compares on the common cells.
    own = (t_idx >= (arr.first_period[:, None, None] + min_history)) & np.isfinite(arr.mean)
    out["restock_own_cells"] = int(own.sum())
    all_sc = np.broadcast_to(scales[:, None, None], own.shape)
    out["restock_own"] = summarize(np.where(own, yy, np.nan), np.where(own, arr.mean, np.nan),
                                   q90=np.where(own, arr.q90, np.nan), q95=np.where(own, arr.q95, np.nan),
                                   scale=all_sc)
    served = arr.model[valid]
    out["served_models"] = {
        name: int((served == i).sum()) for i, name in enumerate(arr.model_names)
    }
    out["cells"] = int(valid.sum())
    return out


def available_baselines(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The requested baselines that can run here, and a note for each one skipped.

    statsforecast's models (``croston_sba``, ``tsb``, ``adida``, ``auto_ets``) need the optional
    ``bench`` extra; without it they are skipped, not fatal.

    Examples
    --------
    >>> available_baselines(["naive"])
    (['naive'], [])
    """
    from streams.baselines import BASELINES

    try:
        import statsforecast  # noqa: F401
        have_sf = True
    except ImportError:
        have_sf = False
    keep, notes = [], []
    for name in names:
        if BASELINES.get(name) is not None and not have_sf:
            notes.append(f"baseline {name} skipped: statsforecast is not installed "
                         "(pip install 'restock[bench]')")
        else:
            keep.append(name)
    return keep, notes


def json_safe(value: Any) -> Any:
    """``value`` with NaN / infinite floats as None and numpy scalars as Python numbers (valid JSON).

    Examples
    --------
    >>> json_safe({"a": float("nan"), "b": [1.5, float("inf")], "c": np.int64(3)})
    {'a': None, 'b': [1.5, None], 'c': 3}
    """
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_backtest(opts: BacktestOptions) -> dict[str, Any]:
    """Run the backtest described by ``opts``; write predictions/JSON/plot; return the report.

    Raises
    ------
    ValueError
        When the data holds no sales.

    Baselines that need statsforecast (the ``bench`` extra) are skipped with a note in
    ``report["notes"]`` when it is not installed.
    """
    from streams.baselines import run_baselines
    from streams.datasets import load

    t0 = time.perf_counter()
    ds = load(opts.data, opts.fmt, skus=opts.skus)
    if not ds.sales:
        raise ValueError(f"no sales in {opts.data}")
    t_load = time.perf_counter() - t0
    covariates = opts.covariates if opts.covariates is not None else ds.fmt == "generic"
    arr = replay(ds.sales, opts.freq, opts.horizon, progress=opts.progress,
                 covariates=covariates, plan_lead=opts.plan_lead,
                 season_length=opts.season_length)
    t_replay = time.perf_counter() - t0 - t_load
    m = season_length(opts.freq)
    t1 = time.perf_counter()
    wanted, notes = available_baselines(opts.baselines)
    base = run_baselines(arr.y, arr.first_period, opts.horizon, m, wanted,
                         opts.refit_every, n_jobs=opts.n_jobs) if wanted else {}
    t_base = time.perf_counter() - t1
    metrics = evaluate(arr, base, m, opts.min_history, opts.top)
    report: dict[str, Any] = {
        "data": str(opts.data),
        "format": ds.fmt,
        "freq": opts.freq,
        "horizon": opts.horizon,
        "series": len(arr.keys),
        "periods": int(arr.y.shape[1]),
        "events": len(ds.sales),
        "refit_every": opts.refit_every,
        "min_history": opts.min_history,
        "covariates": covariates,
        "metrics": metrics,
        "timing_s": {"load": round(t_load, 2), "restock_replay": round(t_replay, 2),
                     "baselines": round(t_base, 2)},
        "cleaning": ds.report.as_dict(),
        "notes": notes,
    }
    if opts.predictions:
        write_predictions(opts.predictions, arr)
    if opts.json_path:
        opts.json_path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(json_safe(report), indent=2, sort_keys=True, allow_nan=False)
        opts.json_path.write_text(text + "\n")
    if opts.plot_path:
        plot_series(opts.plot_path, arr)
    return report


def write_predictions(path: Path, arr: BacktestArrays) -> int:
    """One row per (sku, location, period_start, horizon) with a forecast; returns rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n, T, H = arr.mean.shape
    rows = 0
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sku", "location", "period_start", "horizon", "y_true", "y_pred", "q50", "q90", "q95",
                    "model"])
        for i, k in enumerate(arr.keys):
            sku, _, loc = k.partition("@")
            ts, hs = np.nonzero(np.isfinite(arr.mean[i]))
            for t, h in zip(ts, hs, strict=True):
                day = to_datetime(arr.first + int(t) * arr.step).date().isoformat()
                w.writerow([sku, loc, day, int(h) + 1,
                            f"{arr.y[i, t]:g}", f"{arr.mean[i, t, h]:.4f}", f"{arr.q50[i, t, h]:g}",
                            f"{arr.q90[i, t, h]:g}", f"{arr.q95[i, t, h]:g}",
                            arr.model_names[arr.model[i, t, h]]])
                rows += 1
    return rows


def plot_series(path: Path, arr: BacktestArrays, n_series: int = 4) -> None:
    """PNG of the largest series: actuals, one-step forecast and its q90 band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    top = np.argsort(-arr.y.sum(axis=1), kind="stable")[:n_series]
    fig, axes = plt.subplots(len(top), 1, figsize=(11, 2.6 * len(top)), sharex=True, squeeze=False)
    days = [to_datetime(arr.first + t * arr.step) for t in range(arr.y.shape[1])]
    for ax, i in zip(axes[:, 0], top, strict=True):
        ax.bar(days, arr.y[i], color="#bbbbbb", width=1.0, label="actual (units)")
        ax.plot(days, arr.mean[i, :, 0], color="C0", lw=1, label="forecast h=1")
        ax.fill_between(days, 0, np.nan_to_num(arr.q90[i, :, 0]), color="C0", alpha=0.2, label="q90 band")
        ax.set_title(arr.keys[i], fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def print_report(report: dict[str, Any]) -> None:
    """Print the metric table of a backtest report."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))  # never cut the headers (80 columns when piped)
    for note in report.get("notes", []):
        console.print(f"note: {note}")
    cols = ["wape", "mae", "rmse", "mase", "bias", "coverage_q90", "coverage_q95"]
    for sub in ("all", next((k for k in report["metrics"] if k.startswith("top")), None)):
        if sub is None:
            continue
        table = Table(title=f"backtest {report['freq']} h=1..{report['horizon']} ({sub}, "
                            f"{report['metrics']['cells']} cells over {report['series']} series)")
        table.add_column("method", no_wrap=True)
        for c in cols:
            table.add_column(c, justify="right", no_wrap=True)
        for name, met in report["metrics"][sub].items():
            table.add_row(name, *[_fmt(met.get(c)) for c in cols])
        console.print(table)
    own = report["metrics"].get("restock_own")
    if own is not None:
        console.print(f"restock on its own {report['metrics']['restock_own_cells']} cells (independent of "
                      f"the baselines): " + ", ".join(f"{c} {_fmt(own.get(c))}" for c in cols))
    console.print(f"served models: {report['metrics']['served_models']}")
    console.print(f"timing (s): {report['timing_s']}")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.4f}" if isinstance(v, float) else str(v)
