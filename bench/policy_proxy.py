"""Research simulator of restock's window policy: variants and oracles on one frontier, in seconds.

Not the production path (that is ``restock simulate``, the same pipeline as the worker); a
vectorised stand-in to screen policy ideas before building them. Each variant runs restock's
demand-window policy over the whole panel with numpy: at the end of every period each SKU's

* rate ``r`` (units per period) = a window mean of its demand (the variant says which window),
* dispersion ``CV^2`` = bias-corrected exponentially weighted moments of per-period demand
  (Kingma & Ba 2015, Alg. 1; span per variant),
* level: the critical fractile ``c / (c + h v R (1 + CV^2))`` of a lost-unit cost ``c``
  (v the SKU's price, h the holding rate per year, R the review period in years; the lumpiness
  discount k = 1), clipped to [0.5, 1),
* ``s = r L + z sqrt(CV^2 r^2 L)`` and ``S = r (L + R) + z sqrt(CV^2 r^2 (L + R))`` (Silver,
  Pyke & Thomas 2017, Ch. 6),

then orders ``S - IP`` when ``IP <= s``, lost sales, lead time L periods, as the baseline rules of
:mod:`streams.rules`. Sweeping ``c`` traces the variant's curve; each curve is read at fill rates
0.85 / 0.90 / 0.93 / 0.95 as a ratio to the best baseline rule (static, rolling, batch ADIDA:
:func:`streams.frontier.run_baselines`, same panel, same seed) in the same run.

Oracles (no policy can have them; they bound what a better estimate buys): the realised mean,
or the realised variance, of the SKU's next 56 days (8 weeks) of demand.

Usage::

    python bench/policy_proxy.py                              # Online Retail, 300 SKUs, daily
    python bench/policy_proxy.py --data ../shared/data/promo/cheese_weekly.csv --freq W

On Online Retail (2026-12-07) it tracks ``restock simulate`` within about 0.03 on the ratio
(proxy 0.85 / 0.88 / 0.91 vs 0.88 / 0.91 / 0.92 at fill 0.90 / 0.93 / 0.95 for the former
defaults); on the weekly panels it is not faithful (restock's weekly order timing differs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.demand import epoch  # noqa: E402
from agents.repeat_buyers import RepeatBuyers, customer_key  # noqa: E402
from streams.cli import _data_or_fail  # noqa: E402
from streams.closed_loop import DemoOptions, static_baseline_params  # noqa: E402
from streams.frontier import interpolate_value_at_fill, run_baselines  # noqa: E402
from streams.panel import DemandPanel, load_panel  # noqa: E402
from streams.rules import static_seed  # noqa: E402
from streams.simulate import BASELINE_TARGETS, simulation_settings  # noqa: E402

FILLS = (0.85, 0.90, 0.93, 0.95)
COSTS = np.geomspace(0.003, 30.0, 16)


def window_mean(d: np.ndarray, w: int, min_h: int) -> np.ndarray:
    """Mean demand of the last ``w`` periods at the end of each period, shape ``d.shape``.

    A history shorter than ``min_h`` periods is averaged over ``min_h`` (unseen periods count 0).
    """
    n, t = d.shape
    c = np.concatenate([np.zeros((n, 1)), np.cumsum(d, axis=1)], axis=1)
    h = np.arange(1, t + 1)
    lo = np.maximum(0, h - w)
    return (c[:, h] - c[:, lo]) / np.maximum(np.minimum(h, w), min_h)


def ew_cv2(d: np.ndarray, span: float) -> np.ndarray:
    """Squared CV of per-period demand from bias-corrected EW moments (span in periods)."""
    n, t = d.shape
    a = 2.0 / (span + 1.0)
    m1, m2 = np.zeros(n), np.zeros(n)
    out = np.zeros((n, t))
    for p in range(t):
        m1 = (1 - a) * m1 + a * d[:, p]
        m2 = (1 - a) * m2 + a * d[:, p] ** 2
        bc = 1 - (1 - a) ** (p + 1)
        mu, sq = m1 / bc, m2 / bc
        out[:, p] = np.where(mu > 0, np.maximum(sq - mu**2, 0) / np.maximum(mu, 1e-12) ** 2, 0.0)
    return out


def repeat_buyers(panel: DemandPanel, total_rate: np.ndarray | None, *, bulk_periods: float = 4.0,
                  prior_orders: float = 1.0, prior_periods: float = 90.0, capacity: int = 8,
                  window: int = 56, min_h: int = 28) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stand-in of :mod:`agents.repeat_buyers`: regular demand, buyers' mean and variance per period.

    A line above ``bulk_periods`` x the SKU's total rate at the end of the previous period
    (``total_rate``, shape ``(n, t)``; None: the regular demand's ``window``-period mean, the
    variant that feeds back: each buyer lowers the rate that finds the next) makes its customer
    a repeat buyer; their lines (that one included) leave the regular demand. At the end of
    period ``p`` the buyers' compound Poisson demand per period is ``sum lambda size`` and
    ``sum lambda size^2``, with
    ``lambda = (c + prior_orders) / (tau + prior_periods)`` (``tau`` periods since the first
    purchase, ``c`` purchases), as the worker computes them for the open period ``p + 1``: the
    bookkeeping is the worker's own :class:`agents.repeat_buyers.RepeatBuyers` (period index as
    the period start, a step of 1). Returns ``(regular, mean, var)``, each ``(n, t)``.
    """
    n, t = panel.demand.shape
    row = {k: i for i, k in enumerate(panel.keys)}
    regular = panel.demand.astype(float).copy()
    mean, var = np.zeros((n, t)), np.zeros((n, t))
    buyers = [RepeatBuyers() for _ in range(n)]
    lines = sorted(((epoch(r.occurred_at) - panel.first) // panel.step, row[r.key], r.customer_id,
                    float(r.quantity)) for r in panel.sales if r.customer_id and r.quantity > 0)
    prior = {"prior_orders": prior_orders, "prior_periods": prior_periods}
    j = 0
    for p in range(t):
        while j < len(lines) and lines[j][0] == p:
            _, i, c, q = lines[j]
            j += 1
            if total_rate is not None:
                r0 = total_rate[i, p - 1] if p > 0 else 0.0
            else:
                r0 = regular[i, max(0, p - window):p].sum() / max(min(p, window), min_h) if p > 0 else 0.0
            key = customer_key(c)
            if buyers[i].is_buyer(key) or (r0 > 0 and q > bulk_periods * r0):
                buyers[i].record(p, key, q)
                regular[i, p] -= q
        for i, b in enumerate(buyers):
            if b:
                b.close(p, step=1, capacity=capacity, **prior)
                mean[i, p], var[i, p] = b.moments(p + 1, step=1, **prior)
    return np.maximum(regular, 0.0), mean, var


def simulate(demand: np.ndarray, seed: np.ndarray, s: np.ndarray, S: np.ndarray, price: np.ndarray,
             lead: int, warm: int) -> tuple[float, float]:
    """Fill rate and mean on-hand value (currency) of the evaluation periods, lost sales."""
    n, t = demand.shape
    on_hand = seed.astype(np.int64).copy()
    on_order = np.zeros(n, np.int64)
    arrivals = np.zeros((n, t + lead), np.int64)
    dem = served = 0
    value = 0.0
    for p in range(t):
        on_hand += arrivals[:, p]
        on_order -= arrivals[:, p]
        q = demand[:, p]
        sv = np.minimum(on_hand, q)
        on_hand -= sv
        ip = on_hand + on_order
        oq = np.where((ip <= s[:, p]) & (S[:, p] - ip > 0), np.ceil(S[:, p] - ip), 0).astype(np.int64)
        arrivals[:, p + lead] += oq
        on_order += oq
        if p >= warm:
            dem += int(q.sum())
            served += int(sv.sum())
            value += float(on_hand @ price)
    return served / max(dem, 1), value / max(t - warm, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="generic CSV (default: Online Retail)")
    ap.add_argument("--freq", default="D", choices=["D", "W"])
    ap.add_argument("--skus", type=int, default=300, help="0: all (weekly sets)")
    ap.add_argument("--buyer-bulk-days", type=float, default=4.0,
                    help="repeat buyers: a line above this many days of the SKU's rate marks its customer")
    ap.add_argument("--buyer-prior-days", type=float, default=90.0,
                    help="purchase-rate prior: 1 over these days")
    ap.add_argument("--buyer-capacity", type=int, default=8, help="repeat buyers kept per SKU")
    ap.add_argument("--buyer-threshold", choices=["total", "regular"], default="total",
                    help="the rate a bulk line is measured against")
    ap.add_argument("--buyer-hold", choices=["total", "regular"], default="total",
                    help="the CV^2 of the lumpiness discount")
    ap.add_argument("--only-buyers", action="store_true", help="run the repeat-buyer variant alone")
    a = ap.parse_args()
    t0 = time.perf_counter()
    if a.data:
        opts = DemoOptions(data=a.data, fmt="generic", freq=a.freq, skus=a.skus or None)
    else:
        opts = DemoOptions(data=_data_or_fail(None))
    settings = simulation_settings(opts)
    panel = load_panel(opts.data, opts.fmt, opts.freq, opts.skus, opts.start, opts.end,
                       opts.warmup_fraction)
    params = static_baseline_params(settings)
    base_rows, _ = run_baselines(panel, params, BASELINE_TARGETS, seed_params=params)
    policies = sorted({r["policy"] for r in base_rows})

    d = panel.demand.astype(float)
    price = panel.price.astype(float)
    seed = static_seed(panel, params)
    L, R = params.lead_time_periods, params.review_period_periods
    lead = int(round(L))
    hR = params.holding_cost_rate * R / params.periods_per_year
    daily = panel.freq == "D"
    days = 1 if daily else 7
    per = lambda x: max(1, round(x / days))  # noqa: E731 - days -> periods
    min_h = per(28)
    W = per(56)
    n, t = d.shape
    nxt = [d[:, p + 1: p + 1 + W] for p in range(t)]  # the next W periods after each review
    fut_mean = np.stack([w.mean(axis=1) if w.shape[1] else d[:, -1] for w in nxt], axis=1)
    fut_var = np.stack([w.var(axis=1) if w.shape[1] > 1 else np.zeros(n) for w in nxt], axis=1)

    def curve(rate: np.ndarray, cv2: np.ndarray, var: np.ndarray | None = None,
              extra: tuple[np.ndarray, np.ndarray] | None = None,
              hold_cv2: np.ndarray | None = None) -> list[float | None]:
        var = cv2 * rate**2 if var is None else var
        em, ev = extra if extra is not None else (0.0, 0.0)  # added per period (repeat buyers)
        hold = price[:, None] * (1 + (cv2 if hold_cv2 is None else hold_cv2)) * hR
        pts = []
        for c in COSTS:
            z = special.ndtri(np.clip(c / (c + hold), 0.5, 1 - 1e-9))
            s = (rate + em) * L + np.maximum(0, z * np.sqrt((var + ev) * L))
            S = np.maximum((rate + em) * (L + R) + np.maximum(0, z * np.sqrt((var + ev) * (L + R))), s)
            f, v = simulate(panel.demand, seed, s, S, price, lead, panel.warmup_periods)
            pts.append({"fill_rate": f, "mean_on_hand_value": v})
        out: list[float | None] = []
        for fill in FILLS:
            mine = interpolate_value_at_fill(pts, fill)
            best = [b for pol in policies
                    if (b := interpolate_value_at_fill([r for r in base_rows if r["policy"] == pol], fill))]
            out.append(None if mine is None or not best else mine / min(best))
        return out

    r_min = np.minimum(window_mean(d, per(28), min_h), window_mean(d, per(84), min_h))
    r56 = window_mean(d, per(56), min_h)
    r84 = window_mean(d, per(84), min_h)
    c365, c730 = ew_cv2(d, per(365)), ew_cv2(d, per(730))
    variants: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None, Any, Any]] = [
        ("former default: min(28 d, 84 d) mean, span 365 d", r_min, c365, None, None, None),
        ("min(28 d, 84 d), span 730 d", r_min, c730, None, None, None),
        ("84 d mean, span 730 d", r84, c730, None, None, None),
        ("56 d mean, span 730 d (default until 2026-12-08)", r56, c730, None, None, None),
        ("oracle: next 56 d variance, 56 d mean", r56, c730, fut_var, None, None),
        ("oracle: next 56 d mean, span 730 d", fut_mean, c730, c730 * r56**2, None, None),
    ]
    if any(r.customer_id for r in panel.sales[:1000]):
        reg, bm, bv = repeat_buyers(panel, r56 if a.buyer_threshold == "total" else None,
                                    bulk_periods=a.buyer_bulk_days / days,
                                    prior_periods=a.buyer_prior_days / days, capacity=a.buyer_capacity,
                                    window=W, min_h=min_h)
        rr, cr = window_mean(reg, W, min_h), ew_cv2(reg, per(730))
        variants.append(("default: repeat buyers + 56 d regular mean", rr, cr, None, (bm, bv),
                         c730 if a.buyer_hold == "total" else cr))
        # the bound: the repeat buyers' next L + R periods known exactly (no model has it)
        lr = int(np.ceil(L + R))
        known = d - reg
        ck = np.concatenate([np.zeros((n, 1)), np.cumsum(known, axis=1)], axis=1)
        hi = np.minimum(np.arange(t) + 1 + lr, t)
        fut_known = (ck[:, hi] - ck[:, np.arange(t) + 1]) / (L + R)
        variants.append(("oracle: repeat buyers' next L + R periods", rr, cr, None,
                         (fut_known, np.zeros_like(fut_known)), c730))
    print(f"{opts.data.name}, {panel.freq}, {n} SKUs: restock-like policy / best baseline at fill "
          + " / ".join(f"{f:.2f}" for f in FILLS))
    if a.only_buyers:
        variants = [v for v in variants if v[0].startswith("default")]
    for name, rate, cv2, var, extra, hold_cv2 in variants:
        ratios = curve(rate, cv2, var, extra, hold_cv2)
        print(f"  {name:45s} " + "  ".join("   -" if r is None else f"{r:.3f}" for r in ratios), flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
