"""Writes of follow-up tickets (SPEC §1.2): assign, answer, the patron's reply, close.

Tickets are created by chat.services (``ticket_create``, ``conversation_to_ticket``); what
happens to them afterwards lives here. Callers check first: the desk views find the ticket
through the librarian's scoped QuerySet, the patron's page checks the access key.

The patron's private link carries an access key of which only the hash is stored, so the key
is known only when it is made. An answer e-mail needs a working link, hence ``ticket_answer``
makes a new key (the old link stops working) and hands it to the e-mail task, the one place
that can still send it.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import tasks
from chat.errors import ChatError
from chat.models import Sender, Ticket, TicketMessage, TicketStatus, hash_token, new_token


def _lock(ticket_id: int) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket_id)


@transaction.atomic
def ticket_assign(*, ticket_id: int, assignee: User | None) -> Ticket:
    """Give the ticket to ``assignee`` (a librarian of its library, checked by the caller)."""
    ticket = _lock(ticket_id)
    ticket.assigned_to = assignee
    ticket.updated_at = timezone.now()
    ticket.save(update_fields=["assigned_to", "updated_at"])
    return ticket


@transaction.atomic
def ticket_answer(*, ticket_id: int, user: User, body: str) -> TicketMessage:
    """Store the librarian's answer and e-mail it with a fresh private link, after commit."""
    ticket = _lock(ticket_id)
    if ticket.status == TicketStatus.CLOSED:
        raise ChatError("closed", _("This ticket is closed."))
    now = timezone.now()
    message = TicketMessage.objects.create(
        ticket=ticket, sender=Sender.LIBRARIAN, author=user, body=body, created_at=now
    )
    access_key = new_token()
    ticket.access_hash = hash_token(access_key)
    ticket.status = TicketStatus.ANSWERED
    ticket.assigned_to = ticket.assigned_to or user
    ticket.updated_at = now
    ticket.save(update_fields=["access_hash", "status", "assigned_to", "updated_at"])
    transaction.on_commit(lambda: tasks.send_ticket_answer.delay(ticket.pk, message.pk, access_key))
    return message


@transaction.atomic
def ticket_reply_by_patron(*, ticket_id: int, body: str) -> TicketMessage:
    """The patron writes back on their private page: the ticket needs a librarian again."""
    ticket = _lock(ticket_id)
    now = timezone.now()
    message = TicketMessage.objects.create(
        ticket=ticket, sender=Sender.PATRON, body=body, created_at=now
    )
    ticket.status = TicketStatus.OPEN
    ticket.updated_at = now
    ticket.save(update_fields=["status", "updated_at"])
    return message


@transaction.atomic
def ticket_close(*, ticket_id: int) -> Ticket:
    ticket = _lock(ticket_id)
    ticket.status = TicketStatus.CLOSED
    ticket.updated_at = timezone.now()
    ticket.save(update_fields=["status", "updated_at"])
    return ticket
