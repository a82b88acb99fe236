"""The demo library's staffing (``seed_demo``): opening hours, templates, availability and a
roster from four weeks back to four weeks ahead, a time-off request and a pending swap.

Idempotent: a library that already has shift templates gets nothing more. The roster is
recorded history and a plan, not live changes, so its rows are written directly and nobody is
e-mailed; who works when is chosen by the same auto-fill rule a manager would use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from reflib.models import Library, Role
from reflib.services import staff_upsert
from staffing.autofill import Proposal, autofill_propose
from staffing.conflicts import conflicts_for
from staffing.models import (
    Assignment,
    AssignmentStatus,
    Availability,
    OpeningHours,
    RequestStatus,
    Shift,
    ShiftTemplate,
    SpecialDay,
    StaffingPolicy,
    SwapOffer,
    SwapStatus,
    TimeOffRequest,
)
from staffing.services import roster_generate
from staffing.wallclock import local_instant

WEEKS = 4
# The accounts a visitor logs in with (see chat's demo): rostered only on the chat desk.
DEMO_ACCOUNTS = ("librarian", "manager")
WEEKDAYS: Sequence[int] = range(5)
WEEKEND: Sequence[int] = (5, 6)
# Colleagues of the demo accounts, without passwords: they fill the roster, they never log in.
COLLEAGUES = [
    ("jordan", "Jordan (Science)"),
    ("priya", "Priya (Reference)"),
    ("sam", "Sam (Evenings)"),
    ("lee", "Lee (Weekends)"),
]
# service point slug: [(weekdays, opens, closes)]
HOURS: dict[str, list[tuple[Sequence[int], time, time]]] = {
    "main-desk": [(WEEKDAYS, time(9), time(20)), ((5,), time(10), time(17))],
    "science": [(WEEKDAYS, time(9), time(17))],
    "chat": [(WEEKDAYS, time(9), time(21)), (WEEKEND, time(12), time(17))],
}
# service point slug: [(weekdays, start, end, min staff, max staff)]
TEMPLATES: dict[str, list[tuple[Sequence[int], time, time, int, int]]] = {
    "main-desk": [
        (WEEKDAYS, time(9), time(13), 1, 2),
        (WEEKDAYS, time(13), time(17), 1, 2),
        (WEEKDAYS, time(17), time(20), 1, 1),
        ((5,), time(10), time(17), 1, 1),
    ],
    "science": [(WEEKDAYS, time(9), time(13), 1, 1), (WEEKDAYS, time(13), time(17), 1, 1)],
    "chat": [
        (WEEKDAYS, time(9), time(13), 1, 1),
        (WEEKDAYS, time(13), time(17), 1, 1),
        (WEEKDAYS, time(17), time(21), 1, 1),
        (WEEKEND, time(12), time(17), 1, 1),
    ],
}
# username: [(weekdays, from, until)]
AVAILABILITY: dict[str, list[tuple[Sequence[int], time, time]]] = {
    "librarian": [(WEEKDAYS, time(8), time(18))],
    "manager": [(WEEKDAYS, time(9), time(17))],
    "jordan": [(WEEKDAYS, time(8), time(17))],
    "priya": [((0, 1, 2, 3), time(9), time(21))],
    "sam": [((1, 2, 3, 4), time(13), time(21)), ((5,), time(10), time(17))],
    "lee": [(WEEKEND, time(9), time(18)), ((4,), time(12), time(21))],
}


def seed_staffing_history(library: Library) -> str:
    if ShiftTemplate.objects.filter(library=library).exists():
        return "Staffing: already present"
    points = {point.slug: point for point in library.service_points.all()}
    if not all(slug in points for slug in HOURS):
        return "Staffing: the demo service points are missing"
    for username, name in COLLEAGUES:
        staff_upsert(username=username, library=library, role=Role.LIBRARIAN, display_name=name)
    people = {user.username: user for user in User.objects.filter(memberships__library=library)}

    StaffingPolicy.objects.get_or_create(library=library)
    for slug, rows in HOURS.items():
        for weekdays, opens, closes in rows:
            OpeningHours.objects.bulk_create(
                OpeningHours(
                    library=library,
                    service_point=points[slug],
                    weekday=day,
                    opens=opens,
                    closes=closes,
                )
                for day in weekdays
            )
    templates = [
        ShiftTemplate(
            library=library,
            service_point=points[slug],
            weekday=day,
            start_time=start,
            end_time=end,
            min_staff=low,
            max_staff=high,
        )
        for slug, rows in TEMPLATES.items()
        for weekdays, start, end, low, high in rows
        for day in weekdays
    ]
    ShiftTemplate.objects.bulk_create(templates)
    Availability.objects.bulk_create(
        Availability(
            library=library, user=people[username], weekday=day, start_time=start, end_time=end
        )
        for username, rows in AVAILABILITY.items()
        if username in people
        for weekdays, start, end in rows
        for day in weekdays
    )

    zone = library.zone
    today = timezone.now().astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())
    first, last = monday - timedelta(weeks=WEEKS), monday + timedelta(weeks=WEEKS, days=-1)
    christmas = first.replace(month=12, day=25)
    if first <= christmas <= last:
        SpecialDay.objects.create(library=library, date=christmas, note="Christmas Day")
    history_start = local_instant(first, time(0), zone) - timedelta(seconds=1)
    shifts = roster_generate(library=library, start=first, end=last, now=history_start).created
    proposals = _roster_fill(library, first, last, history_start, people)

    pending = _pending_requests(library, people)
    return (
        f"Staffing: {len(templates)} shift templates, {len(shifts)} shifts from {first} to "
        f"{last}, {len(proposals)} assignments, {pending}"
    )


def _roster_fill(
    library: Library, first: date, last: date, now: datetime, people: dict[str, User]
) -> list[Proposal]:
    """Auto-fill the roster, keeping the demo's own accounts on the chat desk: whoever tries
    the demo desk then answers the demo queue whether or not they are on shift (a librarian
    rostered at another desk answers only that desk's queues)."""
    chat_desk = library.service_points.get(slug="chat")
    chat_shifts = set(Shift.objects.filter(service_point=chat_desk).values_list("pk", flat=True))
    demo_accounts = {people[name].pk for name in DEMO_ACCOUNTS if name in people}
    kept: list[Proposal] = []
    while True:
        proposals = [
            proposal
            for proposal in autofill_propose(library=library, start=first, end=last, now=now)
            if proposal.user_id not in demo_accounts or proposal.shift_id in chat_shifts
        ]
        if not proposals:
            return kept
        Assignment.objects.bulk_create(
            Assignment(shift_id=proposal.shift_id, user_id=proposal.user_id)
            for proposal in proposals
        )
        kept += proposals


def _pending_requests(library: Library, people: dict[str, User]) -> str:
    """A swap the librarian offered and a colleague claimed, and a time-off request, both
    waiting for the manager."""
    now = timezone.now()
    offered = (
        Assignment.objects.filter(
            user=people["librarian"],
            status=AssignmentStatus.ASSIGNED,
            shift__library=library,
            shift__start__gt=now + timedelta(days=2),
        )
        .select_related("shift")
        .order_by("shift__start")
    )
    swaps = 0
    for assignment in offered:
        claimant = next(
            (
                people[name]
                for name in ("priya", "jordan", "sam", "lee")
                if not conflicts_for(user_id=people[name].pk, shift=assignment.shift)
            ),
            None,
        )
        if claimant is not None:
            SwapOffer.objects.create(
                assignment=assignment,
                note="Dentist appointment",
                status=SwapStatus.CLAIMED,
                claimed_by=claimant,
                claimed_at=now,
            )
            swaps = 1
            break
    start = local_instant(
        timezone.localdate(now, library.zone) + timedelta(days=10), time(0), library.zone
    )
    TimeOffRequest.objects.create(
        library=library,
        user=people["jordan"],
        start=start,
        end=start + timedelta(days=2),
        reason="Conference",
        status=RequestStatus.PENDING,
    )
    return f"{swaps} pending swap, 1 pending time-off request"
