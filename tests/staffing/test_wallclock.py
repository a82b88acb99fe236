"""Local wall times to UTC at the edges of daylight saving (America/New_York, 2026)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from staffing.wallclock import local_hour_pieces, local_instant, local_span

NEW_YORK = ZoneInfo("America/New_York")


def test_a_time_skipped_in_march_is_read_with_the_offset_before_the_change() -> None:
    # 02:30 does not exist on 8 March: read as EST, it is 03:30 EDT.
    at = local_instant(date(2026, 3, 8), time(2, 30), NEW_YORK)
    assert at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert f"{at.astimezone(NEW_YORK):%H:%M}" == "03:30"


def test_a_time_repeated_in_november_means_its_first_occurrence() -> None:
    assert local_instant(date(2026, 11, 1), time(1, 30), NEW_YORK) == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )


def test_equal_times_span_a_whole_day_of_real_length() -> None:
    start, end = local_span(date(2026, 11, 1), time(0), time(0), NEW_YORK)
    assert (end - start).total_seconds() == 25 * 3600
    start, end = local_span(date(2026, 3, 8), time(0), time(0), NEW_YORK)
    assert (end - start).total_seconds() == 23 * 3600


def test_hour_pieces_follow_local_hours_and_repeat_the_november_hour() -> None:
    start, end = local_span(date(2026, 11, 1), time(0, 30), time(2, 30), NEW_YORK)
    pieces = [
        (f"{local:%H:%M}", length) for local, length in local_hour_pieces(start, end, NEW_YORK)
    ]
    assert pieces == [("00:30", 0.5), ("01:00", 1.0), ("01:00", 1.0), ("02:00", 0.5)]
