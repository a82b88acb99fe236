"""Each finding of the security review, attacked: these fail without their fix."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from chat import services
from chat.errors import ChatError
from chat.models import Conversation, Participant, PatronBlock, Presence, Sender, Ticket
from chat.socket_actions import desk_queue, desk_send, desk_transfer
from reflib.models import Membership, Queue, Role
from reflib.services import staff_upsert
from reflib.validators import normalize_origin
from tests.chat.conftest import start, start_accepted
from tests.chat.test_api import download, png_bytes
from tests.conftest import PASSWORD, Cast

# The e-mails are enqueued on commit: those tests commit for real.
commits = pytest.mark.django_db(transaction=True)


ALLOWED = "https://www.demo-library.org"
JSON = "application/json"


def code_of(call: Any) -> str:
    with pytest.raises(ChatError) as refused:
        call()
    return refused.value.code


# --- access that outlives membership ----------


def test_a_former_member_no_longer_sees_a_chat_they_answered(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    Membership.objects.filter(user=cast.librarian).delete()
    conversation = Conversation.objects.get(pk=started.pk)

    assert code_of(lambda: services.check_can_see(conversation, cast.librarian)) == "not_found"


def test_a_deactivated_librarian_sees_nothing(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    cast.librarian.is_active = False
    cast.librarian.save()
    conversation = Conversation.objects.get(pk=started.pk)

    assert code_of(lambda: services.check_can_see(conversation, cast.librarian)) == "not_found"


def test_a_participant_who_left_a_rolled_over_chat_no_longer_sees_it(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    # The chat now sits in the partner's queue (a rollover): the home librarian sees it while
    # they are still in it, and not after they left it.
    Conversation.objects.filter(pk=started.pk).update(queue=cast.other_queue)
    conversation = Conversation.objects.select_related("queue").get(pk=started.pk)
    services.check_can_see(conversation, cast.librarian)

    Participant.objects.filter(user=cast.librarian).update(left_at=timezone.now())

    assert code_of(lambda: services.check_can_see(conversation, cast.librarian)) == "not_found"


def test_the_partner_librarian_sees_a_chat_rolled_over_to_their_queue(cast: Cast) -> None:
    started = start(cast.queue)
    Conversation.objects.filter(pk=started.pk).update(queue=cast.other_queue)
    conversation = Conversation.objects.select_related("queue").get(pk=started.pk)

    services.check_can_see(conversation, cast.other_librarian)


def test_a_former_member_cannot_download_a_file_of_the_chat(cast: Cast, settings: Settings) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    event = services.file_attach(
        conversation_id=started.pk,
        sender=Sender.PATRON,
        author=None,
        upload=SimpleUploadedFile("a.png", png_bytes()),
        content_type="image/png",
        filename="a.png",
    )
    client = cast.client_for(cast.librarian)
    served, _content = download(client, event.data["url"])
    assert served.status_code == 200

    Membership.objects.filter(user=cast.librarian).delete()

    assert client.get(event.data["url"]).status_code == 404


def test_a_send_to_another_librarys_conversation_is_not_found_whatever_its_state(
    cast: Cast,
) -> None:
    queued = start(cast.queue)
    active = start_accepted(cast.queue, cast.librarian)
    closed = start_accepted(cast.queue, cast.librarian, question="Closed one?")
    services.conversation_close(conversation_id=closed.pk, user=cast.librarian)

    for started in (queued, active, closed):
        for note in (False, True):
            assert (
                code_of(
                    lambda s=started, n=note: desk_send(
                        user=cast.other_librarian,
                        public_id=s.public_id,
                        client_msg_id="c1",
                        body="hi",
                        note=n,
                    )
                )
                == "not_found"
            )


def test_a_partner_librarian_cannot_block_a_patron_of_the_home_library(cast: Cast) -> None:
    started = start(cast.queue)
    Conversation.objects.filter(pk=started.pk).update(queue=cast.other_queue)

    refused = code_of(
        lambda: services.patron_block(
            conversation_id=started.pk, user=cast.other_librarian, hours=2160
        )
    )

    assert refused == "forbidden"
    assert not PatronBlock.objects.exists()


def test_transfer_answers_unknown_and_other_library_usernames_alike(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    answers = []
    for username in ("nobody-at-all", cast.other_librarian.username):
        with pytest.raises(ChatError) as refused:
            desk_transfer(
                user=cast.librarian,
                public_id=started.public_id,
                to_user=username,
                to_queue="",
                note="",
            )
        answers.append((refused.value.code, refused.value.detail))

    assert answers[0] == answers[1] == ("not_found", "No such colleague.")


# --- outgoing mail ----------


@commits
def test_ticket_receipts_to_one_address_are_capped_with_a_cooldown(
    cast: Cast, settings: Settings
) -> None:
    settings.REFLIB_RATE_MAIL_RECIPIENT = (2, 3600)
    api = Client()
    body = {"queue": "demo/general", "question": "Q?", "email": "victim@example.org"}
    for _ in range(2):
        assert (
            api.post(
                "/api/v1/tickets/", body, content_type=JSON, headers={"Origin": ALLOWED}
            ).status_code
            == 201
        )

    refused = api.post(
        "/api/v1/tickets/",
        {**body, "email": "VICTIM@example.org"},
        content_type=JSON,
        headers={"Origin": ALLOWED},
    )

    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert len(mail.outbox) == 2
    assert Ticket.objects.count() == 2


@commits
def test_the_installation_wide_mail_cap_holds_across_addresses(
    cast: Cast, settings: Settings
) -> None:
    settings.REFLIB_RATE_MAIL_TOTAL = (3, 3600)
    api = Client()
    statuses = [
        api.post(
            "/api/v1/tickets/",
            {"queue": "demo/general", "question": "Q?", "email": f"p{n}@example.org"},
            content_type=JSON,
            headers={"Origin": ALLOWED},
        ).status_code
        for n in range(5)
    ]

    assert statuses == [201, 201, 201, 429, 429]
    assert len(mail.outbox) == 3


def test_convert_to_ticket_counts_against_the_recipient_cap(cast: Cast, settings: Settings) -> None:
    settings.REFLIB_RATE_MAIL_RECIPIENT = (1, 3600)
    Presence.objects.create(user=cast.librarian, state="available")
    api = Client()
    chats = []
    for _ in range(2):
        started = api.post(
            "/api/v1/conversations/",
            {"queue": "demo/general", "question": "Q?"},
            content_type=JSON,
            headers={"Origin": ALLOWED},
        ).json()
        chats.append(started)
    statuses = [
        api.post(
            f"/api/v1/conversations/{c['conversation']}/ticket",
            {"email": "victim@example.org"},
            content_type=JSON,
            headers={"Origin": ALLOWED, "Authorization": f"Bearer {c['token']}"},
        ).status_code
        for c in chats
    ]

    assert statuses == [201, 429]


@commits
def test_a_receipt_quotes_only_the_start_of_the_question(cast: Cast) -> None:
    spam = "BUY CHEAP PILLS at http://spam.example " + "x" * 1900 + " END-OF-SPAM"
    response = Client().post(
        "/api/v1/tickets/",
        {"queue": "demo/general", "question": spam, "email": "victim@example.org"},
        content_type=JSON,
        headers={"Origin": ALLOWED},
    )

    assert response.status_code == 201
    (receipt,) = mail.outbox
    assert "END-OF-SPAM" not in receipt.body
    assert "x" * 100 not in receipt.body


# --- floods (HTTP) ----------


def test_chat_starts_are_limited_per_ipv6_slash_64(cast: Cast, settings: Settings) -> None:
    settings.REFLIB_RATE_SESSION_START = (2, 600)
    Presence.objects.create(user=cast.librarian, state="available")
    statuses = [
        Client(REMOTE_ADDR=f"2001:db8:1:2::{n:x}")
        .post(
            "/api/v1/conversations/",
            {"queue": "demo/general", "question": "Q?"},
            content_type=JSON,
            headers={"Origin": ALLOWED},
        )
        .status_code
        for n in range(1, 5)
    ]
    elsewhere = Client(REMOTE_ADDR="2001:db8:1:3::1").post(
        "/api/v1/conversations/",
        {"queue": "demo/general", "question": "Q?"},
        content_type=JSON,
        headers={"Origin": ALLOWED},
    )

    assert statuses == [201, 201, 429, 429]
    assert elsewhere.status_code == 201


def test_chat_starts_are_limited_per_library(cast: Cast, settings: Settings) -> None:
    settings.REFLIB_RATE_SESSION_START_LIBRARY = (3, 600)
    Presence.objects.create(user=cast.librarian, state="available")
    statuses = [
        Client(REMOTE_ADDR=f"198.51.100.{n}")
        .post(
            "/api/v1/tickets/",
            {"queue": "demo/general", "question": "Q?", "email": f"p{n}@example.org"},
            content_type=JSON,
            headers={"Origin": ALLOWED},
        )
        .status_code
        for n in range(1, 6)
    ]

    assert statuses == [201, 201, 201, 429, 429]


def test_the_desk_queue_frame_is_capped_and_says_how_many_wait(
    cast: Cast, settings: Settings
) -> None:
    settings.REFLIB_DESK_QUEUE_ITEMS = 3
    oldest = [start(cast.queue, f"Question {n}") for n in range(5)]

    frame = desk_queue(library_ids=[cast.library.pk])

    assert [item["conversation"] for item in frame["items"]] == [s.public_id for s in oldest[:3]]
    assert frame["total"] == 5


# --- login ----------


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_login_is_throttled_per_username_even_with_the_right_password(
    cast: Cast, settings: Settings, path: str
) -> None:
    settings.REFLIB_RATE_LOGIN_USERNAME = (3, 900)
    staff_upsert(username="admin", library=cast.library, role=Role.MANAGER, password=PASSWORD)
    User.objects.filter(username="admin").update(is_staff=True, is_superuser=True)
    for n in range(3):
        guess = Client(REMOTE_ADDR=f"198.51.100.{n}").post(
            path, {"username": "admin", "password": f"guess {n}"}
        )
        assert guess.status_code == 200
        assert b"Too many login attempts" not in guess.content

    right = Client(REMOTE_ADDR="198.51.100.99").post(
        path, {"username": "admin", "password": PASSWORD}
    )

    assert right.status_code == 200
    assert b"Too many login attempts" in right.content
    assert "_auth_user_id" not in right.client.session


def test_login_is_throttled_per_address_across_usernames(cast: Cast, settings: Settings) -> None:
    settings.REFLIB_RATE_LOGIN_ADDRESS = (3, 900)
    client = Client(REMOTE_ADDR="2001:db8:9::1")
    for n in range(3):
        client.post("/accounts/login/", {"username": f"user{n}", "password": "x"})

    neighbour = Client(REMOTE_ADDR="2001:db8:9::2").post(
        "/accounts/login/", {"username": cast.librarian.username, "password": PASSWORD}
    )

    assert b"Too many login attempts" in neighbour.content
    assert (
        Client(REMOTE_ADDR="198.51.100.1")
        .post("/accounts/login/", {"username": cast.librarian.username, "password": PASSWORD})
        .status_code
        == 302
    )


# --- origins ----------


@pytest.mark.parametrize(
    "junk",
    [
        "https://*",
        "https://*.example.org",
        "https://x;script-src *",
        "https://x,y.example",
        "https://a b.example",
        "https://'self'",
        "https://-bad-.example",
        'https://x".example',
    ],
)
def test_the_origin_validator_refuses_wildcards_and_junk(junk: str) -> None:
    with pytest.raises(ValidationError):
        normalize_origin(junk)


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("https://Library.Example.EDU/", "https://library.example.edu"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://[2001:db8::1]", "https://[2001:db8::1]"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ],
)
def test_the_origin_validator_keeps_real_origins(origin: str, normal: str) -> None:
    assert normalize_origin(origin) == normal


# --- seed_demo ----------


def test_seed_demo_refuses_outside_the_embedded_demo(db: None, settings: Settings) -> None:
    settings.REFLIB_EMBEDDED = False
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo", "--no-history")

    assert not User.objects.filter(username__in=["librarian", "manager"]).exists()


def test_seed_demo_runs_outside_the_embedded_demo_when_forced(db: None, settings: Settings) -> None:
    settings.REFLIB_EMBEDDED = False
    call_command("seed_demo", "--no-history", "--force", stdout=io.StringIO())
    assert User.objects.filter(username="librarian").exists()


# --- rollover partnership ----------


def test_a_partner_that_did_not_agree_receives_no_rollover_or_transfer(cast: Cast) -> None:
    cast.queue.partners.add(cast.other_queue)  # one side only
    started = start_accepted(cast.queue, cast.librarian)

    assert list(Queue.objects.partners_of(cast.queue)) == []
    refused = code_of(
        lambda: services.conversation_transfer(
            conversation_id=started.pk, user=cast.librarian, to_queue=cast.other_queue
        )
    )
    assert refused == "forbidden"


def test_a_partnership_both_sides_agreed_to_works(cast: Cast) -> None:
    cast.queue.partners.add(cast.other_queue)
    cast.other_queue.accepts_rollover_from.add(cast.queue)
    started = start_accepted(cast.queue, cast.librarian)

    assert list(Queue.objects.partners_of(cast.queue)) == [cast.other_queue]
    services.conversation_transfer(
        conversation_id=started.pk, user=cast.librarian, to_queue=cast.other_queue
    )
    assert Conversation.objects.get(pk=started.pk).queue == cast.other_queue


def test_accepting_rollovers_alone_sends_nobody_anywhere(cast: Cast) -> None:
    cast.other_queue.accepts_rollover_from.add(cast.queue)

    assert list(Queue.objects.partners_of(cast.queue)) == []
