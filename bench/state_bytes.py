"""Encoded SKU state size after the closed loop, with and without a policy option, in one process.

Runs ``restock simulate``'s loop (:func:`streams.closed_loop.run_closed_loop` on the in-memory
transport) on the shipped Online Retail data and reports the distribution of
``len(SkuState.encode())`` over the SKUs at the end (the value restock writes to Redis, before
the key and the partition index), and how many SKUs keep repeat buyers. Bench 4
(``bench/cost_per_sku.py``) measures the same bytes in Redis over the broker; this is the quick
in-process check of what a state change costs.

    python bench/state_bytes.py --skus 0                     # all SKUs, the defaults
    RESTOCK_REPEAT_BUYERS=false python bench/state_bytes.py --skus 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.cli import _data_or_fail  # noqa: E402
from streams.closed_loop import DemoOptions, run_closed_loop  # noqa: E402
from streams.panel import load_panel  # noqa: E402
from streams.simulate import InProcessTransport, simulation_settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skus", type=int, default=300, help="0: every SKU with warm-up demand")
    a = ap.parse_args()
    opts = DemoOptions(data=_data_or_fail(None), skus=a.skus or None, json_path=None, plot_path=None,
                       progress=False)
    settings = simulation_settings(opts)
    panel = load_panel(opts.data, opts.fmt, opts.freq, opts.skus, opts.start, opts.end, opts.warmup_fraction)
    transport = InProcessTransport(settings, cache_size=max(1000, 2 * len(panel.keys)))
    result = asyncio.run(run_closed_loop(opts, settings, panel, transport))
    states = transport.final_states(panel.keys)
    size = np.array([len(s.encode()) for s in states.values()])
    buyers = np.array([len(s.buyers.known) for s in states.values()])
    print(json.dumps({
        "repeat_buyers": settings.repeat_buyers, "skus": int(size.size),
        "state_bytes": {"median": float(np.median(size)), "p90": float(np.percentile(size, 90)),
                        "p99": float(np.percentile(size, 99)), "max": int(size.max())},
        "skus_with_buyers": round(float((buyers > 0).mean()), 4),
        "buyers_per_sku_median": float(np.median(buyers)),
        "fill_rate": result["restock"]["fill_rate"]}))


if __name__ == "__main__":
    main()
