"""Demand periods in event time: zero-fill, lateness, watermarks, season positions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.demand import (
    DemandAccumulator,
    LateEventError,
    epoch,
    period_start,
    season_position,
)

MON = epoch(datetime(2011, 1, 3, tzinfo=UTC))  # a Monday
DAY = 86400


def test_skipped_periods_are_learned_as_zeros() -> None:
    acc = DemandAccumulator.empty()
    assert acc.add("D", MON + 9 * 3600, 4, lateness_s=0) == []
    closed = acc.add("D", MON + 5 * DAY + 3600, 1, lateness_s=0)
    assert closed == [(MON, 4.0), (MON + DAY, 0.0), (MON + 2 * DAY, 0.0), (MON + 3 * DAY, 0.0),
                      (MON + 4 * DAY, 0.0)]
    assert acc.open_start == MON + 5 * DAY
    assert acc.open_quantity() == 1.0


def test_late_event_within_lateness_updates_the_open_period() -> None:
    acc = DemandAccumulator.empty()
    acc.add("D", MON + 23 * 3600, 2, lateness_s=3600)
    # 00:30 next day: Monday is still open (its end + 1h lateness not yet passed)
    assert acc.add("D", MON + DAY + 1800, 5, lateness_s=3600) == []
    assert acc.add("D", MON + 23 * 3600 + 1800, 3, lateness_s=3600) == []
    closed = acc.add("D", MON + DAY + 2 * 3600, 1, lateness_s=3600)
    assert closed == [(MON, 5.0)]
    assert acc.pending == [6.0]


def test_event_beyond_lateness_is_late_and_changes_nothing() -> None:
    acc = DemandAccumulator.empty()
    acc.add("D", MON + 10 * 3600, 2, lateness_s=3600)
    acc.add("D", MON + DAY + 2 * 3600, 1, lateness_s=3600)
    before = acc.to_list()
    with pytest.raises(LateEventError, match="older than the open period"):
        acc.add("D", MON + 11 * 3600, 7, lateness_s=3600)
    assert acc.to_list() == before


def test_watermark_advance_is_idempotent() -> None:
    acc = DemandAccumulator.empty()
    acc.add("D", MON + 3600, 1, lateness_s=0)
    first = acc.advance("D", MON + 3 * DAY, lateness_s=0)
    assert [q for _, q in first] == [1.0, 0.0, 0.0]
    assert acc.advance("D", MON + 3 * DAY, lateness_s=0) == []
    assert acc.advance("D", MON + 2 * DAY, lateness_s=0) == []


def test_weeks_start_on_monday_and_season_positions() -> None:
    thu = epoch(datetime(2011, 1, 6, 15, tzinfo=UTC))
    assert period_start("W", thu) == MON
    assert season_position("D", MON) == 0
    assert season_position("D", MON + 5 * DAY) == 5
    assert season_position("H", MON + 13 * 3600) == 13


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        epoch(datetime(2011, 1, 1))  # noqa: DTZ001


@given(st.lists(st.tuples(st.integers(0, 40 * DAY), st.integers(1, 50)), min_size=1, max_size=60))
def test_units_are_conserved(events: list[tuple[int, int]]) -> None:
    """Every unit of an in-order stream ends up in exactly one closed or open period."""
    acc = DemandAccumulator.empty()
    learned = 0.0
    for t, q in sorted(events):
        learned += sum(u for _, u in acc.add("D", MON + t, q, lateness_s=0))
    learned += sum(u for _, u in acc.advance("D", MON + 60 * DAY, lateness_s=0))
    assert learned == pytest.approx(sum(q for _, q in events))
    # no gaps: closed periods are consecutive days
    acc2 = DemandAccumulator.empty()
    starts: list[int] = []
    for t, q in sorted(events):
        starts += [p for p, _ in acc2.add("D", MON + t, q, lateness_s=0)]
    assert all(b - a == DAY for a, b in zip(starts, starts[1:], strict=False))
