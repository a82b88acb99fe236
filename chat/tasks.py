"""Background jobs of the chat. Thin by rule: take ids, load, call a function.

Tasks are acknowledged late (a crashed worker's task runs again), so each one is safe to run
twice: a row that has gone (erased, deleted) makes it a no-op. E-mail itself cannot be made
exactly-once; a retry after a crash between sending and acknowledging sends the mail twice,
which is the lesser failure.
"""

from __future__ import annotations

from celery import shared_task

from chat import mail, retention, services
from chat.models import Conversation, Ticket, TicketMessage
from reflib.jobs import DAILY_RETRY


@shared_task
def sweep() -> None:
    """The chat's timers (presence expiry, ticket offers, rollover, missed, abandoned), sent
    every few seconds by beat. Safe to run twice at once: each step re-checks under a lock."""
    services.sweep()


@shared_task(**DAILY_RETRY)
def apply_retention(*, library_id: int) -> None:
    """Anonymise the library's conversations and tickets older than its retention, daily."""
    retention.retention_apply(library_id=library_id)


@shared_task
def send_transcript(conversation_id: int, email: str) -> None:
    """E-mail the patron-visible transcript; nothing once the patron has erased the chat."""
    conversation = (
        Conversation.objects.select_related("library")
        .filter(pk=conversation_id, erased_at__isnull=True)
        .first()
    )
    if conversation is not None:
        mail.transcript_send(conversation=conversation, email=email)


@shared_task
def send_ticket_receipt(ticket_id: int, access_key: str) -> None:
    """E-mail the receipt with the private link. Only the key's hash is stored, so the key
    travels in the task message: this task is the one place it can still be sent from."""
    ticket = Ticket.objects.select_related("library").filter(pk=ticket_id).first()
    if ticket is not None:
        mail.ticket_receipt_send(ticket=ticket, access_key=access_key)


@shared_task
def send_ticket_answer(ticket_id: int, message_id: int, access_key: str) -> None:
    """E-mail a librarian's answer. The new key travels in the task message because only its
    hash is stored: this task is the one place the patron's new link can be sent from."""
    message = (
        TicketMessage.objects.select_related("ticket__library", "author__staff_profile")
        .filter(pk=message_id, ticket_id=ticket_id)
        .first()
    )
    if message is not None:
        mail.ticket_answer_send(ticket=message.ticket, message=message, access_key=access_key)
