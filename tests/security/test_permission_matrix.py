"""The permission matrix: every HTTP endpoint, tried as everyone who might try it.

Each row is one endpoint (or one admin change list) with the outcome expected for each actor,
in the order of ``ACTORS``. A new endpoint is one more row. Outcomes: an HTTP status, or
``login`` (a redirect to a login page). Whatever the outcome, an actor who may not see the
demo library's conversations must find none of its secrets in the answer (``SECRETS``).

Actors: ``anonymous``; ``other_patron`` holds the token of another conversation; ``patron``
holds the token of the conversation in question (the positive control of the patron API);
``other_librarian`` and ``other_manager`` belong to another library; ``former_member`` was a
librarian of the demo library and took part in the conversation, then left the library;
``librarian`` and ``manager`` belong to the demo library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import Settings

from analytics.models import CategoryKind
from analytics.report_services import report_build
from analytics.services import transaction_tally
from chat import services
from chat.models import Participant, Presence, Sender
from reflib.admin import LibraryScopedAdmin
from reflib.models import Membership, Role
from reflib.services import service_point_ensure, staff_upsert
from staffing.models import Assignment, Shift
from staffing.services import swap_offer
from staffing.wallclock import local_span
from tests.analytics.conftest import category
from tests.chat.conftest import Started, start, start_accepted
from tests.chat.test_api import png_bytes
from tests.conftest import PASSWORD, Cast
from tests.staffing.conftest import next_monday

ACTORS = (
    "anonymous",
    "other_patron",
    "patron",
    "other_librarian",
    "librarian",
    "other_manager",
    "former_member",
    "manager",
)
# Who may read the demo library's conversations (the patron only their own).
SEES_DEMO = {"patron", "librarian", "manager"}
SECRET_QUESTION = "Where is the sealed 1911 census of Smallville?"
SECRET_EMAIL = "secret.patron@example.org"
SECRET_TICKET = "Please find my grandmother's adoption record"
SECRETS = (SECRET_QUESTION, SECRET_EMAIL, SECRET_TICKET)


@dataclass
class World:
    cast: Cast
    chat: Started  # active, answered by the librarian; the former member took part
    ended: Started  # closed a moment ago
    waiting: Started  # queued
    other: Started  # another patron's conversation
    file_url: str
    ticket_id: str
    ticket_key: str
    shift_id: int
    assignment_id: int
    offer_id: int
    tally_id: int
    report_day: str
    users: dict[str, User]

    def conversation(self, name: str) -> Started:
        return {"chat": self.chat, "ended": self.ended, "waiting": self.waiting}[name]


@pytest.fixture
def world(cast: Cast, settings: Settings, tmp_path: Any) -> World:
    settings.REFLIB_RATE_MAIL_RECIPIENT = (10_000, 3600)
    settings.REFLIB_RATE_SESSION_START = (10_000, 600)
    Presence.objects.create(user=cast.librarian, state="available")
    former = staff_upsert(
        username="fran", library=cast.library, role=Role.LIBRARIAN, password=PASSWORD
    )
    other_manager = staff_upsert(
        username="omar", library=cast.other_library, role=Role.MANAGER, password=PASSWORD
    )
    chat = start_accepted(cast.queue, cast.librarian, question=SECRET_QUESTION)
    services.conversation_email_set(conversation_id=chat.pk, email=SECRET_EMAIL)
    Participant.objects.create(conversation_id=chat.pk, user=former)
    Membership.objects.filter(user=former).delete()
    file_event = services.file_attach(
        conversation_id=chat.pk,
        sender=Sender.PATRON,
        author=None,
        upload=SimpleUploadedFile("a.png", png_bytes()),
        content_type="image/png",
        filename="a.png",
    )
    ended = start_accepted(cast.queue, cast.librarian, question=SECRET_QUESTION)
    services.conversation_close(conversation_id=ended.pk, user=cast.librarian)
    waiting = start(cast.queue, SECRET_QUESTION)
    other = start(cast.queue, "Another patron's own question")
    created = services.ticket_create(
        queue=cast.queue, question=SECRET_TICKET, email=SECRET_EMAIL, name="Pat"
    )
    point = service_point_ensure(library=cast.library, slug="main-desk", name="Main desk")
    day = next_monday()
    begin, finish = local_span(day, time(9), time(13), cast.library.zone)
    shift = Shift.objects.create(
        library=cast.library, service_point=point, date=day, start=begin, end=finish
    )
    assignment = Assignment.objects.create(shift=shift, user=cast.librarian)
    offer = swap_offer(assignment=assignment, by=cast.librarian)
    tallied = transaction_tally(
        library=cast.library,
        user=cast.librarian,
        format=category(cast.library, CategoryKind.FORMAT, "desk"),
    )
    report_day = timezone.now().astimezone(cast.library.zone).date() - timedelta(days=1)
    report_build(library=cast.library, day=report_day)
    return World(
        cast=cast,
        chat=chat,
        ended=ended,
        waiting=waiting,
        other=other,
        file_url=file_event.data["url"],
        ticket_id=created.ticket.public_id,
        ticket_key=created.access_key,
        shift_id=shift.pk,
        assignment_id=assignment.pk,
        offer_id=offer.pk,
        tally_id=tallied.pk,
        report_day=report_day.isoformat(),
        users={
            "other_librarian": cast.other_librarian,
            "librarian": cast.librarian,
            "other_manager": other_manager,
            "former_member": former,
            "manager": cast.manager,
        },
    )


Body = Callable[[World], dict[str, Any]] | None


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: Callable[[World], str]
    expect: str  # one outcome per actor, in the order of ACTORS
    body: Body = None
    conversation: str = "chat"  # whose token the patron holds
    json: bool = True

    def outcomes(self) -> dict[str, str]:
        tokens = self.expect.split()
        assert len(tokens) == len(ACTORS), self.name
        return dict(zip(ACTORS, tokens, strict=True))


def api(tail: str = "", conversation: str = "chat") -> Callable[[World], str]:
    def path(w: World) -> str:
        return f"/api/v1/conversations/{w.conversation(conversation).public_id}/{tail}"

    return path


def fixed(path: str) -> Callable[[World], str]:
    return lambda w: path


def a_png(w: World) -> dict[str, Any]:
    return {"file": SimpleUploadedFile("p.png", png_bytes(), content_type="image/png")}


#                                 anon  o.pat  pat   o.lib lib   o.mgr former mgr
PUBLIC = "                        200   200    200   200   200   200   200    200"
STAFF_PAGE = "                    login login  login 200   200   200   403    200"
STAFF_JSON = "                    401   401    401   200   200   200   403    200"

ROWS: list[Row] = [
    # --- patron HTTP API (PROTOCOL.md) ---
    Row("api schema", "GET", fixed("/api/schema/"), PUBLIC),
    Row("queue status", "GET", fixed("/api/v1/queues/demo/general/"), PUBLIC),
    Row(
        "start a chat",
        "POST",
        fixed("/api/v1/conversations/"),
        "201 201 201 201 201 201 201 201",
        body=lambda w: {"queue": "demo/general", "question": "Hello?"},
    ),
    Row(
        "leave a ticket",
        "POST",
        fixed("/api/v1/tickets/"),
        "201 201 201 201 201 201 201 201",
        body=lambda w: {"queue": "demo/general", "question": "Hello?", "email": "a@example.org"},
    ),
    Row("erase a conversation", "DELETE", api(), "401 404 204 401 401 401 401 401"),
    Row(
        "upload a file",
        "POST",
        api("files"),
        "401 404 201 401 401 401 401 401",
        body=a_png,
        json=False,
    ),
    Row(
        "download a file",
        "GET",
        lambda w: w.file_url,
        "401 404 200 404 200 404 404 200",
    ),
    Row(
        "rate",
        "POST",
        api("rating", "ended"),
        "401 404 200 401 401 401 401 401",
        body=lambda w: {"score": 5},
        conversation="ended",
    ),
    Row(
        "e-mail a transcript",
        "POST",
        api("transcript", "ended"),
        "401 404 202 401 401 401 401 401",
        body=lambda w: {},
        conversation="ended",
    ),
    Row(
        "confirm an address",
        "POST",
        api("email"),
        "401 404 200 401 401 401 401 401",
        body=lambda w: {"email": "pat@example.org"},
    ),
    Row(
        "leave a waiting chat as a ticket",
        "POST",
        api("ticket", "waiting"),
        "401 404 201 401 401 401 401 401",
        body=lambda w: {"email": "pat@example.org"},
        conversation="waiting",
    ),
    # --- widget and the patron's ticket page ---
    Row("widget loader", "GET", fixed("/widget.js"), PUBLIC),
    Row("widget panel", "GET", fixed("/widget/demo/general/"), PUBLIC),
    Row(
        "ticket page without its key",
        "GET",
        lambda w: f"/tickets/{w.ticket_id}/",
        PUBLIC,
    ),
    Row(
        "ticket page: an old link with the key in the path",
        "GET",
        lambda w: f"/tickets/{w.ticket_id}/{w.ticket_key}/",
        "302 302 302 302 302 302 302 302",
    ),
    Row(
        "ticket page: open with a wrong key",
        "POST",
        lambda w: f"/tickets/{w.ticket_id}/open/",
        "404 404 404 404 404 404 404 404",
        body=lambda w: {"key": "x" * len(w.ticket_key)},
    ),
    Row(
        "ticket page with a wrong key",
        "GET",
        lambda w: f"/tickets/{w.ticket_id}/{'x' * len(w.ticket_key)}/",
        "404 404 404 404 404 404 404 404",
    ),
    # --- desk pages and JSON helpers ---
    Row("desk", "GET", fixed("/desk/"), STAFF_PAGE),
    Row("desk shift", "GET", fixed("/desk/shift/"), STAFF_PAGE),
    Row(
        "desk: stay after shift",
        "POST",
        fixed("/desk/shift/stay/"),
        STAFF_PAGE.replace("200", "302"),
        body=lambda w: {},
    ),
    Row("desk tickets", "GET", fixed("/desk/tickets/"), STAFF_PAGE),
    Row(
        "desk ticket",
        "GET",
        lambda w: f"/desk/tickets/{w.ticket_id}/",
        "login login login 404 200 404 403 200",
    ),
    Row(
        "desk ticket: assign",
        "POST",
        lambda w: f"/desk/tickets/{w.ticket_id}/assign/",
        "login login login 404 302 404 403 302",
        body=lambda w: {"assignee": ""},
    ),
    Row(
        "desk ticket: answer",
        "POST",
        lambda w: f"/desk/tickets/{w.ticket_id}/answer/",
        "login login login 404 302 404 403 302",
        body=lambda w: {"body": "The answer."},
    ),
    Row(
        "desk ticket: close",
        "POST",
        lambda w: f"/desk/tickets/{w.ticket_id}/close/",
        "login login login 404 302 404 403 302",
        body=lambda w: {},
    ),
    Row("desk api: colleagues", "GET", fixed("/desk/api/colleagues/"), STAFF_JSON),
    Row("desk api: canned responses", "GET", fixed("/desk/api/canned-responses/"), STAFF_JSON),
    Row(
        "desk api: conversation",
        "GET",
        lambda w: f"/desk/api/conversations/{w.chat.public_id}/",
        "401 401 401 404 200 404 403 200",
    ),
    Row(
        "desk api: share a file",
        "POST",
        lambda w: f"/desk/api/conversations/{w.chat.public_id}/files/",
        "401 401 401 404 201 404 403 403",
        body=a_png,
        json=False,
    ),
    # --- staffing pages and exports ---
    Row("staffing: my shifts", "GET", fixed("/staffing/"), STAFF_PAGE),
    Row("staffing: open shifts", "GET", fixed("/staffing/open/"), STAFF_PAGE),
    Row("staffing: availability", "GET", fixed("/staffing/availability/"), STAFF_PAGE),
    Row("staffing: time off", "GET", fixed("/staffing/time-off/"), STAFF_PAGE),
    Row(
        "staffing: week",
        "GET",
        fixed("/staffing/demo/week/"),
        "login login login 404 404 404 403 200",
    ),
    Row(
        "staffing: shift",
        "GET",
        lambda w: f"/staffing/demo/shifts/{w.shift_id}/",
        "login login login 404 404 404 403 200",
    ),
    Row(
        "staffing: unassign",
        "POST",
        lambda w: f"/staffing/demo/assignments/{w.assignment_id}/remove/",
        "login login login 404 404 404 403 302",
        body=lambda w: {"reason": "test"},
    ),
    Row(
        "staffing: templates",
        "GET",
        fixed("/staffing/demo/templates/"),
        "login login login 404 404 404 403 200",
    ),
    Row(
        "staffing: approvals",
        "GET",
        fixed("/staffing/demo/approvals/"),
        "login login login 404 404 404 403 200",
    ),
    Row(
        "staffing: coverage",
        "GET",
        fixed("/staffing/demo/coverage/"),
        "login login login 404 404 404 403 200",
    ),
    Row(
        "staffing: roster export",
        "GET",
        fixed("/staffing/demo/roster.csv?from=2026-01-05&to=2026-01-11"),
        "login login login 404 404 404 403 200",
    ),
    Row(
        "staffing: withdraw a colleague's offer",
        "POST",
        lambda w: f"/staffing/offers/{w.offer_id}/withdraw/",
        "login login login 404 302 404 403 404",
        body=lambda w: {},
    ),
    Row(
        "staffing: claim an offer",
        "POST",
        lambda w: f"/staffing/offers/{w.offer_id}/claim/",
        "login login login 404 302 404 403 302",
        body=lambda w: {},
    ),
]


MANAGED = "                      login login  login 404   404   404   404    200"
REPORT = "                       login login  login 404   404   404   404    200"
ROWS += [
    # --- analytics: the desk's tally, the managers' CSV exports, the daily reports ---
    Row("analytics: tally form", "GET", fixed("/analytics/tally/form/"), STAFF_PAGE),
    Row(
        "analytics: tally a question",
        "POST",
        fixed("/analytics/tally/"),
        "login login login 400 400 400 403 400",
        body=lambda w: {},
    ),
    Row(
        "analytics: undo a colleague's tally",
        "POST",
        lambda w: f"/analytics/tally/{w.tally_id}/undo/",
        "login login login 409 200 409 403 409",
        body=lambda w: {},
    ),
    *[
        Row(f"analytics: {name}", "GET", fixed(f"/analytics/demo/{name}"), MANAGED)
        for name in (
            "transactions.csv",
            "heatmap.csv",
            "service-levels.csv",
            "volume.csv",
            "read-levels.csv",
            "question-types.csv",
            "coverage.csv",
        )
    ],
    Row("daily report", "GET", lambda w: f"/analytics/demo/reports/{w.report_day}/", REPORT),
    Row(
        "daily report CSV",
        "GET",
        lambda w: f"/analytics/demo/reports/{w.report_day}/csv",
        REPORT,
    ),
]


def _admin_rows() -> list[Row]:
    """Every model's admin change list: staff of a library see their library's rows only;
    models outside any library (accounts, schedules) are for superusers."""
    rows = []
    for model, model_admin in admin.site._registry.items():
        scoped = isinstance(model_admin, LibraryScopedAdmin)
        manager = "200" if scoped else "403"
        rows.append(
            Row(
                f"admin: {model._meta.app_label}.{model._meta.model_name}",
                "GET",
                fixed(
                    reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
                ),
                f"login login login login login {manager} login {manager}",
            )
        )
    return rows


def client_for(world: World, actor: str, row: Row) -> Client:
    client = Client()
    if actor in world.users:
        client.force_login(world.users[actor])
    elif actor == "patron":
        client.defaults["HTTP_AUTHORIZATION"] = (
            f"Bearer {world.conversation(row.conversation).token}"
        )
    elif actor == "other_patron":
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {world.other.token}"
    return client


def outcome(response: Any) -> str:
    if response.status_code == 302 and "/login/" in response["Location"]:
        return "login"
    return str(response.status_code)


def body_text(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


ALL_ROWS = ROWS + _admin_rows()


def check_cell(world: World, row: Row, actor: str) -> None:
    client = client_for(world, actor, row)
    path = row.path(world)
    kwargs: dict[str, Any] = {}
    if row.body is not None:
        body = row.body(world)
        kwargs = {"data": body}
        if row.json and path.startswith("/api/"):  # pages take forms
            kwargs["content_type"] = "application/json"
    response = getattr(client, row.method.lower())(path, **kwargs)
    text = body_text(response)

    assert outcome(response) == row.outcomes()[actor], (row.name, actor, text[:300])
    if actor not in SEES_DEMO:
        for secret in SECRETS:
            assert secret not in text, (row.name, actor, secret)


@pytest.mark.parametrize("row", ALL_ROWS, ids=[row.name for row in ALL_ROWS])
def test_permission_matrix(world: World, row: Row, subtests: pytest.Subtests) -> None:
    """One world per row; each actor's request runs in a savepoint that is rolled back, so
    a write by one actor (an accepted claim, an undone tally) never changes the next cell."""
    for actor in ACTORS:
        with subtests.test(actor=actor), transaction.atomic():
            check_cell(world, row, actor)
            transaction.set_rollback(True)
