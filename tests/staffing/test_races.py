"""Races against the real PostgreSQL: generation, claims and assignments from many clients.

Each thread is its own database client (tests.chat.test_concurrency.in_threads), as two
managers' requests in two daphne processes would be.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import date, time
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from staffing import conflicts, services
from staffing.conflicts import Conflict, roster_conflicts
from staffing.models import Shift, ShiftTemplate, StaffingPolicy
from staffing.services import ConflictError, roster_generate, shift_assign, shift_claim
from tests.chat.test_concurrency import in_threads
from tests.staffing.conftest import Desk, next_monday

pytestmark = pytest.mark.postgres


def test_concurrent_generations_create_each_shift_once(desk: Desk) -> None:
    for weekday in range(7):
        ShiftTemplate.objects.create(
            library=desk.cast.library,
            service_point=desk.main,
            weekday=weekday,
            start_time=time(9),
            end_time=time(17),
        )
    start = next_monday(2)
    end = date.fromordinal(start.toordinal() + 27)

    created = in_threads(
        8,
        lambda _n: len(roster_generate(library=desk.cast.library, start=start, end=end).created),
        threads=8,
    )

    assert sorted(created) == [0] * 7 + [28]
    assert Shift.objects.count() == 28


def _try(work: object) -> str:
    try:
        work()  # type: ignore[operator]
    except ConflictError:
        return "conflict"
    except ValidationError:
        return "refused"
    return "ok"


def test_the_last_open_place_goes_to_one_claimant(desk: Desk) -> None:
    StaffingPolicy.objects.create(library=desk.cast.library, swaps_need_approval=False)
    shift = desk.shift(next_monday(2), time(9), time(13), max_staff=1)
    people = [desk.cast.librarian, desk.colleague, desk.cast.manager]

    outcomes = in_threads(
        3, lambda n: _try(lambda: shift_claim(shift=shift, by=people[n])), threads=3
    )

    assert sorted(outcomes) == ["ok", "refused", "refused"]
    assert shift.assignments.filter(status="assigned").count() == 1


def test_one_person_is_not_double_booked_by_two_managers_at_once(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hold each writer between its conflict check and its insert until the other has checked
    # too (or two seconds have passed): without a lock both would see no double booking.
    both_checked = threading.Barrier(2)

    def slow_check(**kwargs: Any) -> list[Conflict]:
        found = conflicts.conflicts_for(**kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait(timeout=2)
        return found

    monkeypatch.setattr(services, "conflicts_for", slow_check)
    day = next_monday(2)
    shifts = [
        desk.shift(day, time(9), time(13)),
        desk.shift(day, time(10), time(12), point=desk.chat),
    ]

    outcomes = in_threads(
        2,
        lambda n: _try(
            lambda: shift_assign(shift=shifts[n], user=desk.cast.librarian, by=desk.cast.manager)
        ),
        threads=2,
    )

    assert sorted(outcomes) == ["conflict", "ok"]
    assert roster_conflicts(library=desk.cast.library, start=day, end=day) == {}
