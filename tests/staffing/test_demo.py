"""The demo's staffing: a real roster around today, without conflicts, seeded once."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.utils import timezone

from reflib.demo import seed_demo
from reflib.models import Library
from staffing.conflicts import roster_conflicts
from staffing.models import (
    Assignment,
    Availability,
    OpeningHours,
    RequestStatus,
    Shift,
    SwapOffer,
    SwapStatus,
    TimeOffRequest,
)
from staffing.selectors import queue_opens_at


def test_seed_demo_gives_the_demo_a_roster_four_weeks_either_side_of_today(db: None) -> None:
    summary = seed_demo(history=True)

    library = Library.objects.get(slug="demo")
    today = timezone.now().astimezone(library.zone).date()
    monday = today - timedelta(days=today.weekday())
    dates = Shift.objects.filter(library=library).values_list("date", flat=True)
    assert min(dates) == monday - timedelta(weeks=4)
    assert max(dates) == monday + timedelta(weeks=4, days=-1)
    assert any(line.startswith("Staffing: 43 shift templates") for line in summary)
    assert OpeningHours.objects.filter(library=library).exists()
    assert Availability.objects.filter(library=library, user__username="librarian").exists()
    assert Assignment.objects.filter(shift__library=library).count() > 250
    assert roster_conflicts(library=library, start=min(dates), end=max(dates)) == {}
    offer = SwapOffer.objects.get()
    assert offer.status == SwapStatus.CLAIMED
    assert offer.assignment.user.username == "librarian"
    assert TimeOffRequest.objects.get().status == RequestStatus.PENDING
    assert queue_opens_at(queue=library.queues.get(slug="general"), now=timezone.now())
    assert mail.outbox == []


def test_seed_demo_seeds_staffing_once(db: None) -> None:
    seed_demo(history=True)
    counts = (Shift.objects.count(), Assignment.objects.count(), SwapOffer.objects.count())

    summary = seed_demo(history=True)

    assert "Staffing: already present" in summary
    assert (Shift.objects.count(), Assignment.objects.count(), SwapOffer.objects.count()) == counts
