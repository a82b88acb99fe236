"""Reads of the analytics app: the aggregates behind the manager views, CSVs and daily reports.

Every function takes a :class:`Scope` (one library, an inclusive range of *local* dates, optional
service point, queue and format) and aggregates in SQL. Buckets (days, weekday and hour) are the
wall-clock ones each transaction was stamped with in the library's time zone
(``Transaction.localise``), so they follow the wall clock across a daylight-saving change: a
question asked at 10:30 local is in the 10:00 bucket on both sides.

Counts are ``COUNT(*)`` and the buckets, READ level and question type are included in the
``(library, started_at)`` index, so the volume, the heat map and the distributions read only
that index.

Definitions of the chat service levels (also in ``docs/analytics.md``):

- *chats*: transactions of the library's chat format that have an outcome.
- *wait*: seconds from the patron asking to a librarian accepting, over answered chats.
- *first response*: seconds from asking to the first librarian message, over chats that got one.
- *duration*: seconds from accepting to the end, over answered chats.
- *abandonment rate*, *missed rate*, *ticket rate*, *declined rate*: chats with that outcome
  divided by all chats; *rollover share*: chats that rolled over to a partner divided by all chats.
- Medians and 90th percentiles are continuous percentiles (linear interpolation between the two
  nearest values, PostgreSQL's ``percentile_cont``).
- *satisfaction*: patrons' ratings (1 to 5): how many, their mean, and how many of each.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache, cached_property
from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    Field,
    QuerySet,
)

from analytics.models import CHAT_FORMAT, Category, CategoryKind, Outcome, Transaction
from reflib.models import Library, Queue, ServicePoint
from staffing.selectors import staffed_hours_by_hour_of_week

MAX_DAYS = 3660


@dataclass(frozen=True)
class Scope:
    """What a view, a CSV or a report is about. ``start`` and ``end`` are local dates, inclusive.

    ``format`` is a format entry: it matches every version of that entry (what was renamed or
    merged into it), like every grouping here.
    """

    library: Library
    start: date
    end: date
    service_point_id: int | None = None
    queue_id: int | None = None
    format_id: int | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("The end date is before the start date.")
        if (self.end - self.start).days > MAX_DAYS:
            raise ValueError("The range is longer than ten years.")

    @property
    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as aware datetimes: local midnight of ``start`` to after ``end``."""
        zone = self.library.zone
        return (
            datetime.combine(self.start, time.min, tzinfo=zone),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone),
        )

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def transactions_in(scope: Scope) -> QuerySet[Transaction]:
    """The library's transactions that started within the scope (the base of every aggregate)."""
    start, end = scope.utc_bounds
    rows = Transaction.objects.filter(
        library=scope.library, started_at__gte=start, started_at__lt=end
    )
    if scope.service_point_id is not None:
        rows = rows.filter(service_point_id=scope.service_point_id)
    if scope.queue_id is not None:
        rows = rows.filter(queue_id=scope.queue_id)
    if scope.format_id is not None:
        rows = rows.filter(format__current_id=scope.format_id)
    return rows.order_by()


# --- volume ----------


@dataclass(frozen=True)
class DayVolume:
    day: date
    count: int
    trend: float  # mean of this day and the six before it that are in the range


TREND_DAYS = 7


def _scope_sql(scope: Scope, *, chats: bool = False) -> tuple[str, list[Any]]:
    """:func:`transactions_in` (or :func:`chat_transactions`) as SQL: the ``FROM`` and ``WHERE``
    of a query over the transactions ``t``, with its parameters.

    For the fixed-shape aggregates of the manager views: building and compiling the ORM's query
    took longer than a month's index-only count takes (docs/benchmarks.md, "Manager analytics
    views"). The text is fixed; every value is a parameter.
    """
    start, end = scope.utc_bounds
    adapt = connection.ops.adapt_datetimefield_value
    where = ["t.library_id = %s", "t.started_at >= %s", "t.started_at < %s"]
    params: list[Any] = [scope.library.pk, adapt(start), adapt(end)]
    for column, value in [
        ("service_point_id", scope.service_point_id),
        ("queue_id", scope.queue_id),
    ]:
        if value is not None:
            where.append(f"t.{column} = %s")
            params.append(value)
    join = ""
    if scope.format_id is not None or chats:
        # A format matches every version of it (what was renamed or merged into it).
        join = " INNER JOIN analytics_category f ON t.format_id = f.id"
    if scope.format_id is not None:
        where.append("f.current_id = %s")
        params.append(scope.format_id)
    if chats:
        where.append(
            "f.current_id IN (SELECT c.current_id FROM analytics_category c"
            " WHERE c.kind = %s AND c.library_id = %s AND c.slug = %s)"
        )
        params += [CategoryKind.FORMAT.value, scope.library.pk, CHAT_FORMAT]
        where.append("NOT (t.outcome = %s)")
        params.append("")
    return f"FROM analytics_transaction t{join} WHERE {' AND '.join(where)}", params


def counts_by(scope: Scope, *columns: str) -> dict[tuple[Any, ...], int]:
    """Transactions per combination of ``columns`` that occurs (one grouped query).

    Columns of the transaction itself are counted by one statement written here
    (:func:`_scope_sql`); a many-to-many (``tags``) by the ORM's join.
    """
    fields = [
        field
        for field in map(Transaction._meta.get_field, columns)
        if isinstance(field, Field) and not field.many_to_many
    ]
    if len(fields) < len(columns):
        rows = (
            transactions_in(scope)
            .values_list(*columns)
            .annotate(n=Count("*"))
            .values_list(*columns, "n")
        )
        return {tuple(row[:-1]): int(row[-1]) for row in rows}
    names = [f"t.{field.column}" for field in fields]
    source, params = _scope_sql(scope)
    with connection.cursor() as cursor:
        # Column names from the model, values as parameters.
        cursor.execute(
            f"SELECT {', '.join(names)}, COUNT(*) {source} GROUP BY {', '.join(names)}",
            params,
        )
        rows = cursor.fetchall()
    # The database's values as the ORM gives them (SQLite returns a date as text).
    return {
        tuple(field.to_python(value) for field, value in zip(fields, row, strict=False)): int(
            row[-1]
        )
        for row in rows
    }


def volume_by_day(scope: Scope, *, per_day: dict[date, int] | None = None) -> list[DayVolume]:
    """Transactions per local day (every day of the range, zeros included) with a 7-day trend.

    ``per_day`` is the scope's count per day when the caller has it already (:func:`overview`).
    """
    if per_day is None:
        per_day = {day: n for (day,), n in counts_by(scope, "local_date").items()}
    days = scope.days
    series = [per_day.get(day, 0) for day in days]
    result = []
    for index, day in enumerate(days):
        window = series[max(0, index - TREND_DAYS + 1) : index + 1]
        result.append(DayVolume(day=day, count=series[index], trend=sum(window) / len(window)))
    return result


# --- hour of week ----------

HeatMap = dict[tuple[int, int], int]


def heatmap(scope: Scope) -> HeatMap:
    """Transactions per (weekday, hour) in local time; weekday 0 is Monday. Only non-zero cells."""
    return {
        (weekday, hour): n
        for (weekday, hour), n in counts_by(scope, "local_weekday", "local_hour").items()
    }


def hours_of_week() -> list[tuple[int, int]]:
    return [(weekday, hour) for weekday in range(7) for hour in range(24)]


# --- distributions ----------


def read_distribution(scope: Scope) -> dict[int | None, int]:
    """Transactions per READ level (None: not given)."""
    return {level: n for (level,), n in counts_by(scope, "read_level").items()}


@dataclass(frozen=True)
class CategoryCount:
    category_id: int | None  # the current entry; None: no category given
    label: str
    count: int


CATEGORY_COLUMNS = {
    CategoryKind.QUESTION_TYPE: "question_type",
    CategoryKind.FORMAT: "format",
    CategoryKind.TAG: "tags",
}


def category_distribution(scope: Scope, *, kind: CategoryKind) -> list[CategoryCount]:
    """Transactions per current entry of a list (renamed and merged entries counted together).

    For tags a transaction counts once for each of its tags.
    """
    if kind == CategoryKind.TAG:
        recorded = counts_by(scope, CATEGORY_COLUMNS[kind])
        return _current_entries({pk: n for (pk,), n in recorded.items()}, kind=kind)
    # Counted per recorded entry (from the index alone), then added up per current entry in the
    # same statement.
    field = Transaction._meta.get_field(CATEGORY_COLUMNS[kind])
    assert isinstance(field, Field)
    column = field.column
    source, params = _scope_sql(scope)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT c.id, c.label, SUM(recorded.n) FROM (
                  SELECT t.{column} AS entry, COUNT(*) AS n {source} GROUP BY t.{column}
                ) AS recorded
                LEFT JOIN analytics_category q ON q.id = recorded.entry
                LEFT JOIN analytics_category c ON c.id = q.current_id
                GROUP BY c.id, c.label""",  # noqa: S608 - a model's column; values are parameters
            params,
        )
        rows = cursor.fetchall()
    counts = [
        CategoryCount(category_id=pk, label=label or "", count=int(n)) for pk, label, n in rows
    ]
    return sorted(counts, key=lambda c: (-c.count, c.label))


# What a version of an entry is counted as: its current entry's id and label.
CurrentEntries = dict[int, tuple[int | None, str]]


@dataclass(frozen=True)
class ShortLists:
    """A library's short lists, read in one query for the statistics page, which needs them
    several times: the service points and queues its filters offer, and every version of the
    formats and question types (which defaults exist, the format filter's choices, and what
    each recorded question type is counted as today)."""

    service_points: list[ServicePoint]
    queues: list[Queue]
    categories: list[Category]

    @property
    def category_slugs(self) -> set[tuple[str, str]]:
        return {(entry.kind, entry.slug) for entry in self.categories}

    def active(self, kind: CategoryKind) -> list[Category]:
        """The entries in use today, in the list's order."""
        return [entry for entry in self.categories if entry.kind == kind and entry.is_active]

    def current(self, kind: CategoryKind) -> CurrentEntries:
        labels: dict[int | None, str] = {entry.pk: entry.label for entry in self.categories}
        return {
            entry.pk: (entry.current_id, labels.get(entry.current_id, ""))
            for entry in self.categories
            if entry.kind == kind
        }


# Three small tables in one round trip; the columns a row of each needs, padded alike.
SHORT_LISTS_SQL = f"""
    SELECT 'service_point', id, slug, name, '', 0, CAST(NULL AS bigint), CAST(NULL AS integer)
      FROM {ServicePoint._meta.db_table} WHERE library_id = %s
    UNION ALL
    SELECT 'queue', id, slug, name, '', 0, CAST(NULL AS bigint), CAST(NULL AS integer)
      FROM {Queue._meta.db_table} WHERE library_id = %s
    UNION ALL
    SELECT 'category', id, slug, label, kind, position, current_id, retired_in
      FROM {Category._meta.db_table} WHERE library_id = %s AND kind IN (%s, %s)
"""  # noqa: S608 - table names from the models; every value is a parameter


def short_lists(library: Library) -> ShortLists:
    with connection.cursor() as cursor:
        cursor.execute(
            SHORT_LISTS_SQL,
            [library.pk] * 3 + [CategoryKind.FORMAT.value, CategoryKind.QUESTION_TYPE.value],
        )
        rows = cursor.fetchall()
    alias = connection.alias
    points: list[ServicePoint] = []
    queues: list[Queue] = []
    categories: list[Category] = []
    # Model instances from the rows (Model.from_db), each knowing its library.
    for source, pk, slug, name, kind, position, current_id, retired_in in rows:
        if source == "category":
            values = (pk, kind, slug, name, position, current_id, retired_in)
            entry = Category.from_db(alias, CATEGORY_FIELDS, values)
            entry.library = library
            categories.append(entry)
        elif source == "service_point":
            point = ServicePoint.from_db(alias, ["id", "slug", "name"], (pk, slug, name))
            point.library = library
            points.append(point)
        else:
            queue = Queue.from_db(alias, ["id", "slug", "name"], (pk, slug, name))
            queue.library = library
            queues.append(queue)
    return ShortLists(
        service_points=sorted(points, key=lambda point: point.name),
        queues=sorted(queues, key=lambda queue: queue.name),
        categories=sorted(categories, key=lambda c: (c.kind, c.position, c.label)),
    )


# In the model's order of fields, as Model.from_db takes the values of some of them.
CATEGORY_FIELDS = ["id", "kind", "slug", "label", "position", "current_id", "retired_in"]


def _current_entries(
    recorded: dict[int | None, int],
    *,
    kind: CategoryKind,
    known: CurrentEntries | None = None,
) -> list[CategoryCount]:
    """Counts per recorded entry added up per current entry: counting per recorded entry reads
    the index alone, and the list that maps versions to current entries is short. ``known`` is
    that map when the caller has read the list already (:class:`ShortLists`)."""
    if known is not None and all(pk in known for pk in recorded if pk is not None):
        current = known
    else:
        current = {
            pk: (current_id, label or "")
            for pk, current_id, label in Category.objects.filter(pk__in=recorded).values_list(
                "pk", "current_id", "current__label"
            )
        }
    totals: dict[int | None, tuple[str, int]] = {}
    for pk, n in recorded.items():
        current_id, label = current.get(pk, (None, "")) if pk is not None else (None, "")
        totals[current_id] = (label, totals.get(current_id, ("", 0))[1] + n)
    counts = [
        CategoryCount(category_id=pk, label=label, count=n) for pk, (label, n) in totals.items()
    ]
    if kind == CategoryKind.TAG:
        counts = [count for count in counts if count.category_id is not None]
    return sorted(counts, key=lambda c: (-c.count, c.label))


@dataclass(frozen=True)
class Overview:
    """What the statistics page shows of every transaction of the scope."""

    days: list[DayVolume]
    heatmap: HeatMap
    read_levels: dict[int | None, int]
    question_types: list[CategoryCount]


def overview(scope: Scope, *, question_types: CurrentEntries | None = None) -> Overview:
    """Volume, heat map, READ levels and question types in two scans instead of four: counts per
    local date and hour (the weekday is the date's), and per READ level and question type.

    ``question_types`` maps the library's question types to their current entries when the
    caller has read the list already (:meth:`ShortLists.current`)."""
    per_day: dict[date, int] = defaultdict(int)
    per_hour: HeatMap = defaultdict(int)
    for (day, hour), n in counts_by(scope, "local_date", "local_hour").items():
        per_day[day] += n
        per_hour[(day.weekday(), hour)] += n
    per_level: dict[int | None, int] = defaultdict(int)
    per_type: dict[int | None, int] = defaultdict(int)
    for (level, question_type), n in counts_by(scope, "read_level", "question_type").items():
        per_level[level] += n
        per_type[question_type] += n
    return Overview(
        days=volume_by_day(scope, per_day=per_day),
        heatmap=dict(per_hour),
        read_levels=dict(per_level),
        question_types=_current_entries(
            dict(per_type), kind=CategoryKind.QUESTION_TYPE, known=question_types
        ),
    )


# --- chat service levels ----------


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """``percentile_cont`` of sorted ``values`` (the same definition as PostgreSQL's)."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    return values[lower] + (values[upper] - values[lower]) * (position - lower)


@dataclass(frozen=True)
class Spread:
    """Median and 90th percentile of a duration in seconds, over ``count`` values."""

    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class ServiceLevels:
    chats: int
    outcomes: dict[str, int]
    rolled_over: int
    wait: Spread
    first_response: Spread
    duration: Spread
    ratings: dict[int, int] = field(default_factory=dict)
    rating_mean: float | None = None

    def rate(self, outcome: Outcome) -> float | None:
        return self.outcomes.get(outcome, 0) / self.chats if self.chats else None

    @property
    def abandonment_rate(self) -> float | None:
        return self.rate(Outcome.ABANDONED)

    @property
    def missed_rate(self) -> float | None:
        return self.rate(Outcome.MISSED)

    @property
    def rollover_share(self) -> float | None:
        return self.rolled_over / self.chats if self.chats else None

    @property
    def rated(self) -> int:
        return sum(self.ratings.values())


def chat_transactions(scope: Scope) -> QuerySet[Transaction]:
    """The scope's chats (the library's chat format, every version of it) with an outcome."""
    chat = Category.objects.filter(
        library=scope.library, kind=CategoryKind.FORMAT, slug=CHAT_FORMAT
    ).values_list("current_id", flat=True)
    return transactions_in(scope).filter(format__current_id__in=chat).exclude(outcome="")


RATINGS = range(1, 6)

# Each spread: its column, and the outcome its chats have (None: every chat with a value).
SPREADS: dict[str, tuple[str, Outcome | None]] = {
    "wait": ("wait_s", Outcome.ANSWERED),
    "first_response": ("first_response_s", None),
    "duration": ("duration_s", Outcome.ANSWERED),
}


@cache
def _levels_select(vendor: str) -> tuple[str, tuple[Any, ...]]:
    """The service levels as one SELECT list over the chats' columns, with its parameters.

    Written once: as an ORM aggregate its 22 expressions cost more to build at each request
    than a month's chats cost to count. The chats (the scope's filters) stay a queryset.
    """
    columns: list[tuple[str, str, tuple[Any, ...]]] = [
        ("chats", "COUNT(*)", ()),
        ("rolled_over", "COUNT(*) FILTER (WHERE rolled_over)", ()),
        ("rating_mean", "AVG(rating)", ()),
    ]
    columns += [
        (f"o_{outcome}", "COUNT(*) FILTER (WHERE outcome = %s)", (outcome,))
        for outcome in Outcome.values
    ]
    # The ratings' distribution in the same scan (a rating is 1 to 5: a constraint).
    columns += [
        (f"r_{score}", "COUNT(*) FILTER (WHERE rating = %s)", (score,)) for score in RATINGS
    ]
    for name, (column, outcome) in SPREADS.items():
        # NULLs are left out of counts and percentiles: the answered chats' filter is enough.
        condition, values = (
            (" FILTER (WHERE outcome = %s)", (outcome.value,)) if outcome else ("", ())
        )
        columns.append((f"{name}_n", f"COUNT({column}){condition}", values))
        if vendor == "postgresql":
            for suffix, fraction in (("median", 0.5), ("p90", 0.9)):
                columns.append(
                    (
                        f"{name}_{suffix}",
                        f"PERCENTILE_CONT({fraction}) WITHIN GROUP (ORDER BY {column})" + condition,
                        values,
                    )
                )
    sql = ", ".join(f"{expression} AS {name}" for name, expression, _values in columns)
    return sql, tuple(value for _name, _expression, values in columns for value in values)


def service_levels(scope: Scope) -> ServiceLevels:
    """The chat service levels of the scope (definitions in this module's docstring)."""
    # Only columns of the (library, format, started_at) index: the chats are read from it alone.
    columns = ["rolled_over", "rating", "outcome", *(column for column, _o in SPREADS.values())]
    source, inner_params = _scope_sql(scope, chats=True)
    inner = f"SELECT {', '.join(f't.{column}' for column in columns)} {source}"
    select, select_params = _levels_select(connection.vendor)
    with connection.cursor() as cursor:
        # The SELECT list is fixed text; every value is a parameter.
        sql = f"SELECT {select} FROM ({inner}) AS chats"  # noqa: S608
        cursor.execute(sql, (*select_params, *inner_params))
        names = [column[0] for column in cursor.description]
        totals = dict(zip(names, cursor.fetchone(), strict=True))
    spreads = {
        name: _spread(scope, name, column, outcome, totals)
        for name, (column, outcome) in SPREADS.items()
    }
    mean = totals["rating_mean"]
    return ServiceLevels(
        chats=int(totals["chats"]),
        outcomes={outcome: int(totals[f"o_{outcome}"]) for outcome in Outcome.values},
        rolled_over=int(totals["rolled_over"]),
        wait=spreads["wait"],
        first_response=spreads["first_response"],
        duration=spreads["duration"],
        ratings={score: int(totals[f"r_{score}"]) for score in RATINGS if totals[f"r_{score}"]},
        rating_mean=None if mean is None else float(mean),
    )


def _spread(
    scope: Scope,
    name: str,
    column: str,
    outcome: Outcome | None,
    totals: dict[str, Any],
) -> Spread:
    count = int(totals[f"{name}_n"])
    if connection.vendor == "postgresql":
        median, p90 = totals[f"{name}_median"], totals[f"{name}_p90"]
        return Spread(
            count=count,
            median=None if median is None else float(median),
            p90=None if p90 is None else float(p90),
        )
    # SQLite (the embedded demo) has no percentile aggregate: sort the few values here.
    chats = chat_transactions(scope)
    if outcome is not None:
        chats = chats.filter(outcome=outcome)
    values = sorted(
        float(v)
        for v in chats.exclude(**{f"{column}__isnull": True}).values_list(column, flat=True)
    )
    return Spread(count=count, median=percentile(values, 0.5), p90=percentile(values, 0.9))


# --- demand versus coverage ----------

# An hour is named under-staffed when it has questions but nobody rostered, or at least this
# many times the range's overall questions per staff-hour; over-staffed when it is rostered and
# has at most 1/OUTLIER of it (no questions at all included).
OUTLIER = 2.0
NAMED_HOURS = 5


@dataclass(frozen=True)
class CoverageCell:
    weekday: int
    hour: int
    questions: int
    staff_hours: float

    @property
    def per_staff_hour(self) -> float | None:
        return self.questions / self.staff_hours if self.staff_hours else None


@dataclass(frozen=True)
class Coverage:
    """Demand (questions) against rostered staff-hours for each local hour of the week."""

    cells: list[CoverageCell]
    overall: float | None  # questions per staff-hour over the rostered hours of the range
    under: list[CoverageCell]  # busiest first
    over: list[CoverageCell]  # quietest first

    def assessment(self, cell: CoverageCell) -> str:
        return self._assessments.get((cell.weekday, cell.hour), "")

    @cached_property
    def _assessments(self) -> dict[tuple[int, int], str]:
        marks = {(cell.weekday, cell.hour): "over" for cell in self.over}
        return marks | {(cell.weekday, cell.hour): "under" for cell in self.under}


def demand_vs_coverage(scope: Scope, *, demand: HeatMap | None = None) -> Coverage:
    """Questions per rostered staff-hour per hour of the week (the staffing app's roster).

    The roster is narrowed by the scope's service point; queue and format filters narrow only
    the questions. ``demand`` is the scope's :func:`heatmap` when the caller has it already.
    """
    point = None
    if scope.service_point_id is not None:
        point = ServicePoint.objects.get(pk=scope.service_point_id, library=scope.library)
    staffed = staffed_hours_by_hour_of_week(
        library=scope.library, start=scope.start, end=scope.end, service_point=point
    )
    if demand is None:
        demand = heatmap(scope)
    cells = [
        CoverageCell(
            weekday=weekday,
            hour=hour,
            questions=demand.get((weekday, hour), 0),
            staff_hours=round(staffed.get((weekday, hour), 0.0), 4),
        )
        for weekday, hour in hours_of_week()
    ]
    rostered = [cell for cell in cells if cell.staff_hours]
    total_hours = sum(cell.staff_hours for cell in rostered)
    overall = sum(cell.questions for cell in rostered) / total_hours if total_hours else None
    under = [cell for cell in cells if cell.questions and not cell.staff_hours]
    over: list[CoverageCell] = []
    if overall is not None:
        for cell in rostered:
            ratio = cell.per_staff_hour or 0.0
            if overall and ratio >= OUTLIER * overall:
                under.append(cell)
            elif ratio <= overall / OUTLIER:
                over.append(cell)
    under.sort(key=lambda c: (-(c.per_staff_hour or math.inf), -c.questions))
    over.sort(key=lambda c: (c.per_staff_hour or 0.0, -c.staff_hours))
    return Coverage(cells=cells, overall=overall, under=under, over=over)
