"""Demand periods in event time: bucketing, zero-fill, lateness and watermarks.

Pure logic (no Kafka, no Redis) shared by the Faust agent, the backtest and the demo.

A SKU's demand is a series of periods (hour, day or week, in UTC) in **event time**
(``occurred_at``). A period ``[p, p + Δ)`` is *closed* when the SKU's event-time clock (the
largest ``occurred_at`` it has seen) or the partition watermark passes ``p + Δ + lateness``.
Closing learns the period's total; every skipped period is learned as a **zero** (most
product-days of real e-commerce data have no sale, and a model that never sees them never
decays). An order whose period is already closed is *late*: it is not applied and goes to the
dead-letter topic with stage ``late``.

Times are held as integer epoch seconds (UTC) to keep state compact and arithmetic exact.

Examples
--------
>>> from datetime import datetime, timezone
>>> acc = DemandAccumulator.empty()
>>> t0 = epoch(datetime(2011, 1, 3, 9, tzinfo=timezone.utc))   # a Monday
>>> acc.add("D", t0, 5.0, lateness_s=0)
[]
>>> closed = acc.add("D", t0 + 3 * 86400, 2.0, lateness_s=0)  # Thursday: Mon..Wed close
>>> [(iso(p), q) for p, q in closed]
[('2011-01-03', 5.0), ('2011-01-04', 0.0), ('2011-01-05', 0.0)]
>>> acc.add("D", t0, 1.0, lateness_s=0)  # Monday is closed: late
Traceback (most recent call last):
...
agents.demand.LateEventError: event at 2011-01-03T09:00:00+00:00 is older than the open period ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Freq = Literal["H", "D", "W"]

_PERIOD_S: dict[str, int] = {"H": 3600, "D": 86400, "W": 7 * 86400}
_MONDAY_OFFSET_S = 4 * 86400  # 1970-01-01 was a Thursday; 1970-01-05 a Monday
_SEASON_LENGTH: dict[str, int] = {"H": 24, "D": 7, "W": 52}


class LateEventError(ValueError):
    """An event falls into a demand period that is already closed (beyond allowed lateness)."""


def epoch(ts: datetime) -> int:
    """Whole epoch seconds of an aware datetime.

    Raises
    ------
    ValueError
        When ``ts`` is naive (event time must be timezone-aware UTC).
    """
    if ts.tzinfo is None:
        raise ValueError("event time must be timezone-aware (UTC); got a naive datetime")
    return int(ts.timestamp())


def to_datetime(epoch_s: float) -> datetime:
    """Aware UTC datetime of epoch seconds."""
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def iso(epoch_s: float) -> str:
    """``YYYY-MM-DD`` (or full ISO time when not midnight) of epoch seconds, for logs/docs."""
    d = to_datetime(epoch_s)
    return d.date().isoformat() if d.hour == d.minute == d.second == 0 else d.isoformat()


def period_seconds(freq: Freq) -> int:
    """Length of one period in seconds (H: 3600, D: 86400, W: 604800)."""
    try:
        return _PERIOD_S[freq]
    except KeyError:
        raise ValueError(f"freq must be one of H, D, W; got {freq!r}") from None


def season_length(freq: Freq) -> int:
    """Periods per season: 24 hours a day, 7 days a week, 52 weeks a year."""
    return _SEASON_LENGTH[freq]


def period_start(freq: Freq, epoch_s: float) -> int:
    """Epoch seconds of the start of the period containing ``epoch_s`` (weeks start Monday).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> iso(period_start("W", epoch(datetime(2011, 1, 6, 15, tzinfo=timezone.utc))))
    '2011-01-03'
    """
    step = period_seconds(freq)
    if freq == "W":
        return int((epoch_s - _MONDAY_OFFSET_S) // step) * step + _MONDAY_OFFSET_S
    return int(epoch_s // step) * step


def season_position(freq: Freq, start_epoch_s: int) -> int:
    """Position of a period in its season: hour of day, day of week (Mon=0), week of year.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> season_position("D", epoch(datetime(2011, 1, 8, tzinfo=timezone.utc)))  # a Saturday
    5
    """
    if freq == "H":
        return int(start_epoch_s // 3600) % 24
    if freq == "D":
        return int((start_epoch_s - _MONDAY_OFFSET_S) // 86400) % 7
    return (to_datetime(start_epoch_s).isocalendar().week - 1) % 52


def calendar_features(freq: Freq, start_epoch_s: int) -> dict[str, float]:
    """Features of one period handed to the forecaster as River's ``x``: ``season_pos``."""
    return {"season_pos": season_position(freq, start_epoch_s)}


@dataclass(slots=True)
class DemandAccumulator:
    """Open demand periods of one SKU@location.

    Attributes
    ----------
    open_start : int | None
        Epoch seconds of the earliest period not yet closed (None before the first order).
    pending : list[float]
        Units ordered in each open period, ``pending[i]`` for ``open_start + i * Δ``.
    clock : int
        The SKU's event-time clock: largest ``occurred_at`` seen (epoch seconds).
    """

    open_start: int | None = None
    pending: list[float] = field(default_factory=list)
    clock: int = 0

    @classmethod
    def empty(cls) -> DemandAccumulator:
        """A SKU that has seen no order yet."""
        return cls()

    def add(self, freq: Freq, t: int, quantity: float, *, lateness_s: float) -> list[tuple[int, float]]:
        """Add ``quantity`` units ordered at event time ``t`` and close what the clock passed.

        Returns
        -------
        list of (period_start_epoch_s, units)
            The periods closed by this event, oldest first, zeros included.

        Raises
        ------
        LateEventError
            When ``t`` falls in a period that is already closed. Nothing is changed then.
        """
        step = period_seconds(freq)
        p = period_start(freq, t)
        if self.open_start is None:
            self.open_start = p
            self.pending = [0.0]
        elif p < self.open_start:
            raise LateEventError(
                f"event at {to_datetime(t).isoformat()} is older than the open period starting "
                f"{to_datetime(self.open_start).isoformat()}"
            )
        idx = (p - self.open_start) // step
        if idx >= len(self.pending):
            self.pending.extend([0.0] * (idx + 1 - len(self.pending)))
        self.pending[idx] += quantity
        return self.advance(freq, t, lateness_s=lateness_s)

    def advance(self, freq: Freq, t: int, *, lateness_s: float) -> list[tuple[int, float]]:
        """Move the clock to ``t`` (if later) and close every period with end + lateness <= t.

        Also used for partition watermarks so that SKUs that stop selling still learn their
        zeros. Idempotent: advancing to a time already passed closes nothing.

        Returns
        -------
        list of (period_start_epoch_s, units)
            Closed periods, oldest first; skipped periods appear as zeros.
        """
        if t > self.clock:
            self.clock = t
        if self.open_start is None:
            return []
        step = period_seconds(freq)
        horizon = self.clock - lateness_s  # periods ending at or before this are closed
        closed: list[tuple[int, float]] = []
        while self.open_start + step <= horizon:
            q = self.pending.pop(0) if self.pending else 0.0
            closed.append((self.open_start, q))
            self.open_start += step
        if not self.pending:
            self.pending = [0.0]
        return closed

    def open_quantity(self) -> float:
        """Units in the open periods (demand seen but not yet learned)."""
        return float(sum(self.pending))

    def to_list(self) -> list[object]:
        """Compact, msgpack-friendly encoding ``[open_start, pending, clock]``."""
        return [self.open_start, list(self.pending), self.clock]

    @classmethod
    def from_list(cls, data: list[object]) -> DemandAccumulator:
        """Inverse of :meth:`to_list`."""
        open_start, pending, clock = data
        return cls(
            open_start=None if open_start is None else int(open_start),  # type: ignore[call-overload]
            pending=[float(x) for x in pending],  # type: ignore[attr-defined]
            clock=int(clock),  # type: ignore[call-overload]
        )
