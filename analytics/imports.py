"""Importing transactions from CSV: reflib's own ``transactions.csv`` and, through a column
mapping, the exports of libstats, Gimlet and LibInsight (``docs/analytics.md``).

All or nothing: every row is checked first; when any row is bad nothing is imported and every
bad row is reported with its line number and reason, unless ``skip_bad`` asks to import the
good rows. Re-importing a file never doubles it: each row has a stable key (its ``key`` column,
or a digest of its values plus its occurrence number among identical rows of the file), and the
database keeps one transaction per key and library.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from analytics.csv_export import TAG_SEPARATOR, TRANSACTION_COLUMNS
from analytics.models import Category, CategoryKind, Outcome, Source, Transaction
from analytics.services import categories_ensure_defaults, tags_resolve
from reflib.models import Library, Queue, ServicePoint

# Besides the columns of transactions.csv, a mapping may name separate date and time columns.
EXTRA_FIELDS = ["date", "time"]
FIELDS = [*TRANSACTION_COLUMNS, *EXTRA_FIELDS]
DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%d.%m.%Y"]
TIME_FORMATS = ["%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p", "%I:%M%p"]
NATIVE_KEY = re.compile(r"reflib:(?P<library>[a-z0-9-]+):(?P<pk>\d+)")
BATCH = 1000
MAX_BAD_REPORTED = 1000


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``SOURCE=FIELD`` items (blank ones ignored) as {source column: field}."""
    mapping: dict[str, str] = {}
    for item in items:
        if not item.strip():
            continue
        source, sep, target = item.strip().rpartition("=")
        if not sep or not source.strip() or target.strip() not in FIELDS:
            raise ValidationError(
                _("%(item)s is not SOURCE=FIELD with FIELD one of: %(fields)s")
                % {"item": item.strip(), "fields": ", ".join(FIELDS)}
            )
        mapping[source.strip()] = target.strip()
    return mapping


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str

    def __str__(self) -> str:
        return _("line %(line)s: %(reason)s") % {"line": self.line, "reason": self.reason}


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    already_present: int = 0
    bad: list[BadRow] = field(default_factory=list)
    dry_run: bool = False
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.bad and not self.imported and not self.dry_run:
            return _("Nothing imported: %(n)s bad rows of %(rows)s.") % {
                "n": len(self.bad),
                "rows": self.rows,
            }
        verb = _("would be imported") if self.dry_run else _("imported")
        return _(
            "%(rows)s rows: %(imported)s %(verb)s, %(present)s already present, %(bad)s bad."
        ) % {
            "rows": self.rows,
            "imported": self.imported,
            "verb": verb,
            "present": self.already_present,
            "bad": len(self.bad),
        }


class RowError(Exception):
    pass


@dataclass
class ParsedRow:
    line: int
    key: str
    native_pk: int | None
    values: dict[str, Any]
    tags: list[str]


class _Lookups:
    """The library's lists, read once, to check rows without a query per row."""

    def __init__(self, library: Library) -> None:
        categories_ensure_defaults(library=library)
        self.library = library
        self.entries: dict[tuple[str, str], Category] = {}
        for entry in Category.objects.filter(library=library).select_related("current"):
            current = entry.current or entry
            for name in (entry.slug, str(entry.label)):
                self.entries.setdefault((entry.kind, name.lower()), current)
        self.points = {
            name.lower(): point
            for point in ServicePoint.objects.for_library(library)
            for name in (point.slug, point.name)
        }
        self.queues = {queue.slug: queue for queue in Queue.objects.for_library(library)}
        self.staff = {
            user.username: user for user in User.objects.filter(memberships__library=library)
        }

    def entry(self, kind: CategoryKind, value: str, column: str) -> Category | None:
        if not value:
            return None
        found = self.entries.get((kind, value.lower()))
        if found is None:
            raise RowError(_("unknown %(column)s “%(value)s”") % {"column": column, "value": value})
        return found


def _optional_int(value: str, column: str, low: int, high: int | None = None) -> int | None:
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise RowError(_("%(column)s is not a whole number") % {"column": column}) from None
    if number < low or (high is not None and number > high):
        bounds = f"{low} to {high}" if high is not None else f"at least {low}"
        raise RowError(_("%(column)s must be %(bounds)s") % {"column": column, "bounds": bounds})
    return number


def _parse_moment(value: str, library: Library, column: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RowError(
            _("%(column)s “%(value)s” is not a date and time") % {"column": column, "value": value}
        ) from None
    # No offset: the library's local time (SPEC: times are the library's wall clock).
    return moment if moment.tzinfo else moment.replace(tzinfo=library.zone)


def _parse_with(value: str, formats: list[str], column: str) -> datetime:
    for pattern in formats:
        try:
            # Only the date or the clock time is used; the zone is the library's.
            return datetime.strptime(  # noqa: DTZ007
                value.strip().upper() if "%p" in pattern else value.strip(), pattern
            )
        except ValueError:
            continue
    raise RowError(
        _("%(column)s “%(value)s” is not understood") % {"column": column, "value": value}
    )


def _started(row: dict[str, str], library: Library) -> datetime:
    if row.get("started_at"):
        return _parse_moment(row["started_at"], library, "started_at")
    if not row.get("date"):
        raise RowError(_("no started_at (or date) given"))
    day: date = _parse_with(row["date"], DATE_FORMATS, "date").date()
    clock = _parse_with(row["time"], TIME_FORMATS, "time").time() if row.get("time") else time(0)
    return datetime.combine(day, clock, tzinfo=library.zone)


TRUE = {"1", "true", "yes", "y", "t"}
FALSE = {"0", "false", "no", "n", "f", ""}


def _parse_row(row: dict[str, str], lookups: _Lookups) -> dict[str, Any]:
    library = lookups.library
    started = _started(row, library)
    ended = _parse_moment(row["ended_at"], library, "ended_at") if row.get("ended_at") else None
    if ended is not None and ended < started:
        raise RowError(_("ended_at is before started_at"))
    fmt = lookups.entry(CategoryKind.FORMAT, row.get("format", ""), "format")
    if fmt is None:
        raise RowError(_("no format given"))
    point_name = row.get("service_point", "")
    point = lookups.points.get(point_name.lower()) if point_name else None
    if point_name and point is None:
        raise RowError(_("unknown service_point “%(value)s”") % {"value": point_name})
    queue_slug = row.get("queue", "")
    queue = lookups.queues.get(queue_slug) if queue_slug else None
    if queue_slug and queue is None:
        raise RowError(_("unknown queue “%(value)s”") % {"value": queue_slug})
    username = row.get("staff", "")
    staff = lookups.staff.get(username) if username else None
    if username and staff is None:
        raise RowError(_("staff “%(value)s” is not a member of this library") % {"value": username})
    outcome = row.get("outcome", "").lower()
    if outcome not in [*Outcome.values, ""]:
        raise RowError(_("unknown outcome “%(value)s”") % {"value": outcome})
    rolled = row.get("rolled_over", "").lower()
    if rolled not in TRUE | FALSE:
        raise RowError(_("rolled_over must be 1 or 0"))
    note = row.get("note", "")
    if len(note) > 2000:
        raise RowError(_("note is longer than 2000 characters"))
    return {
        "started_at": started,
        "ended_at": ended,
        "format": fmt,
        "service_point": point,
        "queue": queue,
        "question_type": lookups.entry(
            CategoryKind.QUESTION_TYPE, row.get("question_type", ""), "question_type"
        ),
        "read_level": _optional_int(row.get("read_level", ""), "read_level", 1, 6),
        "note": note,
        "staff": staff,
        "outcome": outcome,
        "wait_s": _optional_int(row.get("wait_s", ""), "wait_s", 0),
        "first_response_s": _optional_int(row.get("first_response_s", ""), "first_response_s", 0),
        "duration_s": _optional_int(row.get("duration_s", ""), "duration_s", 0),
        "rolled_over": rolled in TRUE,
        "rating": _optional_int(row.get("rating", ""), "rating", 1, 5),
    }


def _tags(value: str) -> list[str]:
    # transactions.csv separates tags with TAG_SEPARATOR; other tools often use commas.
    return [tag.strip() for tag in re.split(rf"[{TAG_SEPARATOR},]", value) if tag.strip()]


def _digest(values: dict[str, Any], tags: list[str]) -> str:
    """A stable key for a row without one: its meaning, not its spelling (times in UTC)."""
    parts = []
    for name in sorted(values):
        value = values[name]
        if isinstance(value, datetime):
            value = value.timestamp()
        elif hasattr(value, "pk"):
            value = value.pk
        parts.append(f"{name}={value}")
    parts.append("tags=" + ",".join(sorted(tags)))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def _read(text: str) -> tuple[list[str], Iterable[tuple[int, dict[str, str]]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or not any(column.strip() for column in header):
        raise ValidationError(_("The file is empty."))

    def rows() -> Iterable[tuple[int, dict[str, str]]]:
        line = reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield (
                    line,
                    dict(zip(header, cells, strict=False))
                    | ({"__width__": str(len(cells))} if len(cells) != len(header) else {}),
                )
            line = reader.line_num + 1

    return header, rows()


def import_transactions(
    *,
    stream: IO[Any],
    library: Library,
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    skip_bad: bool = False,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> ImportReport:
    """Check and import a CSV file of transactions into ``library`` (see the module docstring)."""
    raw = stream.read()
    try:
        header, rows = _read(raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw)
    except UnicodeDecodeError:
        raise ValidationError(_("The file is not UTF-8 text.")) from None
    except csv.Error as error:
        raise ValidationError(_("The file is not CSV: %(error)s") % {"error": error}) from None
    mapping = mapping or {}
    fields = [mapping.get(column, column) for column in header]
    report = ImportReport(
        dry_run=dry_run,
        ignored_columns=[c for c, f in zip(header, fields, strict=True) if f not in FIELDS],
    )
    if "format" not in fields:
        raise ValidationError(_("The file has no format column (map one with SOURCE=format)."))
    if "started_at" not in fields and "date" not in fields:
        raise ValidationError(_("The file has no started_at or date column."))
    lookups = _Lookups(library)
    parsed: list[ParsedRow] = []
    seen_keys: dict[str, int] = {}
    occurrences: dict[str, int] = {}
    for line, source in rows:
        report.rows += 1
        row = {
            target: source.get(column, "").strip()
            for column, target in zip(header, fields, strict=True)
            if target in FIELDS
        }
        try:
            if "__width__" in source:
                raise RowError(
                    _("%(n)s cells where the header has %(m)s")
                    % {"n": source["__width__"], "m": len(header)}
                )
            values = _parse_row(row, lookups)
            tags = _tags(row.get("tags", ""))
            key = row.get("key", "")
            if len(key) > 64:
                raise RowError(_("key is longer than 64 characters"))
            if key in seen_keys:
                raise RowError(_("key repeats line %(line)s") % {"line": seen_keys[key]})
            if not key:
                digest = _digest(values, tags)
                occurrences[digest] = occurrences.get(digest, 0) + 1
                key = f"{digest}#{occurrences[digest]}"
            seen_keys[key] = line
        except RowError as error:
            if len(report.bad) < MAX_BAD_REPORTED:
                report.bad.append(BadRow(line=line, reason=str(error)))
            continue
        native = NATIVE_KEY.fullmatch(key)
        native_pk = int(native["pk"]) if native and native["library"] == library.slug else None
        parsed.append(ParsedRow(line=line, key=key, native_pk=native_pk, values=values, tags=tags))

    if report.bad and not skip_bad:
        return report
    new = _new_rows(parsed, library)
    report.already_present = len(parsed) - len(new)
    report.imported = len(new)
    if not dry_run and new:
        _store(new, library, user)
    return report


def _new_rows(parsed: list[ParsedRow], library: Library) -> list[ParsedRow]:
    keys = [row.key for row in parsed]
    present: set[str] = set()
    for start in range(0, len(keys), BATCH):
        present.update(
            key
            for key in Transaction.objects.filter(
                library=library, import_key__in=keys[start : start + BATCH]
            ).values_list("import_key", flat=True)
            if key is not None
        )
    native = [row.native_pk for row in parsed if row.native_pk is not None]
    native_present = set(
        Transaction.objects.filter(library=library, pk__in=native).values_list("pk", flat=True)
    )
    return [row for row in parsed if row.key not in present and row.native_pk not in native_present]


@transaction.atomic
def _store(rows: list[ParsedRow], library: Library, user: Any) -> None:
    creator = user if isinstance(user, User) else None
    records = [
        Transaction(
            library=library,
            source=Source.IMPORT,
            import_key=row.key,
            created_by=creator,
            **row.values,
        )
        for row in rows
    ]
    Transaction.objects.bulk_create(records, batch_size=BATCH)
    through = Transaction.tags.through
    links = []
    resolved: dict[str, Category] = {}
    for record, row in zip(records, rows, strict=True):
        for name in row.tags:
            if name not in resolved:
                for tag in tags_resolve(library=library, names=[name]):
                    resolved[name] = tag
            if name in resolved:
                links.append(through(transaction_id=record.pk, category_id=resolved[name].pk))
    through.objects.bulk_create(links, batch_size=BATCH, ignore_conflicts=True)
