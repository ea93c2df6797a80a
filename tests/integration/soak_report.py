"""Summarise a ``make soak`` run: faults injected, runs, mismatches (reads RESTOCK_SOAK_REPORT).

Usage: ``python tests/integration/soak_report.py out/soak.jsonl [--markdown]``. Exits 1 when any
run mismatched or no run was recorded.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def summarise(lines: list[str]) -> list[dict[str, object]]:
    """One row per fault: runs, mismatches, mean and max seconds, first mismatch detail."""
    rows: dict[str, dict[str, object]] = defaultdict(lambda: {"runs": 0, "mismatches": 0, "seconds": []})
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line)
        row = rows[r["fault"]]
        row["runs"] = int(row["runs"]) + 1  # type: ignore[call-overload]
        row["seconds"].append(float(r["seconds"]))  # type: ignore[union-attr]
        if r["mismatch"]:
            row["mismatches"] = int(row["mismatches"]) + 1  # type: ignore[call-overload]
            row.setdefault("first_mismatch", f"seed {r['seed']}: {r['mismatch']}")
    out = []
    for fault, row in sorted(rows.items()):
        secs = row.pop("seconds")
        out.append({"fault": fault, **row, "mean_s": round(sum(secs) / len(secs), 1),  # type: ignore[arg-type]
                    "max_s": round(max(secs), 1)})  # type: ignore[type-var]
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path("out/soak.jsonl")
    rows = summarise(path.read_text().splitlines() if path.exists() else [])
    print("| fault injected | runs | mismatches | mean s | max s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['fault']} | {r['runs']} | {r['mismatches']} | {r['mean_s']} | {r['max_s']} |")
    total_runs = sum(int(r["runs"]) for r in rows)  # type: ignore[call-overload]
    total_bad = sum(int(r["mismatches"]) for r in rows)  # type: ignore[call-overload]
    print(f"| **all** | {total_runs} | {total_bad} | | |")
    for r in rows:
        if "first_mismatch" in r:
            print(f"first mismatch of {r['fault']}: {r['first_mismatch']}")
    return 0 if total_runs and not total_bad else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
