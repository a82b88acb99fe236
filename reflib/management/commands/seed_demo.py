"""Seed the demo library, its staff and (unless --no-history) a month of history.

Idempotent: running it again changes nothing that is already there. The demo passwords equal
the user names and are for demonstration only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from reflib.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo library, demo staff and a month of realistic history (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-history", action="store_true", help="only the library and its staff"
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="run outside the embedded demo too (it sets well-known demo passwords)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REFLIB_EMBEDDED and not options["force"]:
            raise CommandError(
                "seed_demo creates logins with well-known passwords and runs only in the embedded "
                "demo (no DATABASE_URL, no REDIS_URL). Pass --force to seed this database anyway."
            )
        with transaction.atomic():
            summary = seed_demo(history=not options["no_history"])
        for line in summary:
            self.stdout.write(line)
        self.stdout.write(
            self.style.WARNING(
                "Demo logins (demo use only, never in production): "
                "librarian / librarian and manager / manager"
            )
        )
