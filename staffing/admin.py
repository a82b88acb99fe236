"""Staffing in the admin, scoped like the core: a manager sees only their libraries' rows.

Rows that carry rules (hours, templates, availability, policy) are edited here; the roster's
moving parts (assignments, time off, swaps, claims) change only through the services, as
admin actions, so that e-mails go out and conflicts are checked exactly as on the pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from reflib.admin import LibraryScopedAdmin
from staffing import services
from staffing.conflicts import conflicts_for
from staffing.models import (
    Assignment,
    Availability,
    AvailabilityException,
    CalendarFeed,
    ConflictOverride,
    OpeningHours,
    Shift,
    ShiftClaim,
    ShiftTemplate,
    SpecialDay,
    StaffingPolicy,
    SwapOffer,
    TimeOffRequest,
    WeeklyHourLimit,
)


def _acting(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _run_each(
    admin_view: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    service: Callable[[Any, User], object],
    done: Any,
) -> None:
    """Call ``service(row, user)`` for each selected row; refusals are reported, not raised."""
    succeeded = 0
    for row in queryset:
        try:
            service(row, _acting(request))
        except (ValidationError, PermissionDenied) as error:
            reason = " ".join(getattr(error, "messages", [str(error)]))
            admin_view.message_user(request, f"{row}: {reason}", messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        admin_view.message_user(request, done % {"count": succeeded}, messages.SUCCESS)


@admin.register(StaffingPolicy)
class StaffingPolicyAdmin(LibraryScopedAdmin):
    list_display = [
        "library",
        "weekly_hour_limit",
        "min_rest_hours",
        "time_off_effect",
        "swaps_need_approval",
    ]


@admin.register(WeeklyHourLimit)
class WeeklyHourLimitAdmin(LibraryScopedAdmin):
    list_display = ["user", "library", "hours"]
    list_filter = ["library"]


@admin.register(OpeningHours)
class OpeningHoursAdmin(LibraryScopedAdmin):
    list_display = ["__str__", "service_point", "queue", "library"]
    list_filter = ["library", "weekday", "service_point", "queue"]


@admin.register(SpecialDay)
class SpecialDayAdmin(LibraryScopedAdmin):
    list_display = ["date", "__str__", "service_point", "queue", "note", "library"]
    list_filter = ["library"]
    date_hierarchy = "date"


@admin.register(ShiftTemplate)
class ShiftTemplateAdmin(LibraryScopedAdmin):
    list_display = [
        "__str__",
        "service_point",
        "min_staff",
        "max_staff",
        "valid_from",
        "valid_until",
        "is_active",
    ]
    list_filter = ["library", "service_point", "weekday", "is_active"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        changes = services.shift_template_save(template=obj)
        if changes:
            self.message_user(
                request,
                _(
                    "Future shifts nobody is on follow the change: %(updated)s updated, "
                    "%(removed)s removed, %(created)s created."
                )
                % {
                    "updated": len(changes.updated),
                    "removed": len(changes.removed),
                    "created": len(changes.created),
                },
            )


class AssignmentInline(admin.TabularInline):
    model = Assignment
    extra = 0
    fields = ("user", "status", "flagged", "sequence")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Shift)
class ShiftAdmin(LibraryScopedAdmin):
    list_display = ["__str__", "service_point", "date", "min_staff", "max_staff", "is_cancelled"]
    list_filter = ["library", "service_point", "is_cancelled"]
    date_hierarchy = "date"
    readonly_fields = ["template", "date", "start", "end", "is_cancelled"]
    inlines = [AssignmentInline]
    actions = ["cancel_shifts"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # Shifts come from templates; a one-off shift is a template whose first and last
        # dates are the same day.
        return False

    @admin.action(description=_("Cancel the selected shifts (tells the people on them)"))
    def cancel_shifts(self, request: HttpRequest, queryset: QuerySet[Shift]) -> None:
        _run_each(
            self,
            request,
            queryset.filter(is_cancelled=False),
            lambda shift, user: services.shift_cancel(shift=shift, by=user),
            _("%(count)s shifts cancelled."),
        )


class AssignmentForm(forms.ModelForm):
    override_note = forms.CharField(
        label=_("Override note"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed to keep an assignment that has a conflict: say why."),
    )

    class Meta:
        model = Assignment
        fields = ["shift", "user"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        shift, user = cleaned.get("shift"), cleaned.get("user")
        if shift is None or user is None:
            return cleaned
        services.check_assignable(shift=shift, user=user)
        if not cleaned.get("override_note", "").strip():
            conflicts = conflicts_for(user_id=user.pk, shift=shift)
            if conflicts:
                raise ValidationError([conflict.message for conflict in conflicts])
        return cleaned


@admin.register(Assignment)
class AssignmentAdmin(LibraryScopedAdmin):
    library_path = "shift__library"
    form = AssignmentForm
    list_display = ["user", "shift", "status", "flagged", "updated_at"]
    list_filter = ["shift__library", "status", "shift__service_point"]
    search_fields = ["user__username", "user__staff_profile__display_name"]
    actions = ["unassign"]

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Adding goes through shift_assign; afterwards an assignment changes only by action.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = services.shift_assign(
            shift=obj.shift,
            user=obj.user,
            by=_acting(request),
            override_note=form.cleaned_data.get("override_note", ""),
        )
        obj.pk = saved.pk

    @admin.action(description=_("Take the selected people off their shifts"))
    def unassign(self, request: HttpRequest, queryset: QuerySet[Assignment]) -> None:
        _run_each(
            self,
            request,
            queryset.filter(status="assigned"),
            lambda assignment, user: services.shift_unassign(assignment=assignment, by=user),
            _("%(count)s people taken off their shifts."),
        )


@admin.register(ConflictOverride)
class ConflictOverrideAdmin(LibraryScopedAdmin):
    library_path = "assignment__shift__library"
    list_display = ["assignment", "reasons", "note", "created_by", "created_at"]
    readonly_fields = ["assignment", "reasons", "note", "created_by", "created_at"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Availability)
class AvailabilityAdmin(LibraryScopedAdmin):
    list_display = ["user", "weekday", "start_time", "end_time", "library"]
    list_filter = ["library", "weekday"]
    search_fields = ["user__username", "user__staff_profile__display_name"]


@admin.register(AvailabilityException)
class AvailabilityExceptionAdmin(LibraryScopedAdmin):
    list_display = ["user", "date", "available", "start_time", "end_time", "note", "library"]
    list_filter = ["library", "available"]
    date_hierarchy = "date"


class DecisionAdmin(LibraryScopedAdmin):
    """Requests are made on the staff pages and decided here or there, by the services."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may_manage(request, obj)


@admin.register(TimeOffRequest)
class TimeOffRequestAdmin(DecisionAdmin):
    list_display = ["user", "start", "end", "reason", "status", "decided_by", "library"]
    list_filter = ["library", "status"]
    actions = ["approve", "deny"]

    @admin.action(description=_("Approve the selected time off"))
    def approve(self, request: HttpRequest, queryset: QuerySet[TimeOffRequest]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda row, user: services.time_off_approve(request=row, by=user),
            _("%(count)s requests approved."),
        )

    @admin.action(description=_("Deny the selected time off"))
    def deny(self, request: HttpRequest, queryset: QuerySet[TimeOffRequest]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda row, user: services.time_off_deny(request=row, by=user),
            _("%(count)s requests denied."),
        )


@admin.register(SwapOffer)
class SwapOfferAdmin(DecisionAdmin):
    library_path = "assignment__shift__library"
    list_display = ["assignment", "status", "claimed_by", "decided_by", "created_at"]
    list_filter = ["status"]
    actions = ["approve", "decline"]

    @admin.action(description=_("Approve the selected swaps"))
    def approve(self, request: HttpRequest, queryset: QuerySet[SwapOffer]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda row, user: services.swap_approve(offer=row, by=user),
            _("%(count)s swaps approved."),
        )

    @admin.action(description=_("Decline the selected swaps"))
    def decline(self, request: HttpRequest, queryset: QuerySet[SwapOffer]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda row, user: services.swap_decline(offer=row, by=user),
            _("%(count)s swaps declined."),
        )


@admin.register(ShiftClaim)
class ShiftClaimAdmin(DecisionAdmin):
    library_path = "shift__library"
    list_display = ["user", "shift", "status", "decided_by", "created_at"]
    list_filter = ["status"]
    actions = ["approve", "decline"]

    @admin.action(description=_("Approve the selected claims"))
    def approve(self, request: HttpRequest, queryset: QuerySet[ShiftClaim]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda row, user: services.shift_claim_approve(claim=row, by=user),
            _("%(count)s claims approved."),
        )

    @admin.action(description=_("Decline the selected claims"))
    def decline(self, request: HttpRequest, queryset: QuerySet[ShiftClaim]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda row, user: services.shift_claim_decline(claim=row, by=user),
            _("%(count)s claims declined."),
        )


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    """Superusers only: deleting a row switches a person's feed off (its URL stops working)."""

    list_display = ["user", "created_at"]
    fields = ("user", "created_at")
    readonly_fields = fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(getattr(request.user, "is_superuser", False))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
