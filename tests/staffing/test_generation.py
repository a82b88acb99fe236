"""Generating the roster from templates: idempotent, DST-correct, and careful with changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from staffing.models import Assignment, Shift, ShiftTemplate, Weekday
from staffing.services import roster_generate, shift_template_save
from tests.staffing.conftest import Desk, ny

# Before both 2026 changes of America/New_York (8 March, 1 November): "now" for generation.
EARLY_2026 = datetime(2026, 1, 1, tzinfo=UTC)


def _template(desk: Desk, weekday: int, start: time, end: time, **extra: object) -> ShiftTemplate:
    return ShiftTemplate.objects.create(
        library=desk.cast.library,
        service_point=desk.main,
        weekday=weekday,
        start_time=start,
        end_time=end,
        **extra,
    )


def _utc_spans(template: ShiftTemplate) -> list[tuple[datetime, datetime]]:
    return [
        (shift.start.astimezone(UTC), shift.end.astimezone(UTC))
        for shift in Shift.objects.filter(template=template).order_by("date")
    ]


def test_a_morning_template_is_nine_to_one_local_on_both_sides_of_the_march_change(
    desk: Desk,
) -> None:
    template = _template(desk, Weekday.SATURDAY, time(9), time(13))

    roster_generate(
        library=desk.cast.library, start=date(2026, 3, 1), end=date(2026, 3, 14), now=EARLY_2026
    )

    # 7 March is EST (UTC-5), 14 March EDT (UTC-4): the same wall time, other UTC instants.
    assert _utc_spans(template) == [
        (datetime(2026, 3, 7, 14, tzinfo=UTC), datetime(2026, 3, 7, 18, tzinfo=UTC)),
        (datetime(2026, 3, 14, 13, tzinfo=UTC), datetime(2026, 3, 14, 17, tzinfo=UTC)),
    ]


def test_a_morning_template_is_nine_to_one_local_on_both_sides_of_the_november_change(
    desk: Desk,
) -> None:
    template = _template(desk, Weekday.SATURDAY, time(9), time(13))

    roster_generate(
        library=desk.cast.library, start=date(2026, 10, 26), end=date(2026, 11, 8), now=EARLY_2026
    )

    assert _utc_spans(template) == [
        (datetime(2026, 10, 31, 13, tzinfo=UTC), datetime(2026, 10, 31, 17, tzinfo=UTC)),
        (datetime(2026, 11, 7, 14, tzinfo=UTC), datetime(2026, 11, 7, 18, tzinfo=UTC)),
    ]
    for shift in Shift.objects.filter(template=template):
        assert shift.hours == 4
        assert f"{shift.start.astimezone(desk.cast.library.zone):%H:%M}" == "09:00"


def test_a_night_shift_across_the_november_change_lasts_nine_hours(desk: Desk) -> None:
    template = _template(desk, Weekday.SATURDAY, time(22), time(6))

    changes = roster_generate(
        library=desk.cast.library, start=date(2026, 10, 31), end=date(2026, 10, 31), now=EARLY_2026
    )

    (shift,) = changes.created
    assert shift.date == date(2026, 10, 31)
    assert (shift.start, shift.end) == (
        datetime(2026, 11, 1, 2, tzinfo=UTC),  # 22:00 EDT
        datetime(2026, 11, 1, 11, tzinfo=UTC),  # 06:00 EST
    )
    assert shift.hours == 9
    assert _utc_spans(template) == [(shift.start, shift.end)]


def test_a_night_shift_across_the_march_change_lasts_seven_hours(desk: Desk) -> None:
    _template(desk, Weekday.SATURDAY, time(22), time(6))

    (shift,) = roster_generate(
        library=desk.cast.library, start=date(2026, 3, 7), end=date(2026, 3, 7), now=EARLY_2026
    ).created

    assert shift.hours == 7
    assert shift.end == ny(date(2026, 3, 8), time(6))


def test_generating_twice_creates_nothing_the_second_time(desk: Desk) -> None:
    for weekday in range(5):
        _template(desk, weekday, time(9), time(13))
        _template(desk, weekday, time(13), time(17), min_staff=2, max_staff=3)
    library = desk.cast.library

    first = roster_generate(
        library=library, start=date(2026, 11, 2), end=date(2026, 11, 15), now=EARLY_2026
    )
    second = roster_generate(
        library=library, start=date(2026, 11, 2), end=date(2026, 11, 15), now=EARLY_2026
    )

    assert len(first.created) == 20
    assert not second
    assert Shift.objects.count() == 20
    afternoon = Shift.objects.filter(start__gte=ny(date(2026, 11, 2), time(13))).first()
    assert afternoon is not None
    assert (afternoon.min_staff, afternoon.max_staff) == (2, 3)


def test_a_template_runs_only_between_its_dates_and_while_active(desk: Desk) -> None:
    _template(desk, Weekday.MONDAY, time(9), time(13), valid_from=date(2026, 11, 9))
    _template(desk, Weekday.TUESDAY, time(9), time(13), is_active=False)

    changes = roster_generate(
        library=desk.cast.library, start=date(2026, 11, 2), end=date(2026, 11, 15), now=EARLY_2026
    )

    assert [shift.date for shift in changes.created] == [date(2026, 11, 9)]


def test_changing_a_template_regenerates_only_future_unassigned_shifts(desk: Desk) -> None:
    template = _template(desk, Weekday.MONDAY, time(9), time(13))
    library = desk.cast.library
    roster_generate(
        library=library, start=date(2026, 11, 2), end=date(2026, 11, 23), now=EARLY_2026
    )
    past, taken, free, last = Shift.objects.filter(template=template).order_by("date")
    Assignment.objects.create(shift=taken, user=desk.cast.librarian)
    now = ny(date(2026, 11, 5), time(12))  # after the first Monday

    template.start_time, template.end_time, template.min_staff, template.max_staff = (
        time(10),
        time(14),
        2,
        2,
    )
    changes = shift_template_save(template=template, now=now)

    assert sorted(shift.pk for shift in changes.updated) == [free.pk, last.pk]
    for shift in (past, taken):
        shift.refresh_from_db()
        assert shift.start.astimezone(library.zone).hour == 9
    for shift in (free, last):
        shift.refresh_from_db()
        assert shift.start.astimezone(library.zone).hour == 10
        assert shift.min_staff == 2
    assert not roster_generate(
        library=library, start=date(2026, 11, 2), end=date(2026, 11, 23), now=now
    )


def test_moving_a_template_to_another_day_removes_only_future_unassigned_shifts(
    desk: Desk,
) -> None:
    template = _template(desk, Weekday.MONDAY, time(9), time(13))
    library = desk.cast.library
    roster_generate(
        library=library, start=date(2026, 11, 2), end=date(2026, 11, 16), now=EARLY_2026
    )
    past, taken, free = Shift.objects.filter(template=template).order_by("date")
    Assignment.objects.create(shift=taken, user=desk.cast.librarian)
    now = ny(date(2026, 11, 5), time(12))

    template.weekday = Weekday.WEDNESDAY
    changes = shift_template_save(template=template, now=now)

    assert len(changes.removed) == 1
    assert not Shift.objects.filter(pk=free.pk).exists()
    assert Shift.objects.filter(pk__in=[past.pk, taken.pk]).count() == 2
    # Only Wednesdays still to come are created: the past is a record, not a plan.
    assert [shift.date for shift in changes.created] == [date(2026, 11, 11)]
    assert not roster_generate(
        library=library, start=date(2026, 11, 2), end=date(2026, 11, 16), now=now
    )


def test_generation_refuses_a_reversed_or_overlong_range(desk: Desk) -> None:
    library = desk.cast.library
    with pytest.raises(ValidationError, match="before the first"):
        roster_generate(library=library, start=date(2026, 11, 2), end=date(2026, 11, 1))
    with pytest.raises(ValidationError, match="at most 366 days"):
        roster_generate(library=library, start=date(2026, 1, 1), end=date(2027, 1, 2))


def test_generate_roster_command_prints_what_it_created_and_nothing_the_second_time(
    desk: Desk,
) -> None:
    _template(desk, Weekday.MONDAY, time(9), time(13))
    args = ["--library", "demo", "--from", "2027-03-01", "--to", "2027-03-14"]

    first, second = StringIO(), StringIO()
    call_command("generate_roster", *args, stdout=first)
    call_command("generate_roster", *args, stdout=second)

    assert first.getvalue().splitlines() == [
        "Created Main desk 2027-03-01 09:00-13:00",
        "Created Main desk 2027-03-08 09:00-13:00",
        "demo 2027-03-01 to 2027-03-14: 2 created, 0 updated, 0 removed.",
    ]
    assert second.getvalue().splitlines() == [
        "demo 2027-03-01 to 2027-03-14: 0 created, 0 updated, 0 removed."
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--library", "nowhere", "--from", "2027-03-01", "--to", "2027-03-02"], "No library"),
        (["--library", "demo", "--from", "2027-3-1x", "--to", "2027-03-02"], "YYYY-MM-DD"),
        (["--library", "demo", "--from", "2027-03-05", "--to", "2027-03-02"], "before the first"),
    ],
)
def test_generate_roster_command_rejects_bad_input_clearly(
    desk: Desk, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("generate_roster", *args, stdout=StringIO())
    assert not Shift.objects.exists()


def test_generation_leaves_other_libraries_alone(desk: Desk) -> None:
    ShiftTemplate.objects.create(
        library=desk.cast.other_library,
        service_point=desk.other_desk,
        weekday=Weekday.MONDAY,
        start_time=time(9),
        end_time=time(13),
    )
    changes = roster_generate(
        library=desk.cast.library, start=date(2026, 11, 2), end=date(2026, 11, 8), now=EARLY_2026
    )
    assert not changes
    assert not Shift.objects.exists()
