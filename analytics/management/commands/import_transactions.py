"""Import reference transactions from a CSV file (reflib's own export, libstats, Gimlet,
LibInsight with --map); see docs/analytics.md for the columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.imports import import_transactions, parse_mapping
from reflib.models import Library


class Command(BaseCommand):
    help = (
        "Import transactions from a CSV file into a library. Any bad row: nothing is imported "
        "and every bad row is listed, unless --skip-bad. Importing a file again adds nothing twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--library", required=True, help="library slug")
        parser.add_argument("--dry-run", action="store_true", help="check only, import nothing")
        parser.add_argument(
            "--skip-bad", action="store_true", help="import the good rows, report the bad ones"
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="SOURCE=FIELD",
            help="read column SOURCE as FIELD (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        library = Library.objects.filter(slug=options["library"]).first()
        if library is None:
            raise CommandError(f"No library with slug {options['library']!r}.")
        path: Path = options["file"]
        try:
            mapping = parse_mapping(options["map"])
            with path.open("rb") as stream:
                report = import_transactions(
                    stream=stream,
                    library=library,
                    mapping=mapping,
                    dry_run=options["dry_run"],
                    skip_bad=options["skip_bad"],
                )
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}") from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        for bad in report.bad:
            self.stderr.write(str(bad))
        if report.ignored_columns:
            self.stderr.write("Columns not used: " + ", ".join(report.ignored_columns))
        if report.bad and not options["skip_bad"]:
            raise CommandError(report.summary)
        self.stdout.write(report.summary)
