"""Coverage below minimum, and auto-fill: fair, conflict-free, and changing nothing unasked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reflib.models import Role
from reflib.services import staff_upsert
from staffing.autofill import Proposal, autofill_propose
from staffing.conflicts import roster_conflicts
from staffing.coverage import coverage, coverage_week
from staffing.models import (
    Assignment,
    Availability,
    AvailabilityException,
    RequestStatus,
    StaffingPolicy,
    TimeOffRequest,
)
from staffing.services import autofill_apply
from tests.staffing.conftest import Desk, ny

MONDAY = date(2026, 11, 2)
BEFORE = datetime(2026, 1, 1, tzinfo=UTC)


def test_coverage_lists_the_hours_below_minimum_per_service_point(desk: Desk) -> None:
    desk.shift(MONDAY, time(9), time(13), min_staff=2, staff=(desk.cast.librarian,))
    desk.shift(MONDAY, time(11), time(15), min_staff=1)
    desk.shift(MONDAY, time(9), time(17), point=desk.chat, staff=(desk.colleague,))
    desk.shift(MONDAY + timedelta(days=7), time(9), time(17), point=desk.chat)

    report = {
        point.service_point.slug: point
        for point in coverage_week(library=desk.cast.library, week_start=MONDAY + timedelta(days=2))
    }

    assert report["chat"].gaps == []
    main = report["main-desk"]
    assert [
        (f"{gap.local_start:%H:%M}", f"{gap.local_end:%H:%M}", gap.required, gap.rostered)
        for gap in main.gaps
    ] == [("09:00", "11:00", 2, 1), ("11:00", "13:00", 3, 1), ("13:00", "15:00", 1, 0)]
    assert main.hours_below_minimum == 6
    assert main.missing_staff_hours == 8


def test_coverage_merges_back_to_back_gaps_and_ignores_cancelled_shifts(desk: Desk) -> None:
    desk.shift(MONDAY, time(9), time(13))
    desk.shift(MONDAY, time(13), time(17))
    cancelled = desk.shift(MONDAY, time(18), time(20))
    cancelled.is_cancelled = True
    cancelled.save()

    (main,) = [
        point
        for point in coverage(library=desk.cast.library, start=MONDAY, end=MONDAY)
        if point.service_point == desk.main
    ]

    assert [(gap.local_start.hour, gap.local_end.hour) for gap in main.gaps] == [(9, 17)]


def _available_all_week(desk: Desk, *users: User) -> None:
    for user in users:
        for weekday in range(7):
            Availability.objects.create(
                library=desk.cast.library,
                user=user,
                weekday=weekday,
                start_time=time(8),
                end_time=time(20),
            )


def test_autofill_spreads_hours_to_whoever_has_fewest_and_changes_nothing_until_applied(
    desk: Desk,
) -> None:
    lena, cleo = desk.cast.librarian, desk.colleague
    _available_all_week(desk, lena, cleo)
    desk.shift(MONDAY, time(8), time(12), point=desk.chat, staff=(lena,))  # Lena has 4 h
    shifts = [desk.shift(MONDAY + timedelta(days=day), time(13), time(17)) for day in range(1, 5)]

    proposals = autofill_propose(
        library=desk.cast.library, start=MONDAY, end=MONDAY + timedelta(days=6), now=BEFORE
    )

    assert [(p.shift_id, p.user_id) for p in proposals] == [
        (shifts[0].pk, cleo.pk),  # 0 h against Lena's 4 h
        (shifts[1].pk, cleo.pk),  # tie at 4 h: by week hours, then name ("cleo" < "lena")
        (shifts[2].pk, lena.pk),
        (shifts[3].pk, cleo.pk),
    ]
    assert Assignment.objects.count() == 1

    made = autofill_apply(library=desk.cast.library, proposals=proposals, by=desk.cast.manager)
    assert len(made) == 4
    assert Assignment.objects.active().count() == 5


def test_autofill_skips_people_without_stated_availability_and_shifts_already_begun(
    desk: Desk,
) -> None:
    _available_all_week(desk, desk.colleague)
    desk.shift(MONDAY, time(9), time(12))
    later = desk.shift(MONDAY + timedelta(days=1), time(9), time(12), min_staff=2)

    proposals = autofill_propose(
        library=desk.cast.library,
        start=MONDAY,
        end=MONDAY + timedelta(days=1),
        now=ny(MONDAY, time(10)),
    )

    assert proposals == [Proposal(shift_id=later.pk, user_id=desk.colleague.pk)]


def test_autofill_apply_is_all_or_nothing_and_for_managers(desk: Desk) -> None:
    lena = desk.cast.librarian
    first = desk.shift(MONDAY, time(9), time(12))
    clash = desk.shift(MONDAY, time(10), time(11), point=desk.chat)
    stale = [
        Proposal(shift_id=first.pk, user_id=lena.pk),
        Proposal(shift_id=clash.pk, user_id=lena.pk),
    ]

    with pytest.raises(PermissionDenied):
        autofill_apply(library=desk.cast.library, proposals=stale, by=lena)
    with pytest.raises(ValidationError):
        autofill_apply(library=desk.cast.library, proposals=stale, by=desk.cast.manager)
    assert not Assignment.objects.exists()
    other = desk.shift(MONDAY, time(9), time(12), point=desk.other_desk)
    with pytest.raises(ValidationError, match="not there"):
        autofill_apply(
            library=desk.cast.library,
            proposals=[Proposal(shift_id=other.pk, user_id=lena.pk)],
            by=desk.cast.manager,
        )


Span = tuple[int, int, int]  # day of the fortnight, local start hour, length in hours


@dataclass(frozen=True)
class Roster:
    limit: int
    rest: int
    always: list[bool]  # per person: available round the clock
    availability: list[tuple[int, int, int, int]]  # person, weekday, hour, length
    unavailable: list[tuple[int, int]]  # person, day
    time_off: list[tuple[int, Span]]
    shifts: list[tuple[Span, int, bool, int | None]]  # span, min staff, at chat, taken by


@st.composite
def _rosters(draw: st.DrawFn) -> Roster:
    span = st.tuples(st.integers(0, 13), st.integers(0, 23), st.integers(1, 12))
    person = st.integers(0, 3)
    return Roster(
        limit=draw(st.integers(4, 40)),
        rest=draw(st.integers(0, 12)),
        always=draw(st.lists(st.booleans(), min_size=4, max_size=4)),
        availability=draw(
            st.lists(
                st.tuples(person, st.integers(0, 6), st.integers(0, 23), st.integers(1, 16)),
                max_size=12,
            )
        ),
        unavailable=draw(st.lists(st.tuples(person, st.integers(0, 13)), max_size=3)),
        time_off=draw(st.lists(st.tuples(person, span), max_size=2)),
        shifts=draw(
            st.lists(
                st.tuples(span, st.integers(1, 3), st.booleans(), st.none() | person),
                min_size=1,
                max_size=14,
            )
        ),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(roster=_rosters())
def test_autofill_never_proposes_an_assignment_with_a_conflict(desk: Desk, roster: Roster) -> None:
    library = desk.cast.library
    with transaction.atomic():
        people = [desk.cast.librarian, desk.colleague, desk.cast.manager]
        people.append(staff_upsert(username="pia", library=library, role=Role.LIBRARIAN))
        StaffingPolicy.objects.update_or_create(
            library=library,
            defaults={
                "weekly_hour_limit": Decimal(roster.limit),
                "min_rest_hours": Decimal(roster.rest),
            },
        )
        for who, always in enumerate(roster.always):
            if always:  # midnight to midnight: the whole day
                for weekday in range(7):
                    Availability.objects.create(
                        library=library,
                        user=people[who],
                        weekday=weekday,
                        start_time=time(0),
                        end_time=time(0),
                    )
        for who, weekday, hour, length in roster.availability:
            Availability.objects.create(
                library=library,
                user=people[who],
                weekday=weekday,
                start_time=time(hour),
                end_time=time((hour + length) % 24),
            )
        for who, day in roster.unavailable:
            AvailabilityException.objects.create(
                library=library, user=people[who], date=MONDAY + timedelta(days=day)
            )
        for who, (day, hour, length) in roster.time_off:
            start = ny(MONDAY + timedelta(days=day), time(hour))
            TimeOffRequest.objects.create(
                library=library,
                user=people[who],
                start=start,
                end=start + timedelta(hours=length * 3),
                status=RequestStatus.APPROVED,
            )
        for (day, hour, length), min_staff, at_chat, taken_by in roster.shifts:
            desk.shift(
                MONDAY + timedelta(days=day),
                time(hour),
                time((hour + length) % 24),
                point=desk.chat if at_chat else desk.main,
                min_staff=min_staff,
                max_staff=3,
                staff=() if taken_by is None else (people[taken_by],),
            )
        before = set(Assignment.objects.values_list("pk", flat=True))
        end = MONDAY + timedelta(days=14)

        proposals = autofill_propose(library=library, start=MONDAY, end=end, now=BEFORE)
        made = autofill_apply(library=library, proposals=proposals, by=desk.cast.manager)

        assert len({(p.shift_id, p.user_id) for p in proposals}) == len(made)
        found = roster_conflicts(library=library, start=MONDAY - timedelta(days=1), end=end)
        new = {assignment.pk for assignment in made} - before
        assert not new & set(found), {pk: found[pk] for pk in new & set(found)}
        for shift_id in {p.shift_id for p in proposals}:
            shift = desk.main.library.shifts.get(pk=shift_id)
            assert shift.assignments.filter(status="assigned").count() <= shift.min_staff
        transaction.set_rollback(True)
