"""Races against the real PostgreSQL: concurrent writers into one conversation.

Each worker thread has its own database connection, as each daphne process or Celery worker
does; the conversation's row lock is what keeps ``seq`` gapless and accepts exclusive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from django.contrib.auth.models import User
from django.db import close_old_connections, connection

from chat import doorbell, services
from chat.errors import ChatError
from chat.models import Event, Sender, Status
from reflib.models import Role
from reflib.services import staff_upsert
from tests.chat.conftest import Started, fresh, start
from tests.conftest import Cast

pytestmark = [
    pytest.mark.postgres,
]

T = TypeVar("T")
THREADS = 16


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The notices the writers publish (after commit), recorded instead of sent."""
    sent: list[dict[str, Any]] = []
    lock = threading.Lock()

    def record(topic: str, message: dict[str, Any]) -> None:
        with lock:
            sent.append(message)

    monkeypatch.setattr(doorbell, "ring_sync", record)
    return sent


def in_threads(count: int, work: Callable[[int], T], *, threads: int = THREADS) -> list[T]:
    """Run ``work(0)`` .. ``work(count - 1)`` on ``threads`` threads that all start at once.

    Each thread is one database client for its whole life, like a daphne process, and closes
    its connection at the end.
    """
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def worker(first: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            for number in range(first, count, threads):
                results[number] = work(number)
        except BaseException as error:
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for first in range(threads):
            pool.submit(worker, first)
    if errors:
        raise errors[0]
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def patron_send(started: Started, client_msg_id: str) -> Event:
    event, _created = services.message_send(
        conversation_id=started.pk,
        sender=Sender.PATRON,
        author=None,
        client_msg_id=client_msg_id,
        body=f"message {client_msg_id}",
    )
    return event


def test_500_concurrent_messages_get_seq_3_to_502_without_gaps_or_duplicates(
    cast: Cast, published: list[dict[str, Any]]
) -> None:
    started = start(cast.queue)
    published.clear()

    stored = in_threads(500, lambda number: patron_send(started, f"m-{number}"))

    assert sorted(event.seq for event in stored) == list(range(3, 503))
    seqs = list(
        Event.objects.filter(conversation_id=started.pk)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    assert seqs == list(range(1, 503))
    assert (
        Event.objects.filter(conversation_id=started.pk, client_msg_id__startswith="m-").count()
        == 500
    )
    assert fresh(started).last_seq == 502
    assert sorted(message["event"]["seq"] for message in published) == list(range(3, 503))


def test_20_concurrent_resends_of_one_client_msg_id_store_one_event(
    cast: Cast, published: list[dict[str, Any]]
) -> None:
    started = start(cast.queue)
    published.clear()

    stored = in_threads(20, lambda _number: patron_send(started, "same-id"), threads=20)

    assert {event.seq for event in stored} == {3}
    assert {event.pk for event in stored} == {stored[0].pk}
    assert Event.objects.filter(conversation_id=started.pk).count() == 3
    assert fresh(started).last_seq == 3
    # Each resend rings the doorbell for the one stored event again; clients drop repeats.
    assert [message["event"]["seq"] for message in published] == [3] * 20


def test_8_librarians_accepting_at_once_give_exactly_one_success(
    cast: Cast, published: list[dict[str, Any]]
) -> None:
    librarians: list[User] = [
        staff_upsert(
            username=f"racer{number}",
            library=cast.library,
            role=Role.LIBRARIAN,
            display_name=f"Racer {number}",
        )
        for number in range(8)
    ]
    started = start(cast.queue)

    def accept(number: int) -> str:
        try:
            services.conversation_accept(conversation_id=started.pk, user=librarians[number])
        except ChatError as error:
            return error.code
        return "accepted"

    outcomes = in_threads(8, accept, threads=8)

    assert sorted(outcomes) == ["accepted"] + ["conflict"] * 7
    winner = librarians[outcomes.index("accepted")]
    conversation = fresh(started)
    assert conversation.status == Status.ACTIVE
    assert conversation.librarian == winner
    assert conversation.participants.count() == 1
    statuses = Event.objects.filter(conversation_id=started.pk, kind="status")
    assert [event.data["status"] for event in statuses.order_by("seq")] == ["queued", "active"]
