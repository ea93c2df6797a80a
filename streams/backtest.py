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

from agents.demand import calendar_features, epoch, period_seconds, period_start, season_length, to_datetime
from agents.metrics import seasonal_naive_scale, summarize
from agents.policy import PolicyParams
from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.state import SkuState
from schemas.events import OrderPlaced

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


def replay(sales: Sequence[Any], freq: Literal["H", "D", "W"], horizon: int,
           progress: bool = False) -> BacktestArrays:
    """Replay sales through :class:`SkuProcessor` and collect progressive-validation forecasts.

    Parameters
    ----------
    sales : sequence of streams.datasets.SaleRow
        Cleaned order lines sorted by event time.
    freq : {"H", "D", "W"}
        Demand period.
    horizon : int
        Forecast horizon H (periods).

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

    def observe(state: SkuState, start: int, units: float) -> None:
        i = index[state.key]
        t = (start - first) // step
        y[i, t] = units
        first_period[i] = min(first_period[i], t)
        xs = [calendar_features(freq, start + h * step) for h in range(H)]
        dist = state.model.forecast_distribution(H, xs)
        hs = min(H, T - t)
        rows = np.arange(hs)
        cols_t = t + rows
        mean[i, cols_t, rows] = dist.mean[:hs]
        q50[i, cols_t, rows] = dist.quantiles[0.5][:hs]
        q90[i, cols_t, rows] = dist.quantiles[0.9][:hs]
        q95[i, cols_t, rows] = dist.quantiles[0.95][:hs]
        model[i, cols_t, rows] = names.setdefault(dist.model, len(names))

    cfg = ProcessorConfig(freq=freq, allowed_lateness_s=0.0, horizon_periods=max(H, 8),
                          policy=PolicyParams(), min_history_periods=10**9)
    proc = SkuProcessor(cfg, observer=observe)
    states: dict[str, SkuState] = {}
    it: Any = enumerate(sales)
    if progress:
        from rich.progress import track

        it = track(it, total=len(sales), description="backtest replay")
    for off, r in it:
        st = states.get(r.key)
        if st is None:
            st = states[r.key] = SkuState.new(r.key)
        ev = OrderPlaced(event_id=f"{r.order_id}:{off}", occurred_at=r.occurred_at, sku=r.sku,
                         location=r.location, order_id=r.order_id, quantity=r.quantity,
                         unit_price=r.unit_price or 0.0, promo=bool(r.promo))
        proc.apply(st, ev, EventMeta("orders", 0, off))
    end = last + step  # close the final period of every series
    for st in states.values():
        proc.advance(st, end, EventMeta("orders", 0, len(sales)), "end-of-data")
    return BacktestArrays(keys, first, step, y, first_period, mean, q50, q90, q95, model,
                          [n for n, _ in sorted(names.items(), key=lambda kv: kv[1])])


def evaluate(arr: BacktestArrays, baselines: dict[str, np.ndarray], m: int, min_history: int,
             top: int) -> dict[str, Any]:
    """Score restock and the baselines on the cells where every method has a forecast."""
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
    served = arr.model[valid]
    out["served_models"] = {
        name: int((served == i).sum()) for i, name in enumerate(arr.model_names)
    }
    out["cells"] = int(valid.sum())
    return out


def run_backtest(opts: BacktestOptions) -> dict[str, Any]:
    """Run the backtest described by ``opts``; write predictions/JSON/plot; return the report.

    Raises
    ------
    ValueError
        When the data holds no sales.
    RuntimeError
        When a statsforecast baseline is requested but statsforecast is not installed.
    """
    from streams.baselines import run_baselines
    from streams.datasets import load

    t0 = time.perf_counter()
    ds = load(opts.data, opts.fmt, skus=opts.skus)
    if not ds.sales:
        raise ValueError(f"no sales in {opts.data}")
    t_load = time.perf_counter() - t0
    arr = replay(ds.sales, opts.freq, opts.horizon, progress=opts.progress)
    t_replay = time.perf_counter() - t0 - t_load
    m = season_length(opts.freq)
    t1 = time.perf_counter()
    base = run_baselines(arr.y, arr.first_period, opts.horizon, m, list(opts.baselines),
                         opts.refit_every, n_jobs=opts.n_jobs) if opts.baselines else {}
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
        "metrics": metrics,
        "timing_s": {"load": round(t_load, 2), "restock_replay": round(t_replay, 2),
                     "baselines": round(t_base, 2)},
        "cleaning": ds.report.as_dict(),
    }
    if opts.predictions:
        write_predictions(opts.predictions, arr)
    if opts.json_path:
        opts.json_path.parent.mkdir(parents=True, exist_ok=True)
        opts.json_path.write_text(json.dumps(report, indent=2, sort_keys=True, default=float) + "\n")
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
        w.writerow(["sku", "location", "period_start", "horizon", "y_true", "y_pred", "q50", "q90", "q95", "model"])
        for i, k in enumerate(arr.keys):
            sku, _, loc = k.partition("@")
            ts, hs = np.nonzero(np.isfinite(arr.mean[i]))
            for t, h in zip(ts, hs, strict=True):
                w.writerow([sku, loc, to_datetime(arr.first + int(t) * arr.step).date().isoformat(), int(h) + 1,
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

    console = Console()
    for sub in ("all", next((k for k in report["metrics"] if k.startswith("top")), None)):
        if sub is None:
            continue
        table = Table(title=f"backtest {report['freq']} h=1..{report['horizon']} ({sub}, "
                            f"{report['metrics']['cells']} cells over {report['series']} series)")
        cols = ["wape", "mae", "rmse", "mase", "bias", "coverage_q90", "coverage_q95"]
        table.add_column("method")
        for c in cols:
            table.add_column(c, justify="right")
        for name, met in report["metrics"][sub].items():
            table.add_row(name, *[_fmt(met.get(c)) for c in cols])
        console.print(table)
    console.print(f"served models: {report['metrics']['served_models']}")
    console.print(f"timing (s): {report['timing_s']}")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.4f}" if isinstance(v, float) else str(v)
