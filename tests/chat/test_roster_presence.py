"""The chat follows the roster (SPEC §1.3): who makes a queue online, when it opens, and the
end of a shift at the desk (warning, "I'm staying", away after the grace period)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from chat import selectors, services
from chat.models import Presence, PresenceState
from reflib.services import service_point_ensure
from staffing.models import OpeningHours, Weekday
from tests.chat.roster import on_shift, points
from tests.conftest import Cast

NY = ZoneInfo("America/New_York")


def available(user: User, *, seen: datetime | None = None) -> None:
    services.presence_set(user=user, state=PresenceState.AVAILABLE)
    if seen is not None:
        Presence.objects.filter(user=user).update(seen_at=seen)


def status(client: Client | None = None) -> dict[str, Any]:
    response = (client or Client()).get("/api/v1/queues/demo/general/")
    assert response.status_code == 200
    return dict(response.json())


# --- online: the four cases, and a librarian busy at another desk ----------


def test_rostered_and_present_librarian_makes_the_queue_online(cast: Cast) -> None:
    chat = points(cast).chat
    on_shift(cast.librarian, chat, timezone.now() - timedelta(hours=1))
    available(cast.librarian)

    body = status()

    assert body["online"] is True
    assert body["librarians_available"] == 1
    assert body["opens_at"] is None


def test_rostered_but_absent_librarian_leaves_the_queue_offline(cast: Cast) -> None:
    chat = points(cast).chat
    now = timezone.now()
    on_shift(cast.librarian, chat, now - timedelta(hours=1))
    # Went available, then the desk went silent for longer than the presence timeout.
    available(cast.librarian, seen=now - selectors.PRESENCE_TIMEOUT - timedelta(seconds=1))

    body = status()

    assert body["online"] is False
    assert body["librarians_available"] == 0
    # Rostered now but not there: nobody can say when they come, so no opening is claimed.
    assert body["opens_at"] is None


def test_rostered_librarian_who_is_away_leaves_the_queue_offline(cast: Cast) -> None:
    on_shift(cast.librarian, points(cast).chat, timezone.now() - timedelta(hours=1))
    services.presence_set(user=cast.librarian, state=PresenceState.AWAY)

    assert status()["online"] is False


def test_present_librarian_on_no_shift_covers_and_the_queue_is_online(cast: Cast) -> None:
    chat = points(cast).chat
    on_shift(cast.manager, chat, timezone.now() + timedelta(days=1))  # rostered, but not now
    available(cast.librarian)

    body = status()

    assert body["online"] is True
    assert body["librarians_available"] == 1


def test_nobody_present_leaves_the_queue_offline_and_says_when_it_opens(cast: Cast) -> None:
    chat = points(cast).chat
    tomorrow = (timezone.now().astimezone(NY) + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    on_shift(cast.librarian, chat, tomorrow)

    body = status()

    assert body["online"] is False
    assert body["librarians_available"] == 0
    assert body["opens_at"] == tomorrow.isoformat()
    assert body["opens_at"].endswith(tomorrow.strftime("%z")[:3] + ":00")


def test_librarian_rostered_at_another_desk_now_does_not_answer_the_chat(cast: Cast) -> None:
    desks = points(cast)
    on_shift(cast.librarian, desks.main, timezone.now() - timedelta(hours=1))
    available(cast.librarian)

    assert status()["online"] is False
    # The colleague rostered on the chat point who is there does answer it.
    on_shift(cast.manager, desks.chat, timezone.now() - timedelta(hours=1))
    available(cast.manager)
    body = status()
    assert body["online"] is True
    assert body["librarians_available"] == 1


def test_a_rostered_librarian_of_another_library_never_makes_this_queue_online(
    cast: Cast,
) -> None:
    points(cast)
    available(cast.other_librarian)

    assert status()["online"] is False


def test_starting_a_chat_follows_the_same_rule(cast: Cast) -> None:
    on_shift(cast.librarian, points(cast).main, timezone.now() - timedelta(hours=1))
    available(cast.librarian)

    response = Client().post(
        "/api/v1/conversations/",
        {"queue": "demo/general", "question": "Hours?"},
        content_type="application/json",
    )

    assert response.status_code == 409
    assert response.json()["error"] == "offline"


# --- opens_at in the library's local time ----------


def test_opens_at_is_the_next_open_and_staffed_time_with_the_local_offset(cast: Cast) -> None:
    chat = points(cast).chat
    # The chat opens at 10:00 on Mondays; the shift starts at 09:00.
    OpeningHours.objects.create(
        library=cast.library,
        service_point=chat,
        weekday=Weekday.MONDAY,
        opens=time(10),
        closes=time(17),
    )
    monday = datetime(2026, 11, 16, 9, 0, tzinfo=NY)
    on_shift(cast.librarian, chat, monday)

    opens = selectors.queue_opens_at(cast.queue, now=datetime(2026, 11, 13, 12, 0, tzinfo=NY))

    assert opens == "2026-11-16T10:00:00-05:00"


@pytest.mark.parametrize(
    ("now", "shift_start", "expected"),
    [
        # March: the Friday before the change is -05:00, the Monday after is -04:00.
        (
            datetime(2026, 3, 6, 18, 0, tzinfo=NY),
            datetime(2026, 3, 9, 9, 0, tzinfo=NY),
            "2026-03-09T09:00:00-04:00",
        ),
        # November: the Friday before is -04:00, the Monday after is -05:00.
        (
            datetime(2026, 10, 30, 18, 0, tzinfo=NY),
            datetime(2026, 11, 2, 9, 0, tzinfo=NY),
            "2026-11-02T09:00:00-05:00",
        ),
    ],
)
def test_opens_at_across_a_daylight_saving_change_keeps_the_local_wall_time(
    cast: Cast, now: datetime, shift_start: datetime, expected: str
) -> None:
    on_shift(cast.librarian, points(cast).chat, shift_start)

    assert selectors.queue_opens_at(cast.queue, now=now) == expected


# --- the end of a shift ----------


def ended_shift(cast: Cast, *, ended_ago: timedelta) -> datetime:
    """Lena went available during a shift that ended ``ended_ago``; returns its end."""
    end = timezone.now() - ended_ago
    on_shift(cast.librarian, points(cast).chat, end - timedelta(hours=4))
    available(cast.librarian)
    Presence.objects.filter(user=cast.librarian).update(changed_at=end - timedelta(hours=3))
    return end


def test_sweep_sets_a_librarian_away_after_the_grace_period_past_the_end_of_the_shift(
    cast: Cast, settings: Settings
) -> None:
    settings.REFLIB_SHIFT_END_GRACE_SECONDS = 600
    ended_shift(cast, ended_ago=timedelta(minutes=11))

    result = services.sweep()

    assert result.shifts_ended == 1
    assert selectors.presence_of(cast.librarian) == PresenceState.AWAY
    assert status()["online"] is False


def test_sweep_leaves_a_librarian_available_within_the_grace_period(
    cast: Cast, settings: Settings
) -> None:
    settings.REFLIB_SHIFT_END_GRACE_SECONDS = 600
    ended_shift(cast, ended_ago=timedelta(minutes=5))

    assert services.sweep().shifts_ended == 0
    assert selectors.presence_of(cast.librarian) == PresenceState.AVAILABLE
    # Covering in the grace period: online, since Lena is on no shift now.
    assert status()["online"] is True


def test_a_librarian_who_says_they_stay_is_not_set_away(cast: Cast, settings: Settings) -> None:
    settings.REFLIB_SHIFT_END_GRACE_SECONDS = 600
    ended_shift(cast, ended_ago=timedelta(minutes=5))
    client = cast.client_for(cast.librarian)

    response = client.post("/desk/shift/stay/", headers={"X-Requested-With": "fetch"})

    assert response.status_code == 200
    assert "you said you are staying" in response.content.decode()
    later = timezone.now() + timedelta(minutes=30)
    Presence.objects.filter(user=cast.librarian).update(seen_at=later)
    assert services.sweep(now=later).shifts_ended == 0
    assert selectors.presence_of(cast.librarian) == PresenceState.AVAILABLE


def test_staying_during_the_shift_keeps_me_available_after_it(
    cast: Cast, settings: Settings
) -> None:
    settings.REFLIB_SHIFT_END_GRACE_SECONDS = 60
    now = timezone.now()
    on_shift(cast.librarian, points(cast).chat, now - timedelta(hours=1), hours=2)
    available(cast.librarian)

    response = cast.client_for(cast.librarian).post("/desk/shift/stay/")

    assert response.status_code == 302
    later = now + timedelta(hours=3)
    Presence.objects.filter(user=cast.librarian).update(seen_at=later)
    assert services.sweep(now=later).shifts_ended == 0
    assert selectors.presence_of(cast.librarian) == PresenceState.AVAILABLE


def test_going_available_after_the_shift_ended_is_covering_and_not_swept(
    cast: Cast, settings: Settings
) -> None:
    settings.REFLIB_SHIFT_END_GRACE_SECONDS = 60
    on_shift(cast.librarian, points(cast).chat, timezone.now() - timedelta(hours=5))
    available(cast.librarian)  # an hour after the shift ended

    assert services.sweep().shifts_ended == 0
    assert selectors.presence_of(cast.librarian) == PresenceState.AVAILABLE


def test_staying_without_a_shift_ending_is_refused_with_a_message(cast: Cast) -> None:
    available(cast.librarian)
    client = cast.client_for(cast.librarian)

    response = client.post("/desk/shift/stay/", follow=True)

    assert "You have no shift ending now to stay on after." in response.content.decode()
    assert Presence.objects.get(user=cast.librarian).staying_after is None


def test_desk_warns_when_my_shift_has_ended_and_names_the_away_time(
    cast: Cast, settings: Settings
) -> None:
    settings.REFLIB_SHIFT_END_GRACE_SECONDS = 600
    end = ended_shift(cast, ended_ago=timedelta(minutes=2))

    html = cast.client_for(cast.librarian).get("/desk/shift/").content.decode()

    assert 'id="shift-ended"' in html
    assert "No roster yet" not in html
    assert "None planned" in html
    assert "Your shift has ended." in html
    away = (end + timedelta(minutes=10)).astimezone(NY)
    assert f"you will be set away at {away:%H:%M} unless you stay" in html
    assert "I&#x27;m staying" in html or "I'm staying" in html
    assert mail.outbox == []


def test_desk_shows_my_current_and_next_shift_and_who_else_is_rostered(cast: Cast) -> None:
    desks = points(cast)
    now = timezone.now()
    current = on_shift(cast.librarian, desks.chat, now - timedelta(hours=1), hours=3)
    upcoming = on_shift(cast.librarian, desks.main, now + timedelta(days=2))
    on_shift(cast.manager, desks.main, now - timedelta(minutes=30))
    elsewhere = service_point_ensure(library=cast.other_library, slug="main", name="Main")
    on_shift(cast.other_librarian, elsewhere, now - timedelta(minutes=30))

    html = cast.client_for(cast.librarian).get("/desk/").content.decode()

    assert "No roster yet" not in html
    start = current.start.astimezone(NY)
    end = current.end.astimezone(NY)
    assert f"Chat, {start:%H:%M}\N{EN DASH}{end:%H:%M}" in html
    assert f"Main desk, {upcoming.start.astimezone(NY):%a %-d %b %H:%M}" in html
    assert "Mara — Main desk" in html
    assert "(not at the desk)" in html
    assert "Otto" not in html
    assert f'data-ends-at="{current.end.isoformat()}"' in html
