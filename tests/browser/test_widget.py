"""The patron widget in a real browser: embedded in a library's page on another origin under a
strict Content-Security-Policy, talking to a real daphne process, with the librarian at a real
desk socket. Elements are found as a patron's assistive technology finds them: by role and
accessible name."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from chat import services
from chat.models import Conversation, Event, EventKind, Status, Ticket, TicketSource
from reflib.models import Queue
from tests.browser.conftest import (
    OFFLINE,
    ONLINE,
    PANEL_TITLE,
    Desk,
    HostSite,
    Orm,
    Watched,
    answered,
    ask,
    axe_violations,
    messages,
    name,
    open_desk,
    send,
)
from tests.conftest import Cast
from tests.live import DaphneProcess

pytestmark = pytest.mark.browser


def png(width: int = 24, height: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def test_an_offline_queue_says_so_and_takes_a_question_for_e_mail(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, cast: Cast
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url, embed=False))
    globals_before = set(page.evaluate("Object.keys(window)"))
    page.goto(host_site.page(reflib.http_url))

    launcher = page.get_by_role("button", name=OFFLINE)
    expect(launcher).to_be_visible()
    assert set(page.evaluate("Object.keys(window)")) - globals_before == {"reflib"}
    assert axe_violations(page, iframes=False) == []
    watched.shoot("launcher-offline")

    launcher.click()
    panel = watched.panel
    expect(panel.get_by_role("heading", name="Leave a question")).to_be_visible()
    expect(panel.get_by_label("Question", exact=True)).to_be_focused()
    assert axe_violations(watched.panel_frame()) == []
    watched.shoot("offline-form")

    panel.get_by_label("Question", exact=True).fill("Do you hold the 1911 census?")
    panel.get_by_role("button", name="Send question").click()
    email = panel.get_by_role("textbox", name="E-mail")
    expect(email).to_have_js_property("validity.valueMissing", True)
    assert not Ticket.objects.exists()

    email.fill("pat@example.org")
    panel.get_by_role("button", name="Send question").click()

    expect(panel.get_by_role("heading", name="Question sent")).to_be_focused()
    expect(panel.get_by_text("answer by e-mail at pat@example.org")).to_be_visible()
    watched.shoot("ticket-sent")
    ticket = Ticket.objects.get()
    assert ticket.source == TicketSource.OFFLINE
    assert ticket.patron_email == "pat@example.org"
    assert ticket.question == "Do you hold the 1911 census?"
    assert axe_violations(watched.panel_frame()) == []


def test_a_patron_chats_with_a_librarian_from_a_page_with_a_strict_csp(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk, cast: Cast
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url))
    launcher = page.get_by_role("button", name=ONLINE)
    expect(launcher).to_have_attribute("aria-expanded", "false")
    watched.shoot("launcher-online")
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    panel = watched.panel

    question = panel.get_by_label("Question", exact=True)
    expect(question).to_be_focused()
    question.fill("Where are the local history maps?")
    panel.get_by_label("Name (optional)").fill("Pat")
    watched.shoot("pre-chat")
    panel.get_by_role("button", name="Start chat").click()

    expect(panel.get_by_role("status")).to_contain_text("You are number 1 in the queue.")
    expect(panel.get_by_role("textbox", name="Message")).to_be_focused()
    watched.shoot("queued")
    conversation = desk.next_waiting()
    desk.accept(conversation)
    log = messages(panel)
    expect(log.get_by_text("Lena joined the chat.")).to_be_visible()

    desk.send({"type": "typing", "conversation": conversation, "active": True})
    expect(panel.get_by_text("Lena is typing…")).to_be_visible()
    desk.say(conversation, "See https://maps.example.org/springfield and <b>not bold</b>")
    expect(panel.get_by_text("Lena is typing…")).to_be_hidden()
    link = log.get_by_role("link", name="https://maps.example.org/springfield")
    expect(link).to_have_attribute("href", "https://maps.example.org/springfield")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    expect(log.get_by_text("and <b>not bold</b>")).to_be_visible()
    expect(log.locator("b")).to_have_count(0)

    message = panel.get_by_role("textbox", name="Message")
    message.fill("Thank you!")
    message.press("Shift+Enter")
    message.press_sequentially("On my way.")
    message.press("Enter")
    received = desk.message_from_patron(conversation, "Thank you!\nOn my way.")
    expect(message).to_have_value("")
    expect(log.get_by_text("Sent", exact=True)).to_have_count(2)
    desk.send({"type": "read", "conversation": conversation, "seq": received["seq"]})
    expect(log.get_by_text("Read", exact=True)).to_have_count(2)

    desk.send({"type": "checkin", "conversation": conversation})
    log.get_by_role("group", name="Does this answer your question?").get_by_role(
        "button", name="Yes"
    ).click()
    assert desk.recv_until("checkin_answer", conversation=conversation)["answer"] == "yes"
    expect(log.get_by_text("You answered: Yes")).to_be_visible()
    watched.shoot("chatting")

    page.keyboard.press("Escape")
    expect(page.get_by_title(PANEL_TITLE)).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")

    desk.say(conversation, "The maps are on the second floor.")
    expect(page).to_have_title("(1) Springfield Public Library")
    launcher.press("Enter")
    expect(panel.get_by_role("textbox", name="Message")).to_be_focused()
    expect(page).to_have_title("Springfield Public Library")
    stored = Conversation.objects.get(public_id=conversation)
    assert stored.status == Status.ACTIVE
    assert stored.patron_name == "Pat"
    assert stored.page_url.startswith(host_site.origin)


def test_a_lost_connection_resumes_with_nothing_lost_or_doubled(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, cast: Cast
) -> None:
    page = watched.page
    with open_desk(reflib, cast.librarian) as desk:
        desk.available()
        page.goto(host_site.page(reflib.http_url))
        panel, conversation = answered(watched, desk, "Can I renew a book twice?")
        desk.say(conversation, "Let me check.")
        log = messages(panel)
        expect(log.get_by_text("Let me check.")).to_be_visible()

    # The patron's network goes, and the server dies (SIGKILL) and comes back meanwhile.
    page.context.set_offline(True)
    reflib.kill()
    expect(panel.get_by_text("Connection lost. Reconnecting…")).to_be_visible()
    send(panel, "Sent while the network was down")
    expect(log.get_by_text("Sending…")).to_be_visible()
    reflib.start()
    with open_desk(reflib, cast.librarian) as desk:
        desk.send({"type": "subscribe", "conversation": conversation, "last_seq": 0})
        desk.say(conversation, "Yes, twice online.")
        desk.say(conversation, "A third time at the desk.")
        page.context.set_offline(False)

        expect(log.get_by_text("A third time at the desk.")).to_be_visible()
        expect(log.get_by_text("Sending…")).to_have_count(0)
        desk.message_from_patron(conversation, "Sent while the network was down")
    for text in [
        "Can I renew a book twice?",
        "Let me check.",
        "Sent while the network was down",
        "Yes, twice online.",
        "A third time at the desk.",
    ]:
        expect(log.get_by_text(text, exact=True)).to_have_count(1)
    bodies = list(
        Event.objects.filter(
            conversation__public_id=conversation, kind=EventKind.MESSAGE
        ).values_list("body", flat=True)
    )
    assert bodies.count("Sent while the network was down") == 1


def test_a_reload_of_the_page_brings_the_conversation_back_and_files_can_be_shared(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk, cast: Cast
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url))
    panel, conversation = answered(watched, desk, "Do you have old maps?")
    desk.say(conversation, "We do. Which town?")
    send(panel, "Springfield, 1920s.")
    desk.message_from_patron(conversation, "Springfield, 1920s.")

    page.reload()

    log = messages(watched.panel)
    expect(log.get_by_text("Springfield, 1920s.")).to_be_visible()
    for text in ["Do you have old maps?", "Lena joined the chat.", "We do. Which town?"]:
        expect(log.get_by_text(text, exact=True)).to_have_count(1)
    expect(page).to_have_title("Springfield Public Library")

    watched.panel.get_by_label("Share a file").set_input_files(
        {"name": "street-map.png", "mimeType": "image/png", "buffer": png()}
    )
    image = log.get_by_role("img", name="street-map.png")
    expect(image).to_be_visible()
    expect(image).to_have_js_property("naturalWidth", 24)
    watched.shoot("file-shared")
    shared = desk.recv_until("file", conversation=conversation)
    assert shared["filename"] == "street-map.png"
    assert shared["content_type"] == "image/png"

    watched.panel.get_by_label("Share a file").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"just text"}
    )
    expect(watched.panel.get_by_role("alert")).to_contain_text("Only images")


def test_the_patron_ends_the_chat_rates_it_and_deletes_it(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk, cast: Cast
) -> None:
    page = watched.page
    page.goto(host_site.page(reflib.http_url))
    panel, conversation = answered(watched, desk, "Is the library open on Sunday?")
    desk.say(conversation, "From 1 to 5 pm.")

    panel.get_by_role("button", name="End chat").click()

    expect(panel.get_by_role("heading", name="The chat has ended")).to_be_focused()
    watched.shoot("closed")
    assert desk.recv_until("status", conversation=conversation)["status"] == "closed"
    panel.get_by_role("radio", name="4").check()
    panel.get_by_label("Comment (optional)").fill("Quick and clear.")
    panel.get_by_role("button", name="Send rating").click()
    expect(panel.get_by_role("status").filter(has_text="Thank you")).to_be_visible()
    rated = Conversation.objects.get(public_id=conversation)
    assert (rated.rating, rated.rating_comment) == (4, "Quick and clear.")

    panel.get_by_role("button", name="Delete my conversation").click()
    expect(panel.get_by_text("Your conversation has been deleted.").first).to_be_visible()
    erased = Conversation.objects.get(public_id=conversation)
    assert erased.erased_at is not None
    assert erased.question == ""

    page.reload()
    page.get_by_role("button", name=ONLINE).click()
    expect(watched.panel.get_by_label("Question", exact=True)).to_be_focused()


def test_a_waiting_patron_may_leave_the_question_as_a_ticket_instead(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk, cast: Cast, orm: Orm
) -> None:
    page = watched.page
    # The shortest limit, so that the sweep's "later" does not also expire Lena's presence.
    Queue.objects.filter(pk=cast.queue.pk).update(unanswered_limit_s=10)
    page.goto(host_site.page(reflib.http_url))
    panel = ask(watched, "Can you find my grandfather's school records?")
    conversation = desk.next_waiting()
    # The chat's timers run in Celery beat; here the sweep is told the limit has passed.
    later = timezone.now() + timedelta(seconds=11)
    assert orm(services.sweep, now=later).tickets_offered == 1
    # The test's process has a channel layer of its own: a reload fetches what it stored.
    page.reload()

    panel = watched.panel
    expect(messages(panel).get_by_text("No librarian is free yet.")).to_be_visible()
    watched.shoot("offer-ticket")
    panel.get_by_label("E-mail for the answer").fill("pat@example.org")
    panel.get_by_role("button", name="Leave my question instead").click()

    expect(panel.get_by_text("The answer will come by e-mail.").first).to_be_visible()
    ticket = Ticket.objects.get()
    assert ticket.source == TicketSource.TIMEOUT
    assert ticket.conversation is not None
    assert ticket.conversation.public_id == conversation
    assert Conversation.objects.get(public_id=conversation).status == Status.TICKET


def test_the_widget_follows_the_librarys_options(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, desk: Desk, cast: Cast
) -> None:
    page = watched.page
    page.goto(
        host_site.page(
            reflib.http_url,
            lang="es",
            color="#ffcc00",
            target="#ask",
            position="bottom-left",
            open_on_load="",
        )
    )
    link = page.get_by_role("link", name="Ask us a question")
    panel = watched.panel
    # Opened on load, but the page keeps its focus.
    expect(panel.get_by_role("heading", name="Pregunte a un bibliotecario")).to_be_visible()
    expect(link).to_have_attribute("aria-expanded", "true")
    expect(link).to_have_attribute("data-reflib-online", "true")
    expect(page.locator("body")).to_be_focused()
    assert page.get_by_role("button", name=name("Pregunte")).count() == 0

    link.click()
    expect(page.get_by_title("Chat con un bibliotecario")).to_be_hidden()
    expect(link).to_be_focused()
    link.click()

    expect(panel.get_by_label("Pregunta", exact=True)).to_be_focused()
    header = panel.locator("header")
    expect(header).to_have_css("background-color", "rgb(255, 204, 0)")
    expect(header).to_have_css("color", "rgb(0, 0, 0)")
    frame_box = page.get_by_title("Chat con un bibliotecario").bounding_box()
    assert frame_box is not None
    assert frame_box["x"] < 100
    assert axe_violations(watched.panel_frame()) == []
    watched.shoot("spanish-theme")


def test_every_state_of_the_widget_has_no_accessibility_violations(
    watched: Watched, reflib: DaphneProcess, host_site: HostSite, cast: Cast
) -> None:
    page = watched.page
    with open_desk(reflib, cast.librarian) as desk:
        desk.available()
        # reflib's own demo page embeds the widget too, under reflib's own strict CSP.
        page.goto(reflib.http_url)
        page.get_by_role("button", name=ONLINE).click()
        expect(watched.panel.get_by_label("Question", exact=True)).to_be_focused()

        page.goto(host_site.page(reflib.http_url))
        expect(page.get_by_role("button", name=ONLINE)).to_be_visible()
        assert axe_violations(page, iframes=False) == [], "launcher"

        page.get_by_role("button", name=ONLINE).click()
        panel = watched.panel
        expect(panel.get_by_label("Question", exact=True)).to_be_focused()
        assert axe_violations(watched.panel_frame()) == [], "pre-chat"
        assert axe_violations(page, iframes=False) == [], "page with the panel open"

        panel.get_by_label("Question", exact=True).fill("How do I get a library card?")
        panel.get_by_role("button", name="Start chat").click()
        expect(panel.get_by_role("status")).to_contain_text("in the queue")
        assert axe_violations(watched.panel_frame()) == [], "queued"

        conversation = desk.next_waiting()
        desk.accept(conversation)
        desk.say(conversation, "Bring an ID: https://library.example.org/cards")
        send(panel, "Thanks!")
        desk.send({"type": "checkin", "conversation": conversation})
        expect(panel.get_by_role("button", name="Partly")).to_be_visible()
        assert axe_violations(watched.panel_frame()) == [], "chatting"

        desk.send({"type": "close", "conversation": conversation})
        expect(panel.get_by_role("heading", name="The chat has ended")).to_be_visible()
        assert axe_violations(watched.panel_frame()) == [], "closed"
