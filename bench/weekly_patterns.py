"""Why the weekly promo sets resist: the demand patterns behind their frontiers (issue #17).

For each generic weekly CSV given (default: ``../shared/data/promo/{tuna,cheese}_weekly.csv``),
on the panel the closed loop replays (:func:`streams.panel.load_panel`, warm-up quarter):

* the trend through the evaluation window: each SKU's mean week in the second half over the
  first half (percentiles over SKUs);
* the spikes: the share of units in weeks above 3x the SKU's median week, the share of those
  units in promotion weeks (``promo`` = 1), and the share of promotion weeks that spike.

    python bench/weekly_patterns.py
"""

from __future__ import annotations

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.panel import load_panel  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "promo"


def main(paths: list[Path]) -> None:
    for path in paths:
        panel = load_panel(path, "generic", "W", None, None, None, 0.25)
        d = panel.demand.astype(float)
        w, t = panel.warmup_periods, d.shape[1]
        half = w + (t - w) // 2
        trend = d[:, half:].mean(axis=1) / np.maximum(d[:, w:half].mean(axis=1), 1e-9)
        by: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
        with path.open() as f:
            for r in csv.DictReader(f):
                by[(r["sku"], r["location"])].append(r)
        units = spike = spike_promo = 0.0
        promo_weeks = promo_spikes = 0
        for rows in by.values():
            q = [float(r["quantity"]) for r in rows]
            med = statistics.median(q)
            for r, x in zip(rows, q, strict=True):
                promo = r.get("promo") == "1"
                units += x
                promo_weeks += promo
                if x > 3 * max(med, 1.0):
                    spike += x
                    spike_promo += x * promo
                    promo_spikes += promo
        print(f"{path.name}: {d.shape[0]} SKUs, {t} weeks ({w} warm-up)")
        print("  second / first half of the evaluation, percentiles 10/25/50/75/90 over SKUs: "
              + " / ".join(f"{v:.2f}" for v in np.percentile(trend, [10, 25, 50, 75, 90])))
        print(f"  units in weeks above 3x the SKU's median week: {spike / units:.3f}; of those in "
              f"promotion weeks: {spike_promo / max(spike, 1.0):.3f}; promotion weeks that spike: "
              f"{promo_spikes / max(promo_weeks, 1):.3f} of {promo_weeks}")


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or [SHARED / "tuna_weekly.csv", SHARED / "cheese_weekly.csv"])
