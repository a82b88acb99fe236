"""Print the redaction's recall and precision per kind on the labelled corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reflib import redaction_corpus


class Command(BaseCommand):
    help = "Measure reflib.redaction on its labelled corpus (or another file in that format)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--corpus", type=Path, default=redaction_corpus.CORPUS)
        parser.add_argument(
            "--misses", action="store_true", help="also print each line that differs"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            conversations = redaction_corpus.load(options["corpus"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the corpus: {exc}") from None
        lines = sum(len(c.lines) for c in conversations)
        self.stdout.write(f"{lines} lines in {len(conversations)} conversations")
        self.stdout.write(
            f"{'kind':<8} {'labelled':>8} {'redacted':>8} {'recall':>7} {'precision':>9}"
        )
        for kind, figures in redaction_corpus.evaluate(conversations).items():
            self.stdout.write(
                f"{kind.value:<8} {figures.gold:>8} {figures.predicted:>8} "
                f"{figures.recall:>7.3f} {figures.precision:>9.3f}"
            )
        if options["misses"]:
            for line in redaction_corpus.misses(conversations):
                self.stdout.write(line)
