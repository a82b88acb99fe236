"""Reference transactions and the libraries' versioned category lists.

A **Transaction** is one reference question answered (or not) at one library: a chat (recorded
automatically when its conversation ends, see ``analytics.services.transaction_record_chat``) or
a desk, phone, e-mail, SMS or consultation question (entered through the desk's tally, or
imported). The outcome vocabulary is defined once, here and in ``docs/analytics.md``.

**Categories** (question types, tags, formats) are per library and versioned. A category row is
never renamed in place and never deleted while transactions use it: renaming creates a new row
and retires the old one, merging retires rows into an existing one. Every row points to the row
that represents it *today* (``current``), so a report groups by ``current`` and old records stay
comparable with new ones while each record keeps exactly what was chosen when it was recorded.
Each change is logged as a :class:`CategoryChange` with a per-list version number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chat.models import Conversation
from reflib.models import LibraryOwned, Queue, ScopedQuerySet, ServicePoint


class CategoryKind(models.TextChoices):
    QUESTION_TYPE = "question_type", _("question type")
    TAG = "tag", _("tag")
    FORMAT = "format", _("format")


# The slugs of the formats every library starts with. ``chat`` is the one chats are recorded
# under (found by slug, then followed to its current row, so renaming it is harmless).
DEFAULT_FORMATS = [
    ("chat", _("Chat")),
    ("desk", _("Desk")),
    ("phone", _("Phone")),
    ("email", _("E-mail")),
    ("sms", _("SMS")),
    ("consultation", _("Consultation")),
]
DEFAULT_QUESTION_TYPES = [
    ("directional", _("Directional")),
    ("technical", _("Technical")),
    ("policy", _("Policy")),
    ("reference", _("Reference")),
    ("research", _("Research")),
    ("other", _("Other")),
]
CHAT_FORMAT = "chat"


class CategoryQuerySet(ScopedQuerySet["Category"]):
    def active(self) -> CategoryQuerySet:
        return self.filter(retired_in__isnull=True)

    def of_kind(self, kind: CategoryKind) -> CategoryQuerySet:
        return self.filter(kind=kind)


class Category(LibraryOwned):
    """One version of an entry of a library's question-type, tag or format list."""

    kind = models.CharField(_("list"), max_length=16, choices=CategoryKind.choices)
    slug = models.SlugField(_("key"), max_length=60)
    label = models.CharField(_("label"), max_length=80)
    position = models.PositiveSmallIntegerField(_("position"), default=100)
    current = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        related_name="versions",
        verbose_name=_("counted as"),
        help_text=_("The entry that represents this one today (itself while it is in use)."),
    )
    introduced_in = models.PositiveIntegerField(_("introduced in version"), default=1)
    retired_in = models.PositiveIntegerField(_("retired in version"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects: ClassVar[CategoryQuerySet] = CategoryQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["library", "kind", "position", "label"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        default_related_name = "categories"
        constraints = [
            models.UniqueConstraint(
                fields=["library", "kind", "slug"], name="unique_category_slug_per_list"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=CategoryKind.values), name="category_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return str(self.label)

    @property
    def is_active(self) -> bool:
        return self.retired_in is None


class ChangeAction(models.TextChoices):
    ADD = "add", _("added")
    RENAME = "rename", _("renamed")
    MERGE = "merge", _("merged")
    RETIRE = "retire", _("retired")


class CategoryChange(LibraryOwned):
    """One change of a library's list; ``version`` counts the changes of that list from 1."""

    kind = models.CharField(_("list"), max_length=16, choices=CategoryKind.choices)
    version = models.PositiveIntegerField(_("version"))
    action = models.CharField(_("change"), max_length=8, choices=ChangeAction.choices)
    source = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="changes_from", verbose_name=_("from")
    )
    target = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="changes_to",
        verbose_name=_("to"),
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    changed_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet["CategoryChange"].as_manager()

    class Meta:
        ordering = ["library", "kind", "version"]
        verbose_name = _("category change")
        default_related_name = "category_changes"
        constraints = [
            models.UniqueConstraint(
                fields=["library", "kind", "version"], name="unique_category_list_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version}: {self.action}"


class Outcome(models.TextChoices):
    """What became of a chat. Defined once (also in ``docs/analytics.md``)."""

    ANSWERED = "answered", _("answered")  # a librarian accepted it
    ABANDONED = "abandoned", _("abandoned")  # the patron left before anyone accepted
    MISSED = "missed", _("missed")  # nobody accepted within the queue's missed_after_s
    TICKET = "ticket", _("ticket")  # the waiting patron left the question as a ticket
    DECLINED = "declined", _("declined")  # staff ended it before accepting (spam, block)


class Source(models.TextChoices):
    CHAT = "chat", _("recorded from a chat")
    TALLY = "tally", _("tally")
    IMPORT = "import", _("imported")


class TransactionQuerySet(ScopedQuerySet["Transaction"]):
    def bulk_create(self, objs: Iterable[Transaction], *args: Any, **kwargs: Any) -> list[Any]:
        # ``bulk_create`` skips ``save()``: stamp the local time here too (imports, demo data).
        records = list(objs)
        for record in records:
            record.localise()
        return super().bulk_create(records, *args, **kwargs)


class Transaction(LibraryOwned):
    """One reference transaction. Times are stored in UTC; reports bucket them in local time.

    ``local_date``, ``local_weekday`` (0 = Monday) and ``local_hour`` are ``started_at`` on the
    library's wall clock, stamped by :meth:`localise` whenever a transaction is written (``save``
    and ``bulk_create``) and recomputed for every transaction of a library whose time zone
    changes (``analytics.services.transactions_localise``). The manager views group by them, so
    an aggregate over a million rows converts no time zone and reads only an index.
    """

    service_point = models.ForeignKey(
        ServicePoint,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("service point"),
    )
    queue = models.ForeignKey(
        Queue, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("queue")
    )
    format = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        related_name="format_transactions",
        verbose_name=_("format"),
    )
    started_at = models.DateTimeField(_("started"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    local_date = models.DateField(_("local date"), editable=False)
    local_weekday = models.PositiveSmallIntegerField(_("local weekday"), editable=False)
    local_hour = models.PositiveSmallIntegerField(_("local hour"), editable=False)
    question_type = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="question_type_transactions",
        verbose_name=_("question type"),
    )
    read_level = models.PositiveSmallIntegerField(
        _("READ level"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(6)],
    )
    tags = models.ManyToManyField(
        Category, blank=True, related_name="tagged_transactions", verbose_name=_("tags")
    )
    note = models.TextField(_("note"), max_length=2000, blank=True)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reference_transactions",
        verbose_name=_("staff member"),
    )
    # One transaction per conversation: the database makes recording a chat idempotent.
    conversation = models.OneToOneField(
        Conversation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="transaction",
        verbose_name=_("conversation"),
    )
    wait_s = models.PositiveIntegerField(_("wait (s)"), null=True, blank=True)
    first_response_s = models.PositiveIntegerField(_("first response (s)"), null=True, blank=True)
    duration_s = models.PositiveIntegerField(_("duration (s)"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, blank=True)
    rolled_over = models.BooleanField(_("rolled over to a partner"), default=False)
    rating = models.PositiveSmallIntegerField(
        _("rating"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    # Imports only: a stable key per source row, so re-importing a file adds nothing twice.
    import_key = models.CharField(_("import key"), max_length=64, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects: ClassVar[TransactionQuerySet] = TransactionQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("reference transaction")
        default_related_name = "transactions"
        indexes = [
            # Every manager view reads one library over a date range, optionally narrowed. The
            # included columns are what the volume, heat map, READ and question-type counts
            # group by: over the whole library they read this index alone.
            models.Index(
                fields=["library", "started_at"],
                include=[
                    "local_date",
                    "local_weekday",
                    "local_hour",
                    "read_level",
                    "question_type",
                ],
                name="txn_library_started_local",
            ),
            # The chat service levels read the chat format's rows: the columns they aggregate
            # are included, so they read this index alone too.
            models.Index(
                fields=["library", "format", "started_at"],
                include=[
                    "outcome",
                    "wait_s",
                    "first_response_s",
                    "duration_s",
                    "rolled_over",
                    "rating",
                ],
                name="txn_library_format_chat",
            ),
            models.Index(
                fields=["library", "service_point", "started_at"], name="txn_library_point_started"
            ),
            models.Index(
                fields=["library", "queue", "started_at"], name="txn_library_queue_started"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["library", "import_key"],
                condition=models.Q(import_key__isnull=False),
                name="unique_transaction_import_key",
            ),
            models.CheckConstraint(
                condition=models.Q(read_level__isnull=True)
                | models.Q(read_level__gte=1, read_level__lte=6),
                name="transaction_read_level_1_6",
            ),
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True) | models.Q(rating__gte=1, rating__lte=5),
                name="transaction_rating_1_5",
            ),
            models.CheckConstraint(
                condition=models.Q(outcome__in=[*Outcome.values, ""]),
                name="transaction_outcome_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(source__in=Source.values), name="transaction_source_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(ended_at__gte=models.F("started_at")),
                name="transaction_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.format} {self.started_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.localise()
        super().save(*args, **kwargs)

    def localise(self) -> None:
        """Stamp the local date, weekday and hour of ``started_at`` in the library's zone."""
        local = self.started_at.astimezone(self.library.zone)
        self.local_date = local.date()
        self.local_weekday = local.weekday()
        self.local_hour = local.hour


class DailyReport(LibraryOwned):
    """A library's report on one local day (SPEC §4), built by ``analytics.report_services``.

    ``content`` holds everything the HTML, CSV and e-mail show, already redacted; a rebuild of
    the same day with the same data leaves it unchanged (``content_hash``). ``emailed_at`` is
    set once, when the e-mail to the library's managers has been handed to the mail server.
    """

    day = models.DateField(_("day"), help_text=_("The library's local day."))
    content = models.JSONField(_("content"), default=dict)
    content_hash = models.CharField(_("content hash"), max_length=64)
    built_at = models.DateTimeField(_("built"), default=timezone.now)
    emailed_at = models.DateTimeField(_("e-mailed"), null=True, blank=True)

    objects: ClassVar[ScopedQuerySet[DailyReport]] = ScopedQuerySet["DailyReport"].as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-day", "library"]
        verbose_name = _("daily report")
        default_related_name = "daily_reports"
        constraints = [
            models.UniqueConstraint(fields=["library", "day"], name="unique_daily_report")
        ]

    def __str__(self) -> str:
        return f"{self.library.slug} {self.day:%Y-%m-%d}"
