"""Period helpers on the UTC grid of :mod:`agents.demand` (hours, days, weeks from Monday 00:00 UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta

from agents import demand as _demand
from agents.demand import Freq


def period_floor(ts: datetime, freq: Freq) -> datetime:
    """Start of the UTC period (hour, day, or week starting Monday 00:00 UTC) containing ``ts``.

    Parameters
    ----------
    ts : datetime
        Timezone-aware time (any zone; converted to UTC).
    freq : {"H", "D", "W"}
        Period length: hour, day, week.

    Returns
    -------
    datetime
        Aware UTC datetime ``p`` with ``p <= ts < p + period_delta(freq)``.

    Raises
    ------
    ValueError
        When ``ts`` is naive or ``freq`` is unknown.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> t = datetime(2011, 1, 6, 15, 42, 7, tzinfo=UTC)   # a Thursday
    >>> period_floor(t, "H").isoformat(), period_floor(t, "D").isoformat()
    ('2011-01-06T15:00:00+00:00', '2011-01-06T00:00:00+00:00')
    >>> period_floor(t, "W").isoformat()
    '2011-01-03T00:00:00+00:00'

    """
    if ts.tzinfo is None:
        raise ValueError("period_floor needs a timezone-aware datetime; got a naive one")
    # One definition of periods for loaders and agents: agents.demand.period_start.
    return _demand.to_datetime(_demand.period_start(freq, _demand.epoch(ts)))


def period_delta(freq: Freq) -> timedelta:
    """Length of one period.

    Raises
    ------
    ValueError
        When ``freq`` is not H, D or W.

    Examples
    --------
    >>> period_delta("W")
    datetime.timedelta(days=7)

    """
    return timedelta(seconds=_demand.period_seconds(freq))


def season_length(freq: Freq) -> int:
    """Periods per season: 24 (hours of a day), 7 (days of a week), 52 (weeks of a year).

    Raises
    ------
    ValueError
        When ``freq`` is not H, D or W.

    Examples
    --------
    >>> [season_length(f) for f in ("H", "D", "W")]
    [24, 7, 52]

    """
    if freq not in ("H", "D", "W"):
        raise ValueError(f"freq must be one of H, D, W; got {freq!r}")
    return _demand.season_length(freq)
