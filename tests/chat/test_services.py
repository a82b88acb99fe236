"""The chat's services and selectors: the rules every consumer, view and task relies on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks

from chat import doorbell, events, selectors, services
from chat.errors import ChatError
from chat.models import (
    Conversation,
    Event,
    EventKind,
    Participant,
    Presence,
    PresenceState,
    Sender,
    Status,
    hash_token,
)
from chat.selectors import Availability, WaitModel
from chat.signals import conversation_ended
from reflib.models import Queue
from reflib.services import rollover_partnership_agree
from tests.chat.conftest import PATRON_IP, Started, fresh, go_available, start, start_accepted
from tests.conftest import Cast

Notice = tuple[str, dict[str, Any]]
Frame = dict[str, Any]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[Notice]:
    """What reaches the channel layer, as (group, message), in order."""
    sent: list[Notice] = []
    monkeypatch.setattr(events, "_send", lambda group, message: sent.append((group, message)))
    monkeypatch.setattr(doorbell, "ring_sync", lambda topic, notice: sent.append((topic, notice)))
    return sent


def conv_group(started: Started) -> str:
    """The doorbell topic of a conversation's events and live frames."""
    return started.public_id


# Where an expected frame has the stored event's own id (random, so read from the row).
STORED_ID = "<the stored event's id>"


def event_notice(
    started: Started,
    seq: int,
    frame: dict[str, Any],
    *,
    staff_only: bool = False,
    librarian: User | None = None,
) -> Notice:
    """The notice of stored event ``seq``, its frame written out by the test; the conversation,
    ``seq`` and time are added, and the id where ``frame`` says ``STORED_ID``. ``librarian``:
    the one a status event records."""
    event = Event.objects.get(conversation_id=started.pk, seq=seq)
    written = {
        key: event.public_id if value == STORED_ID else value for key, value in frame.items()
    }
    expected = {
        **written,
        "conversation": started.public_id,
        "seq": seq,
        "ts": event.created_at.isoformat(),
    }
    message = {"type": "chat.event", "event": expected, "staff_only": staff_only}
    if librarian is not None:
        message["librarian_id"] = librarian.pk
    return conv_group(started), message


def message_frame(body: str, *, name: str, sender: str, client_msg_id: str | None) -> Frame:
    return {
        "type": "message",
        "id": STORED_ID,
        "name": name,
        "body": body,
        "client_msg_id": client_msg_id,
        "from": sender,
    }


def status_frame(status: str, librarian: str | None, reason: str = "") -> Frame:
    frame: Frame = {"type": "status", "status": status, "librarian": librarian}
    if reason:
        frame["reason"] = reason
    return frame


def queue_changed(library_id: int) -> Notice:
    return f"chat.desk.{library_id}", {"type": "chat.queue_changed", "id": mock.ANY}


def live(started: Started, frame: dict[str, Any], audience: str) -> Notice:
    return conv_group(started), {"type": "chat.live", "frame": frame, "audience": audience}


def positions(*waiting: tuple[Started, int | None]) -> Notice:
    """A queue's waiting patrons in order, each with the estimated wait it is told."""
    lines = [(started.public_id, wait) for started, wait in waiting]
    return doorbell.POSITIONS, {"type": "chat.positions", "waiting": lines}


def log_of(started: Started) -> list[tuple[int, str, str]]:
    return [
        (event.seq, event.kind, event.sender)
        for event in Event.objects.filter(conversation_id=started.pk).order_by("seq")
    ]


def _fail_after(writes: Callable[[], object]) -> None:
    """Run ``writes`` in a transaction that then fails, as a request failing after a service."""
    with transaction.atomic():
        writes()
        raise RuntimeError("the caller failed after the service ran")


def patron_says(started: Started, client_msg_id: str, body: str = "Hello?") -> Event:
    event, _created = services.message_send(
        conversation_id=started.pk,
        sender=Sender.PATRON,
        author=None,
        client_msg_id=client_msg_id,
        body=body,
    )
    return event


# --- conversation_start ----------


def test_conversation_start_stores_the_question_as_event_1_and_a_queued_status_as_event_2(
    cast: Cast,
) -> None:
    started = services.conversation_start(
        queue=cast.queue,
        question="Can I renew a book online?",
        name="Pat Patron",
        email="pat@example.org",
        page_url="https://www.demo-library.org/renew",
        ip=PATRON_IP,
    )

    conversation = started.conversation
    question, status = Event.objects.filter(conversation=conversation).order_by("seq")
    assert (question.seq, question.kind, question.sender) == (1, "message", "patron")
    assert question.body == "Can I renew a book online?"
    assert question.author_name == "Pat Patron"
    assert not question.staff_only
    assert (status.seq, status.kind, status.sender) == (2, "status", "system")
    assert status.data == {"status": "queued", "librarian": None}
    conversation.refresh_from_db()
    assert conversation.last_seq == 2
    assert conversation.status == Status.QUEUED
    assert conversation.library == cast.library
    assert conversation.queue == conversation.origin_queue == cast.queue
    assert conversation.patron_ip == PATRON_IP


def test_conversation_token_is_long_random_and_stored_only_hashed(cast: Cast) -> None:
    started = services.conversation_start(queue=cast.queue, question="Hi")

    assert len(started.token) >= 22  # 128 bits in URL-safe base64
    assert started.conversation.token_hash == hash_token(started.token)
    assert started.token not in started.conversation.token_hash
    assert Conversation.objects.by_token(started.token) == started.conversation
    other = services.conversation_start(queue=cast.queue, question="Hi")
    assert other.token != started.token


# --- message_send ----------


def test_message_send_with_a_repeated_client_msg_id_returns_the_stored_event(cast: Cast) -> None:
    started = start(cast.queue)

    first, first_created = services.message_send(
        conversation_id=started.pk,
        sender=Sender.PATRON,
        author=None,
        client_msg_id="abc",
        body="Is it in?",
    )
    again, again_created = services.message_send(
        conversation_id=started.pk,
        sender=Sender.PATRON,
        author=None,
        client_msg_id="abc",
        body="Is it in? (retyped)",
    )

    assert first_created
    assert not again_created
    assert again.pk == first.pk
    assert again.seq == first.seq == 3
    assert Event.objects.filter(conversation_id=started.pk, client_msg_id="abc").count() == 1
    assert fresh(started).last_seq == 3


def test_resending_after_the_conversation_ended_still_gets_the_stored_event(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    first = patron_says(started, "late-ack")
    services.conversation_end_by_patron(conversation_id=started.pk)

    again = patron_says(started, "late-ack")

    assert again.pk == first.pk


def test_seq_is_strictly_increasing_and_gapless_across_every_kind_of_event(cast: Cast) -> None:
    started = start(cast.queue)
    patron_says(started, "p1")
    services.conversation_accept(conversation_id=started.pk, user=cast.librarian)
    services.message_send(
        conversation_id=started.pk,
        sender=Sender.LIBRARIAN,
        author=cast.librarian,
        client_msg_id="l1",
        body="Let me look.",
    )
    services.message_send(
        conversation_id=started.pk,
        sender=Sender.LIBRARIAN,
        author=cast.manager,
        client_msg_id="n1",
        body="Check the reserve shelf.",
        note=True,
    )
    patron_says(started, "p1")  # a resend takes no number
    checkin = services.checkin_send(conversation_id=started.pk, user=cast.librarian)
    services.checkin_answer(conversation_id=started.pk, checkin_id=checkin.public_id, answer="no")
    services.conversation_transfer(
        conversation_id=started.pk, user=cast.librarian, to_user=cast.manager, note="Over to you"
    )
    services.conversation_close(conversation_id=started.pk, user=cast.manager)

    seqs = [seq for seq, _kind, _sender in log_of(started)]
    assert seqs == list(range(1, 12))
    assert fresh(started).last_seq == 11


def test_note_is_a_staff_only_event(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    note, created = services.message_send(
        conversation_id=started.pk,
        sender=Sender.LIBRARIAN,
        author=cast.manager,  # a colleague may leave a note without owning the chat
        client_msg_id="note-1",
        body="Patron asked the same last week.",
        note=True,
    )

    assert created
    assert note.kind == EventKind.NOTE
    assert note.staff_only
    assert note.author_name == "Mara"
    frame = events.event_frame(note, started.public_id)
    assert frame["type"] == "note"
    assert frame["body"] == "Patron asked the same last week."


def test_librarian_cannot_write_before_accepting(cast: Cast) -> None:
    started = start(cast.queue)

    with pytest.raises(ChatError) as refused:
        services.message_send(
            conversation_id=started.pk,
            sender=Sender.LIBRARIAN,
            author=cast.librarian,
            client_msg_id="early",
            body="Hello",
        )

    assert refused.value.code == "conflict"


def test_only_the_answering_librarian_may_write(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with pytest.raises(ChatError) as refused:
        services.message_send(
            conversation_id=started.pk,
            sender=Sender.LIBRARIAN,
            author=cast.manager,
            client_msg_id="butting-in",
            body="Hello",
        )

    assert refused.value.code == "forbidden"


def test_patron_cannot_write_to_an_ended_conversation(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    services.conversation_close(conversation_id=started.pk, user=cast.librarian)

    with pytest.raises(ChatError) as refused:
        patron_says(started, "after-close")

    assert refused.value.code == "closed"


# --- lifecycle ----------


def test_accept_and_close_record_the_lifecycle_times(cast: Cast) -> None:
    started = start(cast.queue)
    created_at = fresh(started).created_at

    services.conversation_accept(conversation_id=started.pk, user=cast.librarian)
    accepted = fresh(started)
    services.conversation_close(conversation_id=started.pk, user=cast.librarian)
    closed = fresh(started)

    assert accepted.status == Status.ACTIVE
    assert accepted.librarian == cast.librarian
    assert accepted.accepted_at is not None
    assert accepted.closed_at is None
    assert Participant.objects.filter(conversation_id=started.pk, user=cast.librarian).exists()
    assert closed.status == Status.CLOSED
    assert closed.closed_at is not None
    assert created_at <= accepted.accepted_at <= closed.closed_at
    assert closed.accepted_at == accepted.accepted_at
    last = Event.objects.filter(conversation_id=started.pk).order_by("-seq").first()
    assert last is not None
    assert last.data["status"] == "closed"


def test_librarian_closing_a_waiting_conversation_closes_it_and_does_not_call_it_abandoned(
    cast: Cast,
) -> None:
    started = start(cast.queue)

    services.conversation_close(conversation_id=started.pk, user=cast.librarian)

    conversation = fresh(started)
    assert conversation.status == Status.CLOSED
    assert conversation.accepted_at is None
    assert conversation.closed_at is not None
    last = Event.objects.filter(conversation_id=started.pk).order_by("seq").last()
    assert last is not None
    assert last.data["status"] == "closed"


def test_patron_ending_a_waiting_conversation_abandons_it(cast: Cast) -> None:
    started = start(cast.queue)

    services.conversation_end_by_patron(conversation_id=started.pk)

    conversation = fresh(started)
    assert conversation.status == Status.ABANDONED
    assert conversation.closed_at is not None
    assert conversation.accepted_at is None


def test_patron_ending_an_answered_conversation_closes_it(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    services.conversation_end_by_patron(conversation_id=started.pk)
    services.conversation_end_by_patron(conversation_id=started.pk)  # twice: nothing more

    assert fresh(started).status == Status.CLOSED
    assert [kind for _seq, kind, _sender in log_of(started)].count("status") == 3


def test_second_accept_is_a_conflict(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with pytest.raises(ChatError) as refused:
        services.conversation_accept(conversation_id=started.pk, user=cast.manager)

    assert refused.value.code == "conflict"
    assert fresh(started).librarian == cast.librarian


def test_librarian_at_the_concurrent_chat_limit_cannot_accept_another(cast: Cast) -> None:
    cast.library.max_chats_per_librarian = 1
    cast.library.save()
    start_accepted(cast.queue, cast.librarian)
    second = start(cast.queue)

    with pytest.raises(ChatError) as refused:
        services.conversation_accept(conversation_id=second.pk, user=cast.librarian)

    assert refused.value.code == "conflict"
    assert fresh(second).status == Status.QUEUED


def test_librarian_of_another_library_cannot_accept(cast: Cast) -> None:
    started = start(cast.queue)

    with pytest.raises(ChatError) as refused:
        services.conversation_accept(conversation_id=started.pk, user=cast.other_librarian)

    assert refused.value.code == "not_found"


def test_close_by_a_librarian_who_is_not_answering_is_forbidden(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with pytest.raises(ChatError) as refused:
        services.conversation_close(conversation_id=started.pk, user=cast.manager)

    assert refused.value.code == "forbidden"
    assert fresh(started).status == Status.ACTIVE


def test_close_stores_read_level_and_cleaned_tags(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    services.conversation_close(
        conversation_id=started.pk,
        user=cast.librarian,
        read_level=4,
        tags=["Interlibrary  Loan", "interlibrary loan", "ILL"],
    )

    conversation = fresh(started)
    assert conversation.read_level == 4
    assert conversation.tags == ["interlibrary loan", "ill"]


# --- transfer ----------


def test_transfer_to_a_colleague_keeps_the_chat_active_with_them(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    services.conversation_transfer(
        conversation_id=started.pk, user=cast.librarian, to_user=cast.manager, note="Law question"
    )

    conversation = fresh(started)
    assert conversation.status == Status.ACTIVE
    assert conversation.librarian == cast.manager
    note, status = list(Event.objects.filter(conversation_id=started.pk).order_by("seq"))[-2:]
    assert note.kind == EventKind.NOTE
    assert note.staff_only
    assert note.body == "Law question"
    assert status.data["librarian"] == "Mara"
    assert "Mara" in status.data["reason"]
    left = Participant.objects.get(conversation_id=started.pk, user=cast.librarian)
    assert left.left_at is not None


def test_transfer_to_a_user_of_another_library_is_not_found(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with pytest.raises(ChatError) as refused:
        services.conversation_transfer(
            conversation_id=started.pk,
            user=cast.librarian,
            to_user=cast.other_librarian,
            note="This note must not be kept",
        )

    assert refused.value.code == "not_found"
    assert fresh(started).librarian == cast.librarian
    assert fresh(started).last_seq == 3


def test_transfer_to_a_queue_of_another_library_that_is_no_partner_is_forbidden(
    cast: Cast,
) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with pytest.raises(ChatError) as refused:
        services.conversation_transfer(
            conversation_id=started.pk, user=cast.librarian, to_queue=cast.other_queue
        )

    assert refused.value.code == "forbidden"
    assert fresh(started).queue == cast.queue


def test_transfer_to_a_partner_queue_queues_the_chat_there(cast: Cast) -> None:
    rollover_partnership_agree(source=cast.queue, partner=cast.other_queue)
    started = start_accepted(cast.queue, cast.librarian)

    services.conversation_transfer(
        conversation_id=started.pk, user=cast.librarian, to_queue=cast.other_queue
    )

    conversation = fresh(started)
    assert conversation.queue == cast.other_queue
    assert conversation.status == Status.QUEUED
    assert conversation.librarian is None
    assert conversation.library == cast.library
    services.check_can_see(conversation, cast.other_librarian)


def test_a_note_into_a_foreign_conversation_is_not_found_even_reusing_a_stored_client_id(
    cast: Cast,
) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    services.message_send(
        conversation_id=started.pk,
        sender=Sender.LIBRARIAN,
        author=cast.librarian,
        client_msg_id="lena-1",
        body="Let me look that up.",
    )
    stored = fresh(started).last_seq

    with pytest.raises(ChatError) as refused:
        services.message_send(
            public_id=started.public_id,
            sender=Sender.LIBRARIAN,
            author=cast.other_librarian,
            client_msg_id="lena-1",
            body="Probing",
            note=True,
        )

    assert refused.value.code == "not_found"
    assert fresh(started).last_seq == stored


def test_transfer_to_a_queue_of_the_same_library_queues_the_chat_again(cast: Cast) -> None:
    law = Queue.objects.create(library=cast.library, slug="law", name="Law")
    started = start_accepted(cast.queue, cast.librarian)

    services.conversation_transfer(conversation_id=started.pk, user=cast.librarian, to_queue=law)

    conversation = fresh(started)
    assert conversation.queue == law
    assert conversation.status == Status.QUEUED


@pytest.mark.parametrize("targets", ["neither", "both"])
def test_transfer_names_exactly_one_target(cast: Cast, targets: str) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    both = targets == "both"

    with pytest.raises(ChatError) as refused:
        services.conversation_transfer(
            conversation_id=started.pk,
            user=cast.librarian,
            to_user=cast.manager if both else None,
            to_queue=cast.queue if both else None,
        )

    assert refused.value.code == "invalid"


def test_only_the_answering_librarian_may_transfer(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with pytest.raises(ChatError) as refused:
        services.conversation_transfer(
            conversation_id=started.pk, user=cast.manager, to_user=cast.manager
        )

    assert refused.value.code == "forbidden"


# --- tags, check-ins, blocks ----------


def test_clean_tags_trims_lowercases_collapses_spaces_and_drops_duplicates() -> None:
    assert services.clean_tags(["  Local   History ", "local history", "ILL", "ill "]) == [
        "local history",
        "ill",
    ]
    assert services.clean_tags([]) == []


@pytest.mark.parametrize(
    "tags",
    [[""], ["   "], [7], [None], ["x" * 51], [f"tag {number}" for number in range(21)]],
    ids=["empty", "blank", "number", "none", "too-long", "too-many"],
)
def test_clean_tags_rejects_what_is_not_a_short_text(tags: list[Any]) -> None:
    with pytest.raises(ChatError) as refused:
        services.clean_tags(tags)

    assert refused.value.code == "invalid"


def test_checkin_answer_is_stored_once(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    checkin = services.checkin_send(conversation_id=started.pk, user=cast.librarian)

    answer = services.checkin_answer(
        conversation_id=started.pk, checkin_id=checkin.public_id, answer="partly"
    )
    with pytest.raises(ChatError) as twice:
        services.checkin_answer(
            conversation_id=started.pk, checkin_id=checkin.public_id, answer="yes"
        )

    assert answer.kind == EventKind.CHECKIN_ANSWER
    assert answer.data == {"checkin": checkin.public_id, "answer": "partly"}
    assert twice.value.code == "conflict"


def test_checkin_answer_to_an_unknown_checkin_is_not_found(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with pytest.raises(ChatError) as refused:
        services.checkin_answer(conversation_id=started.pk, checkin_id="nope", answer="yes")

    assert refused.value.code == "not_found"


def test_block_ends_the_chat_and_refuses_the_patron_until_it_expires(cast: Cast) -> None:
    started = start(cast.queue)

    block = services.patron_block(conversation_id=started.pk, user=cast.librarian, hours=1)

    # Staff ended it: closed, never "abandoned" (which means the patron left).
    assert fresh(started).status == Status.CLOSED
    assert fresh(started).accepted_at is None
    with pytest.raises(ChatError) as refused:
        services.check_patron_not_blocked(library=cast.library, ip=PATRON_IP)
    assert refused.value.code == "forbidden"
    services.check_patron_not_blocked(library=cast.library, ip="198.51.100.1")
    block.until = timezone.now() - timedelta(seconds=1)
    block.save()
    services.check_patron_not_blocked(library=cast.library, ip=PATRON_IP)


# --- erasure ----------


def test_erase_scrubs_the_patrons_data_and_keeps_the_times(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian, question="My card 12345 is blocked")
    patron_says(started, "p1", "I live at 1 Main Street")
    services.conversation_close(
        conversation_id=started.pk, user=cast.librarian, read_level=2, tags=["accounts"]
    )
    before = fresh(started)

    services.conversation_erase(conversation_id=started.pk)

    after = fresh(started)
    assert after.question == ""
    assert after.patron_name == ""
    assert after.patron_email == ""
    assert after.page_url == ""
    assert after.patron_ip is None
    assert after.erased_at is not None
    assert Conversation.objects.by_token(started.token) is None
    assert not Event.objects.filter(conversation_id=started.pk).exclude(body="").exists()
    assert not Event.objects.filter(conversation_id=started.pk, author_name="Pat Patron").exists()
    assert (after.created_at, after.accepted_at, after.closed_at) == (
        before.created_at,
        before.accepted_at,
        before.closed_at,
    )
    assert (after.status, after.read_level) == (Status.CLOSED, 2)
    assert Event.objects.filter(conversation_id=started.pk).count() == before.last_seq
    statuses = Event.objects.filter(conversation_id=started.pk, kind=EventKind.STATUS)
    assert [event.data["status"] for event in statuses.order_by("seq")] == [
        Status.QUEUED,
        Status.ACTIVE,
        Status.CLOSED,
    ]


def test_erase_drops_a_transfer_note_but_keeps_checkin_answers(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    checkin = services.checkin_send(conversation_id=started.pk, user=cast.librarian)
    services.checkin_answer(conversation_id=started.pk, checkin_id=checkin.public_id, answer="no")
    services.conversation_transfer(
        conversation_id=started.pk,
        user=cast.librarian,
        to_queue=cast.queue,
        note="Pat at 1 Main Street needs the archive",
    )

    services.conversation_erase(conversation_id=started.pk)

    answer = Event.objects.get(conversation_id=started.pk, kind=EventKind.CHECKIN_ANSWER)
    assert answer.data == {"checkin": checkin.public_id, "answer": "no"}
    for event in Event.objects.filter(conversation_id=started.pk):
        assert "Main Street" not in str(event.data) + event.body


def test_erasing_an_open_conversation_ends_it(cast: Cast) -> None:
    started = start(cast.queue)

    services.conversation_erase(conversation_id=started.pk)

    assert fresh(started).status == Status.ABANDONED


def test_events_of_an_erased_conversation_still_serialise_for_the_wire(cast: Cast) -> None:
    # The desk can still open an erased conversation; every stored kind must still render.
    started = start_accepted(cast.queue, cast.librarian)
    checkin = services.checkin_send(conversation_id=started.pk, user=cast.librarian)
    services.checkin_answer(conversation_id=started.pk, checkin_id=checkin.public_id, answer="yes")

    services.conversation_erase(conversation_id=started.pk)

    for event in Event.objects.filter(conversation_id=started.pk):
        frame = events.event_frame(event, started.public_id)
        assert frame["seq"] == event.seq


# --- the conversation_ended signal ----------


def _closed_by_librarian(cast: Cast) -> Started:
    started = start_accepted(cast.queue, cast.librarian)
    services.conversation_close(conversation_id=started.pk, user=cast.librarian)
    return started


def _ended_by_patron(cast: Cast) -> Started:
    started = start_accepted(cast.queue, cast.librarian)
    services.conversation_end_by_patron(conversation_id=started.pk)
    return started


def _abandoned(cast: Cast) -> Started:
    started = start(cast.queue)
    services.conversation_end_by_patron(conversation_id=started.pk)
    return started


def _left_as_ticket(cast: Cast) -> Started:
    started = start(cast.queue)
    services.conversation_to_ticket(conversation_id=started.pk, email="pat@example.org")
    return started


ENDINGS: dict[str, Callable[[Cast], Started]] = {
    "closed-by-librarian": _closed_by_librarian,
    "ended-by-patron": _ended_by_patron,
    "abandoned": _abandoned,
    "ticket": _left_as_ticket,
}


@pytest.fixture
def ended_signals() -> Iterator[list[int]]:
    received: list[int] = []

    def receiver(sender: object, conversation_id: int, **kwargs: object) -> None:
        received.append(conversation_id)

    conversation_ended.connect(receiver)
    yield received
    conversation_ended.disconnect(receiver)


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_conversation_ended_is_sent_once_after_commit(
    cast: Cast,
    ending: str,
    ended_signals: list[int],
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        started = ENDINGS[ending](cast)
        assert ended_signals == []  # not before the commit
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_end_by_patron(conversation_id=started.pk)
        services.conversation_erase(conversation_id=started.pk)

    assert ended_signals == [started.pk]


def test_conversation_ended_is_not_sent_when_the_transaction_rolls_back(
    cast: Cast,
    ended_signals: list[int],
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        _fail_after(
            lambda: services.conversation_close(conversation_id=started.pk, user=cast.librarian)
        )

    assert ended_signals == []
    assert fresh(started).status == Status.ACTIVE


# --- what each service publishes ----------


def test_conversation_start_publishes_its_events_the_queue_change_and_the_position(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        started = start(cast.queue)

    question = message_frame(
        "Do you have The Hobbit?", name="Pat Patron", sender="patron", client_msg_id=None
    )
    assert published == [
        event_notice(started, 1, question),
        event_notice(started, 2, status_frame("queued", None)),
        queue_changed(cast.library.pk),
        positions((started, None)),
    ]


def test_a_resend_stores_nothing_and_rings_the_same_event_again(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    # The first notification may have been lost; clients drop the repeat by its seq.
    started = start(cast.queue)

    with django_capture_on_commit_callbacks(execute=True):
        patron_says(started, "once")
    with django_capture_on_commit_callbacks(execute=True):
        patron_says(started, "once")

    said = message_frame("Hello?", name="Pat Patron", sender="patron", client_msg_id="once")
    assert published == [event_notice(started, 3, said), event_notice(started, 3, said)]
    assert fresh(started).last_seq == 3


def test_a_client_msg_id_of_the_other_side_is_a_conflict_not_their_message(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    patron_says(started, "m-1", "patron words")

    with pytest.raises(ChatError) as refused:
        services.message_send(
            conversation_id=started.pk,
            sender=Sender.LIBRARIAN,
            author=cast.librarian,
            client_msg_id="m-1",
            body="librarian words",
        )

    assert refused.value.code == "conflict"
    assert Event.objects.filter(conversation_id=started.pk, body="librarian words").count() == 0


def test_a_layer_failure_after_commit_is_logged_not_raised(
    cast: Cast,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    class BrokenRedis:
        def publish(self, channel: str, payload: bytes) -> int:
            raise ConnectionError("redis is down")

    started = start(cast.queue)
    monkeypatch.setattr(doorbell, "_config", lambda: ("redis://127.0.0.1:1/0", "reflib"))
    monkeypatch.setattr(doorbell, "_sync_client", lambda address: BrokenRedis())

    with django_capture_on_commit_callbacks(execute=True):
        event = patron_says(started, "while-down", "stored anyway")

    assert Event.objects.get(pk=event.pk).body == "stored anyway"
    # A doorbell that cannot be reached is an outage: logged as dropped, never raised.
    assert f"doorbell unreachable; notice for {started.public_id} dropped" in caplog.text


def test_note_is_published_as_staff_only(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with django_capture_on_commit_callbacks(execute=True):
        services.message_send(
            conversation_id=started.pk,
            sender=Sender.LIBRARIAN,
            author=cast.librarian,
            client_msg_id="n",
            body="internal",
            note=True,
        )

    note = {
        "type": "note",
        "id": STORED_ID,
        "name": "Lena",
        "body": "internal",
        "client_msg_id": "n",
    }
    assert published == [event_notice(started, 4, note, staff_only=True)]


def test_accept_publishes_the_active_status_the_queue_change_and_new_positions(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    go_available(cast.librarian)
    first = start(cast.queue)
    second = start(cast.queue)

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_accept(conversation_id=first.pk, user=cast.librarian)

    status_notice = event_notice(first, 3, status_frame("active", "Lena"), librarian=cast.librarian)
    # Lena has two free slots left, so the next patron waits the median pickup time: that of
    # the one chat just accepted, a few milliseconds.
    assert published == [
        status_notice,
        queue_changed(cast.library.pk),
        positions((second, 0)),
    ]


def test_patron_ending_a_waiting_chat_publishes_the_status_and_the_queue_change(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    started = start(cast.queue)

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_end_by_patron(conversation_id=started.pk)

    assert published == [
        event_notice(started, 3, status_frame("abandoned", None, "ended by patron")),
        queue_changed(cast.library.pk),
    ]


def test_close_of_an_active_chat_publishes_only_its_status(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_close(conversation_id=started.pk, user=cast.librarian)

    assert published == [
        event_notice(
            started,
            4,
            status_frame("closed", "Lena", "closed by librarian"),
            librarian=cast.librarian,
        )
    ]


def test_closing_an_active_chat_tells_waiting_patrons_their_new_wait(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    go_available(cast.librarian)
    active = start_accepted(cast.queue, cast.librarian)
    waiting = start(cast.queue)
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_close(conversation_id=active.pk, user=cast.librarian)

    told = [message["waiting"] for topic, message in published if topic == doorbell.POSITIONS]
    assert [[public_id for public_id, _wait in lines] for lines in told] == [[waiting.public_id]]
    assert told[0][0][1] is not None


def test_read_marks_publish_live_read_frames_to_the_other_side(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with django_capture_on_commit_callbacks(execute=True):
        services.read_mark(conversation_id=started.pk, sender=Sender.PATRON, user=None, seq=99)
        services.read_mark(
            conversation_id=started.pk, sender=Sender.LIBRARIAN, user=cast.librarian, seq=2
        )

    (patron_group, patron_read), (librarian_group, librarian_read) = published
    assert patron_group == librarian_group == conv_group(started)
    assert (patron_read["type"], patron_read["audience"]) == ("chat.live", "staff")
    assert patron_read["frame"] == {
        "type": "read",
        "conversation": started.public_id,
        "from": "patron",
        "seq": 3,
    }
    assert (librarian_read["type"], librarian_read["audience"]) == ("chat.live", "all")
    assert (
        librarian_read["frame"].items() >= {"type": "read", "from": "librarian", "seq": 2}.items()
    )
    assert fresh(started).patron_last_read_seq == 3
    participant = Participant.objects.get(conversation_id=started.pk, user=cast.librarian)
    assert participant.last_read_seq == 2


def test_presence_change_publishes_the_queue_change_and_new_waits(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    waiting = start(cast.queue)

    with django_capture_on_commit_callbacks(execute=True):
        services.presence_set(user=cast.librarian, state=PresenceState.AVAILABLE)

    assert published == [
        queue_changed(cast.library.pk),
        positions((waiting, selectors.DEFAULT_PICKUP_S)),
    ]


def test_transfer_to_a_colleague_publishes_the_note_the_status_and_the_assignment(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_transfer(
            conversation_id=started.pk, user=cast.librarian, to_user=cast.manager, note="Yours"
        )

    note = {"type": "note", "id": STORED_ID, "name": "Lena", "body": "Yours", "client_msg_id": None}
    assert published == [
        event_notice(started, 4, note, staff_only=True),
        event_notice(
            started,
            5,
            status_frame("active", "Mara", "transferred to Mara"),
            librarian=cast.manager,
        ),
        (
            f"chat.user.{cast.manager.pk}",
            {
                "type": "chat.user_conversation",
                "conversation": started.public_id,
                "reason": "transfer",
            },
        ),
    ]


def test_transfer_to_a_partner_queue_publishes_to_both_libraries_desks(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    rollover_partnership_agree(source=cast.queue, partner=cast.other_queue)
    started = start_accepted(cast.queue, cast.librarian)

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_transfer(
            conversation_id=started.pk, user=cast.librarian, to_queue=cast.other_queue
        )

    reason = f"transferred to {cast.other_queue.name}"
    assert published[0] == event_notice(started, 4, status_frame("queued", None, reason))
    assert sorted(published[1:3]) == sorted(
        [queue_changed(cast.library.pk), queue_changed(cast.other_library.pk)]
    )
    assert published[3:] == [positions((started, None))]


def test_checkin_and_its_answer_are_published_to_everyone(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with django_capture_on_commit_callbacks(execute=True):
        checkin = services.checkin_send(conversation_id=started.pk, user=cast.librarian)
        services.checkin_answer(
            conversation_id=started.pk, checkin_id=checkin.public_id, answer="yes"
        )

    asked = {
        "type": "checkin",
        "id": STORED_ID,
        "from": "librarian",
        "name": "Lena",
        "body": "Does this answer your question?",
    }
    answered = {"type": "checkin_answer", "id": checkin.public_id, "answer": "yes"}
    assert published == [event_notice(started, 4, asked), event_notice(started, 5, answered)]


def test_nothing_is_published_when_the_transaction_rolls_back(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    def several_writes() -> None:
        patron_says(started, "rolled-back")
        services.conversation_close(conversation_id=started.pk, user=cast.librarian)
        start(cast.queue)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        _fail_after(several_writes)

    assert published == []
    assert fresh(started).last_seq == 3


def test_a_refused_service_stores_and_publishes_nothing(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ChatError):
        services.conversation_transfer(
            conversation_id=started.pk,
            user=cast.librarian,
            to_user=cast.other_librarian,
            note="appended before the refusal",
        )

    assert published == []
    assert not Event.objects.filter(conversation_id=started.pk, kind=EventKind.NOTE).exists()


# --- selectors: availability and waits ----------


def test_queue_is_offline_with_nobody_present(cast: Cast) -> None:
    availability = selectors.queue_availability(cast.queue)

    assert availability == Availability(
        online=False, librarians_available=0, free_slots=0, capacity=0
    )


def test_queue_is_offline_when_the_available_librarians_desk_went_silent(cast: Cast) -> None:
    go_available(cast.librarian)
    later = timezone.now() + selectors.PRESENCE_TIMEOUT + timedelta(seconds=1)

    assert not selectors.queue_availability(cast.queue, now=later).online


def test_queue_is_online_with_a_fresh_available_librarian(cast: Cast) -> None:
    go_available(cast.librarian)
    start_accepted(cast.queue, cast.librarian)

    availability = selectors.queue_availability(cast.queue)

    assert availability == Availability(
        online=True, librarians_available=1, free_slots=2, capacity=3
    )


@pytest.mark.parametrize("state", [PresenceState.AWAY, PresenceState.OFFLINE])
def test_queue_is_offline_when_the_librarian_is_not_available(
    cast: Cast, state: PresenceState
) -> None:
    services.presence_set(user=cast.librarian, state=state)

    assert not selectors.queue_availability(cast.queue).online


def test_a_librarian_of_another_library_does_not_make_the_queue_online(cast: Cast) -> None:
    go_available(cast.other_librarian)

    assert not selectors.queue_availability(cast.queue).online
    assert selectors.queue_availability(cast.other_queue).online


# --- selectors: the queue outlook, read at most once a second per process ----------


def outlook_read_then_librarian_away(cast: Cast) -> selectors.QueueOutlook:
    """The queue's outlook, read while its librarian is available; then another process sets
    the librarian away, and this process does not hear of it."""
    go_available(cast.librarian)
    outlook = selectors.queue_outlook(cast.queue)
    assert outlook.availability.online
    Presence.objects.filter(user=cast.librarian).update(state=PresenceState.AWAY)
    return outlook


def test_the_queue_outlook_is_kept_for_a_second_and_read_again_after_it(
    cast: Cast, outlook_clock: list[float]
) -> None:
    outlook_read_then_librarian_away(cast)

    outlook_clock[0] += selectors.OUTLOOK_TTL_S / 2
    kept = selectors.queue_outlook(cast.queue)
    outlook_clock[0] += selectors.OUTLOOK_TTL_S / 2
    read_again = selectors.queue_outlook(cast.queue)

    assert kept.availability.online
    assert not read_again.availability.online


def test_a_fresh_read_of_the_queue_outlook_replaces_the_kept_one(
    cast: Cast, outlook_clock: list[float]
) -> None:
    outlook_read_then_librarian_away(cast)

    assert not selectors.queue_outlook(cast.queue, fresh=True).availability.online
    assert not selectors.queue_outlook(cast.queue).availability.online


def test_a_read_begun_before_a_fresh_one_does_not_replace_it(
    cast: Cast, outlook_clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    go_available(cast.librarian)
    read = selectors.queue_availability

    def slow_read(queue: Queue) -> Availability:
        # The change commits while this read is on its way, and a fresh read follows it.
        seen = read(queue)
        monkeypatch.setattr(selectors, "queue_availability", read)
        Presence.objects.filter(user=cast.librarian).update(state=PresenceState.AWAY)
        outlook_clock[0] += 0.1
        selectors.queue_outlook(queue, fresh=True)
        return seen

    monkeypatch.setattr(selectors, "queue_availability", slow_read)
    late = selectors.queue_outlook(cast.queue)

    assert late.availability.online  # what that read saw ...
    assert not selectors.queue_outlook(cast.queue).availability.online  # ... is not kept


@pytest.mark.usefixtures("published", "outlook_clock")
def test_a_patron_joining_the_line_does_not_read_the_queue_outlook_again(
    cast: Cast, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    before = outlook_read_then_librarian_away(cast)

    with django_capture_on_commit_callbacks(execute=True):
        start(cast.queue)

    assert selectors.queue_outlook(cast.queue) is before


def test_an_accept_reads_the_queue_outlook_again_before_telling_the_waiting_patrons(
    cast: Cast,
    published: list[Notice],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    outlook_clock: list[float],
) -> None:
    go_available(cast.librarian)
    first, second = start(cast.queue), start(cast.queue)
    assert selectors.queue_outlook(cast.queue).availability.free_slots == 3
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_accept(conversation_id=first.pk, user=cast.librarian)

    assert selectors.queue_outlook(cast.queue).availability.free_slots == 2
    # A free slot waits for the second patron: the wait is the median pickup, now that of the
    # chat just accepted at once (the default 30 s before it).
    positions = [notice for topic, notice in published if topic == doorbell.POSITIONS]
    assert positions == [{"type": "chat.positions", "waiting": [(second.public_id, 0)]}]


@pytest.mark.usefixtures("published", "outlook_clock")
def test_a_presence_change_reads_the_queue_outlook_again(
    cast: Cast, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    go_available(cast.librarian)
    assert selectors.queue_outlook(cast.queue).availability.online

    with django_capture_on_commit_callbacks(execute=True):
        services.presence_set(user=cast.librarian, state=PresenceState.AWAY)

    assert not selectors.queue_outlook(cast.queue).availability.online


MODEL = WaitModel(pickup_s=30, handling_s=400)
ONE_LIBRARIAN_ONE_FREE = Availability(online=True, librarians_available=1, free_slots=1, capacity=3)


@pytest.mark.parametrize(
    ("position", "expected"),
    [(1, 30), (2, 430), (4, 430), (5, 830), (7, 830), (8, 1230)],
)
def test_estimated_wait_is_pickup_within_free_slots_then_rounds_of_handling(
    cast: Cast, position: int, expected: int
) -> None:
    assert (
        selectors.estimated_wait_s(cast.queue, position, ONE_LIBRARIAN_ONE_FREE, MODEL) == expected
    )


def test_estimated_wait_of_patrons_who_all_have_a_free_slot_is_the_pickup_time(
    cast: Cast,
) -> None:
    availability = Availability(online=True, librarians_available=2, free_slots=6, capacity=6)

    waits = [selectors.estimated_wait_s(cast.queue, n, availability, MODEL) for n in range(1, 7)]

    assert waits == [30] * 6


def test_estimated_wait_is_unknown_when_the_queue_is_offline(cast: Cast) -> None:
    offline = Availability(online=False, librarians_available=0, free_slots=0, capacity=0)

    assert selectors.estimated_wait_s(cast.queue, 1, offline, MODEL) is None


def _history(cast: Cast, pickup_s: int, handling_s: int | None) -> None:
    started = start(cast.queue)
    created = timezone.now() - timedelta(hours=1)
    accepted = created + timedelta(seconds=pickup_s)
    Conversation.objects.filter(pk=started.pk).update(
        status=Status.CLOSED,
        created_at=created,
        accepted_at=accepted,
        closed_at=None if handling_s is None else accepted + timedelta(seconds=handling_s),
    )


def test_wait_model_uses_the_medians_of_recent_chats(cast: Cast) -> None:
    _history(cast, pickup_s=10, handling_s=300)
    _history(cast, pickup_s=20, handling_s=600)
    _history(cast, pickup_s=90, handling_s=900)

    assert selectors.wait_model(cast.queue) == WaitModel(pickup_s=20, handling_s=600)


def test_wait_model_has_defaults_without_history(cast: Cast) -> None:
    assert selectors.wait_model(cast.queue) == WaitModel(
        pickup_s=selectors.DEFAULT_PICKUP_S, handling_s=selectors.DEFAULT_HANDLING_S
    )


def test_wait_model_ignores_requeued_chats_without_an_accept_time(cast: Cast) -> None:
    # Demo history and old rows may hold a closed chat that never had accepted_at.
    Conversation.objects.create(
        library=cast.library,
        queue=cast.queue,
        origin_queue=cast.queue,
        status=Status.CLOSED,
        token_hash=hash_token("odd"),
        closed_at=timezone.now(),
    )

    assert selectors.wait_model(cast.queue).handling_s == selectors.DEFAULT_HANDLING_S


def test_wait_model_skips_chats_that_ended_without_being_answered(cast: Cast) -> None:
    # Abandoned, missed and ticket chats have a closed_at but no accepted_at: they have no
    # handling time, and must not break the estimate of every waiting patron.
    _history(cast, pickup_s=20, handling_s=600)
    services.conversation_end_by_patron(conversation_id=start(cast.queue).pk)

    assert selectors.wait_model(cast.queue) == WaitModel(pickup_s=20, handling_s=600)


def test_queue_position_follows_the_order_of_arrival(cast: Cast) -> None:
    first, second, third = (start(cast.queue) for _ in range(3))
    services.conversation_accept(conversation_id=first.pk, user=cast.librarian)

    assert selectors.queue_position(fresh(second)) == 1
    assert selectors.queue_position(fresh(third)) == 2
