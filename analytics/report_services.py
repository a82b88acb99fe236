"""Writes of the daily reports (SPEC §4): build a library's report on a local day, e-mail it.

Both are idempotent, because the Celery task that runs them is acknowledged late and may run
again after a worker dies, and because a backfill may cover days that already have a report:

- ``report_build`` keeps one row per library and day (a unique constraint, and the row locked
  while it is rewritten); the content is a pure function of the data, so a rebuild of the same
  data leaves the row as it was.
- ``report_email`` sends under the report's row lock and records ``emailed_at`` in the same
  transaction, so a retry or a second worker finds it sent and sends nothing. Only a crash in
  the instant between the mail server accepting the message and the commit can repeat it; the
  message then carries the same ``Message-ID`` (the idempotency key, one per library and day),
  by which mail systems recognise the duplicate.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from analytics.models import DailyReport
from analytics.report_selectors import report_content
from reflib.models import Library, Role

log = logging.getLogger(__name__)


def report_day_before(*, library: Library, now: datetime | None = None) -> date:
    """The library's previous local day: what a run after its local midnight reports on."""
    local = (now or timezone.now()).astimezone(library.zone)
    return local.date() - timedelta(days=1)


def _digest(content: dict[str, object]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def report_build(*, library: Library, day: date) -> DailyReport:
    """Build (or rebuild) the report of ``library`` on the local ``day``."""
    content = report_content(library=library, day=day)
    # A JSON round trip: what is stored is what a later comparison reads back.
    content = json.loads(json.dumps(content, default=str))
    digest = _digest(content)
    for _attempt in range(2):
        try:
            with transaction.atomic():
                report = (
                    DailyReport.objects.select_for_update().filter(library=library, day=day).first()
                )
                if report is None:
                    report = DailyReport.objects.create(
                        library=library, day=day, content=content, content_hash=digest
                    )
                    log.info("daily report %s %s built", library.slug, day)
                elif report.content_hash != digest:
                    report.content = content
                    report.content_hash = digest
                    report.built_at = timezone.now()
                    report.save(update_fields=["content", "content_hash", "built_at"])
                    log.info("daily report %s %s rebuilt with changed data", library.slug, day)
                return report
        except IntegrityError:
            # A concurrent build created the row between our read and our insert: lock it now.
            continue
    raise RuntimeError(f"could not store the daily report {library.slug} {day}")


def report_recipients(library: Library) -> list[str]:
    """The e-mail addresses of the library's active managers."""
    return sorted(
        {
            address
            for address in User.objects.filter(
                memberships__library=library, memberships__role=Role.MANAGER, is_active=True
            ).values_list("email", flat=True)
            if address
        }
    )


def report_url(report: DailyReport) -> str:
    path = reverse(
        "analytics_daily_report",
        kwargs={"library": report.library.slug, "day": report.day.isoformat()},
    )
    return f"{settings.REFLIB_BASE_URL}{path}"


def report_message_id(report: DailyReport) -> str:
    return f"<daily-report.{report.library.slug}.{report.day:%Y-%m-%d}@reflib>"


def report_email(*, report_id: int) -> bool:
    """E-mail the report to the library's managers, once; True when it was sent now."""
    with transaction.atomic():
        report = (
            DailyReport.objects.select_for_update(of=("self",))
            .select_related("library")
            .filter(pk=report_id)
            .first()
        )
        if report is None or report.emailed_at is not None:
            return False
        recipients = report_recipients(report.library)
        if recipients:
            context = {"report": report, "content": report.content, "url": report_url(report)}
            message = EmailMultiAlternatives(
                subject=f"{report.library.name}: daily report for {report.day:%Y-%m-%d}",
                body=render_to_string("analytics/daily_report_email.txt", context),
                to=recipients,
                headers={"Message-ID": report_message_id(report)},
            )
            message.attach_alternative(
                render_to_string("analytics/daily_report_email.html", context), "text/html"
            )
            message.send()
        report.emailed_at = timezone.now()
        report.save(update_fields=["emailed_at"])
    log.info(
        "daily report %s %s e-mailed to %s managers",
        report.library.slug,
        report.day,
        len(recipients),
    )
    return True


def reports_build(
    *, libraries: list[Library], days: list[date], email: bool = False
) -> list[DailyReport]:
    """Backfill: build each library's report on each day, and e-mail those not yet sent."""
    reports = []
    for library in libraries:
        for day in days:
            report = report_build(library=library, day=day)
            if email:
                report_email(report_id=report.pk)
            reports.append(report)
    return reports
