"""The staffing tests' own cast: desks, a second librarian and a way to put people on shifts.

The library of ``tests/conftest.py``'s cast is in America/New_York, so every test about time
meets daylight saving on the real dates (8 March and 1 November 2026).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from reflib.models import Role, ServicePoint
from reflib.services import service_point_ensure, staff_upsert
from staffing.models import Assignment, Shift
from staffing.wallclock import local_span
from tests.conftest import PASSWORD, Cast


def make_shift(
    point: ServicePoint,
    day: date,
    start: time,
    end: time,
    *,
    staff: tuple[User, ...] = (),
    min_staff: int = 1,
    max_staff: int = 2,
) -> Shift:
    """A hand-made shift (no template) at ``point`` with ``staff`` assigned."""
    library = point.library
    begin, finish = local_span(day, start, end, library.zone)
    shift = Shift.objects.create(
        library=library,
        service_point=point,
        date=day,
        start=begin,
        end=finish,
        min_staff=min_staff,
        max_staff=max_staff,
    )
    for user in staff:
        Assignment.objects.create(shift=shift, user=user)
    return shift


@dataclass(frozen=True)
class Desk:
    """The cast plus what staffing adds: two desks of the library, one of the other library,
    and a second librarian."""

    cast: Cast
    main: ServicePoint
    chat: ServicePoint
    other_desk: ServicePoint
    colleague: User

    def shift(
        self,
        day: date,
        start: time,
        end: time,
        *,
        point: ServicePoint | None = None,
        staff: tuple[User, ...] = (),
        min_staff: int = 1,
        max_staff: int = 2,
    ) -> Shift:
        """A hand-made shift (no template) with ``staff`` assigned."""
        return make_shift(
            point or self.main,
            day,
            start,
            end,
            staff=staff,
            min_staff=min_staff,
            max_staff=max_staff,
        )


@pytest.fixture
def desk(cast: Cast) -> Desk:
    for user, email in [(cast.librarian, "lena@example.org"), (cast.manager, "mara@example.org")]:
        user.email = email
        user.save(update_fields=["email"])
    chat = service_point_ensure(library=cast.library, slug="chat", name="Chat")
    cast.queue.service_point = chat
    cast.queue.save(update_fields=["service_point"])
    return Desk(
        cast=cast,
        main=service_point_ensure(library=cast.library, slug="main-desk", name="Main desk"),
        chat=chat,
        other_desk=service_point_ensure(library=cast.other_library, slug="main", name="Main"),
        colleague=staff_upsert(
            username="cleo",
            library=cast.library,
            role=Role.LIBRARIAN,
            display_name="Cleo",
            password=PASSWORD,
            email="cleo@example.org",
        ),
    )


def ny(day: date, at: time) -> datetime:
    """An aware instant of New York wall time."""
    return datetime.combine(day, at, tzinfo=ZoneInfo("America/New_York"))


def next_monday(weeks: int = 1) -> date:
    """A Monday ``weeks`` weeks ahead in New York: swaps and claims need future shifts."""
    today = timezone.now().astimezone(ZoneInfo("America/New_York")).date()
    return today + timedelta(days=7 * weeks - today.weekday())
