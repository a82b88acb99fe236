"""The patron HTTP API as PROTOCOL.md describes it: endpoints, error bodies, origins, limits."""

from __future__ import annotations

import hashlib
import io
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.forms.models import model_to_dict
from django.test import Client
from django.test.client import MULTIPART_CONTENT
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from chat import services
from chat.models import (
    Conversation,
    Event,
    EventKind,
    PatronBlock,
    Presence,
    Status,
    Ticket,
    TicketSource,
    hash_token,
)
from chat.uploads import clean_filename
from tests.conftest import Cast

ALLOWED = "https://www.demo-library.org"
OTHER_LIBRARYS = "https://other-library.example"
FOREIGN = "https://evil.example"
JSON = "application/json"


@pytest.fixture(autouse=True)
def _empty_cache(settings: Settings) -> None:
    # A fresh key namespace per test instead of cache.clear(): clearing a Redis cache flushes
    # the whole database, which other test runs may be using at the same time.
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid4().hex}"}
    }


@pytest.fixture(autouse=True)
def _media_root(settings: Settings, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def online(cast: Cast) -> Presence:
    return Presence.objects.create(user=cast.librarian, state="available")


@pytest.fixture
def api() -> Client:
    return Client()


@dataclass(frozen=True)
class Chat:
    public_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def row(self) -> Conversation:
        return Conversation.objects.get(public_id=self.public_id)

    def url(self, tail: str = "") -> str:
        """The conversation's URL, or that of a sub-resource (no trailing slash, as specified)."""
        base = f"/api/v1/conversations/{self.public_id}/"
        return f"{base}{tail}" if tail else base


def start_chat(api: Client, **fields: Any) -> Chat:
    body = {"queue": "demo/general", "question": "Do you have the 1911 census?", **fields}
    response = api.post("/api/v1/conversations/", body, content_type=JSON)
    assert response.status_code == 201, response.content
    data = response.json()
    return Chat(public_id=data["conversation"], token=data["token"])


@pytest.fixture
def chat(api: Client, online: Presence) -> Chat:
    return start_chat(api, name="Pat Patron", email="pat@example.org")


@pytest.fixture
def other_chat(api: Client, online: Presence) -> Chat:
    return start_chat(api, question="Another patron's question")


def png_bytes(size: tuple[int, int] = (2, 2), *, noise: bool = False) -> bytes:
    if noise:  # incompressible, so the file is about 3 bytes per pixel
        image = Image.frombytes("RGB", size, random.Random(7).randbytes(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, "red")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def upload(
    api: Client, chat: Chat, content: bytes, name: str = "photo.png", content_type: str = ""
) -> Any:
    file = SimpleUploadedFile(name, content, content_type=content_type or "image/png")
    return api.post(chat.url("files"), {"file": file}, headers=chat.auth)


@pytest.fixture
def shared_file(api: Client, chat: Chat) -> str:
    response = upload(api, chat, png_bytes())
    assert response.status_code == 201, response.content
    return str(response.json()["url"])


def download(client: Client, url: str, **kwargs: Any) -> tuple[Any, bytes]:
    """GET a file and read it to the end, which closes it (an unclosed file is a warning)."""
    response = client.get(url, **kwargs)
    return response, response.getvalue()


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]
    expected_keys = {"error", "detail", "fields"} if status == 400 else {"error", "detail"}
    assert set(body) == expected_keys
    return dict(body)


# --- queue status ----------


def test_queue_status_of_an_unstaffed_queue_is_offline_without_an_estimate(
    api: Client, cast: Cast
) -> None:
    response = api.get("/api/v1/queues/demo/general/")

    assert response.status_code == 200
    assert response.json() == {
        "library": "demo",
        "library_name": "Demo Public Library",
        "queue": "demo/general",
        "name": cast.queue.name,
        "online": False,
        "librarians_available": 0,
        "estimated_wait_s": None,
        "opens_at": None,
    }


def test_queue_status_of_a_staffed_queue_is_online_with_an_estimated_wait(
    api: Client, online: Presence
) -> None:
    body = api.get("/api/v1/queues/demo/general/").json()

    assert body["online"] is True
    assert body["librarians_available"] == 1
    assert isinstance(body["estimated_wait_s"], int)


def test_queue_status_still_estimates_after_a_chat_that_nobody_answered(
    api: Client, chat: Chat
) -> None:
    services.conversation_end_by_patron(conversation_id=chat.row.pk)  # abandoned: never accepted

    response = api.get("/api/v1/queues/demo/general/")

    assert response.status_code == 200
    assert isinstance(response.json()["estimated_wait_s"], int)


def test_queue_status_of_an_unknown_queue_is_not_found(api: Client, cast: Cast) -> None:
    assert_error(api.get("/api/v1/queues/demo/nope/"), 404, "not_found")


# --- starting a chat ----------


def test_patron_starts_a_chat_and_gets_an_id_a_token_and_queued_status(
    api: Client, online: Presence
) -> None:
    response = api.post(
        "/api/v1/conversations/",
        {
            "queue": "demo/general",
            "question": "Where are the maps?",
            "name": "Pat",
            "email": "pat@example.org",
            "page_url": "https://www.demo-library.org/maps",
        },
        content_type=JSON,
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"conversation", "token", "status"}
    assert body["status"] == "queued"
    conversation = Conversation.objects.get(public_id=body["conversation"])
    assert conversation.question == "Where are the maps?"
    assert conversation.patron_name == "Pat"
    assert conversation.page_url == "https://www.demo-library.org/maps"
    assert conversation.patron_ip == "127.0.0.1"
    assert response["Cache-Control"] == "no-store"


def test_token_has_at_least_128_bits_and_only_its_sha256_is_stored(chat: Chat) -> None:
    assert len(chat.token) >= 22  # 22 URL-safe characters carry 132 bits
    row = chat.row
    assert row.token_hash == hashlib.sha256(chat.token.encode()).hexdigest()
    stored = " ".join(str(value) for value in model_to_dict(row).values())
    assert chat.token not in stored
    assert chat.token not in row.token_hash


def test_two_chats_get_different_tokens(api: Client, online: Presence) -> None:
    assert start_chat(api).token != start_chat(api).token


def test_a_chat_start_costs_as_many_queries_with_twenty_waiting_as_with_one(
    api: Client,
    online: Presence,
    outlook_clock: list[float],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    def queries_of_a_start() -> int:
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks(execute=True),
        ):
            start_chat(api)
        return len(queries)

    start_chat(api)
    with_one = queries_of_a_start()
    for _ in range(18):
        start_chat(api)
    with_twenty = queries_of_a_start()

    # The queue, the block check, the conversation and its two events (a savepoint, three
    # inserts, two updates of its seq), and the queue's waiting list for the positions notice.
    assert with_one == with_twenty == 11


def test_starting_a_chat_in_an_offline_queue_is_refused_as_offline(api: Client, cast: Cast) -> None:
    response = api.post(
        "/api/v1/conversations/",
        {"queue": "demo/general", "question": "Anyone there?"},
        content_type=JSON,
    )

    assert_error(response, 409, "offline")
    assert not Conversation.objects.exists()


def test_starting_a_chat_with_invalid_fields_names_each_field(
    api: Client, online: Presence
) -> None:
    response = api.post(
        "/api/v1/conversations/",
        {"queue": "demo/general", "question": "", "name": "x" * 81, "email": "not-an-address"},
        content_type=JSON,
    )

    body = assert_error(response, 400, "invalid")
    assert set(body["fields"]) == {"question", "name", "email"}
    assert all(isinstance(text, str) for texts in body["fields"].values() for text in texts)


def test_a_question_longer_than_2000_characters_is_invalid(api: Client, online: Presence) -> None:
    response = api.post(
        "/api/v1/conversations/",
        {"queue": "demo/general", "question": "q" * 2001},
        content_type=JSON,
    )

    assert set(assert_error(response, 400, "invalid")["fields"]) == {"question"}


def test_malformed_json_is_invalid(api: Client, online: Presence) -> None:
    response = api.post("/api/v1/conversations/", "{not json", content_type=JSON)

    assert assert_error(response, 400, "invalid")["fields"] == {}


def test_a_body_that_is_not_json_is_invalid(api: Client, online: Presence) -> None:
    response = api.post(
        "/api/v1/conversations/", {"queue": "demo/general", "question": "Hi"}
    )  # form-encoded

    assert_error(response, 400, "invalid")


def test_a_json_array_is_invalid(api: Client, online: Presence) -> None:
    response = api.post("/api/v1/conversations/", "[1, 2]", content_type=JSON)

    assert_error(response, 400, "invalid")


def test_an_oversized_request_body_is_too_large(api: Client, online: Presence) -> None:
    response = api.post(
        "/api/v1/conversations/",
        {"queue": "demo/general", "question": "q" * 100_000},
        content_type=JSON,
    )

    assert_error(response, 413, "too_large")


def test_starting_a_chat_in_an_unknown_queue_is_not_found(api: Client, online: Presence) -> None:
    response = api.post(
        "/api/v1/conversations/", {"queue": "demo/nope", "question": "Hi"}, content_type=JSON
    )

    assert_error(response, 404, "not_found")


def test_a_blocked_ip_address_cannot_start_a_chat(
    api: Client, cast: Cast, online: Presence
) -> None:
    PatronBlock.objects.create(
        library=cast.library, ip="127.0.0.1", until="2999-01-01T00:00:00Z", reason="abuse"
    )

    response = api.post(
        "/api/v1/conversations/", {"queue": "demo/general", "question": "Hi"}, content_type=JSON
    )

    assert_error(response, 403, "forbidden")


def test_a_block_in_another_library_does_not_stop_this_one(
    api: Client, cast: Cast, online: Presence
) -> None:
    PatronBlock.objects.create(
        library=cast.other_library, ip="127.0.0.1", until="2999-01-01T00:00:00Z"
    )

    start_chat(api)


def test_too_many_chat_starts_from_one_address_are_rate_limited(
    api: Client, online: Presence, settings: Settings
) -> None:
    settings.REFLIB_RATE_SESSION_START = (2, 600)
    start_chat(api)
    start_chat(api)

    response = api.post(
        "/api/v1/conversations/", {"queue": "demo/general", "question": "Hi"}, content_type=JSON
    )

    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 600
    assert Conversation.objects.count() == 2


def test_the_start_limit_counts_each_address_separately(
    api: Client, online: Presence, settings: Settings
) -> None:
    settings.REFLIB_RATE_SESSION_START = (1, 600)
    start_chat(api)

    response = Client(REMOTE_ADDR="198.51.100.7").post(
        "/api/v1/conversations/", {"queue": "demo/general", "question": "Hi"}, content_type=JSON
    )

    assert response.status_code == 201
    assert Conversation.objects.get(public_id=response.json()["conversation"]).patron_ip == (
        "198.51.100.7"
    )


def test_a_method_the_endpoint_does_not_have_gets_an_error_body(api: Client, cast: Cast) -> None:
    assert_error(api.get("/api/v1/conversations/"), 405, "invalid")


# --- tickets ----------


def test_patron_leaves_a_ticket_and_gets_a_receipt_with_a_private_link(
    api: Client,
    cast: Cast,
    settings: Settings,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/tickets/",
            {
                "queue": "demo/general",
                "question": "Can I renew by phone?",
                "email": "pat@example.org",
                "name": "Pat",
            },
            content_type=JSON,
        )

    assert response.status_code == 201
    ticket = Ticket.objects.get(public_id=response.json()["ticket"])
    assert ticket.source == TicketSource.OFFLINE
    assert ticket.patron_email == "pat@example.org"
    assert len(mail.outbox) == 1
    receipt = mail.outbox[0]
    assert receipt.to == ["pat@example.org"]
    body = str(receipt.body)
    assert "Can I renew by phone?" in body
    base = re.escape(settings.REFLIB_BASE_URL)
    link = re.search(rf"{base}/tickets/{ticket.public_id}/#k=([\w-]+)", body)
    assert link is not None
    assert hash_token(link.group(1)) == ticket.access_hash


def test_a_ticket_needs_an_email_address(api: Client, cast: Cast) -> None:
    response = api.post(
        "/api/v1/tickets/", {"queue": "demo/general", "question": "Hi"}, content_type=JSON
    )

    assert set(assert_error(response, 400, "invalid")["fields"]) == {"email"}


def test_a_ticket_for_an_unknown_queue_is_not_found(api: Client, cast: Cast) -> None:
    response = api.post(
        "/api/v1/tickets/",
        {"queue": "nowhere/general", "question": "Hi", "email": "pat@example.org"},
        content_type=JSON,
    )

    assert_error(response, 404, "not_found")


def test_tickets_are_rate_limited_per_address(api: Client, cast: Cast, settings: Settings) -> None:
    settings.REFLIB_RATE_SESSION_START = (1, 600)
    body = {"queue": "demo/general", "question": "Hi", "email": "pat@example.org"}
    assert api.post("/api/v1/tickets/", body, content_type=JSON).status_code == 201

    response = api.post("/api/v1/tickets/", body, content_type=JSON)

    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1


def test_a_blocked_ip_address_cannot_leave_a_ticket(api: Client, cast: Cast) -> None:
    PatronBlock.objects.create(library=cast.library, ip="127.0.0.1", until="2999-01-01T00:00:00Z")

    response = api.post(
        "/api/v1/tickets/",
        {"queue": "demo/general", "question": "Hi", "email": "pat@example.org"},
        content_type=JSON,
    )

    assert_error(response, 403, "forbidden")


# --- the token ----------

TOKEN_ENDPOINTS = [
    ("post", "files", {}),
    ("post", "rating", {"score": 5}),
    ("post", "transcript", {"email": "pat@example.org"}),
    ("post", "email", {"email": "pat@example.org"}),
    ("post", "ticket", {"email": "pat@example.org"}),
    ("delete", "", {}),
]


def call(
    api: Client, chat: Chat, method: str, tail: str, body: dict[str, Any], **kwargs: Any
) -> Any:
    url = chat.url(tail)
    if method == "delete":
        return api.delete(url, **kwargs)
    return api.post(url, body, content_type=JSON, **kwargs)


@pytest.mark.parametrize(("method", "tail", "body"), TOKEN_ENDPOINTS)
def test_conversation_endpoints_without_a_token_are_unauthorized(
    api: Client, chat: Chat, method: str, tail: str, body: dict[str, Any]
) -> None:
    response = call(api, chat, method, tail, body)

    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "tail", "body"), TOKEN_ENDPOINTS)
def test_conversation_endpoints_with_an_unknown_token_are_unauthorized(
    api: Client, chat: Chat, method: str, tail: str, body: dict[str, Any]
) -> None:
    response = call(api, chat, method, tail, body, headers={"Authorization": "Bearer " + "x" * 43})

    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize(("method", "tail", "body"), TOKEN_ENDPOINTS)
def test_another_conversations_token_finds_nothing(
    api: Client, chat: Chat, other_chat: Chat, method: str, tail: str, body: dict[str, Any]
) -> None:
    response = call(api, chat, method, tail, body, headers=other_chat.auth)

    assert_error(response, 404, "not_found")
    assert chat.row.erased_at is None


def test_the_token_is_not_accepted_in_the_query_string(api: Client, chat: Chat) -> None:
    response = api.post(f"{chat.url('rating')}?token={chat.token}", {"score": 5}, content_type=JSON)

    assert_error(response, 401, "unauthorized")


# --- files ----------


def test_patron_shares_a_png_which_appears_as_a_file_event(api: Client, chat: Chat) -> None:
    # The client's declared type is ignored: the content decides.
    response = upload(api, chat, png_bytes(), name="shelf photo.png", content_type="text/html")

    assert response.status_code == 201
    body = response.json()
    assert body["filename"] == "shelf photo.png"
    assert body["content_type"] == "image/png"
    assert body["size"] == len(png_bytes())
    event = Event.objects.get(conversation__public_id=chat.public_id, kind=EventKind.FILE)
    assert event.public_id == body["id"]
    assert event.seq == body["seq"]
    assert event.sender == "patron"
    assert event.data["content_type"] == "image/png"
    assert event.data["url"] == body["url"]
    assert body["url"].startswith(f"/api/v1/conversations/{chat.public_id}/files/")


def test_a_pdf_is_recognised_by_its_signature(api: Client, chat: Chat) -> None:
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

    response = upload(api, chat, pdf, name="article", content_type="application/octet-stream")

    assert response.status_code == 201
    assert response.json()["content_type"] == "application/pdf"
    assert response.json()["filename"] == "article.pdf"


def test_an_html_page_named_png_is_refused_as_an_unsupported_type(api: Client, chat: Chat) -> None:
    page = b"<!doctype html><script>alert(document.cookie)</script>"

    response = upload(api, chat, page, name="x.png", content_type="image/png")

    assert_error(response, 415, "invalid")
    assert not Event.objects.filter(kind=EventKind.FILE).exists()


def test_a_truncated_png_is_refused(api: Client, chat: Chat) -> None:
    assert_error(upload(api, chat, png_bytes()[:30]), 415, "invalid")


def test_a_file_over_the_size_limit_is_too_large(
    api: Client, chat: Chat, settings: Settings
) -> None:
    settings.REFLIB_UPLOAD_MAX_BYTES = 1024
    big = png_bytes((40, 40), noise=True)
    assert len(big) > 1024

    assert_error(upload(api, chat, big), 413, "too_large")
    assert not Event.objects.filter(kind=EventKind.FILE).exists()


def test_a_request_far_over_the_size_limit_is_refused_before_it_is_read(
    api: Client, chat: Chat, settings: Settings
) -> None:
    settings.REFLIB_UPLOAD_MAX_BYTES = 1024

    assert_error(upload(api, chat, b"\0" * 200_000), 413, "too_large")


def test_an_upload_without_a_file_is_invalid(api: Client, chat: Chat) -> None:
    response = api.post(
        chat.url("files"),
        {"other": "x"},
        content_type=MULTIPART_CONTENT,
        headers=chat.auth,
    )

    assert set(assert_error(response, 400, "invalid")["fields"]) == {"file"}


def test_file_uploads_are_rate_limited_per_token(
    api: Client, chat: Chat, settings: Settings
) -> None:
    settings.REFLIB_RATE_MESSAGES = (1, 10)
    assert upload(api, chat, png_bytes()).status_code == 201

    response = upload(api, chat, png_bytes())

    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 10


def test_an_ended_conversation_takes_no_files(api: Client, chat: Chat) -> None:
    services.conversation_end_by_patron(conversation_id=chat.row.pk)

    assert_error(upload(api, chat, png_bytes()), 409, "closed")


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("../../etc/passwd.png", "image/png", "passwd.png"),
        ("C:\\Users\\pat\\scan.PDF", "application/pdf", "scan.PDF"),
        ("evil.html", "image/png", "evil.html.png"),
        ("photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("bad\x00na\u202eme.gif", "image/gif", "badname.gif"),
        ("...", "image/webp", "file.webp"),
        ("a" * 300 + ".png", "image/png", "a" * 196 + ".png"),
    ],
)
def test_file_names_are_reduced_to_a_safe_name_with_a_matching_extension(
    name: str, content_type: str, expected: str
) -> None:
    assert clean_filename(name, content_type) == expected


def test_patron_downloads_a_shared_file_as_an_attachment(
    api: Client, chat: Chat, shared_file: str
) -> None:
    response, content = download(api, shared_file, headers=chat.auth)

    assert response.status_code == 200
    assert content == png_bytes()
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'attachment; filename="photo.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"


def test_a_file_cannot_be_downloaded_with_another_conversations_token(
    api: Client, shared_file: str, other_chat: Chat
) -> None:
    assert_error(api.get(shared_file, headers=other_chat.auth), 404, "not_found")


def test_an_anonymous_client_cannot_download_a_file(api: Client, shared_file: str) -> None:
    assert_error(api.get(shared_file), 401, "unauthorized")


def test_a_librarian_of_another_library_cannot_download_the_file(
    cast: Cast, shared_file: str
) -> None:
    response = cast.client_for(cast.other_librarian).get(shared_file)

    assert_error(response, 404, "not_found")


def test_the_librarian_who_accepted_downloads_the_file_as_an_attachment(
    cast: Cast, chat: Chat, shared_file: str
) -> None:
    services.conversation_accept(conversation_id=chat.row.pk, user=cast.librarian)

    response, _content = download(cast.client_for(cast.librarian), shared_file)

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "image/png"


def test_a_librarian_session_is_refused_from_an_embedding_site(
    cast: Cast, chat: Chat, shared_file: str
) -> None:
    response = cast.client_for(cast.librarian).get(shared_file, headers={"Origin": ALLOWED})

    assert_error(response, 403, "forbidden")


def test_an_unknown_file_is_not_found(api: Client, chat: Chat, shared_file: str) -> None:
    response = api.get(chat.url("files/nope"), headers=chat.auth)

    assert_error(response, 404, "not_found")


# --- rating ----------


def test_rating_a_chat_that_is_still_open_is_a_conflict(api: Client, chat: Chat) -> None:
    response = api.post(chat.url("rating"), {"score": 4}, content_type=JSON, headers=chat.auth)

    assert_error(response, 409, "conflict")


def test_rating_an_ended_chat_stores_score_and_comment(api: Client, chat: Chat) -> None:
    services.conversation_end_by_patron(conversation_id=chat.row.pk)

    response = api.post(
        chat.url("rating"),
        {"score": 5, "comment": "Very helpful"},
        content_type=JSON,
        headers=chat.auth,
    )

    assert response.status_code == 200
    assert response.json() == {"score": 5, "comment": "Very helpful"}
    assert (chat.row.rating, chat.row.rating_comment) == (5, "Very helpful")


@pytest.mark.parametrize("score", [0, 6, "five", None])
def test_a_score_outside_one_to_five_is_invalid(api: Client, chat: Chat, score: Any) -> None:
    services.conversation_end_by_patron(conversation_id=chat.row.pk)

    response = api.post(chat.url("rating"), {"score": score}, content_type=JSON, headers=chat.auth)

    assert set(assert_error(response, 400, "invalid")["fields"]) == {"score"}


# --- transcript ----------


def test_the_transcript_is_emailed_to_the_address_given_at_the_start(
    api: Client, chat: Chat, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            chat.url("transcript"),
            {"email": "Pat@Example.org"},
            content_type=JSON,
            headers=chat.auth,
        )

    assert response.status_code == 202
    assert response.json() == {"email": "pat@example.org"}
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["pat@example.org"]
    assert "Demo Public Library" in mail.outbox[0].subject
    assert "Pat Patron: Do you have the 1911 census?" in mail.outbox[0].body


def test_a_transcript_to_any_other_address_is_refused(
    api: Client, chat: Chat, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    services.conversation_end_by_patron(conversation_id=chat.row.pk)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            chat.url("transcript"),
            {"email": "next.person@example.org"},
            content_type=JSON,
            headers=chat.auth,
        )

    assert set(assert_error(response, 400, "invalid")["fields"]) == {"email"}
    assert mail.outbox == []


def test_a_patron_confirms_an_address_inside_the_live_chat_and_the_transcript_goes_there(
    api: Client, online: Presence, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    anonymous = start_chat(api)

    confirmed = api.post(
        anonymous.url("email"),
        {"email": "sam@example.org"},
        content_type=JSON,
        headers=anonymous.auth,
    )
    services.conversation_end_by_patron(conversation_id=anonymous.row.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            anonymous.url("transcript"), {}, content_type=JSON, headers=anonymous.auth
        )

    assert confirmed.status_code == 200
    assert confirmed.json() == {"email": "sam@example.org"}
    assert response.status_code == 202
    assert [message.to for message in mail.outbox] == [["sam@example.org"]]


def test_a_confirmed_address_replaces_the_one_given_at_the_start(
    api: Client, chat: Chat, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    api.post(chat.url("email"), {"email": "pat@work.example"}, content_type=JSON, headers=chat.auth)

    with django_capture_on_commit_callbacks(execute=True):
        old = api.post(
            chat.url("transcript"),
            {"email": "pat@example.org"},
            content_type=JSON,
            headers=chat.auth,
        )
        new = api.post(chat.url("transcript"), {}, content_type=JSON, headers=chat.auth)

    assert_error(old, 400, "invalid")
    assert new.json() == {"email": "pat@work.example"}
    assert [message.to for message in mail.outbox] == [["pat@work.example"]]


def test_no_address_can_be_confirmed_once_the_chat_has_ended(api: Client, chat: Chat) -> None:
    services.conversation_end_by_patron(conversation_id=chat.row.pk)

    response = api.post(
        chat.url("email"),
        {"email": "next.person@example.org"},
        content_type=JSON,
        headers=chat.auth,
    )

    assert_error(response, 409, "closed")
    assert chat.row.patron_email == "pat@example.org"


@pytest.mark.parametrize("email", ["", "not an address", None])
def test_confirming_something_that_is_not_an_address_is_invalid(
    api: Client, chat: Chat, email: Any
) -> None:
    response = api.post(chat.url("email"), {"email": email}, content_type=JSON, headers=chat.auth)

    assert set(assert_error(response, 400, "invalid")["fields"]) == {"email"}
    assert chat.row.patron_email == "pat@example.org"


def test_the_transcript_goes_to_the_address_given_at_the_start(
    api: Client, chat: Chat, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(chat.url("transcript"), {}, content_type=JSON, headers=chat.auth)

    assert response.status_code == 202
    assert [message.to for message in mail.outbox] == [["pat@example.org"]]


def test_a_transcript_without_any_address_is_invalid(api: Client, online: Presence) -> None:
    anonymous = start_chat(api)

    response = api.post(anonymous.url("transcript"), {}, content_type=JSON, headers=anonymous.auth)

    assert set(assert_error(response, 400, "invalid")["fields"]) == {"email"}
    assert mail.outbox == []


def test_transcripts_are_limited_per_conversation(
    api: Client, chat: Chat, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    url = chat.url("transcript")
    with django_capture_on_commit_callbacks(execute=True):
        statuses = [
            api.post(url, {}, content_type=JSON, headers=chat.auth).status_code for _ in range(6)
        ]

    assert statuses == [202] * 5 + [429]
    assert len(mail.outbox) == 5


# --- the token after the chat has ended ----------


def ended(chat: Chat, *, ago_s: int) -> None:
    services.conversation_end_by_patron(conversation_id=chat.row.pk)
    Conversation.objects.filter(public_id=chat.public_id).update(
        closed_at=timezone.now() - timedelta(seconds=ago_s)
    )


def test_within_the_window_the_token_reads_rates_sends_the_transcript_and_deletes(
    api: Client, chat: Chat, shared_file: str, settings: Settings
) -> None:
    settings.REFLIB_PATRON_TOKEN_WINDOW_S = 600
    ended(chat, ago_s=590)

    downloaded, _content = download(api, shared_file, headers=chat.auth)
    rated = api.post(chat.url("rating"), {"score": 4}, content_type=JSON, headers=chat.auth)
    transcript = api.post(chat.url("transcript"), {}, content_type=JSON, headers=chat.auth)
    erased = api.delete(chat.url(), headers=chat.auth)

    assert [r.status_code for r in (downloaded, rated, transcript, erased)] == [200, 200, 202, 204]


def test_after_the_window_the_token_no_longer_reads_the_conversation(
    api: Client, chat: Chat, shared_file: str, settings: Settings
) -> None:
    settings.REFLIB_PATRON_TOKEN_WINDOW_S = 600
    ended(chat, ago_s=601)

    downloaded, _content = download(api, shared_file, headers=chat.auth)
    transcript = api.post(chat.url("transcript"), {}, content_type=JSON, headers=chat.auth)

    assert_error(downloaded, 401, "unauthorized")
    assert_error(transcript, 401, "unauthorized")
    assert mail.outbox == []


def test_after_the_window_the_patron_may_still_rate_and_delete_without_reading(
    api: Client, chat: Chat, settings: Settings
) -> None:
    settings.REFLIB_PATRON_TOKEN_WINDOW_S = 0
    ended(chat, ago_s=0)

    rated = api.post(chat.url("rating"), {"score": 2}, content_type=JSON, headers=chat.auth)
    erased = api.delete(chat.url(), headers=chat.auth)

    assert rated.json() == {"score": 2, "comment": ""}
    assert erased.status_code == 204
    assert chat.row.erased_at is not None


def test_an_open_chat_reads_with_its_token_however_old_it_is(
    api: Client, chat: Chat, shared_file: str, settings: Settings
) -> None:
    settings.REFLIB_PATRON_TOKEN_WINDOW_S = 0
    Conversation.objects.filter(public_id=chat.public_id).update(
        created_at=timezone.now() - timedelta(days=3)
    )

    downloaded, content = download(api, shared_file, headers=chat.auth)

    assert downloaded.status_code == 200
    assert content == png_bytes()


# --- a waiting chat becomes a ticket ----------


def test_a_waiting_chat_becomes_a_ticket(
    api: Client, chat: Chat, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            chat.url("ticket"),
            {"email": "pat@work.example"},
            content_type=JSON,
            headers=chat.auth,
        )

    assert response.status_code == 201
    ticket = Ticket.objects.get(public_id=response.json()["ticket"])
    assert ticket.conversation == chat.row
    assert ticket.question == "Do you have the 1911 census?"
    assert chat.row.status == Status.TICKET
    assert [message.to for message in mail.outbox] == [["pat@work.example"]]


def test_an_accepted_chat_cannot_become_a_ticket(api: Client, cast: Cast, chat: Chat) -> None:
    services.conversation_accept(conversation_id=chat.row.pk, user=cast.librarian)

    response = api.post(
        chat.url("ticket"),
        {"email": "pat@example.org"},
        content_type=JSON,
        headers=chat.auth,
    )

    assert_error(response, 409, "conflict")


# --- erasing ----------


def test_patron_erases_the_conversation_and_the_token_stops_working(
    api: Client, chat: Chat, shared_file: str
) -> None:
    response = api.delete(chat.url(), headers=chat.auth)

    assert response.status_code == 204
    assert response.content == b""
    row = chat.row
    assert (row.question, row.patron_name, row.patron_email, row.patron_ip) == ("", "", "", None)
    assert row.erased_at is not None
    assert not row.attachments.exists()
    assert_error(api.delete(chat.url(), headers=chat.auth), 401, "unauthorized")
    assert_error(api.get(shared_file, headers=chat.auth), 401, "unauthorized")


def test_erasing_a_chat_left_as_a_question_erases_the_tickets_personal_data_too(
    api: Client,
    chat: Chat,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            chat.url("ticket"), {"email": "pat@example.org"}, content_type=JSON, headers=chat.auth
        )
    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get(conversation__public_id=chat.public_id)
    link = re.search(r"/tickets/([\w-]+)/#k=([\w-]+)", str(mail.outbox[-1].body))
    assert link is not None
    public_id, key = link.groups()
    opened = Client().post(f"/tickets/{public_id}/open/", {"key": key}, follow=True)
    assert "1911 census" in opened.content.decode()

    with caplog.at_level(logging.INFO):
        response = api.delete(chat.url(), headers=chat.auth)

    assert response.status_code == 204
    ticket.refresh_from_db()
    assert (ticket.question, ticket.patron_name, ticket.patron_email) == ("", "", "")
    assert set(ticket.messages.values_list("body", flat=True)) == {""}
    assert ticket.anonymised_at is not None
    assert Client().post(f"/tickets/{public_id}/open/", {"key": key}).status_code == 404
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"conversation {chat.public_id} of library demo erased" in logged
    for personal in ("Pat Patron", "pat@example.org", "1911 census", chat.token):
        assert personal not in logged


# --- origins ----------


Call = tuple[str, str, dict[str, Any], dict[str, str]]


@pytest.fixture
def every_endpoint(chat: Chat, shared_file: str) -> list[Call]:
    """(method, url, body, headers) of each endpoint, in an order in which each can succeed."""
    return [
        ("get", "/api/v1/queues/demo/general/", {}, {}),
        ("post", "/api/v1/conversations/", {"queue": "demo/general", "question": "Hi"}, {}),
        (
            "post",
            "/api/v1/tickets/",
            {"queue": "demo/general", "question": "Hi", "email": "pat@example.org"},
            {},
        ),
        ("post", chat.url("files"), {}, chat.auth),
        ("get", shared_file, {}, chat.auth),
        ("post", chat.url("rating"), {"score": 5}, chat.auth),
        ("post", chat.url("transcript"), {}, chat.auth),
        ("post", chat.url("ticket"), {"email": "pat@example.org"}, chat.auth),
        ("delete", chat.url(), {}, chat.auth),
    ]


def request(
    api: Client, method: str, url: str, body: dict[str, Any], headers: dict[str, str]
) -> Any:
    if method == "get":
        return download(api, url, headers=headers)[0]
    if method == "delete":
        return api.delete(url, headers=headers)
    if url.endswith("/files"):
        file = SimpleUploadedFile("photo.png", png_bytes(), content_type="image/png")
        return api.post(url, {"file": file}, headers=headers)
    return api.post(url, body, content_type=JSON, headers=headers)


@pytest.mark.parametrize("origin", [FOREIGN, "null", OTHER_LIBRARYS, "not an origin"])
def test_a_foreign_origin_is_refused_on_every_endpoint(
    api: Client,
    chat: Chat,
    every_endpoint: list[Call],
    origin: str,
) -> None:
    for method, url, body, headers in every_endpoint:
        response = request(api, method, url, body, {**headers, "Origin": origin})

        assert_error(response, 403, "forbidden")
        assert "Access-Control-Allow-Origin" not in response, url
    assert chat.row.erased_at is None
    assert Conversation.objects.count() == 1
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("origin", [ALLOWED, "http://testserver", "http://127.0.0.1:8000"])
def test_an_allowed_origin_is_served_on_every_endpoint(
    api: Client,
    every_endpoint: list[Call],
    origin: str,
) -> None:
    for method, url, body, headers in every_endpoint:
        response = request(api, method, url, body, {**headers, "Origin": origin})

        assert response.status_code < 400 or response.status_code == 409, (url, response.content)
        assert response["Access-Control-Allow-Origin"] == origin
        assert "Origin" in response["Vary"]
        assert "Access-Control-Allow-Credentials" not in response


def test_an_allowed_origin_can_read_error_bodies(api: Client, cast: Cast) -> None:
    response = api.post(
        "/api/v1/conversations/",
        {"queue": "demo/general", "question": "Hi"},
        content_type=JSON,
        headers={"Origin": ALLOWED},
    )

    assert_error(response, 409, "offline")
    assert response["Access-Control-Allow-Origin"] == ALLOWED


def test_an_allowed_origin_can_read_when_to_try_again(
    api: Client, online: Presence, settings: Settings
) -> None:
    settings.REFLIB_RATE_SESSION_START = (1, 600)
    start_chat(api)

    response = api.post(
        "/api/v1/conversations/",
        {"queue": "demo/general", "question": "Hi"},
        content_type=JSON,
        headers={"Origin": ALLOWED},
    )

    assert_error(response, 429, "rate_limited")
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert "Retry-After" in response["Access-Control-Expose-Headers"]


def test_cors_preflight_from_an_allowed_origin_is_answered(api: Client, cast: Cast) -> None:
    response = api.options(
        "/api/v1/conversations/",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert response["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert int(response["Access-Control-Max-Age"]) > 0
    assert "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response


def test_cors_preflight_of_a_token_endpoint_needs_no_token(api: Client, chat: Chat) -> None:
    response = api.options(
        chat.url(),
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "authorization",
        },
    )

    assert response.status_code == 204
    assert "DELETE" in response["Access-Control-Allow-Methods"]


def test_cors_preflight_from_a_foreign_origin_is_refused(api: Client, cast: Cast) -> None:
    response = api.options(
        "/api/v1/conversations/",
        headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"},
    )

    assert_error(response, 403, "forbidden")
    assert "Access-Control-Allow-Origin" not in response


# --- the OpenAPI document ----------


def test_the_openapi_document_describes_the_api(api: Client, db: None) -> None:
    response = api.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/conversations/" in paths
    assert "/api/v1/conversations/{conversation}/files" in paths
