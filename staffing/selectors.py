"""Reads of the roster and the opening hours, for the staffing pages, the chat and analytics.

Every function is keyword-only and takes aware datetimes (UTC or any zone) or local dates of
the library; the answers are aware datetimes, so callers show them in the library's zone.

Opening hours (SPEC §2): a queue with weekly hours of its own follows them; a queue without
follows its service point's. A target without any weekly hours is not restricted: it is open
whenever its roster says someone is there. Closures and special hours replace the weekly hours
of their date: the target's own rows first, else the library-wide ones (a public holiday).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q, QuerySet

from reflib.models import Library, Queue, ServicePoint, display_name
from staffing import wallclock
from staffing.models import (
    Assignment,
    AssignmentStatus,
    CalendarFeed,
    OpeningHours,
    Shift,
    SpecialDay,
)

Interval = tuple[datetime, datetime]

# queue_opens_at looks this far ahead; a queue that opens later has no announced opening.
OPENS_AT_HORIZON = timedelta(days=14)


@dataclass(frozen=True)
class ShiftView:
    """One person's assignment to one shift, as the pages, the desk and the feed show it."""

    assignment_id: int
    shift_id: int
    user_id: int
    staff_name: str
    library: Library
    service_point: ServicePoint
    date: date
    start: datetime
    end: datetime
    flagged: str

    @property
    def zone(self) -> ZoneInfo:
        return self.library.zone

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(self.zone)

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(self.zone)

    @property
    def hours(self) -> float:
        return wallclock.hours(self.start, self.end)


def _views(rows: QuerySet[Assignment]) -> list[ShiftView]:
    return [
        ShiftView(
            assignment_id=row.pk,
            shift_id=row.shift_id,
            user_id=row.user_id,
            staff_name=display_name(row.user),
            library=row.shift.library,
            service_point=row.shift.service_point,
            date=row.shift.date,
            start=row.shift.start,
            end=row.shift.end,
            flagged=row.flagged,
        )
        for row in rows
    ]


def _active() -> QuerySet[Assignment]:
    return (
        Assignment.objects.active()
        .select_related("shift__library", "shift__service_point", "user__staff_profile")
        .order_by("shift__start", "shift__service_point__name", "user__username")
    )


# Who is rostered


def current_and_next_shift(
    *, user: User, now: datetime
) -> tuple[ShiftView | None, ShiftView | None]:
    """The shift ``user`` is on at ``now`` (if any) and their next one starting after ``now``."""
    mine = _active().filter(user=user)
    current = _views(mine.filter(shift__start__lte=now, shift__end__gt=now)[:1])
    upcoming = _views(mine.filter(shift__start__gt=now)[:1])
    return (current[0] if current else None, upcoming[0] if upcoming else None)


def rostered_user_ids(*, service_point: ServicePoint, at: datetime) -> set[int]:
    """The people rostered at ``service_point`` at the instant ``at``."""
    return set(
        _active()
        .filter(
            shift__service_point=service_point,
            shift__start__lte=at,
            shift__end__gt=at,
        )
        .values_list("user_id", flat=True)
    )


def on_now(*, library: Library, now: datetime) -> list[ShiftView]:
    """Everyone on shift in ``library`` at ``now``, by service point."""
    return _views(
        _active().filter(shift__library=library, shift__start__lte=now, shift__end__gt=now)
    )


def shifts_for_user(
    *, user: User, start: date, end: date, library: Library | None = None
) -> list[ShiftView]:
    """``user``'s assignments on shifts starting on local dates ``start`` to ``end``."""
    mine = _active().filter(user=user, shift__date__gte=start, shift__date__lte=end)
    if library is not None:
        mine = mine.filter(shift__library=library)
    return _views(mine)


def hours_for_user(*, user: User, start: date, end: date, library: Library | None = None) -> float:
    """Hours ``user`` is rostered on shifts starting on local dates ``start`` to ``end``."""
    return sum(
        view.hours for view in shifts_for_user(user=user, start=start, end=end, library=library)
    )


# Opening hours


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _intersect(first: Sequence[Interval], second: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(first) and j < len(second):
        start = max(first[i][0], second[j][0])
        end = min(first[i][1], second[j][1])
        if start < end:
            out.append((start, end))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return out


def _hours_owner(*, queue: Queue | None, service_point: ServicePoint | None) -> tuple[Library, Q]:
    """The library and the filter selecting the rows whose hours apply to the target."""
    if (queue is None) == (service_point is None):
        raise TypeError("give exactly one of queue and service_point")
    if queue is not None:
        has_own = OpeningHours.objects.filter(queue=queue).exists()
        if has_own or queue.service_point_id is None:
            return queue.library, Q(queue=queue)
        return queue.library, Q(service_point_id=queue.service_point_id)
    assert service_point is not None
    return service_point.library, Q(service_point=service_point)


def open_periods(
    *,
    start: datetime,
    end: datetime,
    queue: Queue | None = None,
    service_point: ServicePoint | None = None,
) -> list[Interval]:
    """The opening periods of a queue or a service point that overlap ``[start, end)``,
    merged, as UTC instants."""
    library, target = _hours_owner(queue=queue, service_point=service_point)
    zone = library.zone
    # Periods that began on the day before can run past midnight into the range.
    first_day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date()
    weekly: dict[int, list[OpeningHours]] = defaultdict(list)
    for row in OpeningHours.objects.filter(target, library=library):
        weekly[row.weekday].append(row)
    unrestricted = not weekly
    own_special: dict[date, list[SpecialDay]] = defaultdict(list)
    library_special: dict[date, list[SpecialDay]] = defaultdict(list)
    specials = SpecialDay.objects.filter(
        Q(service_point__isnull=True, queue__isnull=True) | target,
        library=library,
        date__gte=first_day,
        date__lte=last_day,
    )
    for special in specials:
        general = special.service_point_id is None and special.queue_id is None
        (library_special if general else own_special)[special.date].append(special)

    spans: list[Interval] = []
    for day in wallclock.dates(first_day, last_day):
        special_rows = own_special.get(day) or library_special.get(day)
        if special_rows:
            if any(row.is_closure for row in special_rows):
                continue
            times = [(row.opens, row.closes) for row in special_rows]
        elif unrestricted:
            times = [(datetime.min.time(), datetime.min.time())]
        else:
            times = [(row.opens, row.closes) for row in weekly.get(day.weekday(), [])]
        for opens, closes in times:
            assert opens is not None
            assert closes is not None
            spans.append(wallclock.local_span(day, opens, closes, zone))
    return [
        (max(span_start, start), min(span_end, end))
        for span_start, span_end in _merge(spans)
        if span_end > start and span_start < end
    ]


def is_open(
    *, at: datetime, queue: Queue | None = None, service_point: ServicePoint | None = None
) -> bool:
    """Whether a queue or a service point is open at ``at`` by its opening hours."""
    return bool(
        open_periods(
            start=at, end=at + timedelta(microseconds=1), queue=queue, service_point=service_point
        )
    )


def staffed_periods(
    *, service_point: ServicePoint, start: datetime, end: datetime
) -> list[Interval]:
    """When at least one person is rostered at ``service_point`` within ``[start, end)``."""
    shifts = (
        Shift.objects.filter(
            service_point=service_point,
            is_cancelled=False,
            start__lt=end,
            end__gt=start,
            assignments__status="assigned",
        )
        .values_list("start", "end")
        .distinct()
    )
    return [(max(a, start), min(b, end)) for a, b in _merge(shifts)]


def queue_opens_at(*, queue: Queue, now: datetime) -> datetime | None:
    """The next time ``queue`` is open by its hours and someone is rostered on it: ``now``
    when that is the case now, None when not within the next fourteen days (or when the
    queue has no service point, so nobody can be rostered on it)."""
    if queue.service_point is None:
        return None
    horizon = now + OPENS_AT_HORIZON
    staffed = staffed_periods(service_point=queue.service_point, start=now, end=horizon)
    if not staffed:
        return None
    both = _intersect(open_periods(queue=queue, start=now, end=horizon), staffed)
    return both[0][0] if both else None


# Hours of staffing


def staffed_hours_by_hour_of_week(
    *,
    library: Library,
    start: date,
    end: date,
    service_point: ServicePoint | None = None,
) -> dict[tuple[int, int], float]:
    """Rostered staff-hours per (weekday, local hour), Monday = 0, over local dates ``start``
    to ``end`` inclusive. Two people on a one-hour shift count two staff-hours; the repeated
    hour of a November change counts twice."""
    zone = library.zone
    range_start, range_end = wallclock.day_bounds(start, end, zone)
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = [library.pk, AssignmentStatus.ASSIGNED.value, adapt(range_end)]
    params.append(adapt(range_start))
    point = ""
    if service_point is not None:
        point = " AND s.service_point_id = %s"
        params.append(service_point.pk)
    # One shift per active assignment (Assignment.objects.active()), unordered. Written as SQL:
    # the manager's statistics page and coverage.csv run it at every request, and the ORM took
    # longer to build it than the database to answer (docs/benchmarks.md). The raw queryset
    # still converts the times as the ORM does.
    shifts = Shift.objects.raw(
        f"""SELECT s.id, s.start, s."end" FROM {Shift._meta.db_table} s
            INNER JOIN {Assignment._meta.db_table} a ON a.shift_id = s.id
            WHERE s.library_id = %s AND NOT s.is_cancelled AND a.status = %s
              AND s.start < %s AND s."end" > %s{point}""",  # noqa: S608 - values are parameters
        params,
    )
    totals: dict[tuple[int, int], float] = defaultdict(float)
    for shift in shifts:
        for local, length in wallclock.local_hour_pieces(
            max(shift.start, range_start), min(shift.end, range_end), zone
        ):
            totals[(local.weekday(), local.hour)] += length
    return dict(totals)


# The personal calendar feed


def feed_secret_of(feed: CalendarFeed) -> str:
    """The secret of a feed, derived from its stored nonce and the installation's key, so that
    the database alone (a dump, a backup) does not give the URL away."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"staffing-feed:{feed.nonce}".encode(), hashlib.sha256
    )
    return digest.hexdigest()


def feed_secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def feed_secret(*, user: User) -> str | None:
    """``user``'s current feed secret, None until they have one (services.calendar_feed_reset)."""
    feed = CalendarFeed.objects.filter(user=user).first()
    return feed_secret_of(feed) if feed is not None else None


def feed_user(*, secret: str) -> User | None:
    """The active user whose feed ``secret`` this is, or None."""
    feed = (
        CalendarFeed.objects.filter(token_hash=feed_secret_hash(secret), user__is_active=True)
        .select_related("user")
        .first()
    )
    return feed.user if feed is not None else None
