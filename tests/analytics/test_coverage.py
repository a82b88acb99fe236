"""Demand against the roster: questions per rostered staff-hour, over- and under-staffed hours."""

from __future__ import annotations

from datetime import date, datetime, time

from analytics.csv_export import coverage_rows
from analytics.selectors import Scope, demand_vs_coverage
from reflib.models import ServicePoint
from tests.analytics.conftest import record
from tests.conftest import Cast
from tests.staffing.conftest import make_shift

# Monday 1 June 2026 (EDT).
MONDAY = date(2026, 6, 1)


def test_questions_per_staff_hour_names_the_over_and_under_staffed_hours(cast: Cast) -> None:
    desk = ServicePoint.objects.create(library=cast.library, slug="desk", name="Desk")
    # Monday 09:00-12:00, two people from 09:00 to 10:00 and one more 10:00-12:00.
    make_shift(desk, MONDAY, time(9), time(10), staff=(cast.librarian, cast.manager))
    make_shift(desk, MONDAY, time(10), time(12), staff=(cast.librarian,))
    zone = cast.library.zone
    for minute in range(4):  # 09:xx: 4 questions, 2 staff-hours -> 2 per staff-hour
        record(cast.library, datetime(2026, 6, 1, 9, minute, tzinfo=zone))
    for minute in range(10):  # 10:xx: 10 questions, 1 staff-hour -> 10
        record(cast.library, datetime(2026, 6, 1, 10, minute, tzinfo=zone))
    # 11:xx: rostered, nobody asked -> 0. 13:xx: 3 questions, nobody rostered.
    for minute in range(3):
        record(cast.library, datetime(2026, 6, 1, 13, minute, tzinfo=zone))

    coverage = demand_vs_coverage(Scope(library=cast.library, start=MONDAY, end=MONDAY))

    cells = {(c.weekday, c.hour): c for c in coverage.cells}
    assert (cells[(0, 9)].questions, cells[(0, 9)].staff_hours) == (4, 2.0)
    assert cells[(0, 10)].per_staff_hour == 10
    # 14 questions over 4 rostered staff-hours.
    assert coverage.overall == 3.5
    assert [(c.hour, c.questions) for c in coverage.under] == [(13, 3), (10, 10)]
    assert [(c.hour, c.staff_hours) for c in coverage.over] == [(11, 1.0)]
    table = list(coverage_rows(Scope(library=cast.library, start=MONDAY, end=MONDAY)))
    assert table[0][-1] == "staffing"
    assert table[1 + 10] == [0, 10, 10, "1", "10", "under"]


def test_without_a_roster_there_is_no_ratio_and_unrostered_questions_are_named(cast: Cast) -> None:
    record(cast.library, datetime(2026, 6, 1, 9, tzinfo=cast.library.zone))

    coverage = demand_vs_coverage(Scope(library=cast.library, start=MONDAY, end=MONDAY))

    assert coverage.overall is None
    assert [(c.weekday, c.hour) for c in coverage.under] == [(0, 9)]
    assert coverage.over == []
