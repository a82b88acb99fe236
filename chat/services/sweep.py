"""The chat's timers (``sweep``): presences that went stale, shifts that ended, and waiting
patrons who left, were missed, roll over to a partner queue or are offered a ticket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import events
from chat.models import Conversation, EventKind, Presence, PresenceState, Sender, Status
from chat.selectors import PRESENCE_TIMEOUT, queue_availability, shift_end_notices
from chat.services.base import _append, _lock, _status_event
from chat.services.conversations import _finish, positions_publish
from chat.services.presence import _presence_changed
from reflib.models import Queue

PATRON_GONE_AFTER = timedelta(seconds=60)
PATRON_SILENT_AFTER = timedelta(seconds=120)


@dataclass
class SweepResult:
    presences_expired: int = 0
    shifts_ended: int = 0
    tickets_offered: int = 0
    rolled_over: int = 0
    missed: int = 0
    abandoned: int = 0


def sweep(*, now: datetime | None = None) -> SweepResult:
    """The chat's timers, run every few seconds by Celery beat; safe to run concurrently.

    Each step re-checks its condition under the conversation's lock, so two sweeps (or a
    sweep racing an accept) never act twice.
    """
    now = now or timezone.now()
    result = SweepResult()
    stale = Presence.objects.filter(
        state=PresenceState.AVAILABLE, seen_at__lt=now - PRESENCE_TIMEOUT
    ).select_related("user")
    for presence in stale:
        with transaction.atomic():
            updated = Presence.objects.filter(
                pk=presence.pk, state=PresenceState.AVAILABLE, seen_at__lt=now - PRESENCE_TIMEOUT
            ).update(state=PresenceState.AWAY, changed_at=now)
            if updated:
                result.presences_expired += 1
                _presence_changed(presence.user)

    available = Presence.objects.filter(state=PresenceState.AVAILABLE).select_related("user")
    for user_id, notice in shift_end_notices(available, now=now).items():
        if notice.staying or now < notice.away_at:
            continue
        with transaction.atomic():
            # Conditional: a librarian who just chose again (or said they stay) keeps it.
            updated = (
                Presence.objects.filter(
                    user_id=user_id,
                    state=PresenceState.AVAILABLE,
                    changed_at__lt=notice.ended_at,
                )
                .exclude(staying_after__gte=notice.ended_at)
                .update(state=PresenceState.AWAY, changed_at=now)
            )
            if updated:
                result.shifts_ended += 1
                _presence_changed(User.objects.get(pk=user_id))

    for conversation in Conversation.objects.filter(status=Status.QUEUED).select_related(
        "queue__library"
    ):
        with transaction.atomic():
            locked = _lock(conversation.pk)
            if locked.status != Status.QUEUED:
                continue
            _sweep_waiting(locked, now, result)
    return result


def _sweep_waiting(conversation: Conversation, now: datetime, result: SweepResult) -> None:
    queue = conversation.queue
    waited = now - conversation.queued_since
    silent = now - conversation.patron_seen_at
    # A connected patron's socket beats every 20 s; a process that died without closing its
    # sockets leaves ``patron_connected`` set, so a long silence counts as gone too.
    if silent > PATRON_SILENT_AFTER or (
        not conversation.patron_connected and silent > PATRON_GONE_AFTER
    ):
        if conversation.accepted_at is None:
            _finish(conversation, Status.ABANDONED, reason="patron left")
            result.abandoned += 1
        else:
            _finish(conversation, Status.CLOSED, reason="patron left")
        return
    missed_after = timedelta(seconds=conversation.origin_queue.missed_after_s)
    if conversation.accepted_at is None and now - conversation.created_at >= missed_after:
        _finish(conversation, Status.MISSED, reason="nobody answered")
        result.missed += 1
        return
    if conversation.accepted_at is not None and waited >= missed_after:
        # Answered before, then put back in a queue that nobody took it from: not a missed
        # chat (it was answered), so it ends as closed.
        _finish(conversation, Status.CLOSED, reason="nobody took over the chat")
        return
    if waited < timedelta(seconds=queue.unanswered_limit_s):
        return
    partner = _online_partner(queue) if not conversation.rolled_over else None
    if partner is not None:
        conversation.queue = partner
        conversation.rolled_over = True
        conversation.queued_since = now
        conversation.save(update_fields=["queue", "rolled_over", "queued_since"])
        _status_event(conversation, reason=f"rolled over to {partner.name}")
        events.publish_queue_changed(queue.library_id, partner.library_id)
        transaction.on_commit(lambda: positions_publish(queue_ids=[queue.pk, partner.pk]))
        result.rolled_over += 1
    elif conversation.ticket_offered_at is None:
        conversation.ticket_offered_at = now
        conversation.save(update_fields=["ticket_offered_at"])
        _append(
            conversation,
            kind=EventKind.MESSAGE,
            sender=Sender.SYSTEM,
            body=_(
                "No librarian is free yet. You can keep waiting, or leave your question "
                "and we will answer by e-mail."
            ),
            data={"action": "offer_ticket"},
        )
        result.tickets_offered += 1


def _online_partner(queue: Queue) -> Queue | None:
    for partner in (
        Queue.objects.partners_of(queue).filter(is_active=True).select_related("library")
    ):
        if queue_availability(partner).online:
            return partner
    return None
