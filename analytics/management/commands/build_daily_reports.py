"""Build daily reports, for backfill: one library or all, one day or a range of local days."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.report_services import report_day_before, reports_build
from reflib.models import Library

MAX_DAYS = 366


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date in the form YYYY-MM-DD") from None


class Command(BaseCommand):
    help = (
        "Build (or rebuild) daily reports. Without --date or --from/--to: each library's "
        "previous local day. Running a day again leaves one report with the same content."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--library", help="library slug (default: every library)")
        parser.add_argument("--date", help="one local day, YYYY-MM-DD")
        parser.add_argument("--from", dest="start", help="first local day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", help="last local day, YYYY-MM-DD (inclusive)")
        parser.add_argument(
            "--email",
            action="store_true",
            help="also e-mail the managers each report not e-mailed yet (never twice)",
        )

    def _days(self, options: dict[str, Any]) -> list[date] | None:
        if options["date"] and (options["start"] or options["end"]):
            raise CommandError("give either --date or --from and --to, not both")
        if bool(options["start"]) != bool(options["end"]):
            raise CommandError("--from and --to go together")
        if options["date"]:
            return [_date(options["date"])]
        if not options["start"]:
            return None
        start, end = _date(options["start"]), _date(options["end"])
        if end < start:
            raise CommandError("--to is before --from")
        if (end - start).days >= MAX_DAYS:
            raise CommandError(f"at most {MAX_DAYS} days at a time")
        return [start + timedelta(days=n) for n in range((end - start).days + 1)]

    def handle(self, *args: Any, **options: Any) -> None:
        days = self._days(options)
        libraries = Library.objects.order_by("slug")
        if options["library"]:
            libraries = libraries.filter(slug=options["library"])
            if not libraries.exists():
                raise CommandError(f"no library with the slug {options['library']!r}")
        for library in libraries:
            library_days = days or [report_day_before(library=library)]
            for report in reports_build(
                libraries=[library], days=library_days, email=options["email"]
            ):
                sent = f", e-mailed {report.emailed_at:%Y-%m-%d %H:%M}" if report.emailed_at else ""
                self.stdout.write(f"{library.slug} {report.day:%Y-%m-%d}: stored{sent}")
