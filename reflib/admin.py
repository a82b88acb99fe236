"""Admin for the core domain, scoped so that a manager sees only their own libraries.

Superusers see everything. A manager (a staff member with the ``manager`` role in a library)
may view and change the rows of the libraries they manage and nothing else; the other apps'
admins use :class:`LibraryScopedAdmin` for the same boundary.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth import get_user_model
from django.db.models import ForeignKey, ManyToManyField, Model, QuerySet
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.http import HttpRequest

from reflib.models import (
    AllowedOrigin,
    JobRun,
    Library,
    Membership,
    Queue,
    Role,
    ServicePoint,
    StaffProfile,
)


def managed_libraries(request: HttpRequest) -> QuerySet[Library]:
    return Library.objects.visible_to(request.user, role=Role.MANAGER)


MANAGES_ANY = "_reflib_manages_any_library"


def manages_any_library(request: HttpRequest) -> bool:
    """Whether the user manages at least one library, asked once per request: every admin page
    asks it of each registered model (the app list and the navigation sidebar), about a hundred
    times a page."""
    known = getattr(request, MANAGES_ANY, None)
    if known is None:
        known = managed_libraries(request).exists()
        setattr(request, MANAGES_ANY, known)
    return bool(known)


def context_without_sidebar(site: admin.AdminSite, request: HttpRequest) -> dict[str, Any]:
    """``AdminSite.each_context`` for a page drawn without the navigation sidebar.

    The sidebar's app list asks every registered admin for the user's permissions (for a manager
    also the auth backend's two permission queries) and renders a link per model: about 5 ms of
    a page. A page that does not need the sidebar skips both; the keys are each_context's.
    """
    script_name = request.META["SCRIPT_NAME"]
    site_url = script_name if site.site_url == "/" and script_name else site.site_url
    return {
        "site_title": site.site_title,
        "site_header": site.site_header,
        "site_url": site_url,
        "has_permission": site.has_permission(request),
        "available_apps": [],
        "is_popup": False,
        "is_nav_sidebar_enabled": False,
        "log_entries": site.get_log_entries(request),
    }


def note_manages_a_library(request: HttpRequest) -> None:
    """The request found a library the user manages (a scoped lookup): the admin's "does this
    user manage a library?" is answered without asking the database again."""
    setattr(request, MANAGES_ANY, True)


class LibraryScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose rows belong to a library reached through ``library_path``."""

    library_path = "library"

    def _is_superuser(self, request: HttpRequest) -> bool:
        return bool(getattr(request.user, "is_superuser", False))

    def _library_of(self, obj: Model) -> Library:
        target: Any = obj
        for part in self.library_path.split("__"):
            target = getattr(target, part)
        assert isinstance(target, Library)
        return target

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if self._is_superuser(request):
            return queryset
        return queryset.filter(**{f"{self.library_path}__in": managed_libraries(request)})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_superuser(request) or manages_any_library(request)

    def _may_manage(self, request: HttpRequest, obj: Model | None) -> bool:
        if self._is_superuser(request):
            return True
        if obj is None:
            return manages_any_library(request)
        return managed_libraries(request).filter(pk=self._library_of(obj).pk).exists()

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may_manage(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may_manage(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may_manage(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._may_manage(request, None)

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        # A plain related filter lists every row of the related table (every library's name,
        # every queue); offer only the values that the rows this user may see refer to.
        return [
            (name, admin.RelatedOnlyFieldListFilter)
            if isinstance(name, str) and get_fields_from_path(self.model, name)[-1].is_relation
            else name
            for name in super().get_list_filter(request)
        ]

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and field.queryset is not None and not self._is_superuser(request):
            field.queryset = _scope_choices(field.queryset, request)
        return field

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField | None:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and field.queryset is not None and not self._is_superuser(request):
            field.queryset = _scope_choices(field.queryset, request)
        return field


def _scope_choices(queryset: QuerySet[Any], request: HttpRequest) -> QuerySet[Any]:
    """Limit a form's choices to the manager's libraries (libraries, or rows that have one)."""
    libraries = managed_libraries(request)
    if queryset.model is Library:
        return queryset.filter(pk__in=libraries)
    if queryset.model is get_user_model():
        # Managers pick among their own libraries' staff; other accounts stay invisible.
        return queryset.filter(memberships__library__in=libraries).distinct()
    if any(field.name == "library" for field in queryset.model._meta.get_fields()):
        return queryset.filter(library__in=libraries)
    return queryset


class ScopedInline(admin.TabularInline):
    extra = 0

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        superuser = getattr(request.user, "is_superuser", False)
        if field is not None and field.queryset is not None and not superuser:
            field.queryset = _scope_choices(field.queryset, request)
        return field

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True


class AllowedOriginInline(ScopedInline):
    model = AllowedOrigin


class ServicePointInline(ScopedInline):
    model = ServicePoint


class MembershipInline(ScopedInline):
    model = Membership


@admin.register(Library)
class LibraryAdmin(LibraryScopedAdmin):
    library_path = "pk"
    list_display = ["name", "slug", "timezone", "retention_days", "max_chats_per_librarian"]
    search_fields = ["name", "slug"]
    inlines = [AllowedOriginInline, ServicePointInline, MembershipInline]

    def _library_of(self, obj: Model) -> Library:
        assert isinstance(obj, Library)
        return obj

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if self._is_superuser(request):
            return queryset
        return queryset.filter(pk__in=managed_libraries(request))

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._is_superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._is_superuser(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        # A manager may not rename a library's slug: embedded widgets address it.
        return [] if self._is_superuser(request) else ["slug"]


@admin.register(Queue)
class QueueAdmin(LibraryScopedAdmin):
    list_display = [
        "name",
        "address",
        "library",
        "service_point",
        "unanswered_limit_s",
        "is_active",
    ]
    list_filter = ["library", "is_active"]
    search_fields = ["name", "slug", "library__slug"]
    filter_horizontal = ["partners", "accepts_rollover_from"]

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField | None:
        if db_field.name in ("partners", "accepts_rollover_from"):
            # Rollover partners are often another library's queues (SPEC §1.7); a queue's
            # address is public (it is in every embedding page), so listing them leaks nothing.
            kwargs["queryset"] = Queue.objects.filter(is_active=True).select_related("library")
            return admin.ModelAdmin.formfield_for_manytomany(self, db_field, request, **kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(ServicePoint)
class ServicePointAdmin(LibraryScopedAdmin):
    list_display = ["name", "slug", "library", "is_active"]
    list_filter = ["library", "is_active"]
    search_fields = ["name", "slug"]


@admin.register(Membership)
class MembershipAdmin(LibraryScopedAdmin):
    list_display = ["user", "library", "role"]
    list_filter = ["library", "role"]
    search_fields = ["user__username", "user__staff_profile__display_name"]


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ["display_name", "user"]
    search_fields = ["display_name", "user__username"]


@admin.register(JobRun)
class JobRunAdmin(LibraryScopedAdmin):
    """Every background job's runs: a manager sees their libraries' jobs (the daily reports),
    a superuser also the installation's own (the chat's sweep, housekeeping). Read only: the
    record is what happened."""

    list_display = ["task", "library", "started_at", "duration", "outcome", "attempt"]
    list_filter = ["outcome", "task", "library"]
    search_fields = ["task", "task_id"]
    date_hierarchy = "started_at"
    readonly_fields = [
        "task",
        "task_id",
        "library",
        "attempt",
        "started_at",
        "duration",
        "outcome",
        "error",
    ]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
