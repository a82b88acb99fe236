"""Create or update a library, adding queues and allowed embedding origins."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reflib.services import library_upsert


class Command(BaseCommand):
    help = "Create or update a library; --queue and --origin add (never remove) entries."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name")
        parser.add_argument("--timezone", help="IANA time zone, e.g. America/New_York")
        parser.add_argument("--queue", action="append", default=[], dest="queues")
        parser.add_argument("--origin", action="append", default=[], dest="origins")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            library = library_upsert(
                slug=options["slug"],
                name=options["name"],
                timezone=options["timezone"],
                queue_slugs=options["queues"],
                origins=options["origins"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        queues = ", ".join(queue.address for queue in library.queues.all()) or "none"
        self.stdout.write(
            f"Library {library.slug} ({library.name}, {library.timezone}); queues: {queues}"
        )
