"""What a daily report says: the reads behind ``DailyReport.content`` (SPEC §4).

One library, one local day (local midnight to local midnight, whatever the length of the day
across a daylight-saving change). Statistics come from the analytics transactions
(``analytics.selectors``); the lists of missed and abandoned chats, rating comments, topics and
transcripts come from the chat's conversations of that day, every text redacted by
``reflib.redaction`` with the patron's own name known. Everything is sorted, so the same data
always gives the same content.

**Topics** are a plain term frequency: the words of the patrons' questions and messages (three
letters or more, lower case, placeholders such as ``[email]`` removed), less English and
Spanish stop words (``analytics.stopwords``), counted once per conversation so that one talkative
patron does not make a topic; the most frequent words that occur in at least two conversations.

**Coverage** compares the questions of each local hour with the staff-hours rostered in it
(``staffing.selectors.staffed_hours_by_hour_of_week``).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from analytics.models import CategoryKind
from analytics.selectors import (
    Scope,
    Spread,
    category_distribution,
    counts_by,
    service_levels,
)
from analytics.stopwords import STOP_WORDS
from chat.models import Conversation, Event, EventKind, Sender, Status
from chat.retention import patron_redactor
from reflib.models import Library
from reflib.redaction import Kind
from staffing.selectors import staffed_hours_by_hour_of_week

TOP_TOPICS = 15
_PLACEHOLDER = re.compile(r"\[(?:" + "|".join(kind.value for kind in Kind) + r")\]")
_WORD = re.compile(r"[^\W\d_]{3,}")
SENDER_LABELS: dict[str, str] = {Sender.PATRON: "Patron", Sender.SYSTEM: "reflib"}


def _clock(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M") if moment else ""


def _spread(spread: Spread) -> dict[str, Any]:
    return {"count": spread.count, "median_s": spread.median, "p90_s": spread.p90}


def _volumes(scope: Scope) -> dict[str, Any]:
    by_hour = {hour: n for (hour,), n in counts_by(scope, "local_hour").items()}
    channels = category_distribution(scope, kind=CategoryKind.FORMAT)
    return {
        "total": sum(int(n) for n in by_hour.values()),
        "by_channel": [{"channel": c.label, "count": c.count} for c in channels],
        "by_hour": [int(by_hour.get(hour, 0)) for hour in range(24)],
    }


def _service_levels(scope: Scope) -> dict[str, Any]:
    levels = service_levels(scope)
    return {
        "chats": levels.chats,
        "outcomes": dict(sorted(levels.outcomes.items())),
        "rolled_over": levels.rolled_over,
        "wait": _spread(levels.wait),
        "first_response": _spread(levels.first_response),
        "duration": _spread(levels.duration),
        "abandonment_rate": levels.abandonment_rate,
        "missed_rate": levels.missed_rate,
        "ratings": {str(score): levels.ratings.get(score, 0) for score in range(1, 6)},
        "rating_mean": levels.rating_mean,
    }


def _coverage(library: Library, day: date, by_hour: list[int]) -> list[dict[str, Any]]:
    staffed = staffed_hours_by_hour_of_week(library=library, start=day, end=day)
    weekday = day.weekday()
    rows = []
    for hour in range(24):
        staff_hours = round(staffed.get((weekday, hour), 0.0), 2)
        questions = by_hour[hour]
        if not staff_hours and not questions:
            continue
        rows.append(
            {
                "hour": hour,
                "questions": questions,
                "staff_hours": staff_hours,
                "questions_per_staff_hour": round(questions / staff_hours, 2)
                if staff_hours
                else None,
            }
        )
    return rows


def _line(event: dict[str, Any], text: str) -> str:
    kind = event["kind"]
    if kind == EventKind.FILE:
        return "(shared a file)"
    if kind == EventKind.CHECKIN:
        return "(asked: does this answer your question?)"
    if kind == EventKind.CHECKIN_ANSWER:
        return f"(answered the check-in: {event['data'].get('answer', '')})"
    if kind == EventKind.NOTE:
        return f"(internal note) {text}"
    return text


def _topics(texts_by_conversation: list[str]) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    for text in texts_by_conversation:
        words = {
            word
            for word in _WORD.findall(_PLACEHOLDER.sub(" ", text).lower())
            if word not in STOP_WORDS
        }
        counts.update(words)
    frequent = [(word, n) for word, n in counts.items() if n >= 2]
    frequent.sort(key=lambda item: (-item[1], item[0]))
    return [{"term": word, "conversations": n} for word, n in frequent[:TOP_TOPICS]]


def _conversations(library: Library, scope: Scope) -> dict[str, Any]:
    """Missed and abandoned chats, rating comments, topics and transcripts, all redacted."""
    zone = library.zone
    start, end = scope.utc_bounds
    conversations = list(
        Conversation.objects.for_library(library)
        .filter(created_at__gte=start, created_at__lt=end)
        .select_related("origin_queue__library", "librarian__staff_profile")
        .order_by("created_at", "pk")
    )
    events: dict[int, list[Any]] = defaultdict(list)
    for event in (
        Event.objects.filter(conversation__in=[c.pk for c in conversations])
        .exclude(kind=EventKind.STATUS)
        .order_by("conversation_id", "seq")
        .values(
            "conversation_id", "seq", "kind", "sender", "author_name", "body", "data", "created_at"
        )
    ):
        events[event["conversation_id"]].append(event)

    card_patterns = library.compiled_card_patterns()
    unanswered, comments, transcripts, patron_words = [], [], [], []
    for conversation in conversations:
        own = events[conversation.pk]
        patron_texts = [
            e["body"]
            for e in own
            if e["sender"] == Sender.PATRON and e["kind"] == EventKind.MESSAGE
        ]
        redactor = patron_redactor(
            patron_names=[conversation.patron_name],
            patron_texts=[conversation.question, *patron_texts],
            card_patterns=card_patterns,
        )
        lines, redacted_patron_texts = [], []
        for event in own:
            text = redactor.redact(event["body"])
            if event["sender"] == Sender.PATRON and event["kind"] == EventKind.MESSAGE:
                redacted_patron_texts.append(text)
            sender = SENDER_LABELS.get(event["sender"]) or event["author_name"] or "Librarian"
            lines.append([_clock(event["created_at"], zone), sender, _line(event, text)])
        # The question is the patron's first message; a word counts once per conversation.
        patron_words.append(" ".join(redacted_patron_texts))
        if conversation.status in (Status.MISSED, Status.ABANDONED):
            waited = (conversation.closed_at or end) - conversation.created_at
            unanswered.append(
                {
                    "time": _clock(conversation.created_at, zone),
                    "queue": conversation.origin_queue.address,
                    "status": conversation.status,
                    "waited_s": int(waited.total_seconds()),
                }
            )
        if conversation.rating is not None:
            comments.append(
                {
                    "time": _clock(conversation.created_at, zone),
                    "score": conversation.rating,
                    "comment": redactor.redact(conversation.rating_comment),
                }
            )
        transcripts.append(
            {
                "conversation": conversation.public_id,
                "queue": conversation.origin_queue.address,
                "status": conversation.status,
                "started": _clock(conversation.created_at, zone),
                "tags": sorted(conversation.tags),
                "read_level": conversation.read_level,
                "lines": lines,
            }
        )
    return {
        "missed_and_abandoned": unanswered,
        "rating_comments": comments,
        "topics": _topics(patron_words),
        "transcripts": transcripts,
    }


def report_content(*, library: Library, day: date) -> dict[str, Any]:
    """Everything the report on ``day`` (a local date of ``library``) shows."""
    scope = Scope(library=library, start=day, end=day)
    start, end = scope.utc_bounds
    volumes = _volumes(scope)
    return {
        "library": {"slug": library.slug, "name": library.name, "timezone": library.timezone},
        "day": day.isoformat(),
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "volumes": volumes,
        "service_levels": _service_levels(scope),
        "tags": [
            {"tag": c.label, "count": c.count}
            for c in category_distribution(scope, kind=CategoryKind.TAG)
        ],
        "coverage": _coverage(library, day, volumes["by_hour"]),
        **_conversations(library, scope),
    }
