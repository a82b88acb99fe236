"""The widget on a phone (SPEC §1.1): a 390 by 844 touch screen, as most patrons ask from.

Open, the panel is the whole visible viewport with its own close control; the launcher hides
and the page behind does not scroll. An on-screen keyboard shrinks the visual viewport but not
the layout viewport (iOS Safari, Chrome on Android since 108): headless Chromium has no such
keyboard, so the page's ``visualViewport`` is wrapped to report a keyboard's height less, and
the message box must stay in view.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, FrameLocator, Locator, Page, ViewportSize, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import (
    OFFLINE,
    ONLINE,
    PANEL_TITLE,
    TIMEOUT_MS,
    Desk,
    HostSite,
    Watched,
    axe_violations,
    messages,
    watching,
)
from tests.conftest import Cast
from tests.live import DaphneProcess

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}
KEYBOARD_HEIGHT = 336
# Before any script of the page: a visualViewport that a test can shrink as a keyboard would.
ON_SCREEN_KEYBOARD = """(() => {
    const real = window.visualViewport;
    if (!real || window !== window.top) return;
    const keyboard = { height: 0, top: 0 };
    const fake = new EventTarget();
    for (const name of ["width", "offsetLeft", "pageLeft", "pageTop", "scale"]) {
        Object.defineProperty(fake, name, { get: () => real[name] });
    }
    Object.defineProperty(fake, "height", { get: () => real.height - keyboard.height });
    Object.defineProperty(fake, "offsetTop", { get: () => real.offsetTop + keyboard.top });
    for (const type of ["resize", "scroll"]) {
        real.addEventListener(type, () => fake.dispatchEvent(new Event(type)));
    }
    Object.defineProperty(window, "visualViewport", { value: fake });
    // iOS also moves the visual viewport down the page (offsetTop) to show a focused field.
    window.testKeyboard = ([height, top]) => {
        Object.assign(keyboard, { height, top });
        fake.dispatchEvent(new Event("resize"));
        fake.dispatchEvent(new Event("scroll"));
    };
})();"""


@pytest.fixture
def phone(browser: Browser, reflib: DaphneProcess) -> Iterator[Watched]:
    """A phone-sized touch screen (iPhone 13 emulation), after reflib so it closes first."""
    context = browser.new_context(
        locale="en-US",
        viewport=PHONE,
        screen={"width": PHONE["width"], "height": PHONE["height"]},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        with watching(context.new_page()) as watched:
            yield watched
    finally:
        context.close()


def box(locator: Locator) -> dict[str, int]:
    found = locator.bounding_box()
    assert found is not None, locator
    return {
        "x": round(found["x"]),
        "y": round(found["y"]),
        "width": round(found["width"]),
        "height": round(found["height"]),
    }


FRAME_AT = """([top, height]) => {
    const frame = document.querySelector("reflib-chat").shadowRoot.querySelector("iframe");
    const found = frame.getBoundingClientRect();
    return Math.round(found.top) === top && Math.round(found.height) === height;
}"""


def assert_fills_the_screen(page: Page, height: int = PHONE["height"], top: int = 0) -> None:
    """The panel covers exactly the visible part of the page: ``height`` from ``top``."""
    frame = page.get_by_title(PANEL_TITLE)
    expect(frame).to_be_visible()
    # The visual viewport tells the loader of a change a moment after it happens.
    page.wait_for_function(FRAME_AT, arg=[top, height], timeout=TIMEOUT_MS)
    assert box(frame) == {"x": 0, "y": top, "width": PHONE["width"], "height": height}


def assert_within(locator: Locator, bottom: int, top: int = 0) -> None:
    found = box(locator)
    assert found["y"] >= top, (found, top)
    assert found["y"] + found["height"] <= bottom, (found, bottom)


def page_scrolls(page: Page) -> bool:
    """Whether a swipe up in the middle of the screen scrolls the library's page."""
    session = page.context.new_cdp_session(page)
    gesture = {"x": 195, "y": 600, "yDistance": -400}
    session.send("Input.synthesizeScrollGesture", gesture)
    session.detach()
    try:
        page.wait_for_function("() => scrollY > 0", timeout=1500)
    except PlaywrightTimeoutError:
        return False
    page.evaluate("scrollTo(0, 0)")
    return True


def page_overflow(page: Page) -> str:
    return str(page.evaluate("() => getComputedStyle(document.documentElement).overflowY"))


def tap_open(page: Page, name: re.Pattern[str]) -> FrameLocator:
    page.get_by_role("button", name=name).tap()
    return page.frame_locator("reflib-chat iframe")


def test_a_whole_conversation_on_a_phone(
    phone: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk, cast: Cast
) -> None:
    page = phone.page
    page.add_init_script(ON_SCREEN_KEYBOARD)
    page.goto(host_site.page(reflib.http_url, long=True))
    launcher = page.get_by_role("button", name=ONLINE)
    expect(launcher).to_be_visible()
    assert axe_violations(page, iframes=False) == []
    assert page_scrolls(page), "the library's page scrolls while the chat is closed"

    panel = tap_open(page, ONLINE)
    expect(panel.get_by_label("Question", exact=True)).to_be_focused()
    assert_fills_the_screen(page)
    expect(launcher).to_be_hidden()
    assert not page_scrolls(page), "the page behind the panel does not scroll"
    # Some phone browsers pass a swipe on to the page behind a frame: it cannot scroll.
    assert page_overflow(page) == "hidden"
    close = panel.get_by_role("button", name="Close the chat window")
    assert_within(close, PHONE["height"])
    assert box(close)["width"] >= 44
    assert axe_violations(phone.panel_frame()) == [], "pre-chat"

    panel.get_by_label("Question", exact=True).fill("Is the museum pass available this week?")
    panel.get_by_role("button", name="Start chat").tap()
    expect(panel.get_by_role("status")).to_contain_text("You are number 1 in the queue.")
    conversation = desk.next_waiting()
    desk.accept(conversation)
    desk.say(conversation, "Yes, for Thursday and Friday.")
    log = messages(panel)
    expect(log.get_by_text("Yes, for Thursday and Friday.")).to_be_visible()

    message = panel.get_by_role("textbox", name="Message")
    message.tap()
    # The on-screen keyboard takes the lower part of the screen; the page's layout stays.
    keyboard_up = PHONE["height"] - KEYBOARD_HEIGHT
    send_button = panel.get_by_role("button", name="Send", exact=True)
    page.evaluate("keyboard => testKeyboard(keyboard)", [KEYBOARD_HEIGHT, 0])
    assert_fills_the_screen(page, keyboard_up)
    assert page.evaluate("() => innerHeight") == PHONE["height"]
    assert_within(message, keyboard_up)
    assert_within(send_button, keyboard_up)
    # And where the browser also scrolls the visible part down the page.
    page.evaluate("keyboard => testKeyboard(keyboard)", [KEYBOARD_HEIGHT, 120])
    assert_fills_the_screen(page, keyboard_up, top=120)
    assert_within(message, 120 + keyboard_up, top=120)
    assert_within(send_button, 120 + keyboard_up, top=120)
    message.fill("Thursday, please.")
    panel.get_by_role("button", name="Send", exact=True).tap()
    desk.message_from_patron(conversation, "Thursday, please.")
    page.evaluate("keyboard => testKeyboard(keyboard)", [0, 0])
    assert_fills_the_screen(page)
    expect(log.get_by_text("Sent", exact=True)).to_have_count(2)
    assert axe_violations(phone.panel_frame()) == [], "chatting"
    phone.shoot("phone-chatting")

    panel.get_by_role("button", name="End chat").tap()
    expect(panel.get_by_role("heading", name="The chat has ended")).to_be_visible()
    panel.get_by_text("5", exact=True).tap()
    expect(panel.get_by_role("radio", name="5")).to_be_checked()
    send_rating = panel.get_by_role("button", name="Send rating")
    send_rating.tap()
    expect(panel.get_by_text("Thank you for your feedback.")).to_be_visible()
    assert axe_violations(phone.panel_frame()) == [], "ended"
    phone.shoot("phone-ended")

    close.tap()
    expect(page.get_by_title(PANEL_TITLE)).to_be_hidden()
    expect(launcher).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    assert page_scrolls(page), "closed again, the page scrolls"
    assert page_overflow(page) == "visible"


def test_the_offline_form_fits_a_phone_and_its_button_is_reachable(
    phone: Watched, reflib: DaphneProcess, host_site: HostSite, cast: Cast
) -> None:
    page = phone.page
    page.goto(host_site.page(reflib.http_url, long=True))

    panel = tap_open(page, OFFLINE)

    expect(panel.get_by_role("heading", name="Leave a question")).to_be_visible()
    assert_fills_the_screen(page)
    submit = panel.get_by_role("button", name="Send question")
    assert_within(submit, PHONE["height"])
    assert axe_violations(phone.panel_frame()) == []
    phone.shoot("phone-offline-form")
    panel.get_by_label("Question", exact=True).fill("Can I renew by phone?")
    panel.get_by_role("textbox", name="E-mail").fill("pat@example.org")
    submit.tap()
    expect(panel.get_by_role("heading", name="Question sent")).to_be_visible()
