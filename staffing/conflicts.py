"""Conflict detection: why a person should not (or should not have been) put on a shift.

A read module: it loads the rules that bear on some people over a period once (their other
shifts, availability, approved time off, hour limits, the library's policy) into a
:class:`RuleBook`, then answers for any number of shifts in memory. The assignment service,
the week view, auto-fill and the benchmark all ask the same :func:`check`.

The rules, in the library's time zone (docs/staffing.md explains them for managers):

- **double booking**: the person is on another shift that overlaps (in any library);
- **outside availability**: the person has stated weekly availability and the shift is not
  inside it (dated exceptions add or remove time); a person who has stated none is not
  restricted, except by the dates they marked unavailable;
- **time off**: the shift overlaps the person's approved time off;
- **weekly hours**: the person's hours in this library in the shift's week (Monday to Sunday,
  by the local date each shift starts on) would exceed their limit (their own, else the
  library's);
- **rest**: between this shift and one starting on another local date, fewer than the library's
  minimum rest hours. Shifts on the same date are one working day, and a break between them is
  not a rest period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import models
from django.utils.dateformat import format as format_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from reflib.models import Library
from staffing import wallclock
from staffing.models import (
    Assignment,
    Availability,
    AvailabilityException,
    ConflictOverride,
    RequestStatus,
    Shift,
    StaffingPolicy,
    TimeOffRequest,
    WeeklyHourLimit,
)

Interval = tuple[datetime, datetime]
# Bookings this far either side of the checked period bear on its weekly hours and rest.
MARGIN = timedelta(days=8)


class ConflictKind(models.TextChoices):
    DOUBLE_BOOKING = "double_booking", gettext_lazy("Double booking")
    OUTSIDE_AVAILABILITY = "outside_availability", gettext_lazy("Outside availability")
    TIME_OFF = "time_off", gettext_lazy("During approved time off")
    WEEKLY_HOURS = "weekly_hours", gettext_lazy("Over the weekly hour limit")
    REST = "rest", gettext_lazy("Too little rest between shifts")


@dataclass(frozen=True)
class Conflict:
    kind: ConflictKind
    message: str
    # Set when a manager kept the assignment despite this kind of conflict.
    override_note: str = ""

    @property
    def label(self) -> str:
        return str(self.kind.label)


@dataclass(frozen=True)
class Booking:
    """A span someone is (or would be) on: an assignment or a candidate shift."""

    shift_id: int
    library_id: int
    date: date
    start: datetime
    end: datetime
    assignment_id: int | None = None

    @property
    def hours(self) -> float:
        return wallclock.hours(self.start, self.end)

    @classmethod
    def of(cls, shift: Shift, assignment_id: int | None = None) -> Booking:
        return cls(
            shift_id=shift.pk,
            library_id=shift.library_id,
            date=shift.date,
            start=shift.start,
            end=shift.end,
            assignment_id=assignment_id,
        )


@dataclass
class Person:
    """What bears on one person's shifts in one library."""

    user_id: int
    hour_limit: float
    bookings: list[Booking] = field(default_factory=list)
    weekly_rows: list[Availability] = field(default_factory=list)
    exceptions: dict[date, list[AvailabilityException]] = field(default_factory=dict)
    time_off: list[Interval] = field(default_factory=list)
    # (date, end) of a booking -> (available spans, unavailable spans) around it: auto-fill
    # asks about the same shift for every candidate.
    spans: dict[tuple[date, datetime], tuple[list[Interval], list[Interval]]] = field(
        default_factory=dict
    )

    @property
    def has_stated_availability(self) -> bool:
        return bool(self.weekly_rows)


@dataclass
class RuleBook:
    """The rules of one library for some people around a period, loaded once."""

    library: Library
    min_rest: timedelta
    people: dict[int, Person]

    @property
    def zone(self) -> ZoneInfo:
        return self.library.zone

    def person(self, user_id: int) -> Person:
        person = self.people.get(user_id)
        if person is None:
            raise KeyError(f"user {user_id} was not loaded into this rule book")
        return person

    def add(self, user_id: int, booking: Booking) -> None:
        """Count a proposed booking in further checks (auto-fill)."""
        self.person(user_id).bookings.append(booking)


def policy_for(library: Library) -> StaffingPolicy:
    """The library's policy, or an unsaved one with the defaults."""
    return StaffingPolicy.objects.filter(library=library).first() or StaffingPolicy(library=library)


def load_rules(
    *, library: Library, user_ids: Iterable[int], start: datetime, end: datetime
) -> RuleBook:
    """Load what bears on ``user_ids``' shifts of ``library`` starting within
    ``[start, end)``."""
    ids = sorted(set(user_ids))
    policy = policy_for(library)
    limits = dict(
        WeeklyHourLimit.objects.filter(library=library, user_id__in=ids).values_list(
            "user_id", "hours"
        )
    )
    default_limit: Decimal = policy.weekly_hour_limit
    people = {
        user_id: Person(user_id=user_id, hour_limit=float(limits.get(user_id, default_limit)))
        for user_id in ids
    }
    lo, hi = start - MARGIN, end + MARGIN
    bookings = Assignment.objects.active().filter(
        user_id__in=ids, shift__start__lt=hi, shift__end__gt=lo
    )
    for assignment_id, user_id, shift_id, library_id, day, begin, finish in bookings.values_list(
        "pk",
        "user_id",
        "shift_id",
        "shift__library_id",
        "shift__date",
        "shift__start",
        "shift__end",
    ):
        people[user_id].bookings.append(
            Booking(
                shift_id=shift_id,
                library_id=library_id,
                date=day,
                start=begin,
                end=finish,
                assignment_id=assignment_id,
            )
        )
    for row in Availability.objects.filter(library=library, user_id__in=ids):
        people[row.user_id].weekly_rows.append(row)
    first_day = (lo.astimezone(library.zone)).date()
    last_day = (hi.astimezone(library.zone)).date()
    for exception in AvailabilityException.objects.filter(
        library=library, user_id__in=ids, date__gte=first_day, date__lte=last_day
    ):
        people[exception.user_id].exceptions.setdefault(exception.date, []).append(exception)
    for user_id, begin, finish in TimeOffRequest.objects.filter(
        user_id__in=ids, status=RequestStatus.APPROVED, start__lt=hi, end__gt=lo
    ).values_list("user_id", "start", "end"):
        people[user_id].time_off.append((begin, finish))
    return RuleBook(
        library=library,
        min_rest=timedelta(hours=float(policy.min_rest_hours)),
        people=people,
    )


def _local(at: datetime, zone: ZoneInfo) -> str:
    # Django's format, so that day and month names follow the active language.
    return format_date(at.astimezone(zone), "D d M H:i")


def _overlaps(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _available_spans(person: Person, first: date, last: date, zone: ZoneInfo) -> list[Interval]:
    spans: list[Interval] = []
    for day in wallclock.dates(first, last):
        for row in person.weekly_rows:
            if row.weekday == day.weekday():
                spans.append(wallclock.local_span(day, row.start_time, row.end_time, zone))
        for exception in person.exceptions.get(day, []):
            if exception.available and exception.start_time and exception.end_time:
                spans.append(
                    wallclock.local_span(day, exception.start_time, exception.end_time, zone)
                )
    return spans


def _unavailable_spans(person: Person, first: date, last: date, zone: ZoneInfo) -> list[Interval]:
    spans: list[Interval] = []
    for day in wallclock.dates(first, last):
        for exception in person.exceptions.get(day, []):
            if exception.available:
                continue
            if exception.start_time is None or exception.end_time is None:
                spans.append(wallclock.day_bounds(day, day, zone))
            else:
                spans.append(
                    wallclock.local_span(day, exception.start_time, exception.end_time, zone)
                )
    return spans


def _covered(span: Interval, spans: list[Interval]) -> bool:
    """Whether the union of ``spans`` covers ``span``."""
    reach = span[0]
    for start, end in sorted(spans):
        if start > reach:
            break
        reach = max(reach, end)
        if reach >= span[1]:
            return True
    return reach >= span[1]


def is_within_availability(book: RuleBook, person: Person, booking: Booking) -> bool:
    span = (booking.start, booking.end)
    key = (booking.date, booking.end)
    if key not in person.spans:
        first = booking.date - timedelta(days=1)
        last = booking.end.astimezone(book.zone).date()
        person.spans[key] = (
            _available_spans(person, first, last, book.zone),
            _unavailable_spans(person, first, last, book.zone),
        )
    available, unavailable = person.spans[key]
    if any(_overlaps(span, off) for off in unavailable):
        return False
    if not person.has_stated_availability:
        return True
    return _covered(span, available)


@dataclass(frozen=True)
class Candidate:
    """One question to the rules: ``person`` on ``booking``, against their other bookings
    (their own assignment to the same shift, if any, does not count)."""

    book: RuleBook
    person: Person
    booking: Booking
    others: list[Booking]

    @property
    def span(self) -> Interval:
        return (self.booking.start, self.booking.end)


def _double_booking(c: Candidate) -> Conflict | None:
    zone = c.book.zone
    for other in c.others:
        if _overlaps(c.span, (other.start, other.end)):
            where = (
                _("another shift %(start)s-%(end)s")
                % {"start": _local(other.start, zone), "end": f"{other.end.astimezone(zone):%H:%M}"}
                if other.library_id == c.book.library.pk
                else _("a shift of another library at that time")
            )
            return Conflict(
                ConflictKind.DOUBLE_BOOKING, _("Already on %(where)s.") % {"where": where}
            )
    return None


def _outside_availability(c: Candidate) -> Conflict | None:
    if is_within_availability(c.book, c.person, c.booking):
        return None
    zone = c.book.zone
    return Conflict(
        ConflictKind.OUTSIDE_AVAILABILITY,
        _("Not available %(start)s-%(end)s.")
        % {
            "start": _local(c.booking.start, zone),
            "end": f"{c.booking.end.astimezone(zone):%H:%M}",
        },
    )


def _time_off(c: Candidate) -> Conflict | None:
    for off in c.person.time_off:
        if _overlaps(c.span, off):
            zone = c.book.zone
            return Conflict(
                ConflictKind.TIME_OFF,
                _("Approved time off %(start)s to %(end)s.")
                % {"start": _local(off[0], zone), "end": _local(off[1], zone)},
            )
    return None


def _hours(value: float) -> str:
    """Hours as a person reads them: 7.4, 8, 11.5 (never 7.39008)."""
    return f"{value:.1f}".removesuffix(".0")


def _weekly_hours(c: Candidate) -> Conflict | None:
    day = c.booking.date
    week_start = day - timedelta(days=day.weekday())
    week_end = week_start + timedelta(days=6)
    week_hours = c.booking.hours + sum(
        other.hours
        for other in c.others
        if other.library_id == c.book.library.pk and week_start <= other.date <= week_end
    )
    if week_hours <= c.person.hour_limit + 1e-9:
        return None
    return Conflict(
        ConflictKind.WEEKLY_HOURS,
        _("%(hours)s h in the week of %(week)s, over the limit of %(limit)s h.")
        % {
            "hours": _hours(week_hours),
            "week": format_date(week_start, "d M"),
            "limit": _hours(c.person.hour_limit),
        },
    )


def _rest(c: Candidate) -> Conflict | None:
    booking = c.booking
    for other in c.others:
        if other.date == booking.date or _overlaps(c.span, (other.start, other.end)):
            continue
        gap = booking.start - other.end if other.end <= booking.start else other.start - booking.end
        if gap < c.book.min_rest:
            return Conflict(
                ConflictKind.REST,
                _("Only %(gap)s h of rest next to the shift %(start)s (minimum %(rest)s h).")
                % {
                    "gap": _hours(gap.total_seconds() / 3600),
                    "start": _local(other.start, c.book.zone),
                    "rest": _hours(c.book.min_rest.total_seconds() / 3600),
                },
            )
    return None


# In the order they are reported.
RULES = [_double_booking, _outside_availability, _time_off, _weekly_hours, _rest]
# Auto-fill asks only whether there is any conflict: the rules that most often rule a
# candidate out come first.
QUICK_RULES = [_outside_availability, _double_booking, _time_off, _rest, _weekly_hours]


def _candidate(book: RuleBook, user_id: int, booking: Booking) -> Candidate:
    person = book.person(user_id)
    others = [b for b in person.bookings if b.shift_id != booking.shift_id]
    return Candidate(book=book, person=person, booking=booking, others=others)


def check(book: RuleBook, user_id: int, booking: Booking) -> list[Conflict]:
    """The conflicts of putting ``user_id`` on ``booking``."""
    candidate = _candidate(book, user_id, booking)
    return [conflict for rule in RULES if (conflict := rule(candidate)) is not None]


def has_conflict(book: RuleBook, user_id: int, booking: Booking) -> bool:
    """Whether :func:`check` would find any conflict (stops at the first)."""
    candidate = _candidate(book, user_id, booking)
    return any(rule(candidate) is not None for rule in QUICK_RULES)


def conflicts_for(*, user_id: int, shift: Shift) -> list[Conflict]:
    """The conflicts of putting the person ``user_id`` on ``shift``."""
    book = load_rules(library=shift.library, user_ids=[user_id], start=shift.start, end=shift.end)
    return check(book, user_id, Booking.of(shift))


def roster_conflicts(*, library: Library, start: date, end: date) -> dict[int, list[Conflict]]:
    """Every conflict of the active assignments on ``library``'s shifts starting on local
    dates ``start`` to ``end``, by assignment id; a manager's override is attached to the
    kinds it accepted."""
    zone = library.zone
    range_start, range_end = wallclock.day_bounds(start, end, zone)
    rows = list(
        Assignment.objects.active()
        .filter(shift__library=library, shift__date__gte=start, shift__date__lte=end)
        .select_related("shift")
    )
    book = load_rules(
        library=library, user_ids={row.user_id for row in rows}, start=range_start, end=range_end
    )
    overrides: dict[int, dict[str, str]] = defaultdict(dict)
    for assignment_id, reasons, note in (
        ConflictOverride.objects.filter(assignment__in=[row.pk for row in rows])
        .order_by("created_at")
        .values_list("assignment_id", "reasons", "note")
    ):
        for kind in reasons:
            overrides[assignment_id][kind] = note
    found: dict[int, list[Conflict]] = {}
    for row in rows:
        conflicts = check(book, row.user_id, Booking.of(row.shift, row.pk))
        if conflicts:
            accepted = overrides.get(row.pk, {})
            found[row.pk] = [
                replace(conflict, override_note=accepted.get(conflict.kind, ""))
                for conflict in conflicts
            ]
    return found
