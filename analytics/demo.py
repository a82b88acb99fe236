"""A month of reference statistics for the demo library (``seed_demo``).

Chats become transactions through the same service as live chats (one per ended
conversation); desk, phone and e-mail questions follow a realistic rhythm: busier on weekdays
and around midday and mid-afternoon, READ levels mostly 1 to 3 at the desks. Deterministic
(fixed random seed) and idempotent.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from typing import TypeVar

from django.contrib.auth.models import User
from django.utils import timezone

from analytics.models import Category, CategoryKind, Source, Transaction
from analytics.services import categories_ensure_defaults, transaction_record_chat
from chat.models import OPEN_STATUSES, Conversation
from reflib.models import Library, ServicePoint

DAYS = 30
# Questions per opening hour at the desks, by local hour (weekdays; weekends are quieter).
HOURLY = {9: 3, 10: 5, 11: 6, 12: 5, 13: 5, 14: 7, 15: 6, 16: 5, 17: 3, 18: 2, 19: 2, 20: 1}
FORMATS = {"desk": 70, "phone": 18, "email": 9, "consultation": 3}
READ_AT_DESK = {1: 45, 2: 33, 3: 16, 4: 5, 5: 1}
READ_REMOTE = {1: 25, 2: 35, 3: 25, 4: 11, 5: 3, 6: 1}
TYPES = {
    "directional": 30,
    "technical": 20,
    "policy": 15,
    "reference": 22,
    "research": 8,
    "other": 5,
}


K = TypeVar("K")


def _pick(rng: random.Random, weights: dict[K, int]) -> K:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def seed_analytics_history(library: Library) -> str:
    chats = 0
    ended = Conversation.objects.filter(library=library, transaction__isnull=True).exclude(
        status__in=OPEN_STATUSES
    )
    for pk in ended.values_list("pk", flat=True):
        if transaction_record_chat(conversation_id=pk) is not None:
            chats += 1
    if Transaction.objects.filter(library=library, source=Source.TALLY).exists():
        return f"Statistics: {chats} chats recorded; desk history already present"
    desk_count = _seed_desk_history(library)
    return f"Statistics: {chats} chats recorded, {desk_count} desk, phone and e-mail questions"


def _seed_desk_history(library: Library) -> int:
    categories_ensure_defaults(library=library)
    entries = {
        (entry.kind, entry.slug): entry
        for entry in Category.objects.filter(library=library, retired_in__isnull=True)
    }
    points = list(ServicePoint.objects.for_library(library).exclude(slug="chat").order_by("pk"))
    staff = list(User.objects.filter(memberships__library=library).order_by("pk"))
    if not points or not staff:
        return 0
    rng = random.Random(f"reflib-demo-stats-{library.slug}")  # noqa: S311 - demo data
    zone = library.zone
    today = timezone.now().astimezone(zone).date()
    records: list[Transaction] = []
    for offset in range(DAYS, 0, -1):
        day = today - timedelta(days=offset)
        scale = 0.45 if day.weekday() >= 5 else 1.0
        for hour, mean in HOURLY.items():
            if day.weekday() == 6 and not 12 <= hour < 17:
                continue  # open noon to five on Sundays
            for _n in range(rng.randint(0, round(2 * mean * scale))):
                fmt = _pick(rng, FORMATS)
                at_desk = fmt in ("desk", "consultation")
                started = datetime.combine(day, time(hour, rng.randrange(60)), tzinfo=zone)
                user = rng.choice(staff)
                records.append(
                    Transaction(
                        library=library,
                        service_point=points[0] if rng.random() < 0.75 else points[-1],
                        format=entries[(CategoryKind.FORMAT, fmt)],
                        started_at=started,
                        ended_at=started + timedelta(minutes=rng.randint(1, 12)),
                        question_type=entries[(CategoryKind.QUESTION_TYPE, str(_pick(rng, TYPES)))],
                        read_level=int(str(_pick(rng, READ_AT_DESK if at_desk else READ_REMOTE))),
                        staff=user,
                        created_by=user,
                        created_at=started,
                        source=Source.TALLY,
                    )
                )
    Transaction.objects.bulk_create(records, batch_size=1000)
    return len(records)
