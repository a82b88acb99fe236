"""The chat follows the patron across a library's site when reflib is another site (SPEC §1.1).

The host pages are on ``localhost`` and reflib on ``127.0.0.1``: the panel's frame is
third-party, and this Chromium denies it any storage of its own. What the panel needs to resume
lives in the library page's sessionStorage, kept by the loader (or its localStorage with
``data-storage="local"``). On a shared public computer an ended chat is forgotten.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, Frame, FrameLocator, Page, expect

from chat.models import Conversation
from tests.browser.conftest import (
    ONLINE,
    Desk,
    HostSite,
    Watched,
    answered,
    ask,
    axe_violations,
    messages,
    send,
)
from tests.conftest import Cast
from tests.live import DaphneProcess

pytestmark = pytest.mark.browser

KEY = "reflib:demo/general"
STORAGE_PROBE = "() => { try { return typeof localStorage.length; } catch (e) { return e.name; } }"


def kept(page: Page, storage: str = "sessionStorage") -> dict[str, Any]:
    """What the loader keeps in the library page's own storage."""
    value = page.evaluate(f"key => {storage}.getItem(key)", KEY)
    return dict(json.loads(value)) if value else {}


def panel_frame(page: Page) -> Frame:
    return Watched(page).panel_frame()


def message_box(panel: FrameLocator) -> Any:
    return panel.get_by_role("textbox", name="Message")


def test_past_the_servers_reading_window_a_kept_chat_is_refused_and_forgotten(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url))
    panel, conversation = answered(watched, desk, "Who was at this computer before me?")
    desk.send({"type": "close", "conversation": conversation})
    expect(panel.get_by_role("heading", name="The chat has ended")).to_be_visible()
    assert kept(page)["state"]["id"] == conversation
    # The server's window (REFLIB_PATRON_TOKEN_WINDOW_S, 900 s by default) is over.
    ended = timezone.now() - timedelta(seconds=901)
    Conversation.objects.filter(public_id=conversation).update(closed_at=ended)

    page.reload()

    panel = watched.panel
    expect(panel.get_by_role("heading", name="Ask a librarian")).to_be_visible()
    expect(messages(panel).get_by_text("Who was at this computer before me?")).to_have_count(0)
    assert kept(page) == {}


def send_transcript(panel: FrameLocator, address: str) -> None:
    """On the ended chat's screen: the one address it may go to, then the button."""
    expect(panel.get_by_text(f"E-mail the transcript to {address}.")).to_be_visible()
    panel.get_by_role("button", name="Send transcript").click()
    expect(panel.get_by_text(f"The transcript is on its way to {address}.")).to_be_visible()


def test_the_chat_and_its_draft_survive_reloads_and_the_sites_next_page_in_the_same_tab(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk, cast: Cast
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url, title="Catalogue"))
    panel, conversation = answered(watched, desk, "Which databases cover local newspapers?")
    # Third-party storage is blocked here, as the library's patrons' browsers may block it.
    assert panel_frame(page).evaluate(STORAGE_PROBE) == "SecurityError"
    desk.say(conversation, "Try the state newspaper archive.")
    send(panel, "Thanks, looking now.")
    desk.message_from_patron(conversation, "Thanks, looking now.")
    message_box(panel).fill("And for the 1950s?")

    assert kept(page)["state"]["id"] == conversation
    assert kept(page)["state"]["draft"] == "And for the 1950s?"
    page.reload()

    log = messages(watched.panel)
    expect(log.get_by_text("Thanks, looking now.", exact=True)).to_have_count(1)
    expect(message_box(watched.panel)).to_have_value("And for the 1950s?")
    expect(watched.panel.get_by_role("banner")).to_contain_text("You are chatting with Lena.")

    page.goto(host_site.page(reflib.http_url, title="Databases A to Z"))

    panel = watched.panel
    log = messages(panel)
    for text in ["Try the state newspaper archive.", "Thanks, looking now."]:
        expect(log.get_by_text(text, exact=True)).to_have_count(1)
    expect(message_box(panel)).to_have_value("And for the 1950s?")
    message_box(panel).press("Enter")
    desk.message_from_patron(conversation, "And for the 1950s?")
    expect(message_box(panel)).to_have_value("")
    desk.say(conversation, "The 1950s are on microfilm.")
    expect(log.get_by_text("The 1950s are on microfilm.")).to_be_visible()
    assert Conversation.objects.get(public_id=conversation).status == "active"


def test_a_question_not_yet_sent_survives_a_reload(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url))
    page.get_by_role("button", name=ONLINE).click()
    watched.panel.get_by_label("Question", exact=True).fill("Do you lend telescopes?")

    page.reload()

    expect(watched.panel.get_by_label("Question", exact=True)).to_have_value(
        "Do you lend telescopes?"
    )


def test_a_second_tab_starts_afresh_with_the_default_session_storage(
    watched: Watched,
    reflib: DaphneProcess,
    host_site: HostSite,
    desk: Desk,
    context: BrowserContext,
) -> None:
    url = host_site.page(reflib.http_url)
    watched.page.goto(url)
    answered(watched, desk, "Is there parking?")

    second = context.new_page()
    second.goto(url)
    second.get_by_role("button", name=ONLINE).click()

    panel = second.frame_locator("reflib-chat iframe")
    expect(panel.get_by_label("Question", exact=True)).to_be_focused()
    assert kept(second) == {}
    expect(messages(watched.panel).get_by_text("Is there parking?")).to_be_visible()


def test_with_data_storage_local_a_second_tab_carries_on_the_same_chat(
    watched: Watched,
    reflib: DaphneProcess,
    host_site: HostSite,
    desk: Desk,
    context: BrowserContext,
) -> None:
    url = host_site.page(reflib.http_url, storage="local")
    watched.page.goto(url)
    panel, conversation = answered(watched, desk, "Can I book a study room?")
    assert kept(watched.page, "sessionStorage") == {}
    assert kept(watched.page, "localStorage")["state"]["id"] == conversation

    second = context.new_page()
    second.goto(url)

    other = second.frame_locator("reflib-chat iframe")
    expect(messages(other).get_by_text("Can I book a study room?")).to_be_visible()
    send(other, "For Friday, please.")
    desk.message_from_patron(conversation, "For Friday, please.")
    expect(messages(panel).get_by_text("For Friday, please.")).to_be_visible()


def test_a_rated_chat_is_forgotten_and_a_reload_shows_a_fresh_form(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url))
    panel, conversation = answered(watched, desk, "Where is the lost property?")
    desk.send({"type": "close", "conversation": conversation})
    expect(panel.get_by_role("heading", name="The chat has ended")).to_be_visible()
    page.reload()
    panel = watched.panel
    # Not rated and just ended: it is still there, for the rating.
    expect(panel.get_by_role("heading", name="The chat has ended")).to_be_visible()
    panel.get_by_role("radio", name="5").check()
    panel.get_by_role("button", name="Send rating").click()
    expect(panel.get_by_text("Thank you for your feedback.")).to_be_visible()

    assert kept(page) == {}
    page.reload()
    page.get_by_role("button", name=ONLINE).click()

    expect(watched.panel.get_by_label("Question", exact=True)).to_be_focused()
    expect(messages(watched.panel).get_by_text("Where is the lost property?")).to_have_count(0)


def test_an_ended_chat_left_alone_is_forgotten_after_two_minutes(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk
) -> None:
    page = watched.page
    page.clock.install()
    page.goto(host_site.page(reflib.http_url))
    panel, conversation = answered(watched, desk, "Can I print in colour?")
    desk.say(conversation, "Yes, 20 cents a page.")
    desk.send({"type": "close", "conversation": conversation})
    expect(panel.get_by_role("heading", name="The chat has ended")).to_be_visible()

    page.clock.fast_forward("01:50")
    expect(panel.get_by_role("heading", name="The chat has ended")).to_be_visible()
    page.clock.fast_forward("00:15")

    expect(panel.get_by_role("heading", name="Ask a librarian")).to_be_visible()
    expect(messages(panel).get_by_text("Yes, 20 cents a page.")).to_have_count(0)
    assert kept(page) == {}
    page.reload()
    expect(page.get_by_role("button", name=ONLINE)).to_have_attribute("aria-expanded", "false")
    assert len(page.frames) == 1


def test_the_transcript_goes_to_the_address_given_at_the_start(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url))
    page.get_by_role("button", name=ONLINE).click()
    panel = watched.panel
    panel.get_by_label("Question", exact=True).fill("Do you have audiobooks?")
    panel.get_by_label("E-mail (optional)").fill("pat@example.org")
    panel.get_by_role("button", name="Start chat").click()
    conversation = desk.next_waiting()
    desk.accept(conversation)
    desk.send({"type": "close", "conversation": conversation})

    assert panel.get_by_role("textbox", name="E-mail").count() == 0
    send_transcript(panel, "pat@example.org")


def test_an_address_confirmed_inside_the_live_chat_receives_the_transcript(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url))
    panel = ask(watched, "Can you recommend a thriller?")
    conversation = desk.next_waiting()
    desk.accept(conversation)

    panel.get_by_text("E-mail me the transcript").click()
    panel.get_by_label("Your e-mail address").fill("not an address")
    panel.get_by_role("button", name="Use this address").click()
    address = panel.get_by_label("Your e-mail address")
    expect(address).to_have_js_property("validity.typeMismatch", True)
    address.fill("sam@example.org")
    panel.get_by_role("button", name="Use this address").click()
    expect(panel.get_by_text("its transcript can go to sam@example.org")).to_be_visible()
    assert axe_violations(panel_frame(page)) == []
    assert Conversation.objects.get(public_id=conversation).patron_email == "sam@example.org"

    page.reload()
    desk.send({"type": "close", "conversation": conversation})
    panel = watched.panel
    send_transcript(panel, "sam@example.org")


def test_without_any_address_the_ended_chat_offers_no_transcript(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url))
    panel, conversation = answered(watched, desk, "Are dogs allowed?")
    desk.send({"type": "close", "conversation": conversation})

    expect(panel.get_by_text("No e-mail address was given during the chat")).to_be_visible()
    expect(panel.get_by_role("button", name="Send transcript")).to_be_hidden()
    assert axe_violations(panel_frame(page)) == []
