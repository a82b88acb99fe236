"""The managers' side of analytics in the admin: statistics per library, transactions, imports
and the versioned category lists. Everything is scoped to the libraries the user manages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics import charts, csv_export, selectors, services
from analytics.forms import ImportForm, ScopeForm
from analytics.imports import import_transactions, parse_mapping
from analytics.models import (
    Category,
    CategoryChange,
    CategoryKind,
    DailyReport,
    Outcome,
    Transaction,
)
from analytics.views import managed_library
from chat.forms import READ_LEVELS
from reflib.admin import (
    LibraryScopedAdmin,
    context_without_sidebar,
    managed_libraries,
    note_manages_a_library,
)


class CategoryForm(forms.ModelForm):
    merge_into = forms.ModelChoiceField(
        label=gettext_lazy("Merge into"),
        queryset=Category.objects.none(),
        required=False,
        help_text=gettext_lazy(
            "Retire this entry: its records are counted with the chosen one from now on."
        ),
    )

    class Meta:
        model = Category
        fields = ["library", "kind", "label", "position"]
        help_texts = {
            "label": gettext_lazy(
                "Changing the label makes a new version of the entry; records keep the old one "
                "and are counted with the new one."
            )
        }


@admin.register(Category)
class CategoryAdmin(LibraryScopedAdmin):
    form = CategoryForm
    list_display = ["label", "kind", "library", "current", "introduced_in", "retired_in"]
    list_filter = ["library", "kind"]
    search_fields = ["label", "slug"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("library", "current")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["library", "kind", "slug", "current", "introduced_in", "retired_in"] if obj else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["library", "kind", "label", "position"]
        fields = ["library", "kind", "slug", "label", "position", "current"]
        fields += ["introduced_in", "retired_in"]
        return [*fields, "merge_into"] if obj.is_active else fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "merge_into" in form.base_fields:
            field = form.base_fields["merge_into"]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = Category.objects.filter(
                library=obj.library, kind=obj.kind, retired_in__isnull=True
            ).exclude(pk=obj.pk)
        return form

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # entries are retired (merged), never deleted: records point to them

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_active:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Every change of a list goes through the services that version it.
        user = request.user if isinstance(request.user, User) else None
        if not change:
            created = services.category_add(
                library=obj.library,
                kind=CategoryKind(obj.kind),
                label=obj.label,
                position=obj.position,
                user=user,
            )
            obj.pk = created.pk
            return
        stored = Category.objects.get(pk=obj.pk)
        target = form.cleaned_data.get("merge_into")
        if target is not None:
            services.category_merge(sources=[stored], into=target, user=user)
        elif stored.label != obj.label:
            services.category_rename(category=stored, label=obj.label, user=user)
        elif stored.position != obj.position:
            Category.objects.filter(pk=obj.pk).update(position=obj.position)


@admin.register(CategoryChange)
class CategoryChangeAdmin(LibraryScopedAdmin):
    list_display = ["version", "kind", "action", "source", "target", "library", "changed_at"]
    list_filter = ["library", "kind", "action"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Transaction)
class TransactionAdmin(LibraryScopedAdmin):
    list_display = [
        "started_at",
        "format",
        "service_point",
        "queue",
        "question_type",
        "read_level",
        "outcome",
        "staff",
        "source",
        "library",
    ]
    list_filter = ["library", "source", "outcome", "read_level"]
    date_hierarchy = "started_at"
    list_select_related = [
        "format",
        "service_point",
        "queue",
        "question_type",
        "staff",
        "library",
    ]
    change_list_template = "admin/analytics/transaction/change_list.html"

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # added by chats, the tally and imports

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "statistics/<slug:library>/",
                view(self.statistics_view),
                name="analytics_statistics",
            ),
            path("import/<slug:library>/", view(self.import_view), name="analytics_import"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        libraries = managed_libraries(request).order_by("name")
        context = {"statistics_libraries": libraries, **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def _context(
        self, request: HttpRequest, library: Any, title: str, *, sidebar: bool = True
    ) -> dict[str, Any]:
        site = self.admin_site
        return {
            **(site.each_context(request) if sidebar else context_without_sidebar(site, request)),
            "opts": self.model._meta,
            "library": library,
            "title": title,
        }

    def statistics_view(self, request: HttpRequest, library: str) -> HttpResponse:
        scoped = managed_library(request, library)
        note_manages_a_library(request)
        # The short lists are read once: for the defaults, the filters and what each recorded
        # question type counts as.
        lists = selectors.short_lists(scoped)
        if services.categories_ensure_defaults(library=scoped, existing=lists.category_slugs):
            lists = selectors.short_lists(scoped)
        form = ScopeForm(request.GET, library=scoped, rendered=True, lists=lists)
        # Without the navigation sidebar: the heat maps need the width, and its app list would
        # cost a fifth of the page (docs/benchmarks.md, "Manager analytics views").
        context = self._context(
            request,
            scoped,
            _("Statistics: %(library)s") % {"library": scoped.name},
            sidebar=False,
        )
        context["form"] = form
        if form.is_valid():
            context |= statistics_context(form, lists)
        return TemplateResponse(request, "admin/analytics/statistics.html", context)

    def import_view(self, request: HttpRequest, library: str) -> HttpResponse:
        scoped = managed_library(request, library)
        note_manages_a_library(request)
        context = self._context(
            request, scoped, _("Import transactions: %(library)s") % {"library": scoped.name}
        )
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                mapping = parse_mapping(data["mapping"].split("\n"))
            except ValidationError as error:
                form.add_error("mapping", error)
            else:
                try:
                    report = import_transactions(
                        stream=data["file"],
                        library=scoped,
                        mapping=mapping,
                        dry_run=data["dry_run"],
                        skip_bad=data["skip_bad"],
                        user=request.user,
                    )
                except ValidationError as error:
                    form.add_error("file", error)
                else:
                    context["report"] = report
                    if report.imported and not data["dry_run"]:
                        messages.success(request, report.summary)
                        return redirect(reverse("admin:analytics_statistics", args=[scoped.slug]))
        context["form"] = form
        return TemplateResponse(request, "admin/analytics/import.html", context)


def statistics_context(form: ScopeForm, lists: selectors.ShortLists) -> dict[str, Any]:
    """Everything the statistics page shows, for the scope the form's filters describe."""
    scope = form.scope()
    seen = selectors.overview(scope, question_types=lists.current(CategoryKind.QUESTION_TYPE))
    days = seen.days
    read_counts = seen.read_levels
    read_labels = dict(READ_LEVELS)
    levels = selectors.service_levels(scope)
    demand = seen.heatmap
    coverage = selectors.demand_vs_coverage(scope, demand=demand)
    query = form.query()
    slug = scope.library.slug
    volume = charts.volume_chart(days)
    return {
        "scope": scope,
        "query": query,
        "total": sum(day.count for day in days),
        "volume": volume,
        "volume_bars": charts.volume_bars(volume),
        "volume_rows": charts.volume_rows(days),
        "hour_headers": charts.hour_headers(),
        "heat_table_rows": charts.heat_table_rows(charts.heat_rows(demand)),
        "read_shares": charts.shares(
            [(str(read_labels[level]), read_counts.get(level, 0)) for level in range(1, 7)]
            + [(_("Not given"), read_counts.get(None, 0))]
        ),
        "type_shares": charts.shares(
            [(entry.label or _("Not given"), entry.count) for entry in seen.question_types]
        ),
        "levels": levels,
        "coverage": coverage,
        "coverage_table_rows": charts.coverage_table_rows(charts.coverage_rows(coverage)),
        "under_named": [(charts.hour_name(c), c) for c in coverage.under[: selectors.NAMED_HOURS]],
        "over_named": [(charts.hour_name(c), c) for c in coverage.over[: selectors.NAMED_HOURS]],
        "outcome_rows": _outcome_rows(levels),
        "rating_shares": charts.shares(
            [(str(score), levels.ratings.get(score, 0)) for score in range(5, 0, -1)]
        ),
        "csv": {
            name.replace("-", "_"): reverse(f"analytics_{name.replace('-', '_')}_csv", args=[slug])
            + "?"
            + query
            for name in csv_export.WRITERS
        },
    }


def _outcome_rows(levels: selectors.ServiceLevels) -> list[tuple[str, int, float | None]]:
    return [
        (str(outcome.label), levels.outcomes.get(outcome.value, 0), levels.rate(outcome))
        for outcome in Outcome
    ]


@admin.register(DailyReport)
class DailyReportAdmin(LibraryScopedAdmin):
    """The daily reports, newest first, each with its HTML and CSV. Read only: a report is
    rebuilt with ``build_daily_reports``, never edited."""

    list_display = ["day", "library", "built_at", "emailed_at", "links"]
    list_filter = ["library"]
    date_hierarchy = "day"
    fields = ["library", "day", "built_at", "emailed_at", "links"]
    readonly_fields = ["library", "day", "built_at", "emailed_at", "links"]

    @admin.display(description=gettext_lazy("report"))
    def links(self, report: DailyReport) -> str:
        args = [report.library.slug, report.day.isoformat()]
        return format_html(
            '<a href="{}">HTML</a> · <a href="{}">CSV</a>',
            reverse("analytics_daily_report", args=args),
            reverse("analytics_daily_report_csv", args=args),
        )

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
