"""Every ended chat becomes exactly one transaction, with its outcome, times and categories."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks

from analytics.models import CategoryKind, Outcome, Source, Transaction
from analytics.services import category_rename, transaction_record_chat
from chat import services
from chat.models import Conversation, Sender
from tests.analytics.conftest import category
from tests.chat.conftest import Started, start, start_accepted
from tests.chat.test_services import _abandoned, _ended_by_patron, _left_as_ticket
from tests.conftest import Cast


def _answered(cast: Cast) -> Started:
    started = start_accepted(cast.queue, cast.librarian)
    services.message_send(
        conversation_id=started.pk,
        sender=Sender.LIBRARIAN,
        author=cast.librarian,
        client_msg_id="reply-1",
        body="Yes, it is on the shelf.",
    )
    services.conversation_close(
        conversation_id=started.pk, user=cast.librarian, read_level=2, tags=["Catalogue", "fiction"]
    )
    return started


def _patron_went_silent(cast: Cast) -> Started:
    started = start(cast.queue)
    Conversation.objects.filter(pk=started.pk).update(
        patron_connected=False, patron_seen_at=timezone.now() - timedelta(minutes=5)
    )
    services.sweep()
    return started


def _missed(cast: Cast) -> Started:
    started = start(cast.queue)
    later = timezone.now() + timedelta(seconds=cast.queue.missed_after_s + 1)
    # The patron is still there (their socket beat just now): nobody answered them.
    Conversation.objects.filter(pk=started.pk).update(patron_connected=True, patron_seen_at=later)
    services.sweep(now=later)
    return started


def _closed_while_waiting(cast: Cast) -> Started:
    started = start(cast.queue)
    services.conversation_close(conversation_id=started.pk, user=cast.librarian)
    return started


def _blocked_while_waiting(cast: Cast) -> Started:
    started = start(cast.queue)
    services.patron_block(conversation_id=started.pk, user=cast.librarian, hours=1)
    return started


ENDINGS: dict[str, tuple[Callable[[Cast], Started], Outcome]] = {
    "answered and closed by the librarian": (_answered, Outcome.ANSWERED),
    "answered and ended by the patron": (_ended_by_patron, Outcome.ANSWERED),
    "patron left while waiting": (_abandoned, Outcome.ABANDONED),
    "patron's connection went silent while waiting": (_patron_went_silent, Outcome.ABANDONED),
    "nobody accepted in time": (_missed, Outcome.MISSED),
    "left as a ticket": (_left_as_ticket, Outcome.TICKET),
    "librarian closed it while it waited": (_closed_while_waiting, Outcome.DECLINED),
    "librarian blocked the patron while waiting": (_blocked_while_waiting, Outcome.DECLINED),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_an_ended_chat_becomes_exactly_one_transaction_with_its_outcome(
    cast: Cast, ending: str, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    end, outcome = ENDINGS[ending]

    with django_capture_on_commit_callbacks(execute=True):
        started = end(cast)

    recorded = Transaction.objects.get(conversation_id=started.pk)
    assert recorded.outcome == outcome
    assert recorded.source == Source.CHAT
    assert recorded.library == cast.library
    assert recorded.queue == cast.queue
    assert recorded.format == category(cast.library, CategoryKind.FORMAT, "chat")
    conversation = Conversation.objects.get(pk=started.pk)
    assert recorded.started_at == conversation.created_at
    assert recorded.ended_at == conversation.closed_at
    # Running the service again, or the signal arriving twice, adds nothing.
    assert transaction_record_chat(conversation_id=started.pk) == recorded
    assert Transaction.objects.count() == 1


def test_an_open_chat_is_not_recorded(cast: Cast) -> None:
    started = start_accepted(cast.queue, cast.librarian)

    assert transaction_record_chat(conversation_id=started.pk) is None
    assert not Transaction.objects.exists()


def test_an_answered_chat_keeps_its_times_level_tags_and_librarian(
    cast: Cast, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        started = _answered(cast)

    recorded = Transaction.objects.get(conversation_id=started.pk)
    conversation = Conversation.objects.get(pk=started.pk)
    assert conversation.accepted_at is not None
    assert conversation.closed_at is not None
    assert recorded.wait_s == int(
        (conversation.accepted_at - conversation.created_at).total_seconds()
    )
    assert recorded.duration_s == int(
        (conversation.closed_at - conversation.accepted_at).total_seconds()
    )
    assert recorded.first_response_s is not None
    assert recorded.read_level == 2
    assert recorded.staff == cast.librarian
    assert sorted(tag.slug for tag in recorded.tags.all()) == ["catalogue", "fiction"]


def test_a_chat_never_answered_has_a_wait_but_no_duration(
    cast: Cast, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        started = _abandoned(cast)

    recorded = Transaction.objects.get(conversation_id=started.pk)
    assert recorded.wait_s is not None
    assert recorded.duration_s is None
    assert recorded.first_response_s is None
    assert recorded.staff is None


def test_a_rating_given_after_the_chat_ended_reaches_its_transaction(
    cast: Cast, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        started = _ended_by_patron(cast)
    assert Transaction.objects.get(conversation_id=started.pk).rating is None

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_rate(conversation_id=started.pk, score=4)

    assert Transaction.objects.get(conversation_id=started.pk).rating == 4
    assert Transaction.objects.count() == 1


def test_a_renamed_chat_format_still_receives_the_chats(
    cast: Cast, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    renamed = category_rename(
        category=category(cast.library, CategoryKind.FORMAT, "chat"), label="Live chat"
    )

    with django_capture_on_commit_callbacks(execute=True):
        started = _abandoned(cast)

    assert Transaction.objects.get(conversation_id=started.pk).format == renamed


def test_the_database_refuses_a_second_transaction_for_one_conversation(
    cast: Cast, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        started = _abandoned(cast)
    first = Transaction.objects.get(conversation_id=started.pk)

    with pytest.raises(IntegrityError), transaction.atomic():
        Transaction.objects.create(
            library=cast.library,
            format=first.format,
            started_at=first.started_at,
            conversation_id=started.pk,
            source=Source.CHAT,
        )
