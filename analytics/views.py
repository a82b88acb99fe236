"""HTTP endpoints of the analytics app: the desk's tally and the managers' CSV downloads.

The tally is loaded into the desk page by ``analytics/tally.js`` (the chat app only links to it:
chat never imports analytics). The CSV URLs are stable for managers' scripts and take the same
filters as the admin views: ``from`` and ``to`` (local dates, inclusive), ``service_point``,
``queue`` and ``format`` (ids).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from analytics import csv_export, services
from analytics.forms import ScopeForm, TallyForm
from analytics.models import CategoryKind
from analytics.selectors import Scope
from reflib.access import librarian_required, staff_user
from reflib.models import Library, Role

TALLY_SESSION_KEY = "analytics.tally"


def managed_library(request: HttpRequest, slug: str) -> Library:
    """The library ``slug`` if the user manages it; otherwise it does not exist for them."""
    try:
        return Library.objects.get_visible(request.user, slug=slug, role=Role.MANAGER)
    except Library.DoesNotExist:
        raise Http404(_("No such library.")) from None


# --- the tally ----------


def _tally_library(request: HttpRequest, slug: str | None) -> Library:
    libraries = Library.objects.visible_to(request.user)
    if slug:
        return get_object_or_404(libraries, slug=slug)
    remembered = request.session.get(TALLY_SESSION_KEY, {}).get("library")
    library = libraries.filter(pk=remembered).first() if remembered else None
    found = library or libraries.order_by("name").first()
    if found is None:
        raise Http404(_("No library."))
    return found


def _remembered(request: HttpRequest, library: Library) -> dict[str, Any]:
    """Last choices at this library: the service point and format stay for the next question."""
    saved = request.session.get(TALLY_SESSION_KEY, {}).get(str(library.pk), {})
    if "format" not in saved:
        desk = services.category_current(library=library, kind=CategoryKind.FORMAT, slug="desk")
        saved = {**saved, "format": desk.pk if desk else None}
    return dict(saved)


def _remember(request: HttpRequest, library: Library, form: TallyForm) -> None:
    data = form.cleaned_data
    state = dict(request.session.get(TALLY_SESSION_KEY, {}))
    state["library"] = library.pk
    state[str(library.pk)] = {
        "service_point": data["service_point"].pk if data["service_point"] else None,
        "format": data["format"].pk,
    }
    request.session[TALLY_SESSION_KEY] = state


def _tally_context(request: HttpRequest, library: Library, form: TallyForm) -> dict[str, Any]:
    return {
        "form": form,
        "library": library,
        "libraries": Library.objects.visible_to(request.user).order_by("name"),
        "undo_seconds": services.TALLY_UNDO_SECONDS,
        "action": reverse("analytics_tally"),
    }


@librarian_required
@never_cache
@require_GET
def tally_form(request: HttpRequest) -> HttpResponse:
    """The tally as an HTML fragment for the desk page."""
    library = _tally_library(request, request.GET.get("library"))
    services.categories_ensure_defaults(library=library)
    form = TallyForm(initial=_remembered(request, library), library=library)
    return render(request, "analytics/tally.html", _tally_context(request, library, form))


@librarian_required
@require_POST
def tally(request: HttpRequest) -> HttpResponse:
    library = _tally_library(request, request.POST.get("library"))
    form = TallyForm(request.POST, library=library)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    data = form.cleaned_data
    try:
        record = services.transaction_tally(
            library=library,
            user=staff_user(request),
            format=data["format"],
            service_point=data["service_point"],
            question_type=data["question_type"],
            read_level=data["read_level"],
            note=data["note"],
        )
    except ValidationError as error:
        return JsonResponse(
            {"errors": {"__all__": [{"message": m} for m in error.messages]}}, status=400
        )
    _remember(request, library, form)
    parts = [str(data["format"])]
    if data["question_type"]:
        parts.append(str(data["question_type"]))
    if data["read_level"]:
        parts.append(_("READ %(level)s") % {"level": data["read_level"]})
    return JsonResponse(
        {
            "id": record.pk,
            "summary": ", ".join(parts),
            "undo": reverse("analytics_tally_undo", args=[record.pk]),
            "undo_seconds": services.TALLY_UNDO_SECONDS,
        },
        status=201,
    )


@librarian_required
@require_POST
def tally_undo(request: HttpRequest, pk: int) -> HttpResponse:
    if services.transaction_tally_undo(transaction_id=pk, user=staff_user(request)):
        return JsonResponse({"undone": True})
    return JsonResponse(
        {"undone": False, "message": _("Too late to undo: the question stays counted.")},
        status=409,
    )


# --- CSV downloads ----------


def _scope(request: HttpRequest, library: Library) -> Scope:
    form = ScopeForm(request.GET, library=library)
    if not form.is_valid():
        raise csv_export.BadFilters(form.errors)
    return form.scope()


def _csv_view(name: str) -> Any:
    writer = csv_export.WRITERS[name]

    @login_required
    @never_cache
    @require_GET
    def view(request: HttpRequest, library: str) -> HttpResponseBase:
        scoped = managed_library(request, library)
        try:
            scope = _scope(request, scoped)
        except csv_export.BadFilters as error:
            return HttpResponse(error.text, status=400, content_type="text/plain; charset=utf-8")
        return csv_export.response(writer(scope), filename=f"{scoped.slug}-{name}.csv")

    view.__name__ = f"{name.replace('-', '_')}_csv"
    return view


transactions_csv = _csv_view("transactions")
heatmap_csv = _csv_view("heatmap")
service_levels_csv = _csv_view("service-levels")
volume_csv = _csv_view("volume")
read_levels_csv = _csv_view("read-levels")
question_types_csv = _csv_view("question-types")
coverage_csv = _csv_view("coverage")
