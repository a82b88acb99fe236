"""The librarian desk in a real browser against a real daphne process (SPEC §1.2).

Chromium plays the librarians; the patron is played over the patron WebSocket with the
``websockets`` library, as the widget would speak it. Set ``REFLIB_SCREENSHOTS=DIR`` to save
screenshots of the desk and the tickets page into DIR (the docs use docs/screenshots).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from websockets.sync.client import ClientConnection, connect

from chat import services, tasks, ticket_services
from chat.models import (
    CannedResponse,
    Conversation,
    Event,
    Sender,
    Status,
    Ticket,
    TicketStatus,
    hash_token,
)
from reflib.models import Role
from reflib.services import staff_upsert
from tests.browser.conftest import (
    Browsers,
    Orm,
    go_available,
    log_entries,
    log_in,
    open_tool,
    panel,
    png_file,
)
from tests.conftest import PASSWORD, Cast
from tests.live import DaphneProcess

pytestmark = pytest.mark.browser

WAIT_MS = 10_000
RECONNECT_MS = 30_000
Frame = dict[str, Any]


# --- fixtures ----------


class Patrons:
    """Opens patron sockets (Origin: reflib's own, as the widget's panel has) and closes them."""

    def __init__(self, server: DaphneProcess, stack: ExitStack) -> None:
        self.server = server
        self.stack = stack

    def connect(self, token: str, last_seq: int = 0) -> Patron:
        connection = self.stack.enter_context(
            connect(
                f"{self.server.ws_url}/ws/v1/patron/",
                additional_headers={"Origin": self.server.http_url},
                proxy=None,
                open_timeout=10,
            )
        )
        return Patron(connection, token, last_seq)


@pytest.fixture
def patrons(reflib: DaphneProcess) -> Iterator[Patrons]:
    with ExitStack() as stack:
        yield Patrons(reflib, stack)


# --- helpers ----------


class Patron:
    """The patron's side of a conversation, over the patron WebSocket."""

    def __init__(self, connection: ClientConnection, token: str, last_seq: int = 0) -> None:
        self.connection = connection
        self.frames: list[Frame] = []
        self.send({"type": "hello", "token": token, "last_seq": last_seq})
        self.recv_until("welcome")

    def send(self, frame: Frame) -> None:
        self.connection.send(json.dumps(frame))

    def recv_until(self, kind: str, /, **fields: Any) -> Frame:
        """The next frame of type ``kind`` with these field values (earlier ones are kept)."""
        start = len(self.frames)
        deadline = time.monotonic() + WAIT_MS / 1000
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(self.connection.recv(timeout=remaining))
            except TimeoutError:
                break
            self.frames.append(frame)
            if frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items()):
                return frame
        raise AssertionError(f"no {kind} {fields}; received meanwhile {self.frames[start:]}")

    def drain(self, quiet: float = 0.5) -> None:
        while True:
            try:
                self.frames.append(json.loads(self.connection.recv(timeout=quiet)))
            except TimeoutError:
                return


# The librarian works in another window: the desk may show desktop notifications, which this
# records instead of showing.
NOTIFICATIONS_RECORDED_AND_DESK_WINDOW_UNFOCUSED = """
window.recordedNotifications = [];
window.Notification = class {
  static permission = "default";
  static requestPermission() {
    window.Notification.permission = "granted";
    return Promise.resolve("granted");
  }
  constructor(title, options) {
    window.recordedNotifications.push({ title, body: options && options.body });
  }
  addEventListener() {}
  close() {}
};
document.hasFocus = () => false;
"""


def wait_for_notification(page: Page, title: str) -> None:
    page.wait_for_function(
        "title => window.recordedNotifications.some(n => n.title === title)", arg=title
    )


def start_by_api(server: DaphneProcess, **fields: str) -> Frame:
    """A patron starts a chat through the patron HTTP API, as the widget does."""
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        f"{server.http_url}/api/v1/conversations/",
        data=json.dumps({"queue": "demo/general", **fields}).encode(),
        headers={"Content-Type": "application/json", "Origin": server.http_url},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - as above
        body: Frame = json.loads(response.read())
    return body


def assert_no_axe_violations(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("REFLIB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def started(cast: Cast, question: str, **fields: Any) -> services.StartedConversation:
    fields.setdefault("name", "Pat")
    fields.setdefault("email", "pat@example.org")
    return services.conversation_start(queue=cast.queue, question=question, **fields)


def accepted(cast: Cast, librarian: User, question: str) -> services.StartedConversation:
    chat = started(cast, question)
    services.conversation_accept(conversation_id=chat.conversation.pk, user=librarian)
    return chat


def patron_says(chat: services.StartedConversation, client_msg_id: str, body: str) -> None:
    services.message_send(
        conversation_id=chat.conversation.pk,
        sender=Sender.PATRON,
        author=None,
        client_msg_id=client_msg_id,
        body=body,
    )


def closed_earlier_chat(cast: Cast) -> None:
    earlier = accepted(cast, cast.manager, "Where can I print in colour?")
    services.conversation_close(
        conversation_id=earlier.conversation.pk, user=cast.manager, read_level=1, tags=["printing"]
    )


def conversation(pk: int) -> Conversation:
    return Conversation.objects.get(pk=pk)


# --- the tests ----------


def test_librarian_accepts_a_patron_and_chats_with_notes_canned_responses_files_and_checkin(
    cast: Cast,
    reflib: DaphneProcess,
    patrons: Patrons,
    browsers: Browsers,
    orm: Orm,
    tmp_path: Path,
) -> None:
    orm(closed_earlier_chat, cast)
    orm(
        CannedResponse.objects.create,
        library=cast.library,
        title="Opening hours",
        body="Hello {name}, we are open until 9 pm today. — {librarian}",
    )
    chat = orm(started, cast, "Do you have Dune?", page_url="https://www.demo-library.org/dune")
    context = browsers.new()
    context.add_init_script(NOTIFICATIONS_RECORDED_AND_DESK_WINDOW_UNFOCUSED)
    page = log_in(context, "lena")
    page.get_by_role("button", name="Turn on sound and notifications").click()
    expect(page.locator("#notifications")).to_have_text("Sound and notifications are on")
    go_available(page)
    queue = page.locator("#queue")
    expect(queue.get_by_text("Do you have Dune?")).to_be_visible()
    expect(queue.get_by_role("link", name="https://www.demo-library.org/dune")).to_be_visible()
    patron = patrons.connect(chat.token)

    queue.get_by_role("button", name="Accept").click()

    expect(page.get_by_role("tab", name="Pat", selected=True)).to_be_visible()
    expect(log_entries(page, "Do you have Dune?")).to_have_count(1)
    expect(queue.get_by_text("Do you have Dune?")).to_have_count(0)
    patron.recv_until("status", status="active", librarian="Lena")
    expect(panel(page).get_by_text("Where can I print in colour?")).to_be_visible()

    patron.send({"type": "send", "client_msg_id": "p-1", "body": "Is it on the shelf?"})
    expect(log_entries(page, "Is it on the shelf?")).to_have_count(1)

    message_box = panel(page).get_by_role("textbox", name="Message")
    expect(message_box).to_be_focused()
    message_box.fill("Let me check.")
    message_box.press("Shift+Enter")
    message_box.press_sequentially("One moment.")
    message_box.press("Enter")
    reply = patron.recv_until("message", **{"from": "librarian"})
    assert reply["body"] == "Let me check.\nOne moment."
    assert reply["name"] == "Lena"

    message_box.fill("Checked the catalogue: 2 copies at FIC HER")
    panel(page).get_by_role("button", name="Add as internal note").click()
    note = log_entries(page, "Checked the catalogue")
    expect(note).to_have_count(1)
    expect(note).to_have_class(re.compile("desk-entry-note"))
    expect(note).to_contain_text("Internal note")

    panel(page).get_by_role("searchbox", name="Search canned responses").fill("hours")
    panel(page).get_by_role("button", name="Opening hours").click()
    expect(message_box).to_have_value("Hello Pat, we are open until 9 pm today. — Lena")
    message_box.press("Enter")
    canned = patron.recv_until("message", body="Hello Pat, we are open until 9 pm today. — Lena")
    assert canned["from"] == "librarian"

    panel(page).get_by_label("Send a file").set_input_files(png_file(tmp_path / "map.png"))
    panel(page).get_by_role("button", name="Send file").click()
    shared = patron.recv_until("file")
    assert (shared["from"], shared["filename"], shared["content_type"]) == (
        "librarian",
        "map.png",
        "image/png",
    )
    expect(panel(page).get_by_role("link", name="map.png")).to_be_visible()

    panel(page).get_by_role("button", name="Does this answer your question?").click()
    checkin = patron.recv_until("checkin")
    patron.send({"type": "checkin_answer", "id": checkin["id"], "answer": "partly"})
    expect(panel(page).get_by_text("The patron answered: Partly").first).to_be_visible()

    # A second patron arrives through the patron API while Pat's chat is open.
    start_by_api(reflib, question="Can I print from my phone?", name="Sam")
    expect(queue.get_by_text("Can I print from my phone?")).to_be_visible()
    wait_for_notification(page, "New patron waiting")
    queue.get_by_role("button", name="Accept").click()
    expect(page.get_by_role("tab", name="Sam", selected=True)).to_be_visible()
    expect(page).to_have_title("Desk · reflib")

    patron.send({"type": "send", "client_msg_id": "p-2", "body": "Are you still there?"})
    expect(page.get_by_role("tab", name=re.compile(r"^Pat 1 unread$"))).to_be_visible()
    expect(page).to_have_title("(1) Desk · reflib")
    wait_for_notification(page, "New message from Pat")

    open_tool(page, "Transfer to a colleague or queue")
    open_tool(page, "Close the conversation")
    expect(panel(page).get_by_role("radio", name=re.compile(r"^6 — Most effort"))).to_be_visible()
    assert_no_axe_violations(page)

    page.get_by_role("tab", name=re.compile(r"^Pat")).click()
    expect(page).to_have_title("Desk · reflib")
    expect(log_entries(page, "Are you still there?")).to_have_count(1)
    screenshot(page, "desk.png")
    page.get_by_role("button", name="Side by side").click()
    expect(page.get_by_role("tabpanel")).to_have_count(2)

    patron.drain()
    assert all(frame["type"] != "note" for frame in patron.frames)
    assert not any("Checked the catalogue" in json.dumps(frame) for frame in patron.frames)


def test_librarian_transfers_to_a_colleague_who_closes_with_a_read_level_and_tags(
    cast: Cast, reflib: DaphneProcess, patrons: Patrons, browsers: Browsers, orm: Orm
) -> None:
    chat = orm(accepted, cast, cast.librarian, "Can you place a hold for me?")
    patron = patrons.connect(chat.token)
    lena = log_in(browsers.new(), "lena")
    expect(lena.get_by_role("tab", name="Pat")).to_be_visible()
    expect(log_entries(lena, "Can you place a hold for me?")).to_have_count(1)
    mara = log_in(browsers.new(), "mara")
    go_available(mara)
    expect(mara.locator("#panels-empty")).to_be_visible()
    expect(lena.locator("#colleagues")).to_contain_text("Mara")

    open_tool(lena, "Transfer to a colleague or queue")
    panel(lena).get_by_label("Transfer to").select_option(label="Mara (available)")
    panel(lena).get_by_label("Note for the next librarian").fill("Patron card 1234; hold Dune")
    panel(lena).get_by_role("button", name="Transfer", exact=True).click()

    expect(mara.get_by_role("tab", name="Pat")).to_be_visible()
    expect(log_entries(mara, "Patron card 1234; hold Dune")).to_have_class(
        re.compile("desk-entry-note")
    )
    expect(panel(lena).get_by_text("Mara is answering now")).to_be_visible()
    transferred = patron.recv_until("status", librarian="Mara")
    assert transferred["reason"] == "transferred to Mara"

    mara_box = panel(mara).get_by_role("textbox", name="Message")
    mara_box.fill("Done: Dune is on hold for you.")
    mara_box.press("Enter")
    patron.recv_until("message", body="Done: Dune is on hold for you.")
    open_tool(mara, "Close the conversation")
    panel(mara).get_by_role("radio", name=re.compile(r"^2 — Minimal knowledge")).check()
    panel(mara).get_by_label("Tags").fill("Holds, catalogue")
    panel(mara).get_by_role("button", name="Close conversation").click()

    expect(panel(mara).get_by_text("This conversation has ended.")).to_be_visible()
    patron.recv_until("status", status="closed")
    closed = orm(conversation, chat.conversation.pk)
    assert closed.status == Status.CLOSED
    assert closed.librarian_id == cast.manager.pk
    assert closed.read_level == 2
    assert closed.tags == ["holds", "catalogue"]
    patron.drain()
    assert not any("Patron card 1234" in json.dumps(frame) for frame in patron.frames)


def test_a_colleague_of_the_same_name_gets_the_owners_tools_only_once_the_chat_is_theirs(
    cast: Cast, reflib: DaphneProcess, patrons: Patrons, browsers: Browsers, orm: Orm
) -> None:
    orm(
        staff_upsert,
        username="lena.b",
        library=cast.library,
        role=Role.LIBRARIAN,
        display_name="Lena",
        password=PASSWORD,
    )
    chat = orm(accepted, cast, cast.librarian, "Where are the atlases?")
    patron = patrons.connect(chat.token)
    lena = log_in(browsers.new(), "lena")
    expect(log_entries(lena, "Where are the atlases?")).to_have_count(1)
    namesake = log_in(browsers.new(), "lena.b")
    go_available(namesake)
    expect(panel(lena).get_by_text("You are answering this chat.")).to_be_visible()

    open_tool(lena, "Transfer to a colleague or queue")
    panel(lena).get_by_label("Transfer to").select_option(value="user:lena.b")
    panel(lena).get_by_role("button", name="Transfer", exact=True).click()
    patron.recv_until("status", reason="transferred to Lena")

    expect(namesake.get_by_role("tab", name="Pat")).to_be_visible()
    expect(panel(namesake).get_by_text("You are answering this chat.")).to_be_visible()
    expect(panel(namesake).get_by_role("button", name="Send", exact=True)).to_be_enabled()
    expect(panel(lena).get_by_text("Lena is answering now; you can read along.")).to_be_visible()
    expect(panel(lena).get_by_role("button", name="Send", exact=True)).to_be_disabled()
    expect(panel(lena).get_by_role("button", name="Close tab")).to_be_visible()
    for tool in ["Transfer to a colleague or queue", "Close the conversation"]:
        expect(panel(lena).locator("summary", has_text=tool)).to_be_hidden()
        expect(panel(namesake).locator("summary", has_text=tool)).to_be_visible()
    namesake_box = panel(namesake).get_by_role("textbox", name="Message")
    namesake_box.fill("The atlases are on the second floor.")
    namesake_box.press("Enter")
    patron.recv_until("message", body="The atlases are on the second floor.")
    expect(log_entries(lena, "The atlases are on the second floor.")).to_have_count(1)


def test_desk_resumes_after_the_server_drops_it_and_shows_each_message_once(
    cast: Cast, reflib: DaphneProcess, patrons: Patrons, browsers: Browsers, orm: Orm
) -> None:
    chat = orm(accepted, cast, cast.librarian, "Is the library open on Sunday?")
    page = log_in(browsers.new(), "lena")
    expect(log_entries(page, "Is the library open on Sunday?")).to_have_count(1)
    message_box = panel(page).get_by_role("textbox", name="Message")

    reflib.kill()
    expect(page.locator("#desk-connection")).to_have_text(re.compile("reconnecting"))
    orm(patron_says, chat, "patron-while-down", "Sent while the desk was away")
    message_box.fill("Typed while offline")
    message_box.press("Enter")
    expect(panel(page).locator(".desk-pending")).to_contain_text("Typed while offline")
    reflib.start()

    expect(page.locator("#desk-connection")).to_have_text("Connected", timeout=RECONNECT_MS)
    expect(log_entries(page, "Sent while the desk was away")).to_have_count(1)
    expect(log_entries(page, "Typed while offline")).to_have_count(1)
    expect(panel(page).locator(".desk-pending li")).to_have_count(0)
    stored = orm(
        lambda: Event.objects.filter(
            conversation_id=chat.conversation.pk, body="Typed while offline"
        ).count()
    )
    assert stored == 1

    patron = patrons.connect(chat.token)
    patron.recv_until("message", body="Typed while offline")
    patron.send({"type": "send", "client_msg_id": "p-after", "body": "Thanks, back online"})
    expect(log_entries(page, "Thanks, back online")).to_have_count(1)
    seqs = page.eval_on_selector_all(
        ".desk-log li[data-seq]", "entries => entries.map(e => e.dataset.seq)"
    )
    assert len(seqs) == len(set(seqs)) == orm(conversation, chat.conversation.pk).last_seq


def test_a_message_refused_rate_limited_waits_and_goes_again_by_itself(
    cast: Cast, reflib: DaphneProcess, browsers: Browsers, orm: Orm
) -> None:
    # The server refuses rate_limited when the librarian is too fast or the process is busy
    # (back-pressure): the desk sends the message again after retry_after_s, under its id.
    reflib.kill()
    reflib.env["REFLIB_RATE_MESSAGES"] = "2/3"
    reflib.start()
    chat = orm(accepted, cast, cast.librarian, "Can I renew my loans online?")
    page = log_in(browsers.new(), "lena")
    expect(log_entries(page, "Can I renew my loans online?")).to_have_count(1)
    message_box = panel(page).get_by_role("textbox", name="Message")

    for body in ("Yes, you can.", "Log in to your account,", "then choose Renew all."):
        message_box.fill(body)
        message_box.press("Enter")

    expect(panel(page).locator(".desk-pending")).to_contain_text("then choose Renew all.")
    expect(log_entries(page, "then choose Renew all.")).to_have_count(1, timeout=10_000)
    expect(panel(page).locator(".desk-pending li")).to_have_count(0)
    bodies = orm(
        lambda: list(
            Event.objects.filter(conversation_id=chat.conversation.pk, sender="librarian")
            .order_by("seq")
            .values_list("body", flat=True)
        )
    )
    assert bodies == ["Yes, you can.", "Log in to your account,", "then choose Renew all."]


def test_desk_notices_its_browser_going_offline_at_once_and_catches_up_when_back(
    cast: Cast, browsers: Browsers, orm: Orm
) -> None:
    chat = orm(accepted, cast, cast.librarian, "Do you lend laptops?")
    context = browsers.new()
    page = log_in(context, "lena")
    expect(log_entries(page, "Do you lend laptops?")).to_have_count(1)

    # An open WebSocket survives a network drop in Chromium; only the heartbeat (35 s) would
    # notice. The browser's offline event must, at once.
    context.set_offline(True)
    expect(page.locator("#desk-connection")).to_have_text(re.compile("reconnecting"), timeout=3000)
    orm(patron_says, chat, "patron-while-offline", "Sent while the desk was offline")
    context.set_offline(False)

    expect(page.locator("#desk-connection")).to_have_text("Connected", timeout=RECONNECT_MS)
    expect(log_entries(page, "Sent while the desk was offline")).to_have_count(1)


def test_ticket_pages_answer_a_patron_and_have_no_accessibility_violations(
    cast: Cast, browsers: Browsers, orm: Orm, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No worker runs here: the answer e-mails are not sent.
    monkeypatch.setattr(tasks.send_ticket_answer, "delay", lambda *args: None)
    renew = orm(
        services.ticket_create,
        queue=cast.queue,
        question="Can I renew by phone?",
        email="pat@example.org",
        name="Pat",
    )
    answered = orm(
        services.ticket_create,
        queue=cast.queue,
        question="Do you have study rooms?",
        email="sam@example.org",
    )
    orm(
        ticket_services.ticket_answer,
        ticket_id=answered.ticket.pk,
        user=cast.manager,
        body="Yes, book them online.",
    )
    orm(
        services.ticket_create,
        queue=cast.other_queue,
        question="Another library's question",
        email="x@example.org",
    )
    page = log_in(browsers.new(), "lena")

    page.get_by_role("link", name="Follow-up tickets").click()
    expect(page.get_by_role("heading", name="Follow-up tickets")).to_be_visible()
    expect(page.get_by_role("link", name="Can I renew by phone?")).to_be_visible()
    expect(page.get_by_text("Another library's question")).to_have_count(0)
    page.get_by_label("Status").select_option(label="Any status")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="Do you have study rooms?")).to_be_visible()
    assert_no_axe_violations(page)
    screenshot(page, "desk-tickets.png")

    page.get_by_role("link", name="Can I renew by phone?").click()
    page.get_by_label("Assigned to").select_option(label="Lena")
    page.get_by_role("button", name="Assign").click()
    expect(page.get_by_role("status")).to_contain_text("Assigned to Lena.")
    expect(page.get_by_role("textbox", name="Answer")).to_be_visible()
    assert_no_axe_violations(page)
    # Answered here, not through the form: the server would queue the e-mail for a Celery
    # worker (tests/chat/test_desk_views.py follows the e-mail and its link).
    orm(
        ticket_services.ticket_answer,
        ticket_id=renew.ticket.pk,
        user=cast.librarian,
        body="Yes: call 555-0100.",
    )
    assert orm(lambda: Ticket.objects.get(pk=renew.ticket.pk).status) == TicketStatus.ANSWERED

    # The answer replaced the receipt's link; the new key travels only in the e-mail, so the
    # test gives the ticket a key it knows to open the patron's page.
    public = browsers.new().new_page()
    old_link = public.goto(f"/tickets/{renew.ticket.public_id}/{renew.access_key}/")
    assert old_link is not None
    assert old_link.status == 404
    key = "a-key-the-test-knows-because-no-e-mail-is-sent-here"
    orm(lambda: Ticket.objects.filter(pk=renew.ticket.pk).update(access_hash=hash_token(key)))
    # The e-mailed link: the key is in the fragment, which no request carries; the page's
    # script exchanges it and the address bar ends up without it.
    requested: list[str] = []
    public.on("request", lambda request: requested.append(request.url))
    public.goto(f"/tickets/{renew.ticket.public_id}/#k={key}")
    expect(public.get_by_text("Yes: call 555-0100.")).to_be_visible()
    assert public.url.endswith(f"/tickets/{renew.ticket.public_id}/")
    assert requested
    assert not [url for url in requested if key in url]
    public.get_by_label("Your reply").fill("Thank you!")
    public.get_by_role("button", name="Send reply").click()
    expect(public.get_by_role("status")).to_contain_text("Your reply was sent.")
    assert_no_axe_violations(public)
