"""A month of realistic chat history for the demo library (``seed_demo``).

Deterministic (fixed random seed) and idempotent: a library that already has conversations
gets nothing more. Rows are bulk-inserted: this is recorded history, not live traffic, so
nothing is published to the channel layer.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from chat.models import Conversation, Event, EventKind, Sender, Status, hash_token, new_token
from reflib.models import Library, display_name

DAYS = 30
# (question, librarian answer, tags, READ level)
TOPICS = [
    ("What time does the library close today?", "We close at 9 pm tonight.", ["hours"], 1),
    (
        "Where can I print in colour?",
        "The colour printer is on floor 2, next to the lifts.",
        ["printing", "directional"],
        1,
    ),
    (
        "How do I renew my books online?",
        "Log in to My Account and choose Renew all.",
        ["renewals", "account"],
        2,
    ),
    (
        "Do you have 'The Overstory' by Richard Powers?",
        "Yes, two copies at FIC POW; one is on the shelf now.",
        ["catalogue"],
        2,
    ),
    (
        "I need peer-reviewed articles on coastal erosion for a class.",
        "Try GreenFILE and Academic Search; I'll show you the peer-reviewed filter.",
        ["databases", "research"],
        3,
    ),
    (
        "Can I get a book from another library?",
        "Yes, through interlibrary loan; I can start the request with you.",
        ["ill"],
        4,
    ),
    (
        "How do I cite a government report in APA?",
        "Use the agency as the author; here is the pattern with an example.",
        ["citation"],
        3,
    ),
    (
        "I'm researching my family history in the 1880 census.",
        "Our genealogy databases cover it; let's search together and I'll follow up by e-mail.",
        ["genealogy", "research"],
        5,
    ),
    (
        "The Wi-Fi keeps disconnecting on my laptop.",
        "Please choose the 'Library-Public' network and accept the terms page again.",
        ["technical", "wifi"],
        1,
    ),
    (
        "Can I book a study room for tomorrow?",
        "Yes, rooms can be booked up to a week ahead on the website.",
        ["rooms", "policy"],
        2,
    ),
]
PATRON_NAMES = ["", "", "Sam", "Priya", "Jordan", "", "Lee", "María", "", "Chris"]
HOURLY_WEIGHT = {9: 3, 10: 6, 11: 8, 12: 6, 13: 7, 14: 9, 15: 8, 16: 7, 17: 5, 18: 4, 19: 4, 20: 3}


def seed_chat_history(library: Library) -> str:
    if Conversation.objects.filter(library=library).exists():
        return "Chat history: already present"
    queue = library.queues.order_by("pk").first()
    librarians = list(User.objects.filter(memberships__library=library).order_by("pk"))
    if queue is None or not librarians:
        return "Chat history: no queue or staff to attach it to"
    rng = random.Random(f"reflib-demo-{library.slug}")  # noqa: S311 - demo data, not secrets
    zone = library.zone
    today = timezone.now().astimezone(zone).date()
    conversations: list[Conversation] = []
    scripts: list[tuple[Conversation, tuple[str, str, list[str], int], User]] = []
    for day_offset in range(DAYS, 0, -1):
        day = today - timedelta(days=day_offset)
        per_day = rng.randint(4, 9) if day.weekday() >= 5 else rng.randint(10, 22)
        hours = rng.choices(list(HOURLY_WEIGHT), weights=list(HOURLY_WEIGHT.values()), k=per_day)
        for hour in hours:
            created = datetime.combine(
                day, time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=zone
            )
            topic = rng.choice(TOPICS)
            librarian = rng.choice(librarians)
            status = rng.choices(
                [Status.CLOSED, Status.ABANDONED, Status.MISSED, Status.TICKET],
                weights=[82, 8, 4, 6],
            )[0]
            conversation = Conversation(
                library=library,
                queue=queue,
                origin_queue=queue,
                status=status,
                token_hash=hash_token(new_token()),
                question=topic[0],
                patron_name=rng.choice(PATRON_NAMES),
                created_at=created,
                queued_since=created,
                patron_seen_at=created,
            )
            wait = timedelta(seconds=int(rng.lognormvariate(3.4, 0.7)))
            if status == Status.CLOSED:
                conversation.librarian = librarian
                conversation.accepted_at = created + wait
                duration = timedelta(seconds=int(rng.lognormvariate(5.8, 0.6)))
                conversation.closed_at = conversation.accepted_at + duration
                conversation.read_level = topic[3]
                conversation.tags = topic[2]
                if rng.random() < 0.35:
                    conversation.rating = rng.choices([5, 4, 3, 2, 1], weights=[55, 25, 10, 6, 4])[
                        0
                    ]
            else:
                conversation.closed_at = created + wait * (6 if status == Status.MISSED else 2)
            conversations.append(conversation)
            scripts.append((conversation, topic, librarian))
    Conversation.objects.bulk_create(conversations)

    events: list[Event] = []
    for conversation, topic, librarian in scripts:
        log = [
            (
                EventKind.MESSAGE,
                Sender.PATRON,
                conversation.patron_display_name,
                topic[0],
                {},
                conversation.created_at,
            ),
            (
                EventKind.STATUS,
                Sender.SYSTEM,
                "",
                "",
                {"status": "queued", "librarian": None},
                conversation.created_at,
            ),
        ]
        if conversation.status == Status.CLOSED:
            assert conversation.accepted_at is not None
            name = display_name(librarian)
            log += [
                (
                    EventKind.STATUS,
                    Sender.SYSTEM,
                    "",
                    "",
                    {"status": "active", "librarian": name},
                    conversation.accepted_at,
                ),
                (
                    EventKind.MESSAGE,
                    Sender.LIBRARIAN,
                    name,
                    topic[1],
                    {},
                    conversation.accepted_at + timedelta(seconds=20),
                ),
                (
                    EventKind.MESSAGE,
                    Sender.PATRON,
                    conversation.patron_display_name,
                    "Thank you!",
                    {},
                    conversation.accepted_at + timedelta(seconds=60),
                ),
            ]
        final_status = {"status": conversation.status, "librarian": None}
        assert conversation.closed_at is not None
        log.append((EventKind.STATUS, Sender.SYSTEM, "", "", final_status, conversation.closed_at))
        for seq, (kind, sender, author_name, body, data, at) in enumerate(log, start=1):
            events.append(
                Event(
                    conversation=conversation,
                    seq=seq,
                    kind=kind,
                    sender=sender,
                    author_name=author_name,
                    body=body,
                    data=data,
                    created_at=at,
                )
            )
        conversation.last_seq = len(log)
    Event.objects.bulk_create(events, batch_size=1000)
    Conversation.objects.bulk_update(conversations, ["last_seq"], batch_size=1000)
    return f"Chat history: {len(conversations)} conversations over {DAYS} days"
