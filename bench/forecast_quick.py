"""Quick accuracy harness for ``agents.forecasting`` on the UCI Online Retail data.

Progressive validation per SKU on zero-filled daily demand: at every origin ``t`` (after the
first 28 days of the SKU) forecast days ``t .. t+6`` (h = 1..7), then learn day ``t``. Reports
WAPE = sum|y - yhat| / sum y, bias = sum(yhat - y) / sum y and q90 / q95 coverage (fraction of
(origin, h) pairs with y <= q) for :class:`DemandForecaster` and each single candidate, next to
statsforecast's CrostonSBA, TSB, ADIDA and SeasonalNaive(7) refit every 28 days on the same
periods (no coverage for those). ``cov7_q95`` is the coverage of the 7-day total by
``ForecastDistribution.total_quantile(0, 7, 0.95)`` (origins with 7 days ahead).

Spike robustness and stability (our models only, origins with 7 days ahead):

* ``spike_p99``: 99th percentile over SKU-days of the one-day-ahead forecast divided by the
  SKU's mean daily demand over the whole series (a wholesale spike that leaks into the level
  shows up as a ratio of 10-100);
* ``spike_max``: mean over SKUs of the largest 7-day total forecast divided by 7 x the SKU's
  mean daily demand;
* ``jitter_S``: day-to-day change of the 7-day total q95 (the order-up-to proxy),
  ``sum |Q_t - Q_{t-1}| / sum Q_t``;
* ``switch``: served-model switches per 100 SKU-days.

Usage::

    .venv/bin/python bench/forecast_quick.py --skus 200 [--jobs 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.forecasting import CANDIDATES, DEFAULT_CANDIDATES, DemandForecaster  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data/online_retail/online_retail_2010-12-01_2011-12-09.csv.gz"
NON_PRODUCT = {
    "POST", "DOT", "M", "m", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS",
}
END = pd.Timestamp("2011-12-09")
WARMUP = 28
H = 7
REFIT = 28


def load_daily(path: Path = DATA) -> pd.DataFrame:
    """Cleaned daily demand, one row per (StockCode, day with a sale)."""
    df = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
    df = df[~df["InvoiceNo"].str.startswith(("C", "A"))]
    df = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0)]
    code = df["StockCode"]
    df = df[~code.isin(NON_PRODUCT) & ~code.str.startswith(("gift_0001_", "DCGS"))]
    df = df.drop_duplicates()
    df["day"] = pd.to_datetime(df["InvoiceDate"]).dt.normalize()
    return df.groupby(["StockCode", "day"], as_index=False)["Quantity"].sum()


def sku_series(daily: pd.DataFrame, n_skus: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Top ``n_skus`` by volume: (code, demand per calendar day, day of week)."""
    top = daily.groupby("StockCode")["Quantity"].sum().nlargest(n_skus).index
    out = []
    for code in top:
        s = daily[daily["StockCode"] == code].set_index("day")["Quantity"]
        idx = pd.date_range(s.index.min(), END, freq="D")
        y = s.reindex(idx, fill_value=0).to_numpy(dtype=np.float64)
        out.append((code, y, idx.dayofweek.to_numpy()))
    return out


class Acc:
    """Accumulates absolute error, signed error, demand and coverage counts."""

    def __init__(self) -> None:
        self.abs = self.err = self.y = 0.0
        self.n = self.c90 = self.c95 = 0
        self.n7 = self.c7 = 0
        self.ratios: list[float] = []  # one-day-ahead forecast / mean demand, per SKU-day
        self.max_ratio: list[float] = []  # per SKU: max 7-day total / (7 mean demand)
        self.dq = self.q = 0.0  # sum |Q_t - Q_{t-1}| and sum Q_t (7-day total q95)
        self.switches = self.days = 0

    def add(self, y: np.ndarray, yhat: np.ndarray, q90=None, q95=None) -> None:
        self.abs += float(np.abs(y - yhat).sum())
        self.err += float((yhat - y).sum())
        self.y += float(y.sum())
        self.n += len(y)
        if q90 is not None:
            self.c90 += int((y <= q90).sum())
            self.c95 += int((y <= q95).sum())

    def merge(self, other: Acc) -> None:
        for k, v in vars(other).items():
            setattr(self, k, getattr(self, k) + v)


def run_ours(y: np.ndarray, dow: np.ndarray, make) -> Acc:
    acc = Acc()
    f = make()
    n = len(y)
    xs_all = [{"season_pos": int(d)} for d in dow]
    ybar = max(float(y.mean()), 1e-9)
    prev_q = prev_model = None
    max_total = 0.0
    for t in range(n):
        if t >= WARMUP:
            h = min(H, n - t)
            dist = f.forecast_distribution(h, xs_all[t : t + h])
            acc.add(y[t : t + h], dist.mean, dist.quantiles[0.9], dist.quantiles[0.95])
            if h == H:
                acc.n7 += 1
                q = dist.total_quantile(0, H, 0.95)
                acc.c7 += int(y[t : t + H].sum() <= q)
                acc.ratios.append(float(dist.mean[0]) / ybar)
                max_total = max(max_total, float(dist.mean.sum()))
                if prev_q is not None:
                    acc.dq += abs(q - prev_q)
                    acc.q += q
                    acc.days += 1
                    acc.switches += int(dist.model != prev_model)
                prev_q, prev_model = q, dist.model
        f.learn_one(y[t], xs_all[t])
    acc.max_ratio.append(max_total / (H * ybar))
    return acc


def run_baseline(y: np.ndarray, model_factory) -> Acc:
    acc = Acc()
    n = len(y)
    for r in range(WARMUP, n, REFIT):
        m = model_factory()
        fc = m.forecast(y=y[:r], h=REFIT + H)["mean"]
        fc = np.maximum(fc, 0.0)
        for t in range(r, min(r + REFIT, n)):
            h = min(H, n - t)
            acc.add(y[t : t + h], fc[t - r : t - r + h])
    return acc


def _baselines():
    from statsforecast.models import ADIDA, TSB, CrostonSBA, SeasonalNaive

    return {
        "sf.CrostonSBA": CrostonSBA,
        "sf.TSB(0.1,0.1)": lambda: TSB(alpha_d=0.1, alpha_p=0.1),
        "sf.ADIDA": ADIDA,
        "sf.SeasonalNaive(7)": lambda: SeasonalNaive(season_length=7),
    }


def _ours(kwargs: dict, selector_only: bool = False):
    makers = {"DemandForecaster": lambda: DemandForecaster(**kwargs)}
    if selector_only:
        return makers
    for name in kwargs.get("candidates") or DEFAULT_CANDIDATES:
        makers[f"only:{name}"] = lambda name=name: DemandForecaster(
            **{**kwargs, "candidates": [name]}
        )
    return makers


def evaluate_sku(args) -> dict[str, Acc]:
    _, y, dow, kwargs, with_baselines, selector_only = args
    makers = _ours(kwargs, selector_only)
    out = {name: run_ours(y, dow, make) for name, make in makers.items()}
    if with_baselines:
        for name, fac in _baselines().items():
            out[name] = run_baseline(y, fac)
    return out


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--skus", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--selector-only", action="store_true", help="skip single-candidate runs")
    ap.add_argument("--candidates", default=None, help="comma-separated candidate names")
    ap.add_argument("--error-decay", type=float, default=None)
    ap.add_argument("--variance-decay", type=float, default=None)
    ap.add_argument("--calibration-rate", type=float, default=None)
    ap.add_argument("--min-periods", type=int, default=None)
    ap.add_argument("--robust", choices=("on", "off"), default=None,
                    help="outlier-robust updating (default: the forecaster's default)")
    ap.add_argument("--huber-k", type=float, default=None)
    ap.add_argument("--switch-margin", type=float, default=None)
    args = ap.parse_args(argv)
    kwargs: dict = {}
    if args.candidates:
        kwargs["candidates"] = [c for c in args.candidates.split(",") if c in CANDIDATES]
    for key, val in (("error_decay", args.error_decay), ("variance_decay", args.variance_decay),
                     ("calibration_rate", args.calibration_rate),
                     ("min_periods_to_switch", args.min_periods), ("huber_k", args.huber_k),
                     ("switch_margin", args.switch_margin)):
        if val is not None:
            kwargs[key] = val
    if args.robust is not None:
        kwargs["robust"] = args.robust == "on"
    t0 = time.perf_counter()
    series = sku_series(load_daily(), args.skus)
    t1 = time.perf_counter()
    tasks = [(c, y, d, kwargs, not args.no_baselines, args.selector_only) for c, y, d in series]
    with Pool(args.jobs) as pool:
        results = pool.map(evaluate_sku, tasks, chunksize=1)
    totals: dict[str, Acc] = {}
    for res in results:
        for name, acc in res.items():
            totals.setdefault(name, Acc()).merge(acc)
    rows = []
    for name, a in totals.items():
        has_q = not name.startswith("sf.")
        rows.append({
            "model": name,
            "WAPE": a.abs / a.y,
            "bias": a.err / a.y,
            "cov_q90": a.c90 / a.n if has_q else np.nan,
            "cov_q95": a.c95 / a.n if has_q else np.nan,
            "cov7_q95": a.c7 / a.n7 if has_q and a.n7 else np.nan,
            "spike_p99": float(np.quantile(a.ratios, 0.99)) if has_q and a.ratios else np.nan,
            "spike_max": float(np.mean(a.max_ratio)) if has_q and a.max_ratio else np.nan,
            "jitter_S": a.dq / a.q if has_q and a.q else np.nan,
            "switch": 100.0 * a.switches / a.days if has_q and a.days else np.nan,
        })
    table = pd.DataFrame(rows).set_index("model")
    zero_share = float(np.mean(np.concatenate([y for _, y, _ in series]) == 0))
    print(f"{len(series)} SKUs, {sum(len(y) for _, y, _ in series)} SKU-days "
          f"({zero_share:.0%} zero), {totals['DemandForecaster'].n} (origin, h) pairs; "
          f"load {t1 - t0:.0f}s, eval {time.perf_counter() - t1:.0f}s; kwargs={kwargs}")
    with pd.option_context("display.width", 200):
        print(table.round(3).to_string())
    return table


if __name__ == "__main__":
    main()
