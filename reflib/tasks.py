"""Housekeeping jobs of the project itself."""

from celery import shared_task
from django.core.management import call_command


@shared_task
def clear_sessions() -> None:
    """Delete expired login sessions (Django keeps them until someone does)."""
    call_command("clearsessions")
