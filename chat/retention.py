"""Retention and erasure of patrons' personal data (SPEC §4, PROTOCOL.md DELETE).

- **Retention**: a conversation (and its follow-up ticket) older than its library's
  ``retention_days`` is *anonymised*: the patron's name, e-mail, IP address, page and token
  go, and the words that stay (the question, the messages, notes, a rating comment, the
  ticket's thread) are redacted by ``reflib.redaction``: e-mail addresses, phone and card
  numbers, street addresses and the patron's name become ``[email]``, ``[phone]``, ... A
  ticket without a conversation is anonymised the same way once its last activity is older
  than the retention. Shared files are deleted. What statistics need stays: times, status,
  queue, librarian, tags, READ level, rating, check-in answers.
- **Erasure** at the patron's request (``chat.services.conversation_erase``) removes the words
  altogether; ``ticket_erase`` here does the same for the conversation's ticket.

Both are idempotent (``anonymised_at`` is set once, under the row's lock) and log what they did
by public id and library, never the personal data itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from re import Pattern

from django.db import transaction
from django.utils import timezone

from chat.models import (
    OPEN_STATUSES,
    Conversation,
    EventKind,
    Sender,
    Ticket,
    TicketStatus,
    hash_token,
    new_token,
)
from reflib.models import Library
from reflib.redaction import Redactor, stated_names

log = logging.getLogger(__name__)


@dataclass
class RetentionResult:
    conversations: int = 0
    tickets: int = 0


def patron_redactor(
    *,
    patron_names: Iterable[str],
    patron_texts: Iterable[str],
    card_patterns: Sequence[Pattern[str]],
) -> Redactor:
    """A redactor that knows the patron's name (as given, and any they stated in their own
    words: the question, their messages) and the library's own card number patterns."""
    names = stated_names(patron_texts) | {name for name in patron_names if name}
    return Redactor(names=names, card_patterns=card_patterns)


def conversation_redactor(conversation: Conversation) -> Redactor:
    patron_texts = conversation.events.filter(
        kind=EventKind.MESSAGE, sender=Sender.PATRON
    ).values_list("body", flat=True)
    ticket = Ticket.objects.filter(conversation=conversation).first()
    return patron_redactor(
        patron_names=[conversation.patron_name, ticket.patron_name if ticket else ""],
        patron_texts=[conversation.question, *patron_texts],
        card_patterns=conversation.library.compiled_card_patterns(),
    )


def _scrub_events(conversation: Conversation, redactor: Redactor) -> None:
    for event in conversation.events.all():
        if event.sender == Sender.PATRON:
            event.author_name = ""
        event.body = redactor.redact(event.body)
        if event.kind == EventKind.FILE:
            event.data = {k: v for k, v in event.data.items() if k in {"size", "content_type"}}
        elif event.kind == EventKind.STATUS and event.data.get("reason"):
            event.data = {**event.data, "reason": redactor.redact(str(event.data["reason"]))}
        event.save(update_fields=["author_name", "body", "data"])
    for attachment in conversation.attachments.all():
        attachment.file.delete(save=False)
    conversation.attachments.all().delete()


@transaction.atomic
def conversation_anonymise(*, conversation_id: int, now: datetime | None = None) -> bool:
    """Scrub an ended conversation's personal data and its ticket's; False when there is
    nothing to do (already anonymised, still open, gone)."""
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("library")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None or conversation.anonymised_at is not None or conversation.is_open:
        return False
    redactor = conversation_redactor(conversation)
    _scrub_events(conversation, redactor)
    conversation.question = redactor.redact(conversation.question)
    conversation.rating_comment = redactor.redact(conversation.rating_comment)
    conversation.patron_name = ""
    conversation.patron_email = ""
    conversation.page_url = ""
    conversation.patron_ip = None
    conversation.token_hash = hash_token(new_token())
    conversation.anonymised_at = now or timezone.now()
    conversation.save()
    ticket = Ticket.objects.filter(conversation=conversation).first()
    if ticket is not None:
        ticket_anonymise(ticket_id=ticket.pk, redactor=redactor, now=now)
    return True


@transaction.atomic
def ticket_anonymise(
    *, ticket_id: int, redactor: Redactor | None = None, now: datetime | None = None
) -> bool:
    """Scrub a ticket's personal data, keeping its redacted thread; False if already done."""
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("library")
        .filter(pk=ticket_id)
        .first()
    )
    if ticket is None or ticket.anonymised_at is not None:
        return False
    if redactor is None:
        redactor = Redactor(
            names=[ticket.patron_name, *stated_names([ticket.question])],
            card_patterns=ticket.library.compiled_card_patterns(),
        )
    for message in ticket.messages.all():
        message.body = redactor.redact(message.body)
        message.save(update_fields=["body"])
    ticket.question = redactor.redact(ticket.question)
    _forget_patron(ticket, now)
    return True


@transaction.atomic
def ticket_erase(*, ticket_id: int, now: datetime | None = None) -> None:
    """The patron erased the conversation the ticket came from: the words go too."""
    ticket = Ticket.objects.select_for_update().filter(pk=ticket_id).first()
    if ticket is None:
        return
    ticket.messages.update(body="")
    ticket.question = ""
    ticket.status = TicketStatus.CLOSED
    _forget_patron(ticket, now)


def _forget_patron(ticket: Ticket, now: datetime | None) -> None:
    ticket.patron_name = ""
    ticket.patron_email = ""
    # The private link stops working: a hash that no key maps to.
    ticket.access_hash = hash_token(new_token())
    ticket.anonymised_at = now or timezone.now()
    ticket.save()


def retention_apply(*, library_id: int, now: datetime | None = None) -> RetentionResult:
    """Anonymise what the library keeps longer than its ``retention_days``; safe to run twice
    or concurrently (each row is re-checked under its lock)."""
    result = RetentionResult()
    library = Library.objects.filter(pk=library_id).first()
    if library is None:
        return result
    now = now or timezone.now()
    cutoff = now - timedelta(days=library.retention_days)
    conversation_ids = list(
        Conversation.objects.for_library(library)
        .filter(created_at__lt=cutoff, anonymised_at__isnull=True)
        .exclude(status__in=OPEN_STATUSES)
        .values_list("pk", flat=True)
    )
    for conversation_id in conversation_ids:
        result.conversations += conversation_anonymise(conversation_id=conversation_id, now=now)
    ticket_ids = list(
        Ticket.objects.for_library(library)
        .filter(conversation__isnull=True, updated_at__lt=cutoff, anonymised_at__isnull=True)
        .values_list("pk", flat=True)
    )
    for ticket_id in ticket_ids:
        result.tickets += ticket_anonymise(ticket_id=ticket_id, now=now)
    log.info(
        "retention for library %s (%s days): %s conversations (with their tickets) and %s "
        "other tickets anonymised",
        library.slug,
        library.retention_days,
        result.conversations,
        result.tickets,
    )
    return result
