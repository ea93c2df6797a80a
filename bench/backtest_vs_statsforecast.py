"""Bench 5: ``restock backtest``'s replay vs statsforecast ``cross_validation``, same cells.

Series: the top ``--skus`` Online Retail SKUs by volume (``--skus 0``: all 3,790) that have at
least ``--windows`` + 7 + 28 days from their first sale to the end, daily, zero-filled (exactly
the series restock learns). Both sides get the same cells: every cutoff ``c`` among the last
``--windows`` days and horizons h = 1..7.

* **restock**: :func:`streams.backtest.replay` (what ``restock backtest`` runs: every order
  through :class:`agents.processor.SkuProcessor`, forecasting h = 1..7 before learning each
  period, over the whole history). Wall time = the replay.
* **statsforecast** ``StatsForecast.cross_validation(h=7, step_size=1, n_windows=W)``, one
  model at a time, ``n_jobs=--n-jobs``: AutoETS(season_length=7) with ``refit=--refit-every``
  (between refits statsforecast's ``forward`` updates the state with the new data), and
  CrostonSBA, TSB(0.1, 0.1) and ADIDA with ``refit=True`` (they have no ``forward``; they are
  refit at every cutoff, which is what rolling-origin CV means).

Reports wall time and WAPE (sum |y - yhat| / sum y over the common cells) of each, and the
ratios: time(statsforecast) / time(restock) (target >= 10) and WAPE(restock) / WAPE(model)
(target <= 1). AutoETS on all SKUs costs 20-40 minutes; ``--skus`` defaults to 200.

    python bench/backtest_vs_statsforecast.py --skus 200 \
        --json out/bench/backtest_vs_statsforecast.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, machine, print_table, ratio, write_json  # noqa: E402

MODELS = ("AutoETS", "CrostonSBA", "TSB", "ADIDA")


def wape(y: Any, f: Any) -> float:
    """WAPE of forecasts ``f`` against actuals ``y`` (arrays of the same shape).

    >>> import numpy as np
    >>> wape(np.array([1.0, 3.0]), np.array([2.0, 3.0]))
    0.25
    """
    import numpy as np

    return float(np.abs(y - f).sum() / y.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skus", type=int, default=200, help="top SKUs by volume; 0 = all")
    ap.add_argument("--windows", type=int, default=280, help="cutoffs (the last W days)")
    ap.add_argument(
        "--refit-every", type=int, default=28, help="AutoETS refit (statsforecast refit=int)"
    )
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile the restock replay (a second pass) and list the top functions",
    )
    ap.add_argument("--json", type=Path, default=OUT / "backtest_vs_statsforecast.json")
    args = ap.parse_args()

    import numpy as np
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast import models as sfm

    from streams.backtest import replay
    from streams.cli import DEFAULT_DATA
    from streams.datasets import load

    H, W, MIN_TRAIN = 7, args.windows, 28
    t_start = time.perf_counter()
    ds_all = load(DEFAULT_DATA)
    # eligible SKUs: long enough for W cutoffs after 28 training days; then the top by volume
    sales = ds_all.sales
    first_day: dict[str, int] = {}
    volume: dict[str, float] = {}
    t0_all = int(sales[0].occurred_at.timestamp()) // 86400
    t_end = int(sales[-1].occurred_at.timestamp()) // 86400
    for r in sales:
        d = int(r.occurred_at.timestamp()) // 86400
        first_day.setdefault(r.key, d)
        volume[r.key] = volume.get(r.key, 0.0) + r.quantity
    eligible = [k for k, d in first_day.items() if (t_end - d + 1) >= W + H + MIN_TRAIN]
    eligible.sort(key=lambda k: -volume[k])
    chosen = set(eligible if args.skus == 0 else eligible[: args.skus])
    sub = [r for r in sales if r.key in chosen]
    _ = t0_all

    t0 = time.perf_counter()
    arr = replay(sub, "D", H)
    t_restock = time.perf_counter() - t0
    print(f"restock replay: {len(chosen)} SKUs, {len(sub)} orders, {t_restock:.1f} s", flush=True)
    replay_profile = None
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(replay, sub, "D", H)
        st = pstats.Stats(prof).stats  # type: ignore[attr-defined]
        top = sorted(st.items(), key=lambda kv: -kv[1][3])[:30]
        replay_profile = [
            {
                "function": f"{Path(fn).name}:{ln}:{nm}",
                "calls": nc,
                "cum_s": round(ct, 3),
                "own_s": round(tt, 3),
            }
            for (fn, ln, nm), (_cc, nc, tt, ct, _c) in top
        ]
        print_table(
            "restock replay, cProfile (top by cumulative time)",
            ["function", "calls", "cum s", "own s"],
            [[r["function"], r["calls"], r["cum_s"], r["own_s"]] for r in replay_profile],
        )

    n, T = arr.y.shape
    first = pd.Timestamp(arr.first, unit="s")
    frames = []
    for i, k in enumerate(arr.keys):
        fp = int(arr.first_period[i])
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": k,
                    "ds": first + pd.to_timedelta(np.arange(fp, T), unit="D"),
                    "y": arr.y[i, fp:],
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    index = {k: i for i, k in enumerate(arr.keys)}

    def make(name: str) -> Any:
        if name == "AutoETS":
            return sfm.AutoETS(season_length=7)
        if name == "TSB":
            return sfm.TSB(alpha_d=0.1, alpha_p=0.1)
        return getattr(sfm, name)()

    rows: list[dict[str, Any]] = []
    restock_wape = None
    cells = None
    for name in [m for m in args.models.split(",") if m]:
        refit: Any = args.refit_every if name == "AutoETS" else True
        sf = StatsForecast(models=[make(name)], freq="D", n_jobs=args.n_jobs)
        t0 = time.perf_counter()
        cv = sf.cross_validation(df=df, h=H, step_size=1, n_windows=W, refit=refit)
        dt = time.perf_counter() - t0
        cv = cv.reset_index() if "unique_id" not in cv.columns else cv
        col = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y", "index")][0]
        ii = cv["unique_id"].map(index).to_numpy()
        t_idx = ((cv["ds"] - first) / pd.Timedelta(days=1)).round().astype(int).to_numpy()
        h_idx = ((cv["ds"] - cv["cutoff"]) / pd.Timedelta(days=1)).round().astype(int).to_numpy()
        ours = arr.mean[ii, t_idx, h_idx - 1]
        y = cv["y"].to_numpy(dtype=float)
        f = cv[col].to_numpy(dtype=float)
        ok = np.isfinite(ours) & np.isfinite(f)
        w_model, w_ours = wape(y[ok], f[ok]), wape(y[ok], ours[ok])
        restock_wape, cells = w_ours, int(ok.sum())
        rows.append(
            {
                "model": name,
                "refit": refit,
                "wall_s": round(dt, 2),
                "wape": round(w_model, 4),
                "restock_wape_same_cells": round(w_ours, 4),
                "cells": int(ok.sum()),
                "time_ratio_sf_over_restock": ratio(dt, t_restock),
                "wape_ratio_restock_over_model": ratio(w_ours, w_model),
            }
        )
        print(
            f"{name}: {dt:.1f} s, WAPE {w_model:.3f} (restock {w_ours:.3f}) on {ok.sum()} cells",
            flush=True,
        )
    total_sf = sum(r["wall_s"] for r in rows)
    out = {
        "bench": "backtest_vs_statsforecast",
        "skus": len(chosen),
        "skus_eligible": len(eligible),
        "orders": len(sub),
        "windows": W,
        "horizon": H,
        "n_jobs": args.n_jobs,
        "restock_wall_s": round(t_restock, 2),
        "restock_wape": restock_wape,
        "cells": cells,
        "statsforecast": rows,
        "replay_profile": replay_profile,
        "statsforecast_total_wall_s": round(total_sf, 2),
        "time_ratio_total": ratio(total_sf, t_restock),
        "time_ratio_min": min((r["time_ratio_sf_over_restock"] for r in rows), default=None),
        "wape_ratio_max": max((r["wape_ratio_restock_over_model"] for r in rows), default=None),
        "target": "time ratio >= 10 at WAPE ratio <= 1",
        "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": machine(),
    }
    out["met_vs_all_models_total"] = bool(
        (out["time_ratio_total"] or 0) >= 10 and (out["wape_ratio_max"] or 9) <= 1
    )
    print_table(
        f"5. backtest vs statsforecast cross_validation ({len(chosen)} SKUs, {W} cutoffs x h=1..7, "
        f"n_jobs={args.n_jobs})",
        ["method", "wall s", "WAPE", "time ratio (sf / restock)", "WAPE ratio (restock / model)"],
        [["restock replay (all origins)", t_restock, restock_wape, 1.0, 1.0]]
        + [
            [
                f"statsforecast {r['model']} (refit={r['refit']})",
                r["wall_s"],
                r["wape"],
                r["time_ratio_sf_over_restock"],
                r["wape_ratio_restock_over_model"],
            ]
            for r in rows
        ]
        + [
            [
                "statsforecast, all four",
                total_sf,
                None,
                out["time_ratio_total"],
                out["wape_ratio_max"],
            ]
        ],
    )
    write_json(args.json, out)


if __name__ == "__main__":
    main()
