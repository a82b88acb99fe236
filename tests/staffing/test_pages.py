"""The staffing pages through Django's test client: what librarians and managers see and do,
bad input as form errors, and attacks across libraries (404, never another library's data)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone
from icalendar import Calendar

from reflib.models import Role
from reflib.services import staff_upsert
from staffing.models import (
    Assignment,
    AssignmentStatus,
    Availability,
    AvailabilityException,
    RequestStatus,
    Shift,
    ShiftClaim,
    ShiftTemplate,
    SwapOffer,
    SwapStatus,
    TimeOffRequest,
    Weekday,
)
from staffing.services import calendar_feed_reset, swap_offer, time_off_request
from tests.conftest import PASSWORD
from tests.staffing.conftest import Desk, next_monday, ny

NY = ZoneInfo("America/New_York")


@pytest.fixture
def other_manager(desk: Desk) -> User:
    return staff_upsert(
        username="olga",
        library=desk.cast.other_library,
        role=Role.MANAGER,
        display_name="Olga",
        password=PASSWORD,
    )


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined]


# --- who may open which page ----------

LIBRARIAN_PAGES = [
    "/staffing/",
    "/staffing/open/",
    "/staffing/availability/",
    "/staffing/time-off/",
]
MANAGER_PAGES = [
    "/staffing/demo/week/",
    "/staffing/demo/approvals/",
    "/staffing/demo/coverage/",
    "/staffing/demo/templates/",
]


@pytest.mark.parametrize("path", LIBRARIAN_PAGES + MANAGER_PAGES)
def test_pages_send_an_anonymous_visitor_to_the_login_page(db: None, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", LIBRARIAN_PAGES)
def test_librarian_pages_open_for_a_librarian(desk: Desk, path: str) -> None:
    assert login(desk.cast.librarian).get(path).status_code == 200


@pytest.mark.parametrize("path", MANAGER_PAGES)
def test_manager_pages_open_for_the_manager(desk: Desk, path: str) -> None:
    assert login(desk.cast.manager).get(path).status_code == 200


@pytest.mark.parametrize("path", MANAGER_PAGES)
def test_manager_pages_are_404_for_a_librarian_and_for_another_librarys_manager(
    desk: Desk, other_manager: User, path: str
) -> None:
    assert login(desk.cast.librarian).get(path).status_code == 404
    assert login(other_manager).get(path).status_code == 404


def test_a_user_of_no_library_is_refused(db: None) -> None:
    user = User.objects.create_user("nobody", password=PASSWORD)
    assert login(user).get("/staffing/").status_code == 403


# --- my shifts ----------


def test_my_shifts_shows_upcoming_shifts_in_local_time_and_my_hours(desk: Desk) -> None:
    monday = next_monday()
    desk.shift(monday, time(9), time(13), staff=(desk.cast.librarian,))
    desk.shift(monday + timedelta(days=1), time(22), time(6), staff=(desk.cast.librarian,))
    desk.shift(monday, time(9), time(13), point=desk.other_desk, staff=(desk.cast.other_librarian,))

    html = text(login(desk.cast.librarian).get("/staffing/"))

    assert f"{monday:%a %-d %b}" in html
    assert "09:00\N{EN DASH}13:00" in html
    assert "22:00\N{EN DASH}06:00" in html
    assert "Main desk" in html
    assert "Main</td>" not in html  # the other library's desk
    assert 'id="hours-week"' in html


def test_my_shifts_speaks_spanish_to_a_spanish_browser(desk: Desk) -> None:
    monday = next_monday()
    desk.shift(monday, time(9), time(13), staff=(desk.cast.librarian,))
    client = login(desk.cast.librarian)

    spanish = text(client.get("/staffing/", HTTP_ACCEPT_LANGUAGE="es"))
    english = text(client.get("/staffing/"))

    assert '<html lang="es">' in spanish
    for words in ["Mis turnos", "Próximos turnos (cuatro semanas)", "Mi disponibilidad"]:
        assert words in spanish
    assert f"lun {monday.day} " in spanish
    assert "Upcoming shifts (four weeks)" not in spanish
    assert "Upcoming shifts (four weeks)" in english
    assert f"Mon {monday.day} " in english


def test_hours_this_week_count_my_shifts_of_this_week(desk: Desk) -> None:
    today = timezone.now().astimezone(NY).date()
    monday = today - timedelta(days=today.weekday())
    desk.shift(monday, time(9), time(13), staff=(desk.cast.librarian,))
    desk.shift(monday + timedelta(days=1), time(9), time(12, 30), staff=(desk.cast.librarian,))
    desk.shift(monday + timedelta(days=7), time(9), time(13), staff=(desk.cast.librarian,))

    html = text(login(desk.cast.librarian).get("/staffing/"))

    assert '<dd class="fs-5 mb-1" id="hours-week">7.5 h</dd>' in html
    assert f"Week of {monday:%-d %b}" in html


def test_my_calendar_address_is_created_reset_and_served_without_a_session(desk: Desk) -> None:
    client = login(desk.cast.librarian)
    desk.shift(next_monday(), time(9), time(13), staff=(desk.cast.librarian,))

    client.post("/staffing/calendar/reset/")
    html = text(client.get("/staffing/"))
    start = html.index("http://testserver/staffing/feed/")
    first = html[start : html.index('"', start)]
    feed = Client().get(first.removeprefix("http://testserver"))
    client.post("/staffing/calendar/reset/")
    html = text(client.get("/staffing/"))
    start = html.index("http://testserver/staffing/feed/")
    second = html[start : html.index('"', start)]

    assert feed.status_code == 200
    assert feed["Content-Type"].startswith("text/calendar")
    events = Calendar.from_ical(feed.content).walk("VEVENT")
    assert len(events) == 1
    assert first != second
    assert Client().get(first.removeprefix("http://testserver")).status_code == 404
    assert Client().get(second.removeprefix("http://testserver")).status_code == 200


def test_a_wrong_calendar_secret_is_404(desk: Desk) -> None:
    calendar_feed_reset(user=desk.cast.librarian)
    assert Client().get("/staffing/feed/not-the-secret.ics").status_code == 404


# --- offers, claims and the manager's approval ----------


def test_a_swap_goes_from_offer_to_claim_to_approval_through_the_pages(
    desk: Desk, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    shift = desk.shift(next_monday(), time(9), time(13), staff=(desk.cast.librarian,))
    assignment = Assignment.objects.get(shift=shift, user=desk.cast.librarian)
    capture = django_capture_on_commit_callbacks

    with capture(execute=True):
        response = login(desk.cast.librarian).post(
            f"/staffing/offers/{assignment.pk}/offer/", {"note": "Dentist"}
        )
    assert response.status_code == 302
    offer = SwapOffer.objects.get(assignment=assignment)
    assert [sorted(m.to) for m in mail.outbox] == [["cleo@example.org", "mara@example.org"]]

    colleague = login(desk.colleague)
    assert "Dentist" in text(colleague.get("/staffing/open/"))
    with capture(execute=True):
        colleague.post(f"/staffing/offers/{offer.pk}/claim/")
    offer.refresh_from_db()
    assert offer.status == SwapStatus.CLAIMED
    assert "Shift claimed, awaiting approval" in str(mail.outbox[-1].subject)

    manager = login(desk.cast.manager)
    assert "Cleo" in text(manager.get("/staffing/demo/approvals/"))
    with capture(execute=True):
        response = manager.post(f"/staffing/demo/approvals/swap/{offer.pk}/approve/", follow=True)
    assert "Approved." in text(response)
    offer.refresh_from_db()
    assert offer.status == SwapStatus.APPROVED
    assert Assignment.objects.active().get(shift=shift).user == desk.colleague
    last = mail.outbox[-1]
    assert str(last.subject).startswith("Shift swapped")
    assert sorted(last.to) == ["cleo@example.org", "lena@example.org", "mara@example.org"]


def test_claiming_an_open_place_waits_for_the_manager(desk: Desk) -> None:
    shift = desk.shift(next_monday(), time(9), time(13), min_staff=1, max_staff=2)
    client = login(desk.cast.librarian)
    assert "Claim a place" in text(client.get("/staffing/open/"))

    client.post(f"/staffing/open/{shift.pk}/claim/")
    claim = ShiftClaim.objects.get(shift=shift)
    login(desk.cast.manager).post(f"/staffing/demo/approvals/claim/{claim.pk}/approve/")

    claim.refresh_from_db()
    assert claim.status == RequestStatus.APPROVED
    assert Assignment.objects.active().filter(shift=shift, user=desk.cast.librarian).exists()


def test_a_refused_claim_says_why_and_changes_nothing(desk: Desk) -> None:
    monday = next_monday()
    desk.shift(monday, time(9), time(13), staff=(desk.cast.librarian,))
    overlapping = desk.shift(monday, time(10), time(12), point=desk.chat)

    response = login(desk.cast.librarian).post(
        f"/staffing/open/{overlapping.pk}/claim/", follow=True
    )

    assert response.status_code == 200
    assert "Already on another shift" in text(response)
    assert not ShiftClaim.objects.exists()


def test_another_librarys_offers_shifts_and_assignments_are_404(desk: Desk) -> None:
    theirs = desk.shift(
        next_monday(), time(9), time(13), point=desk.other_desk, staff=(desk.cast.other_librarian,)
    )
    assignment = Assignment.objects.get(shift=theirs)
    offer = swap_offer(assignment=assignment, by=desk.cast.other_librarian)
    client = login(desk.cast.librarian)

    assert client.post(f"/staffing/offers/{offer.pk}/claim/").status_code == 404
    assert client.post(f"/staffing/open/{theirs.pk}/claim/").status_code == 404
    assert client.post(f"/staffing/offers/{assignment.pk}/offer/").status_code == 404
    assert client.post(f"/staffing/offers/{offer.pk}/withdraw/").status_code == 404
    assert "Main</td>" not in text(client.get("/staffing/open/"))
    assert SwapOffer.objects.get(pk=offer.pk).status == SwapStatus.OPEN


def test_a_manager_cannot_decide_or_edit_another_librarys_objects(
    desk: Desk, other_manager: User
) -> None:
    shift = desk.shift(next_monday(), time(9), time(13), staff=(desk.cast.librarian,))
    assignment = Assignment.objects.get(shift=shift)
    offer = swap_offer(assignment=assignment, by=desk.cast.librarian)
    request = time_off_request(
        user=desk.cast.librarian,
        library=desk.cast.library,
        start=ny(next_monday(), time(0)),
        end=ny(next_monday(), time(23)),
    )
    template = ShiftTemplate.objects.create(
        library=desk.cast.library,
        service_point=desk.main,
        weekday=Weekday.MONDAY,
        start_time=time(9),
        end_time=time(13),
    )
    olga = login(other_manager)

    # Through their own library's URLs: the objects are not there.
    assert olga.post(f"/staffing/other/approvals/swap/{offer.pk}/approve/").status_code == 404
    assert olga.post(f"/staffing/other/approvals/time-off/{request.pk}/approve/").status_code == 404
    assert olga.get(f"/staffing/other/shifts/{shift.pk}/").status_code == 404
    assert olga.post(f"/staffing/other/assignments/{assignment.pk}/remove/").status_code == 404
    assert olga.get(f"/staffing/other/templates/{template.pk}/").status_code == 404
    # Through the library's own URLs: not a library they manage.
    assert olga.post(f"/staffing/demo/approvals/time-off/{request.pk}/approve/").status_code == 404
    assert olga.get("/staffing/demo/roster.csv?from=2026-11-01&to=2026-11-07").status_code == 404
    assert TimeOffRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING
    assert Assignment.objects.get(pk=assignment.pk).status == AssignmentStatus.ASSIGNED


def test_an_unknown_decision_is_404(desk: Desk) -> None:
    client = login(desk.cast.manager)
    assert client.post("/staffing/demo/approvals/swap/1/maybe/").status_code == 404
    assert client.post("/staffing/demo/approvals/nonsense/1/approve/").status_code == 404


# --- availability and time off ----------


def test_weekly_availability_is_saved_and_shown_again(desk: Desk) -> None:
    client = login(desk.cast.librarian)
    data = {
        "weekly-TOTAL_FORMS": "2",
        "weekly-INITIAL_FORMS": "0",
        "weekly-0-weekday": "0",
        "weekly-0-start_time": "09:00",
        "weekly-0-end_time": "17:00",
        "weekly-1-weekday": "",
        "weekly-1-start_time": "",
        "weekly-1-end_time": "",
    }

    response = client.post("/staffing/availability/?library=demo", data)

    assert response.status_code == 302
    row = Availability.objects.get(user=desk.cast.librarian)
    assert (row.weekday, row.start_time, row.end_time) == (0, time(9), time(17))
    assert 'value="09:00' in text(client.get("/staffing/availability/"))


def test_availability_with_equal_times_is_a_whole_day(desk: Desk) -> None:
    data = {
        "weekly-TOTAL_FORMS": "1",
        "weekly-INITIAL_FORMS": "0",
        "weekly-0-weekday": "0",
        "weekly-0-start_time": "09:00",
        "weekly-0-end_time": "09:00",
    }

    response = login(desk.cast.librarian).post("/staffing/availability/", data)

    assert response.status_code == 302
    row = Availability.objects.get(user=desk.cast.librarian)
    assert (row.weekday, row.start_time, row.end_time) == (0, time(9), time(9))


def test_an_availability_exception_is_added_and_removed_only_by_its_owner(desk: Desk) -> None:
    client = login(desk.cast.librarian)
    day = next_monday()

    client.post("/staffing/availability/exceptions/", {"day": day.isoformat(), "note": "Course"})
    exception = AvailabilityException.objects.get(user=desk.cast.librarian)
    assert exception.date == day
    assert (
        login(desk.colleague)
        .post(f"/staffing/availability/exceptions/{exception.pk}/remove/")
        .status_code
        == 404
    )
    client.post(f"/staffing/availability/exceptions/{exception.pk}/remove/")
    assert not AvailabilityException.objects.exists()


def test_an_extra_availability_without_times_is_a_form_error(desk: Desk) -> None:
    response = login(desk.cast.librarian).post(
        "/staffing/availability/exceptions/", {"day": "2026-12-01", "available": "on"}
    )
    assert response.status_code == 200
    assert "Give the times of the extra availability." in text(response)


def test_time_off_is_requested_in_local_time(desk: Desk) -> None:
    client = login(desk.cast.librarian)

    response = client.post(
        "/staffing/time-off/",
        {
            "start_date": "2027-03-13",
            "start_time": "00:00",
            "end_date": "2027-03-15",
            "end_time": "00:00",
            "reason": "Trip",
        },
    )

    assert response.status_code == 302
    request = TimeOffRequest.objects.get()
    assert request.start == ny(request.start.astimezone(NY).date(), time(0))
    assert request.start.astimezone(NY).utcoffset() == timedelta(hours=-5)
    assert request.end.astimezone(NY).utcoffset() == timedelta(hours=-4)
    assert "Trip" in text(client.get("/staffing/time-off/"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"start_date": "2027-01-02", "start_time": "09:00", "end_date": "2027-01-01"},
            "The time off must end after it starts.",
        ),
        ({"start_date": "not a date", "start_time": "09:00"}, "Enter a valid date."),
    ],
)
def test_bad_time_off_input_is_a_form_error(desk: Desk, data: dict[str, str], message: str) -> None:
    data = {"end_date": "", "end_time": "10:00", **data}

    response = login(desk.cast.librarian).post("/staffing/time-off/", data)

    assert response.status_code == 200
    assert message in text(response)
    assert not TimeOffRequest.objects.exists()


def test_my_time_off_is_withdrawn_but_not_a_colleagues(desk: Desk) -> None:
    request = time_off_request(
        user=desk.cast.librarian,
        library=desk.cast.library,
        start=ny(next_monday(), time(0)),
        end=ny(next_monday(), time(23)),
    )
    assert (
        login(desk.colleague).post(f"/staffing/time-off/{request.pk}/withdraw/").status_code == 404
    )
    login(desk.cast.librarian).post(f"/staffing/time-off/{request.pk}/withdraw/")
    request.refresh_from_db()
    assert request.status == RequestStatus.WITHDRAWN


def test_another_librarys_slug_on_a_librarian_page_is_404(desk: Desk) -> None:
    assert login(desk.cast.librarian).get("/staffing/time-off/?library=other").status_code == 404


# --- the manager's week ----------


def test_week_view_marks_conflicts_and_gaps_in_words(desk: Desk) -> None:
    monday = next_monday()
    # Lena is on two overlapping shifts (a double booking); the chat shift needs two people.
    desk.shift(monday, time(9), time(13), staff=(desk.cast.librarian,))
    Assignment.objects.create(
        shift=desk.shift(monday, time(10), time(12), point=desk.chat, min_staff=2),
        user=desk.cast.librarian,
    )

    html = text(login(desk.cast.manager).get(f"/staffing/demo/week/?week={monday}"))

    assert "Conflict:" in html
    assert "Already on another shift" in html
    assert "Open: 1 more needed" in html
    assert "2 shifts with a conflict" in html
    assert "1 shift below its minimum" in html
    assert "@media print" not in html  # the print rules live in the stylesheet
    assert "staffing/staffing.css" in html


def test_week_view_with_a_nonsense_week_shows_this_week(desk: Desk) -> None:
    response = login(desk.cast.manager).get("/staffing/demo/week/?week=yesterday")
    assert response.status_code == 200


def test_a_conflicting_assignment_needs_a_note_and_is_kept_with_it(desk: Desk) -> None:
    monday = next_monday()
    desk.shift(monday, time(9), time(13), staff=(desk.cast.librarian,))
    shift = desk.shift(monday, time(10), time(12), point=desk.chat)
    client = login(desk.cast.manager)
    url = f"/staffing/demo/shifts/{shift.pk}/"

    refused = client.post(url, {"user": desk.cast.librarian.pk})
    kept = client.post(url, {"user": desk.cast.librarian.pk, "override_note": "Short event"})

    assert refused.status_code == 200
    assert "Already on another shift" in text(refused)
    assert kept.status_code == 302
    assert Assignment.objects.active().filter(shift=shift).count() == 1


def test_a_manager_reading_spanish_gets_conflicts_and_sends_notices_in_spanish(
    desk: Desk, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    monday = next_monday()
    desk.shift(monday, time(9), time(13), staff=(desk.cast.librarian,))
    shift = desk.shift(monday, time(10), time(12), point=desk.chat)
    client = login(desk.cast.manager)
    url = f"/staffing/demo/shifts/{shift.pk}/"

    refused = client.post(url, {"user": desk.cast.librarian.pk}, HTTP_ACCEPT_LANGUAGE="es")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            url,
            {"user": desk.cast.librarian.pk, "override_note": "Evento corto"},
            HTTP_ACCEPT_LANGUAGE="es",
        )

    assert "Ya está en otro turno lun " in text(refused)
    (notice,) = mail.outbox
    assert notice.subject.startswith("Nuevo turno: Chat, Lunes ")
    assert "Mara le asignó este turno:" in notice.body
    assert "Sus turnos: " in notice.body


def test_assigning_someone_of_another_library_is_a_form_error(desk: Desk) -> None:
    shift = desk.shift(next_monday(), time(9), time(13))
    response = login(desk.cast.manager).post(
        f"/staffing/demo/shifts/{shift.pk}/", {"user": desk.cast.other_librarian.pk}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in text(response)
    assert not Assignment.objects.exists()


# --- templates, generation and auto-fill ----------


def test_a_template_is_saved_and_the_roster_generated_once(desk: Desk) -> None:
    client = login(desk.cast.manager)
    monday = next_monday()

    client.post(
        "/staffing/demo/templates/",
        {
            "service_point": desk.main.pk,
            "weekday": "0",
            "start_time": "09:00",
            "end_time": "13:00",
            "min_staff": "1",
            "max_staff": "2",
            "is_active": "on",
        },
    )
    window = {"start": monday.isoformat(), "end": (monday + timedelta(days=13)).isoformat()}
    first = client.post("/staffing/demo/generate/", window, follow=True)
    second = client.post("/staffing/demo/generate/", window, follow=True)

    assert "2 shifts created" in text(first)
    assert "0 shifts created" in text(second)
    assert Shift.objects.filter(library=desk.cast.library).count() == 2


def test_a_template_with_a_bad_staff_range_is_a_form_error(desk: Desk) -> None:
    response = login(desk.cast.manager).post(
        "/staffing/demo/templates/",
        {
            "service_point": desk.main.pk,
            "weekday": "0",
            "start_time": "09:00",
            "end_time": "13:00",
            "min_staff": "3",
            "max_staff": "1",
        },
    )
    assert response.status_code == 200
    assert "The maximum must be at least the minimum" in text(response)
    assert not ShiftTemplate.objects.exists()


def test_a_template_of_another_librarys_desk_is_refused(desk: Desk) -> None:
    response = login(desk.cast.manager).post(
        "/staffing/demo/templates/",
        {
            "service_point": desk.other_desk.pk,
            "weekday": "0",
            "start_time": "09:00",
            "end_time": "13:00",
            "min_staff": "1",
            "max_staff": "1",
        },
    )
    assert response.status_code == 200
    assert not ShiftTemplate.objects.exists()


def test_generating_a_backwards_range_says_why(desk: Desk) -> None:
    response = login(desk.cast.manager).post(
        "/staffing/demo/generate/", {"start": "2027-01-10", "end": "2027-01-01"}, follow=True
    )
    assert "The last date is before the first date." in text(response)


def test_autofill_proposes_and_changes_nothing_until_confirmed(desk: Desk) -> None:
    monday = next_monday()
    shift = desk.shift(monday, time(9), time(13))
    Availability.objects.create(
        library=desk.cast.library,
        user=desk.colleague,
        weekday=Weekday.MONDAY,
        start_time=time(8),
        end_time=time(18),
    )
    client = login(desk.cast.manager)

    html = text(client.get(f"/staffing/demo/coverage/?week={monday}&propose=1"))

    value = f"{shift.pk}-{desk.colleague.pk}"
    assert f'value="{value}"' in html
    assert not Assignment.objects.exists()
    response = client.post(
        "/staffing/demo/coverage/apply/", {"proposal": [value], "week": monday.isoformat()}
    )
    assert response.status_code == 302
    assert Assignment.objects.active().get(shift=shift).user == desk.colleague


def test_autofill_refuses_a_forged_proposal(desk: Desk) -> None:
    theirs = desk.shift(next_monday(), time(9), time(13), point=desk.other_desk)
    client = login(desk.cast.manager)

    for forged in [f"{theirs.pk}-{desk.colleague.pk}", "1;2", ""]:
        response = client.post(
            "/staffing/demo/coverage/apply/", {"proposal": [forged]}, follow=True
        )
        assert response.status_code == 200
    assert not Assignment.objects.exists()


# --- the roster CSV ----------


def test_roster_csv_for_the_manager_with_local_times(desk: Desk) -> None:
    monday = next_monday()
    desk.shift(monday, time(9), time(13), staff=(desk.cast.librarian,))

    response = login(desk.cast.manager).get(
        f"/staffing/demo/roster.csv?from={monday}&to={monday + timedelta(days=6)}"
    )

    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines[0] == "date,start,end,service_point,staff"
    assert lines[1] == f"{monday},09:00,13:00,Main desk,Lena"


@pytest.mark.parametrize(
    "query",
    ["", "?from=2026-11-01", "?from=2026-13-01&to=2026-11-07", "?from=2026-11-07&to=2026-11-01"],
)
def test_roster_csv_with_bad_dates_is_400_with_a_message(desk: Desk, query: str) -> None:
    response = login(desk.cast.manager).get(f"/staffing/demo/roster.csv{query}")
    assert response.status_code == 400
    assert response.content


def test_roster_csv_is_not_for_a_librarian(desk: Desk) -> None:
    response = login(desk.cast.librarian).get(
        "/staffing/demo/roster.csv?from=2026-11-01&to=2026-11-07"
    )
    assert response.status_code == 404


def test_approving_time_off_on_the_page_flags_the_shift_in_the_week_view(desk: Desk) -> None:
    monday = next_monday()
    desk.shift(monday, time(9), time(13), staff=(desk.cast.librarian,))
    request = time_off_request(
        user=desk.cast.librarian,
        library=desk.cast.library,
        start=ny(monday, time(0)),
        end=ny(monday, time(23)),
    )
    manager = login(desk.cast.manager)

    response = manager.post(
        f"/staffing/demo/approvals/time-off/{request.pk}/approve/",
        {"note": "Get well"},
        follow=True,
    )

    assert "Approved." in text(response)
    request.refresh_from_db()
    assert (request.status, request.decision_note) == (RequestStatus.APPROVED, "Get well")
    week = text(manager.get(f"/staffing/demo/week/?week={monday}"))
    assert "Approved time off" in week
    assert "Conflict: Approved time off" in week


def test_editing_a_template_moves_its_future_open_shifts(desk: Desk) -> None:
    client = login(desk.cast.manager)
    template = ShiftTemplate.objects.create(
        library=desk.cast.library,
        service_point=desk.main,
        weekday=Weekday.MONDAY,
        start_time=time(9),
        end_time=time(13),
    )
    monday = next_monday()
    client.post("/staffing/demo/generate/", {"start": monday, "end": monday})

    response = client.post(
        f"/staffing/demo/templates/{template.pk}/",
        {
            "service_point": desk.main.pk,
            "weekday": "0",
            "start_time": "10:00",
            "end_time": "14:00",
            "min_staff": "1",
            "max_staff": "1",
            "is_active": "on",
        },
        follow=True,
    )

    assert "Future open shifts that changed with it: 1." in text(response)
    shift = Shift.objects.get(template=template)
    assert shift.start == ny(monday, time(10))
    assert (
        login(desk.cast.librarian).get(f"/staffing/demo/templates/{template.pk}/").status_code
        == 404
    )
