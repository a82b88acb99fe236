"""The CSV renderings of the manager views; ``transactions.csv`` is also the import's own format.

Every writer takes a :class:`~analytics.selectors.Scope` and yields rows, header first, so a
million transactions stream out without being held in memory.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.forms.utils import ErrorDict
from django.http import StreamingHttpResponse

from analytics import selectors
from analytics.models import CategoryKind, Outcome, Transaction
from analytics.selectors import Scope

Row = list[Any]

# The columns of transactions.csv, in order; the import reads the same names.
TRANSACTION_COLUMNS = [
    "key",
    "started_at",
    "ended_at",
    "format",
    "service_point",
    "queue",
    "question_type",
    "read_level",
    "tags",
    "note",
    "staff",
    "outcome",
    "wait_s",
    "first_response_s",
    "duration_s",
    "rolled_over",
    "rating",
]
TAG_SEPARATOR = ";"
CHUNK = 5000


class BadFilters(Exception):
    def __init__(self, errors: ErrorDict) -> None:
        self.text = "\n".join(
            f"{field}: {message}" for field, messages in errors.items() for message in messages
        )
        super().__init__(self.text)


def native_key(library_slug: str, pk: int) -> str:
    """The key of a transaction recorded here (not imported): stable across exports."""
    return f"reflib:{library_slug}:{pk}"


def local_iso(value: datetime | None, scope: Scope) -> str:
    return value.astimezone(scope.library.zone).isoformat(timespec="seconds") if value else ""


def _blank(value: Any) -> Any:
    return "" if value is None else value


def transaction_rows(scope: Scope) -> Iterator[Row]:
    yield TRANSACTION_COLUMNS
    rows = selectors.transactions_in(scope).order_by("started_at", "pk")
    fields = [
        "pk",
        "import_key",
        "started_at",
        "ended_at",
        "format__current__slug",
        "service_point__slug",
        "queue__slug",
        "question_type__current__slug",
        "read_level",
        "note",
        "staff__username",
        "outcome",
        "wait_s",
        "first_response_s",
        "duration_s",
        "rolled_over",
        "rating",
    ]
    last: tuple[datetime, int] | None = None
    while True:
        # Keyset pagination: each chunk is one indexed range query, however deep the file.
        chunk_query = rows
        if last is not None:
            chunk_query = rows.filter(
                Q(started_at__gt=last[0]) | Q(started_at=last[0], pk__gt=last[1])
            )
        chunk = list(chunk_query.values_list(*fields)[:CHUNK])
        if not chunk:
            return
        tags = _tags_of([row[0] for row in chunk])
        for row in chunk:
            (pk, key, started, ended, fmt, point, queue, qtype, level, note, staff, *chat) = row
            outcome, wait, first, duration, rolled_over, rating = chat
            yield [
                key or native_key(scope.library.slug, pk),
                local_iso(started, scope),
                local_iso(ended, scope),
                fmt,
                _blank(point),
                _blank(queue),
                _blank(qtype),
                _blank(level),
                TAG_SEPARATOR.join(sorted(tags.get(pk, []))),
                note,
                _blank(staff),
                outcome,
                _blank(wait),
                _blank(first),
                _blank(duration),
                "1" if rolled_over else "0",
                _blank(rating),
            ]
        last = (chunk[-1][2], chunk[-1][0])


def _tags_of(pks: list[int]) -> dict[int, list[str]]:
    through = Transaction.tags.through
    tags: dict[int, list[str]] = {}
    for pk, slug in through.objects.filter(transaction_id__in=pks).values_list(
        "transaction_id", "category__current__slug"
    ):
        if slug not in tags.setdefault(pk, []):
            tags[pk].append(slug)
    return tags


def heatmap_rows(scope: Scope) -> Iterator[Row]:
    cells = selectors.heatmap(scope)
    yield ["weekday", "hour", "count"]
    for weekday, hour in selectors.hours_of_week():
        yield [weekday, hour, cells.get((weekday, hour), 0)]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


def service_level_rows(scope: Scope) -> Iterator[Row]:
    levels = selectors.service_levels(scope)
    yield ["measure", "value"]
    yield ["chats", levels.chats]
    for outcome in Outcome.values:
        yield [outcome, levels.outcomes.get(outcome, 0)]
    for outcome in Outcome.values:
        if outcome != Outcome.ANSWERED:
            yield [f"{outcome}_rate", _number(levels.rate(Outcome(outcome)))]
    yield ["rollover_share", _number(levels.rollover_share)]
    for name, spread in [
        ("wait", levels.wait),
        ("first_response", levels.first_response),
        ("duration", levels.duration),
    ]:
        yield [f"{name}_median_s", _number(spread.median)]
        yield [f"{name}_p90_s", _number(spread.p90)]
    yield ["ratings", levels.rated]
    yield ["rating_mean", _number(levels.rating_mean)]
    for score in range(1, 6):
        yield [f"rating_{score}", levels.ratings.get(score, 0)]


def volume_rows(scope: Scope) -> Iterator[Row]:
    yield ["date", "count", "trend_7_days"]
    for day in selectors.volume_by_day(scope):
        yield [day.day.isoformat(), day.count, _number(day.trend)]


def read_level_rows(scope: Scope) -> Iterator[Row]:
    counts = selectors.read_distribution(scope)
    yield ["read_level", "count"]
    for level in [1, 2, 3, 4, 5, 6, None]:
        yield [_blank(level), counts.get(level, 0)]


def question_type_rows(scope: Scope) -> Iterator[Row]:
    yield ["question_type", "count"]
    for entry in selectors.category_distribution(scope, kind=CategoryKind.QUESTION_TYPE):
        yield [entry.label, entry.count]


def coverage_rows(scope: Scope) -> Iterator[Row]:
    coverage = selectors.demand_vs_coverage(scope)
    yield ["weekday", "hour", "questions", "staff_hours", "questions_per_staff_hour", "staffing"]
    for cell in coverage.cells:
        yield [
            cell.weekday,
            cell.hour,
            cell.questions,
            _number(cell.staff_hours),
            _number(cell.per_staff_hour),
            coverage.assessment(cell),
        ]


WRITERS: dict[str, Callable[[Scope], Iterable[Row]]] = {
    "transactions": transaction_rows,
    "heatmap": heatmap_rows,
    "service-levels": service_level_rows,
    "volume": volume_rows,
    "read-levels": read_level_rows,
    "question-types": question_type_rows,
    "coverage": coverage_rows,
}


class _Echo:
    def write(self, value: str) -> str:
        return value


# Rows per streamed chunk: an aggregate's few hundred rows leave in one piece, and a million
# transactions in pieces of some tens of kilobytes (a chunk per row cost more than the rows).
CHUNK_ROWS = 500


def _chunks(rows: Iterable[Row]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    lines: list[str] = []
    for row in rows:
        lines.append(writer.writerow(row))
        if len(lines) == CHUNK_ROWS:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)


def response(rows: Iterable[Row], *, filename: str) -> StreamingHttpResponse:
    streamed = StreamingHttpResponse(_chunks(rows), content_type="text/csv; charset=utf-8")
    streamed["Content-Disposition"] = f'attachment; filename="{filename}"'
    return streamed
