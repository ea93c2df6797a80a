"""Issue #8 through the real broker and Redis: a planned promotion moves the forecast and S."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from agents.processor import SkuProcessor
from agents.state import pool_key
from schemas.events import PromotionPlanned, decode_decision
from streams.config import processor_config
from streams.redis_state import RedisStateStore
from streams.workerproc import WorkerProcess, wait_caught_up

from .helpers import T0, publish, read_all, snapshot, steady_orders, worker_settings

TOPICS = {"orders": 2, "inventory": 2, "promotions": 2, "reorders": 2, "dlq": 2}


def _merge(*targets: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for t in targets:
        for k, v in t.items():
            out[k] = max(out.get(k, 0), v)
    return out


@pytest.mark.timeout(180)
def test_planned_promotion_raises_forecast_and_triggers_a_reorder_before_the_window(
    kafka_bootstrap: str, redis_url: str, redis_client, new_topics, tmp_path: Path
) -> None:
    topics = new_topics(TOPICS)
    # Two SKUs with the same history and stock (10 a day, 500 on hand): only P gets a plan of
    # 30 % off for days 36..42. Without it neither reaches its reorder point (about 95 units)
    # by day 35 (150 on hand); with it, P's lead-time demand covers the promotion.
    window_from, window_to = T0 + timedelta(days=36), T0 + timedelta(days=43)
    orders = {s: steady_orders(s, days=36, per_day=10) for s in ("P", "Q")}
    early = sorted((o for s in orders for o in orders[s][:30]), key=lambda o: o.occurred_at)
    late = sorted((o for s in orders for o in orders[s][30:]), key=lambda o: o.occurred_at)
    plan = PromotionPlanned(event_id="plan-1", occurred_at=T0 + timedelta(days=30), sku="P",
                            location="W1", promotion_id="spring-sale", valid_from=window_from,
                            valid_to=window_to, promo_kind="discount", depth=0.3)
    # planned promotions move the levels only with promotion_lift (off by default: docs/decisions.md)
    s = worker_settings(kafka_bootstrap, redis_url, topics, "promo", tmp_path, promotion_lift=True)
    with WorkerProcess(s, tmp_path / "promo.log") as w:
        w.wait_ready()
        targets = publish(kafka_bootstrap, topics["inventory"],
                          [snapshot("P", 500, T0), snapshot("Q", 500, T0)])
        wait_caught_up(s, targets, timeout_s=60)
        targets = _merge(targets, publish(kafka_bootstrap, topics["orders"], early))
        wait_caught_up(s, targets, timeout_s=60)
        targets = _merge(targets, publish(kafka_bootstrap, topics["promotions"], [plan]))
        wait_caught_up(s, targets, timeout_s=60)
        targets = _merge(targets, publish(kafka_bootstrap, topics["orders"], late))
        wait_caught_up(s, targets, timeout_s=60)
    msgs = read_all(kafka_bootstrap, topics["reorders"], 2, idle_s=1.0)
    decisions = [decode_decision(m.value) for m in msgs]
    reorders = [d for d in decisions if d.kind == "reorder_suggested"]
    assert [d.sku for d in reorders] == ["P"], decisions  # the run without the plan (Q): none
    r = reorders[0]
    assert r.occurred_at < window_from  # before the promotion starts
    assert r.explanation.promotions == ["spring-sale"]
    assert r.explanation.model.endswith("+cov")

    # The forecast for the promotion window is raised (state as stored in Redis).
    store = RedisStateStore.from_url(redis_url, s.redis_key_prefix)
    states = store.load_many(["P@W1", "Q@W1"])
    proc = SkuProcessor(processor_config(s))
    p, q = proc.derived(states["P@W1"]), proc.derived(states["Q@W1"])
    open_start = states["P@W1"].demand.open_start
    k = int((window_from.timestamp() - open_start) // 86400)
    ratio = np.asarray(p.dist.mean[k:k + 7]) / np.asarray(q.dist.mean[k:k + 7])
    assert np.all(ratio > 2.0)  # 30 % off at the prior elasticity -2.5: x exp(2.5 * 0.357) = 2.4
    assert np.allclose(p.dist.mean[:k], q.dist.mean[:k])
    assert p.levels.order_up_to > 1.5 * q.levels.order_up_to
    # No promotion period has been learned yet: the pools' covariate sums hold nothing (a pool is
    # still written: the fill-rate controller counts the orders of its partition).
    pools = store.load_many([pool_key(p) for p in range(2)])
    assert pools and all(st.pool is not None and not any(st.pool.info) and not any(st.pool.score)
                         for st in pools.values())
    assert sum(st.pool.service.demand for st in pools.values()) == 10 * 36 * 2  # every ordered unit
