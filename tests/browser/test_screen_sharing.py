"""Screen sharing both ways, with consent (issue 15): a patron in the widget on a library's own
site and Lena at the real desk, each in a Chromium of their own with a fake screen to capture
(NOTES.md: ``getDisplayMedia`` then returns a moving 1280x720 test picture, and WebRTC between
two browsers on loopback needs no STUN or TURN).

The desk plays the patron's screen, the patron then plays Lena's; declining and stopping work
on both sides, axe-core finds nothing in any sharing state, and the transcript keeps "screen
sharing started/ended" but nothing of what was shown. Set ``REFLIB_SCREENSHOTS=DIR`` to save
the README's pictures of a shared screen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FrameLocator, Locator, Page, expect, sync_playwright

from chat.models import Conversation, Event, EventKind
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ONLINE,
    TIMEOUT_MS,
    Browsers,
    HostSite,
    Orm,
    Watched,
    axe_violations,
    chromium_problem,
    go_available,
    log_entries,
    log_in,
    messages,
    panel,
)
from tests.live import DaphneProcess
from tests.services import require

pytestmark = pytest.mark.browser

# NOTES.md: the fake capture picker chooses the whole (fake) screen without a dialogue.
CAPTURE_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--auto-select-desktop-capture-source=Entire screen",
]
CAMERA_DENIED = "Permissions policy violation: camera is not allowed in this document."
QUESTION = "The catalogue shows an error when I renew, can I show you?"


@pytest.fixture
def capturing(reflib: DaphneProcess, orm: Orm) -> Iterator[Browsers]:
    """Chromium with a fake screen to share, one context per person; every error is kept."""
    require(chromium_problem())
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS + CAPTURE_ARGS
        )
        opened = Browsers(browser, reflib.http_url)
        try:
            yield opened
        finally:
            browser.close()
    # Chromium checks the camera's policy on every getDisplayMedia call and logs that the
    # panel and the desk deny it, as they should: sharing a screen needs no camera.
    errors = [error for error in opened.errors if error != CAMERA_DENIED]
    assert errors == [], "the pages logged errors"


@pytest.fixture
def unreachable_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server (started after this) makes every share go through a TURN relay that does
    not answer: as for a patron behind a strict firewall with no working relay, no route."""
    monkeypatch.setenv("REFLIB_ICE_SERVERS", "turn:127.0.0.1:9?transport=udp")
    monkeypatch.setenv("REFLIB_TURN_SECRET", "north-wind")
    monkeypatch.setenv("REFLIB_ICE_TRANSPORT_POLICY", "relay")


def screen(target: Locator | FrameLocator, name: str) -> Locator:
    """The shared screen's video, found by its accessible name."""
    return target.get_by_label(f"{name}'s screen", exact=True)


def assert_plays(video: Locator) -> None:
    """The video has a picture and its time moves on: frames are arriving."""
    expect(video).to_be_visible()
    video.evaluate(
        """video => new Promise((resolve, reject) => {
            const started = Date.now();
            const first = video.currentTime;
            const check = () => {
              if (video.videoWidth > 0 && video.videoHeight > 0 && video.currentTime > first + 0.5)
                resolve();
              else if (Date.now() - started > 15000)
                reject(new Error(`not playing: ${video.videoWidth}x${video.videoHeight}, `
                  + `${first} -> ${video.currentTime}`));
              else setTimeout(check, 100);
            };
            check();
        })"""
    )
    size = video.evaluate("video => [video.videoWidth, video.videoHeight]")
    assert size[0] > 0
    assert size[1] > 0


def shoot(page: Page, name: str) -> None:
    folder = os.environ.get("REFLIB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), scale="css")


def answered(
    reflib: DaphneProcess, host_site: HostSite, browsers: Browsers
) -> tuple[Page, Watched, Locator]:
    """Lena at her desk has accepted Pat's chat from the widget: her page, the patron's page
    and the desk's conversation panel."""
    lena = log_in(browsers.new(), "lena")
    lena.set_viewport_size({"width": 1280, "height": 900})
    go_available(lena)
    patron = Watched(browsers.new().new_page())
    patron.page.set_viewport_size({"width": 1100, "height": 820})
    patron.page.goto(host_site.page(reflib.http_url))
    patron.page.get_by_role("button", name=ONLINE).click()
    widget = patron.panel
    widget.get_by_label("Question", exact=True).fill(QUESTION)
    widget.get_by_label("Name (optional)").fill("Pat")
    widget.get_by_role("button", name="Start chat").click()
    expect(widget.get_by_role("status")).to_contain_text("You are number 1 in the queue.")
    expect(widget.get_by_role("button", name="Share my screen")).to_be_hidden()  # nobody yet
    lena.get_by_role("button", name="Accept").click()
    expect(messages(widget).get_by_text("Lena joined the chat.")).to_be_visible()
    return lena, patron, panel(lena)


def test_patron_and_librarian_share_screens_both_ways_only_with_consent(
    reflib: DaphneProcess, host_site: HostSite, capturing: Browsers, orm: Orm
) -> None:
    lena, patron, desk = answered(reflib, host_site, capturing)
    widget = patron.panel
    share_button = widget.get_by_role("button", name="Share my screen")

    # The patron offers; Lena declines: nothing is shown, the patron is told.
    share_button.click()
    expect(widget.get_by_text("Waiting for Lena to accept your screen…")).to_be_visible()
    expect(share_button).to_be_hidden()  # one share at a time
    expect(desk.get_by_text("Pat would like to show you their screen.")).to_be_visible()
    assert axe_violations(patron.panel_frame()) == [], "patron waiting for consent"
    assert axe_violations(lena) == [], "desk asked for consent"
    desk.get_by_role("button", name="Decline").click()
    expect(widget.get_by_text("Lena declined to view your screen.")).to_be_visible()
    expect(desk.locator("video")).to_have_count(0)

    # Asked again, Lena accepts: the desk plays the patron's screen.
    share_button.click()
    desk.get_by_role("button", name="View screen").click()
    assert_plays(screen(desk, "Pat"))
    expect(widget.get_by_text("You are sharing your screen with Lena.")).to_be_visible()
    expect(desk.get_by_text("You are viewing Pat's screen.")).to_be_visible()
    assert axe_violations(patron.panel_frame()) == [], "patron sharing"
    shoot(patron.page, "widget-screen-sharing")
    assert axe_violations(lena) == [], "desk viewing the patron's screen"
    shoot(lena, "desk-screen-shared")

    # Lena stops viewing: the share ends on both sides.
    desk.get_by_role("button", name="Stop viewing").click()
    expect(widget.get_by_text("Screen sharing has ended.")).to_be_visible()
    expect(desk.locator("video")).to_have_count(0)
    expect(log_entries(lena, "Screen sharing started.")).to_have_count(1)
    expect(log_entries(lena, "Screen sharing ended.")).to_have_count(1)
    expect(messages(widget).get_by_text("Screen sharing ended.")).to_have_count(1)
    assert axe_violations(patron.panel_frame()) == [], "patron after the share ended"
    assert axe_violations(lena) == [], "desk after the share ended"

    # Lena offers her screen; the patron accepts and sees it.
    desk.get_by_role("button", name="Share my screen").click()
    expect(desk.get_by_text("Waiting for Pat to accept your screen…")).to_be_visible()
    expect(desk.get_by_role("button", name="Share my screen")).to_be_hidden()
    expect(widget.get_by_text("Lena would like to show you their screen.")).to_be_visible()
    assert axe_violations(patron.panel_frame()) == [], "patron asked for consent"
    shoot(patron.page, "widget-screen-asked")
    widget.get_by_role("button", name="View screen").click()
    assert_plays(screen(widget, "Lena"))
    expect(desk.get_by_text("You are sharing your screen with Pat.")).to_be_visible(
        timeout=TIMEOUT_MS
    )
    assert axe_violations(patron.panel_frame()) == [], "patron viewing Lena's screen"
    assert axe_violations(lena) == [], "desk sharing"
    shoot(patron.page, "widget-screen-shared")

    # The patron stops viewing; then declines Lena's next offer.
    widget.get_by_role("button", name="Stop viewing").click()
    expect(desk.get_by_text("Screen sharing has ended.")).to_be_visible()
    expect(widget.locator("video")).to_have_count(0)
    desk.get_by_role("button", name="Share my screen").click()
    widget.get_by_role("button", name="Decline").click()
    expect(desk.get_by_text("Pat declined to view your screen.")).to_be_visible()
    assert axe_violations(patron.panel_frame()) == [], "patron after declining"

    # The transcript: two shares, each started and ended, and no trace of what was shown.
    expect(log_entries(lena, "Screen sharing ended.")).to_have_count(2)
    stored = orm(Conversation.objects.get)
    shares = orm(
        lambda: [
            (event.data["sharing"], event.data["sharer"])
            for event in Event.objects.filter(conversation=stored, kind=EventKind.STATUS)
            .order_by("seq")
            .filter(data__has_key="sharing")
        ]
    )
    assert shares == [
        ("started", "patron"),
        ("ended", "patron"),
        ("started", "librarian"),
        ("ended", "librarian"),
    ]
    bodies = orm(lambda: " ".join(str(e.data) + e.body for e in Event.objects.all()))
    assert "v=0" not in bodies
    assert "candidate" not in bodies


def test_a_share_that_cannot_connect_says_so_on_both_sides(
    unreachable_relay: None,
    reflib: DaphneProcess,
    host_site: HostSite,
    capturing: Browsers,
    orm: Orm,
) -> None:
    lena, patron, desk = answered(reflib, host_site, capturing)
    widget = patron.panel

    widget.get_by_role("button", name="Share my screen").click()
    desk.get_by_role("button", name="View screen").click()
    expect(desk.get_by_text("Connecting the screen…")).to_be_visible()

    # No black box: after the connection attempt gives up, each side is told in words.
    failed = widget.get_by_role("alert").filter(has_text="could not be connected")
    expect(failed).to_contain_text("try another network", timeout=45_000)
    expect(desk.get_by_role("alert")).to_contain_text("no TURN relay", timeout=TIMEOUT_MS)
    expect(desk.locator("video")).to_have_count(0)
    assert axe_violations(patron.panel_frame()) == [], "patron told the share failed"
    assert axe_violations(lena) == [], "desk told the share failed"
    expect(widget.get_by_role("button", name="Share my screen")).to_be_visible()
    send_text = "It says: renewal limit reached."
    widget.get_by_role("textbox", name="Message").fill(send_text)
    widget.get_by_role("textbox", name="Message").press("Enter")
    expect(log_entries(lena, send_text)).to_have_count(1)  # the chat carries on
