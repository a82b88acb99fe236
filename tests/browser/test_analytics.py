"""The tally at the desk and the managers' statistics in a real browser (SPEC §3).

Set ``REFLIB_SCREENSHOTS=DIR`` to save screenshots of the heat map and the service levels
into DIR (the README uses docs/screenshots).
"""

from __future__ import annotations

import os
import re
from datetime import time, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from analytics.models import CategoryKind, Outcome, Source, Transaction
from reflib.models import ServicePoint
from tests.analytics.conftest import category, record
from tests.browser.conftest import TIMEOUT_MS, Browsers, Orm, log_in
from tests.browser.test_desk import assert_no_axe_violations
from tests.conftest import Cast
from tests.staffing.conftest import make_shift

pytestmark = pytest.mark.browser


def count_of(orm: Orm) -> int:
    return orm(Transaction.objects.count)


def test_the_tally_counts_with_one_click_undoes_and_answers_to_its_shortcut(
    cast: Cast, browsers: Browsers, orm: Orm
) -> None:
    page = log_in(browsers.new(), cast.librarian.username)
    tally = page.locator("#tally")
    # The card loads after the desk; its first render (a fresh server) may take a moment.
    expect(tally.get_by_role("radio", name=re.compile(r"^2 — Minimal knowledge"))).to_be_visible(
        timeout=TIMEOUT_MS
    )
    expect(tally.get_by_role("radio", name="Desk")).to_be_checked()

    tally.get_by_role("radio", name=re.compile(r"^2 — Minimal knowledge")).check()
    tally.get_by_role("button", name="Count this question").click()
    expect(tally.get_by_role("status")).to_contain_text("Counted: Desk, READ 2")
    assert count_of(orm) == 1
    assert_no_axe_violations(page)

    tally.get_by_role("button", name=re.compile(r"^Undo")).click()
    expect(tally.get_by_role("status")).to_contain_text("Taken back")
    assert count_of(orm) == 0

    tally.get_by_role("radio", name="Phone").check()
    page.keyboard.press("Alt+Shift+T")
    expect(tally.get_by_role("status")).to_contain_text("Counted: Phone, READ 2")
    assert count_of(orm) == 1
    expect(tally.get_by_role("button", name=re.compile(r"^Undo"))).to_be_hidden(timeout=15_000)

    # The format stays chosen on the next visit: the common case is one click.
    page.reload()
    expect(page.locator("#tally").get_by_role("radio", name="Phone")).to_be_checked()


def _history(cast: Cast) -> None:
    zone = cast.library.zone
    today = timezone.now().astimezone(zone).replace(minute=10, second=0, microsecond=0)
    desk = ServicePoint.objects.create(library=cast.library, slug="desk", name="Desk")
    for day in range(1, 15):
        make_shift(
            desk, (today - timedelta(days=day)).date(), time(9), time(13), staff=(cast.librarian,)
        )
    for day in range(1, 15):
        for hour in (9, 10, 11, 14, 15, 16):
            when = (today - timedelta(days=day)).replace(hour=hour)
            for n in range((hour + day) % 4 + 1):
                record(cast.library, when + timedelta(minutes=n), read_level=1 + n % 3)
        record(
            cast.library,
            (today - timedelta(days=day)).replace(hour=13),
            format="chat",
            source=Source.CHAT,
            outcome=Outcome.ANSWERED if day % 5 else Outcome.ABANDONED,
            wait_s=20 + day * 7,
            first_response_s=30 + day * 7,
            duration_s=300 + day * 20,
            rating=5 if day % 3 else 4,
            question_type=category(cast.library, CategoryKind.QUESTION_TYPE, "reference"),
        )


def screenshot(page: Page, selector: str, name: str) -> None:
    folder = os.environ.get("REFLIB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.locator(selector).screenshot(path=str(Path(folder) / name))


def test_the_statistics_pages_are_accessible_and_show_the_numbers(
    cast: Cast, browsers: Browsers, orm: Orm
) -> None:
    orm(_history, cast)
    page = log_in(browsers.new(), cast.manager.username)

    page.goto("/admin/analytics/transaction/")
    page.get_by_role("link", name="Statistics: Demo Public Library").click()
    expect(page.get_by_role("heading", name="Hour of the week")).to_be_visible()
    expect(page.get_by_role("table").filter(has_text="Mon")).to_have_count(1)
    expect(page.locator("#service-levels")).to_contain_text("Wait (answered chats)")
    coverage = page.locator("#coverage")
    expect(coverage.get_by_role("heading", name="Under-staffed hours")).to_be_visible()
    expect(coverage.get_by_text(re.compile(r"^▲ \w{3} 1[456]:00"))).not_to_have_count(0)
    coverage.get_by_text("Every hour of the week").click()
    assert_no_axe_violations(page)
    screenshot(page, ".stats-section:has(#heat-heading)", "analytics-heatmap.png")
    screenshot(page, "#service-levels", "analytics-service-levels.png")

    page.get_by_label("Format").select_option(label="Chat")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".stats-lead")).to_contain_text("14 transactions")

    page.get_by_role("link", name="Import transactions from CSV").click()
    expect(page.get_by_label("CSV file")).to_be_visible()
    assert_no_axe_violations(page)
