"""Time off, swaps and open-shift claims: their approvals and the e-mails to everyone affected."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from reflib.models import Role
from reflib.services import staff_upsert
from staffing.conflicts import ConflictKind
from staffing.models import (
    Assignment,
    AssignmentStatus,
    RequestStatus,
    StaffingPolicy,
    SwapStatus,
    TimeOffEffect,
)
from staffing.services import (
    ConflictError,
    shift_assign,
    shift_cancel,
    shift_claim,
    shift_claim_approve,
    shift_claim_decline,
    swap_approve,
    swap_claim,
    swap_decline,
    swap_offer,
    swap_withdraw,
    time_off_approve,
    time_off_deny,
    time_off_request,
    time_off_withdraw,
)
from tests.staffing.conftest import Desk, next_monday, ny

MONDAY = date(2026, 11, 2)


# Real commits: each notice leaves when its service's transaction commits, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def _mails() -> list[tuple[list[str], str]]:
    return [(sorted(message.to), str(message.subject)) for message in mail.outbox]


def _ask_off(desk: Desk) -> Any:
    return time_off_request(
        user=desk.cast.librarian,
        library=desk.cast.library,
        start=ny(MONDAY, time(0)),
        end=ny(MONDAY + timedelta(days=2), time(0)),
        reason="Family visit",
    )


# Time off


def test_a_time_off_request_tells_the_managers_with_the_shifts_it_touches(desk: Desk) -> None:
    desk.shift(MONDAY, time(9), time(13), staff=(desk.cast.librarian,))

    request = _ask_off(desk)

    assert request.status == RequestStatus.PENDING
    (message,) = mail.outbox
    assert message.to == ["mara@example.org"]
    assert message.subject == "Time off requested by Lena"
    assert "Family visit" in message.body
    assert "Shifts affected: 1" in message.body
    assert "Main desk, Monday 02 November 2026 09:00-13:00" in message.body


def test_approved_time_off_flags_the_shifts_by_default(desk: Desk) -> None:
    lena = desk.cast.librarian
    shift = desk.shift(MONDAY, time(9), time(13), staff=(lena,))
    desk.shift(MONDAY + timedelta(days=3), time(9), time(13), staff=(lena,))
    request = _ask_off(desk)
    mail.outbox.clear()

    affected = time_off_approve(request=request, by=desk.cast.manager, note="Enjoy")

    (assignment,) = affected
    assignment.refresh_from_db()
    assert assignment.shift_id == shift.pk
    assert assignment.status == AssignmentStatus.ASSIGNED
    assert assignment.flagged.startswith("Approved time off Monday 02 November 2026 00:00")
    assert _mails() == [
        (
            ["lena@example.org"],
            "Time off approved: Monday 02 November 2026 00:00 - Wednesday 04 November 2026 00:00",
        ),
        (["mara@example.org"], "Time off approved for Lena"),
    ]
    assert "(flagged for a manager)" in mail.outbox[1].body


def test_approved_time_off_unassigns_when_the_library_says_so(desk: Desk) -> None:
    StaffingPolicy.objects.create(library=desk.cast.library, time_off_effect=TimeOffEffect.UNASSIGN)
    shift = desk.shift(MONDAY, time(9), time(13), staff=(desk.cast.librarian,))
    request = _ask_off(desk)

    time_off_approve(request=request, by=desk.cast.manager)

    assignment = Assignment.objects.get(shift=shift)
    assert (assignment.status, assignment.sequence) == (AssignmentStatus.REMOVED, 1)
    assert "(now open, unassigned)" in mail.outbox[-1].body


def test_time_off_is_decided_once_by_another_manager_of_the_library(desk: Desk) -> None:
    request = _ask_off(desk)
    with pytest.raises(PermissionDenied):
        time_off_approve(request=request, by=desk.colleague)
    mail.outbox.clear()

    time_off_deny(request=request, by=desk.cast.manager, note="Inventory week")

    request.refresh_from_db()
    assert request.status == RequestStatus.DENIED
    assert _mails() == [
        (
            ["lena@example.org"],
            "Time off not approved: "
            "Monday 02 November 2026 00:00 - Wednesday 04 November 2026 00:00",
        )
    ]
    assert "Inventory week" in mail.outbox[0].body
    with pytest.raises(ValidationError, match="already Denied"):
        time_off_approve(request=request, by=desk.cast.manager)


def test_a_manager_does_not_approve_their_own_time_off(desk: Desk) -> None:
    mara = desk.cast.manager
    request = time_off_request(
        user=mara,
        library=desk.cast.library,
        start=ny(MONDAY, time(0)),
        end=ny(MONDAY, time(12)),
    )
    with pytest.raises(PermissionDenied):
        time_off_approve(request=request, by=mara)


def test_time_off_needs_an_order_and_only_its_owner_withdraws_it(desk: Desk) -> None:
    with pytest.raises(ValidationError, match="end after it starts"):
        time_off_request(
            user=desk.cast.librarian,
            library=desk.cast.library,
            start=ny(MONDAY, time(12)),
            end=ny(MONDAY, time(12)),
        )
    with pytest.raises(ValidationError, match="Not on the staff"):
        time_off_request(
            user=desk.cast.other_librarian,
            library=desk.cast.library,
            start=ny(MONDAY, time(0)),
            end=ny(MONDAY, time(12)),
        )
    request = _ask_off(desk)
    with pytest.raises(PermissionDenied):
        time_off_withdraw(request=request, by=desk.colleague)
    assert time_off_withdraw(request=request, by=desk.cast.librarian).status == "withdrawn"


# Swaps


def _offered(desk: Desk) -> Any:
    lena = desk.cast.librarian
    shift = desk.shift(next_monday(2), time(9), time(13), staff=(lena,))
    offer = swap_offer(assignment=Assignment.objects.get(shift=shift), by=lena, note="Dentist")
    return shift, offer


def test_offering_a_shift_tells_the_colleagues(desk: Desk) -> None:
    _shift, offer = _offered(desk)

    assert offer.status == SwapStatus.OPEN
    ((to, subject),) = _mails()
    assert to == ["cleo@example.org", "mara@example.org"]
    assert subject.startswith("Shift offered: Main desk, Monday")
    assert "Dentist" in mail.outbox[0].body


def test_a_swap_goes_from_offer_through_claim_to_approval_with_mail_at_each_step(
    desk: Desk,
) -> None:
    lena, cleo, mara = desk.cast.librarian, desk.colleague, desk.cast.manager
    shift, offer = _offered(desk)
    mail.outbox.clear()

    swap_claim(offer=offer, by=cleo)

    offer.refresh_from_db()
    assert (offer.status, offer.claimed_by) == (SwapStatus.CLAIMED, cleo)
    assert Assignment.objects.get(shift=shift, user=lena).status == AssignmentStatus.ASSIGNED
    ((to, subject),) = _mails()
    assert to == ["cleo@example.org", "lena@example.org", "mara@example.org"]
    assert subject.startswith("Shift claimed, awaiting approval: Main desk")
    mail.outbox.clear()

    with pytest.raises(PermissionDenied):
        swap_approve(offer=offer, by=cleo)
    swap_approve(offer=offer, by=mara)

    offer.refresh_from_db()
    assert (offer.status, offer.decided_by) == (SwapStatus.APPROVED, mara)
    assert Assignment.objects.get(shift=shift, user=lena).status == AssignmentStatus.REMOVED
    assert Assignment.objects.get(shift=shift, user=cleo).status == AssignmentStatus.ASSIGNED
    ((to, subject),) = _mails()
    assert to == ["cleo@example.org", "lena@example.org", "mara@example.org"]
    assert subject.startswith("Shift swapped: Main desk")
    assert "Cleo takes over this shift from Lena" in mail.outbox[0].body


def test_without_required_approval_a_claimed_swap_changes_hands_at_once(desk: Desk) -> None:
    StaffingPolicy.objects.create(library=desk.cast.library, swaps_need_approval=False)
    shift, offer = _offered(desk)
    mail.outbox.clear()

    swap_claim(offer=offer, by=desk.colleague)

    offer.refresh_from_db()
    assert offer.status == SwapStatus.APPROVED
    assert offer.decided_by is None
    assert Assignment.objects.active().get(shift=shift).user == desk.colleague
    assert [subject.split(":")[0] for _to, subject in _mails()] == ["Shift swapped"]


def test_a_declined_swap_leaves_the_shift_with_the_offerer(desk: Desk) -> None:
    shift, offer = _offered(desk)
    swap_claim(offer=offer, by=desk.colleague)
    mail.outbox.clear()

    swap_decline(offer=offer, by=desk.cast.manager, note="Cleo is needed at the chat")

    assert Assignment.objects.active().get(shift=shift).user == desk.cast.librarian
    ((to, subject),) = _mails()
    assert to == ["cleo@example.org", "lena@example.org"]
    assert subject.startswith("Swap not approved")
    assert "Cleo is needed at the chat" in mail.outbox[0].body


def test_a_claim_that_would_conflict_is_refused_with_its_reason(desk: Desk) -> None:
    shift, offer = _offered(desk)
    desk.shift(shift.date, time(8), time(10), point=desk.chat, staff=(desk.colleague,))

    with pytest.raises(ConflictError) as raised:
        swap_claim(offer=offer, by=desk.colleague)

    assert [c.kind for c in raised.value.conflicts] == [ConflictKind.DOUBLE_BOOKING]
    offer.refresh_from_db()
    assert offer.status == SwapStatus.OPEN


def test_swap_rules_at_the_edges(desk: Desk) -> None:
    lena, cleo = desk.cast.librarian, desk.colleague
    shift, offer = _offered(desk)
    with pytest.raises(ValidationError, match="already offered"):
        swap_offer(assignment=Assignment.objects.get(shift=shift), by=lena)
    with pytest.raises(PermissionDenied):
        swap_offer(assignment=Assignment.objects.get(shift=shift), by=cleo)
    with pytest.raises(ValidationError, match="your own shift"):
        swap_claim(offer=offer, by=lena)
    with pytest.raises(PermissionDenied):
        swap_claim(offer=offer, by=desk.cast.other_librarian)
    with pytest.raises(ValidationError, match="Only a claimed offer"):
        swap_approve(offer=offer, by=desk.cast.manager)
    swap_claim(offer=offer, by=cleo)
    mail.outbox.clear()
    with pytest.raises(PermissionDenied):
        swap_withdraw(offer=offer, by=cleo)
    swap_withdraw(offer=offer, by=lena)
    assert _mails()[0][0] == ["cleo@example.org"]
    with pytest.raises(ValidationError, match="no longer on offer"):
        swap_claim(offer=offer, by=cleo)
    past = desk.shift(MONDAY, time(9), time(13), staff=(lena,))
    with pytest.raises(ValidationError, match="already begun"):
        swap_offer(assignment=Assignment.objects.get(shift=past), by=lena)


# Open shifts


def test_an_open_shift_claim_awaits_approval_then_assigns(desk: Desk) -> None:
    cleo, mara = desk.colleague, desk.cast.manager
    shift = desk.shift(next_monday(2), time(13), time(17), point=desk.chat, max_staff=1)

    claim = shift_claim(shift=shift, by=cleo)

    assert claim.status == RequestStatus.PENDING
    assert not Assignment.objects.filter(shift=shift).exists()
    ((to, subject),) = _mails()
    assert to == ["cleo@example.org", "mara@example.org"]
    assert subject.startswith("Open shift claimed, awaiting approval: Chat")
    mail.outbox.clear()

    shift_claim_approve(claim=claim, by=mara)

    claim.refresh_from_db()
    assert claim.status == RequestStatus.APPROVED
    assert Assignment.objects.active().get(shift=shift).user == cleo
    ((to, subject),) = _mails()
    assert to == ["cleo@example.org", "mara@example.org"]
    assert subject.startswith("Open shift taken: Chat")
    with pytest.raises(ValidationError, match="no open place"):
        shift_claim(shift=shift, by=desk.cast.librarian)


def test_an_open_shift_is_taken_at_once_without_required_approval(desk: Desk) -> None:
    StaffingPolicy.objects.create(library=desk.cast.library, swaps_need_approval=False)
    shift = desk.shift(next_monday(2), time(13), time(17))

    claim = shift_claim(shift=shift, by=desk.colleague)

    assert claim.status == RequestStatus.APPROVED
    assert Assignment.objects.active().get(shift=shift).user == desk.colleague
    assert [subject.split(":")[0] for _to, subject in _mails()] == ["Open shift taken"]


def test_a_declined_claim_tells_the_claimant(desk: Desk) -> None:
    shift = desk.shift(next_monday(2), time(13), time(17))
    claim = shift_claim(shift=shift, by=desk.colleague)
    with pytest.raises(ValidationError, match="already claimed"):
        shift_claim(shift=shift, by=desk.colleague)
    with pytest.raises(PermissionDenied):
        shift_claim_decline(claim=claim, by=desk.cast.librarian)
    mail.outbox.clear()

    shift_claim_decline(claim=claim, by=desk.cast.manager, note="Already covered")

    assert not Assignment.objects.filter(shift=shift).exists()
    ((to, subject),) = _mails()
    assert to == ["cleo@example.org"]
    assert subject.startswith("Claim not approved")
    assert "Already covered" in mail.outbox[0].body


# Another library's manager


def test_another_librarys_manager_cannot_decide_or_cancel_anything_here(desk: Desk) -> None:
    oona = staff_upsert(username="oona", library=desk.cast.other_library, role=Role.MANAGER)
    request = _ask_off(desk)
    shift, offer = _offered(desk)
    swap_claim(offer=offer, by=desk.colleague)
    open_shift = desk.shift(next_monday(2), time(14), time(17))
    claim = shift_claim(shift=open_shift, by=desk.colleague)
    desk.shift(next_monday(2), time(9), time(13), point=desk.chat, staff=(desk.cast.manager,))
    clash = desk.shift(next_monday(2), time(10), time(12))

    for attempt in [
        lambda: time_off_approve(request=request, by=oona),
        lambda: time_off_deny(request=request, by=oona),
        lambda: swap_approve(offer=offer, by=oona),
        lambda: swap_decline(offer=offer, by=oona),
        lambda: shift_claim_approve(claim=claim, by=oona),
        lambda: shift_claim_decline(claim=claim, by=oona),
        lambda: shift_cancel(shift=shift, by=oona),
        lambda: shift_assign(
            shift=clash, user=desk.cast.manager, by=oona, override_note="Mine now"
        ),
    ]:
        with pytest.raises(PermissionDenied):
            attempt()
    request.refresh_from_db()
    offer.refresh_from_db()
    claim.refresh_from_db()
    shift.refresh_from_db()
    assert (request.status, offer.status, claim.status) == ("pending", "claimed", "pending")
    assert not shift.is_cancelled
    assert not Assignment.objects.filter(shift=clash).exists()
