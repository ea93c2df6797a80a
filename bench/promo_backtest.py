"""Price/promotion covariates benchmark: restock with vs without covariates vs statsforecast.

Replays each weekly data set (generic CSV: ``timestamp,sku,location,quantity,unit_price,promo``
plus extra numeric columns) through ``streams.backtest.replay`` twice on the same periods:

* ``restock+cov``: the CSV's price, promotion flag and extra columns are treated as the plan of
  their week, published ``--plan-lead`` weeks ahead ("known in advance"; see
  ``streams/backtest.py``); orders carry the realised price and flag;
* ``restock``: the same configuration with covariates off (orders and calendar only);

and scores both next to the statsforecast baselines (``--baselines``, refit every
``--refit-every`` weeks) on exactly the same cells (series x week x horizon, from each series'
``--min-history``-th week on). Prints WAPE, bias, q90/q95 coverage side by side and the WAPE
ratios the target is stated in, and writes JSON.

Observed cells only. Both data sets are *panels*: one CSV row per series per observed week, and
a week without a row is not observed (tuna has about 60 calendar weeks without any row; 59 of the
88 cheese accounts end at week 61 and one at week 52 while the panel runs on to week 68). The
replay is an event stream, so nothing arrives in such a week and the models learn zero demand
there (right for a transaction log, where no order means no sale; a limitation for a panel).
Those zeros are fabricated, so by default a cell (series, target week, horizon) is scored only
when the CSV has a row for that series in that target week, for every method alike.
``--score-unobserved`` restores the former rule (every cell of the replay grid from
``--min-history`` on, unobserved weeks scored as zero demand). Both cell counts are printed and
written to the JSON (``cells_all``, ``cells_observed``; ``cells`` is the count scored).

Data (not part of the repository; see /work/shared/data/promo/README.md): by default
``../shared/data/promo/{tuna,cheese}_weekly.csv`` relative to the repository.

Usage::

    .venv/bin/python bench/promo_backtest.py [tuna.csv cheese.csv] [--horizon 4] \
        [--plan-lead 4] [--season-length 1] [--score-unobserved] [--json out/promo_backtest.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.demand import epoch, period_seconds, period_start  # noqa: E402
from agents.metrics import seasonal_naive_scale, summarize  # noqa: E402
from streams.backtest import replay  # noqa: E402
from streams.baselines import run_baselines  # noqa: E402
from streams.datasets import load_generic  # noqa: E402
from streams.datasets.generic import _parse_ts  # noqa: E402

DEFAULT_DATA = [ROOT.parent / "shared" / "data" / "promo" / f"{n}_weekly.csv"
                for n in ("tuna", "cheese")]
KNOWN_EXTRAS = ("promo_share", "display_share")


def observed_weeks(path: Path, keys: list[str], first: int, T: int,
                   default_location: str = "default") -> np.ndarray:
    """Which (series, week) cells of the replay grid have a row in the CSV.

    Parameters
    ----------
    path : Path
        The generic CSV (``timestamp``, ``sku``, optional ``location`` columns are read).
    keys : list of str
        Series of the replay grid (``sku@location``), n of them, in grid order.
    first : int
        Epoch seconds (UTC) of the grid's week 0 (``BacktestArrays.first``).
    T : int
        Weeks in the grid.
    default_location : str
        Location of rows without one (as in :func:`streams.datasets.load_generic`).

    Returns
    -------
    np.ndarray, shape (n, T), bool
        True where the CSV has at least one row for the series in that week, whatever its
        quantity (a row with quantity 0 is an observed zero, although the loader drops it as
        an order line). Rows of series not in ``keys`` are ignored.
    """
    step = period_seconds("W")
    index = {k: i for i, k in enumerate(keys)}
    seen = np.zeros((len(keys), T), dtype=bool)
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = [c.strip().lower() for c in next(reader, [])]
        i_ts, i_sku = header.index("timestamp"), header.index("sku")
        i_loc = header.index("location") if "location" in header else None
        for row in reader:
            if not row or len(row) <= max(i_ts, i_sku):
                continue
            loc = (row[i_loc].strip() if i_loc is not None and i_loc < len(row) else "")
            i = index.get(f"{row[i_sku].strip()}@{loc or default_location}")
            if i is None:
                continue
            try:
                t = (period_start("W", epoch(_parse_ts(row[i_ts]))) - first) // step
            except ValueError:
                continue
            if 0 <= t < T:
                seen[i, t] = True
    return seen


def run_one(path: Path, args: argparse.Namespace) -> dict:
    with path.open() as fh:
        header = fh.readline().strip().lower().split(",")
    extras = tuple(c for c in (args.extra_columns or KNOWN_EXTRAS) if c in header)
    ds = load_generic(path, extra_columns=extras if not args.no_extras else ())
    H, m = args.horizon, args.season_length
    out: dict = {"data": str(path), "series": 0, "extras": list(extras), "timing_s": {}}
    arrs = {}
    for name, cov in (("restock+cov", True), ("restock", False)):
        t0 = time.perf_counter()
        arrs[name] = replay(ds.sales, "W", H, covariates=cov, plan_lead=args.plan_lead,
                            season_length=m)
        out["timing_s"][name] = round(time.perf_counter() - t0, 2)
    a = arrs["restock"]
    t0 = time.perf_counter()
    base = run_baselines(a.y, a.first_period, H, args.baseline_season, args.baselines.split(","),
                         args.refit_every, min_history=args.min_history) if args.baselines else {}
    out["timing_s"]["baselines"] = round(time.perf_counter() - t0, 2)
    n, T, _ = a.mean.shape
    start = a.first_period[:, None, None] + args.min_history
    valid = np.isfinite(a.mean) & (np.arange(T)[None, :, None] >= start)
    for arr in arrs.values():
        assert np.array_equal(arr.y, a.y)
        valid &= np.isfinite(arr.mean)
    for f in base.values():
        valid &= np.isfinite(f)
    # the target week t of cell (i, t, h) must have a CSV row for series i (module docstring)
    seen = observed_weeks(path, a.keys, a.first, T)
    cells_all = int(valid.sum())
    cells_observed = int((valid & seen[:, :, None]).sum())
    if not args.score_unobserved:
        valid &= seen[:, :, None]
    yy = np.where(valid, np.broadcast_to(a.y[:, :, None], a.mean.shape), np.nan)
    scales = np.array([seasonal_naive_scale(a.y[i, a.first_period[i]:], 1) for i in range(n)])
    sc = np.broadcast_to(scales[:, None, None], valid.shape)
    res = {}
    for name, arr in arrs.items():
        res[name] = summarize(yy, np.where(valid, arr.mean, np.nan),
                              q90=np.where(valid, arr.q90, np.nan),
                              q95=np.where(valid, arr.q95, np.nan), scale=sc)
        served = arr.model[valid]
        res[name]["served"] = {mn: int((served == i).sum()) for i, mn in enumerate(arr.model_names)}
    for name, f in base.items():
        res[name] = summarize(yy, np.where(valid, f, np.nan), scale=sc)
    out.update(series=n, periods=T, cells=int(valid.sum()), cells_all=cells_all,
               cells_observed=cells_observed, observed_weeks=int(seen.sum()),
               scoring="all" if args.score_unobserved else "observed", metrics=res)
    best = min(base, key=lambda k: res[k]["wape"]) if base else None
    out["wape_ratio_vs_no_covariates"] = res["restock+cov"]["wape"] / res["restock"]["wape"]
    if best:
        out["best_baseline"] = best
        out["wape_ratio_vs_best_baseline"] = res["restock+cov"]["wape"] / res[best]["wape"]
    return out


def print_table(rep: dict) -> None:
    print(f"\n{Path(rep['data']).name}: {rep['series']} series x {rep['periods']} weeks, "
          f"{rep['cells']} cells (h=1..{rep['horizon']}), extras {rep['extras']}")
    print(f"scoring: {rep['scoring']} cells; observed rule keeps {rep['cells_observed']}, "
          f"all-cells rule (--score-unobserved) keeps {rep['cells_all']} "
          f"({rep['observed_weeks']} observed series-weeks)")
    print(f"{'method':<26}{'WAPE':>8}{'bias':>8}{'MASE':>8}{'q90 cov':>9}{'q95 cov':>9}")
    for name, r in rep["metrics"].items():
        def f(v: float | None) -> str:
            return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"
        print(f"{name:<26}{f(r['wape']):>8}{f(r['bias']):>8}{f(r['mase']):>8}"
              f"{f(r['coverage_q90']):>9}{f(r['coverage_q95']):>9}")
    line = f"WAPE ratio restock+cov / restock = {rep['wape_ratio_vs_no_covariates']:.3f}"
    if "best_baseline" in rep:
        line += (f"; / best baseline ({rep['best_baseline']}) = "
                 f"{rep['wape_ratio_vs_best_baseline']:.3f}")
    print(line + "  (target <= 0.75)")
    print(f"timing (s): {rep['timing_s']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="*", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--horizon", type=int, default=4, help="forecast horizon (weeks)")
    ap.add_argument("--plan-lead", type=int, default=None,
                    help="weeks a plan is known ahead (default: horizon)")
    ap.add_argument("--season-length", type=int, default=1,
                    help="restock season length (weeks; cheese has no calendar, see its README)")
    ap.add_argument("--baseline-season", type=int, default=52,
                    help="season length of the baselines")
    ap.add_argument("--baselines", default="naive,seasonal_naive,croston_sba,tsb,adida",
                    help="add auto_ets for AutoETS (about 3 minutes on tuna at season 52)")
    ap.add_argument("--refit-every", type=int, default=4, help="baseline refit interval (weeks)")
    ap.add_argument("--min-history", type=int, default=20, help="weeks of history before scoring")
    ap.add_argument("--extra-columns", nargs="*", default=None,
                    help="numeric columns read as x_ covariates "
                         f"(default: those of {KNOWN_EXTRAS} present)")
    ap.add_argument("--no-extras", action="store_true", help="price and promo flag only")
    ap.add_argument("--score-unobserved", action="store_true",
                    help="also score weeks without a CSV row as zero demand (the former rule)")
    ap.add_argument("--json", type=Path, default=Path("out/promo_backtest.json"))
    args = ap.parse_args()
    reports = []
    for path in args.data:
        rep = run_one(path, args)
        rep["horizon"] = args.horizon
        print_table(rep)
        reports.append(rep)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                     "reports": reports}, indent=2, default=float) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
