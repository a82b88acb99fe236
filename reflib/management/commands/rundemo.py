"""Serve the embedded demo: daphne on one port, and a Celery worker that also runs beat.

In embedded mode tasks sent from requests run eagerly; the periodic ones (sweeps, reports)
are sent by beat to the worker through Celery's in-memory broker, which works because beat and
worker share one process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Run the demo server (daphne) with a Celery worker and beat, until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.REDIS_URL:
            raise CommandError("rundemo is for embedded mode; unset REDIS_URL (docs/deployment.md)")
        python = sys.executable
        daphne = [
            python,
            "-m",
            "daphne",
            "-b",
            options["bind"],
            "-p",
            str(options["port"]),
            "reflib.asgi:application",
        ]
        celery = [
            python,
            "-m",
            "celery",
            "-A",
            "reflib",
            "worker",
            "--beat",
            "--pool=solo",
            "--loglevel=WARNING",
            "--schedule",
            str(settings.DATA_DIR / "celerybeat"),
        ]
        # A SIGTERM (a service manager, `kill`) stops the children too, like Ctrl+C does.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        processes = [subprocess.Popen(daphne), subprocess.Popen(celery)]  # noqa: S603
        try:
            while all(process.poll() is None for process in processes):
                try:
                    processes[0].wait(timeout=1)
                except subprocess.TimeoutExpired:
                    continue
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=15)
