"""E-mails to patrons: the chat transcript, a follow-up ticket's receipt and its answers.

Celery tasks (chat.tasks) load the rows and call these; nothing here is asynchronous.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from chat.models import Conversation, Ticket, TicketMessage
from chat.ratelimit import check_rate
from chat.selectors import transcript_lines
from reflib.models import display_name

# A receipt quotes this much of the question: enough to recognise it, too little to carry
# someone else's message to an address that never asked for it.
RECEIPT_QUOTE_CHARS = 80


def check_mail_budget(email: str) -> None:
    """Refuse (rate_limited, with the cooldown) an e-mail a patron's request would cause when
    its recipient, or the installation, has had its share: reflib must not be a spam relay."""
    limits = (
        (f"mail:to:{email.strip().lower()}", settings.REFLIB_RATE_MAIL_RECIPIENT),
        ("mail:all", settings.REFLIB_RATE_MAIL_TOTAL),
    )
    for key, limit in limits:
        check_rate(
            key=key,
            limit=limit,
            detail=_("Too many e-mails to this address for now; try again later."),
        )


def ticket_url(ticket: Ticket, access_key: str) -> str:
    """The patron's private page of a ticket. The key is in the fragment, which browsers never
    send: it stays out of request lines, access logs and Referer headers (chat/views.py)."""
    return f"{settings.REFLIB_BASE_URL}/tickets/{ticket.public_id}/#k={access_key}"


def transcript_send(*, conversation: Conversation, email: str) -> None:
    library = conversation.library
    lines = transcript_lines(conversation)
    body = "\n".join(
        [
            _("Here is the transcript of your chat with %(library)s.") % {"library": library.name},
            "",
            *lines,
        ]
    )
    send_mail(
        subject=_("Your chat with %(library)s") % {"library": library.name},
        message=body,
        from_email=None,
        recipient_list=[email],
    )


def ticket_receipt_send(*, ticket: Ticket, access_key: str) -> None:
    library = ticket.library
    body = "\n".join(
        [
            _("Thank you for your question to %(library)s. A librarian will answer by e-mail.")
            % {"library": library.name},
            "",
            _("Your question:"),
            Truncator(ticket.question).chars(RECEIPT_QUOTE_CHARS),
            "",
            _("Read the answer and reply on your ticket's private page:"),
            ticket_url(ticket, access_key),
            "",
            _("Keep this link to yourself: anyone who has it can read your ticket."),
        ]
    )
    send_mail(
        subject=_("Your question to %(library)s") % {"library": library.name},
        message=body,
        from_email=None,
        recipient_list=[ticket.patron_email],
    )


def ticket_answer_send(*, ticket: Ticket, message: TicketMessage, access_key: str) -> None:
    library = ticket.library
    signature = display_name(message.author) if message.author else library.name
    body = "\n".join(
        [
            _("A librarian of %(library)s has answered your question.") % {"library": library.name},
            "",
            message.body,
            "",
            f"— {signature}, {library.name}",
            "",
            _("Read the whole conversation and reply on your ticket's private page:"),
            ticket_url(ticket, access_key),
            "",
            _(
                "This link replaces any earlier one. Keep it to yourself: anyone who has it can "
                "read your ticket."
            ),
        ]
    )
    send_mail(
        subject=_("Answer to your question to %(library)s") % {"library": library.name},
        message=body,
        from_email=None,
        recipient_list=[ticket.patron_email],
    )
