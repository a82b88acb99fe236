"""Staffing in the admin: each manager sees their own libraries only, and the approvals run
the same services (and send the same e-mails) as the pages."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.urls import reverse

from reflib.models import Library, Role
from reflib.services import staff_upsert
from staffing.models import (
    Assignment,
    Availability,
    ConflictOverride,
    RequestStatus,
    ShiftTemplate,
    SwapStatus,
    TimeOffRequest,
    WeeklyHourLimit,
)
from staffing.services import roster_generate, swap_claim, swap_offer
from tests.staffing.conftest import Desk, next_monday, ny

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.staffing.admin_urls"),
]

MONDAY = date(2026, 11, 2)


def _time_off(desk: Desk, user: User, library: Library) -> TimeOffRequest:
    return TimeOffRequest.objects.create(
        library=library, user=user, start=ny(MONDAY, time(0)), end=ny(MONDAY, time(23))
    )


def test_a_manager_sees_and_opens_only_their_own_librarys_rows(desk: Desk) -> None:
    ours = _time_off(desk, desk.cast.librarian, desk.cast.library)
    theirs = _time_off(desk, desk.cast.other_librarian, desk.cast.other_library)
    client = desk.cast.client_for(desk.cast.manager)

    listing = client.get(reverse("admin:staffing_timeoffrequest_changelist"))
    assert listing.status_code == 200
    assert f"/{ours.pk}/" in listing.content.decode()
    assert f"/{theirs.pk}/" not in listing.content.decode()
    assert (
        client.get(reverse("admin:staffing_timeoffrequest_change", args=[ours.pk])).status_code
        == 200
    )
    # Another library's row is answered as if it did not exist.
    response = client.get(reverse("admin:staffing_timeoffrequest_change", args=[theirs.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_an_approval_action_on_another_librarys_row_changes_nothing(desk: Desk) -> None:
    theirs = _time_off(desk, desk.cast.other_librarian, desk.cast.other_library)
    client = desk.cast.client_for(desk.cast.manager)

    client.post(
        reverse("admin:staffing_timeoffrequest_changelist"),
        {"action": "approve", "_selected_action": [theirs.pk]},
    )

    theirs.refresh_from_db()
    assert theirs.status == RequestStatus.PENDING
    assert mail.outbox == []


def test_a_librarian_has_no_staffing_admin(desk: Desk) -> None:
    client = desk.cast.client_for(desk.cast.librarian)
    response = client.get(reverse("admin:staffing_timeoffrequest_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_approving_time_off_in_the_admin_runs_the_service(desk: Desk) -> None:
    ours = _time_off(desk, desk.cast.librarian, desk.cast.library)
    desk.shift(MONDAY, time(9), time(13), staff=(desk.cast.librarian,))
    client = desk.cast.client_for(desk.cast.manager)

    response = client.post(
        reverse("admin:staffing_timeoffrequest_changelist"),
        {"action": "approve", "_selected_action": [ours.pk]},
        follow=True,
    )

    ours.refresh_from_db()
    assert ours.status == RequestStatus.APPROVED
    assert ours.decided_by == desk.cast.manager
    assert "1 requests approved." in response.content.decode()
    assert sorted(m.to[0] for m in mail.outbox) == ["lena@example.org", "mara@example.org"]
    assert Assignment.objects.get().flagged.startswith("Approved time off")


def test_a_swap_is_approved_from_the_admin(desk: Desk) -> None:
    shift = desk.shift(next_monday(2), time(9), time(13), staff=(desk.cast.librarian,))
    offer = swap_offer(assignment=Assignment.objects.get(shift=shift), by=desk.cast.librarian)
    swap_claim(offer=offer, by=desk.colleague)
    client = desk.cast.client_for(desk.cast.manager)

    client.post(
        reverse("admin:staffing_swapoffer_changelist"),
        {"action": "approve", "_selected_action": [offer.pk]},
    )

    offer.refresh_from_db()
    assert offer.status == SwapStatus.APPROVED
    assert Assignment.objects.active().get(shift=shift).user == desk.colleague


def test_adding_an_assignment_in_the_admin_shows_conflicts_until_overridden(desk: Desk) -> None:
    lena = desk.cast.librarian
    desk.shift(MONDAY, time(9), time(13), staff=(lena,))
    clash = desk.shift(MONDAY, time(10), time(12), point=desk.chat)
    client = desk.cast.client_for(desk.cast.manager)
    url = reverse("admin:staffing_assignment_add")

    refused = client.post(url, {"shift": clash.pk, "user": lena.pk, "override_note": ""})
    assert refused.status_code == 200
    assert "Already on another shift Mon 02 Nov 09:00-13:00." in refused.content.decode()
    assert not Assignment.objects.filter(shift=clash).exists()

    kept = client.post(url, {"shift": clash.pk, "user": lena.pk, "override_note": "Short of staff"})
    assert kept.status_code == 302
    override = ConflictOverride.objects.get()
    assert (override.note, override.assignment.shift) == ("Short of staff", clash)


def test_an_assignment_form_offers_only_the_managers_own_shifts_and_staff(desk: Desk) -> None:
    ours = desk.shift(MONDAY, time(9), time(13))
    theirs = desk.shift(MONDAY, time(9), time(13), point=desk.other_desk)
    client = desk.cast.client_for(desk.cast.manager)

    page = client.get(reverse("admin:staffing_assignment_add")).content.decode()
    assert f'value="{ours.pk}"' in page
    assert f'value="{theirs.pk}"' not in page
    assert "otto" not in page
    response = client.post(
        reverse("admin:staffing_assignment_add"),
        {"shift": theirs.pk, "user": desk.cast.librarian.pk, "override_note": ""},
    )
    assert response.status_code == 200
    assert not Assignment.objects.exists()


def test_changing_a_template_in_the_admin_moves_its_future_open_shifts(desk: Desk) -> None:
    template = ShiftTemplate.objects.create(
        library=desk.cast.library,
        service_point=desk.main,
        weekday=next_monday(2).weekday(),
        start_time=time(9),
        end_time=time(13),
    )
    roster_generate(
        library=desk.cast.library, start=next_monday(2), end=next_monday(2) + timedelta(days=6)
    )
    client = desk.cast.client_for(desk.cast.manager)

    response = client.post(
        reverse("admin:staffing_shifttemplate_change", args=[template.pk]),
        {
            "library": desk.cast.library.pk,
            "service_point": desk.main.pk,
            "name": "",
            "weekday": template.weekday,
            "start_time": "10:00",
            "end_time": "14:00",
            "min_staff": 1,
            "max_staff": 1,
            "valid_from": "",
            "valid_until": "",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    shift = template.shifts.get()
    assert shift.start.astimezone(desk.cast.library.zone).hour == 10


def test_a_manager_of_two_libraries_sees_both(desk: Desk) -> None:
    staff_upsert(username="mara", library=desk.cast.other_library, role=Role.MANAGER)
    theirs = _time_off(desk, desk.cast.other_librarian, desk.cast.other_library)
    client = desk.cast.client_for(desk.cast.manager)
    assert (
        client.get(reverse("admin:staffing_timeoffrequest_change", args=[theirs.pk])).status_code
        == 200
    )


def test_the_admin_explains_why_a_full_or_cancelled_shift_takes_nobody(desk: Desk) -> None:
    full = desk.shift(MONDAY, time(9), time(13), max_staff=1, staff=(desk.colleague,))
    cancelled = desk.shift(MONDAY + timedelta(days=1), time(9), time(13))
    cancelled.is_cancelled = True
    cancelled.save()
    client = desk.cast.client_for(desk.cast.manager)
    url = reverse("admin:staffing_assignment_add")

    for shift, reason in [
        (full, "This shift is full: it takes at most 1."),
        (cancelled, "cancelled"),
    ]:
        response = client.post(
            url, {"shift": shift.pk, "user": desk.cast.librarian.pk, "override_note": "Needed"}
        )
        assert response.status_code == 200
        assert reason in response.content.decode()
    assert Assignment.objects.count() == 1


def test_availability_and_hour_limits_name_staff_of_their_own_library(desk: Desk) -> None:
    staff_upsert(username="mara", library=desk.cast.other_library, role=Role.MANAGER)
    client = desk.cast.client_for(desk.cast.manager)
    otto, demo = desk.cast.other_librarian, desk.cast.library

    availability = client.post(
        reverse("admin:staffing_availability_add"),
        {
            "library": demo.pk,
            "user": otto.pk,
            "weekday": 0,
            "start_time": "09:00",
            "end_time": "17:00",
        },
    )
    limit = client.post(
        reverse("admin:staffing_weeklyhourlimit_add"),
        {"library": demo.pk, "user": otto.pk, "hours": "20"},
    )

    for response in (availability, limit):
        assert response.status_code == 200
        assert "Choose a staff member of this library." in response.content.decode()
    assert not Availability.objects.exists()
    assert not WeeklyHourLimit.objects.exists()
