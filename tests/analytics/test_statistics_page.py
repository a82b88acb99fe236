"""The statistics page in the admin: its filters, its tables and the admin frame it is drawn in."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.test import RequestFactory
from django.utils import translation

from analytics import charts
from analytics.models import Category, CategoryKind
from analytics.services import category_rename
from reflib.admin import context_without_sidebar
from reflib.models import Library, Role, ServicePoint
from reflib.services import staff_upsert
from tests.analytics.conftest import category, record
from tests.conftest import Cast

NEW_YORK = ZoneInfo("America/New_York")
PAGE = "/admin/analytics/transaction/statistics/demo/"


def test_the_filters_offer_the_librarys_own_lists(cast: Cast) -> None:
    ServicePoint.objects.create(library=cast.library, slug="science", name="Science desk")
    ServicePoint.objects.create(library=cast.other_library, slug="annex", name="Annex desk")
    phone = category(cast.library, CategoryKind.FORMAT, "phone")
    category_rename(category=phone, label="Telephone")

    response = cast.client_for(cast.manager).get(PAGE)

    assert response.status_code == 200
    page = response.content.decode()
    assert ">---------</option>" in page
    assert "Science desk (demo)" in page
    assert "demo/general" in page
    assert "Annex desk" not in page
    assert ">Telephone</option>" in page
    assert ">Phone</option>" not in page  # retired by the rename


def test_a_question_type_is_counted_under_its_current_name(cast: Cast) -> None:
    technical = category(cast.library, CategoryKind.QUESTION_TYPE, "technical")
    record(cast.library, datetime(2026, 6, 3, 12, tzinfo=NEW_YORK), question_type=technical)
    category_rename(category=technical, label="Technology help")

    response = cast.client_for(cast.manager).get(f"{PAGE}?from=2026-06-01&to=2026-06-30")

    page = response.content.decode()
    assert "Technology help" in page
    assert ">Technical<" not in page


def test_a_library_older_than_its_lists_gets_the_defaults_on_the_page(cast: Cast) -> None:
    # Made without the signal that gives a new library its lists.
    (old,) = Library.objects.bulk_create([Library(slug="old", name="Old Library")])
    manager = staff_upsert(username="otto", library=old, role=Role.MANAGER, display_name="Otto")

    response = cast.client_for(manager).get("/admin/analytics/transaction/statistics/old/")

    assert response.status_code == 200
    assert Category.objects.filter(library=old, kind=CategoryKind.FORMAT).count() == 6
    assert ">SMS</option>" in response.content.decode()


def test_the_page_is_drawn_without_the_navigation_sidebar(cast: Cast) -> None:
    response = cast.client_for(cast.manager).get(PAGE)

    assert 'id="nav-sidebar"' not in response.content.decode()
    assert response.context["is_nav_sidebar_enabled"] is False
    changelist = cast.client_for(cast.manager).get("/admin/analytics/transaction/")
    assert 'id="nav-sidebar"' in changelist.content.decode()


def test_the_context_without_the_sidebar_has_every_key_of_the_admins_own(cast: Cast) -> None:
    request = RequestFactory().get(PAGE)
    request.user = cast.manager

    assert context_without_sidebar(admin.site, request).keys() == (
        admin.site.each_context(request).keys()
    )


def test_a_days_label_follows_the_language_it_is_asked_in() -> None:
    """The volume's day labels are kept per language: a page in Spanish after one in English
    names the day in Spanish."""
    monday = date(2025, 12, 1)

    with translation.override("en"):
        english = charts.day_label(monday, "D j M Y")
    with translation.override("es"):
        spanish = charts.day_label(monday, "D j M Y")
    with translation.override("en"):
        again = charts.day_label(monday, "D j M Y")

    assert english == again == "Mon 1 Dec 2025"
    assert spanish == "lun 1 Dic 2025"
