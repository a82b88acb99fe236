"""Background jobs of staffing: the e-mails its services send, after their transaction.

A retry after a crash between sending and acknowledging sends a notice twice, the lesser
failure (as in chat.tasks).
"""

from __future__ import annotations

from celery import shared_task
from django.core.mail import send_mail


@shared_task
def send_notice(subject: str, body: str, recipients: list[str]) -> None:
    send_mail(subject=subject, message=body, from_email=None, recipient_list=recipients)
