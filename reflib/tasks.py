"""Housekeeping jobs of the project itself."""

from celery import shared_task
from django.core.management import call_command

from reflib.jobs import job_runs_prune


@shared_task
def clear_sessions() -> None:
    """Delete expired login sessions (Django keeps them until someone does)."""
    call_command("clearsessions")


@shared_task
def prune_job_runs() -> None:
    """Delete old job run records (REFLIB_JOB_RUN_DAYS)."""
    job_runs_prune()
