"""Every transaction carries its library's wall-clock date, weekday and hour, on every write path
and after the library's time zone changes."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

from django.core.management import call_command

from analytics.models import CategoryKind, Transaction
from analytics.selectors import Scope, heatmap, volume_by_day
from analytics.services import transaction_tally, transactions_localise
from reflib.services import library_upsert
from tests.analytics.conftest import category, record
from tests.conftest import Cast

# New York: EST (UTC-5) to EDT (UTC-4) on 8 March 2026 at 02:00, back on 1 November at 02:00.
AROUND_DST = [
    datetime(2026, 3, 8, 6, 59, tzinfo=UTC),  # Sun 01:59 EST
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # Sun 03:00 EDT
    datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # Sun 01:30 EDT
    datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # Sun 01:30 EST, the repeated hour
    datetime(2026, 11, 2, 4, 59, tzinfo=UTC),  # Sun 23:59 EST
    datetime(2026, 11, 2, 5, 0, tzinfo=UTC),  # Mon 00:00 EST
]
STAMPS_NEW_YORK = [
    (date(2026, 3, 8), 6, 1),
    (date(2026, 3, 8), 6, 3),
    (date(2026, 11, 1), 6, 1),
    (date(2026, 11, 1), 6, 1),
    (date(2026, 11, 1), 6, 23),
    (date(2026, 11, 2), 0, 0),
]


def stamps(library_id: int) -> list[tuple[date, int, int]]:
    return list(
        Transaction.objects.filter(library_id=library_id)
        .order_by("started_at")
        .values_list("local_date", "local_weekday", "local_hour")
    )


def test_a_saved_transaction_is_stamped_with_the_library_wall_clock_across_dst(
    cast: Cast,
) -> None:
    for moment in AROUND_DST:
        record(cast.library, moment)

    assert stamps(cast.library.pk) == STAMPS_NEW_YORK


def test_the_tally_and_an_import_stamp_local_time_too(cast: Cast, tmp_path: Path) -> None:
    transaction_tally(
        library=cast.library,
        user=cast.librarian,
        format=category(cast.library, CategoryKind.FORMAT, "phone"),
        at=datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    )
    source = tmp_path / "stats.csv"
    source.write_text("started_at,format\n2026-11-01T01:30:00-05:00,desk\n", encoding="utf-8")
    call_command("import_transactions", str(source), "--library", "demo", stdout=io.StringIO())

    assert stamps(cast.library.pk) == [(date(2026, 3, 8), 6, 3), (date(2026, 11, 1), 6, 1)]


def test_the_one_statement_restamp_agrees_with_the_per_row_rule(cast: Cast) -> None:
    for moment in AROUND_DST:
        record(cast.library, moment)
    Transaction.objects.update(local_date=date(2000, 1, 1), local_weekday=5, local_hour=0)

    assert transactions_localise(library=cast.library) == len(AROUND_DST)
    assert stamps(cast.library.pk) == STAMPS_NEW_YORK


def test_changing_a_library_time_zone_restamps_its_transactions_and_no_others(
    cast: Cast,
) -> None:
    for moment in AROUND_DST:
        record(cast.library, moment)
        record(cast.other_library, moment)
    others = stamps(cast.other_library.pk)

    tokyo = library_upsert(slug="demo", timezone="Asia/Tokyo")  # UTC+9, no daylight saving

    assert stamps(cast.library.pk) == [
        (date(2026, 3, 8), 6, 15),
        (date(2026, 3, 8), 6, 16),
        (date(2026, 11, 1), 6, 14),
        (date(2026, 11, 1), 6, 15),
        (date(2026, 11, 2), 0, 13),
        (date(2026, 11, 2), 0, 14),
    ]
    assert stamps(cast.other_library.pk) == others
    monday = Scope(library=tokyo, start=date(2026, 11, 2), end=date(2026, 11, 2))
    assert heatmap(monday) == {(0, 13): 1, (0, 14): 1}
    assert [day.count for day in volume_by_day(monday)] == [2]


def test_saving_a_library_without_changing_its_zone_leaves_the_stamps_alone(
    cast: Cast,
) -> None:
    moment = record(cast.library, AROUND_DST[0])
    Transaction.objects.filter(pk=moment.pk).update(local_hour=23)

    library_upsert(slug="demo", name="Renamed Library")

    assert stamps(cast.library.pk) == [(date(2026, 3, 8), 6, 23)]
