"""Reads of the chat: who is available, whether a queue is online, the waiting list.

``queue_availability`` is the one place that decides whether a queue is *online* (SPEC §1.3:
the widget never shows online when nobody is there). A librarian of the queue's library
*answers* the queue when they are present (set available, with a desk socket seen within
``PRESENCE_TIMEOUT``) and either rostered now on the queue's service point, or on no shift of
the library now (covering). A librarian rostered but absent does not make a queue online; one
rostered now at another service point is busy there and answers only that desk's queues.

``queue_outlook`` is what a start, a hello and the positions notice read: the availability and
the wait model together, read at most ``OUTLOOK_TTL_S`` ago in this process. A patron joining
the line changes neither, so a burst of starts reads them about once a second, not once per
start and per hello. A change that may alter them (an accept, an end, a presence change, a
transfer to another queue) reads them afresh (``fresh=True``) in the process that made it,
before it tells the waiting patrons; another process sees the change within ``OUTLOOK_TTL_S``.
The queue status, the widget's "online", always reads them afresh.

``shift_end_notices`` is the one rule for the end of a shift: a librarian who went available
before their shift ended, and is on no shift now, is warned, and set away by the sweep
``SHIFT_END_GRACE`` after the end unless they said they are staying.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from chat.models import Conversation, EventKind, Presence, PresenceState, Status
from reflib.models import Library, Membership, Queue
from staffing import selectors as roster
from staffing.presence import last_shift_ends

PRESENCE_TIMEOUT = timedelta(seconds=60)
# Until a queue has history, estimates use these (seconds).
DEFAULT_HANDLING_S = 420
DEFAULT_PICKUP_S = 30
RECENT_CHATS = 50
OUTLOOK_TTL_S = 1.0
NO_LONGER_READABLE = "This chat has ended; its token no longer opens it."


def librarian_libraries(user: User) -> list[int]:
    """The ids of the libraries whose conversations ``user`` answers (all, for a superuser)."""
    if user.is_superuser:
        return list(Library.objects.values_list("pk", flat=True))
    return list(Membership.objects.filter(user=user).values_list("library_id", flat=True))


def available_librarians(library_ids: list[int], *, now: datetime | None = None) -> QuerySet[User]:
    now = now or timezone.now()
    return User.objects.filter(
        is_active=True,
        memberships__library_id__in=library_ids,
        chat_presence__state=PresenceState.AVAILABLE,
        chat_presence__seen_at__gte=now - PRESENCE_TIMEOUT,
    ).distinct()


def open_chat_counts(user_ids: list[int]) -> dict[int, int]:
    rows = (
        Conversation.objects.filter(librarian_id__in=user_ids, status=Status.ACTIVE)
        .values("librarian_id")
        .annotate(n=Count("id"))
    )
    return {row["librarian_id"]: row["n"] for row in rows}


@dataclass(frozen=True)
class Availability:
    online: bool
    librarians_available: int
    free_slots: int
    capacity: int


def answering_librarians(queue: Queue, *, now: datetime | None = None) -> list[int]:
    """The ids of the librarians who answer ``queue`` now (the module's rule)."""
    now = now or timezone.now()
    present = list(available_librarians([queue.library_id], now=now).values_list("pk", flat=True))
    if not present:
        return []
    on_shift = roster.on_now(library=queue.library, now=now)
    rostered_here = {v.user_id for v in on_shift if v.service_point.pk == queue.service_point_id}
    rostered = {view.user_id for view in on_shift}
    return [pk for pk in present if pk in rostered_here or pk not in rostered]


def queue_availability(queue: Queue, *, now: datetime | None = None) -> Availability:
    library: Library = queue.library
    librarians = answering_librarians(queue, now=now)
    counts = open_chat_counts(librarians)
    limit = library.max_chats_per_librarian
    free = sum(max(0, limit - counts.get(pk, 0)) for pk in librarians)
    return Availability(
        online=bool(librarians),
        librarians_available=len(librarians),
        free_slots=free,
        capacity=limit * len(librarians),
    )


def queue_opens_at(queue: Queue, *, now: datetime | None = None) -> str | None:
    """When an offline ``queue`` next opens by its hours and roster, as ISO 8601 with the
    library's offset; None when not known (nobody rostered within the horizon, or rostered
    now but not there: the roster cannot say when they come)."""
    now = now or timezone.now()
    opens = roster.queue_opens_at(queue=queue, now=now)
    if opens is None or opens <= now:
        return None
    return opens.astimezone(queue.library.zone).isoformat()


def _recent_median(queue: Queue, start: str, end: str, default: float) -> float:
    rows = (
        Conversation.objects.filter(queue__library_id=queue.library_id)
        .exclude(**{f"{end}__isnull": True})
        .exclude(**{f"{start}__isnull": True})
        .order_by(f"-{end}")
        .values_list(start, end)[:RECENT_CHATS]
    )
    seconds = [(finish - begin).total_seconds() for begin, finish in rows]
    return median(seconds) if seconds else default


@dataclass(frozen=True)
class WaitModel:
    """Recent medians of a queue's library: time to pick up a chat, time to handle one."""

    pickup_s: float
    handling_s: float


def wait_model(queue: Queue) -> WaitModel:
    return WaitModel(
        pickup_s=_recent_median(queue, "created_at", "accepted_at", DEFAULT_PICKUP_S),
        handling_s=_recent_median(queue, "accepted_at", "closed_at", DEFAULT_HANDLING_S),
    )


@dataclass(frozen=True)
class QueueOutlook:
    """What a queue's estimated waits are made of."""

    availability: Availability
    model: WaitModel


class _Outlooks:
    """This process's latest read of each queue's outlook, by queue id, with the moment (on
    the monotonic clock) its read began. The newest read wins: a read that began before a
    change committed never replaces one that began after it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reads: dict[int, tuple[float, QueueOutlook]] = {}

    def get(self, queue: Queue, *, fresh: bool) -> QueueOutlook:
        began = time.monotonic()
        if not fresh:
            with self.lock:
                held = self.reads.get(queue.pk)
            if held is not None and began - held[0] < OUTLOOK_TTL_S:
                return held[1]
        outlook = QueueOutlook(availability=queue_availability(queue), model=wait_model(queue))
        with self.lock:
            held = self.reads.get(queue.pk)
            if held is None or held[0] <= began:
                self.reads[queue.pk] = (began, outlook)
        return outlook

    def clear(self) -> None:
        with self.lock:
            self.reads.clear()


outlooks = _Outlooks()


def queue_outlook(queue: Queue, *, fresh: bool = False) -> QueueOutlook:
    """``queue``'s availability and wait model, read at most ``OUTLOOK_TTL_S`` ago in this
    process; ``fresh``: read now (after a change that may alter them)."""
    return outlooks.get(queue, fresh=fresh)


def estimated_wait_s(
    queue: Queue,
    position: int,
    availability: Availability | None = None,
    model: WaitModel | None = None,
) -> int | None:
    """Estimated wait of the patron at ``position`` (1 = next), or None when offline: the one
    estimate of the queue frames and of the queue status (``availability`` and ``model`` are
    the queue's outlook when not given).

    If a free chat slot is waiting for this patron, the wait is the library's recent median
    time to pick up a chat. Otherwise it follows the known formula
    ``pickup + (floor((N - F - 1) / X) + 1) * median handling time``, with N the position,
    F the free slots and X the capacity (librarians * concurrent chats each): the patron waits
    for that many rounds of chats to end.
    """
    if availability is None:
        outlook = queue_outlook(queue)
        availability, model = outlook.availability, model or outlook.model
    if not availability.online or availability.capacity == 0:
        return None
    model = model or queue_outlook(queue).model
    if position <= availability.free_slots:
        return round(model.pickup_s)
    rounds = (position - availability.free_slots - 1) // availability.capacity + 1
    return round(model.pickup_s + rounds * model.handling_s)


def waiting_conversations(library_ids: list[int]) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(status=Status.QUEUED, queue__library_id__in=library_ids)
        .select_related("queue__library")
        .order_by("queued_since", "pk")
    )


def queue_position(conversation: Conversation) -> int:
    return (
        Conversation.objects.filter(status=Status.QUEUED, queue_id=conversation.queue_id)
        .filter(
            Q(queued_since__lt=conversation.queued_since)
            | Q(queued_since=conversation.queued_since, pk__lt=conversation.pk)
        )
        .count()
        + 1
    )


def presence_of(user: User) -> str:
    presence = Presence.objects.filter(user=user).first()
    return presence.state if presence else PresenceState.OFFLINE


def earlier_conversations(conversation: Conversation) -> QuerySet[Conversation]:
    """The same patron's earlier chats with this library, matched by e-mail address."""
    if not conversation.patron_email:
        return Conversation.objects.none()
    return Conversation.objects.filter(
        library_id=conversation.library_id,
        patron_email__iexact=conversation.patron_email,
        created_at__lt=conversation.created_at,
        erased_at__isnull=True,
    ).order_by("-created_at")


def transcript_lines(conversation: Conversation) -> list[str]:
    """The patron-visible transcript, for the e-mail."""
    lines = []
    for event in conversation.events.filter(staff_only=False).order_by("seq"):
        when = timezone.localtime(event.created_at, conversation.library.zone).strftime("%H:%M")
        if event.kind == EventKind.MESSAGE:
            lines.append(f"[{when}] {event.author_name}: {event.body}")
        elif event.kind == EventKind.FILE:
            lines.append(f"[{when}] {event.author_name} shared {event.data.get('filename', '')}")
    return lines


def patron_may_read(conversation: Conversation, *, now: datetime | None = None) -> bool:
    """Whether the patron's token still opens ``conversation`` for reading.

    Always while it is open; once it has ended, for ``REFLIB_PATRON_TOKEN_WINDOW_S``, so that
    the next person at a shared public computer cannot read it (SPEC §1.1).
    """
    if conversation.is_open:
        return True
    if conversation.closed_at is None:
        return False
    window = timedelta(seconds=settings.REFLIB_PATRON_TOKEN_WINDOW_S)
    return (now or timezone.now()) - conversation.closed_at < window


# --- the end of a shift ----------

SHIFT_END_LOOKBACK = timedelta(days=1)


def shift_end_grace() -> timedelta:
    return timedelta(seconds=settings.REFLIB_SHIFT_END_GRACE_SECONDS)


@dataclass(frozen=True)
class ShiftEnd:
    """A librarian still available after their shift ended."""

    ended_at: datetime
    away_at: datetime
    staying: bool


def shift_end_notices(
    presences: Iterable[Presence], *, now: datetime | None = None
) -> dict[int, ShiftEnd]:
    """By user id, the available ``presences`` whose shift has ended (the module's rule)."""
    now = now or timezone.now()
    grace = shift_end_grace()
    available = {p.user_id: p for p in presences if p.state == PresenceState.AVAILABLE}
    ends = last_shift_ends(user_ids=available, since=now - grace - SHIFT_END_LOOKBACK, now=now)
    notices = {}
    for user_id, ended_at in ends.items():
        presence = available[user_id]
        # Going available after the shift ended is covering, not forgetting to leave.
        if presence.changed_at >= ended_at:
            continue
        staying = presence.staying_after is not None and presence.staying_after >= ended_at
        notices[user_id] = ShiftEnd(ended_at=ended_at, away_at=ended_at + grace, staying=staying)
    return notices
