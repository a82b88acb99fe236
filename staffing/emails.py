"""The notices staffing e-mails to staff: assignments, time off, swaps and claims.

Services call these inside their transaction; each notice leaves only after the transaction
commits (a rolled-back change tells nobody), through :func:`staffing.tasks.send_notice`. A
person without an e-mail address is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.dateformat import format as format_date
from django.utils.translation import gettext as _

from reflib.models import Library, Membership, Role, display_name
from staffing import tasks
from staffing.models import Shift, TimeOffRequest

# Day and month names in the active language (strftime would give the C locale's English).
LONG = "l d F Y H:i"


def managers_of(library: Library) -> list[User]:
    return [
        membership.user
        for membership in Membership.objects.filter(
            library=library, role=Role.MANAGER, user__is_active=True
        ).select_related("user")
    ]


def describe_shift(shift: Shift) -> str:
    zone = shift.library.zone
    start = format_date(shift.start.astimezone(zone), LONG)
    end = format_date(shift.end.astimezone(zone), "H:i")
    return f"{shift.service_point.name}, {start}-{end} ({shift.library.name})"


def describe_time_off(request: TimeOffRequest) -> str:
    zone = request.library.zone
    start = format_date(request.start.astimezone(zone), LONG)
    return f"{start} - {format_date(request.end.astimezone(zone), LONG)}"


def notify(*, to: Iterable[User], subject: str, lines: Iterable[str]) -> None:
    """E-mail ``to`` (each address once) after the current transaction commits."""
    recipients = sorted({user.email for user in to if user.email})
    if not recipients:
        return
    body = "\n".join([*lines, "", _("Your shifts: %(url)s") % {"url": my_shifts_url()}])
    transaction.on_commit(lambda: tasks.send_notice.delay(subject, body, recipients))


def my_shifts_url() -> str:
    return f"{settings.REFLIB_BASE_URL}/staffing/"


def name(user: User) -> str:
    return display_name(user)
