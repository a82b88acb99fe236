"""The chat's timers: ``services.sweep(now=...)`` run with the clock moved forward.

The sweep runs in a Celery worker, where transactions commit: each sweep here runs its commit
hooks too, with the channel layer replaced by a recorder.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks

from chat import doorbell, events, services
from chat.models import Conversation, Event, EventKind, Presence, PresenceState, Sender, Status
from chat.services import SweepResult
from reflib.services import rollover_partnership_agree
from tests.chat.conftest import Started, fresh, go_available, start
from tests.conftest import Cast

Notice = tuple[str, dict[str, Any]]
Sweep = Callable[[datetime], tuple[SweepResult, list[Notice]]]


@pytest.fixture
def sweep_at(
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> Sweep:
    """Run one sweep at ``now``; return its result and what it published."""

    def run(now: datetime) -> tuple[SweepResult, list[Notice]]:
        sent: list[Notice] = []
        monkeypatch.setattr(events, "_send", lambda group, message: sent.append((group, message)))
        monkeypatch.setattr(doorbell, "ring_sync", lambda topic, note: sent.append((topic, note)))
        with django_capture_on_commit_callbacks(execute=True):
            result = services.sweep(now=now)
        return result, sent

    return run


def patron_alive_at(started: Started, when: datetime) -> None:
    """The patron's socket is open and its heartbeat was last heard at ``when``."""
    Conversation.objects.filter(pk=started.pk).update(patron_connected=True, patron_seen_at=when)


def desk_alive_at(cast: Cast, when: datetime) -> None:
    Presence.objects.filter(user=cast.other_librarian).update(seen_at=when)


def after(started: Started, seconds: float) -> datetime:
    return fresh(started).created_at + timedelta(seconds=seconds)


def log_of(started: Started) -> list[Event]:
    return list(Event.objects.filter(conversation_id=started.pk).order_by("seq"))


def with_partner(cast: Cast) -> None:
    """``other/general`` is a partner of ``demo/general``, and Otto is available there."""
    rollover_partnership_agree(source=cast.queue, partner=cast.other_queue)
    go_available(cast.other_librarian)


# --- presence ----------


def test_available_presence_whose_desk_went_silent_becomes_away(
    cast: Cast, sweep_at: Sweep
) -> None:
    go_available(cast.librarian)
    go_available(cast.manager)
    now = timezone.now() + timedelta(seconds=61)
    Presence.objects.filter(user=cast.manager).update(seen_at=now - timedelta(seconds=5))

    result, sent = sweep_at(now)

    assert result.presences_expired == 1
    assert Presence.objects.get(user=cast.librarian).state == PresenceState.AWAY
    assert Presence.objects.get(user=cast.manager).state == PresenceState.AVAILABLE
    assert (f"chat.desk.{cast.library.pk}", {"type": "chat.queue_changed", "id": mock.ANY}) in sent


def test_away_presence_is_left_alone(cast: Cast, sweep_at: Sweep) -> None:
    services.presence_set(user=cast.librarian, state=PresenceState.AWAY)

    result, _sent = sweep_at(timezone.now() + timedelta(hours=1))

    assert result.presences_expired == 0
    assert Presence.objects.get(user=cast.librarian).state == PresenceState.AWAY


# --- waiting patrons: ticket offer ----------


def test_patron_waiting_less_than_the_unanswered_limit_is_left_waiting(
    cast: Cast, sweep_at: Sweep
) -> None:
    started = start(cast.queue)
    now = after(started, cast.queue.unanswered_limit_s - 5)
    patron_alive_at(started, now)

    result, sent = sweep_at(now)

    assert result == SweepResult()
    assert sent == []
    assert fresh(started).last_seq == 2


def test_patron_waiting_past_the_unanswered_limit_is_offered_a_ticket_once(
    cast: Cast, sweep_at: Sweep
) -> None:
    started = start(cast.queue)
    now = after(started, cast.queue.unanswered_limit_s + 1)
    patron_alive_at(started, now)

    result, sent = sweep_at(now)
    patron_alive_at(started, now + timedelta(seconds=5))
    again, sent_again = sweep_at(now + timedelta(seconds=5))

    assert result.tickets_offered == 1
    offers = [event for event in log_of(started) if event.sender == Sender.SYSTEM and event.body]
    (offer,) = offers
    assert offer.kind == EventKind.MESSAGE
    assert offer.seq == 3
    assert offer.data == {"action": "offer_ticket"}
    assert [message.get("event") for _group, message in sent] == [
        {
            "type": "message",
            "conversation": started.public_id,
            "seq": 3,
            "ts": offer.created_at.isoformat(),
            "id": offer.public_id,
            "name": "Demo Public Library",
            "body": (
                "No librarian is free yet. You can keep waiting, or leave your question "
                "and we will answer by e-mail."
            ),
            "client_msg_id": None,
            "from": "system",
            "action": "offer_ticket",
        }
    ]
    conversation = fresh(started)
    assert conversation.status == Status.QUEUED
    assert conversation.ticket_offered_at == now
    assert again == SweepResult()
    assert sent_again == []
    assert fresh(started).last_seq == 3


def test_partner_queue_with_nobody_available_does_not_take_the_patron(
    cast: Cast, sweep_at: Sweep
) -> None:
    rollover_partnership_agree(source=cast.queue, partner=cast.other_queue)
    started = start(cast.queue)
    now = after(started, cast.queue.unanswered_limit_s + 1)
    patron_alive_at(started, now)

    result, _sent = sweep_at(now)

    assert result.rolled_over == 0
    assert result.tickets_offered == 1
    assert fresh(started).queue == cast.queue


# --- waiting patrons: rollover ----------


def test_patron_waiting_past_the_limit_rolls_over_once_to_an_online_partner_queue(
    cast: Cast, sweep_at: Sweep
) -> None:
    with_partner(cast)
    started = start(cast.queue)
    now = after(started, cast.queue.unanswered_limit_s + 1)
    patron_alive_at(started, now)
    desk_alive_at(cast, now)

    result, sent = sweep_at(now)
    soon = now + timedelta(seconds=5)
    patron_alive_at(started, soon)
    desk_alive_at(cast, soon)
    again, _sent_again = sweep_at(soon)

    assert result.rolled_over == 1
    assert result.tickets_offered == 0
    conversation = fresh(started)
    assert conversation.queue == cast.other_queue
    assert conversation.origin_queue == cast.queue
    assert conversation.library == cast.library
    assert conversation.rolled_over
    assert conversation.status == Status.QUEUED
    (status,) = log_of(started)[2:]
    assert status.kind == EventKind.STATUS
    assert status.data["status"] == "queued"
    assert "rolled over" in status.data["reason"]
    groups = {group for group, message in sent if message["type"] == "chat.queue_changed"}
    assert groups == {f"chat.desk.{cast.library.pk}", f"chat.desk.{cast.other_library.pk}"}
    assert again == SweepResult()
    assert fresh(started).last_seq == 3


def test_rolled_over_patron_still_unanswered_is_offered_a_ticket_not_a_second_rollover(
    cast: Cast, sweep_at: Sweep
) -> None:
    with_partner(cast)
    rollover_partnership_agree(source=cast.other_queue, partner=cast.queue)
    go_available(cast.librarian)
    started = start(cast.queue)
    now = after(started, cast.queue.unanswered_limit_s + 1)
    patron_alive_at(started, now)
    desk_alive_at(cast, now)
    sweep_at(now)
    later = now + timedelta(seconds=cast.other_queue.unanswered_limit_s + 1)
    patron_alive_at(started, later)
    desk_alive_at(cast, later)
    Presence.objects.filter(user=cast.librarian).update(seen_at=later)

    result, _sent = sweep_at(later)

    assert result.rolled_over == 0
    assert result.tickets_offered == 1
    assert fresh(started).queue == cast.other_queue


# --- waiting patrons: missed and abandoned ----------


def test_patron_waiting_past_missed_after_is_missed(cast: Cast, sweep_at: Sweep) -> None:
    started = start(cast.queue)
    now = after(started, cast.queue.missed_after_s)
    patron_alive_at(started, now)

    result, sent = sweep_at(now)
    again, _sent_again = sweep_at(now + timedelta(seconds=5))

    assert result.missed == 1
    conversation = fresh(started)
    assert conversation.status == Status.MISSED
    assert conversation.closed_at is not None
    last = log_of(started)[-1]
    assert last.data["status"] == "missed"
    assert (f"chat.desk.{cast.library.pk}", {"type": "chat.queue_changed", "id": mock.ANY}) in sent
    assert again == SweepResult()
    assert fresh(started).last_seq == last.seq


def test_missed_limit_is_the_origin_queues_even_after_a_rollover(
    cast: Cast, sweep_at: Sweep
) -> None:
    with_partner(cast)
    cast.other_queue.missed_after_s = 3600
    cast.other_queue.save()
    started = start(cast.queue)
    Conversation.objects.filter(pk=started.pk).update(queue=cast.other_queue, rolled_over=True)
    now = after(started, cast.queue.missed_after_s)
    patron_alive_at(started, now)

    result, _sent = sweep_at(now)

    assert result.missed == 1
    assert fresh(started).status == Status.MISSED


def test_patron_disconnected_for_over_a_minute_while_waiting_has_abandoned(
    cast: Cast, sweep_at: Sweep
) -> None:
    started = start(cast.queue)
    services.patron_connection(conversation_id=started.pk, connected=False)

    result, sent = sweep_at(after(started, 61))
    again, _sent_again = sweep_at(after(started, 70))

    assert result.abandoned == 1
    conversation = fresh(started)
    assert conversation.status == Status.ABANDONED
    assert conversation.closed_at is not None
    assert log_of(started)[-1].data["status"] == "abandoned"
    assert (f"chat.desk.{cast.library.pk}", {"type": "chat.queue_changed", "id": mock.ANY}) in sent
    assert again == SweepResult()


def test_patron_disconnected_for_less_than_a_minute_is_still_waiting(
    cast: Cast, sweep_at: Sweep
) -> None:
    started = start(cast.queue)
    services.patron_connection(conversation_id=started.pk, connected=False)

    result, _sent = sweep_at(after(started, 30))

    assert result == SweepResult()
    assert fresh(started).status == Status.QUEUED


def test_waiting_patron_whose_socket_went_silent_for_over_a_minute_has_abandoned(
    cast: Cast, sweep_at: Sweep
) -> None:
    # A daphne process that dies (SIGKILL, OOM) never runs disconnect(): the patron stays
    # "connected" in the database, and only the stopped heartbeat tells that they are gone.
    started = start(cast.queue)
    patron_alive_at(started, after(started, 0))

    result, _sent = sweep_at(after(started, 121))

    assert result.abandoned == 1
    assert fresh(started).status == Status.ABANDONED


def test_answered_chat_put_back_in_the_queue_is_not_missed_by_its_age(
    cast: Cast, sweep_at: Sweep
) -> None:
    started = start(cast.queue)
    services.conversation_accept(conversation_id=started.pk, user=cast.librarian)
    requeued_at = after(started, cast.queue.missed_after_s + 600)
    services.conversation_transfer(
        conversation_id=started.pk, user=cast.librarian, to_queue=cast.queue
    )
    Conversation.objects.filter(pk=started.pk).update(
        created_at=requeued_at - timedelta(seconds=cast.queue.missed_after_s + 600),
        queued_since=requeued_at,
    )
    patron_alive_at(started, requeued_at + timedelta(seconds=10))

    soon, _sent = sweep_at(requeued_at + timedelta(seconds=10))
    assert soon == SweepResult()
    assert fresh(started).status == Status.QUEUED

    late_at = requeued_at + timedelta(seconds=cast.queue.missed_after_s + 10)
    patron_alive_at(started, late_at)
    late, _sent_late = sweep_at(late_at)

    assert late.missed == late.abandoned == 0
    assert fresh(started).status == Status.CLOSED
    last = log_of(started)[-1].data
    assert (last["status"], last["reason"]) == ("closed", "nobody took over the chat")


# --- what the sweep leaves alone ----------


def test_conversation_accepted_meanwhile_is_untouched(cast: Cast, sweep_at: Sweep) -> None:
    with_partner(cast)
    started = start(cast.queue)
    services.conversation_accept(conversation_id=started.pk, user=cast.librarian)
    before = fresh(started)

    result, sent = sweep_at(after(started, cast.queue.missed_after_s + 3600))

    assert result.missed == result.abandoned == result.rolled_over == result.tickets_offered == 0
    conversation = fresh(started)
    assert conversation.status == Status.ACTIVE
    assert conversation.queue == cast.queue
    assert conversation.last_seq == before.last_seq
    assert not [message for _group, message in sent if message["type"] == "chat.event"]


def test_sweeping_twice_at_the_same_time_changes_nothing_the_second_time(
    cast: Cast, sweep_at: Sweep
) -> None:
    with_partner(cast)
    go_available(cast.librarian)
    rolling = start(cast.queue)
    other = start(cast.other_queue)
    now = after(rolling, 120)
    for started in (rolling, other):
        patron_alive_at(started, now)
    desk_alive_at(cast, now)
    logs_before = {started.pk: fresh(started).last_seq for started in (rolling, other)}

    first, _sent = sweep_at(now)
    logs_after_first = {started.pk: fresh(started).last_seq for started in (rolling, other)}
    second, sent_second = sweep_at(now)

    assert first == SweepResult(presences_expired=1, tickets_offered=1, rolled_over=1)
    assert second == SweepResult()
    assert sent_second == []
    assert logs_after_first == {rolling.pk: logs_before[rolling.pk] + 1, other.pk: 3}
    assert {started.pk: fresh(started).last_seq for started in (rolling, other)} == (
        logs_after_first
    )
