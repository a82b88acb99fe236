"""The staffing pages in a real browser against a real daphne process.

Every librarian and manager page opens with zero axe-core violations, and a swap goes from the
offer through a colleague's claim to the manager's approval by clicking through the pages,
with the e-mails of each step caught by an SMTP server of the test's own (in production mode
a Celery worker of the test's own sends them). Set ``REFLIB_SCREENSHOTS=DIR`` to save the
screenshots the README shows (the docs use docs/screenshots).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from time import monotonic, sleep
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from chat import services as chat_services
from chat.models import Presence, PresenceState
from chat.selectors import presence_of
from reflib.models import Role
from reflib.services import staff_upsert
from staffing import services
from staffing.models import (
    Assignment,
    Availability,
    ShiftTemplate,
    StaffingPolicy,
    SwapOffer,
    SwapStatus,
    Weekday,
)
from staffing.wallclock import local_instant
from tests import live
from tests.browser.conftest import Browsers, HostSite, Orm
from tests.browser.conftest import log_in as desk_log_in
from tests.chat.roster import on_shift, points
from tests.conftest import PASSWORD, Cast
from tests.live import ROOT, DaphneProcess, free_port

pytestmark = pytest.mark.browser

NY = ZoneInfo("America/New_York")
MAIL_WAIT_S = 20.0


# --- e-mail, caught ----------


class Inbox:
    """An SMTP server of the test's own; every message it receives is kept."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]

    def wait_for(self, prefix: str) -> Message:
        deadline = monotonic() + MAIL_WAIT_S
        while monotonic() < deadline:
            for message in self.messages:
                if str(message["Subject"]).startswith(prefix):
                    return message
            sleep(0.1)
        raise AssertionError(f"no e-mail {prefix!r}; received {self.subjects()}")


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """Before the server starts: its e-mail goes to this test's SMTP server."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_PORT", str(port))
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def mail_worker(inbox: Inbox, reflib: DaphneProcess) -> Iterator[None]:
    """In production mode the server queues its e-mails for Celery: a worker sends them."""
    if not settings.REDIS_URL:
        yield  # embedded mode: the server runs its tasks itself
        return
    env = {**reflib.env, "DATABASE_URL": live.test_database_url()}
    log = reflib.log.with_suffix(".worker.log")
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "reflib", "worker", "--pool=solo", "-l", "info"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        log.unlink(missing_ok=True)


# --- the roster the pages show ----------


def next_monday() -> datetime:
    today = timezone.now().astimezone(NY).date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime.combine(monday, datetime.min.time(), tzinfo=NY)


def at(day: datetime, hour: int) -> datetime:
    return local_instant(day.date(), time(hour), NY)


def roster(cast: Cast) -> dict[str, Any]:
    """A week with something on every page: shifts, a conflict, a gap, availability, time
    off, an offered and a claimed swap, an open shift and a template."""
    desks = points(cast)
    for user, email in [(cast.librarian, "lena@example.org"), (cast.manager, "mara@example.org")]:
        user.email = email
        user.save(update_fields=["email"])
    cleo = staff_upsert(
        username="cleo",
        library=cast.library,
        role=Role.LIBRARIAN,
        display_name="Cleo",
        password=PASSWORD,
        email="cleo@example.org",
    )
    monday = next_monday()
    now = timezone.now()
    on_shift(cast.librarian, desks.chat, now - timedelta(hours=1), hours=3)
    mine = on_shift(cast.librarian, desks.main, at(monday, 13))
    on_shift(cleo, desks.main, at(monday + timedelta(days=1), 9))
    on_shift(cleo, desks.chat, at(monday + timedelta(days=1), 10), hours=2)  # double booking
    gap = on_shift(None, desks.chat, at(monday + timedelta(days=2), 13))  # nobody: a gap
    gap.min_staff = 2
    gap.save(update_fields=["min_staff"])
    for weekday in range(5):
        Availability.objects.create(
            library=cast.library,
            user=cleo,
            weekday=weekday,
            start_time=time(8),
            end_time=time(18),
        )
    services.shift_template_save(
        template=ShiftTemplate(
            library=cast.library,
            service_point=desks.main,
            weekday=Weekday.SATURDAY,
            start_time=time(10),
            end_time=time(14),
        )
    )
    services.time_off_request(
        user=cleo,
        library=cast.library,
        start=at(monday + timedelta(days=14), 0),
        end=at(monday + timedelta(days=16), 0),
        reason="Conference",
    )
    chat_services.presence_set(user=cast.librarian, state=PresenceState.AVAILABLE)
    return {
        "cleo": cleo,
        "assignment": Assignment.objects.get(shift=mine, user=cast.librarian).pk,
        "monday": monday.date(),
    }


def log_in(context: BrowserContext, username: str, path: str = "/staffing/") -> Page:
    page = context.new_page()
    page.goto(f"/accounts/login/?next={path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    return page


def assert_no_axe_violations(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("REFLIB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


# --- the tests ----------


def test_every_librarian_and_manager_page_has_no_accessibility_violations(
    browsers: Browsers, orm: Orm, cast: Cast
) -> None:
    data = orm(roster, cast)
    week = data["monday"].isoformat()
    librarian_pages = [
        "/staffing/",
        "/staffing/open/",
        "/staffing/availability/",
        "/staffing/time-off/",
    ]
    manager_pages = [
        f"/staffing/demo/week/?week={week}",
        "/staffing/demo/approvals/",
        f"/staffing/demo/coverage/?week={week}",
        f"/staffing/demo/coverage/?week={week}&propose=1",
        "/staffing/demo/templates/",
    ]

    lena = log_in(browsers.new(), "lena")
    lena.get_by_role("button", name="Create my calendar address").click()
    expect(lena.get_by_label("Calendar address")).to_have_value(re.compile(r"\.ics$"))
    for path in librarian_pages:
        lena.goto(path)
        assert_no_axe_violations(lena)
    lena.goto("/staffing/")
    screenshot(lena, "staffing-my-shifts.png")

    mara = log_in(browsers.new(), "mara")
    for path in manager_pages:
        mara.goto(path)
        assert_no_axe_violations(mara)
    mara.goto(f"/staffing/demo/week/?week={week}")
    expect(mara.get_by_text("Conflict: Already on another shift").first).to_be_visible()
    expect(mara.get_by_text("Open: 2 more needed")).to_be_visible()
    mara.set_viewport_size({"width": 1400, "height": 900})
    screenshot(mara, "staffing-week.png")
    # Printed: the roster and its marks, without the site's navigation and buttons.
    mara.emulate_media(media="print")
    expect(mara.get_by_role("navigation", name="Staffing")).to_be_hidden()
    expect(mara.get_by_role("link", name="Next week →")).to_be_hidden()
    expect(mara.get_by_text("Conflict: Already on another shift").first).to_be_visible()
    mara.emulate_media(media="screen")
    mara.get_by_role("link", name=re.compile("^13:00")).first.click()
    expect(mara.get_by_role("heading", name="Assign someone")).to_be_visible()
    assert_no_axe_violations(mara)


def test_a_swap_goes_from_offer_to_claim_to_approval_through_the_pages_with_its_e_mails(
    inbox: Inbox, browsers: Browsers, mail_worker: None, orm: Orm, cast: Cast
) -> None:
    data = orm(roster, cast)
    orm(StaffingPolicy.objects.update_or_create, library=cast.library)

    lena = log_in(browsers.new(), "lena")
    row = (
        lena.get_by_role("row")
        .filter(has_text="Main desk")
        .filter(has=lena.get_by_role("button", name="Offer this shift"))
    )
    row.get_by_label("Note for colleagues").fill("Dentist appointment")
    row.get_by_role("button", name="Offer this shift").click()
    expect(lena.get_by_role("status")).to_have_text("Your shift is offered to your colleagues.")
    offered = inbox.wait_for("Shift offered")
    assert "cleo@example.org" in str(offered["To"])

    cleo = log_in(browsers.new(), "cleo", "/staffing/open/")
    offers = cleo.get_by_role("region", name="Shifts colleagues offer")
    expect(offers).to_contain_text("Dentist appointment")
    offers.get_by_role("button", name=re.compile("^Claim the shift")).click()
    expect(cleo.get_by_role("status")).to_have_text("Claimed: a manager approves the swap.")
    claimed = inbox.wait_for("Shift claimed, awaiting approval")
    assert "mara@example.org" in str(claimed["To"])

    mara = log_in(browsers.new(), "mara", "/staffing/demo/approvals/")
    swaps = mara.get_by_role("region", name="Swaps")
    expect(swaps).to_contain_text("Cleo takes over from Lena")
    swaps.get_by_role("button", name="Approve").click()
    expect(mara.get_by_role("status")).to_have_text("Approved.")
    expect(mara.get_by_role("region", name="Swaps")).to_contain_text("No swaps awaiting approval.")
    swapped = inbox.wait_for("Shift swapped")
    for address in ("lena@example.org", "cleo@example.org", "mara@example.org"):
        assert address in str(swapped["To"])

    offer = orm(SwapOffer.objects.get, assignment_id=data["assignment"])
    assert offer.status == SwapStatus.APPROVED
    shift_id = orm(Assignment.objects.get, pk=data["assignment"]).shift_id
    holder = orm(Assignment.objects.active().get, shift_id=shift_id).user_id
    assert holder == data["cleo"].pk


def test_the_desk_warns_when_my_shift_ends_and_i_can_say_i_stay(
    browsers: Browsers, orm: Orm, cast: Cast
) -> None:
    end = timezone.now() + timedelta(seconds=10)
    orm(lambda: on_shift(cast.librarian, points(cast).chat, end - timedelta(hours=2), hours=2))
    # Lena went available during her shift (going available after it would be covering).
    orm(chat_services.presence_set, user=cast.librarian, state=PresenceState.AVAILABLE)
    page = desk_log_in(browsers.new(), "lena")
    shift = page.locator("#shift")
    expect(page.get_by_role("radio", name="Available")).to_be_checked()

    # The card was drawn during the shift (on a slow machine, maybe after it): either way
    # the warning comes without reloading the page.
    warning = page.get_by_role("alert").filter(has_text="Your shift has ended.")
    expect(warning).to_be_visible(timeout=20_000)
    assert_no_axe_violations(page)
    screenshot(page, "desk-shift-ended.png")
    warning.get_by_role("button", name="I'm staying").click()

    expect(shift).to_contain_text("you said you are staying")
    expect(warning).to_have_count(0)
    later = end + timedelta(hours=1)
    orm(lambda: Presence.objects.filter(user=cast.librarian).update(seen_at=later))
    assert orm(chat_services.sweep, now=later).shifts_ended == 0
    assert orm(presence_of, cast.librarian) == PresenceState.AVAILABLE


def test_the_widget_of_an_offline_queue_says_when_the_roster_opens_it(
    browsers: Browsers, orm: Orm, cast: Cast, host_site: HostSite, reflib: DaphneProcess
) -> None:
    tomorrow = (timezone.now().astimezone(NY) + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    orm(lambda: on_shift(cast.librarian, points(cast).chat, tomorrow))
    # A patron in the library's town: the browser shows local time.
    context = browsers.browser.new_context(locale="en-US", timezone_id="America/New_York")
    browsers.opened.append(context)
    page = context.new_page()
    page.goto(host_site.page(reflib.http_url))

    launcher = page.get_by_role(
        "button", name=f"Ask a librarian (offline, opens {tomorrow:%a} 9:00 AM)"
    )
    launcher.click()

    panel = page.frame_locator("reflib-chat iframe")
    expect(panel.get_by_role("heading", name="Leave a question")).to_be_visible()
    expected = f"Chat opens {tomorrow:%-m/%-d/%Y}, 9:00:00\N{NARROW NO-BREAK SPACE}AM."
    expect(panel.get_by_text("Chat opens")).to_contain_text(expected)
