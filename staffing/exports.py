"""Stable exports of the roster: a librarian's iCalendar feed and a library's roster CSV.

The feed follows RFC 5545 as calendar clients that subscribe to a URL expect: each assignment
is one event whose ``UID`` never changes, its ``SEQUENCE`` rises with every change, and an
assignment that was removed (or whose shift was cancelled) stays in the feed with
``STATUS:CANCELLED`` so that clients drop it; times carry the library's ``TZID`` with its
``VTIMEZONE``, so a 09:00 shift shows at 09:00 in the library whatever the DST season.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from functools import cache
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, Q
from django.utils import timezone
from icalendar import Calendar, Event, Timezone

from reflib.models import Library, display_name
from staffing.models import Assignment, AssignmentStatus, Shift

# The feed carries shifts that ended up to this long ago, and every future one.
FEED_PAST = timedelta(days=60)
CSV_HEADER = ["date", "start", "end", "service_point", "staff"]
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@cache
def _vtimezone(zone: str, first_year: int, last_year: int) -> Timezone:
    return Timezone.from_tzinfo(
        ZoneInfo(zone), first_date=date(first_year, 1, 1), last_date=date(last_year, 12, 31)
    )


def _uid_domain() -> str:
    return urlsplit(settings.REFLIB_BASE_URL).hostname or "reflib"


def calendar_feed(*, user: User, now: datetime | None = None) -> bytes:
    """``user``'s shifts in every library as an iCalendar document."""
    now = now or timezone.now()
    rows = list(
        Assignment.objects.filter(user=user, shift__end__gte=now - FEED_PAST)
        .select_related("shift__library", "shift__service_point")
        .order_by("shift__start", "pk")
    )
    calendar = Calendar()
    calendar.add("prodid", "-//reflib//staffing//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"Shifts: {display_name(user)}")
    years: dict[str, list[int]] = {}
    for row in rows:
        span = years.setdefault(row.shift.library.timezone, [row.shift.date.year] * 2)
        span[0] = min(span[0], row.shift.date.year)
        span[1] = max(span[1], row.shift.date.year + 1)
    for zone_name, (first, last) in sorted(years.items()):
        calendar.add_component(_vtimezone(zone_name, first, last))
    domain = _uid_domain()
    for row in rows:
        shift = row.shift
        zone = shift.library.zone
        cancelled = row.status != AssignmentStatus.ASSIGNED or shift.is_cancelled
        event = Event()
        event.add("uid", f"staffing-assignment-{row.pk}@{domain}")
        event.add("dtstamp", row.updated_at.astimezone(UTC))
        event.add("last-modified", row.updated_at.astimezone(UTC))
        event.add("sequence", row.sequence)
        event.add("dtstart", shift.start.astimezone(zone))
        event.add("dtend", shift.end.astimezone(zone))
        event.add("summary", f"{shift.service_point.name} ({shift.library.name})")
        event.add("location", shift.service_point.name)
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
        calendar.add_component(event)
    return calendar.to_ical()


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


def roster_csv(*, library: Library, start: date, end: date) -> str:
    """The roster of ``library`` for local dates ``start`` to ``end``: one row per assignment
    (``staff`` is the display name), and for each shift one row with an empty ``staff`` per
    place still open below its minimum (one for a shift nobody is on). Local dates
    (``YYYY-MM-DD``) and times (``HH:MM``); an end before the start is on the next day."""
    zone = library.zone
    shifts = (
        Shift.objects.filter(library=library, is_cancelled=False, date__gte=start, date__lte=end)
        .select_related("service_point")
        .annotate(
            rostered=Count("assignments", filter=Q(assignments__status=AssignmentStatus.ASSIGNED))
        )
        .order_by("start", "service_point__name", "pk")
    )
    people: dict[int, list[str]] = {}
    for assignment in Assignment.objects.filter(
        shift__in=shifts, status=AssignmentStatus.ASSIGNED
    ).select_related("user__staff_profile"):
        people.setdefault(assignment.shift_id, []).append(display_name(assignment.user))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for shift in shifts:
        names = sorted(people.get(shift.pk, []), key=str.casefold)
        open_places = max(shift.min_staff - len(names), 0 if names else 1)
        prefix = [
            shift.date.isoformat(),
            f"{shift.start.astimezone(zone):%H:%M}",
            f"{shift.end.astimezone(zone):%H:%M}",
            _cell(shift.service_point.name),
        ]
        for name in [*names, *[""] * open_places]:
            writer.writerow([*prefix, _cell(name)])
    return out.getvalue()
