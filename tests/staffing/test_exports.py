"""The personal iCalendar feed and the roster CSV, and the two URLs that serve them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.test import Client, RequestFactory
from icalendar import Calendar

from reflib.models import Role
from reflib.services import staff_upsert
from staffing.exports import calendar_feed, roster_csv
from staffing.feeds import calendar_feed_view, roster_csv_view
from staffing.models import Assignment, CalendarFeed
from staffing.selectors import feed_secret, feed_user
from staffing.services import calendar_feed_reset, shift_cancel, shift_unassign
from tests.staffing.conftest import Desk

NOW = datetime(2026, 10, 20, 12, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


def _events(feed: bytes) -> dict[str, Any]:
    calendar = Calendar.from_ical(feed)
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def test_the_feed_parses_back_with_local_times_and_the_librarys_zone(desk: Desk) -> None:
    lena = desk.cast.librarian
    desk.shift(date(2026, 10, 31), time(22), time(6), staff=(lena,))
    desk.shift(date(2026, 11, 2), time(9), time(13), point=desk.chat, staff=(lena,))
    desk.shift(date(2026, 11, 2), time(14), time(15), staff=(desk.colleague,))

    calendar = Calendar.from_ical(calendar_feed(user=lena, now=NOW))

    (zone,) = calendar.walk("VTIMEZONE")
    assert str(zone["TZID"]) == "America/New_York"
    night, morning = sorted(calendar.walk("VEVENT"), key=lambda event: event.decoded("DTSTART"))
    assert night["DTSTART"].params["TZID"] == "America/New_York"
    start, end = night.decoded("DTSTART"), night.decoded("DTEND")
    assert (start.hour, end.hour) == (22, 6)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=9)
    assert morning.decoded("DTSTART") == datetime(2026, 11, 2, 9, tzinfo=NEW_YORK)
    assert str(morning["SUMMARY"]) == "Chat (Demo Public Library)"
    assert str(morning["STATUS"]) == "CONFIRMED"
    assert str(calendar["METHOD"]) == "PUBLISH"


def test_uids_are_stable_and_a_removal_is_a_cancellation_with_a_higher_sequence(
    desk: Desk,
) -> None:
    lena, mara = desk.cast.librarian, desk.cast.manager
    kept = desk.shift(date(2026, 11, 2), time(9), time(13), staff=(lena,))
    dropped = desk.shift(date(2026, 11, 3), time(9), time(13), staff=(lena,))
    cancelled = desk.shift(date(2026, 11, 4), time(9), time(13), staff=(lena,))

    before = _events(calendar_feed(user=lena, now=NOW))
    again = _events(calendar_feed(user=lena, now=NOW))
    shift_unassign(assignment=Assignment.objects.get(shift=dropped), by=mara)
    shift_cancel(shift=cancelled, by=mara)
    after = _events(calendar_feed(user=lena, now=NOW))

    assert len(before) == 3
    assert set(before) == set(again) == set(after)
    for uid in before:
        assert uid.startswith("staffing-assignment-")
        assert uid.endswith("@127.0.0.1")
    by_shift = {
        shift.pk: f"staffing-assignment-{Assignment.objects.get(shift=shift).pk}@127.0.0.1"
        for shift in (kept, dropped, cancelled)
    }
    assert str(after[by_shift[kept.pk]]["STATUS"]) == "CONFIRMED"
    assert int(after[by_shift[kept.pk]]["SEQUENCE"]) == 0
    for shift in (dropped, cancelled):
        event = after[by_shift[shift.pk]]
        assert str(event["STATUS"]) == "CANCELLED"
        assert int(event["SEQUENCE"]) == 1


def test_the_feed_leaves_out_shifts_long_past(desk: Desk) -> None:
    lena = desk.cast.librarian
    desk.shift(date(2026, 7, 1), time(9), time(13), staff=(lena,))
    desk.shift(date(2026, 10, 1), time(9), time(13), staff=(lena,))
    assert len(_events(calendar_feed(user=lena, now=NOW))) == 1


def test_the_feed_secret_is_stored_hashed_and_resetting_it_retires_the_old_url(
    desk: Desk,
) -> None:
    lena = desk.cast.librarian
    desk.shift(date(2026, 11, 2), time(9), time(13), staff=(lena,))
    assert feed_secret(user=lena) is None

    first = calendar_feed_reset(user=lena)
    stored = CalendarFeed.objects.get(user=lena)
    assert first not in (stored.token_hash, stored.nonce)
    assert feed_secret(user=lena) == first
    assert feed_user(secret=first) == lena

    second = calendar_feed_reset(user=lena)
    assert second != first
    assert feed_user(secret=first) is None
    assert feed_user(secret=second) == lena

    response = calendar_feed_view(RequestFactory().get("/"), secret=second)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert len(_events(response.content)) == 1
    with pytest.raises(Http404):
        calendar_feed_view(RequestFactory().get("/"), secret=first)
    with pytest.raises(Http404):
        calendar_feed_view(RequestFactory().get("/"), secret="")
    lena.is_active = False
    lena.save()
    with pytest.raises(Http404):
        calendar_feed_view(RequestFactory().get("/"), secret=second)


def test_the_roster_csv_is_exact(desk: Desk) -> None:
    lena, cleo = desk.cast.librarian, desk.colleague
    desk.shift(date(2026, 11, 2), time(9), time(13), staff=(lena, cleo))
    desk.shift(date(2026, 11, 2), time(9), time(13), point=desk.chat, min_staff=2, staff=(cleo,))
    desk.shift(date(2026, 11, 3), time(22), time(6))
    desk.shift(date(2026, 11, 4), time(9), time(13), staff=(lena,))  # after the range
    cancelled = desk.shift(date(2026, 11, 3), time(9), time(13), staff=(lena,))
    cancelled.is_cancelled = True
    cancelled.save()
    desk.shift(
        date(2026, 11, 2),
        time(9),
        time(13),
        point=desk.other_desk,
        staff=(desk.cast.other_librarian,),
    )

    text = roster_csv(library=desk.cast.library, start=date(2026, 11, 2), end=date(2026, 11, 3))

    assert text == (
        "date,start,end,service_point,staff\r\n"
        "2026-11-02,09:00,13:00,Chat,Cleo\r\n"
        "2026-11-02,09:00,13:00,Chat,\r\n"
        "2026-11-02,09:00,13:00,Main desk,Cleo\r\n"
        "2026-11-02,09:00,13:00,Main desk,Lena\r\n"
        "2026-11-03,22:00,06:00,Main desk,\r\n"
    )


def test_the_roster_csv_defuses_spreadsheet_formulas(desk: Desk) -> None:
    staff_upsert(
        username="cleo",
        library=desk.cast.library,
        role=Role.LIBRARIAN,
        display_name="=HYPERLINK(1)",
    )
    desk.shift(date(2026, 11, 2), time(9), time(13), staff=(desk.colleague,))
    text = roster_csv(library=desk.cast.library, start=date(2026, 11, 2), end=date(2026, 11, 2))
    assert text.splitlines()[1] == "2026-11-02,09:00,13:00,Main desk,'=HYPERLINK(1)"


def _csv(user: User | AnonymousUser, library: str = "demo", **params: str) -> HttpResponse:
    request = RequestFactory().get("/staffing/demo/roster.csv", params)
    request.user = user
    return roster_csv_view(request, library=library)


def test_the_roster_csv_url_serves_the_librarys_managers(desk: Desk) -> None:
    desk.shift(date(2026, 11, 2), time(9), time(13), staff=(desk.cast.librarian,))
    response = _csv(desk.cast.manager, **{"from": "2026-11-02", "to": "2026-11-08"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="roster-demo-2026-11-02-2026-11-08.csv"'
    )
    assert response.content.decode().splitlines()[1] == "2026-11-02,09:00,13:00,Main desk,Lena"


@pytest.mark.urls("tests.staffing.admin_urls")
def test_the_roster_csv_url_is_closed_to_other_libraries_and_to_librarians(desk: Desk) -> None:
    dates = {"from": "2026-11-02", "to": "2026-11-08"}
    other_manager = staff_upsert(
        username="oona", library=desk.cast.other_library, role=Role.MANAGER
    )
    with pytest.raises(Http404):
        _csv(other_manager, **dates)
    with pytest.raises(Http404):
        _csv(desk.cast.librarian, **dates)
    with pytest.raises(Http404):
        _csv(desk.cast.manager, library="nowhere", **dates)
    with pytest.raises(PermissionDenied):
        _csv(User.objects.create(username="stranger"), **dates)
    assert _csv(AnonymousUser(), **dates).status_code == 302


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"to": "2026-11-08"}, "'from' must be a date as YYYY-MM-DD, not ''"),
        ({"from": "2026-11-02", "to": "08/11/2026"}, "'to' must be a date as YYYY-MM-DD"),
        ({"from": "2026-11-09", "to": "2026-11-08"}, "'to' is before 'from'"),
        ({"from": "2026-01-01", "to": "2027-06-01"}, "at most 366 days"),
    ],
)
def test_the_roster_csv_url_explains_bad_dates(
    desk: Desk, params: dict[str, str], message: str
) -> None:
    response = _csv(desk.cast.manager, **params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_feed_and_the_csv_are_served_at_their_addresses(desk: Desk) -> None:
    lena = desk.cast.librarian
    desk.shift(date(2026, 11, 2), time(9), time(13), staff=(lena,))
    secret = calendar_feed_reset(user=lena)
    anonymous = Client()

    feed = anonymous.get(f"/staffing/feed/{secret}.ics")
    assert feed.status_code == 200
    assert feed["Content-Type"] == "text/calendar; charset=utf-8"
    assert feed.content.startswith(b"BEGIN:VCALENDAR")
    wrong = ("e" if secret[0] == "f" else "f") + secret[1:]
    assert anonymous.get(f"/staffing/feed/{wrong}.ics").status_code == 404
    assert (
        anonymous.get("/staffing/demo/roster.csv?from=2026-11-02&to=2026-11-02").status_code == 302
    )

    csv_url = "/staffing/demo/roster.csv?from=2026-11-02&to=2026-11-02"
    manager = desk.cast.client_for(desk.cast.manager)
    assert manager.get(csv_url).content.decode().splitlines() == [
        "date,start,end,service_point,staff",
        "2026-11-02,09:00,13:00,Main desk,Lena",
    ]
    other_manager = staff_upsert(
        username="oona", library=desk.cast.other_library, role=Role.MANAGER
    )
    assert desk.cast.client_for(other_manager).get(csv_url).status_code == 404
