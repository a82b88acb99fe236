"""The core domain every app stands on: libraries, their queues and desks, and their staff.

One installation serves one or more libraries. Everything a library owns carries a ``library``
foreign key, and every read of it goes through a library-scoped QuerySet (``for_library``,
``visible_to``) so that staff of one library never see another's data by accident.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connections, models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reflib.redaction import compile_patterns
from reflib.validators import (
    normalize_origin,
    validate_card_patterns,
    validate_origin,
    validate_timezone,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    AnyUser = AbstractBaseUser | AnonymousUser


class Role(models.TextChoices):
    LIBRARIAN = "librarian", _("Librarian")
    MANAGER = "manager", _("Manager")


def _roles_at_least(role: Role) -> list[str]:
    # A manager can do everything a librarian can.
    return [Role.MANAGER] if role == Role.MANAGER else [Role.LIBRARIAN, Role.MANAGER]


class LibraryQuerySet(models.QuerySet["Library"]):
    def visible_to(self, user: AnyUser, *, role: Role = Role.LIBRARIAN) -> LibraryQuerySet:
        """Libraries in which ``user`` holds ``role`` (or a higher one); all for superusers."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if getattr(user, "is_superuser", False):
            return self.all()
        return self.filter(
            memberships__user_id=user.pk, memberships__role__in=_roles_at_least(role)
        ).distinct()


_LibraryManagerBase = models.Manager.from_queryset(LibraryQuerySet)


class LibraryManager(_LibraryManagerBase):
    def get_visible(self, user: AnyUser, *, slug: str, role: Role = Role.LIBRARIAN) -> Library:
        """``visible_to(user, role=role).get(slug=slug)`` as one written statement.

        For the check at the top of every manager request: compiling the ORM's join and
        ``DISTINCT`` took about three times what PostgreSQL takes to plan and run it
        (docs/benchmarks.md, "Manager analytics views"). The rule is
        :meth:`LibraryQuerySet.visible_to`'s; the tests hold the two to the same answers for
        every kind of user, role and library.
        """
        if not user.is_authenticated or not user.is_active:
            raise Library.DoesNotExist("No library is visible to this user.")
        everyone = bool(getattr(user, "is_superuser", False))
        roles = [] if everyone else _roles_at_least(role)
        names, sql = _visible_library_sql(len(roles))
        params = [slug] if everyone else [slug, user.pk, *roles]
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            raise Library.DoesNotExist("No library is visible to this user.")
        return Library.from_db(self.db, names, row)


@cache
def _visible_library_sql(roles: int) -> tuple[list[str], str]:
    """The library's columns, and the statement of :meth:`LibraryManager.get_visible`: by slug,
    and with ``roles`` > 0 only where the user holds one of that many roles. Names come from
    the models; every value is a parameter."""
    fields = Library._meta.concrete_fields
    columns = ", ".join(f'l."{field.column}"' for field in fields)
    library, membership = Library._meta.db_table, Membership._meta.db_table
    held = ", ".join(["%s"] * roles)
    sql = f'SELECT {columns} FROM "{library}" l WHERE l."slug" = %s'  # noqa: S608
    if roles:
        sql += f' AND EXISTS (SELECT 1 FROM "{membership}" m WHERE m."library_id" = l."id"'  # noqa: S608
        sql += f' AND m."user_id" = %s AND m."role" IN ({held}))'
    return [field.attname for field in fields], sql


class Library(models.Model):
    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    timezone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_timezone]
    )
    retention_days = models.PositiveIntegerField(
        _("keep transcripts for (days)"),
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_("After this many days a conversation's personal data is scrubbed."),
    )
    max_chats_per_librarian = models.PositiveSmallIntegerField(
        _("concurrent chats per librarian"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
    )
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    card_patterns = models.TextField(
        _("library card number patterns"),
        blank=True,
        validators=[validate_card_patterns],
        help_text=_(
            "One regular expression per line for this library's own card numbers, e.g. "
            "\\bLIB-\\d{6}\\b. Reports and retention redact them like 14-digit barcodes."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects: ClassVar[LibraryManager] = LibraryManager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("library")
        verbose_name_plural = _("libraries")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(retention_days__gte=1), name="library_retention_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(max_chats_per_librarian__gte=1),
                name="library_max_chats_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def compiled_card_patterns(self) -> list[re.Pattern[str]]:
        return compile_patterns(self.card_patterns.splitlines())


M = TypeVar("M", bound=models.Model)


class ScopedQuerySet(models.QuerySet[M]):
    """A QuerySet of rows that belong to a library through ``library_path``."""

    library_path: ClassVar[str] = "library"

    def for_library(self, library: Library) -> ScopedQuerySet[M]:
        return self.filter(**{self.library_path: library})

    def visible_to(self, user: AnyUser, *, role: Role = Role.LIBRARIAN) -> ScopedQuerySet[M]:
        return self.filter(
            **{f"{self.library_path}__in": Library.objects.visible_to(user, role=role)}
        )


class LibraryOwned(models.Model):
    """Abstract base for a row that belongs to exactly one library."""

    library = models.ForeignKey(Library, on_delete=models.CASCADE, verbose_name=_("library"))

    class Meta:
        abstract = True


class AllowedOrigin(LibraryOwned):
    origin = models.CharField(
        _("origin"),
        max_length=200,
        validators=[validate_origin],
        help_text=_(
            "A web site allowed to embed the chat widget, e.g. https://library.example.edu"
        ),
    )

    objects = ScopedQuerySet["AllowedOrigin"].as_manager()

    class Meta:
        ordering = ["origin"]
        default_related_name = "allowed_origins"
        verbose_name = _("allowed embedding origin")
        constraints = [
            models.UniqueConstraint(fields=["library", "origin"], name="unique_origin_per_library")
        ]

    def __str__(self) -> str:
        return self.origin

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.origin = normalize_origin(self.origin)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        self.origin = normalize_origin(self.origin)


class ServicePoint(LibraryOwned):
    """A desk where questions are answered: a physical desk, the phone line, the chat."""

    slug = models.SlugField(_("slug"), max_length=50)
    name = models.CharField(_("name"), max_length=120)
    is_active = models.BooleanField(_("active"), default=True)

    objects = ScopedQuerySet["ServicePoint"].as_manager()

    class Meta:
        ordering = ["library", "name"]
        default_related_name = "service_points"
        verbose_name = _("service point")
        constraints = [
            models.UniqueConstraint(
                fields=["library", "slug"], name="unique_service_point_per_library"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.library.slug})"


class QueueQuerySet(ScopedQuerySet["Queue"]):
    def by_address(self, address: str) -> Queue | None:
        """The active queue named ``LIB/QUEUE``, or None."""
        library_slug, sep, queue_slug = address.partition("/")
        if not sep or not library_slug or not queue_slug:
            return None
        return (
            self.select_related("library")
            .filter(library__slug=library_slug, slug=queue_slug, is_active=True)
            .first()
        )

    def partners_of(self, queue: Queue) -> QueueQuerySet:
        """The queues ``queue`` rolls over and transfers to: its partners that agreed.

        A partnership needs both sides: the source lists the partner, and the partner (if it
        is another library's) accepts rollovers from the source. A manager cannot send their
        patrons to a library that did not agree to answer them.
        """
        return self.filter(rollover_sources=queue).filter(
            models.Q(library_id=queue.library_id) | models.Q(accepts_rollover_from=queue)
        )


class Queue(LibraryOwned):
    """A chat entry point, addressed as ``LIB/QUEUE`` by the widget."""

    slug = models.SlugField(_("slug"), max_length=50)
    name = models.CharField(_("name"), max_length=120)
    service_point = models.ForeignKey(
        ServicePoint,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="queues",
        verbose_name=_("service point"),
        help_text=_("The desk whose rostered staff answer this queue."),
    )
    partners = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="rollover_sources",
        verbose_name=_("partner queues"),
        help_text=_(
            "Queues, possibly of another library, that receive patrons left unanswered. "
            "Another library's queue takes part only once that library accepts rollovers "
            "from this queue."
        ),
    )
    accepts_rollover_from = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="rollover_accepted_by",
        verbose_name=_("accepts rollovers from"),
        help_text=_(
            "Other libraries' queues whose unanswered patrons this queue agrees to receive "
            "(their side lists this queue as a partner)."
        ),
    )
    unanswered_limit_s = models.PositiveIntegerField(
        _("unanswered limit (seconds)"),
        default=90,
        validators=[MinValueValidator(10), MaxValueValidator(3600)],
        help_text=_(
            "After this long without a librarian the patron is offered a ticket and the chat "
            "rolls over to the partner queues."
        ),
    )
    missed_after_s = models.PositiveIntegerField(
        _("missed after (seconds)"),
        default=600,
        validators=[MinValueValidator(30), MaxValueValidator(86400)],
        help_text=_("A chat nobody accepted within this long is closed as missed."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    objects = QueueQuerySet.as_manager()

    class Meta:
        ordering = ["library", "name"]
        default_related_name = "queues"
        verbose_name = _("queue")
        constraints = [
            models.UniqueConstraint(fields=["library", "slug"], name="unique_queue_per_library")
        ]

    def __str__(self) -> str:
        return self.address

    @property
    def address(self) -> str:
        return Queue.address_of(library_slug=self.library.slug, queue_slug=self.slug)

    @staticmethod
    def address_of(*, library_slug: str, queue_slug: str) -> str:
        """``LIB/QUEUE``: how patrons and desks name a queue (``by_address`` reads it)."""
        return f"{library_slug}/{queue_slug}"

    def clean(self) -> None:
        if self.service_point is not None and self.service_point.library_id != self.library_id:
            raise ValidationError(
                {"service_point": _("Choose a service point of the queue's own library.")}
            )


class StaffProfile(models.Model):
    """What patrons see of a staff member: a display name, never the account name."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    display_name = models.CharField(_("display name"), max_length=80)

    class Meta:
        verbose_name = _("staff profile")

    def __str__(self) -> str:
        return self.display_name


class Membership(LibraryOwned):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.LIBRARIAN)

    objects = ScopedQuerySet["Membership"].as_manager()

    class Meta:
        ordering = ["library", "user__username"]
        default_related_name = "memberships"
        verbose_name = _("staff membership")
        constraints = [
            models.UniqueConstraint(fields=["user", "library"], name="unique_membership"),
            models.CheckConstraint(
                condition=models.Q(role__in=[Role.LIBRARIAN, Role.MANAGER]),
                name="membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.library.slug}"


def display_name(user: Any) -> str:
    """The name patrons see for a staff member."""
    profile = getattr(user, "staff_profile", None)
    if profile is not None and profile.display_name:
        return str(profile.display_name)
    return str(user.get_short_name() or user.get_username())


class JobOutcome(models.TextChoices):
    RUNNING = "running", _("running")
    SUCCESS = "success", _("succeeded")
    RETRY = "retry", _("failed, will be retried")
    FAILURE = "failure", _("failed")


class JobRun(models.Model):
    """One run of a background job (a Celery task), recorded by ``reflib.jobs``.

    A run that fails and is retried leaves a ``retry`` row per failed attempt and a row for the
    attempt that finally succeeded or failed. ``error`` holds the exception's class and message,
    never the task's arguments.
    """

    task = models.CharField(_("task"), max_length=200, db_index=True)
    task_id = models.CharField(_("Celery task id"), max_length=255, blank=True)
    library = models.ForeignKey(
        Library,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="job_runs",
        verbose_name=_("library"),
        help_text=_("Empty for a job of the whole installation."),
    )
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=1)
    started_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
    duration = models.DurationField(_("duration"), null=True, blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=10, choices=JobOutcome.choices, default=JobOutcome.RUNNING
    )
    error = models.TextField(_("error"), blank=True)

    objects = ScopedQuerySet["JobRun"].as_manager()

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("job run")
        indexes = [models.Index(fields=["task", "-started_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=JobOutcome.values), name="job_run_outcome_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.started_at:%Y-%m-%d %H:%M:%S} {self.outcome}"
