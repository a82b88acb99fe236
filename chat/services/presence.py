"""Who is there: librarians' presence (available, away, offline; staying after a shift) and
whether a patron's socket is open."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import events
from chat.errors import ChatError
from chat.models import Conversation, Presence, PresenceState
from chat.selectors import librarian_libraries, shift_end_notices
from chat.services.conversations import positions_publish
from reflib.models import Queue
from staffing import selectors as roster


def presence_set(*, user: User, state: PresenceState) -> Presence:
    now = timezone.now()
    presence, _created = Presence.objects.update_or_create(
        user=user, defaults={"state": state, "changed_at": now, "seen_at": now}
    )
    _presence_changed(user)
    return presence


def presence_stay(*, user: User, now: datetime | None = None) -> Presence:
    """The librarian stays available after the shift that ended (or ends next, when they are
    still on it): the sweep leaves them available."""
    now = now or timezone.now()
    current, _next = roster.current_and_next_shift(user=user, now=now)
    if current is not None:
        ends_at = current.end
    else:
        presence = Presence.objects.filter(user=user).first()
        notice = shift_end_notices([presence], now=now).get(user.pk) if presence else None
        if notice is None:
            raise ChatError("conflict", _("You have no shift ending now to stay on after."))
        ends_at = notice.ended_at
    presence, _created = Presence.objects.get_or_create(user=user)
    presence.staying_after = ends_at
    presence.save(update_fields=["staying_after"])
    return presence


def presence_touch(*, user: User) -> None:
    """A desk socket of ``user`` is alive (on connect and on the desk's pings)."""
    presences_touch(user_ids=[user.pk])


def presences_touch(*, user_ids: list[int]) -> None:
    """Desk sockets of these users are alive (also the process-wide heartbeat's one write)."""
    if not user_ids:
        return
    updated = Presence.objects.filter(user_id__in=user_ids).update(seen_at=timezone.now())
    if updated < len(user_ids):
        Presence.objects.bulk_create(
            [Presence(user_id=user_id) for user_id in user_ids], ignore_conflicts=True
        )


def _presence_changed(user: User) -> None:
    library_ids = librarian_libraries(user)
    events.publish_queue_changed(*library_ids)
    queue_ids = list(Queue.objects.filter(library_id__in=library_ids).values_list("pk", flat=True))
    transaction.on_commit(lambda: positions_publish(queue_ids=queue_ids))


def patron_connection(*, conversation_id: int, connected: bool) -> None:
    """Record that the patron's socket opened, is alive, or closed (for ``abandoned``)."""
    Conversation.objects.filter(pk=conversation_id).update(
        patron_connected=connected, patron_seen_at=timezone.now()
    )


def patrons_alive(*, conversation_ids: list[int]) -> None:
    """The patrons' sockets of these conversations are open (the process-wide heartbeat)."""
    if conversation_ids:
        Conversation.objects.filter(pk__in=conversation_ids).update(
            patron_connected=True, patron_seen_at=timezone.now()
        )
