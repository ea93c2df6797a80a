"""Policies at run time (issue #20): PolicySet on the compacted ``policies`` topic, in the SKU state.

Decoding and validation, the effective parameters (settings defaults <- overrides file <- policy),
stale versions, tombstones, the immediate re-decision and its explanation, the state encoding,
and the pipeline's handling of the topic (keys, partitions, tombstones, invalid policies).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.pipeline import Pipeline, Record
from agents.policy import PolicyParams
from agents.processor import EventMeta, PolicyRejected, ProcessorConfig, SkuProcessor
from agents.state import InMemoryStateStore, SkuPolicy, SkuState
from schemas.codec import (
    EventValidationError,
    decode_for_topic_role,
    decode_policy,
    decode_policy_tombstone,
    encode_event,
)
from schemas.inputs import OrderPlaced, PolicyDeleted, PolicySet, StockSnapshot
from streams.partitioning import partition_for

T0 = datetime(2011, 3, 7, tzinfo=UTC)
ROLES = {"orders": "orders", "inventory": "inventory", "promotions": "promotions", "policies": "policies"}
DEFAULT = PolicyParams(lead_time_periods=7.0, cycle_service_level=0.95)


def policy(version: int, at: datetime = T0, sku: str = "A", location: str = "W",
           **params: object) -> PolicySet:
    return PolicySet(event_id=f"pol-{sku}-{version}", occurred_at=at, sku=sku, location=location,
                     version=version, **params)  # type: ignore[arg-type]


def order(day: int, qty: int, sku: str = "A", hour: int = 10) -> OrderPlaced:
    return OrderPlaced(event_id=f"{sku}-{day}-{hour}", occurred_at=T0 + timedelta(days=day, hours=hour),
                       sku=sku, location="W", order_id=f"o{day}", quantity=qty, unit_price=1.0)


def proc(**kw: object) -> SkuProcessor:
    kw.setdefault("policy", DEFAULT)
    return SkuProcessor(ProcessorConfig(allowed_lateness_s=0.0, **kw))  # type: ignore[arg-type]


# --- decoding -------------------------------------------------------------------------------

_targets = st.one_of(
    st.fixed_dictionaries({}),
    st.fixed_dictionaries({"fill_rate": st.floats(0.01, 0.99)}),
    st.fixed_dictionaries({"cycle_service_level": st.floats(0.01, 0.99)}),
)
_optional = {
    "lead_time_days": st.floats(0.01, 3650.0),
    "lead_time_std_days": st.floats(0.0, 3650.0),
    "pack_size": st.integers(1, 1_000_000),
    "moq": st.integers(0, 10**9),
    "unit_cost": st.floats(0.0, 1e6),
    "holding_cost_rate": st.floats(0.0, 10.0),
    "ordering_cost": st.floats(0.0, 1e6),
    "supplier_id": st.text(min_size=1, max_size=128),
}
_key_part = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp", "Cf"),
                                  blacklist_characters="@\x85\xa0"), min_size=1, max_size=64)


@st.composite
def policies(draw: st.DrawFn) -> PolicySet:
    params = dict(draw(_targets))
    for name, strategy in _optional.items():
        if draw(st.booleans()):
            params[name] = draw(strategy)
    at = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),  # noqa: DTZ001
                           timezones=st.just(UTC)))
    return PolicySet(event_id=draw(st.text(min_size=1, max_size=128)), occurred_at=at, sku=draw(_key_part),
                     location=draw(_key_part), version=draw(st.integers(1, 2**53)), **params)


@settings(max_examples=200, deadline=None)
@given(policies())
def test_policy_round_trips_through_the_wire(ev: PolicySet) -> None:
    raw = encode_event(ev)
    assert decode_policy(raw) == ev
    assert decode_for_topic_role("policies", raw) == ev
    assert decode_policy_tombstone(ev.key.encode()) == PolicyDeleted(sku=ev.sku, location=ev.location)
    assert set(ev.parameters()) <= set(_optional) | {"fill_rate", "cycle_service_level"}


def _wire(**fields: object) -> bytes:
    import json

    base = {"kind": "policy_set", "event_id": "p", "sku": "A", "location": "W",
            "occurred_at": "2024-03-01T00:00:00Z", "version": 3}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


@pytest.mark.parametrize(("raw", "path"), [
    (_wire(fill_rate=0.9, cycle_service_level=0.9), "cycle_service_level"),
    (_wire(version=0), "version"),
    (_wire(version=True), "version"),
    (_wire(version=2**53 + 1), "version"),
    (_wire(version=...), "version"),
    (_wire(fill_rate=1.0), "fill_rate"),
    (_wire(lead_time_days=0), "lead_time_days"),
    (_wire(lead_time_std_days=-1.0), "lead_time_std_days"),
    (_wire(pack_size=0), "pack_size"),
    (_wire(pack_size=2.0), "pack_size"),
    (_wire(moq=-1), "moq"),
    (_wire(lead_time_periods=3), "lead_time_periods"),
    (_wire(kind="policy_deleted"), "kind"),
    (_wire(occurred_at="2024-03-01T00:00:00"), "occurred_at"),
])
def test_invalid_policies_are_rejected_with_the_field(raw: bytes, path: str) -> None:
    with pytest.raises(EventValidationError) as info:
        decode_policy(raw)
    assert path in [loc for loc, _ in info.value.errors], info.value.errors


@pytest.mark.parametrize("key", [None, b"", b"A", b"A@", b"@W", b"A@W@X", b"A B@W", b"\xff@W"])
def test_a_tombstone_needs_a_valid_sku_key(key: bytes | None) -> None:
    with pytest.raises(EventValidationError):
        decode_policy_tombstone(key)


# --- effective parameters -------------------------------------------------------------------

_file_fields = {
    "lead_time_periods": st.floats(1.0, 10.0),
    "pack_size": st.integers(1, 50),
    "moq": st.integers(0, 100),
    "unit_cost": st.floats(0.1, 100.0),
}
_policy_fields = {
    "lead_time_days": st.floats(1.0, 10.0),
    "pack_size": st.integers(1, 50),
    "moq": st.integers(0, 100),
    "holding_cost_rate": st.floats(0.01, 1.0),
    "fill_rate": st.floats(0.5, 0.99),
}


@settings(max_examples=60, deadline=None)
@given(file_entry=st.sampled_from([None, "A", "A@W"]),
       file=st.fixed_dictionaries({}, optional=_file_fields),
       pol=st.one_of(st.none(), st.fixed_dictionaries({}, optional=_policy_fields)),
       weekly=st.booleans())
def test_effective_params_take_policy_over_file_over_settings(file_entry: str | None, file: dict,
                                                             pol: dict | None, weekly: bool) -> None:
    overrides = {} if file_entry is None else {file_entry: DEFAULT.with_overrides(**file)}
    p = proc(overrides=overrides, freq="W" if weekly else "D", horizon_periods=30)
    state = SkuState.new("A@W")
    if pol is not None:
        state.policy = SkuPolicy(1, tuple(sorted(pol.items())))
    got = p.params_for(state)
    days = 7.0 if weekly else 1.0
    from_policy = dict(pol or {})
    if "lead_time_days" in from_policy:
        from_policy["lead_time_periods"] = from_policy.pop("lead_time_days") / days
    for name in PolicyParams.model_fields:
        if name in from_policy:
            want = from_policy[name]
        elif name == "cycle_service_level" and "fill_rate" in from_policy:
            want = None  # a fill-rate policy replaces the cycle target
        elif file_entry is not None and name in file:
            want = file[name]
        else:
            want = getattr(DEFAULT, name)
        assert getattr(got, name) == want, name
    assert p.params_for(state.key) == (overrides[file_entry] if file_entry else DEFAULT)


def test_equal_policies_share_one_params_object_and_others_do_not() -> None:
    p = proc()
    a, b, c = SkuState.new("A@W"), SkuState.new("B@W"), SkuState.new("C@W")
    a.policy = SkuPolicy(3, (("pack_size", 6),))
    b.policy = SkuPolicy(9, (("pack_size", 6),))  # another version, same parameters
    c.policy = SkuPolicy(3, (("pack_size", 7),))
    assert p.params_for(a) is p.params_for(b)
    assert p.params_for(c) is not p.params_for(a) and p.params_for(c).pack_size == 7
    assert p.params_for(a) is p.params_for(a)


def test_a_fill_rate_policy_is_solved_per_sku_not_priced_by_the_partition_controller() -> None:
    base = PolicyParams(fill_rate=0.95)
    p = proc(policy=base, fill_control=True)
    st_ = SkuState.new("A@W")
    assert p.deriver.lost_unit_cost(p.params_for(st_), None) is not None  # the controlled target
    st_.policy = SkuPolicy(1, (("fill_rate", 0.99),))
    assert p.deriver.lost_unit_cost(p.params_for(st_), None) is None
    st_.policy = SkuPolicy(2, (("fill_rate", 0.95), ("pack_size", 4)))
    assert p.deriver.lost_unit_cost(p.params_for(st_), None) is not None


# --- applying policies ----------------------------------------------------------------------

def _history(p: SkuProcessor, s: SkuState, on_hand: int, days: int = 30) -> list:
    """A stock count, then ``days`` days of 10 units; returns the decisions."""
    p.apply(s, StockSnapshot(event_id="snap", occurred_at=T0, sku="A", location="W", on_hand=on_hand),
            EventMeta("inventory", 0, 0))
    return [d for day in range(days)
            for d in p.apply(s, order(day, 10), EventMeta("orders", 0, day)).decisions]


def test_a_policy_redecides_at_once_and_the_explanation_names_its_version() -> None:
    p, s = proc(horizon_periods=28), SkuState.new("A@W")
    _history(p, s, on_hand=400)  # 100 left: above s for a 7-day lead time (about 70 + safety)
    assert s.reorder is None
    before = p.derived(s)
    assert before is not None and s.position.inventory_position > before.levels.reorder_point
    res = p.apply(s, policy(4, T0 + timedelta(days=29, hours=12), lead_time_days=14.0, pack_size=5),
                  EventMeta("policies", 0, 0))
    assert res.status == "applied" and not res.stale_policy
    reorders = [d for d in res.decisions if d.kind == "reorder_suggested"]
    assert len(reorders) == 1
    x = reorders[0].explanation
    assert x.policy_version == 4
    assert x.lead_time_periods == 14.0
    assert x.reorder_point > before.levels.reorder_point
    assert reorders[0].quantity % 5 == 0
    assert s.policy == SkuPolicy(4, (("lead_time_days", 14.0), ("pack_size", 5)))
    assert s.counters["policies"] == 1
    # a decision without a run-time policy says so
    decided = _history(proc(horizon_periods=28), SkuState.new("A@W"), on_hand=250)
    assert decided and {d.explanation.policy_version for d in decided} == {None}


def test_a_policy_change_supersedes_the_open_suggestion() -> None:
    p, s = proc(horizon_periods=28), SkuState.new("A@W")
    _history(p, s, on_hand=250)
    assert s.reorder is not None
    old = s.reorder.decision_id
    res = p.apply(s, policy(1, T0 + timedelta(days=29, hours=12), lead_time_days=9.0),
                  EventMeta("policies", 0, 0))
    new = [d for d in res.decisions if d.kind == "reorder_suggested"]
    assert len(new) == 1 and new[0].event_id != old and s.reorder.decision_id == new[0].event_id
    # the same parameters again (a new version): nothing changes, nothing is re-emitted
    res = p.apply(s, policy(2, T0 + timedelta(days=29, hours=13), lead_time_days=9.0),
                  EventMeta("policies", 0, 1))
    assert res.decisions == [] and s.reorder.decision_id == new[0].event_id


def test_stale_versions_are_ignored_and_counted() -> None:
    p, s = proc(), SkuState.new("A@W")
    _history(p, s, on_hand=1000, days=5)
    p.apply(s, policy(5, T0 + timedelta(days=5), pack_size=6), EventMeta("policies", 0, 0))
    before = s.encode()
    for off, version in enumerate((5, 4, 1), start=1):
        res = p.apply(s, policy(version, T0 + timedelta(days=6), pack_size=99), EventMeta("policies", 0, off))
        assert res.status == "applied" and res.stale_policy and res.decisions == []
    assert s.policy == SkuPolicy(5, (("pack_size", 6),)) and p.params_for(s).pack_size == 6
    assert s.counters["stale_policies"] == 3
    assert s.fence["policies:0"] == 3
    assert s.demand.clock == SkuState.decode(before).demand.clock  # a stale policy moves no clock


def test_a_tombstone_resets_to_the_defaults_and_older_versions_stay_stale() -> None:
    p, s = proc(horizon_periods=28), SkuState.new("A@W")
    _history(p, s, on_hand=400)
    p.apply(s, policy(7, T0 + timedelta(days=29, hours=12), lead_time_days=14.0), EventMeta("policies", 0, 0))
    assert s.reorder is not None and p.params_for(s).lead_time_periods == 14.0
    res = p.apply(s, PolicyDeleted(sku="A", location="W"), EventMeta("policies", 0, 1))
    assert res.status == "applied"
    assert s.policy is None and s.policy_version == 7 and p.params_for(s) == DEFAULT
    assert s.reorder is None  # superseded: the default levels do not reorder at this position
    assert all(d.explanation.policy_version is None for d in res.decisions)
    res = p.apply(s, policy(6, T0 + timedelta(days=29, hours=13), pack_size=3), EventMeta("policies", 0, 2))
    assert res.stale_policy and s.policy is None
    res = p.apply(s, policy(8, T0 + timedelta(days=29, hours=14), pack_size=3), EventMeta("policies", 0, 3))
    assert not res.stale_policy and p.params_for(s).pack_size == 3
    # a tombstone for a SKU without a policy only moves the fence
    t = SkuState.new("B@W")
    assert p.apply(t, PolicyDeleted(sku="B", location="W"), EventMeta("policies", 0, 4)).decisions == []
    assert t.policy is None and t.policy_version == 0 and t.fence == {"policies:0": 4}


def test_an_invalid_policy_raises_and_leaves_the_state_unchanged() -> None:
    p, s = proc(horizon_periods=28), SkuState.new("A@W")
    _history(p, s, on_hand=400, days=3)
    before = s.encode()
    with pytest.raises(PolicyRejected, match="horizon"):
        p.apply(s, policy(1, T0 + timedelta(days=3), lead_time_days=40.0), EventMeta("policies", 0, 0))
    with pytest.raises(PolicyRejected, match="holding cost"):
        p.apply(s, policy(2, T0 + timedelta(days=3), ordering_cost=5.0, holding_cost_rate=0.0),
                EventMeta("policies", 0, 1))
    assert s.encode() == before


# --- state encoding -------------------------------------------------------------------------

def test_the_policy_survives_the_state_encoding_and_states_without_one_encode_as_before() -> None:
    p, s = proc(), SkuState.new("A@W")
    _history(p, s, on_hand=100, days=3)
    plain = s.encode_core()
    assert b"pol" not in plain  # no policy yet: the encoding has no policy entry (as before #20)
    assert SkuState.decode(s.encode()).policy is None
    p.apply(s, policy(2**53, T0 + timedelta(days=3), fill_rate=0.9, supplier_id="acme", unit_cost=2.5),
            EventMeta("policies", 0, 0))
    back = SkuState.decode(s.encode())
    assert back.policy == s.policy and back.policy_version == 2**53
    assert back.encode() == s.encode()
    p.apply(back, PolicyDeleted(sku="A", location="W"), EventMeta("policies", 0, 1))
    again = SkuState.decode(back.encode())
    assert again.policy is None and again.policy_version == 2**53 and again.encode() == back.encode()


# --- the pipeline ---------------------------------------------------------------------------

def _rec(topic: str, offset: int, ev: object | None, key: bytes | None = None, partition: int = 0) -> Record:
    value = b"" if ev is None else encode_event(ev)  # type: ignore[arg-type]
    return Record(topic, partition, offset, key if key is not None or ev is None else ev.key.encode(),  # type: ignore[attr-defined]
                  value)


def test_pipeline_applies_policies_tombstones_and_dead_letters_bad_ones() -> None:
    pipe = Pipeline(proc(horizon_periods=28), InMemoryStateStore(), ROLES)
    recs = [_rec("inventory", 0, StockSnapshot(event_id="s", occurred_at=T0, sku="A", location="W",
                                               on_hand=400))]
    recs += [_rec("orders", d, order(d, 10)) for d in range(30)]
    recs += [
        _rec("policies", 0, policy(3, T0 + timedelta(days=29, hours=12), lead_time_days=14.0)),
        _rec("policies", 1, policy(2, T0 + timedelta(days=29, hours=12), pack_size=50)),  # stale
        _rec("policies", 2, policy(4, T0 + timedelta(days=29, hours=12), ordering_cost=1.0,
                                   holding_cost_rate=0.0)),  # invalid: dead letter, state kept
        _rec("policies", 3, None, key=None),  # a tombstone without a key
        _rec("policies", 4, None, key=b"not-a-sku-key"),
    ]
    out = pipe.process(recs)
    assert out.stale_policies == 1
    assert out.dead_lettered == {"validate": 3}
    reorders = [d for d in out.decisions if b'"reorder_suggested"' in d[1]]
    assert reorders and b'"policy_version":3' in reorders[-1][1]
    st_ = pipe.cache["A@W"]
    assert st_.policy == SkuPolicy(3, (("lead_time_days", 14.0),))
    # the tombstone resets the policy and re-decides at the SKU's clock, moving no watermark;
    # a stale policy dated later moves none either
    wm = dict(pipe.watermark)
    out = pipe.process([_rec("policies", 5, None, key=b"A@W"),
                        _rec("policies", 6, policy(3, T0 + timedelta(days=60), pack_size=2))])
    assert out.dead_lettered == {} and out.applied == 2 and out.stale_policies == 1
    assert pipe.cache["A@W"].policy is None and pipe.watermark == wm


def test_pipeline_dead_letters_policies_off_their_partition_or_without_a_key() -> None:
    pipe = Pipeline(proc(), InMemoryStateStore(), ROLES, partition_for=partition_for, partitions=4)
    ev = policy(1, T0, pack_size=2)
    right = partition_for(ev.key.encode(), 4)
    wrong = (right + 1) % 4
    out = pipe.process([
        _rec("policies", 0, ev, partition=wrong),
        _rec("policies", 0, None, key=b"A@W", partition=wrong),  # tombstone on the wrong partition
        Record("policies", right, 1, None, encode_event(ev)),
        _rec("policies", 2, ev, partition=right),
    ])
    assert out.dead_lettered == {"wrong_partition": 2, "missing_key": 1}
    assert out.applied == 1 and pipe.cache["A@W"].policy == SkuPolicy(1, (("pack_size", 2),))


def test_replaying_policies_and_tombstones_is_byte_identical() -> None:
    recs = [_rec("inventory", 0, StockSnapshot(event_id="s", occurred_at=T0, sku="A", location="W",
                                               on_hand=300))]
    recs += [_rec("orders", d, order(d, 10)) for d in range(20)]
    recs.insert(12, _rec("policies", 0, policy(1, T0 + timedelta(days=10, hours=11), lead_time_days=20.0)))
    recs.insert(20, _rec("policies", 1, None, key=b"A@W"))  # after the policy's first reorder
    recs.append(_rec("policies", 2, policy(2, T0 + timedelta(days=20), fill_rate=0.9, pack_size=4)))
    runs = []
    for batch in (len(recs), 3):
        pipe = Pipeline(proc(horizon_periods=28), InMemoryStateStore(), ROLES)
        decisions = []
        for i in range(0, len(recs), batch):
            decisions += pipe.process(recs[i:i + batch]).decisions
        runs.append((decisions, pipe.cache["A@W"].encode()))
    assert runs[0] == runs[1]
    assert any(b'"policy_version":1' in v for _, v in runs[0][0])


def test_cli_policy_file_becomes_policy_events(tmp_path: Path) -> None:
    from streams.cli_policies import load_policy_file, policy_events
    from streams.settings import Settings

    f = tmp_path / "p.yaml"
    f.write_text("85123A@UK: {lead_time_periods: 2, pack_size: 12, supplier_id: acme}\n"
                 "B@W1: {fill_rate: 0.9}\n")
    s = Settings(freq="W", lead_time_days=7.0, review_period_days=7.0)
    evs = policy_events(load_policy_file(f), s, 5, T0)
    assert [(e.key, e.version) for e in evs] == [("85123A@UK", 5), ("B@W1", 5)]
    assert evs[0].parameters() == {"lead_time_days": 14.0, "pack_size": 12, "supplier_id": "acme"}
    assert decode_policy(encode_event(evs[1])) == evs[1]
    for text, match in (("B: {moq: 1}", "SKU@location"), ("B@W: {distribution: negbin}", "not a run-time"),
                        ("B@W: {lead_time_periods: 400}", "horizon"), ("B@W: {moq: -1}", "invalid")):
        f.write_text(text)
        with pytest.raises(ValueError, match=match):
            policy_events(load_policy_file(f), s, 1, T0)
