"""The patron widget and the librarian desk, each in a real browser, hold one whole conversation
through one real daphne process (SPEC §1.1, §1.2).

The patron is on a library's own site (another origin, strict CSP) with the one-line embed;
Lena and Mara log in to the desk page. Each person has a browser context of their own.
Elements are found by role and accessible name, as assistive technology finds them, and
axe-core checks every state on both sides.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from chat.models import Attachment, Conversation, Event, EventKind, Status
from tests.browser.conftest import (
    ONLINE,
    TIMEOUT_MS,
    Browsers,
    HostSite,
    Orm,
    Watched,
    axe_violations,
    go_available,
    log_entries,
    log_in,
    messages,
    open_tool,
    panel,
    png_file,
    send,
)
from tests.conftest import Cast
from tests.live import DaphneProcess

pytestmark = pytest.mark.browser

QUESTION = "Do you have maps of Springfield from the 1920s?"
NOTE = "Pat needs the 1920s town plans; Mara knows the map drawers"
MISSED = "The plans are in the local history room."
WHILE_OFFLINE = "Can I see them on Saturday?"


def waiting(desk: Page) -> Locator:
    """The desk's live queue."""
    return desk.get_by_role("region", name=re.compile(r"^Waiting patrons"))


def reply(desk: Page, text: str) -> None:
    """The librarian types ``text`` into the conversation in view and presses Enter."""
    box = panel(desk).get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def test_a_patron_and_two_librarians_hold_a_whole_conversation_each_in_their_own_browser(
    cast: Cast,
    reflib: DaphneProcess,
    host_site: HostSite,
    browsers: Browsers,
    orm: Orm,
    tmp_path: Path,
) -> None:
    lena = log_in(browsers.new(), "lena")
    go_available(lena)
    mara = log_in(browsers.new(), "mara")
    go_available(mara)
    expect(lena.get_by_role("region", name="Also on now")).to_contain_text("Mara")

    # Browsers records the patron's script errors and CSP refusals with everyone else's.
    patron_context = browsers.new()
    patron = Watched(patron_context.new_page())
    patron.page.goto(host_site.page(reflib.http_url))
    patron.page.get_by_role("button", name=ONLINE).click()
    widget = patron.panel
    question = widget.get_by_label("Question", exact=True)
    expect(question).to_be_focused()
    assert axe_violations(patron.panel_frame()) == [], "pre-chat"
    question.fill(QUESTION)
    widget.get_by_label("Name (optional)").fill("Pat")
    widget.get_by_role("button", name="Start chat").click()
    expect(widget.get_by_role("status")).to_contain_text("You are number 1 in the queue.")
    assert axe_violations(patron.panel_frame()) == [], "queued"

    expect(waiting(mara).get_by_text(QUESTION)).to_be_visible()
    expect(waiting(lena).get_by_text(QUESTION)).to_be_visible()
    waiting(lena).get_by_role("button", name="Accept").click()
    expect(lena.get_by_role("tab", name="Pat", selected=True)).to_be_visible()
    expect(log_entries(lena, QUESTION)).to_have_count(1)
    expect(waiting(mara).get_by_text(QUESTION)).to_have_count(0)
    log = messages(widget)
    expect(log.get_by_text("Lena joined the chat.")).to_be_visible()

    send(widget, "It is for a school project.")
    expect(log_entries(lena, "It is for a school project.")).to_have_count(1)
    reply(lena, "We have several. Which part of town?")
    expect(log.get_by_text("We have several. Which part of town?")).to_be_visible()
    assert axe_violations(patron.panel_frame()) == [], "chatting"
    assert axe_violations(lena) == [], "desk with an open conversation"

    patron_context.set_offline(True)
    expect(widget.get_by_text("Connection lost. Reconnecting…")).to_be_visible()
    reply(lena, MISSED)
    expect(log_entries(lena, MISSED)).to_have_count(1)
    send(widget, WHILE_OFFLINE)
    expect(log.get_by_text("Sending…")).to_be_visible()
    expect(log.get_by_text(MISSED)).to_have_count(0)
    patron_context.set_offline(False)

    expect(widget.get_by_text("You are chatting with Lena.")).to_be_visible()
    expect(log.get_by_text(MISSED, exact=True)).to_have_count(1, timeout=TIMEOUT_MS)
    expect(log_entries(lena, WHILE_OFFLINE)).to_have_count(1, timeout=TIMEOUT_MS)
    expect(log.get_by_text("Sending…")).to_have_count(0)
    expect(log.get_by_text(WHILE_OFFLINE, exact=True)).to_have_count(1)

    patron.page.reload()
    expect(log.get_by_text(WHILE_OFFLINE, exact=True)).to_be_visible()
    for earlier in [QUESTION, "Lena joined the chat.", "It is for a school project.", MISSED]:
        expect(log.get_by_text(earlier, exact=True)).to_have_count(1)
    send(widget, "Here is the corner I mean.")
    expect(log_entries(lena, "Here is the corner I mean.")).to_have_count(1)

    plan = png_file(tmp_path / "street-plan.png")
    assert plan.stat().st_size < 1024
    size = f"{plan.stat().st_size} B"
    widget.get_by_label("Share a file").set_input_files(plan)
    expect(log.get_by_role("img", name="street-plan.png")).to_be_visible()
    expect(log.get_by_role("button", name=f"Download street-plan.png ({size})")).to_be_visible()
    shared = panel(lena).get_by_role("link", name="street-plan.png")
    expect(shared).to_be_visible()
    expect(log_entries(lena, "street-plan.png")).to_contain_text(f"street-plan.png ({size})")
    href = shared.get_attribute("href")
    assert href is not None
    download = lena.request.get(href)
    assert (download.status, download.body()) == (200, plan.read_bytes())

    open_tool(lena, "Transfer to a colleague or queue")
    panel(lena).get_by_label("Transfer to").select_option(label="Mara (available)")
    panel(lena).get_by_label("Note for the next librarian").fill(NOTE)
    panel(lena).get_by_role("button", name="Transfer", exact=True).click()
    expect(panel(lena).get_by_text("Mara is answering now")).to_be_visible()
    expect(mara.get_by_role("tab", name="Pat")).to_be_visible()
    expect(log_entries(mara, NOTE)).to_contain_text("Internal note")
    expect(panel(mara).get_by_role("link", name="street-plan.png")).to_be_visible()
    expect(log.get_by_text("You are chatting with Mara.")).to_be_visible()

    reply(mara, "Hello Pat, I have pulled the 1923 plan for you.")
    expect(log.get_by_text("Hello Pat, I have pulled the 1923 plan for you.")).to_be_visible()
    expect(log.get_by_text(NOTE)).to_have_count(0)
    open_tool(mara, "Close the conversation")
    level = panel(mara).get_by_role("radio", name=re.compile(r"^3 — Some effort"))
    expect(level).to_be_visible()
    assert axe_violations(mara) == [], "desk with a transferred conversation and its close tool"
    level.check()
    panel(mara).get_by_label("Tags").fill("Maps, local history")
    panel(mara).get_by_role("button", name="Close conversation").click()
    expect(panel(mara).get_by_text("This conversation has ended.")).to_be_visible()

    expect(widget.get_by_role("heading", name="The chat has ended")).to_be_visible()
    assert axe_violations(patron.panel_frame()) == [], "closed, with the rating form"
    widget.get_by_role("radio", name="5").check()
    widget.get_by_label("Comment (optional)").fill("The map was perfect.")
    widget.get_by_role("button", name="Send rating").click()
    expect(widget.get_by_role("status").filter(has_text="Thank you")).to_be_visible()
    assert axe_violations(patron.panel_frame()) == [], "rated"

    stored = orm(Conversation.objects.get)
    assert stored.status == Status.CLOSED
    assert stored.librarian_id == cast.manager.pk
    assert (stored.read_level, stored.tags) == (3, ["maps", "local history"])
    assert (stored.rating, stored.rating_comment) == (5, "The map was perfect.")
    assert stored.patron_name == "Pat"
    assert stored.page_url.startswith(host_site.origin)
    said = orm(
        lambda: list(
            Event.objects.filter(conversation=stored, kind=EventKind.MESSAGE).values_list(
                "sender", "body"
            )
        )
    )
    assert said == [
        ("patron", QUESTION),
        ("patron", "It is for a school project."),
        ("librarian", "We have several. Which part of town?"),
        ("librarian", MISSED),
        ("patron", WHILE_OFFLINE),
        ("patron", "Here is the corner I mean."),
        ("librarian", "Hello Pat, I have pulled the 1923 plan for you."),
    ]
    note = orm(Event.objects.get, conversation=stored, kind=EventKind.NOTE)
    assert (note.body, note.staff_only) == (NOTE, True)
    attachment = orm(Attachment.objects.get, conversation=stored)
    assert (attachment.filename, attachment.content_type) == ("street-plan.png", "image/png")
    assert Path(attachment.file.path).read_bytes() == plan.read_bytes()


def test_the_widget_and_the_desk_write_file_sizes_by_one_rule(browsers: Browsers) -> None:
    page = browsers.new().new_page()
    page.goto("/accounts/login/")

    shown = page.evaluate(
        """async (sizes) => {
            const { fileSize } = await import("/static/chat/shared/text.js");
            return sizes.map(fileSize);
        }""",
        [0, 1023, 1024, 1535, 1536, 48213, 1048063, 1048064, 1572864, 10485760],
    )

    assert shown == [
        "0 B",
        "1023 B",
        "1 KB",
        "1 KB",
        "2 KB",
        "47 KB",
        "1023 KB",
        "1.0 MB",
        "1.5 MB",
        "10.0 MB",
    ]
