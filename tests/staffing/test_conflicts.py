"""Conflict detection, every kind, and a manager's override with a note."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from reflib.models import Role
from reflib.services import staff_upsert
from staffing.conflicts import ConflictKind, conflicts_for, roster_conflicts
from staffing.models import (
    Assignment,
    Availability,
    AvailabilityException,
    ConflictOverride,
    RequestStatus,
    StaffingPolicy,
    TimeOffRequest,
    WeeklyHourLimit,
)
from staffing.services import ConflictError, shift_assign
from tests.staffing.conftest import Desk, ny

MONDAY = date(2026, 11, 2)
TUESDAY = MONDAY + timedelta(days=1)


def _kinds(desk: Desk, shift: Any) -> list[ConflictKind]:
    return [c.kind for c in conflicts_for(user_id=desk.cast.librarian.pk, shift=shift)]


def test_an_overlapping_shift_is_a_double_booking(desk: Desk) -> None:
    desk.shift(MONDAY, time(9), time(13), staff=(desk.cast.librarian,))
    overlapping = desk.shift(MONDAY, time(12), time(14), point=desk.chat)
    touching = desk.shift(MONDAY, time(13), time(15), point=desk.chat)

    (conflict,) = conflicts_for(user_id=desk.cast.librarian.pk, shift=overlapping)

    assert conflict.kind == ConflictKind.DOUBLE_BOOKING
    assert conflict.message == "Already on another shift Mon 02 Nov 09:00-13:00."
    assert _kinds(desk, touching) == []


def test_a_shift_of_another_library_double_books_without_telling_its_details(
    desk: Desk,
) -> None:
    lena = desk.cast.librarian
    staff_upsert(username="lena", library=desk.cast.other_library, role=Role.LIBRARIAN)
    # 15:00-19:00 in Madrid is 09:00-13:00 in New York.
    desk.shift(MONDAY, time(15), time(19), point=desk.other_desk, staff=(lena,))
    here = desk.shift(MONDAY, time(10), time(12))

    (conflict,) = conflicts_for(user_id=lena.pk, shift=here)

    assert conflict.kind == ConflictKind.DOUBLE_BOOKING
    assert "another library" in conflict.message
    assert "Main" not in conflict.message


def test_a_shift_outside_stated_weekly_availability_conflicts(desk: Desk) -> None:
    lena = desk.cast.librarian
    Availability.objects.create(
        library=desk.cast.library, user=lena, weekday=0, start_time=time(9), end_time=time(12)
    )
    Availability.objects.create(
        library=desk.cast.library, user=lena, weekday=0, start_time=time(12), end_time=time(14)
    )

    assert _kinds(desk, desk.shift(MONDAY, time(9), time(14))) == []
    assert _kinds(desk, desk.shift(MONDAY, time(13), time(15), point=desk.chat)) == [
        ConflictKind.OUTSIDE_AVAILABILITY
    ]
    assert _kinds(desk, desk.shift(TUESDAY, time(9), time(10))) == [
        ConflictKind.OUTSIDE_AVAILABILITY
    ]


def test_dated_exceptions_add_and_remove_availability(desk: Desk) -> None:
    lena, library = desk.cast.librarian, desk.cast.library
    Availability.objects.create(
        library=library, user=lena, weekday=0, start_time=time(9), end_time=time(17)
    )
    AvailabilityException.objects.create(library=library, user=lena, date=MONDAY)
    AvailabilityException.objects.create(
        library=library,
        user=lena,
        date=TUESDAY,
        available=True,
        start_time=time(18),
        end_time=time(21),
    )

    assert _kinds(desk, desk.shift(MONDAY, time(9), time(12))) == [
        ConflictKind.OUTSIDE_AVAILABILITY
    ]
    assert _kinds(desk, desk.shift(TUESDAY, time(18), time(21))) == []
    assert _kinds(desk, desk.shift(MONDAY + timedelta(days=7), time(9), time(12))) == []


def test_without_stated_availability_only_unavailable_dates_conflict(desk: Desk) -> None:
    lena, library = desk.cast.librarian, desk.cast.library
    AvailabilityException.objects.create(
        library=library, user=lena, date=MONDAY, start_time=time(8), end_time=time(10)
    )

    assert _kinds(desk, desk.shift(MONDAY, time(9), time(12))) == [
        ConflictKind.OUTSIDE_AVAILABILITY
    ]
    assert _kinds(desk, desk.shift(MONDAY, time(10), time(12), point=desk.chat)) == []


def test_a_shift_during_approved_time_off_conflicts_but_not_a_pending_request(
    desk: Desk,
) -> None:
    lena, library = desk.cast.librarian, desk.cast.library
    request = TimeOffRequest.objects.create(
        library=library, user=lena, start=ny(MONDAY, time(0)), end=ny(TUESDAY, time(0))
    )
    shift = desk.shift(MONDAY, time(9), time(13))
    assert _kinds(desk, shift) == []

    request.status = RequestStatus.APPROVED
    request.save()
    (conflict,) = conflicts_for(user_id=lena.pk, shift=shift)
    assert conflict.kind == ConflictKind.TIME_OFF
    assert conflict.message == "Approved time off Mon 02 Nov 00:00 to Tue 03 Nov 00:00."


def test_going_over_the_weekly_hour_limit_conflicts(desk: Desk) -> None:
    lena, library = desk.cast.librarian, desk.cast.library
    StaffingPolicy.objects.create(library=library, weekly_hour_limit=Decimal(10))
    desk.shift(MONDAY, time(9), time(13), staff=(lena,))
    desk.shift(TUESDAY, time(9), time(13), staff=(lena,))

    assert _kinds(desk, desk.shift(MONDAY + timedelta(days=6), time(9), time(11))) == []
    friday = desk.shift(MONDAY + timedelta(days=4), time(9), time(12))
    (conflict,) = conflicts_for(user_id=lena.pk, shift=friday)
    assert conflict.kind == ConflictKind.WEEKLY_HOURS
    assert conflict.message == "11 h in the week of 02 Nov, over the limit of 10 h."
    # The next week starts afresh.
    assert _kinds(desk, desk.shift(MONDAY + timedelta(days=7), time(9), time(12))) == []

    WeeklyHourLimit.objects.create(library=library, user=lena, hours=Decimal(12))
    assert _kinds(desk, friday) == []


def test_less_than_the_minimum_rest_between_days_conflicts_but_a_split_day_does_not(
    desk: Desk,
) -> None:
    lena, library = desk.cast.librarian, desk.cast.library
    StaffingPolicy.objects.create(library=library, min_rest_hours=Decimal(11))
    desk.shift(MONDAY, time(9), time(12), staff=(lena,))
    desk.shift(MONDAY, time(18), time(22), staff=(lena,))

    same_day = desk.shift(MONDAY, time(13), time(17), point=desk.chat)
    early_next_day = desk.shift(TUESDAY, time(8), time(12))
    later_next_day = desk.shift(TUESDAY, time(9), time(12), point=desk.chat)

    assert _kinds(desk, same_day) == []
    (conflict,) = conflicts_for(user_id=lena.pk, shift=early_next_day)
    assert conflict.kind == ConflictKind.REST
    assert conflict.message == (
        "Only 10 h of rest next to the shift Mon 02 Nov 18:00 (minimum 11 h)."
    )
    assert _kinds(desk, later_next_day) == []


def test_a_night_shift_counts_its_real_end_for_rest(desk: Desk) -> None:
    lena = desk.cast.librarian
    # 22:00 Saturday to 06:00 Sunday across the November change: ends 06:00 EST.
    desk.shift(date(2026, 10, 31), time(22), time(6), staff=(lena,))
    sunday_afternoon = desk.shift(date(2026, 11, 1), time(15), time(18))
    assert _kinds(desk, sunday_afternoon) == [ConflictKind.REST]  # 9 h < 10 h default
    sunday_evening = desk.shift(date(2026, 11, 1), time(16), time(18), point=desk.chat)
    assert _kinds(desk, sunday_evening) == []


def test_several_conflicts_are_all_reported(desk: Desk) -> None:
    lena, library = desk.cast.librarian, desk.cast.library
    StaffingPolicy.objects.create(library=library, weekly_hour_limit=Decimal(3))
    Availability.objects.create(
        library=library, user=lena, weekday=1, start_time=time(9), end_time=time(12)
    )
    desk.shift(MONDAY, time(9), time(13), staff=(lena,))
    assert _kinds(desk, desk.shift(MONDAY, time(12), time(14), point=desk.chat)) == [
        ConflictKind.DOUBLE_BOOKING,
        ConflictKind.OUTSIDE_AVAILABILITY,
        ConflictKind.WEEKLY_HOURS,
    ]


def test_assigning_with_a_conflict_raises_its_reasons(desk: Desk) -> None:
    lena = desk.cast.librarian
    desk.shift(MONDAY, time(9), time(13), staff=(lena,))
    clash = desk.shift(MONDAY, time(10), time(12), point=desk.chat)

    with pytest.raises(ConflictError) as raised:
        shift_assign(shift=clash, user=lena, by=desk.cast.manager)

    assert [c.kind for c in raised.value.conflicts] == [ConflictKind.DOUBLE_BOOKING]
    assert raised.value.messages == ["Already on another shift Mon 02 Nov 09:00-13:00."]
    assert not Assignment.objects.filter(shift=clash).exists()


def test_only_a_manager_may_override_a_conflict_and_the_note_is_kept(
    desk: Desk, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    lena, mara = desk.cast.librarian, desk.cast.manager
    desk.shift(MONDAY, time(9), time(13), staff=(lena,))
    clash = desk.shift(MONDAY, time(10), time(12), point=desk.chat)

    with pytest.raises(PermissionDenied):
        shift_assign(shift=clash, user=lena, by=desk.colleague, override_note="I said so")
    with pytest.raises(PermissionDenied):
        shift_assign(shift=clash, user=lena, by=lena, override_note="I can do both")
    with django_capture_on_commit_callbacks(execute=True):
        assignment = shift_assign(
            shift=clash, user=lena, by=mara, override_note="Chat is quiet on Monday mornings"
        )

    override = ConflictOverride.objects.get(assignment=assignment)
    assert (override.reasons, override.note, override.created_by) == (
        ["double_booking"],
        "Chat is quiet on Monday mornings",
        mara,
    )
    found = roster_conflicts(library=desk.cast.library, start=MONDAY, end=MONDAY)
    assert [(c.kind, c.override_note) for c in found[assignment.pk]] == [
        (ConflictKind.DOUBLE_BOOKING, "Chat is quiet on Monday mornings")
    ]
    (message,) = mail.outbox
    assert message.to == ["lena@example.org"]
    assert (
        message.subject
        == "New shift: Chat, Monday 02 November 2026 10:00-12:00 (Demo Public Library)"
    )


def test_roster_conflicts_reports_both_sides_of_a_double_booking(desk: Desk) -> None:
    lena = desk.cast.librarian
    first = desk.shift(MONDAY, time(9), time(13), staff=(lena,))
    second = desk.shift(MONDAY, time(11), time(14), point=desk.chat, staff=(lena,))
    desk.shift(MONDAY, time(9), time(13), point=desk.other_desk, staff=(desk.cast.other_librarian,))

    found = roster_conflicts(library=desk.cast.library, start=MONDAY, end=MONDAY)

    assignments = Assignment.objects.filter(shift__in=[first, second]).values_list("pk", flat=True)
    assert sorted(found) == sorted(assignments)
    assert roster_conflicts(library=desk.cast.other_library, start=MONDAY, end=MONDAY) == {}


def test_assignment_refuses_a_full_shift_a_stranger_and_a_second_time(desk: Desk) -> None:
    lena, mara = desk.cast.librarian, desk.cast.manager
    shift = desk.shift(MONDAY, time(9), time(13), max_staff=1, staff=(lena,))

    with pytest.raises(ValidationError, match="already on this shift"):
        shift_assign(shift=shift, user=lena, by=mara)
    with pytest.raises(ValidationError, match="full"):
        shift_assign(shift=shift, user=desk.colleague, by=mara)
    open_shift = desk.shift(TUESDAY, time(9), time(13))
    with pytest.raises(ValidationError, match="not on the staff of Demo Public Library"):
        shift_assign(shift=open_shift, user=desk.cast.other_librarian, by=mara)
    open_shift.is_cancelled = True
    open_shift.save()
    with pytest.raises(ValidationError, match="cancelled"):
        shift_assign(shift=open_shift, user=desk.colleague, by=mara)
