"""Writes of the analytics app: transactions (from chats, the tally, imports) and category lists.

Every function is keyword-only and typed. Recording a chat is idempotent: the conversation link
is unique, so a signal delivered twice, a re-run or a race between two workers leaves exactly
one transaction per conversation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, TruncDate
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from analytics.models import (
    CHAT_FORMAT,
    DEFAULT_FORMATS,
    DEFAULT_QUESTION_TYPES,
    Category,
    CategoryChange,
    CategoryKind,
    ChangeAction,
    Outcome,
    Source,
    Transaction,
)
from chat.models import Conversation, Event, EventKind, Sender, Status
from reflib.models import Library, Queue, ServicePoint

# How long the desk's tally offers "undo" (the desk shows the same number).
TALLY_UNDO_SECONDS = 10


# --- category lists ----------


def _next_version(*, library: Library, kind: CategoryKind) -> int:
    # The library row lock serialises changes of its lists, so versions are gapless.
    Library.objects.select_for_update().filter(pk=library.pk).first()
    latest = CategoryChange.objects.filter(library=library, kind=kind).aggregate(v=Max("version"))
    return int(latest["v"] or 0) + 1


def _log_change(
    *,
    library: Library,
    kind: CategoryKind,
    version: int,
    action: ChangeAction,
    source: Category,
    target: Category | None = None,
    user: User | None = None,
) -> None:
    CategoryChange.objects.create(
        library=library,
        kind=kind,
        version=version,
        action=action,
        source=source,
        target=target,
        changed_by=user,
    )


def _unique_slug(*, library: Library, kind: CategoryKind, label: str) -> str:
    base = slugify(label)[:50] or "entry"
    slug, n = base, 2
    while Category.objects.filter(library=library, kind=kind, slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _check_label(label: str) -> str:
    label = label.strip()
    if not label or len(label) > 80:
        raise ValidationError(_("A label is 1 to 80 characters."))
    return label


def _create_entry(
    *,
    library: Library,
    kind: CategoryKind,
    label: str,
    position: int,
    version: int,
    slug: str = "",
) -> Category:
    category = Category.objects.create(
        library=library,
        kind=kind,
        slug=slug or _unique_slug(library=library, kind=kind, label=label),
        label=label,
        position=position,
        introduced_in=version,
    )
    # An entry in use stands for itself.
    category.current = category
    category.save(update_fields=["current"])
    return category


@transaction.atomic
def category_add(
    *,
    library: Library,
    kind: CategoryKind,
    label: str,
    slug: str = "",
    position: int = 100,
    user: User | None = None,
) -> Category:
    """Add an entry to a list; a new version of the list."""
    label = _check_label(label)
    version = _next_version(library=library, kind=kind)
    category = _create_entry(
        library=library, kind=kind, label=label, slug=slug, position=position, version=version
    )
    _log_change(
        library=library,
        kind=kind,
        version=version,
        action=ChangeAction.ADD,
        source=category,
        user=user,
    )
    return category


def _retire_into(*, old: Category, target: Category, version: int) -> None:
    """Retire ``old``; it and every earlier version it stood for now count as ``target``."""
    Category.objects.filter(current=old).update(current=target)
    old.refresh_from_db()
    old.retired_in = version
    old.save(update_fields=["retired_in"])


@transaction.atomic
def category_rename(*, category: Category, label: str, user: User | None = None) -> Category:
    """Rename an entry: a new entry takes its place; records keep the old one, counted as new."""
    if not category.is_active:
        raise ValidationError(_("Only an entry in use can be renamed."))
    label = _check_label(label)
    library, kind = category.library, CategoryKind(category.kind)
    version = _next_version(library=library, kind=kind)
    renamed = _create_entry(
        library=library, kind=kind, label=label, position=category.position, version=version
    )
    _retire_into(old=category, target=renamed, version=version)
    _log_change(
        library=library,
        kind=kind,
        version=version,
        action=ChangeAction.RENAME,
        source=category,
        target=renamed,
        user=user,
    )
    return renamed


@transaction.atomic
def category_merge(*, sources: Iterable[Category], into: Category, user: User | None = None) -> int:
    """Merge entries into ``into`` (of the same list); returns the list's new version."""
    if not into.is_active:
        raise ValidationError(_("Merge into an entry that is in use."))
    library, kind = into.library, CategoryKind(into.kind)
    merged = [source for source in sources if source.pk != into.pk]
    for source in merged:
        if source.library_id != into.library_id or source.kind != into.kind:
            raise ValidationError(_("Only entries of the same list can be merged."))
        if not source.is_active:
            raise ValidationError(_("%(label)s is already retired.") % {"label": source.label})
    if not merged:
        raise ValidationError(_("Choose at least one other entry to merge."))
    version = _next_version(library=library, kind=kind)
    for source in merged:
        _retire_into(old=source, target=into, version=version)
        _log_change(
            library=library,
            kind=kind,
            version=version,
            action=ChangeAction.MERGE,
            source=source,
            target=into,
            user=user,
        )
    return version


def categories_ensure_defaults(
    *, library: Library, existing: set[tuple[str, str]] | None = None
) -> bool:
    """Give a library the default formats and question types it does not have yet; True when
    it added any.

    Run when a library is created; pages call it too, for libraries older than the lists (it
    writes nothing when they are there). ``existing`` is the library's (kind, slug) pairs of
    those two lists when the caller has read them already.
    """
    defaults = [
        (CategoryKind.FORMAT, DEFAULT_FORMATS),
        (CategoryKind.QUESTION_TYPE, DEFAULT_QUESTION_TYPES),
    ]
    if existing is None:
        existing = set(
            Category.objects.filter(library=library, kind__in=[kind for kind, _ in defaults])
            .order_by()
            .values_list("kind", "slug")
        )
    added = False
    for kind, entries in defaults:
        for position, (slug, label) in enumerate(entries, start=1):
            if (kind, slug) in existing:
                continue
            try:
                with transaction.atomic():
                    category_add(
                        library=library, kind=kind, label=str(label), slug=slug, position=position
                    )
            except IntegrityError:
                pass  # a concurrent request added it first: it is there, which is all we need
            added = True
    return added


def category_current(*, library: Library, kind: CategoryKind, slug: str) -> Category | None:
    """The entry that today stands for ``slug`` (itself, or what it was renamed or merged into)."""
    category = (
        Category.objects.filter(library=library, kind=kind, slug=slug)
        .select_related("current")
        .first()
    )
    if category is None:
        return None
    return category.current or category


def chat_format(*, library: Library) -> Category:
    found = category_current(library=library, kind=CategoryKind.FORMAT, slug=CHAT_FORMAT)
    if found is None:
        categories_ensure_defaults(library=library)
        found = category_current(library=library, kind=CategoryKind.FORMAT, slug=CHAT_FORMAT)
    assert found is not None
    return found


def tags_resolve(*, library: Library, names: Iterable[str]) -> list[Category]:
    """The current tag entries for free-text tags, adding the ones the list does not have."""
    resolved: list[Category] = []
    for name in names:
        slug = slugify(name)[:60]
        if not slug:
            continue
        tag = category_current(library=library, kind=CategoryKind.TAG, slug=slug)
        if tag is None:
            tag = category_add(library=library, kind=CategoryKind.TAG, label=name, slug=slug)
        if tag not in resolved:
            resolved.append(tag)
    return resolved


# --- chats ----------

CHAT_OUTCOMES = {
    Status.ABANDONED: Outcome.ABANDONED,
    Status.MISSED: Outcome.MISSED,
    Status.TICKET: Outcome.TICKET,
}


def chat_outcome(conversation: Conversation) -> Outcome:
    """The outcome of an ended conversation (definitions in ``docs/analytics.md``)."""
    if conversation.status == Status.CLOSED:
        # A chat staff closed while it still waited was never answered: declined, not abandoned.
        return Outcome.ANSWERED if conversation.accepted_at else Outcome.DECLINED
    return CHAT_OUTCOMES[Status(conversation.status)]


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def transaction_record_chat(*, conversation_id: int) -> Transaction | None:
    """Record an ended conversation as its one transaction; None while it is still open.

    Idempotent: a second call (a repeated signal, a re-run, a concurrent worker) returns the
    transaction already recorded, refreshing only its rating.
    """
    conversation = (
        Conversation.objects.select_related("library", "origin_queue__service_point")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None or conversation.is_open:
        return None
    existing = Transaction.objects.filter(conversation=conversation).first()
    if existing is not None:
        return _refresh_rating(existing, conversation)
    outcome = chat_outcome(conversation)
    end = conversation.closed_at or conversation.created_at
    first_reply = (
        Event.objects.filter(
            conversation=conversation,
            sender=Sender.LIBRARIAN,
            kind__in=[EventKind.MESSAGE, EventKind.FILE],
        )
        .order_by("seq")
        .values_list("created_at", flat=True)
        .first()
    )
    accepted = conversation.accepted_at
    record = Transaction(
        library=conversation.library,
        service_point=conversation.origin_queue.service_point,
        queue=conversation.origin_queue,
        format=chat_format(library=conversation.library),
        started_at=conversation.created_at,
        ended_at=end,
        read_level=conversation.read_level,
        staff=conversation.librarian,
        conversation=conversation,
        wait_s=_seconds(conversation.created_at, accepted or end),
        first_response_s=_seconds(conversation.created_at, first_reply),
        duration_s=_seconds(accepted, end) if accepted else None,
        outcome=outcome,
        rolled_over=conversation.rolled_over,
        rating=conversation.rating,
        source=Source.CHAT,
    )
    try:
        with transaction.atomic():
            record.save()
            record.tags.set(tags_resolve(library=conversation.library, names=conversation.tags))
    except IntegrityError:
        # Another worker recorded it between our check and our insert.
        return Transaction.objects.get(conversation=conversation)
    return record


def _refresh_rating(record: Transaction, conversation: Conversation) -> Transaction:
    if record.rating != conversation.rating:
        record.rating = conversation.rating
        record.save(update_fields=["rating"])
    return record


# --- local time ----------


@transaction.atomic
def transactions_localise(*, library: Library) -> int:
    """Stamp every transaction of ``library`` with its local date, weekday and hour again (the
    library's time zone changed): the same rule as ``Transaction.localise``, in one UPDATE."""
    zone = library.zone
    return Transaction.objects.filter(library=library).update(
        local_date=TruncDate("started_at", tzinfo=zone),
        local_weekday=ExtractIsoWeekDay("started_at", tzinfo=zone) - 1,
        local_hour=ExtractHour("started_at", tzinfo=zone),
    )


# --- the desk's tally ----------


@transaction.atomic
def transaction_tally(
    *,
    library: Library,
    user: User,
    format: Category,
    service_point: ServicePoint | None = None,
    queue: Queue | None = None,
    question_type: Category | None = None,
    read_level: int | None = None,
    note: str = "",
    at: datetime | None = None,
) -> Transaction:
    """Count one question a librarian answered at a desk, by phone, e-mail... (the tally)."""
    _check_belongs(library, format, CategoryKind.FORMAT)
    if question_type is not None:
        _check_belongs(library, question_type, CategoryKind.QUESTION_TYPE)
    if service_point is not None and service_point.library_id != library.pk:
        raise ValidationError(_("Choose a service point of this library."))
    if read_level is not None and not 1 <= read_level <= 6:
        raise ValidationError(_("The READ level is 1 to 6."))
    if len(note) > 2000:
        raise ValidationError(_("The note is at most 2000 characters."))
    now = at or timezone.now()
    return Transaction.objects.create(
        library=library,
        service_point=service_point,
        queue=queue,
        format=format,
        started_at=now,
        ended_at=now,
        question_type=question_type,
        read_level=read_level,
        note=note.strip(),
        staff=user,
        source=Source.TALLY,
        created_by=user,
        created_at=now,
    )


def _check_belongs(library: Library, category: Category, kind: CategoryKind) -> None:
    if category.library_id != library.pk or category.kind != kind or not category.is_active:
        raise ValidationError(_("Choose an entry of this library's current list."))


@transaction.atomic
def transaction_tally_undo(*, transaction_id: int, user: User) -> bool:
    """Take back one's own tally within :data:`TALLY_UNDO_SECONDS`; False when too late."""
    deleted, _rows = Transaction.objects.filter(
        pk=transaction_id,
        source=Source.TALLY,
        created_by=user,
        created_at__gte=timezone.now() - timedelta(seconds=TALLY_UNDO_SECONDS),
    ).delete()
    return deleted > 0
