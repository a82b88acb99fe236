"""The staffing pages: a librarian's shifts, availability, time off and swaps, and a manager's
week, templates, approvals and coverage with auto-fill.

Views check who may act and for which library (another library's objects are 404), read
through :mod:`staffing.selectors` and :mod:`staffing.pages`, and write only through
:mod:`staffing.services`; a service's refusal comes back as a message or a form error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from reflib.access import librarian_required, staff_user
from reflib.models import Library, Role
from staffing import pages, selectors, services
from staffing.autofill import Proposal, autofill_propose
from staffing.coverage import coverage_week
from staffing.forms import (
    AssignForm,
    AvailabilityExceptionForm,
    AvailabilityFormSet,
    BaseAvailabilityFormSet,
    DateRangeForm,
    NoteForm,
    ShiftTemplateForm,
    TimeOffForm,
    parse_week,
)
from staffing.models import (
    Assignment,
    Availability,
    AvailabilityException,
    RequestStatus,
    Shift,
    ShiftClaim,
    ShiftTemplate,
    SwapOffer,
    TimeOffRequest,
)

UPCOMING_DAYS = 28


def _refused(request: HttpRequest, error: ValidationError | PermissionDenied) -> None:
    """A service said no: tell the person why, on the page they come back to."""
    texts = error.messages if isinstance(error, ValidationError) else [str(error)]
    for text in texts:
        messages.error(request, text)


def _libraries(user: User, *, role: Role = Role.LIBRARIAN) -> QuerySet[Library]:
    return Library.objects.visible_to(user, role=role)


def _chosen_library(request: HttpRequest) -> Library:
    """The library a librarian's page is about: ``?library=SLUG`` among theirs, else the
    first; another library's slug is 404."""
    libraries = _libraries(staff_user(request))
    slug = request.GET.get("library") or request.POST.get("library")
    if slug:
        return get_object_or_404(libraries, slug=slug)
    first = libraries.first()
    if first is None:
        raise Http404("No library.")
    return first


def _managed(request: HttpRequest, slug: str) -> Library:
    """A library the user manages; any other (or none) is 404."""
    return get_object_or_404(_libraries(staff_user(request), role=Role.MANAGER), slug=slug)


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target.startswith("/staffing/") and "//" not in target:
        return redirect(target)
    return redirect(fallback)


def _nav(request: HttpRequest) -> dict[str, Any]:
    return {"managed": list(_libraries(staff_user(request), role=Role.MANAGER))}


# --- a librarian's pages ----------


def _hours(value: float) -> str:
    """Hours as people write them: 7.5, 8, 7.25."""
    return f"{round(value, 2):g}"


@librarian_required
@never_cache
def my_shifts(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    now = timezone.now()
    libraries = list(_libraries(user))
    zone = libraries[0].zone
    today = now.astimezone(zone).date()
    monday = pages.monday_of(today)
    month_start = today.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    current, upcoming = selectors.current_and_next_shift(user=user, now=now)
    offers = pages.live_offers_of(user)
    shifts = [
        (view, offers.get(view.assignment_id))
        for view in selectors.shifts_for_user(
            user=user, start=today - timedelta(days=1), end=today + timedelta(days=UPCOMING_DAYS)
        )
        if view.end > now
    ]
    secret = selectors.feed_secret(user=user)
    feed_url = (
        request.build_absolute_uri(reverse("staffing:feed", args=[secret])) if secret else None
    )
    context = {
        **_nav(request),
        "now": now,
        "current": current,
        "next": upcoming,
        "shifts": shifts,
        "week_hours": _hours(
            selectors.hours_for_user(user=user, start=monday, end=monday + timedelta(days=6))
        ),
        "month_hours": _hours(
            selectors.hours_for_user(
                user=user, start=month_start, end=next_month - timedelta(days=1)
            )
        ),
        "monday": monday,
        "month_start": month_start,
        "feed_url": feed_url,
        "on_now": [(library, selectors.on_now(library=library, now=now)) for library in libraries],
    }
    return render(request, "staffing/my_shifts.html", context)


@require_POST
@librarian_required
def feed_reset(request: HttpRequest) -> HttpResponse:
    services.calendar_feed_reset(user=staff_user(request))
    messages.success(request, _("Your calendar has a new address; the old one no longer works."))
    return redirect("staffing:my_shifts")


@require_POST
@librarian_required
def offer_create(request: HttpRequest, assignment_id: int) -> HttpResponse:
    user = staff_user(request)
    assignment = get_object_or_404(Assignment.objects.filter(user=user), pk=assignment_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The note is too long."))
        return redirect("staffing:my_shifts")
    try:
        services.swap_offer(assignment=assignment, by=user, note=form.cleaned_data["note"])
    except (ValidationError, PermissionDenied) as error:
        _refused(request, error)
    else:
        messages.success(request, _("Your shift is offered to your colleagues."))
    return redirect("staffing:my_shifts")


@require_POST
@librarian_required
def offer_withdraw(request: HttpRequest, offer_id: int) -> HttpResponse:
    user = staff_user(request)
    offer = get_object_or_404(SwapOffer.objects.filter(assignment__user=user), pk=offer_id)
    try:
        services.swap_withdraw(offer=offer, by=user)
    except (ValidationError, PermissionDenied) as error:
        _refused(request, error)
    else:
        messages.success(request, _("The offer is withdrawn; the shift stays yours."))
    return redirect("staffing:my_shifts")


@librarian_required
@never_cache
def open_shifts(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    now = timezone.now()
    context = {
        **_nav(request),
        "offers": pages.offers_for(user, now=now),
        "shifts": pages.open_shifts_for(user, now=now),
        "claimed": pages.pending_claim_ids(user),
        "my_claims": ShiftClaim.objects.filter(user=user, shift__start__gt=now)
        .select_related("shift__library", "shift__service_point")
        .order_by("shift__start"),
    }
    return render(request, "staffing/open_shifts.html", context)


@require_POST
@librarian_required
def offer_claim(request: HttpRequest, offer_id: int) -> HttpResponse:
    user = staff_user(request)
    offer = get_object_or_404(SwapOffer.objects.visible_to(user), pk=offer_id)
    try:
        claimed = services.swap_claim(offer=offer, by=user)
    except (ValidationError, PermissionDenied) as error:
        _refused(request, error)
    else:
        if claimed.status == "approved":
            messages.success(request, _("The shift is yours."))
        else:
            messages.success(request, _("Claimed: a manager approves the swap."))
    return redirect("staffing:open_shifts")


@require_POST
@librarian_required
def shift_claim(request: HttpRequest, shift_id: int) -> HttpResponse:
    user = staff_user(request)
    shift = get_object_or_404(Shift.objects.visible_to(user), pk=shift_id)
    try:
        claim = services.shift_claim(shift=shift, by=user)
    except (ValidationError, PermissionDenied) as error:
        _refused(request, error)
    else:
        if claim.status == RequestStatus.APPROVED:
            messages.success(request, _("The shift is yours."))
        else:
            messages.success(request, _("Claimed: a manager approves it."))
    return redirect("staffing:open_shifts")


@librarian_required
@never_cache
def availability(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    library = _chosen_library(request)
    rows = Availability.objects.for_library(library).filter(user=user)
    if request.method == "POST":
        formset = cast(BaseAvailabilityFormSet, AvailabilityFormSet(request.POST, prefix="weekly"))
        if formset.is_valid():
            try:
                services.availability_replace(user=user, library=library, windows=formset.windows())
            except ValidationError as error:
                formset.refused(error)
            else:
                messages.success(request, _("Your weekly availability is saved."))
                return redirect(f"{reverse('staffing:availability')}?library={library.slug}")
    else:
        formset = AvailabilityFormSet(  # type: ignore[assignment]
            prefix="weekly",
            initial=[
                {"weekday": row.weekday, "start_time": row.start_time, "end_time": row.end_time}
                for row in rows
            ],
        )
    return _availability_page(request, library, formset, AvailabilityExceptionForm())


def _availability_page(
    request: HttpRequest,
    library: Library,
    formset: Any,
    exception_form: AvailabilityExceptionForm,
) -> HttpResponse:
    user = staff_user(request)
    today = timezone.now().astimezone(library.zone).date()
    context = {
        **_nav(request),
        "library": library,
        "libraries": _libraries(user),
        "formset": formset,
        "exception_form": exception_form,
        "exceptions": AvailabilityException.objects.for_library(library)
        .filter(user=user, date__gte=today)
        .order_by("date", "start_time"),
    }
    return render(request, "staffing/availability.html", context)


@require_POST
@librarian_required
def exception_add(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    library = _chosen_library(request)
    form = AvailabilityExceptionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.availability_exception_add(
                user=user,
                library=library,
                day=data["day"],
                available=data["available"],
                start_time=data["start_time"],
                end_time=data["end_time"],
                note=data["note"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("The exception is saved."))
            return redirect(f"{reverse('staffing:availability')}?library={library.slug}")
    weekly = AvailabilityFormSet(
        prefix="weekly",
        initial=[
            {"weekday": row.weekday, "start_time": row.start_time, "end_time": row.end_time}
            for row in Availability.objects.for_library(library).filter(user=user)
        ],
    )
    return _availability_page(request, library, weekly, form)


@require_POST
@librarian_required
def exception_remove(request: HttpRequest, exception_id: int) -> HttpResponse:
    user = staff_user(request)
    exception = get_object_or_404(
        AvailabilityException.objects.visible_to(user).filter(user=user), pk=exception_id
    )
    services.availability_exception_remove(exception=exception, by=user)
    messages.success(request, _("The exception is removed."))
    return redirect(f"{reverse('staffing:availability')}?library={exception.library.slug}")


@librarian_required
@never_cache
def time_off(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    library = _chosen_library(request)
    form = TimeOffForm(request.POST or None, library=library)
    if request.method == "POST" and form.is_valid():
        try:
            services.time_off_request(
                user=user,
                library=library,
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Your request is sent to the managers."))
            return redirect(f"{reverse('staffing:time_off')}?library={library.slug}")
    context = {
        **_nav(request),
        "library": library,
        "libraries": _libraries(user),
        "form": form,
        "requests": TimeOffRequest.objects.visible_to(user)
        .filter(user=user)
        .select_related("library")
        .order_by("-start")[:50],
    }
    return render(request, "staffing/time_off.html", context)


@require_POST
@librarian_required
def time_off_withdraw(request: HttpRequest, request_id: int) -> HttpResponse:
    user = staff_user(request)
    found = get_object_or_404(TimeOffRequest.objects.filter(user=user), pk=request_id)
    try:
        services.time_off_withdraw(request=found, by=user)
    except (ValidationError, PermissionDenied) as error:
        _refused(request, error)
    else:
        messages.success(request, _("Your request is withdrawn."))
    return redirect(f"{reverse('staffing:time_off')}?library={found.library.slug}")


# --- a manager's pages ----------


def _week(request: HttpRequest, library: Library) -> date:
    today = timezone.now().astimezone(library.zone).date()
    return parse_week(request.GET.get("week"), today)


@librarian_required
@never_cache
def week(request: HttpRequest, library: str) -> HttpResponse:
    found = _managed(request, library)
    monday = _week(request, found)
    context = {
        **_nav(request),
        "library": found,
        "roster": pages.week_roster(library=found, monday=monday),
        "previous": monday - timedelta(days=7),
        "following": monday + timedelta(days=7),
        "sunday": monday + timedelta(days=6),
    }
    return render(request, "staffing/week.html", context)


def _shift_page(
    request: HttpRequest, library: Library, shift: Shift, form: AssignForm, conflicts: list[str]
) -> HttpResponse:
    context = {
        **_nav(request),
        "library": library,
        "shift": shift,
        "people": Assignment.objects.active()
        .filter(shift=shift)
        .select_related("user__staff_profile"),
        "form": form,
        "conflicts": conflicts,
        "week": pages.monday_of(shift.date),
    }
    return render(request, "staffing/shift.html", context)


@librarian_required
@never_cache
def shift_detail(request: HttpRequest, library: str, shift_id: int) -> HttpResponse:
    found = _managed(request, library)
    shift = get_object_or_404(
        Shift.objects.for_library(found).select_related("library", "service_point"), pk=shift_id
    )
    staff = pages.staff_of(found)
    form = AssignForm(request.POST or None, staff=staff)
    conflicts: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            services.shift_assign(
                shift=shift,
                user=form.cleaned_data["user"],
                by=staff_user(request),
                override_note=form.cleaned_data["override_note"],
            )
        except services.ConflictError as error:
            conflicts = [conflict.message for conflict in error.conflicts]
            form.add_error(
                "override_note",
                _("This assignment conflicts; to keep it anyway, say why in a note."),
            )
        except (ValidationError, PermissionDenied) as error:
            form.add_error(
                None, error.messages if isinstance(error, ValidationError) else str(error)
            )
        else:
            messages.success(request, _("Assigned."))
            return redirect("staffing:shift", library=found.slug, shift_id=shift.pk)
    return _shift_page(request, found, shift, form, conflicts)


@require_POST
@librarian_required
def unassign(request: HttpRequest, library: str, assignment_id: int) -> HttpResponse:
    found = _managed(request, library)
    assignment = get_object_or_404(Assignment.objects.for_library(found), pk=assignment_id)
    try:
        services.shift_unassign(assignment=assignment, by=staff_user(request))
    except (ValidationError, PermissionDenied) as error:
        _refused(request, error)
    else:
        messages.success(request, _("Taken off the shift."))
    return redirect("staffing:shift", library=found.slug, shift_id=assignment.shift_id)


@librarian_required
@never_cache
def templates(request: HttpRequest, library: str, template_id: int | None = None) -> HttpResponse:
    found = _managed(request, library)
    instance = (
        get_object_or_404(ShiftTemplate.objects.for_library(found), pk=template_id)
        if template_id is not None
        else None
    )
    form = ShiftTemplateForm(request.POST or None, instance=instance, library=found)
    if request.method == "POST" and form.is_valid():
        try:
            changes = services.shift_template_save(template=form.instance)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("Template saved. Future open shifts that changed with it: %(count)s.")
                % {"count": len(changes.updated) + len(changes.removed)},
            )
            return redirect("staffing:templates", library=found.slug)
    today = timezone.now().astimezone(found.zone).date()
    context = {
        **_nav(request),
        "library": found,
        "form": form,
        "editing": instance,
        "templates": ShiftTemplate.objects.for_library(found).select_related("service_point"),
        "generate_form": DateRangeForm(
            initial={"start": today, "end": today + timedelta(days=27)}, auto_id="generate_%s"
        ),
    }
    return render(request, "staffing/templates.html", context)


@require_POST
@librarian_required
def generate(request: HttpRequest, library: str) -> HttpResponse:
    found = _managed(request, library)
    form = DateRangeForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for text in errors:
                messages.error(request, str(text))
        return redirect("staffing:templates", library=found.slug)
    try:
        changes = services.roster_generate(
            library=found, start=form.cleaned_data["start"], end=form.cleaned_data["end"]
        )
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(
            request,
            _(
                "Roster generated: %(created)s shifts created, %(updated)s updated, "
                "%(removed)s removed."
            )
            % {
                "created": len(changes.created),
                "updated": len(changes.updated),
                "removed": len(changes.removed),
            },
        )
    return redirect("staffing:templates", library=found.slug)


@librarian_required
@never_cache
def approvals(request: HttpRequest, library: str) -> HttpResponse:
    found = _managed(request, library)
    context = {
        **_nav(request),
        "library": found,
        "approvals": pages.approvals_for(found),
        "note_form": NoteForm(auto_id=False),
    }
    return render(request, "staffing/approvals.html", context)


# (kind, action) -> the model of the request and the service that decides it; the note of an
# approval overrides the conflicts the approved assignment may have.
DECISIONS: dict[tuple[str, str], tuple[type[Model], Callable[[Any, User, str], object]]] = {
    ("time-off", "approve"): (
        TimeOffRequest,
        lambda item, by, note: services.time_off_approve(request=item, by=by, note=note),
    ),
    ("time-off", "decline"): (
        TimeOffRequest,
        lambda item, by, note: services.time_off_deny(request=item, by=by, note=note),
    ),
    ("swap", "approve"): (
        SwapOffer,
        lambda item, by, note: services.swap_approve(offer=item, by=by, override_note=note),
    ),
    ("swap", "decline"): (
        SwapOffer,
        lambda item, by, note: services.swap_decline(offer=item, by=by, note=note),
    ),
    ("claim", "approve"): (
        ShiftClaim,
        lambda item, by, note: services.shift_claim_approve(claim=item, by=by, override_note=note),
    ),
    ("claim", "decline"): (
        ShiftClaim,
        lambda item, by, note: services.shift_claim_decline(claim=item, by=by, note=note),
    ),
}


@require_POST
@librarian_required
def decide(request: HttpRequest, library: str, kind: str, pk: int, action: str) -> HttpResponse:
    found = _managed(request, library)
    by = staff_user(request)
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    approve = action == "approve"
    decision = DECISIONS.get((kind, action))
    if decision is None:
        raise Http404("No such request.")
    model, decide_with = decision
    target = get_object_or_404(model.objects.for_library(found), pk=pk)  # type: ignore[attr-defined]
    try:
        decide_with(target, by, note)
    except services.ConflictError as error:
        messages.error(
            request,
            _("Not approved: it conflicts (%(reasons)s). Approve with a note to override.")
            % {"reasons": "; ".join(conflict.message for conflict in error.conflicts)},
        )
    except (ValidationError, PermissionDenied) as error:
        _refused(request, error)
    else:
        messages.success(request, _("Approved.") if approve else _("Declined."))
    return redirect("staffing:approvals", library=found.slug)


@librarian_required
@never_cache
def coverage(request: HttpRequest, library: str) -> HttpResponse:
    found = _managed(request, library)
    monday = _week(request, found)
    sunday = monday + timedelta(days=6)
    proposals: list[dict[str, Any]] = []
    if request.GET.get("propose"):
        proposed = autofill_propose(library=found, start=monday, end=sunday)
        shifts = (
            Shift.objects.for_library(found)
            .select_related("library", "service_point")
            .in_bulk([p.shift_id for p in proposed])
        )
        staff = {user.pk: user for user in pages.staff_of(found)}
        proposals = [
            {
                "value": f"{p.shift_id}-{p.user_id}",
                "shift": shifts[p.shift_id],
                "user": staff[p.user_id],
            }
            for p in proposed
        ]
    context = {
        **_nav(request),
        "library": found,
        "monday": monday,
        "sunday": sunday,
        "previous": monday - timedelta(days=7),
        "following": monday + timedelta(days=7),
        "coverage": coverage_week(library=found, week_start=monday),
        "proposed": bool(request.GET.get("propose")),
        "proposals": proposals,
    }
    return render(request, "staffing/coverage.html", context)


def _proposals(values: list[str]) -> list[Proposal]:
    proposals = []
    for value in values:
        shift_id, _sep, user_id = value.partition("-")
        if not (shift_id.isdigit() and user_id.isdigit()):
            raise ValidationError(_("A proposal is malformed."))
        proposals.append(Proposal(shift_id=int(shift_id), user_id=int(user_id)))
    return proposals


@require_POST
@librarian_required
def autofill_apply(request: HttpRequest, library: str) -> HttpResponse:
    found = _managed(request, library)
    week_value = request.POST.get("week", "")
    target = f"{reverse('staffing:coverage', args=[found.slug])}?week={week_value}"
    try:
        proposals = _proposals(request.POST.getlist("proposal"))
        if not proposals:
            raise ValidationError(_("Tick at least one proposal to apply."))
        made = services.autofill_apply(library=found, proposals=proposals, by=staff_user(request))
    except services.ConflictError as error:
        messages.error(
            request,
            _("Nothing applied: the roster changed and a proposal now conflicts (%(reasons)s).")
            % {"reasons": "; ".join(conflict.message for conflict in error.conflicts)},
        )
    except (ValidationError, PermissionDenied) as error:
        _refused(request, error)
    else:
        messages.success(request, _("%(count)s assignments made.") % {"count": len(made)})
    return redirect(target)
