"""Auto-fill: proposals that bring each shift up to its minimum from stated availability.

A read: it proposes and changes nothing; :func:`staffing.services.autofill_apply` applies what
the manager confirms. The rule (docs/staffing.md):

1. Shifts are filled in the order they start, only up to their minimum staff, only shifts that
   have not begun.
2. A person is a candidate for a shift when they have stated weekly availability that covers it
   and putting them on it gives no conflict of any kind, counting what was proposed before.
3. Among the candidates, the one with the fewest hours in the period (already rostered plus
   proposed) gets the place; ties go to fewer hours in that week, then to the user name, so
   the same roster always gets the same proposal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.contrib.auth.models import User
from django.db.models import Count, F, Q
from django.utils import timezone

from reflib.models import Library
from staffing import wallclock
from staffing.conflicts import Booking, has_conflict, is_within_availability, load_rules
from staffing.models import AssignmentStatus, Shift


@dataclass(frozen=True)
class Proposal:
    """Put ``user_id`` on ``shift_id``: what auto-fill proposes and the manager confirms."""

    shift_id: int
    user_id: int


def autofill_propose(
    *, library: Library, start: date, end: date, now: datetime | None = None
) -> list[Proposal]:
    now = now or timezone.now()
    range_start, range_end = wallclock.day_bounds(start, end, library.zone)
    shifts = list(
        Shift.objects.filter(
            library=library, is_cancelled=False, date__gte=start, date__lte=end, start__gt=now
        )
        .annotate(
            rostered=Count("assignments", filter=Q(assignments__status=AssignmentStatus.ASSIGNED))
        )
        .filter(rostered__lt=F("min_staff"))
        .order_by("start", "service_point__name", "pk")
    )
    staff = list(
        User.objects.filter(memberships__library=library, is_active=True)
        .order_by("username")
        .values_list("pk", "username")
    )
    book = load_rules(
        library=library, user_ids=[pk for pk, _name in staff], start=range_start, end=range_end
    )
    period: dict[int, float] = defaultdict(float)
    weekly: dict[tuple[int, date], float] = defaultdict(float)
    for person in book.people.values():
        for booking in person.bookings:
            if booking.library_id == library.pk:
                monday = booking.date - timedelta(days=booking.date.weekday())
                weekly[(person.user_id, monday)] += booking.hours
                if start <= booking.date <= end:
                    period[person.user_id] += booking.hours
    on_shift: dict[int, set[int]] = defaultdict(set)
    for shift_id, user_id in Shift.objects.filter(
        pk__in=[shift.pk for shift in shifts], assignments__status=AssignmentStatus.ASSIGNED
    ).values_list("pk", "assignments__user_id"):
        on_shift[shift_id].add(user_id)

    proposals: list[Proposal] = []
    for shift in shifts:
        booking = Booking.of(shift)
        monday = shift.date - timedelta(days=shift.date.weekday())
        for _place in range(shift.min_staff - shift.rostered):
            candidates = [
                (period[pk], weekly[(pk, monday)], name, pk)
                for pk, name in staff
                if pk not in on_shift[shift.pk]
                and book.person(pk).has_stated_availability
                # The availability test alone rules most people out, and cheaply.
                and is_within_availability(book, book.person(pk), booking)
                and not has_conflict(book, pk, booking)
            ]
            if not candidates:
                break
            *_keys, chosen = min(candidates)
            book.add(chosen, booking)
            on_shift[shift.pk].add(chosen)
            period[chosen] += booking.hours
            weekly[(chosen, monday)] += booking.hours
            proposals.append(Proposal(shift_id=shift.pk, user_id=chosen))
    return proposals
