"""Background jobs of analytics. Thin by rule: ids in, a service call (reflib/jobs.py records
each run; a failure is retried, then listed as failed)."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from analytics import report_services
from reflib.jobs import DAILY_RETRY
from reflib.models import Library


@shared_task(**DAILY_RETRY)
def build_daily_report(*, library_id: int, day: str | None = None) -> None:
    """Build and e-mail the library's report on ``day`` (ISO date), by default its previous
    local day: beat sends this after each library's own midnight."""
    library = Library.objects.filter(pk=library_id).first()
    if library is None:
        return
    report_day = (
        date.fromisoformat(day) if day else report_services.report_day_before(library=library)
    )
    report = report_services.report_build(library=library, day=report_day)
    report_services.report_email(report_id=report.pk)
