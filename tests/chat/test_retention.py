"""Retention (SPEC §4): conversations and tickets older than the library's retention are
anonymised, personal data gone and statistics intact; logged without the personal data."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from pytest_django import Settings

from chat import retention, services, tasks
from chat.models import Conversation, Event, Presence, Sender, Status, Ticket, TicketSource
from reflib.jobs import periodic_tasks_ensure
from reflib.models import JobOutcome, JobRun
from tests.conftest import Cast

pytestmark = pytest.mark.django_db

PATRON_LINES = [
    "Hi, my name is Pat Patron, I need the 1911 census for Cork",
    "you can reach me at pat@example.org or (503) 555-0142",
    "my card is 21234001234567 and I live at 1428 Elm Street",
]
LIBRARIAN_LINE = "Thanks Pat, call number HA37 .I7 1911, room 214"
NOTE = "Pat asked twice; phone (503) 555-0142"


@pytest.fixture(autouse=True)
def _media_root(settings: Settings, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def a_png() -> SimpleUploadedFile:
    from PIL import Image

    data = io.BytesIO()
    Image.new("RGB", (2, 2)).save(data, "PNG")
    return SimpleUploadedFile("pat-patron-id.png", data.getvalue(), content_type="image/png")


def finished_chat(cast: Cast, *, days_ago: int, library_queue: Any = None) -> Conversation:
    """A whole conversation as the desk holds it: answered, a note, a file, closed, rated."""
    queue = library_queue or cast.queue
    librarian = cast.librarian if queue == cast.queue else cast.other_librarian
    Presence.objects.update_or_create(user=librarian, defaults={"state": "available"})
    started = services.conversation_start(
        queue=queue,
        question="Do you have the 1911 census? I'm Pat Patron, pat@example.org",
        name="Pat Patron",
        email="pat@example.org",
        page_url="https://www.demo-library.org/genealogy?patron=pat@example.org",
        ip="203.0.113.7",
    )
    conversation = started.conversation
    services.conversation_accept(conversation_id=conversation.pk, user=librarian)
    for number, line in enumerate(PATRON_LINES):
        services.message_send(
            conversation_id=conversation.pk,
            sender=Sender.PATRON,
            author=None,
            client_msg_id=f"p{number}",
            body=line,
        )
    services.message_send(
        conversation_id=conversation.pk,
        sender=Sender.LIBRARIAN,
        author=librarian,
        client_msg_id="l1",
        body=LIBRARIAN_LINE,
    )
    services.message_send(
        conversation_id=conversation.pk,
        sender=Sender.LIBRARIAN,
        author=librarian,
        client_msg_id="n1",
        body=NOTE,
        note=True,
    )
    services.file_attach(
        conversation_id=conversation.pk,
        sender=Sender.PATRON,
        author=None,
        upload=a_png(),
        content_type="image/png",
        filename="pat-patron-id.png",
    )
    services.conversation_close(
        conversation_id=conversation.pk, user=librarian, read_level=3, tags=["genealogy"]
    )
    services.conversation_rate(
        conversation_id=conversation.pk, score=5, comment="Great! Pat (pat@example.org)"
    )
    past = timezone.now() - timedelta(days=days_ago)
    Conversation.objects.filter(pk=conversation.pk).update(created_at=past)
    return Conversation.objects.get(pk=conversation.pk)


def statistics(conversation: Conversation) -> tuple[Any, ...]:
    conversation.refresh_from_db()
    return (
        conversation.status,
        conversation.created_at,
        conversation.accepted_at,
        conversation.closed_at,
        conversation.librarian_id,
        conversation.queue_id,
        conversation.tags,
        conversation.read_level,
        conversation.rating,
        conversation.last_seq,
        list(conversation.events.values_list("seq", "kind", "sender", "created_at")),
    )


def every_text(conversation: Conversation) -> str:
    conversation.refresh_from_db()
    texts = [
        conversation.question,
        conversation.patron_name,
        conversation.patron_email,
        conversation.page_url,
        conversation.rating_comment,
    ]
    for event in Event.objects.filter(conversation=conversation):
        texts += [event.body, event.author_name, str(event.data)]
    return "\n".join(texts)


def test_an_old_conversation_loses_its_personal_data_and_keeps_its_statistics(
    cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    old = finished_chat(cast, days_ago=91)
    kept = statistics(old)
    attachment_file = old.attachments.get().file
    token_hash = old.token_hash

    with caplog.at_level(logging.INFO):
        result = retention.retention_apply(library_id=cast.library.pk)

    assert result.conversations == 1
    assert statistics(old) == kept
    old.refresh_from_db()
    assert old.anonymised_at is not None
    assert (old.patron_name, old.patron_email, old.page_url, old.patron_ip) == ("", "", "", None)
    assert old.token_hash != token_hash
    text = every_text(old)
    for personal in ["Pat", "pat@example.org", "555-0142", "21234001234567", "Elm Street"]:
        assert personal not in text
    bodies = list(old.events.filter(kind="message").values_list("body", flat=True))
    assert "Hi, my name is [name], I need the 1911 census for Cork" in bodies
    assert "you can reach me at [email] or [phone]" in bodies
    assert "my card is [card] and I live at [address]" in bodies
    assert "Thanks [name], call number HA37 .I7 1911, room 214" in bodies
    assert old.events.get(kind="note").body == "[name] asked twice; phone [phone]"
    assert old.rating_comment == "Great! [name] ([email])"
    assert not old.attachments.exists()
    assert not attachment_file.storage.exists(attachment_file.name)
    assert "pat-patron" not in str(old.events.get(kind="file").data)

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "retention for library demo (90 days): 1 conversations" in logged
    for personal in ["Pat", "pat@example.org", "555-0142", "census"]:
        assert personal not in logged


def test_recent_and_open_conversations_are_left_alone_and_a_second_run_does_nothing(
    cast: Cast,
) -> None:
    recent = finished_chat(cast, days_ago=89)
    still_open = services.conversation_start(
        queue=cast.queue, question="Hello, I'm Pat", name="Pat Patron"
    ).conversation
    Conversation.objects.filter(pk=still_open.pk).update(
        created_at=timezone.now() - timedelta(days=200)
    )
    old = finished_chat(cast, days_ago=120)

    assert retention.retention_apply(library_id=cast.library.pk).conversations == 1
    assert retention.retention_apply(library_id=cast.library.pk).conversations == 0
    recent.refresh_from_db()
    still_open.refresh_from_db()
    old.refresh_from_db()
    assert recent.patron_name == "Pat Patron"
    assert recent.anonymised_at is None
    assert still_open.patron_name == "Pat Patron"
    assert still_open.status == Status.QUEUED
    assert old.anonymised_at is not None


def test_each_library_has_its_own_retention_and_card_patterns(cast: Cast) -> None:
    other = cast.other_library
    other.retention_days = 30
    other.card_patterns = r"\bOC-\d{5}\b"
    other.save()
    mine = finished_chat(cast, days_ago=45)
    theirs = finished_chat(cast, days_ago=45, library_queue=cast.other_queue)
    # The other library's card numbers look nothing like a 14-digit barcode.
    Event.objects.filter(conversation=theirs, client_msg_id="l1").update(
        body="Reader card OC-12345 on file"
    )

    assert retention.retention_apply(library_id=cast.library.pk).conversations == 0
    assert retention.retention_apply(library_id=other.pk).conversations == 1
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.anonymised_at is None
    assert theirs.anonymised_at is not None
    assert "OC-12345" not in every_text(theirs)
    assert "Reader card [card] on file" in every_text(theirs)


def test_an_old_ticket_is_anonymised_and_its_link_stops_working(cast: Cast) -> None:
    created = services.ticket_create(
        queue=cast.queue,
        question="Please send me the census; I'm at 1428 Elm Street, phone 503-555-0142",
        email="pat@example.org",
        name="Pat Patron",
    )
    ticket = created.ticket
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now() - timedelta(days=91))

    assert retention.retention_apply(library_id=cast.library.pk).tickets == 1

    ticket.refresh_from_db()
    assert (ticket.patron_name, ticket.patron_email) == ("", "")
    assert ticket.question == "Please send me the census; I'm at [address], phone [phone]"
    assert ticket.messages.get().body == ticket.question
    assert ticket.anonymised_at is not None
    assert ticket.source == TicketSource.OFFLINE
    assert Ticket.objects.filter(access_hash=created.access_key).count() == 0
    assert retention.retention_apply(library_id=cast.library.pk).tickets == 0


def test_a_chat_left_as_a_ticket_is_anonymised_with_its_ticket(cast: Cast) -> None:
    Presence.objects.create(user=cast.librarian, state="available")
    started = services.conversation_start(
        queue=cast.queue, question="Need help, call 503-555-0142", name="Pat Patron"
    )
    services.conversation_to_ticket(
        conversation_id=started.conversation.pk, email="pat@example.org"
    )
    Conversation.objects.filter(pk=started.conversation.pk).update(
        created_at=timezone.now() - timedelta(days=100)
    )

    assert retention.retention_apply(library_id=cast.library.pk).conversations == 1

    ticket = Ticket.objects.get(conversation=started.conversation)
    assert (ticket.patron_name, ticket.patron_email) == ("", "")
    assert ticket.question == "Need help, call [phone]"
    assert ticket.anonymised_at is not None


def test_the_daily_task_runs_retention_for_its_library_as_a_recorded_job(cast: Cast) -> None:
    old = finished_chat(cast, days_ago=91)

    tasks.apply_retention.delay(library_id=cast.library.pk)

    old.refresh_from_db()
    assert old.anonymised_at is not None
    run = JobRun.objects.get(task="chat.tasks.apply_retention")
    assert (run.library, run.outcome) == (cast.library, JobOutcome.SUCCESS)


def test_retention_is_scheduled_daily_per_library_in_its_time_zone(cast: Cast) -> None:
    periodic_tasks_ensure()
    scheduled = PeriodicTask.objects.filter(task="chat.tasks.apply_retention")
    times = {(t.crontab.hour, t.crontab.minute, str(t.crontab.timezone)) for t in scheduled}
    assert times == {("3", "30", "America/New_York"), ("3", "30", "Europe/Madrid")}
