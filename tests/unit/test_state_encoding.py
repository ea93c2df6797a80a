"""Typed promotion plans keep the SKU state encoding byte for byte (states already in Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from agents.processor import EventMeta, ProcessorConfig, SkuProcessor
from agents.state import PromotionPlan, SkuState
from schemas.events import PromotionPlanned

T0 = datetime(2011, 1, 3, tzinfo=UTC)

old_plans = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=4),
    st.tuples(st.integers(0, 2**31), st.integers(0, 2**31), st.sampled_from([-1.0, 0.5, 2.25]),
              st.floats(0.0, 1.0), st.sampled_from(["discount", "display", "none"]),
              st.none() | st.dictionaries(st.sampled_from(["x_a", "x_b"]), st.floats(-5, 5), min_size=1)),
    max_size=3,
)


@given(plans=old_plans)
def test_a_state_stored_with_list_plans_re_encodes_byte_identical(plans: dict) -> None:
    base = SkuState.new("A@W")
    fields = msgpack.unpackb(base.encode_core(), raw=False, strict_map_key=False)
    fields[7] = {pid: [*p[:5], *([dict(sorted(p[5].items()))] if p[5] else [])]
                 for pid, p in sorted(plans.items())}
    old_core = msgpack.packb(fields, use_bin_type=True)
    state = SkuState.decode_parts(old_core, base.encode_model())
    assert all(isinstance(p, PromotionPlan) for p in state.promotions.values())
    assert state.encode_core() == old_core


def test_a_planned_promotion_is_stored_as_the_list_it_always_was() -> None:
    proc, s = SkuProcessor(ProcessorConfig(allowed_lateness_s=0.0)), SkuState.new("P@W1")
    vf, vt = T0 + timedelta(days=3), T0 + timedelta(days=10)
    ev = PromotionPlanned(event_id="pp", occurred_at=T0, sku="P", location="W1", promotion_id="spring",
                          valid_from=vf, valid_to=vt, promo_kind="discount", depth=0.25,
                          covariates={"x_b": 1.5, "x_a": 0.5})
    proc.apply(s, ev, EventMeta("promotions", 0, 0))
    stored = msgpack.unpackb(s.encode_core(), raw=False, strict_map_key=False)[7]
    assert stored == {"spring": [int(vf.timestamp()), int(vt.timestamp()), -1.0, 0.25, "discount",
                                 {"x_a": 0.5, "x_b": 1.5}]}
    assert list(stored["spring"][5]) == ["x_a", "x_b"]  # sorted, as before
