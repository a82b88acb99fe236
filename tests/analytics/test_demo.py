"""seed_demo's statistics: every seeded chat counted once, a believable desk rhythm, idempotent."""

from __future__ import annotations

import io
from collections import Counter

from django.core.management import call_command
from django.db.models import Count

from analytics.models import Source, Transaction
from chat.models import OPEN_STATUSES, Conversation


def test_seed_demo_records_every_chat_once_and_a_desk_history_with_a_rhythm(db: None) -> None:
    call_command("seed_demo", "--force", stdout=io.StringIO())

    ended = Conversation.objects.exclude(status__in=OPEN_STATUSES)
    assert ended.count() > 100
    assert Transaction.objects.filter(source=Source.CHAT).count() == ended.count()
    assert (
        not Transaction.objects.values("conversation")
        .exclude(conversation=None)
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    desk = Transaction.objects.filter(source=Source.TALLY, format__slug="desk")
    levels = Counter(desk.values_list("read_level", flat=True))
    assert sum(levels[level] for level in (1, 2, 3)) / desk.count() > 0.85
    zone = Conversation.objects.first().library.zone  # type: ignore[union-attr]
    by_weekday = Counter(t.started_at.astimezone(zone).weekday() for t in desk)
    assert by_weekday[2] > 1.5 * by_weekday[6]
    by_hour = Counter(t.started_at.astimezone(zone).hour for t in desk)
    assert by_hour[14] > 2 * by_hour[20]

    before = Transaction.objects.count()
    call_command("seed_demo", "--force", stdout=io.StringIO())
    assert Transaction.objects.count() == before
