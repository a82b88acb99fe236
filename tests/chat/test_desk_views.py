"""The desk's pages and JSON endpoints, the follow-up tickets and the patron's ticket page."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image
from pytest_django import Settings

from chat import services, tasks, ticket_services
from chat.errors import ChatError
from chat.models import (
    CannedResponse,
    Conversation,
    Event,
    EventKind,
    PresenceState,
    Sender,
    Ticket,
    TicketStatus,
    hash_token,
)
from reflib.models import Queue
from tests.conftest import Cast


@pytest.fixture(autouse=True)
def _media_root(settings: Settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def start_chat(
    queue: Queue, *, email: str = "pat@example.org", question: str = "Do you have Dune?"
) -> Conversation:
    return services.conversation_start(
        queue=queue, question=question, name="Pat", email=email
    ).conversation


def accepted_chat(queue: Queue, librarian: User, **fields: Any) -> Conversation:
    conversation = start_chat(queue, **fields)
    services.conversation_accept(conversation_id=conversation.pk, user=librarian)
    return conversation


def new_ticket(queue: Queue, question: str = "Can I renew by phone?") -> tuple[Ticket, str]:
    created = services.ticket_create(
        queue=queue, question=question, email="pat@example.org", name="Pat"
    )
    return created.ticket, created.access_key


def open_ticket(client: Client, public_id: str, key: str) -> Any:
    """What the page's script does with the e-mailed link's #k=KEY: post it, follow on."""
    return client.post(f"/tickets/{public_id}/open/", {"key": key}, follow=True)


def png_bytes(size: tuple[int, int] = (4, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "navy").save(buffer, format="PNG")
    return buffer.getvalue()


# --- the desk page ----------


def test_desk_sends_an_anonymous_visitor_to_the_login_page(db: None) -> None:
    response = Client().get("/desk/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_desk_refuses_a_user_who_is_no_librarian(db: None) -> None:
    client = Client()
    client.force_login(User.objects.create_user("visitor"))

    assert client.get("/desk/").status_code == 403


def test_desk_shows_presence_control_queue_region_and_the_empty_roster(cast: Cast) -> None:
    services.presence_set(user=cast.librarian, state=PresenceState.AWAY)

    response = cast.client_for(cast.librarian).get("/desk/")

    assert response.status_code == 200
    html = response.content.decode()
    for state in ("available", "away", "offline"):
        assert f'id="presence-{state}" value="{state}"' in html
    assert 'id="presence-away" value="away" autocomplete="off" checked' in html
    assert 'id="queue-heading">Waiting patrons' in html
    assert 'id="queue"' in html
    assert "No roster yet" in html
    assert 'src="/static/chat/desk/desk.js"' in html
    assert 'type="module"' in html


def test_desk_page_carries_its_config_and_no_inline_script(cast: Cast) -> None:
    html = cast.client_for(cast.librarian).get("/desk/").content.decode()

    assert '<script id="desk-config" type="application/json">' in html
    assert '"me": "Lena"' in html
    # CSP is script-src 'self': every executable script has a src.
    assert re.findall(r"<script(?![^>]*(?:src=|application/json))[^>]*>", html) == []
    assert "style=" not in html


def desk_strings(html: str) -> dict[str, str]:
    """What the desk page hands its script to say (the ``desk-strings`` JSON block)."""
    found = re.search(r'<script id="desk-strings" type="application/json">(.*?)</script>', html)
    assert found is not None
    strings: dict[str, str] = json.loads(found.group(1))
    return strings


def test_desk_page_speaks_spanish_to_a_spanish_browser(cast: Cast) -> None:
    client = cast.client_for(cast.librarian)

    html = client.get("/desk/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert '<html lang="es">' in html
    for words in ["Usuarios en espera", "Mis conversaciones", "Mi presencia", "Cerrar sesión"]:
        assert words in html
    strings = desk_strings(html)
    assert strings["connected"] == "Conectado"
    assert strings["typing"] == "%(name)s está escribiendo…"


def test_every_word_the_desk_script_says_is_translated_into_spanish(cast: Cast) -> None:
    client = cast.client_for(cast.librarian)

    english = desk_strings(client.get("/desk/").content.decode())
    spanish = desk_strings(client.get("/desk/", HTTP_ACCEPT_LANGUAGE="es").content.decode())

    assert english.keys() == spanish.keys()
    # "No" is the same word in both languages.
    untranslated = {key for key in english if english[key] == spanish[key]} - {"answer_no"}
    assert untranslated == set()


def test_desk_page_stays_english_without_a_language_preference(cast: Cast) -> None:
    html = cast.client_for(cast.librarian).get("/desk/").content.decode()

    assert '<html lang="en">' in html
    assert "Waiting patrons" in html
    assert desk_strings(html)["connected"] == "Connected"


def test_follow_up_tickets_page_speaks_spanish(cast: Cast) -> None:
    html = (
        cast.client_for(cast.librarian)
        .get("/desk/tickets/", HTTP_ACCEPT_LANGUAGE="es")
        .content.decode()
    )

    assert "Tickets de seguimiento" in html
    assert "0 tickets" in html
    assert "Solo los tickets asignados a mí" in html


def test_desk_shows_colleagues_available_now_of_my_libraries_only(cast: Cast) -> None:
    services.presence_set(user=cast.manager, state=PresenceState.AVAILABLE)
    services.presence_set(user=cast.other_librarian, state=PresenceState.AVAILABLE)

    html = cast.client_for(cast.librarian).get("/desk/").content.decode()
    colleagues = cast.client_for(cast.librarian).get("/desk/api/colleagues/").json()

    section = html[html.index('id="colleagues"') : html.index('id="queue-heading"')]
    assert "Mara" in section
    assert "Otto" not in section
    assert colleagues == {"available": [{"username": "mara", "name": "Mara"}]}


def test_desk_says_when_nobody_else_is_on(cast: Cast) -> None:
    html = cast.client_for(cast.librarian).get("/desk/").content.decode()

    assert "Nobody else is available right now." in html


# --- the desk's JSON endpoints ----------


def test_desk_endpoints_answer_401_in_json_without_a_session(db: None) -> None:
    response = Client().get("/desk/api/canned-responses/")

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_canned_responses_are_scoped_to_my_libraries(cast: Cast) -> None:
    CannedResponse.objects.create(
        library=cast.library, title="Hours", body="Hello {name}, we open at 9. {librarian}"
    )
    CannedResponse.objects.create(library=cast.other_library, title="Horario", body="Hola")

    mine = cast.client_for(cast.librarian).get("/desk/api/canned-responses/").json()
    theirs = cast.client_for(cast.other_librarian).get("/desk/api/canned-responses/").json()

    assert [(item["library"], item["title"]) for item in mine["items"]] == [("demo", "Hours")]
    assert mine["items"][0]["body"] == "Hello {name}, we open at 9. {librarian}"
    assert [item["title"] for item in theirs["items"]] == ["Horario"]


def test_conversation_details_show_earlier_chats_with_the_same_email(cast: Cast) -> None:
    earlier = accepted_chat(cast.queue, cast.manager, question="Where is the printer?")
    services.conversation_close(
        conversation_id=earlier.pk, user=cast.manager, read_level=1, tags=["printing"]
    )
    start_chat(cast.queue, email="someone-else@example.org", question="Not theirs")
    now = start_chat(cast.queue, email="PAT@example.org")

    response = cast.client_for(cast.librarian).get(f"/desk/api/conversations/{now.public_id}/")

    assert response.status_code == 200
    details = response.json()
    assert details["patron_display_name"] == "Pat"
    assert details["queue"] == "demo/general"
    assert [c["question"] for c in details["earlier"]] == ["Where is the printer?"]
    assert details["earlier"][0]["read_level"] == 1
    assert details["earlier"][0]["tags"] == ["printing"]
    assert details["transfer"]["colleagues"] == [
        {"username": "mara", "name": "Mara", "available": False}
    ]


def test_another_librarys_librarian_cannot_read_a_conversations_details(cast: Cast) -> None:
    chat = start_chat(cast.queue)

    response = cast.client_for(cast.other_librarian).get(
        f"/desk/api/conversations/{chat.public_id}/"
    )

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def upload(client: Client, chat: Conversation, name: str, content: bytes) -> Any:
    return client.post(
        f"/desk/api/conversations/{chat.public_id}/files/",
        {"file": SimpleUploadedFile(name, content, content_type="image/png")},
    )


def test_the_conversations_librarian_shares_an_image(cast: Cast) -> None:
    chat = accepted_chat(cast.queue, cast.librarian)

    response = upload(cast.client_for(cast.librarian), chat, "map.png", png_bytes())

    assert response.status_code == 201
    event = Event.objects.get(conversation=chat, kind=EventKind.FILE)
    assert event.sender == Sender.LIBRARIAN
    assert event.author == cast.librarian
    assert event.data["content_type"] == "image/png"
    assert response.json()["seq"] == event.seq
    # The desk links the file by the event's URL, which a librarian's session may open.
    download = cast.client_for(cast.librarian).get(response.json()["url"])
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    assert download.getvalue() == png_bytes()


def test_desk_upload_refuses_html_named_png_as_unsupported_media_type(cast: Cast) -> None:
    chat = accepted_chat(cast.queue, cast.librarian)
    page = b"<!doctype html><script>alert(1)</script>"

    response = upload(cast.client_for(cast.librarian), chat, "photo.png", page)

    assert response.status_code == 415
    assert response.json()["error"] == "invalid"
    assert not Event.objects.filter(conversation=chat, kind=EventKind.FILE).exists()


def test_desk_upload_refuses_a_file_over_the_size_limit(cast: Cast, settings: Settings) -> None:
    settings.REFLIB_UPLOAD_MAX_BYTES = 1024
    chat = accepted_chat(cast.queue, cast.librarian)
    big = b"%PDF-1.7\n" + b"0" * 2048

    response = upload(cast.client_for(cast.librarian), chat, "big.pdf", big)

    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_only_the_conversations_librarian_may_upload(cast: Cast) -> None:
    chat = accepted_chat(cast.queue, cast.librarian)

    colleague = upload(cast.client_for(cast.manager), chat, "map.png", png_bytes())
    stranger = upload(cast.client_for(cast.other_librarian), chat, "map.png", png_bytes())

    assert colleague.status_code == 403
    assert stranger.status_code == 404
    assert not Event.objects.filter(conversation=chat, kind=EventKind.FILE).exists()


def test_desk_upload_needs_the_csrf_token(cast: Cast) -> None:
    chat = accepted_chat(cast.queue, cast.librarian)
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.librarian)

    assert upload(client, chat, "map.png", png_bytes()).status_code == 403


# --- follow-up tickets (staff) ----------


def test_ticket_list_shows_only_my_libraries_tickets(cast: Cast) -> None:
    new_ticket(cast.queue, "Demo question")
    new_ticket(cast.other_queue, "Other question")

    mine = cast.client_for(cast.librarian).get("/desk/tickets/").content.decode()
    theirs = cast.client_for(cast.other_librarian).get("/desk/tickets/").content.decode()

    assert "Demo question" in mine
    assert "Other question" not in mine
    assert "Other question" in theirs
    assert "Demo question" not in theirs


def test_ticket_list_filters_by_status_and_assignment(cast: Cast) -> None:
    open_ticket, _ = new_ticket(cast.queue, "Still open")
    answered, _ = new_ticket(cast.queue, "Already answered")
    Ticket.objects.filter(pk=answered.pk).update(status=TicketStatus.ANSWERED)
    ticket_services.ticket_assign(ticket_id=open_ticket.pk, assignee=cast.librarian)
    new_ticket(cast.queue, "Nobody's yet")
    client = cast.client_for(cast.librarian)

    default = client.get("/desk/tickets/").content.decode()
    every = client.get("/desk/tickets/", {"status": ""}).content.decode()
    mine = client.get("/desk/tickets/", {"status": "", "mine": "on"}).content.decode()

    assert "Still open" in default
    assert "Already answered" not in default
    assert "Already answered" in every
    assert "Still open" in mine
    assert "Nobody&#x27;s yet" not in mine


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("post", "assign/"), ("post", "answer/"), ("post", "close/")],
)
def test_another_librarys_librarian_cannot_see_or_handle_a_demo_ticket(
    cast: Cast, method: str, suffix: str
) -> None:
    ticket, _ = new_ticket(cast.queue)
    client = cast.client_for(cast.other_librarian)

    response = getattr(client, method)(
        f"/desk/tickets/{ticket.public_id}/{suffix}",
        {"body": "An answer", "assignee": str(cast.other_librarian.pk)},
    )

    assert response.status_code == 404
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert ticket.assigned_to is None
    assert ticket.messages.count() == 1


def test_a_ticket_can_be_assigned_only_to_a_librarian_of_its_library(cast: Cast) -> None:
    ticket, _ = new_ticket(cast.queue)
    client = cast.client_for(cast.librarian)

    client.post(
        f"/desk/tickets/{ticket.public_id}/assign/", {"assignee": str(cast.other_librarian.pk)}
    )
    ticket.refresh_from_db()
    assert ticket.assigned_to is None

    client.post(f"/desk/tickets/{ticket.public_id}/assign/", {"assignee": str(cast.manager.pk)})
    ticket.refresh_from_db()
    assert ticket.assigned_to == cast.manager


def test_answer_emails_the_patron_a_new_working_private_link(
    cast: Cast,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    ticket, receipt_key = new_ticket(cast.queue)
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.send_ticket_answer, "delay", lambda *args: queued.append(args))
    client = cast.client_for(cast.librarian)
    client.post(f"/desk/tickets/{ticket.public_id}/assign/", {"assignee": str(cast.librarian.pk)})

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/desk/tickets/{ticket.public_id}/answer/",
            {"body": "Yes: call 555-0100 during opening hours."},
        )

    assert response.status_code == 302
    assert len(queued) == 1
    tasks.send_ticket_answer(*queued[0])
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["pat@example.org"]
    body = str(message.body)
    assert "Yes: call 555-0100 during opening hours." in body
    link = re.search(rf"/tickets/{ticket.public_id}/#k=([\w-]+)$", body, re.MULTILINE)
    assert link is not None
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.ANSWERED
    assert ticket.assigned_to == cast.librarian
    assert hash_token(link.group(1)) == ticket.access_hash
    page = open_ticket(Client(), ticket.public_id, link.group(1))
    assert page.status_code == 200
    assert "Yes: call 555-0100 during opening hours." in page.content.decode()
    # The receipt's key was replaced: only the newest link opens the ticket.
    assert open_ticket(Client(), ticket.public_id, receipt_key).status_code == 404


def test_an_empty_answer_is_refused_with_the_form_error(cast: Cast) -> None:
    ticket, _ = new_ticket(cast.queue)

    response = cast.client_for(cast.librarian).post(
        f"/desk/tickets/{ticket.public_id}/answer/", {"body": ""}
    )

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert ticket.messages.count() == 1


def test_a_closed_ticket_cannot_be_answered(cast: Cast) -> None:
    ticket, _ = new_ticket(cast.queue)
    client = cast.client_for(cast.librarian)
    client.post(f"/desk/tickets/{ticket.public_id}/close/")

    with pytest.raises(ChatError) as refused:
        ticket_services.ticket_answer(ticket_id=ticket.pk, user=cast.librarian, body="Late")

    assert refused.value.code == "closed"
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED


# --- the patron's ticket page ----------


def test_patron_page_with_a_wrong_key_is_not_found(cast: Cast) -> None:
    ticket, key = new_ticket(cast.queue)

    assert open_ticket(Client(), ticket.public_id, f"{key[:-1]}x").status_code == 404
    assert open_ticket(Client(), "unknown", key).status_code == 404
    assert open_ticket(Client(), ticket.public_id, "").status_code == 404
    assert Client().get(f"/tickets/{ticket.public_id}/{key[:-1]}x/").status_code == 404


def test_the_linked_page_without_access_asks_for_the_key_and_reveals_nothing(cast: Cast) -> None:
    ticket, _ = new_ticket(cast.queue, "Can I renew by phone?")

    known = Client().get(f"/tickets/{ticket.public_id}/")
    unknown = Client().get("/tickets/no-such-ticket/")

    for response in (known, unknown):
        assert response.status_code == 200
        page = response.content.decode()
        assert "chat/ticket_open.js" in page
        assert 'name="key"' in page
        assert "Can I renew by phone?" not in page
        assert "Demo Public Library" not in page
        assert response["Referrer-Policy"] == "same-origin"
    assert Client().post(f"/tickets/{ticket.public_id}/", {"body": "Hi"}).status_code == 404
    assert ticket.messages.count() == 1


def test_patron_page_shows_the_thread_privately_at_an_address_without_the_key(
    cast: Cast,
) -> None:
    ticket, key = new_ticket(cast.queue, "Can I renew by phone?")

    response = open_ticket(Client(), ticket.public_id, key)

    assert response.redirect_chain == [(f"/tickets/{ticket.public_id}/", 302)]
    assert response.status_code == 200
    assert "Can I renew by phone?" in response.content.decode()
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]


def test_a_link_with_the_key_in_its_path_still_opens_the_ticket(cast: Cast) -> None:
    ticket, key = new_ticket(cast.queue, "Can I renew by phone?")

    response = Client().get(f"/tickets/{ticket.public_id}/{key}/", follow=True)

    assert response.redirect_chain == [(f"/tickets/{ticket.public_id}/", 302)]
    assert "Can I renew by phone?" in response.content.decode()


def test_access_lapses_when_an_answer_replaces_the_key(cast: Cast) -> None:
    ticket, key = new_ticket(cast.queue, "Can I renew by phone?")
    patron = Client()
    open_ticket(patron, ticket.public_id, key)
    Ticket.objects.filter(pk=ticket.pk).update(access_hash=hash_token("a-newer-key"))

    page = patron.get(f"/tickets/{ticket.public_id}/")

    assert "Can I renew by phone?" not in page.content.decode()
    assert 'name="key"' in page.content.decode()


def csrf_patron(public_id: str, key: str) -> tuple[Client, str]:
    """A patron's browser, CSRF checks on, that opened the ticket as the page's script does."""
    patron = Client(enforce_csrf_checks=True)
    patron.get(f"/tickets/{public_id}/")
    token = patron.cookies["csrftoken"].value
    opened = patron.post(f"/tickets/{public_id}/open/", {"key": key, "csrfmiddlewaretoken": token})
    assert opened.status_code == 302
    return patron, token


def test_patron_reply_appears_in_the_thread_and_reopens_the_ticket(cast: Cast) -> None:
    ticket, key = new_ticket(cast.queue)
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.ANSWERED)
    patron, token = csrf_patron(ticket.public_id, key)

    response = patron.post(
        f"/tickets/{ticket.public_id}/",
        {"body": "Thanks! And on Sundays?", "csrfmiddlewaretoken": token},
        follow=True,
    )

    assert response.status_code == 200
    assert "Thanks! And on Sundays?" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert list(ticket.messages.values_list("sender", flat=True)) == ["patron", "patron"]
    staff_page = cast.client_for(cast.librarian).get(f"/desk/tickets/{ticket.public_id}/")
    assert "Thanks! And on Sundays?" in staff_page.content.decode()


def test_patron_reply_or_key_without_the_csrf_token_is_refused(cast: Cast) -> None:
    ticket, key = new_ticket(cast.queue)
    stranger = Client(enforce_csrf_checks=True)
    assert stranger.post(f"/tickets/{ticket.public_id}/open/", {"key": key}).status_code == 403
    patron, _ = csrf_patron(ticket.public_id, key)

    response = patron.post(f"/tickets/{ticket.public_id}/", {"body": "Hello"})

    assert response.status_code == 403
    assert ticket.messages.count() == 1
