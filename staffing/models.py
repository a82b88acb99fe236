"""Staffing: opening hours, shift templates, the roster, availability, time off and swaps.

Rules are written in the library's local time (``time`` and ``date`` fields); the instants a
shift or a time-off request covers are stored in UTC, computed from those local times by
:mod:`staffing.wallclock` when the row is written. Every row belongs to one library, directly
or through its shift, and is read through the scoped QuerySets of :mod:`reflib.models`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from reflib.models import Library, LibraryOwned, Membership, Queue, ScopedQuerySet, ServicePoint
from staffing import wallclock


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


OVERNIGHT_HELP = _("An end at or before the start is on the next day (a night shift).")


class TimeOffEffect(models.TextChoices):
    FLAG = "flag", _("Flag the affected shifts")
    UNASSIGN = "unassign", _("Unassign the affected shifts")


class StaffingPolicy(models.Model):
    """A library's staffing rules. A library without a row uses the defaults."""

    library = models.OneToOneField(
        Library, on_delete=models.CASCADE, related_name="staffing_policy", verbose_name=_("library")
    )
    weekly_hour_limit = models.DecimalField(
        _("weekly hour limit"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("40"),
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("168"))],
        help_text=_("Most hours a person may be rostered in one week (Monday to Sunday)."),
    )
    min_rest_hours = models.DecimalField(
        _("minimum rest between shifts (hours)"),
        max_digits=4,
        decimal_places=2,
        default=Decimal("10"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("48"))],
    )
    time_off_effect = models.CharField(
        _("approved time off"),
        max_length=10,
        choices=TimeOffEffect.choices,
        default=TimeOffEffect.FLAG,
    )
    swaps_need_approval = models.BooleanField(
        _("swaps and claims need a manager's approval"), default=True
    )

    objects = ScopedQuerySet["StaffingPolicy"].as_manager()

    class Meta:
        verbose_name = _("staffing policy")
        verbose_name_plural = _("staffing policies")
        constraints = [
            models.CheckConstraint(
                condition=Q(weekly_hour_limit__gt=0), name="staffing_policy_limit_positive"
            ),
            models.CheckConstraint(
                condition=Q(min_rest_hours__gte=0), name="staffing_policy_rest_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return str(_("Staffing policy of %(library)s") % {"library": self.library.name})


def check_staff_of_library(row: LibraryOwned, user_id: int | None) -> None:
    """A row about a person of a library (availability, hour limit) must name its staff."""
    if (
        user_id is not None
        and row.library_id is not None
        and not Membership.objects.filter(user_id=user_id, library_id=row.library_id).exists()
    ):
        raise ValidationError({"user": _("Choose a staff member of this library.")})


class WeeklyHourLimit(LibraryOwned):
    """A person's own weekly hour limit, replacing the library's default (part-time staff)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name=_("staff member")
    )
    hours = models.DecimalField(
        _("weekly hour limit"),
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("168"))],
    )

    objects = ScopedQuerySet["WeeklyHourLimit"].as_manager()

    class Meta:
        default_related_name = "weekly_hour_limits"
        verbose_name = _("personal weekly hour limit")
        constraints = [
            models.UniqueConstraint(fields=["library", "user"], name="unique_hour_limit_per_user"),
            models.CheckConstraint(condition=Q(hours__gt=0), name="hour_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.hours} h"

    def clean(self) -> None:
        check_staff_of_library(self, self.user_id)


class HoursTarget(models.Model):
    """What a set of opening hours applies to: a service point or a chat queue, never both."""

    service_point = models.ForeignKey(
        ServicePoint, on_delete=models.CASCADE, null=True, blank=True, verbose_name=_("desk")
    )
    queue = models.ForeignKey(
        Queue, on_delete=models.CASCADE, null=True, blank=True, verbose_name=_("chat queue")
    )

    class Meta:
        abstract = True

    def _check_target(self, library_id: int | None, *, required: bool) -> None:
        if self.service_point_id is not None and self.queue_id is not None:
            raise ValidationError(_("Choose a service point or a queue, not both."))
        if required and self.service_point_id is None and self.queue_id is None:
            raise ValidationError(_("Choose a service point or a queue."))
        for target in (self.service_point, self.queue):
            if target is not None and target.library_id != library_id:
                raise ValidationError(_("Choose a service point or queue of this library."))


class OpeningHours(LibraryOwned, HoursTarget):
    """One weekly opening period of a service point or a chat queue.

    A queue with opening hours of its own follows them; a queue without follows its service
    point's. A target with no weekly hours at all is not restricted: its roster alone decides.
    """

    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"), help_text=OVERNIGHT_HELP)

    objects = ScopedQuerySet["OpeningHours"].as_manager()

    class Meta:
        ordering = ["library", "weekday", "opens"]
        default_related_name = "opening_hours"
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        constraints = [
            models.CheckConstraint(
                condition=Q(service_point__isnull=True) ^ Q(queue__isnull=True),
                name="opening_hours_one_target",
            ),
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="opening_hours_weekday_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"

    def clean(self) -> None:
        self._check_target(self.library_id, required=True)


class SpecialDay(LibraryOwned, HoursTarget):
    """A date whose hours differ from the weekly ones: a closure or special hours.

    Without a service point and queue it applies to the whole library (a public holiday). A
    row without times is a closure for the whole day; rows with times replace the weekly
    hours of that date (several rows give several periods). A target's own rows win over the
    library-wide ones.
    """

    date = models.DateField(_("date"))
    opens = models.TimeField(_("opens"), null=True, blank=True)
    closes = models.TimeField(_("closes"), null=True, blank=True, help_text=OVERNIGHT_HELP)
    note = models.CharField(_("note"), max_length=200, blank=True)

    objects = ScopedQuerySet["SpecialDay"].as_manager()

    class Meta:
        ordering = ["library", "date", "opens"]
        default_related_name = "special_days"
        verbose_name = _("closure or special hours")
        verbose_name_plural = _("closures and special hours")
        constraints = [
            models.CheckConstraint(
                condition=~Q(service_point__isnull=False, queue__isnull=False),
                name="special_day_at_most_one_target",
            ),
            models.CheckConstraint(
                condition=Q(opens__isnull=True, closes__isnull=True)
                | Q(opens__isnull=False, closes__isnull=False),
                name="special_day_times_together",
            ),
        ]

    def __str__(self) -> str:
        if self.is_closure:
            return f"{self.date}: {_('closed')}"
        assert self.opens is not None
        assert self.closes is not None
        return f"{self.date}: {self.opens:%H:%M}-{self.closes:%H:%M}"

    @property
    def is_closure(self) -> bool:
        return self.opens is None

    def clean(self) -> None:
        self._check_target(self.library_id, required=False)
        if (self.opens is None) != (self.closes is None):
            raise ValidationError(_("Give both times for special hours, or neither for a closure."))


class ShiftTemplate(LibraryOwned):
    """A weekly recurring shift at a service point, with the staff it needs."""

    service_point = models.ForeignKey(
        ServicePoint, on_delete=models.CASCADE, verbose_name=_("service point")
    )
    name = models.CharField(_("name"), max_length=120, blank=True)
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start_time = models.TimeField(_("starts"))
    end_time = models.TimeField(_("ends"), help_text=OVERNIGHT_HELP)
    min_staff = models.PositiveSmallIntegerField(_("minimum staff"), default=1)
    max_staff = models.PositiveSmallIntegerField(_("maximum staff"), default=1)
    valid_from = models.DateField(_("first date"), null=True, blank=True)
    valid_until = models.DateField(_("last date"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    objects = ScopedQuerySet["ShiftTemplate"].as_manager()

    class Meta:
        ordering = ["library", "service_point", "weekday", "start_time"]
        default_related_name = "shift_templates"
        verbose_name = _("shift template")
        constraints = [
            models.CheckConstraint(
                condition=Q(max_staff__gte=1) & Q(max_staff__gte=models.F("min_staff")),
                name="shift_template_staff_range",
            ),
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="shift_template_weekday_valid"
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gte=models.F("valid_from")),
                name="shift_template_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        label = self.name or self.service_point.name
        return (
            f"{label}: {self.get_weekday_display()} {self.start_time:%H:%M}-{self.end_time:%H:%M}"
        )

    def clean(self) -> None:
        if self.service_point_id is not None and self.service_point.library_id != self.library_id:
            raise ValidationError({"service_point": _("Choose a service point of this library.")})
        if self.max_staff < max(1, self.min_staff):
            raise ValidationError(
                {"max_staff": _("The maximum must be at least the minimum, and at least 1.")}
            )
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValidationError({"valid_until": _("The last date is before the first date.")})

    def runs_on(self, day: date) -> bool:
        return (
            self.is_active
            and day.weekday() == self.weekday
            and (self.valid_from is None or day >= self.valid_from)
            and (self.valid_until is None or day <= self.valid_until)
        )

    def span_on(self, day: date) -> tuple[datetime, datetime]:
        return wallclock.local_span(day, self.start_time, self.end_time, self.library.zone)


class Shift(LibraryOwned):
    """One dated shift of the roster: generated from a template, or added by hand."""

    service_point = models.ForeignKey(
        ServicePoint, on_delete=models.CASCADE, verbose_name=_("service point")
    )
    template = models.ForeignKey(
        ShiftTemplate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        verbose_name=_("template"),
    )
    date = models.DateField(_("date"), help_text=_("The local date the shift starts on."))
    start = models.DateTimeField(_("starts"))
    end = models.DateTimeField(_("ends"))
    min_staff = models.PositiveSmallIntegerField(_("minimum staff"), default=1)
    max_staff = models.PositiveSmallIntegerField(_("maximum staff"), default=1)
    is_cancelled = models.BooleanField(_("cancelled"), default=False)

    objects = ScopedQuerySet["Shift"].as_manager()

    class Meta:
        ordering = ["start", "service_point"]
        default_related_name = "shifts"
        verbose_name = _("shift")
        constraints = [
            # Generation is idempotent: one shift per template and local date.
            models.UniqueConstraint(fields=["template", "date"], name="unique_shift_per_template"),
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="shift_ends_after"),
            models.CheckConstraint(
                condition=Q(max_staff__gte=1) & Q(max_staff__gte=models.F("min_staff")),
                name="shift_staff_range",
            ),
        ]
        indexes = [
            models.Index(fields=["library", "start"]),
            models.Index(fields=["service_point", "start"]),
        ]

    def __str__(self) -> str:
        local = self.start.astimezone(self.library.zone)
        end = self.end.astimezone(self.library.zone)
        return f"{self.service_point.name} {local:%Y-%m-%d %H:%M}-{end:%H:%M}"

    @property
    def hours(self) -> float:
        return wallclock.hours(self.start, self.end)


class AssignmentQuerySet(ScopedQuerySet["Assignment"]):
    library_path = "shift__library"

    def active(self) -> AssignmentQuerySet:
        return self.filter(status=AssignmentStatus.ASSIGNED, shift__is_cancelled=False)


class AssignmentStatus(models.TextChoices):
    ASSIGNED = "assigned", _("Assigned")
    REMOVED = "removed", _("Removed")


class Assignment(models.Model):
    """A person on a shift. A removed assignment is kept (as ``removed``) so that calendar
    feeds can tell subscribers it was cancelled; assigning the person again revives it."""

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, verbose_name=_("shift"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name=_("staff member")
    )
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=AssignmentStatus.choices,
        default=AssignmentStatus.ASSIGNED,
    )
    flagged = models.CharField(
        _("flag"),
        max_length=200,
        blank=True,
        help_text=_("Why this assignment needs a manager's attention (e.g. approved time off)."),
    )
    sequence = models.PositiveIntegerField(
        _("revision"), default=0, help_text=_("Raised on every change, for calendar feeds.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["shift__start", "user__username"]
        default_related_name = "assignments"
        verbose_name = _("assignment")
        constraints = [
            models.UniqueConstraint(fields=["shift", "user"], name="unique_assignment"),
            models.CheckConstraint(
                condition=Q(status__in=["assigned", "removed"]), name="assignment_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["user", "status"])]

    def __str__(self) -> str:
        return f"{self.user} — {self.shift}"


class ConflictOverrideQuerySet(ScopedQuerySet["ConflictOverride"]):
    library_path = "assignment__shift__library"


class ConflictOverride(models.Model):
    """A manager's decision to keep an assignment despite its conflicts, with the reason."""

    assignment = models.ForeignKey(
        Assignment, on_delete=models.CASCADE, verbose_name=_("assignment")
    )
    reasons = models.JSONField(_("conflicts"), default=list)
    note = models.TextField(_("note"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ConflictOverrideQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        default_related_name = "overrides"
        verbose_name = _("conflict override")
        constraints = [
            models.CheckConstraint(condition=~Q(note=""), name="override_note_required"),
        ]

    def __str__(self) -> str:
        return f"{self.assignment}: {self.note[:40]}"


class Availability(LibraryOwned):
    """A weekly period in which a person can work.

    A person who has stated no availability at all is not restricted by it (no conflict), but
    auto-fill proposes only people whose stated availability covers the shift.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name=_("staff member")
    )
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start_time = models.TimeField(_("from"))
    end_time = models.TimeField(_("until"), help_text=OVERNIGHT_HELP)

    objects = ScopedQuerySet["Availability"].as_manager()

    class Meta:
        ordering = ["library", "user", "weekday", "start_time"]
        default_related_name = "availability"
        verbose_name = _("weekly availability")
        verbose_name_plural = _("weekly availability")
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="availability_weekday_valid"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.user}: {self.get_weekday_display()} "
            f"{self.start_time:%H:%M}-{self.end_time:%H:%M}"
        )

    def clean(self) -> None:
        check_staff_of_library(self, self.user_id)


class AvailabilityException(LibraryOwned):
    """A dated change to a person's weekly availability: unavailable (all day without times),
    or available for an extra period."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name=_("staff member")
    )
    date = models.DateField(_("date"))
    available = models.BooleanField(
        _("available"), default=False, help_text=_("Unticked: not available at these times.")
    )
    start_time = models.TimeField(_("from"), null=True, blank=True)
    end_time = models.TimeField(_("until"), null=True, blank=True, help_text=OVERNIGHT_HELP)
    note = models.CharField(_("note"), max_length=200, blank=True)

    objects = ScopedQuerySet["AvailabilityException"].as_manager()

    class Meta:
        ordering = ["library", "user", "date"]
        default_related_name = "availability_exceptions"
        verbose_name = _("availability exception")
        constraints = [
            models.CheckConstraint(
                condition=Q(start_time__isnull=True, end_time__isnull=True)
                | Q(start_time__isnull=False, end_time__isnull=False),
                name="availability_exception_times_together",
            ),
            models.CheckConstraint(
                condition=Q(available=False) | Q(start_time__isnull=False),
                name="availability_exception_extra_has_times",
            ),
        ]

    def __str__(self) -> str:
        state = _("available") if self.available else _("unavailable")
        if self.start_time is None or self.end_time is None:
            return f"{self.user}: {self.date} {state}"
        return f"{self.user}: {self.date} {state} {self.start_time:%H:%M}-{self.end_time:%H:%M}"

    def clean(self) -> None:
        check_staff_of_library(self, self.user_id)
        if (self.start_time is None) != (self.end_time is None):
            raise ValidationError(_("Give both times, or neither for the whole day."))
        if self.available and self.start_time is None:
            raise ValidationError(_("Give the times of the extra availability."))


class RequestStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    DENIED = "denied", _("Denied")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class Decided(models.Model):
    """A request someone decides on: who decided and when."""

    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class TimeOffRequest(LibraryOwned, Decided):
    """A request for time off between two instants (local dates and times, stored in UTC)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name=_("staff member")
    )
    start = models.DateTimeField(_("from"))
    end = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    decision_note = models.CharField(_("note"), max_length=300, blank=True)

    objects = ScopedQuerySet["TimeOffRequest"].as_manager()

    class Meta:
        ordering = ["-start"]
        default_related_name = "time_off_requests"
        verbose_name = _("time-off request")
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="time_off_ordered"),
        ]

    def __str__(self) -> str:
        zone = self.library.zone
        return (
            f"{self.user}: {self.start.astimezone(zone):%Y-%m-%d %H:%M} - "
            f"{self.end.astimezone(zone):%Y-%m-%d %H:%M} ({self.get_status_display()})"
        )


class SwapStatus(models.TextChoices):
    OPEN = "open", _("Offered")
    CLAIMED = "claimed", _("Claimed, awaiting approval")
    APPROVED = "approved", _("Swapped")
    DECLINED = "declined", _("Declined")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class SwapOfferQuerySet(ScopedQuerySet["SwapOffer"]):
    library_path = "assignment__shift__library"


class SwapOffer(Decided):
    """A librarian offers one of their assignments; a colleague claims it; when the library
    asks for it, a manager approves the hand-over."""

    assignment = models.ForeignKey(
        Assignment, on_delete=models.CASCADE, verbose_name=_("offered assignment")
    )
    note = models.CharField(_("note"), max_length=300, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=SwapStatus.choices, default=SwapStatus.OPEN
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("claimed by"),
    )
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)

    objects = SwapOfferQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        default_related_name = "swap_offers"
        verbose_name = _("swap offer")
        constraints = [
            # One live offer per assignment at a time.
            models.UniqueConstraint(
                fields=["assignment"],
                condition=Q(status__in=["open", "claimed"]),
                name="unique_live_swap_offer",
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(status="withdrawn") | Q(claimed_by__isnull=False),
                name="swap_claimed_has_claimant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assignment} ({self.get_status_display()})"


class ShiftClaimQuerySet(ScopedQuerySet["ShiftClaim"]):
    library_path = "shift__library"


class ShiftClaim(Decided):
    """A librarian's claim on an open place of a shift (fewer people than its maximum)."""

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, verbose_name=_("shift"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="shift_claims",
        verbose_name=_("staff member"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )

    objects = ShiftClaimQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        default_related_name = "claims"
        verbose_name = _("open-shift claim")
        constraints = [
            models.UniqueConstraint(
                fields=["shift", "user"],
                condition=Q(status="pending"),
                name="unique_pending_claim",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.shift} ({self.get_status_display()})"


class CalendarFeed(models.Model):
    """A librarian's personal iCalendar feed. Only a hash of its secret is stored."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="calendar_feed",
        verbose_name=_("staff member"),
    )
    token_hash = models.CharField(max_length=64, unique=True)
    nonce = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("calendar feed")

    def __str__(self) -> str:
        return str(_("Calendar feed of %(user)s") % {"user": self.user})
