"""Who is rostered, when a queue opens, and staffed hours per hour of the week."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from staffing import selectors
from staffing.models import Assignment, AssignmentStatus, OpeningHours, SpecialDay
from tests.staffing.conftest import Desk, ny

MONDAY = date(2026, 11, 2)  # the Monday after the November change


def _weekly_hours(desk: Desk, **target: object) -> None:
    for weekday in range(5):
        OpeningHours.objects.create(
            library=desk.cast.library, weekday=weekday, opens=time(9), closes=time(17), **target
        )


def test_current_and_next_shift_of_a_librarian(desk: Desk) -> None:
    lena = desk.cast.librarian
    desk.shift(MONDAY, time(9), time(13), staff=(lena,))
    later = desk.shift(MONDAY + timedelta(days=1), time(14), time(18), staff=(lena,))

    current, upcoming = selectors.current_and_next_shift(user=lena, now=ny(MONDAY, time(10)))

    assert current is not None
    assert upcoming is not None
    assert (current.local_start.hour, current.local_end.hour) == (9, 13)
    assert current.service_point == desk.main
    assert current.library == desk.cast.library
    assert upcoming.shift_id == later.pk
    assert selectors.current_and_next_shift(user=lena, now=ny(MONDAY, time(13))) == (
        None,
        upcoming,
    )


def test_a_removed_assignment_or_cancelled_shift_is_not_rostered(desk: Desk) -> None:
    lena, cleo = desk.cast.librarian, desk.colleague
    shift = desk.shift(MONDAY, time(9), time(13), staff=(lena, cleo))
    Assignment.objects.filter(user=cleo).update(status=AssignmentStatus.REMOVED)
    at = ny(MONDAY, time(12, 59))

    assert selectors.rostered_user_ids(service_point=desk.main, at=at) == {lena.pk}
    assert selectors.rostered_user_ids(service_point=desk.chat, at=at) == set()
    assert selectors.rostered_user_ids(service_point=desk.main, at=ny(MONDAY, time(13))) == set()

    shift.is_cancelled = True
    shift.save()
    assert selectors.rostered_user_ids(service_point=desk.main, at=at) == set()


def test_on_now_lists_only_the_library_of_the_question(desk: Desk) -> None:
    desk.shift(MONDAY, time(9), time(13), staff=(desk.cast.librarian,))
    desk.shift(MONDAY, time(9), time(13), point=desk.other_desk, staff=(desk.cast.other_librarian,))

    on = selectors.on_now(library=desk.cast.library, now=ny(MONDAY, time(10)))

    assert [view.staff_name for view in on] == ["Lena"]


def test_queue_follows_its_service_points_hours_unless_it_has_its_own(desk: Desk) -> None:
    queue = desk.cast.queue
    _weekly_hours(desk, service_point=desk.chat)

    assert selectors.is_open(queue=queue, at=ny(MONDAY, time(9)))
    assert not selectors.is_open(queue=queue, at=ny(MONDAY, time(17)))
    assert not selectors.is_open(queue=queue, at=ny(MONDAY + timedelta(days=5), time(10)))

    OpeningHours.objects.create(
        library=desk.cast.library, queue=queue, weekday=0, opens=time(18), closes=time(2)
    )
    assert not selectors.is_open(queue=queue, at=ny(MONDAY, time(10)))
    assert selectors.is_open(queue=queue, at=ny(MONDAY + timedelta(days=1), time(1, 30)))
    assert selectors.is_open(service_point=desk.chat, at=ny(MONDAY, time(10)))


def test_a_closure_and_special_hours_replace_the_weekly_hours(desk: Desk) -> None:
    _weekly_hours(desk, service_point=desk.main)
    library = desk.cast.library
    SpecialDay.objects.create(library=library, date=MONDAY, note="Holiday")
    SpecialDay.objects.create(
        library=library,
        service_point=desk.main,
        date=MONDAY + timedelta(days=1),
        opens=time(12),
        closes=time(14),
    )

    assert not selectors.is_open(service_point=desk.main, at=ny(MONDAY, time(10)))
    tuesday = MONDAY + timedelta(days=1)
    assert not selectors.is_open(service_point=desk.main, at=ny(tuesday, time(10)))
    assert selectors.is_open(service_point=desk.main, at=ny(tuesday, time(13)))


def test_without_hours_a_target_is_open_unless_closed(desk: Desk) -> None:
    assert selectors.is_open(service_point=desk.main, at=ny(MONDAY, time(3)))
    SpecialDay.objects.create(library=desk.cast.library, date=MONDAY)
    assert not selectors.is_open(service_point=desk.main, at=ny(MONDAY, time(3)))


def test_queue_opens_at_needs_both_open_hours_and_a_rostered_person(desk: Desk) -> None:
    queue = desk.cast.queue
    _weekly_hours(desk, service_point=desk.chat)
    lena = desk.cast.librarian
    # Rostered before opening: the queue opens at 09:00, not at 08:00.
    desk.shift(MONDAY, time(8), time(11), point=desk.chat, staff=(lena,))
    desk.shift(MONDAY + timedelta(days=1), time(15), time(19), point=desk.chat, staff=(lena,))
    # An open shift nobody took does not open the queue.
    desk.shift(MONDAY, time(12), time(16), point=desk.chat)

    assert selectors.queue_opens_at(queue=queue, now=ny(MONDAY, time(7))) == ny(MONDAY, time(9))
    now = ny(MONDAY, time(10))
    assert selectors.queue_opens_at(queue=queue, now=now) == now
    opens = selectors.queue_opens_at(queue=queue, now=ny(MONDAY, time(11)))
    assert opens == ny(MONDAY + timedelta(days=1), time(15))
    assert opens is not None
    assert opens.astimezone(UTC) == datetime(2026, 11, 3, 20, 0, tzinfo=UTC)


def test_queue_opens_at_is_none_beyond_two_weeks_or_without_a_desk(desk: Desk) -> None:
    queue = desk.cast.queue
    desk.shift(
        MONDAY + timedelta(days=15), time(9), time(12), point=desk.chat, staff=(desk.colleague,)
    )
    assert selectors.queue_opens_at(queue=queue, now=ny(MONDAY, time(9))) is None
    assert (
        selectors.queue_opens_at(queue=queue, now=ny(MONDAY, time(9)) + timedelta(days=2))
        is not None
    )
    queue.service_point = None
    queue.save()
    assert (
        selectors.queue_opens_at(queue=queue, now=ny(MONDAY, time(9)) + timedelta(days=2)) is None
    )


def test_staffed_hours_by_hour_of_week_counts_people_and_the_repeated_hour(desk: Desk) -> None:
    lena, cleo = desk.cast.librarian, desk.colleague
    desk.shift(MONDAY, time(9), time(10, 30), staff=(lena, cleo))
    desk.shift(MONDAY, time(9), time(10), point=desk.chat, staff=(lena,))
    # The night of the November change: 00:00-03:00 local is four real hours.
    desk.shift(date(2026, 11, 1), time(0), time(3), staff=(cleo,))

    hours = selectors.staffed_hours_by_hour_of_week(
        library=desk.cast.library, start=date(2026, 11, 1), end=MONDAY
    )
    assert hours == {(0, 9): 3.0, (0, 10): 1.0, (6, 0): 1.0, (6, 1): 2.0, (6, 2): 1.0}
    main_only = selectors.staffed_hours_by_hour_of_week(
        library=desk.cast.library, start=MONDAY, end=MONDAY, service_point=desk.main
    )
    assert main_only == {(0, 9): 2.0, (0, 10): 1.0}


def test_staffed_hours_leave_out_cancelled_shifts_removed_staff_and_other_libraries(
    desk: Desk,
) -> None:
    lena, cleo = desk.cast.librarian, desk.colleague
    kept = desk.shift(MONDAY, time(9), time(10), staff=(lena, cleo))
    Assignment.objects.filter(shift=kept, user=cleo).update(status=AssignmentStatus.REMOVED)
    cancelled = desk.shift(MONDAY, time(11), time(12), staff=(lena,))
    cancelled.is_cancelled = True
    cancelled.save()
    desk.shift(MONDAY, time(13), time(14), point=desk.other_desk, staff=(cleo,))
    # The evening before is outside the range.
    desk.shift(MONDAY - timedelta(days=1), time(23), time(23, 59), staff=(lena,))

    hours = selectors.staffed_hours_by_hour_of_week(
        library=desk.cast.library, start=MONDAY, end=MONDAY
    )
    assert hours == {(0, 9): 1.0}


def test_hours_and_shifts_for_a_user_by_local_dates(desk: Desk) -> None:
    lena = desk.cast.librarian
    desk.shift(MONDAY, time(9), time(13), staff=(lena,))
    desk.shift(MONDAY + timedelta(days=6), time(22), time(2), staff=(lena,))
    desk.shift(MONDAY + timedelta(days=7), time(9), time(13), staff=(lena,))

    week = selectors.shifts_for_user(user=lena, start=MONDAY, end=MONDAY + timedelta(days=6))

    assert [view.date for view in week] == [MONDAY, MONDAY + timedelta(days=6)]
    assert selectors.hours_for_user(user=lena, start=MONDAY, end=MONDAY + timedelta(days=6)) == 8.0


def test_is_open_needs_exactly_one_target(desk: Desk) -> None:
    at = ny(MONDAY, time(9))
    with pytest.raises(TypeError):
        selectors.is_open(queue=desk.cast.queue, service_point=desk.main, at=at)
    with pytest.raises(TypeError):
        selectors.is_open(at=at)
