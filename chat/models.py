"""Conversations and their event logs, tickets, presence, canned responses and blocks.

Lifecycle of a conversation (SPEC §1.4), the definitions analytics relies on:

- ``queued``: the patron asked and waits; ``created_at`` is when they asked.
- ``active``: a librarian accepted; ``accepted_at`` is the first response time.
- ``closed``: ended by the librarian or the patron after being answered, or ended by staff
  before anyone answered (closed or blocked while waiting: then ``accepted_at`` is empty, and
  analytics counts it as *declined*); ``closed_at``.
- ``abandoned``: the patron left (ended, or lost their connection for good) before anyone
  accepted.
- ``missed``: nobody accepted within the queue's ``missed_after_s``.
- ``ticket``: converted into a follow-up ticket (answered later by e-mail).

A *transfer* (to a colleague or another queue) and a *rollover* (to a partner queue) are events,
not states: they are stored as ``status`` events with a ``reason``.

Every conversation has a gapless sequence of events (``seq`` 1, 2, 3, ...), assigned under the
conversation's row lock; clients resume by the last ``seq`` they saw.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reflib.models import Library, LibraryOwned, Queue, ScopedQuerySet

TOKEN_BYTES = 32  # 256 bits; PROTOCOL.md asks for at least 128


def new_public_id() -> str:
    return secrets.token_urlsafe(12)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Tokens are stored as SHA-256: 256 random bits need no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


class Status(models.TextChoices):
    QUEUED = "queued", _("queued")
    ACTIVE = "active", _("active")
    CLOSED = "closed", _("closed")
    ABANDONED = "abandoned", _("abandoned")
    MISSED = "missed", _("missed")
    TICKET = "ticket", _("converted to ticket")


OPEN_STATUSES = [Status.QUEUED, Status.ACTIVE]


class ConversationQuerySet(ScopedQuerySet["Conversation"]):
    def waiting(self) -> ConversationQuerySet:
        return self.filter(status=Status.QUEUED)

    def by_token(self, token: str) -> Conversation | None:
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            return None
        return self.select_related("queue__library").filter(token_hash=hash_token(token)).first()


class Conversation(LibraryOwned):
    """A patron's chat. ``library`` is the home library; ``queue`` may move on rollover."""

    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="conversations")
    origin_queue = models.ForeignKey(
        Queue, on_delete=models.PROTECT, related_name="originated_conversations"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    question = models.TextField(max_length=2000)
    patron_name = models.CharField(max_length=80, blank=True)
    patron_email = models.EmailField(blank=True, db_index=True)
    page_url = models.URLField(max_length=500, blank=True)
    patron_ip = models.GenericIPAddressField(null=True, blank=True)
    librarian = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="chat_conversations",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    queued_since = models.DateTimeField(default=timezone.now)
    ticket_offered_at = models.DateTimeField(null=True, blank=True)
    rolled_over = models.BooleanField(default=False)
    patron_seen_at = models.DateTimeField(default=timezone.now)
    patron_connected = models.BooleanField(default=False)
    patron_last_read_seq = models.PositiveIntegerField(default=0)
    last_seq = models.PositiveIntegerField(default=0)
    read_level = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(6)]
    )
    tags = models.JSONField(default=list, blank=True)
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    rating_comment = models.TextField(max_length=2000, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    anonymised_at = models.DateTimeField(null=True, blank=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        default_related_name = "conversations"
        indexes = [
            models.Index(fields=["library", "status", "created_at"]),
            models.Index(fields=["status", "queued_since"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=Status.values), name="conversation_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(read_level__isnull=True)
                | models.Q(read_level__gte=1, read_level__lte=6),
                name="conversation_read_level_1_6",
            ),
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True) | models.Q(rating__gte=1, rating__lte=5),
                name="conversation_rating_1_5",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def patron_display_name(self) -> str:
        return self.patron_name or str(_("Patron"))


class EventKind(models.TextChoices):
    MESSAGE = "message"
    FILE = "file"
    STATUS = "status"
    NOTE = "note"
    CHECKIN = "checkin"
    CHECKIN_ANSWER = "checkin_answer"


class Sender(models.TextChoices):
    PATRON = "patron"
    LIBRARIAN = "librarian"
    SYSTEM = "system"


class Event(models.Model):
    """One stored event of a conversation's log; ``data`` holds the kind's own fields."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    public_id = models.CharField(max_length=24, default=new_public_id, editable=False)
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    sender = models.CharField(max_length=10, choices=Sender.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    author_name = models.CharField(max_length=80, blank=True)
    # NULL, not "", for events without one: the unique constraint skips NULLs.
    client_msg_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    staff_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="unique_event_seq"),
            models.UniqueConstraint(
                fields=["conversation", "client_msg_id"],
                condition=models.Q(client_msg_id__isnull=False),
                name="unique_client_msg_id",
            ),
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="event_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} {self.kind}"


def attachment_path(instance: Attachment, filename: str) -> str:
    # The stored name is random: the patron's file name is kept only as metadata.
    return f"chat/{timezone.now():%Y/%m}/{instance.public_id}"


class Attachment(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="attachments"
    )
    public_id = models.CharField(max_length=24, unique=True, default=new_public_id)
    file = models.FileField(upload_to=attachment_path)
    filename = models.CharField(max_length=200)
    size = models.PositiveIntegerField()
    content_type = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.filename


class Participant(models.Model):
    """A librarian who has been in a conversation (accepted, or received it by transfer)."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="participants"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    left_at = models.DateTimeField(null=True, blank=True)
    last_read_seq = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="unique_participant")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id}"


class PresenceState(models.TextChoices):
    AVAILABLE = "available", _("available")
    AWAY = "away", _("away")
    OFFLINE = "offline", _("offline")


class Presence(models.Model):
    """A librarian's presence. ``seen_at`` is refreshed while a desk socket is open."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_presence"
    )
    state = models.CharField(
        max_length=10, choices=PresenceState.choices, default=PresenceState.OFFLINE
    )
    changed_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The end of the shift after which the librarian said they stay available (SPEC §1.3).
    staying_after = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.state}"


class TicketStatus(models.TextChoices):
    OPEN = "open", _("open")
    ANSWERED = "answered", _("answered")
    CLOSED = "closed", _("closed")


class TicketSource(models.TextChoices):
    OFFLINE = "offline", _("left while offline")
    TIMEOUT = "timeout", _("left while waiting")


class Ticket(LibraryOwned):
    """A follow-up question answered by e-mail."""

    public_id = models.CharField(max_length=24, unique=True, default=new_public_id, editable=False)
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="tickets")
    conversation = models.OneToOneField(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="ticket"
    )
    source = models.CharField(max_length=10, choices=TicketSource.choices)
    status = models.CharField(
        max_length=10, choices=TicketStatus.choices, default=TicketStatus.OPEN
    )
    question = models.TextField(max_length=2000)
    patron_name = models.CharField(max_length=80, blank=True)
    patron_email = models.EmailField()
    access_hash = models.CharField(max_length=64, unique=True, editable=False)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # Set when retention or the patron's self-delete has scrubbed the personal data.
    anonymised_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet["Ticket"].as_manager()

    class Meta:
        ordering = ["-created_at"]
        default_related_name = "tickets"

    def __str__(self) -> str:
        return f"Ticket {self.public_id} ({self.status})"


class TicketMessage(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(max_length=10, choices=Sender.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    body = models.TextField(max_length=10000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.sender}"


class CannedResponse(LibraryOwned):
    title = models.CharField(max_length=120)
    body = models.TextField(
        max_length=4000, help_text=_("Placeholders: {name} (the patron's name), {librarian}.")
    )

    objects = ScopedQuerySet["CannedResponse"].as_manager()

    class Meta:
        ordering = ["title"]
        default_related_name = "canned_responses"

    def __str__(self) -> str:
        return self.title


class PatronBlockQuerySet(ScopedQuerySet["PatronBlock"]):
    def active(self, *, library: Library, token_hash: str = "", ip: str | None = None) -> bool:
        matches = models.Q()
        if token_hash:
            matches |= models.Q(token_hash=token_hash)
        if ip:
            matches |= models.Q(ip=ip)
        if not matches:
            return False
        return self.filter(matches, library=library, until__gt=timezone.now()).exists()


class PatronBlock(LibraryOwned):
    """A patron blocked by staff (``services.patron_block``), until ``until``.

    The block ends the patron's chat, and their IP address may start no chat and leave no
    ticket with the library meanwhile (``services.check_patron_not_blocked``). The token's hash
    is kept as well and ``active`` matches it, but a token opens only the one conversation that
    the block has already ended: the address is what keeps the patron out.
    """

    token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    until = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = PatronBlockQuerySet.as_manager()

    class Meta:
        default_related_name = "patron_blocks"

    def __str__(self) -> str:
        return str(_("Block until %(until)s") % {"until": f"{self.until:%Y-%m-%d %H:%M}"})
