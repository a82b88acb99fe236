"""Writes of staffing: the roster, assignments, availability, time off, swaps and claims.

Every function is keyword-only and runs in one transaction; e-mails leave after it commits
(:mod:`staffing.emails`). Permission to act for a library is checked at the edge (views, admin,
commands); where a service itself depends on who acts (only a manager may override a conflict
or approve), it checks that too, so no edge can forget it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from reflib.models import Library, Membership, Role
from staffing import emails, wallclock
from staffing.autofill import Proposal
from staffing.conflicts import Conflict, conflicts_for, policy_for
from staffing.models import (
    Assignment,
    AssignmentStatus,
    Availability,
    AvailabilityException,
    CalendarFeed,
    ConflictOverride,
    RequestStatus,
    Shift,
    ShiftClaim,
    ShiftTemplate,
    SwapOffer,
    SwapStatus,
    TimeOffEffect,
    TimeOffRequest,
)
from staffing.selectors import feed_secret_hash, feed_secret_of

# A roster is generated for at most this many days at once.
MAX_GENERATION_DAYS = 366


class ConflictError(ValidationError):
    """The assignment would conflict; only a manager's override with a note may keep it."""

    def __init__(self, conflicts: Sequence[Conflict]) -> None:
        self.conflicts = list(conflicts)
        super().__init__([conflict.message for conflict in conflicts], code="conflict")


def is_manager(user: User, library: Library) -> bool:
    return Library.objects.visible_to(user, role=Role.MANAGER).filter(pk=library.pk).exists()


def is_staff_of(user: User, library: Library) -> bool:
    return user.is_active and Membership.objects.filter(user=user, library=library).exists()


def _require_manager(user: User, library: Library) -> None:
    if not is_manager(user, library):
        raise PermissionDenied(
            _("Only a manager of %(library)s may do this.") % {"library": library}
        )


# The roster


@dataclass
class RosterChanges:
    """What a generation created, updated (future, unassigned shifts whose template changed)
    and removed (future, unassigned shifts whose template no longer runs that day)."""

    created: list[Shift] = field(default_factory=list)
    updated: list[Shift] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.created or self.updated or self.removed)


def _existing_shifts(
    templates: Sequence[ShiftTemplate], first: date, last: date
) -> dict[int, dict[date, Shift]]:
    """The generated shifts of ``templates`` from ``first`` to ``last``, by template and date,
    with how many people are on each (``active``) and how many assignment rows it has
    (``kept``)."""
    existing: dict[int, dict[date, Shift]] = {template.pk: {} for template in templates}
    rows = (
        Shift.objects.filter(template__in=templates, date__gte=first, date__lte=last)
        .select_related("library", "service_point")
        .annotate(
            active=Count("assignments", filter=Q(assignments__status=AssignmentStatus.ASSIGNED)),
            kept=Count("assignments"),
        )
    )
    for shift in rows:
        assert shift.template_id is not None
        existing[shift.template_id][shift.date] = shift
    return existing


def _sync_template(
    template: ShiftTemplate,
    first: date,
    last: date,
    now: datetime,
    existing: dict[date, Shift],
    changes: RosterChanges,
) -> list[Shift]:
    """Bring ``template``'s shifts from ``first`` to ``last`` in line with it; returns the
    shifts to create."""
    new: list[Shift] = []
    for day in wallclock.dates(first, last):
        runs = template.runs_on(day)
        shift = existing.get(day)
        if shift is None:
            if not runs:
                continue
            start, end = template.span_on(day)
            if start > now:
                new.append(
                    Shift(
                        library_id=template.library_id,
                        service_point_id=template.service_point_id,
                        template=template,
                        date=day,
                        start=start,
                        end=end,
                        min_staff=template.min_staff,
                        max_staff=template.max_staff,
                    )
                )
            continue
        # Shifts that have begun, or that someone is on, are the roster people rely on.
        if shift.start <= now or shift.active:  # type: ignore[attr-defined]
            continue
        if runs:
            start, end = template.span_on(day)
            wanted = {
                "service_point_id": template.service_point_id,
                "start": start,
                "end": end,
                "min_staff": template.min_staff,
                "max_staff": template.max_staff,
                "is_cancelled": False,
            }
            if any(getattr(shift, name) != value for name, value in wanted.items()):
                for name, value in wanted.items():
                    setattr(shift, name, value)
                shift.save(update_fields=[*wanted.keys()])
                changes.updated.append(shift)
        elif shift.kept:  # type: ignore[attr-defined]
            # Removed assignments stay on record for calendar feeds: cancel, do not delete.
            if not shift.is_cancelled:
                shift.is_cancelled = True
                shift.save(update_fields=["is_cancelled"])
                changes.removed.append(str(shift))
        else:
            changes.removed.append(str(shift))
            shift.delete()
    return new


def _sync_templates(
    templates: Sequence[ShiftTemplate], first: date, last: date, now: datetime
) -> RosterChanges:
    changes = RosterChanges()
    existing = _existing_shifts(templates, first, last)
    new = [
        shift
        for template in templates
        for shift in _sync_template(template, first, last, now, existing[template.pk], changes)
    ]
    changes.created = sorted(
        Shift.objects.bulk_create(new), key=lambda shift: (shift.start, shift.service_point_id)
    )
    return changes


@transaction.atomic
def roster_generate(
    *, library: Library, start: date, end: date, now: datetime | None = None
) -> RosterChanges:
    """Create the shifts of ``library``'s templates for local dates ``start`` to ``end``.

    Idempotent: a shift exists once per template and date, so a second run creates nothing.
    Only the future changes: shifts are created if they start after ``now``; future shifts
    nobody is on follow their template's current times and staffing; shifts that have begun
    or have someone on them are never touched.
    """
    if end < start:
        raise ValidationError(_("The last date is before the first date."))
    if (end - start).days >= MAX_GENERATION_DAYS:
        raise ValidationError(
            _("Generate at most %(days)s days at once.") % {"days": MAX_GENERATION_DAYS}
        )
    # Locking the templates serialises two generations of the same library.
    templates = list(
        ShiftTemplate.objects.select_for_update(of=("self",))
        .filter(library=library)
        .select_related("library")
        .order_by("pk")
    )
    return _sync_templates(templates, start, end, now or timezone.now())


@transaction.atomic
def shift_template_save(*, template: ShiftTemplate, now: datetime | None = None) -> RosterChanges:
    """Save a new or changed template; its future shifts nobody is on follow the change."""
    template.full_clean()
    template.save()
    now = now or timezone.now()
    generated = Shift.objects.filter(template=template, end__gt=now).order_by("date")
    first, last = generated.first(), generated.last()
    if first is None or last is None:
        return RosterChanges()
    return _sync_templates([template], first.date, last.date, now)


@transaction.atomic
def shift_cancel(*, shift: Shift, by: User) -> list[Assignment]:
    """Cancel a shift; the people on it are told and their calendars show it cancelled."""
    _require_manager(by, shift.library)
    shift = (
        Shift.objects.select_for_update(of=("self",))
        .select_related("library", "service_point")
        .get(pk=shift.pk)
    )
    shift.is_cancelled = True
    shift.save(update_fields=["is_cancelled"])
    affected = list(
        shift.assignments.filter(status=AssignmentStatus.ASSIGNED).select_related("user")
    )
    for assignment in affected:
        assignment.sequence += 1
        assignment.save(update_fields=["sequence", "updated_at"])
    emails.notify(
        to=[assignment.user for assignment in affected],
        subject=_("Shift cancelled: %(shift)s") % {"shift": emails.describe_shift(shift)},
        lines=[_("This shift has been cancelled:"), emails.describe_shift(shift)],
    )
    return affected


# Assignments


def _locked_shift(shift: Shift) -> Shift:
    return (
        Shift.objects.select_for_update(of=("self",))
        .select_related("library", "service_point")
        .get(pk=shift.pk)
    )


def check_assignable(*, shift: Shift, user: User) -> None:
    """Raise a ValidationError saying why ``user`` cannot be put on ``shift`` at all (apart
    from conflicts, which a manager may override): forms call it before the service."""
    library = shift.library
    if shift.is_cancelled:
        raise ValidationError(_("This shift is cancelled."))
    if not is_staff_of(user, library):
        raise ValidationError(
            _("%(name)s is not on the staff of %(library)s.")
            % {"name": emails.name(user), "library": library.name}
        )
    if shift.assignments.filter(user=user, status=AssignmentStatus.ASSIGNED).exists():
        raise ValidationError(_("%(name)s is already on this shift.") % {"name": emails.name(user)})
    taken = shift.assignments.filter(status=AssignmentStatus.ASSIGNED).count()
    if taken >= shift.max_staff:
        raise ValidationError(
            _("This shift is full: it takes at most %(max)s.") % {"max": shift.max_staff}
        )


def _assign(*, shift: Shift, user: User, by: User | None, override_note: str) -> Assignment:
    """Put ``user`` on ``shift`` (locked by the caller) after every check."""
    library = shift.library
    # The person's row lock serialises assignments of one person: two managers putting them
    # on overlapping shifts at once would each see no double booking.
    User.objects.select_for_update().filter(pk=user.pk).first()
    check_assignable(shift=shift, user=user)
    current = Assignment.objects.filter(shift=shift, user=user).first()
    conflicts = conflicts_for(user_id=user.pk, shift=shift)
    note = override_note.strip()
    if conflicts:
        if not note:
            raise ConflictError(conflicts)
        if by is None or not is_manager(by, library):
            raise PermissionDenied(_("Only a manager may override a conflict."))
    if current is None:
        assignment = Assignment.objects.create(shift=shift, user=user)
    else:
        current.status = AssignmentStatus.ASSIGNED
        current.flagged = ""
        current.sequence += 1
        current.save(update_fields=["status", "flagged", "sequence", "updated_at"])
        assignment = current
    if conflicts:
        ConflictOverride.objects.create(
            assignment=assignment,
            reasons=[conflict.kind.value for conflict in conflicts],
            note=note,
            created_by=by,
        )
    return assignment


def _tell_assigned(assignment: Assignment, by: User) -> None:
    shift = assignment.shift
    emails.notify(
        to=[assignment.user],
        subject=_("New shift: %(shift)s") % {"shift": emails.describe_shift(shift)},
        lines=[
            _("%(by)s put you on this shift:") % {"by": emails.name(by)},
            emails.describe_shift(shift),
        ],
    )


@transaction.atomic
def shift_assign(*, shift: Shift, user: User, by: User, override_note: str = "") -> Assignment:
    """Put ``user`` on ``shift``. A conflict raises :class:`ConflictError` with its reasons,
    unless a manager overrides it with a note (kept as a :class:`ConflictOverride`)."""
    shift = _locked_shift(shift)
    assignment = _assign(shift=shift, user=user, by=by, override_note=override_note)
    if by.pk != user.pk:
        _tell_assigned(assignment, by)
    return assignment


def _remove(assignment: Assignment) -> None:
    assignment.status = AssignmentStatus.REMOVED
    assignment.flagged = ""
    assignment.sequence += 1
    assignment.save(update_fields=["status", "flagged", "sequence", "updated_at"])


@transaction.atomic
def shift_unassign(*, assignment: Assignment, by: User, reason: str = "") -> Assignment:
    """Take a person off a shift; the record stays (removed) for their calendar feed."""
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("shift__library", "shift__service_point", "user")
        .get(pk=assignment.pk)
    )
    if assignment.status != AssignmentStatus.ASSIGNED:
        raise ValidationError(_("This person is no longer on the shift."))
    _remove(assignment)
    if by.pk != assignment.user_id:
        lines = [
            _("%(by)s took you off this shift:") % {"by": emails.name(by)},
            emails.describe_shift(assignment.shift),
        ]
        if reason:
            lines.append(reason)
        emails.notify(
            to=[assignment.user],
            subject=_("Shift removed: %(shift)s")
            % {"shift": emails.describe_shift(assignment.shift)},
            lines=lines,
        )
    return assignment


# Availability


@transaction.atomic
def availability_replace(
    *, user: User, library: Library, windows: Iterable[tuple[int, time, time]]
) -> list[Availability]:
    """Replace ``user``'s weekly availability in ``library`` with ``windows``
    (weekday, from, until); an until at or before the from is on the next day (equal times
    are a whole day)."""
    if not is_staff_of(user, library):
        raise ValidationError(_("Not on the staff of this library."))
    rows = [
        Availability(library=library, user=user, weekday=weekday, start_time=start, end_time=end)
        for weekday, start, end in windows
    ]
    for row in rows:
        row.full_clean()
    Availability.objects.filter(library=library, user=user).delete()
    return Availability.objects.bulk_create(rows)


@transaction.atomic
def availability_exception_add(
    *,
    user: User,
    library: Library,
    day: date,
    available: bool = False,
    start_time: time | None = None,
    end_time: time | None = None,
    note: str = "",
) -> AvailabilityException:
    if not is_staff_of(user, library):
        raise ValidationError(_("Not on the staff of this library."))
    exception = AvailabilityException(
        library=library,
        user=user,
        date=day,
        available=available,
        start_time=start_time,
        end_time=end_time,
        note=note,
    )
    exception.full_clean()
    exception.save()
    return exception


def availability_exception_remove(*, exception: AvailabilityException, by: User) -> None:
    if by.pk != exception.user_id and not is_manager(by, exception.library):
        raise PermissionDenied(_("Only the person or a manager may remove this."))
    exception.delete()


# Time off


def _overlapping_assignments(request: TimeOffRequest) -> list[Assignment]:
    return list(
        Assignment.objects.active()
        .filter(
            user_id=request.user_id,
            shift__library_id=request.library_id,
            shift__start__lt=request.end,
            shift__end__gt=request.start,
        )
        .select_related("shift__library", "shift__service_point")
        .order_by("shift__start")
    )


@transaction.atomic
def time_off_request(
    *, user: User, library: Library, start: datetime, end: datetime, reason: str = ""
) -> TimeOffRequest:
    """Ask for time off; the library's managers are told."""
    if timezone.is_naive(start) or timezone.is_naive(end):
        raise ValidationError(_("Give times with their time zone."))
    if end <= start:
        raise ValidationError(_("The time off must end after it starts."))
    if not is_staff_of(user, library):
        raise ValidationError(_("Not on the staff of this library."))
    request = TimeOffRequest.objects.create(
        library=library, user=user, start=start, end=end, reason=reason.strip()
    )
    affected = _overlapping_assignments(request)
    emails.notify(
        to=emails.managers_of(library),
        subject=_("Time off requested by %(name)s") % {"name": emails.name(user)},
        lines=[
            _("%(name)s asks for time off: %(when)s.")
            % {"name": emails.name(user), "when": emails.describe_time_off(request)},
            *([reason.strip()] if reason.strip() else []),
            _("Shifts affected: %(count)s") % {"count": len(affected)},
            *[emails.describe_shift(assignment.shift) for assignment in affected],
        ],
    )
    return request


def _locked_request(request: TimeOffRequest, by: User) -> TimeOffRequest:
    request = (
        TimeOffRequest.objects.select_for_update(of=("self",))
        .select_related("library", "user")
        .get(pk=request.pk)
    )
    _require_manager(by, request.library)
    if request.status != RequestStatus.PENDING:
        raise ValidationError(
            _("This request is already %(status)s.") % {"status": request.get_status_display()}
        )
    if by.pk == request.user_id and not by.is_superuser:
        raise PermissionDenied(_("Another manager decides on your own time off."))
    return request


@transaction.atomic
def time_off_approve(*, request: TimeOffRequest, by: User, note: str = "") -> list[Assignment]:
    """Approve time off. The affected assignments are flagged or unassigned, as the library's
    policy says; the requester and the managers are told which."""
    request = _locked_request(request, by)
    request.status = RequestStatus.APPROVED
    request.decided_by = by
    request.decided_at = timezone.now()
    request.decision_note = note.strip()
    request.save()
    affected = _overlapping_assignments(request)
    unassign = policy_for(request.library).time_off_effect == TimeOffEffect.UNASSIGN
    flag = _("Approved time off %(when)s") % {"when": emails.describe_time_off(request)}
    for assignment in affected:
        if unassign:
            _remove(assignment)
        else:
            assignment.flagged = flag[:200]
            assignment.save(update_fields=["flagged", "updated_at"])
    effect = _("now open, unassigned") if unassign else _("flagged for a manager")
    shift_lines = [
        f"- {emails.describe_shift(assignment.shift)} ({effect})" for assignment in affected
    ]
    when = emails.describe_time_off(request)
    emails.notify(
        to=[request.user],
        subject=_("Time off approved: %(when)s") % {"when": when},
        lines=[
            _("%(by)s approved your time off: %(when)s.") % {"by": emails.name(by), "when": when},
            *([request.decision_note] if request.decision_note else []),
            *shift_lines,
        ],
    )
    emails.notify(
        to=emails.managers_of(request.library),
        subject=_("Time off approved for %(name)s") % {"name": emails.name(request.user)},
        lines=[
            _("%(by)s approved time off for %(name)s: %(when)s.")
            % {"by": emails.name(by), "name": emails.name(request.user), "when": when},
            _("Shifts affected: %(count)s") % {"count": len(affected)},
            *shift_lines,
        ],
    )
    return affected


@transaction.atomic
def time_off_deny(*, request: TimeOffRequest, by: User, note: str = "") -> TimeOffRequest:
    request = _locked_request(request, by)
    request.status = RequestStatus.DENIED
    request.decided_by = by
    request.decided_at = timezone.now()
    request.decision_note = note.strip()
    request.save()
    when = emails.describe_time_off(request)
    emails.notify(
        to=[request.user],
        subject=_("Time off not approved: %(when)s") % {"when": when},
        lines=[
            _("%(by)s did not approve your time off: %(when)s.")
            % {"by": emails.name(by), "when": when},
            *([request.decision_note] if request.decision_note else []),
        ],
    )
    return request


@transaction.atomic
def time_off_withdraw(*, request: TimeOffRequest, by: User) -> TimeOffRequest:
    request = TimeOffRequest.objects.select_for_update().get(pk=request.pk)
    if by.pk != request.user_id:
        raise PermissionDenied(_("Only the person who asked may withdraw a request."))
    if request.status != RequestStatus.PENDING:
        raise ValidationError(_("Only a pending request can be withdrawn."))
    request.status = RequestStatus.WITHDRAWN
    request.save(update_fields=["status"])
    return request


# Swaps of assignments


def _colleagues(library: Library, *, besides: Iterable[int]) -> list[User]:
    return [
        membership.user
        for membership in Membership.objects.filter(library=library, user__is_active=True)
        .exclude(user_id__in=list(besides))
        .select_related("user")
    ]


@transaction.atomic
def swap_offer(*, assignment: Assignment, by: User, note: str = "") -> SwapOffer:
    """Offer one's own future assignment to colleagues, who are told."""
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("shift__library", "shift__service_point")
        .get(pk=assignment.pk)
    )
    if assignment.user_id != by.pk:
        raise PermissionDenied(_("You can only offer your own shifts."))
    if assignment.status != AssignmentStatus.ASSIGNED or assignment.shift.is_cancelled:
        raise ValidationError(_("You are no longer on this shift."))
    if assignment.shift.start <= timezone.now():
        raise ValidationError(_("This shift has already begun."))
    if SwapOffer.objects.filter(
        assignment=assignment, status__in=[SwapStatus.OPEN, SwapStatus.CLAIMED]
    ).exists():
        raise ValidationError(_("This shift is already offered."))
    offer = SwapOffer.objects.create(assignment=assignment, note=note.strip())
    shift = assignment.shift
    emails.notify(
        to=_colleagues(shift.library, besides=[by.pk]),
        subject=_("Shift offered: %(shift)s") % {"shift": emails.describe_shift(shift)},
        lines=[
            _("%(name)s offers this shift to a colleague:") % {"name": emails.name(by)},
            emails.describe_shift(shift),
            *([offer.note] if offer.note else []),
        ],
    )
    return offer


def _locked_offer(offer: SwapOffer) -> SwapOffer:
    return (
        SwapOffer.objects.select_for_update(of=("self",))
        .select_related(
            "assignment__shift__library", "assignment__shift__service_point", "assignment__user"
        )
        .get(pk=offer.pk)
    )


def _swap_complete(offer: SwapOffer, *, by: User | None, override_note: str = "") -> None:
    assignment = offer.assignment
    shift = _locked_shift(assignment.shift)
    claimant = offer.claimed_by
    assert claimant is not None
    _remove(assignment)
    _assign(shift=shift, user=claimant, by=by, override_note=override_note)
    offer.status = SwapStatus.APPROVED
    offer.decided_by = by
    offer.decided_at = timezone.now()
    offer.save()
    emails.notify(
        to=[assignment.user, claimant, *emails.managers_of(shift.library)],
        subject=_("Shift swapped: %(shift)s") % {"shift": emails.describe_shift(shift)},
        lines=[
            _("%(claimant)s takes over this shift from %(offerer)s:")
            % {"claimant": emails.name(claimant), "offerer": emails.name(assignment.user)},
            emails.describe_shift(shift),
        ],
    )


@transaction.atomic
def swap_claim(*, offer: SwapOffer, by: User) -> SwapOffer:
    """Claim a colleague's offered shift. Without required approval it changes hands at once;
    otherwise the offerer and the managers are told it awaits approval."""
    offer = _locked_offer(offer)
    shift = offer.assignment.shift
    if offer.status != SwapStatus.OPEN:
        raise ValidationError(_("This shift is no longer on offer."))
    if by.pk == offer.assignment.user_id:
        raise ValidationError(_("You cannot claim your own shift."))
    if not is_staff_of(by, shift.library):
        raise PermissionDenied(_("Not on the staff of this library."))
    if shift.assignments.filter(user=by, status=AssignmentStatus.ASSIGNED).exists():
        raise ValidationError(_("You are already on this shift."))
    conflicts = conflicts_for(user_id=by.pk, shift=shift)
    if conflicts:
        raise ConflictError(conflicts)
    offer.claimed_by = by
    offer.claimed_at = timezone.now()
    offer.status = SwapStatus.CLAIMED
    offer.save()
    if not policy_for(shift.library).swaps_need_approval:
        _swap_complete(offer, by=None)
        return offer
    emails.notify(
        to=[offer.assignment.user, by, *emails.managers_of(shift.library)],
        subject=_("Shift claimed, awaiting approval: %(shift)s")
        % {"shift": emails.describe_shift(shift)},
        lines=[
            _("%(claimant)s claims the shift %(offerer)s offered; a manager approves the swap:")
            % {"claimant": emails.name(by), "offerer": emails.name(offer.assignment.user)},
            emails.describe_shift(shift),
        ],
    )
    return offer


@transaction.atomic
def swap_approve(*, offer: SwapOffer, by: User, override_note: str = "") -> SwapOffer:
    """A manager approves a claimed swap (conflicts are checked again)."""
    offer = _locked_offer(offer)
    _require_manager(by, offer.assignment.shift.library)
    if offer.status != SwapStatus.CLAIMED:
        raise ValidationError(_("Only a claimed offer can be approved."))
    if offer.assignment.status != AssignmentStatus.ASSIGNED:
        raise ValidationError(_("The person who offered it is no longer on this shift."))
    _swap_complete(offer, by=by, override_note=override_note)
    return offer


@transaction.atomic
def swap_decline(*, offer: SwapOffer, by: User, note: str = "") -> SwapOffer:
    """A manager declines a claimed swap: the shift stays with the person who offered it."""
    offer = _locked_offer(offer)
    shift = offer.assignment.shift
    _require_manager(by, shift.library)
    if offer.status != SwapStatus.CLAIMED:
        raise ValidationError(_("Only a claimed offer can be declined."))
    offer.status = SwapStatus.DECLINED
    offer.decided_by = by
    offer.decided_at = timezone.now()
    offer.save()
    claimant = offer.claimed_by
    assert claimant is not None
    emails.notify(
        to=[offer.assignment.user, claimant],
        subject=_("Swap not approved: %(shift)s") % {"shift": emails.describe_shift(shift)},
        lines=[
            _("%(by)s did not approve the swap; %(offerer)s stays on this shift:")
            % {"by": emails.name(by), "offerer": emails.name(offer.assignment.user)},
            emails.describe_shift(shift),
            *([note.strip()] if note.strip() else []),
        ],
    )
    return offer


@transaction.atomic
def swap_withdraw(*, offer: SwapOffer, by: User) -> SwapOffer:
    offer = _locked_offer(offer)
    if by.pk != offer.assignment.user_id:
        raise PermissionDenied(_("Only the person who offered the shift may withdraw it."))
    if offer.status not in (SwapStatus.OPEN, SwapStatus.CLAIMED):
        raise ValidationError(_("This offer is closed."))
    claimant = offer.claimed_by
    offer.status = SwapStatus.WITHDRAWN
    offer.save(update_fields=["status"])
    if claimant is not None:
        shift = offer.assignment.shift
        emails.notify(
            to=[claimant],
            subject=_("Offer withdrawn: %(shift)s") % {"shift": emails.describe_shift(shift)},
            lines=[
                _("%(name)s withdrew the offer of this shift:")
                % {"name": emails.name(offer.assignment.user)},
                emails.describe_shift(shift),
            ],
        )
    return offer


# Claims of open shifts


def _claim_approved(claim: ShiftClaim, shift: Shift, by: User | None) -> None:
    claim.status = RequestStatus.APPROVED
    claim.decided_by = by
    claim.decided_at = timezone.now()
    claim.save()
    emails.notify(
        to=[claim.user, *emails.managers_of(shift.library)],
        subject=_("Open shift taken: %(shift)s") % {"shift": emails.describe_shift(shift)},
        lines=[
            _("%(name)s is now on this shift:") % {"name": emails.name(claim.user)},
            emails.describe_shift(shift),
        ],
    )


@transaction.atomic
def shift_claim(*, shift: Shift, by: User) -> ShiftClaim:
    """Claim an open place on a shift. Without required approval it is taken at once."""
    shift = _locked_shift(shift)
    library = shift.library
    if not is_staff_of(by, library):
        raise PermissionDenied(_("Not on the staff of this library."))
    if shift.is_cancelled or shift.start <= timezone.now():
        raise ValidationError(_("This shift can no longer be claimed."))
    if shift.assignments.filter(status=AssignmentStatus.ASSIGNED).count() >= shift.max_staff:
        raise ValidationError(_("This shift has no open place."))
    if shift.assignments.filter(user=by, status=AssignmentStatus.ASSIGNED).exists():
        raise ValidationError(_("You are already on this shift."))
    if ShiftClaim.objects.filter(shift=shift, user=by, status=RequestStatus.PENDING).exists():
        raise ValidationError(_("You have already claimed this shift."))
    conflicts = conflicts_for(user_id=by.pk, shift=shift)
    if conflicts:
        raise ConflictError(conflicts)
    claim = ShiftClaim.objects.create(shift=shift, user=by)
    if not policy_for(library).swaps_need_approval:
        _assign(shift=shift, user=by, by=by, override_note="")
        _claim_approved(claim, shift, None)
        return claim
    emails.notify(
        to=[by, *emails.managers_of(library)],
        subject=_("Open shift claimed, awaiting approval: %(shift)s")
        % {"shift": emails.describe_shift(shift)},
        lines=[
            _("%(name)s claims an open place on this shift; a manager approves it:")
            % {"name": emails.name(by)},
            emails.describe_shift(shift),
        ],
    )
    return claim


def _locked_claim(claim: ShiftClaim, by: User) -> tuple[ShiftClaim, Shift]:
    claim = (
        ShiftClaim.objects.select_for_update(of=("self",)).select_related("user").get(pk=claim.pk)
    )
    shift = _locked_shift(claim.shift)
    _require_manager(by, shift.library)
    if claim.status != RequestStatus.PENDING:
        raise ValidationError(_("This claim is already decided."))
    return claim, shift


@transaction.atomic
def shift_claim_approve(*, claim: ShiftClaim, by: User, override_note: str = "") -> ShiftClaim:
    claim, shift = _locked_claim(claim, by)
    _assign(shift=shift, user=claim.user, by=by, override_note=override_note)
    _claim_approved(claim, shift, by)
    return claim


@transaction.atomic
def shift_claim_decline(*, claim: ShiftClaim, by: User, note: str = "") -> ShiftClaim:
    claim, shift = _locked_claim(claim, by)
    claim.status = RequestStatus.DENIED
    claim.decided_by = by
    claim.decided_at = timezone.now()
    claim.save()
    emails.notify(
        to=[claim.user],
        subject=_("Claim not approved: %(shift)s") % {"shift": emails.describe_shift(shift)},
        lines=[
            _("%(by)s did not approve your claim on this shift:") % {"by": emails.name(by)},
            emails.describe_shift(shift),
            *([note.strip()] if note.strip() else []),
        ],
    )
    return claim


# Calendar feed


@transaction.atomic
def calendar_feed_reset(*, user: User) -> str:
    """Give ``user`` a new feed secret (the old URL stops working); returns the secret."""
    feed = CalendarFeed.objects.select_for_update().filter(user=user).first() or CalendarFeed(
        user=user
    )
    feed.nonce = secrets.token_hex(32)
    token = feed_secret_of(feed)
    feed.token_hash = feed_secret_hash(token)
    feed.save()
    return token


# Auto-fill


@transaction.atomic
def autofill_apply(
    *, library: Library, proposals: Sequence[Proposal], by: User
) -> list[Assignment]:
    """Apply confirmed proposals, all or none: if the roster changed since they were made and
    one would now conflict, nothing is applied and the conflict is raised."""
    _require_manager(by, library)
    shifts = {
        shift.pk: shift
        for shift in Shift.objects.filter(
            library=library, pk__in=[proposal.shift_id for proposal in proposals]
        )
    }
    users = {user.pk: user for user in User.objects.filter(pk__in=[p.user_id for p in proposals])}
    made: list[Assignment] = []
    for proposal in sorted(proposals, key=lambda p: (p.shift_id, p.user_id)):
        shift = shifts.get(proposal.shift_id)
        user = users.get(proposal.user_id)
        if shift is None or user is None:
            raise ValidationError(_("A proposal names a shift or person that is not there."))
        made.append(_assign(shift=_locked_shift(shift), user=user, by=by, override_note=""))
    for assignment in made:
        _tell_assigned(assignment, by)
    return made
