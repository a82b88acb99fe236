"""The aggregates behind the manager views: local-time buckets and hand-computed service levels."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from analytics.models import CategoryKind, Outcome, Source
from analytics.selectors import (
    Scope,
    category_distribution,
    chat_transactions,
    counts_by,
    heatmap,
    overview,
    percentile,
    read_distribution,
    service_levels,
    short_lists,
    transactions_in,
    volume_by_day,
)
from analytics.services import category_rename
from reflib.models import ServicePoint
from tests.analytics.conftest import category, record
from tests.conftest import Cast

NEW_YORK = ZoneInfo("America/New_York")


def test_heat_map_buckets_by_local_hour_on_both_sides_of_a_dst_change(cast: Cast) -> None:
    # New York moved from EST (UTC-5) to EDT (UTC-4) on Sunday 8 March 2026 at 02:00.
    record(cast.library, datetime(2026, 3, 7, 15, 30, tzinfo=UTC))  # Sat 10:30 EST
    record(cast.library, datetime(2026, 3, 9, 14, 30, tzinfo=UTC))  # Mon 10:30 EDT
    record(cast.library, datetime(2026, 3, 9, 15, 5, tzinfo=UTC))  # Mon 11:05 EDT
    record(cast.library, datetime(2026, 3, 8, 4, 59, tzinfo=UTC))  # Sat 23:59 EST
    record(
        cast.library, datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    )  # Sun 03:30 EDT (01:30 UTC-5 + 1h)

    cells = heatmap(Scope(library=cast.library, start=date(2026, 3, 7), end=date(2026, 3, 9)))

    assert cells == {(5, 10): 1, (0, 10): 1, (0, 11): 1, (5, 23): 1, (6, 3): 1}


def test_heat_map_and_days_use_the_library_zone_not_utc(cast: Cast) -> None:
    # 02:00 UTC on 1 November 2026 is still 31 October, 22:00, in New York (EDT).
    record(cast.library, datetime(2026, 11, 1, 2, 0, tzinfo=UTC))
    # The day of the autumn change has 25 local hours; 01:30 happens twice.
    record(cast.library, datetime(2026, 11, 1, 5, 30, tzinfo=UTC))  # 01:30 EDT
    record(cast.library, datetime(2026, 11, 1, 6, 30, tzinfo=UTC))  # 01:30 EST

    scope = Scope(library=cast.library, start=date(2026, 10, 31), end=date(2026, 11, 1))

    assert heatmap(scope) == {(5, 22): 1, (6, 1): 2}
    assert [(v.day, v.count) for v in volume_by_day(scope)] == [
        (date(2026, 10, 31), 1),
        (date(2026, 11, 1), 2),
    ]


def test_a_date_range_is_inclusive_local_days(cast: Cast) -> None:
    record(cast.library, datetime(2026, 5, 31, 4, 0, tzinfo=UTC))  # 31 May 00:00 EDT: inside
    record(cast.library, datetime(2026, 5, 31, 3, 59, tzinfo=UTC))  # 30 May 23:59 EDT: outside
    record(cast.library, datetime(2026, 6, 2, 3, 59, tzinfo=UTC))  # 1 June 23:59: inside
    record(cast.library, datetime(2026, 6, 2, 4, 0, tzinfo=UTC))  # 2 June: outside
    record(cast.other_library, datetime(2026, 6, 1, 12, 0, tzinfo=UTC))  # another library

    scope = Scope(library=cast.library, start=date(2026, 5, 31), end=date(2026, 6, 1))

    assert transactions_in(scope).count() == 2


def test_volume_by_day_fills_empty_days_and_averages_the_last_seven(cast: Cast) -> None:
    for day, n in [(1, 7), (3, 7), (8, 14)]:
        for _ in range(n):
            record(cast.library, datetime(2026, 6, day, 12, tzinfo=NEW_YORK))

    days = volume_by_day(Scope(library=cast.library, start=date(2026, 6, 1), end=date(2026, 6, 8)))

    assert [d.count for d in days] == [7, 0, 7, 0, 0, 0, 0, 14]
    assert days[0].trend == 7
    assert days[2].trend == pytest.approx(14 / 3)
    assert days[6].trend == 2  # 14 over the seven days 1-7
    assert days[7].trend == 3  # 21 over the seven days 2-8


def june(
    cast: Cast,
    *,
    service_point_id: int | None = None,
    queue_id: int | None = None,
    format_id: int | None = None,
) -> Scope:
    return Scope(
        library=cast.library,
        start=date(2026, 6, 1),
        end=date(2026, 6, 30),
        service_point_id=service_point_id,
        queue_id=queue_id,
        format_id=format_id,
    )


def test_filters_narrow_by_service_point_and_format(cast: Cast) -> None:
    science = ServicePoint.objects.create(library=cast.library, slug="science", name="Science")
    when = datetime(2026, 6, 3, 12, tzinfo=NEW_YORK)
    record(cast.library, when, service_point=science, read_level=1)
    record(cast.library, when, service_point=science, format="phone", read_level=3)
    record(cast.library, when, read_level=1)
    phone = category(cast.library, CategoryKind.FORMAT, "phone")

    assert read_distribution(june(cast)) == {1: 2, 3: 1}
    assert read_distribution(june(cast, service_point_id=science.pk)) == {1: 1, 3: 1}
    assert read_distribution(june(cast, format_id=phone.pk)) == {3: 1}


def chat(cast: Cast, outcome: Outcome, **fields: object) -> None:
    record(
        cast.library,
        datetime(2026, 6, 3, 12, tzinfo=NEW_YORK),
        format="chat",
        outcome=outcome,
        source=Source.CHAT,
        **fields,
    )


def test_service_levels_match_hand_computed_values(cast: Cast) -> None:
    # Five answered chats: waits 10, 20, 30, 40, 100 s; durations 60..300 s; ratings 5, 4, 4.
    for wait, duration, first, rating in [
        (10, 60, 15, 5),
        (20, 120, 25, None),
        (30, 180, None, 4),
        (40, 240, 50, 4),
        (100, 300, 110, None),
    ]:
        chat(
            cast,
            Outcome.ANSWERED,
            wait_s=wait,
            duration_s=duration,
            first_response_s=first,
            rating=rating,
        )
    chat(cast, Outcome.ABANDONED, wait_s=500)  # waited, never answered: not in the wait figures
    chat(cast, Outcome.ABANDONED, wait_s=5)
    chat(cast, Outcome.MISSED, wait_s=600, rolled_over=True)
    chat(cast, Outcome.TICKET, wait_s=95, rolled_over=True)
    chat(cast, Outcome.DECLINED, wait_s=3)
    record(cast.library, datetime(2026, 6, 3, 12, tzinfo=NEW_YORK), read_level=2)  # a desk question

    levels = service_levels(
        Scope(library=cast.library, start=date(2026, 6, 1), end=date(2026, 6, 30))
    )

    assert levels.chats == 10
    assert levels.outcomes == {
        "answered": 5,
        "abandoned": 2,
        "missed": 1,
        "ticket": 1,
        "declined": 1,
    }
    assert levels.abandonment_rate == pytest.approx(0.2)
    assert levels.missed_rate == pytest.approx(0.1)
    assert levels.rollover_share == pytest.approx(0.2)
    # Median of 10, 20, 30, 40, 100 is 30; p90 sits at position 3.6: 40 + 0.6 * 60 = 76.
    assert (levels.wait.count, levels.wait.median, levels.wait.p90) == (5, 30, pytest.approx(76))
    # First responses 15, 25, 50, 110: median 37.5; p90 at position 2.7: 50 + 0.7 * 60 = 92.
    assert levels.first_response.median == pytest.approx(37.5)
    assert levels.first_response.p90 == pytest.approx(92)
    assert (levels.duration.median, levels.duration.p90) == (180, pytest.approx(276))
    assert levels.ratings == {5: 1, 4: 2}
    assert levels.rating_mean == pytest.approx(13 / 3)


def test_service_levels_of_a_quiet_range_are_empty_not_errors(cast: Cast) -> None:
    levels = service_levels(
        Scope(library=cast.library, start=date(2026, 6, 1), end=date(2026, 6, 1))
    )

    assert levels.chats == 0
    assert levels.abandonment_rate is None
    assert levels.wait.median is None


def test_percentile_interpolates_like_postgresql() -> None:
    assert percentile([1.0], 0.9) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([], 0.5) is None


def test_a_scope_refuses_an_end_before_its_start(cast: Cast) -> None:
    with pytest.raises(ValueError, match="before"):
        Scope(library=cast.library, start=date(2026, 6, 2), end=date(2026, 6, 1))


def test_the_pages_two_scans_give_what_the_four_separate_counts_give(cast: Cast) -> None:
    technical = category(cast.library, CategoryKind.QUESTION_TYPE, "technical")
    policy = category(cast.library, CategoryKind.QUESTION_TYPE, "policy")
    renamed = category_rename(category=technical, label="Technology help")
    moments = [
        datetime(2026, 3, 7, 15, 30, tzinfo=UTC),  # Sat 10:30 EST
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # Sun 03:30 EDT
        datetime(2026, 3, 9, 14, 30, tzinfo=UTC),  # Mon 10:30 EDT
        datetime(2026, 3, 9, 14, 45, tzinfo=UTC),  # Mon 10:45 EDT
    ]
    record(cast.library, moments[0], question_type=technical, read_level=1)
    record(cast.library, moments[1], question_type=renamed, read_level=1)
    record(cast.library, moments[2], question_type=policy, read_level=3)
    record(cast.library, moments[3])
    scope = Scope(library=cast.library, start=date(2026, 3, 6), end=date(2026, 3, 9))

    seen = overview(scope)

    assert seen.days == volume_by_day(scope)
    assert seen.heatmap == heatmap(scope) == {(5, 10): 1, (6, 3): 1, (0, 10): 2}
    assert seen.read_levels == read_distribution(scope) == {1: 2, 3: 1, None: 1}
    assert seen.question_types == category_distribution(scope, kind=CategoryKind.QUESTION_TYPE)
    assert [(c.category_id, c.label, c.count) for c in seen.question_types] == [
        (renamed.pk, "Technology help", 2),
        (None, "", 1),
        (policy.pk, "Policy", 1),
    ]


def test_counts_by_each_filter_agree_with_the_transactions_the_scope_selects(cast: Cast) -> None:
    science = ServicePoint.objects.create(library=cast.library, slug="science", name="Science")
    when = datetime(2026, 6, 3, 12, tzinfo=NEW_YORK)
    record(cast.library, when, service_point=science, read_level=1, queue=cast.queue)
    record(cast.library, when, service_point=science, format="phone", read_level=3)
    record(cast.library, when, read_level=2, queue=cast.queue)
    record(cast.other_library, when, read_level=1)
    phone = category(cast.library, CategoryKind.FORMAT, "phone")
    calls = category_rename(category=phone, label="Telephone")
    record(cast.library, when, format="phone", read_level=2)  # the new version
    scopes = [
        june(cast),
        june(cast, service_point_id=science.pk),
        june(cast, queue_id=cast.queue.pk),
        june(cast, format_id=calls.pk),  # the renamed format counts its old version too
        june(cast, service_point_id=science.pk, queue_id=cast.queue.pk, format_id=calls.pk),
    ]

    for scope in scopes:
        expected: dict[tuple[object, ...], int] = {}
        for level, day in transactions_in(scope).values_list("read_level", "local_date"):
            expected[(level, day)] = expected.get((level, day), 0) + 1
        assert counts_by(scope, "read_level", "local_date") == expected
    assert counts_by(scopes[3], "read_level") == {(3,): 1, (2,): 1}
    assert counts_by(scopes[4], "read_level") == {}


def test_the_short_lists_map_every_version_to_its_current_entry(cast: Cast) -> None:
    technical = category(cast.library, CategoryKind.QUESTION_TYPE, "technical")
    renamed = category_rename(category=technical, label="Technology help")
    ServicePoint.objects.create(library=cast.library, slug="science", name="Science")
    ServicePoint.objects.create(library=cast.library, slug="art", name="Art")
    ServicePoint.objects.create(library=cast.other_library, slug="annex", name="Annex")
    lists = short_lists(cast.library)

    current = lists.current(CategoryKind.QUESTION_TYPE)
    assert current[technical.pk] == current[renamed.pk] == (renamed.pk, "Technology help")
    assert "Technical" not in [entry.label for entry in lists.active(CategoryKind.QUESTION_TYPE)]
    assert [entry.slug for entry in lists.active(CategoryKind.FORMAT)][:2] == ["chat", "desk"]
    assert (CategoryKind.FORMAT, "chat") in lists.category_slugs
    assert [str(point) for point in lists.service_points] == ["Art (demo)", "Science (demo)"]
    assert [str(queue) for queue in lists.queues] == ["demo/general"]
    record(cast.library, datetime(2026, 6, 3, 12, tzinfo=NEW_YORK), question_type=technical)
    seen = overview(june(cast), question_types=current)
    assert [(c.category_id, c.label, c.count) for c in seen.question_types] == [
        (renamed.pk, "Technology help", 1)
    ]


def test_service_levels_count_the_chats_the_scope_selects(cast: Cast) -> None:
    science = ServicePoint.objects.create(library=cast.library, slug="science", name="Science")
    chat(cast, Outcome.ANSWERED, wait_s=10, queue=cast.queue)
    chat(cast, Outcome.MISSED, service_point=science)
    chat(cast, Outcome.ABANDONED, queue=cast.queue, service_point=science)
    record(cast.library, datetime(2026, 6, 3, 12, tzinfo=NEW_YORK), format="phone")
    chat_format = category(cast.library, CategoryKind.FORMAT, "chat")
    phone = category(cast.library, CategoryKind.FORMAT, "phone")

    for scope, chats in [
        (june(cast), 3),
        (june(cast, queue_id=cast.queue.pk), 2),
        (june(cast, service_point_id=science.pk), 2),
        (june(cast, service_point_id=science.pk, queue_id=cast.queue.pk), 1),
        (june(cast, format_id=chat_format.pk), 3),
        (june(cast, format_id=phone.pk), 0),
    ]:
        levels = service_levels(scope)
        assert levels.chats == chat_transactions(scope).count() == chats
        assert sum(levels.outcomes.values()) == chats
