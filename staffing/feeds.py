"""The two export URLs: a librarian's calendar feed (the secret is the credential) and a
manager's roster CSV (session, limited to the libraries they manage)."""

from __future__ import annotations

from datetime import date

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from reflib.access import librarian_required
from reflib.models import Library, Role
from staffing.exports import calendar_feed, roster_csv
from staffing.selectors import feed_user
from staffing.services import MAX_GENERATION_DAYS


@require_GET
def calendar_feed_view(request: HttpRequest, secret: str) -> HttpResponse:
    """``/staffing/feed/SECRET.ics``: no session; a wrong or reset secret is 404."""
    user = feed_user(secret=secret)
    if user is None:
        raise Http404("No such calendar.")
    response = HttpResponse(calendar_feed(user=user), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="shifts.ics"'
    response["Cache-Control"] = "private, no-cache"
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _date_param(request: HttpRequest, name: str) -> date:
    value = request.GET.get(name, "")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            _("%(name)r must be a date as YYYY-MM-DD, not %(value)r")
            % {"name": name, "value": value}
        ) from None


@require_GET
@librarian_required
def roster_csv_view(request: HttpRequest, library: str) -> HttpResponse:
    """``/staffing/LIB/roster.csv?from=YYYY-MM-DD&to=YYYY-MM-DD`` for the library's managers;
    another library (or one that does not exist) is 404."""
    found = Library.objects.visible_to(request.user, role=Role.MANAGER).filter(slug=library).first()
    if found is None:
        raise Http404("No such library among those you manage.")
    try:
        start, end = _date_param(request, "from"), _date_param(request, "to")
    except ValueError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    if end < start:
        return HttpResponseBadRequest(_("'to' is before 'from'"), content_type="text/plain")
    if (end - start).days >= MAX_GENERATION_DAYS:
        return HttpResponseBadRequest(
            _("Export at most %(days)d days at once") % {"days": MAX_GENERATION_DAYS},
            content_type="text/plain",
        )
    response = HttpResponse(
        roster_csv(library=found, start=start, end=end), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="roster-{found.slug}-{start.isoformat()}-{end.isoformat()}.csv"'
    )
    return response
