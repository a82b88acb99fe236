"""Shifts for the chat's roster tests: the demo queue answered from a "Chat" service point."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User

from reflib.models import ServicePoint
from reflib.services import service_point_ensure
from staffing.models import Assignment, Shift
from tests.conftest import Cast


@dataclass(frozen=True)
class Points:
    chat: ServicePoint
    main: ServicePoint


def points(cast: Cast) -> Points:
    """The demo queue is answered from the "Chat" service point; "Main desk" is elsewhere."""
    chat = service_point_ensure(library=cast.library, slug="chat", name="Chat")
    cast.queue.service_point = chat
    cast.queue.save(update_fields=["service_point"])
    return Points(
        chat=chat, main=service_point_ensure(library=cast.library, slug="main", name="Main desk")
    )


def on_shift(user: User | None, point: ServicePoint, start: datetime, hours: float = 4) -> Shift:
    """A shift at ``point`` from ``start`` (aware), with ``user`` on it (or nobody)."""
    zone = point.library.zone
    shift = Shift.objects.create(
        library=point.library,
        service_point=point,
        date=start.astimezone(zone).date(),
        start=start,
        end=start + timedelta(hours=hours),
        min_staff=1,
        max_staff=2,
    )
    if user is not None:
        Assignment.objects.create(shift=shift, user=user)
    return shift
