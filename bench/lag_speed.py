"""How long one `restock lag` measurement takes, against the broker round trips it cannot avoid.

Setup (embedded stack, or KAFKA_BOOTSTRAP_SERVERS): the three input topics with 4 partitions each,
``--events`` events produced in batches (linger 200 ms) to ``orders``, a group that committed part
of one partition. Measured, ``--repeat`` times each, alternating:

* ``consumer_lag``: :func:`streams.lag.consumer_lag` (committed offsets, reported ends, the record
  at each committed position and each partition's last batch);
* baseline: a fresh kafka-python admin client asking ``list_group_offsets`` and
  ``list_partition_offsets`` for the same partitions: the minimum any lag tool needs (and what
  undercounts a batched topic on Tansu).

Prints the median of each and their ratio, and checks that ``consumer_lag`` counts every event.

Run: ``.venv/bin/python bench/lag_speed.py [--events 40] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, machine, print_table, ratio, security, stack, topic_set, write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=OUT / "lag_speed.json")
    args = ap.parse_args(argv)

    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    from streams.clients import kafka_admin, kafka_producer
    from streams.lag import consumer_lag

    sec = security()
    with stack() as env:
        topics = topic_set(env, "lag", 4)
        inputs = [topics["orders"], topics["inventory"], topics["promotions"]]
        producer = kafka_producer(env.kafka, sec, linger_ms=200)
        for i in range(args.events):
            producer.send(topics["orders"], key=f"sku{i % 9}@W".encode(), value=b"{}")
        producer.flush()
        producer.close()
        group = f"lag-bench-{env.run}"
        tps = [TopicPartition(t, p) for t in inputs for p in range(4)]

        def baseline() -> int:
            admin = kafka_admin(env.kafka, sec)
            try:
                admin.list_group_offsets(group)
                ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
                return sum(int(o.offset) for o in ends.values())
            finally:
                admin.close()

        t_lag, t_base, counted, reported = [], [], 0, 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            counted = consumer_lag(env.kafka, group, inputs, security=sec).total_messages
            t_lag.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            reported = baseline()
            t_base.append(time.perf_counter() - t0)
    lag_s, base_s = statistics.median(t_lag), statistics.median(t_base)
    rows = [["consumer_lag", f"{lag_s:.3f}", counted],
            ["admin offsets only (baseline)", f"{base_s:.3f}", reported]]
    print_table(f"restock lag, {args.events} events in batches, 12 partitions (median of {args.repeat})",
                ["measurement", "seconds", "messages counted"], rows)
    print(f"ratio consumer_lag / baseline: {ratio(lag_s, base_s):.2f}")  # noqa: T201
    write_json(args.json, {"machine": machine(), "events": args.events, "consumer_lag_s": lag_s,
                           "baseline_s": base_s, "ratio": ratio(lag_s, base_s), "counted": counted,
                           "reported_by_broker": reported})
    return 0 if counted == args.events else 1


if __name__ == "__main__":
    raise SystemExit(main())
