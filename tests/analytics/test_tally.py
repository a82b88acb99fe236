"""The desk's tally: one request counts, choices are remembered, undo is brief and personal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.models import CategoryKind, Source, Transaction
from analytics.services import TALLY_UNDO_SECONDS
from reflib.models import ServicePoint
from tests.analytics.conftest import category
from tests.conftest import Cast


def count(client: Client, **data: object) -> dict[str, Any]:
    response = client.post(reverse("analytics_tally"), data)
    assert response.status_code == 201, response.content
    result: dict[str, Any] = response.json()
    return result


def test_one_post_counts_a_desk_question_with_its_details(cast: Cast) -> None:
    desk = ServicePoint.objects.create(library=cast.library, slug="main-desk", name="Main desk")
    client = cast.client_for(cast.librarian)
    phone = category(cast.library, CategoryKind.FORMAT, "phone")
    policy = category(cast.library, CategoryKind.QUESTION_TYPE, "policy")

    result = count(
        client,
        library="demo",
        service_point=desk.pk,
        format=phone.pk,
        question_type=policy.pk,
        read_level=2,
        note="Asked about fines for lost items",
    )

    recorded = Transaction.objects.get(pk=result["id"])
    assert (recorded.library, recorded.service_point, recorded.format) == (
        cast.library,
        desk,
        phone,
    )
    assert (recorded.question_type, recorded.read_level) == (policy, 2)
    assert recorded.staff == cast.librarian
    assert recorded.source == Source.TALLY
    assert recorded.note == "Asked about fines for lost items"
    assert result["summary"] == "Phone, Policy, READ 2"


def test_the_form_shows_the_read_definitions_and_remembers_the_service_point_and_format(
    cast: Cast,
) -> None:
    desk = ServicePoint.objects.create(library=cast.library, slug="science", name="Science desk")
    client = cast.client_for(cast.librarian)
    email = category(cast.library, CategoryKind.FORMAT, "email")

    first = client.get(reverse("analytics_tally_form")).content.decode()
    assert "Least effort" in first
    assert "in-depth research" in first.lower()
    assert ">Chat<" not in first  # chats count themselves
    count(client, library="demo", service_point=desk.pk, format=email.pk)

    again = client.get(reverse("analytics_tally_form"))
    assert again.context["form"].initial == {"service_point": desk.pk, "format": email.pk}
    assert f'value="{desk.pk}" selected' in again.content.decode()


def test_a_librarian_cannot_count_for_another_library(cast: Cast) -> None:
    client = cast.client_for(cast.other_librarian)
    desk = category(cast.library, CategoryKind.FORMAT, "desk")

    response = client.post(reverse("analytics_tally"), {"library": "demo", "format": desk.pk})

    assert response.status_code == 404
    assert not Transaction.objects.exists()


def test_another_librarys_format_is_refused(cast: Cast) -> None:
    client = cast.client_for(cast.librarian)
    foreign = category(cast.other_library, CategoryKind.FORMAT, "desk")

    response = client.post(reverse("analytics_tally"), {"library": "demo", "format": foreign.pk})

    assert response.status_code == 400
    assert "format" in response.json()["errors"]
    assert not Transaction.objects.exists()


def test_undo_takes_back_ones_own_tally_within_the_window_only(cast: Cast) -> None:
    desk = category(cast.library, CategoryKind.FORMAT, "desk")
    client = cast.client_for(cast.librarian)
    first = count(client, library="demo", format=desk.pk)
    second = count(client, library="demo", format=desk.pk)

    colleague = cast.client_for(cast.manager)
    assert colleague.post(str(first["undo"])).status_code == 409
    assert client.post(str(first["undo"])).json() == {"undone": True}
    Transaction.objects.filter(pk=second["id"]).update(
        created_at=timezone.now() - timedelta(seconds=TALLY_UNDO_SECONDS + 1)
    )
    late = client.post(str(second["undo"]))

    assert late.status_code == 409
    assert list(Transaction.objects.values_list("pk", flat=True)) == [second["id"]]


def test_the_tally_needs_a_librarian(cast: Cast) -> None:
    response = Client().get(reverse("analytics_tally_form"))

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
