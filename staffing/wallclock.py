"""Local wall-clock times of a library turned into UTC instants, and back.

Every staffing rule is written in the library's own time (a 09:00-13:00 shift, a desk that opens
at 10:00 on Saturdays); every stored instant is UTC. This module is the one place that crosses
between the two, so that daylight-saving changes are handled once:

- A local time that does not exist (02:30 on the March change) is read with the offset in force
  before the change, as ``zoneinfo`` does with ``fold=0``: it lands one hour later in wall time.
- A local time that happens twice (01:30 on the November change) means its first occurrence.
- An end time at or before the start time is on the next day, so a 22:00-06:00 night shift
  spans midnight and has its real length across a change (nine hours in November, seven in
  March).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall time ``at`` on ``day`` in ``zone``."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def local_span(day: date, start: time, end: time, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of a wall-clock span starting on ``day``; an end at or before the
    start is on the next day."""
    end_day = day + timedelta(days=1) if end <= start else day
    return local_instant(day, start, zone), local_instant(end_day, end, zone)


def day_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """From local midnight starting ``start`` to local midnight ending ``end`` (inclusive)."""
    after = end + timedelta(days=1)
    return local_instant(start, time(0), zone), local_instant(after, time(0), zone)


def dates(start: date, end: date) -> Iterator[date]:
    """Every date from ``start`` to ``end``, both included."""
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def hours(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


def local_hour_pieces(
    start: datetime, end: datetime, zone: ZoneInfo
) -> Iterator[tuple[datetime, float]]:
    """Split ``[start, end)`` at the local hour boundaries of ``zone``: yields the local start
    of each piece and its length in hours. The repeated hour of a November change comes out
    twice, so a night shift across it counts its real length."""
    at = start
    while at < end:
        local = at.astimezone(zone)
        into_hour = timedelta(
            minutes=local.minute, seconds=local.second, microseconds=local.microsecond
        )
        boundary = min(at - into_hour + timedelta(hours=1), end)
        yield local, hours(at, boundary)
        at = boundary
