"""A day of chats for the daily report's tests, and the personal data none of it may show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from analytics.models import Transaction
from analytics.services import transaction_record_chat
from chat import services
from chat.models import Conversation, Event, Presence, Sender
from reflib.models import Queue

DAY = date(2026, 3, 10)  # a Tuesday
NEW_YORK = ZoneInfo("America/New_York")
PERSONAL = [
    "Quinn",
    "Halvorsen",
    "pat@example.org",
    "555-0142",
    "21234001234567",
    "1428 Elm Street",
    "Robin",
    "robin.r@example.com",
]


@dataclass(frozen=True)
class Chat:
    conversation: Conversation
    token: str


def local(day: date, hour: int, minute: int = 0, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def chat_at(
    queue: Queue,
    librarian: Any,
    asked: datetime,
    *,
    answered: bool = True,
    status: str = "closed",
    patron: str = "Quinn Halvorsen",
    lines: tuple[str, ...] = (),
    rating: tuple[int, str] | None = None,
    tags: tuple[str, ...] = (),
) -> Chat:
    """A conversation that happened at ``asked``: the services run now, then its times are
    moved to then, and it is recorded as a transaction as the chat's signal would."""
    Presence.objects.update_or_create(user=librarian, defaults={"state": "available"})
    started = services.conversation_start(
        queue=queue,
        question=f"Do you have the 1911 census? I'm {patron.split()[0]}, pat@example.org",
        name=patron,
        email="pat@example.org",
    )
    conversation = started.conversation
    if answered:
        services.conversation_accept(conversation_id=conversation.pk, user=librarian)
        for number, line in enumerate(lines):
            sender = Sender.PATRON if number % 2 == 0 else Sender.LIBRARIAN
            services.message_send(
                conversation_id=conversation.pk,
                sender=sender,
                author=librarian if sender == Sender.LIBRARIAN else None,
                client_msg_id=f"m{number}",
                body=line,
            )
        services.conversation_close(
            conversation_id=conversation.pk, user=librarian, read_level=2, tags=list(tags)
        )
        if rating is not None:
            services.conversation_rate(
                conversation_id=conversation.pk, score=rating[0], comment=rating[1]
            )
    else:
        Conversation.objects.filter(pk=conversation.pk).update(status=status)
    shift = asked - conversation.created_at
    Conversation.objects.filter(pk=conversation.pk).update(
        created_at=asked,
        queued_since=asked,
        accepted_at=asked + timedelta(seconds=45) if answered else None,
        closed_at=asked + timedelta(minutes=10),
    )
    for event in Event.objects.filter(conversation=conversation):
        event.created_at = event.created_at + shift
        event.save(update_fields=["created_at"])
    Transaction.objects.filter(conversation=conversation).delete()
    transaction_record_chat(conversation_id=conversation.pk)
    return Chat(Conversation.objects.get(pk=conversation.pk), started.token)


def a_day_of_chats(queue: Queue, lena: Any) -> list[Chat]:
    """Four chats on DAY in New York (two answered and rated, one missed, one abandoned), and
    one just before and one just after it."""
    return [
        chat_at(
            queue,
            lena,
            local(DAY, 9, 15),
            lines=(
                "I need the census for my family history, call me at (503) 555-0142",
                "The census microfilm is on floor 2, call number HA37 .I7 1911",
                "my card is 21234001234567 and I live at 1428 Elm Street",
                "Thanks Quinn, the census index is online too",
            ),
            rating=(5, "Great help! Halvorsen (pat@example.org)"),
            tags=("genealogy",),
        ),
        chat_at(
            queue,
            lena,
            local(DAY, 9, 40),
            patron="Robin",
            lines=("census records for my grandmother please, robin.r@example.com",),
            rating=(4, ""),
            tags=("genealogy", "microfilm"),
        ),
        chat_at(queue, lena, local(DAY, 14, 5), answered=False, status="missed"),
        chat_at(queue, lena, local(DAY, 23, 50), answered=False, status="abandoned"),
        # The day before and the day after, in New York time: not in the report.
        chat_at(queue, lena, local(DAY - timedelta(days=1), 23, 59), tags=("elsewhere",)),
        chat_at(queue, lena, local(DAY + timedelta(days=1), 0, 1), tags=("elsewhere",)),
    ]
