"""Which real services this test run has, and what to do when a test needs a missing one.

Without them, service-backed tests skip with a reason; with REFLIB_REQUIRE_SERVICES=1 (CI) they
fail instead, so that a CI run without PostgreSQL or Redis can never pass silently.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from urllib.parse import urlsplit

import pytest
from django.conf import settings

REQUIRED = os.environ.get("REFLIB_REQUIRE_SERVICES", "") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


@cache
def postgres_problem() -> str | None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if not _reachable(os.environ.get("DATABASE_URL", ""), 5432):
        return "PostgreSQL at DATABASE_URL is not reachable"
    return None


@cache
def redis_problem() -> str | None:
    if not settings.REDIS_URL:
        return "needs Redis: set REDIS_URL=redis://..."
    if not _reachable(settings.REDIS_URL, 6379):
        return "Redis at REDIS_URL is not reachable"
    return None


def require(problem: str | None) -> None:
    if problem is None:
        return
    if REQUIRED:
        pytest.fail(f"REFLIB_REQUIRE_SERVICES=1 but this test {problem}", pytrace=False)
    pytest.skip(problem)
