"""Category lists are versioned: renaming or merging maps old records, it never rewrites them."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from analytics.models import Category, CategoryChange, CategoryKind, ChangeAction
from analytics.selectors import Scope, category_distribution
from analytics.services import category_add, category_current, category_merge, category_rename
from reflib.services import library_upsert
from tests.analytics.conftest import category, record
from tests.conftest import Cast

NEW_YORK = ZoneInfo("America/New_York")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 5, day, hour, tzinfo=NEW_YORK)


def may(cast: Cast) -> Scope:
    return Scope(library=cast.library, start=date(2026, 5, 1), end=date(2026, 5, 31))


def test_renaming_a_question_type_keeps_old_records_and_counts_them_with_the_new_ones(
    cast: Cast,
) -> None:
    technical = category(cast.library, CategoryKind.QUESTION_TYPE, "technical")
    old = record(cast.library, at(4), question_type=technical)

    renamed = category_rename(category=technical, label="Technology help")
    record(cast.library, at(5), question_type=renamed)

    old.refresh_from_db()
    assert old.question_type == technical  # what was chosen then
    assert old.question_type.label == "Technical"
    counts = category_distribution(may(cast), kind=CategoryKind.QUESTION_TYPE)
    assert [(c.category_id, c.label, c.count) for c in counts] == [
        (renamed.pk, "Technology help", 2)
    ]
    assert (
        category_current(library=cast.library, kind=CategoryKind.QUESTION_TYPE, slug="technical")
        == renamed
    )


def test_merging_entries_counts_their_records_together_and_a_later_rename_follows(
    cast: Cast,
) -> None:
    policy = category(cast.library, CategoryKind.QUESTION_TYPE, "policy")
    other = category(cast.library, CategoryKind.QUESTION_TYPE, "other")
    directional = category(cast.library, CategoryKind.QUESTION_TYPE, "directional")
    record(cast.library, at(4), question_type=policy)
    record(cast.library, at(4), question_type=other)
    record(cast.library, at(4), question_type=other)
    record(cast.library, at(6), question_type=directional)

    category_merge(sources=[policy], into=other)
    latest = category_rename(category=other, label="General")

    counts = category_distribution(may(cast), kind=CategoryKind.QUESTION_TYPE)
    assert [(c.label, c.count) for c in counts] == [("General", 3), ("Directional", 1)]
    assert {c.category_id for c in counts} == {latest.pk, directional.pk}


def test_every_change_is_a_new_version_of_its_list(cast: Cast) -> None:
    category(cast.library, CategoryKind.QUESTION_TYPE, "other")  # the defaults: versions 1-6
    research = category_current(
        library=cast.library, kind=CategoryKind.QUESTION_TYPE, slug="research"
    )
    assert research is not None

    renamed = category_rename(category=research, label="In-depth research")
    added = category_add(
        library=cast.library, kind=CategoryKind.QUESTION_TYPE, label="Local history"
    )
    version = category_merge(sources=[added], into=renamed)

    changes = list(
        CategoryChange.objects.filter(library=cast.library, kind=CategoryKind.QUESTION_TYPE)
        .order_by("version")
        .values_list("version", "action")
    )
    assert changes[-3:] == [
        (7, ChangeAction.RENAME),
        (8, ChangeAction.ADD),
        (9, ChangeAction.MERGE),
    ]
    assert version == 9
    research.refresh_from_db()
    assert (research.introduced_in, research.retired_in) == (5, 7)
    assert renamed.introduced_in == 7


def test_a_retired_entry_cannot_be_renamed_and_lists_do_not_mix(cast: Cast) -> None:
    technical = category(cast.library, CategoryKind.QUESTION_TYPE, "technical")
    category_rename(category=technical, label="Tech")
    technical.refresh_from_db()
    with pytest.raises(ValidationError):
        category_rename(category=technical, label="Again")

    desk = category(cast.library, CategoryKind.FORMAT, "desk")
    with pytest.raises(ValidationError):
        category_merge(
            sources=[desk], into=category(cast.library, CategoryKind.QUESTION_TYPE, "other")
        )
    foreign = category(cast.other_library, CategoryKind.QUESTION_TYPE, "other")
    with pytest.raises(ValidationError):
        category_merge(
            sources=[foreign], into=category(cast.library, CategoryKind.QUESTION_TYPE, "other")
        )


def test_renaming_and_merging_in_the_admin_go_through_the_versioning(cast: Cast) -> None:
    client = cast.client_for(cast.manager)
    technical = category(cast.library, CategoryKind.QUESTION_TYPE, "technical")
    other = category(cast.library, CategoryKind.QUESTION_TYPE, "other")
    url = f"/admin/analytics/category/{technical.pk}/change/"

    renamed = client.post(url, {"label": "Technology help", "position": 2, "merge_into": ""})
    assert renamed.status_code == 302
    technical.refresh_from_db()
    assert technical.label == "Technical"  # the old version stays as it was
    assert technical.current is not None
    assert technical.current.label == "Technology help"

    current = technical.current
    merged = client.post(
        f"/admin/analytics/category/{current.pk}/change/",
        {"label": current.label, "position": 2, "merge_into": other.pk},
    )
    assert merged.status_code == 302
    technical.refresh_from_db()
    assert technical.current == other
    assert client.post(url, {"label": "Again", "position": 2}).status_code == 403


def test_another_librarys_manager_cannot_see_or_change_the_lists(
    cast: Cast, other_manager: User
) -> None:
    technical = category(cast.library, CategoryKind.QUESTION_TYPE, "technical")
    client = cast.client_for(other_manager)

    response = client.post(
        f"/admin/analytics/category/{technical.pk}/change/", {"label": "Hijacked", "position": 1}
    )

    assert response.status_code in (302, 404)
    technical.refresh_from_db()
    assert technical.current == technical
    assert technical.label == "Technical"


def test_a_new_library_starts_with_its_formats_and_question_types(db: None) -> None:
    library = library_upsert(slug="fresh", name="Fresh Library", timezone="Europe/Madrid")

    lists = Category.objects.filter(library=library).values_list("kind", "slug")

    assert (CategoryKind.FORMAT, "chat") in lists
    assert (CategoryKind.QUESTION_TYPE, "research") in lists
    assert Category.objects.filter(library=library).count() == 12
