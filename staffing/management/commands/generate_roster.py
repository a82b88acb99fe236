"""Generate a library's roster from its shift templates for a date range."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reflib.models import Library
from staffing.services import roster_generate


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date: give YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = (
        "Create the shifts of a library's templates for local dates FROM to TO (both included). "
        "Running it again creates nothing new; future shifts nobody is on follow template changes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--library", required=True, help="library slug")
        parser.add_argument("--from", dest="start", required=True, help="first date, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, help="last date, YYYY-MM-DD")

    def handle(self, *args: Any, **options: Any) -> None:
        library = Library.objects.filter(slug=options["library"]).first()
        if library is None:
            raise CommandError(f"No library with slug {options['library']!r}.")
        start, end = _date(options["start"]), _date(options["end"])
        try:
            changes = roster_generate(library=library, start=start, end=end)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        for shift in changes.created:
            self.stdout.write(f"Created {shift}")
        for shift in changes.updated:
            self.stdout.write(f"Updated {shift}")
        for description in changes.removed:
            self.stdout.write(f"Removed {description}")
        self.stdout.write(
            f"{library.slug} {start} to {end}: {len(changes.created)} created, "
            f"{len(changes.updated)} updated, {len(changes.removed)} removed."
        )
