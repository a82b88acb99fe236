"""Data migrations of the chat, run forwards on rows written by the code before them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from reflib.services import library_upsert

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("chat", "0004_remove_unused_ticket_source_and_participant_joined_at")]
AFTER = [("chat", "0005_open_chats_status_records_librarian_id")]


def test_open_chats_get_their_librarians_id_on_the_latest_status_event_only() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Conversation = apps.get_model("chat", "Conversation")
    Event = apps.get_model("chat", "Event")
    # The other apps' tables are at their newest: their rows are written as today's code does.
    lena = User.objects.create(username="lena")
    library = library_upsert(slug="north", timezone="UTC", queue_slugs=["general"])
    queue = library.queues.get()

    def chat(status: str, token_hash: str) -> object:
        conversation = Conversation.objects.create(
            library_id=library.pk,
            queue_id=queue.pk,
            origin_queue_id=queue.pk,
            token_hash=token_hash,
            question="Hours?",
            status=status,
            librarian_id=lena.pk,
            last_seq=3,
        )
        for seq, data in enumerate(
            [{"status": "queued", "librarian": None}, {"status": status, "librarian": "Lena"}],
            start=2,
        ):
            Event.objects.create(
                conversation=conversation, seq=seq, kind="status", sender="system", data=data
            )
        return conversation

    active = chat("active", "a" * 64)
    closed = chat("closed", "c" * 64)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    def recorded(conversation: object) -> list[dict[str, object]]:
        rows = Event.objects.filter(conversation=conversation).order_by("seq")
        return [event.data for event in rows]

    assert recorded(active) == [
        {"status": "queued", "librarian": None},
        {"status": "active", "librarian": "Lena", "librarian_id": lena.pk},
    ]
    assert recorded(closed) == [
        {"status": "queued", "librarian": None},
        {"status": "closed", "librarian": "Lena"},
    ]
