"""Reads for the staffing pages: what a librarian may claim, a manager's week, approvals.

Every function takes the person or library it answers for, and reads only through the
library-scoped QuerySets, so a page can never show another library's rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth.models import User
from django.db.models import Count, F, Q, QuerySet

from reflib.models import Library, Membership, ServicePoint, display_name
from staffing import wallclock
from staffing.conflicts import Conflict, roster_conflicts
from staffing.coverage import PointCoverage, coverage_week
from staffing.models import (
    Assignment,
    AssignmentStatus,
    RequestStatus,
    Shift,
    ShiftClaim,
    SwapOffer,
    SwapStatus,
    TimeOffRequest,
)

# Open shifts and offers are listed this far ahead.
CLAIM_HORIZON = timedelta(days=28)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def live_offers_of(user: User) -> dict[int, SwapOffer]:
    """``user``'s own offers still open or claimed, by assignment id."""
    return {
        offer.assignment_id: offer
        for offer in SwapOffer.objects.filter(
            assignment__user=user, status__in=[SwapStatus.OPEN, SwapStatus.CLAIMED]
        ).select_related("claimed_by__staff_profile")
    }


def offers_for(user: User, *, now: datetime) -> QuerySet[SwapOffer]:
    """Colleagues' open offers of future shifts in ``user``'s libraries."""
    return (
        SwapOffer.objects.visible_to(user)
        .filter(status=SwapStatus.OPEN, assignment__shift__start__gt=now)
        .exclude(assignment__user=user)
        .select_related(
            "assignment__shift__library",
            "assignment__shift__service_point",
            "assignment__user__staff_profile",
        )
        .order_by("assignment__shift__start")
    )


def open_shifts_for(user: User, *, now: datetime) -> QuerySet[Shift]:
    """Future shifts of ``user``'s libraries with a free place that ``user`` is not on."""
    mine = Assignment.objects.filter(user=user, status=AssignmentStatus.ASSIGNED)
    return (
        Shift.objects.visible_to(user)
        .filter(is_cancelled=False, start__gt=now, start__lt=now + CLAIM_HORIZON)
        .annotate(
            rostered=Count("assignments", filter=Q(assignments__status=AssignmentStatus.ASSIGNED))
        )
        .filter(rostered__lt=F("max_staff"))
        .exclude(pk__in=mine.values("shift_id"))
        .select_related("library", "service_point")
        .order_by("start", "service_point__name")
    )


def pending_claim_ids(user: User) -> set[int]:
    return set(
        ShiftClaim.objects.filter(user=user, status=RequestStatus.PENDING).values_list(
            "shift_id", flat=True
        )
    )


@dataclass
class RosterCell:
    """One shift in the week view, with its people and what is wrong with it."""

    shift: Shift
    people: list[tuple[Assignment, list[Conflict]]] = field(default_factory=list)

    @property
    def rostered(self) -> int:
        return len(self.people)

    @property
    def missing(self) -> int:
        return max(self.shift.min_staff - self.rostered, 0)

    @property
    def has_conflict(self) -> bool:
        return any(
            not conflict.override_note for _row, conflicts in self.people for conflict in conflicts
        )


@dataclass
class PointWeek:
    service_point: ServicePoint
    days: list[list[RosterCell]]
    coverage: PointCoverage | None


@dataclass
class WeekRoster:
    library: Library
    monday: date
    dates: list[date]
    points: list[PointWeek]

    @property
    def conflicts(self) -> int:
        return sum(cell.has_conflict for point in self.points for day in point.days for cell in day)

    @property
    def gaps(self) -> int:
        return sum(
            bool(cell.missing) for point in self.points for day in point.days for cell in day
        )


def week_roster(*, library: Library, monday: date) -> WeekRoster:
    """The roster of ``library`` for the week starting ``monday``, by service point and day."""
    dates = list(wallclock.dates(monday, monday + timedelta(days=6)))
    shifts = list(
        Shift.objects.for_library(library)
        .filter(is_cancelled=False, date__gte=dates[0], date__lte=dates[-1])
        .select_related("library", "service_point")
        .order_by("start", "pk")
    )
    conflicts = roster_conflicts(library=library, start=dates[0], end=dates[-1])
    cells = {shift.pk: RosterCell(shift=shift) for shift in shifts}
    for assignment in (
        Assignment.objects.active()
        .filter(shift__in=shifts)
        .select_related("user__staff_profile")
        .order_by("user__username")
    ):
        cells[assignment.shift_id].people.append((assignment, conflicts.get(assignment.pk, [])))
    coverage = {
        item.service_point.pk: item for item in coverage_week(library=library, week_start=monday)
    }
    by_point: dict[int, list[list[RosterCell]]] = defaultdict(lambda: [[] for _ in dates])
    for shift in shifts:
        by_point[shift.service_point_id][(shift.date - monday).days].append(cells[shift.pk])
    points = (
        ServicePoint.objects.for_library(library)
        .filter(Q(is_active=True) | Q(pk__in=list(by_point)))
        .order_by("name")
    )
    return WeekRoster(
        library=library,
        monday=monday,
        dates=dates,
        points=[
            PointWeek(
                service_point=point,
                days=by_point[point.pk] if point.pk in by_point else [[] for _ in dates],
                coverage=coverage.get(point.pk),
            )
            for point in points
        ],
    )


def staff_of(library: Library) -> list[User]:
    """The active staff of ``library``, by display name."""
    users = [
        membership.user
        for membership in Membership.objects.for_library(library)
        .filter(user__is_active=True)
        .select_related("user__staff_profile")
    ]
    return sorted(users, key=lambda user: display_name(user).casefold())


@dataclass
class Approvals:
    time_off: list[TimeOffRequest]
    swaps: list[SwapOffer]
    claims: list[ShiftClaim]

    def __len__(self) -> int:
        return len(self.time_off) + len(self.swaps) + len(self.claims)


def approvals_for(library: Library) -> Approvals:
    """What waits for a manager of ``library``: time off, claimed swaps, open-shift claims."""
    return Approvals(
        time_off=list(
            TimeOffRequest.objects.for_library(library)
            .filter(status=RequestStatus.PENDING)
            .select_related("library", "user__staff_profile")
            .order_by("start")
        ),
        swaps=list(
            SwapOffer.objects.for_library(library)
            .filter(status=SwapStatus.CLAIMED)
            .select_related(
                "assignment__shift__library",
                "assignment__shift__service_point",
                "assignment__user__staff_profile",
                "claimed_by__staff_profile",
            )
            .order_by("assignment__shift__start")
        ),
        claims=list(
            ShiftClaim.objects.for_library(library)
            .filter(status=RequestStatus.PENDING)
            .select_related("shift__library", "shift__service_point", "user__staff_profile")
            .order_by("shift__start")
        ),
    )
