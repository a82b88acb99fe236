"""Follow-up tickets as they are created: from the widget, or from a waiting chat.

What happens to a ticket after its creation (assign, answer, reply, close) is in
chat.ticket_services.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from chat.errors import ChatError
from chat.models import (
    Conversation,
    Sender,
    Status,
    Ticket,
    TicketMessage,
    TicketSource,
    hash_token,
    new_token,
)
from chat.services.base import _lock
from chat.services.conversations import _finish
from reflib.models import Queue


@dataclass(frozen=True)
class CreatedTicket:
    ticket: Ticket
    access_key: str


@transaction.atomic
def ticket_create(
    *,
    queue: Queue,
    question: str,
    email: str,
    name: str = "",
    source: TicketSource = TicketSource.OFFLINE,
    conversation: Conversation | None = None,
) -> CreatedTicket:
    access_key = new_token()
    ticket = Ticket.objects.create(
        library=queue.library,
        queue=queue,
        conversation=conversation,
        source=source,
        question=question,
        patron_email=email,
        patron_name=name,
        access_hash=hash_token(access_key),
    )
    TicketMessage.objects.create(ticket=ticket, sender=Sender.PATRON, body=question)
    return CreatedTicket(ticket=ticket, access_key=access_key)


@transaction.atomic
def conversation_to_ticket(*, conversation_id: int, email: str) -> CreatedTicket:
    """The waiting patron leaves the question as a ticket instead of waiting on."""
    conversation = _lock(conversation_id)
    if conversation.status != Status.QUEUED:
        raise ChatError("conflict", _("Only a waiting chat can become a ticket."))
    conversation.patron_email = email
    created = ticket_create(
        queue=conversation.queue,
        question=conversation.question,
        email=email,
        name=conversation.patron_name,
        source=TicketSource.TIMEOUT,
        conversation=conversation,
    )
    _finish(conversation, Status.TICKET, reason="left as a question")
    return created
