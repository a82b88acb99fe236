"""Reads of the roster that the chat's presence rules need (SPEC §1.3).

The chat asks; staffing never imports the chat. A shift's end is noticed by the chat's own
periodic sweep, which asks :func:`last_shift_ends` who finished a shift and is not on another.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Max

from staffing.models import Assignment


def last_shift_ends(
    *, user_ids: Iterable[int], since: datetime, now: datetime
) -> dict[int, datetime]:
    """For each of ``user_ids`` who is on no shift at ``now``: the end of their latest shift
    that ended within ``[since, now]``. People still on a shift, or whose last shift ended
    before ``since``, are left out."""
    ids = list(user_ids)
    if not ids:
        return {}
    active = Assignment.objects.active().filter(user_id__in=ids)
    on_shift = set(
        active.filter(shift__start__lte=now, shift__end__gt=now).values_list("user_id", flat=True)
    )
    ended = (
        active.filter(shift__end__gte=since, shift__end__lte=now)
        .exclude(user_id__in=on_shift)
        .values("user_id")
        .annotate(last_end=Max("shift__end"))
        .order_by()
    )
    return {row["user_id"]: row["last_end"] for row in ended}
