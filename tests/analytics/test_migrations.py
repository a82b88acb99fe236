"""Data migrations of analytics, run forwards on rows written by the code before them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from analytics.models import Transaction
from reflib.services import library_upsert

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("analytics", "0002_daily_reports")]
AFTER = [("analytics", "0003_transaction_local_time")]


def test_existing_transactions_get_the_local_time_of_their_own_library() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Category = apps.get_model("analytics", "Category")
    Old = apps.get_model("analytics", "Transaction")
    # The libraries' tables are at their newest: their rows are written as today's code does
    # (a new library gets its default lists).
    new_york = library_upsert(slug="ny", timezone="America/New_York")
    madrid = library_upsert(slug="md", timezone="Europe/Madrid")
    moment = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)  # 01:30 in New York, 07:30 in Madrid
    for library in (new_york, madrid):
        desk = Category.objects.get(library_id=library.pk, kind="format", slug="desk")
        Old.objects.create(library_id=library.pk, format=desk, started_at=moment, source="tally")

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    hours = dict(Transaction.objects.values_list("library__slug", "local_hour"))
    assert hours == {"ny": 1, "md": 7}
    assert set(Transaction.objects.values_list("local_date", "local_weekday")) == {
        (date(2026, 3, 8), 6)
    }
