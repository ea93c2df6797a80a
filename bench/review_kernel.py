"""Bench: the period review kernel (agents.review.kernel) vs the per-SKU scalar decide, same run.

One period close of ``--skus`` synthetic SKUs (default 100k), all decided: every SKU has
demand (rate drawn log-normally, squared CV uniform in [0.05, 4]) and an inventory position
below its reorder point, so every SKU reorders and is projected. Two service targets: the cycle
service level 0.95 and the fill rate 0.95 (the default of ``streams/settings.py``); daily
periods, L = 7, R = 1, horizon 28, normal demand.

* **kernel**: one pass over the columns: the window moments as (N, ceil(L + R)) matrices,
  :func:`level_columns`, :func:`decide_masks`, then :func:`projection_columns` of the reordering
  SKUs over the 28-period horizon moments. Best of ``--repeat`` runs.
* **scalar**: what :meth:`DecisionMaker.decide` computes per SKU on the same inputs:
  :func:`compute_levels` on the SKU's window moments, :func:`order_quantity`,
  :func:`project_inventory`; on a sample of ``--sample-csl`` / ``--sample-fill`` SKUs,
  extrapolated per SKU (the fill rate's ``brentq`` costs ~1.5 ms per SKU).

Neither side builds the pydantic decision events (the sweep builds them only for the SKUs that
decide, on both paths alike). The sample's levels, quantities and stockout probabilities are
checked equal between the two. Then ``--big`` SKUs (default 1M) through the levels and decide
masks (no projection: in a real close only the deciding SKUs are projected): the pass's
duration and the bytes per SKU of its column arrays (inputs and outputs).

Prints a table and writes ``out/bench/review_kernel.json``:

    python bench/review_kernel.py [--skus 100000] [--big 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import OUT, machine, print_table, ratio, write_json  # noqa: E402

from agents.policy import PolicyParams, compute_levels, order_quantity, project_inventory  # noqa: E402
from agents.review.kernel import (  # noqa: E402
    decide_masks,
    level_columns,
    projection_columns,
)

LEAD, REVIEW, HORIZON, T = 7.0, 1.0, 28, 1_700_000_000


def synthetic(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Columns of ``n`` SKUs that all reorder: rate, CV^2, stock, horizon moments (units)."""
    rng = np.random.default_rng(seed)
    rate = np.exp(rng.normal(0.0, 1.5, n)) + 0.01
    cv2 = rng.uniform(0.05, 4.0, n)
    on_hand = np.zeros(n)
    back = rng.integers(0, 5, n).astype(float)
    hmean = rate[:, None] * rng.uniform(0.5, 1.5, (n, HORIZON))
    hvar = hmean * rng.uniform(1.0, 3.0, (n, HORIZON))
    return {"rate": rate, "cv2": cv2, "on_hand": on_hand, "back": back, "hmean": hmean, "hvar": hvar}


def params(target: str) -> PolicyParams:
    """The policy of the run: L = 7, R = 1 periods, CSL or fill rate 0.95."""
    kw: dict[str, Any] = {"lead_time_periods": LEAD, "review_period_periods": REVIEW}
    kw["fill_rate" if target == "fill_rate" else "cycle_service_level"] = 0.95
    return PolicyParams(**kw)


def kernel_pass(c: dict[str, np.ndarray], p: PolicyParams, project: bool = True) -> tuple[Any, ...]:
    """One review of all SKUs: levels, decide masks, projections of the reordering SKUs."""
    n = c["rate"].size
    hl = int(np.ceil(LEAD + REVIEW))
    mean = np.repeat(c["rate"][:, None], hl, axis=1)
    var = (c["cv2"][:, None] * mean) * mean
    lc = level_columns(mean, var, p)
    ip = c["on_hand"] - c["back"]
    zeros = np.zeros(n)
    no = np.zeros(n, dtype=bool)
    dm = decide_masks(ip, lc, T, open_expires_at=zeros, open_level=zeros, open_quantity=zeros,
                      has_open=no, has_overstock=no, reemit_change_fraction=0.25)
    pc = None
    if project:
        r = dm.reorder
        pc = projection_columns(c["on_hand"][r], c["back"][r], np.zeros((int(r.sum()), HORIZON)),
                                c["hmean"][r], c["hvar"][r], LEAD)
    return lc, dm, pc, (mean, var, ip, zeros, no)


def scalar_pass(c: dict[str, np.ndarray], p: PolicyParams, idx: np.ndarray) -> list[tuple[float, int, float]]:
    """The per-SKU path on the SKUs ``idx``: compute_levels, order_quantity, project_inventory."""
    hl = int(np.ceil(LEAD + REVIEW))
    out = []
    for i in idx.tolist():
        r, cv2 = float(c["rate"][i]), float(c["cv2"][i])
        mean = np.full(hl, r)
        lv = compute_levels(mean, cv2 * mean * mean, p)
        ip = float(c["on_hand"][i] - c["back"][i])
        qty = order_quantity(ip, lv.reorder_point, lv.order_up_to, p.pack_size, p.moq)
        proj = project_inventory(c["on_hand"][i], c["back"][i], [], c["hmean"][i], c["hvar"][i],
                                 within_periods=max(1, int(np.ceil(LEAD))))
        out.append((lv.order_up_to, qty, proj.stockout_probability))
    return out


def best_of(fn: Any, repeat: int) -> float:
    """Fastest of ``repeat`` runs of ``fn()`` (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the bench; return (and write) the results."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skus", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=1_000_000, help="SKUs of the large pass (0: skip)")
    ap.add_argument("--sample-csl", type=int, default=2000)
    ap.add_argument("--sample-fill", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10k SKUs, 100k large pass, small samples")
    ap.add_argument("--json", type=Path, default=OUT / "review_kernel.json")
    a = ap.parse_args(argv)
    if a.quick:
        a.skus, a.big, a.sample_csl, a.sample_fill = 10_000, 100_000, 300, 50
    cols = synthetic(a.skus)
    rows, res = [], {"machine": machine(), "skus": a.skus, "targets": {}}
    rng = np.random.default_rng(1)
    for target, sample in (("cycle_service_level", a.sample_csl), ("fill_rate", a.sample_fill)):
        p = params(target)
        lc, dm, pc, _ = kernel_pass(cols, p)
        assert bool(dm.reorder.all()), "every SKU must reorder (all decided)"
        k_s = best_of(lambda p=p: kernel_pass(cols, p), a.repeat)
        idx = np.sort(rng.choice(a.skus, size=min(sample, a.skus), replace=False))
        t0 = time.perf_counter()
        ref = scalar_pass(cols, p, idx)
        s_s = time.perf_counter() - t0
        assert pc is not None
        pos = np.searchsorted(np.flatnonzero(dm.reorder), idx)
        got = list(zip(lc.order_up_to[idx].tolist(), dm.quantity[idx].tolist(),
                       pc.stockout_probability[pos].tolist(), strict=True))
        assert got == ref, "kernel and scalar path disagree on the sample"
        k_us, s_us = k_s / a.skus * 1e6, s_s / len(idx) * 1e6
        res["targets"][target] = {"kernel_us_per_sku": round(k_us, 3), "scalar_us_per_sku": round(s_us, 1),
                                  "scalar_sample": len(idx), "speedup": ratio(s_us, k_us),
                                  "kernel_pass_s": round(k_s, 4)}
        rows.append([target, a.skus, k_us, s_us, len(idx), ratio(s_us, k_us)])
    print_table(f"Period review of {a.skus:,} SKUs, all decided (us per SKU, one core)",
                ["target", "SKUs", "kernel us/SKU", "scalar us/SKU", "scalar sample", "scalar/kernel"], rows)
    if a.big:
        big = synthetic(a.big, seed=2)
        big_rows = []
        res["big"] = {"skus": a.big}
        for target in ("cycle_service_level", "fill_rate"):
            p = params(target)
            t0 = time.perf_counter()
            lc, dm, _, inputs = kernel_pass(big, p, project=False)
            dur = time.perf_counter() - t0
            levels = [getattr(lc, f) for f in lc.__dataclass_fields__]
            arrays = [*inputs, *(x for x in levels if x is not None),
                      dm.expire, dm.reorder, dm.quantity, dm.liveness_violation, dm.overstock_reset,
                      dm.overstock_candidate]
            nbytes = sum(int(x.nbytes) for x in arrays) / a.big
            res["big"][target] = {"pass_s": round(dur, 3), "bytes_per_sku": round(nbytes, 1)}
            big_rows.append([target, a.big, dur, nbytes])
        print_table(f"Levels and decide masks of {a.big:,} SKUs in one pass",
                    ["target", "SKUs", "pass s", "column bytes/SKU"], big_rows)
    write_json(a.json, res)
    return res


if __name__ == "__main__":
    main()
