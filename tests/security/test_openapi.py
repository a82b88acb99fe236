"""The OpenAPI description of the patron API: valid, and as strict as the API.

A client generated from it must not be refused what it was told it could send, and nothing
generated from it may make the server fail. Schemathesis generates requests from the
description (bounded, so the run stays short) against the real Django application, with a
real queue, a real conversation and its token, so the handlers behind validation run too.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from pytest_django import Settings
from schemathesis.core.result import Ok

from chat.models import Presence
from tests.chat.conftest import start
from tests.conftest import Cast

EXAMPLES = 300


def description() -> dict[str, Any]:
    response = Client().get("/api/schema/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    spec = response.json()
    assert isinstance(spec, dict)
    return spec


def test_the_openapi_description_is_valid(db: None) -> None:
    validate(description())  # raises on any error


def test_the_description_states_the_queue_address_and_lengths(db: None) -> None:
    schemas = description()["components"]["schemas"]
    for name in ("ConversationStartRequest", "TicketCreateRequest"):
        schema = schemas.get(name) or schemas[name.removesuffix("Request")]
        queue = schema["properties"]["queue"]
        assert queue["pattern"] == "^[-a-zA-Z0-9_]{1,50}/[-a-zA-Z0-9_]{1,50}$"
        assert queue["maxLength"] == 101
        assert schema["properties"]["question"]["maxLength"] == 2000
        assert schema["properties"]["question"]["minLength"] == 1
        assert schema["properties"]["name"]["maxLength"] == 80


@pytest.mark.parametrize(
    "body",
    [
        {"queue": "demo/general", "question": "Q?", "email": "a@example.org"},
        {"queue": "demo/general", "question": "Q?", "email": "a@example.org", "name": ""},
    ],
)
def test_a_ticket_body_the_description_allows_is_accepted(cast: Cast, body: dict[str, str]) -> None:
    response = Client().post("/api/v1/tickets/", body, content_type="application/json")
    assert response.status_code == 201, response.content


@pytest.fixture
def limits_out_of_the_way(settings: Settings) -> None:
    settings.REFLIB_RATE_SESSION_START = (100_000, 600)
    settings.REFLIB_RATE_SESSION_START_LIBRARY = (100_000, 600)
    settings.REFLIB_RATE_MESSAGES = (100_000, 10)
    settings.REFLIB_RATE_MAIL_RECIPIENT = (100_000, 3600)
    settings.REFLIB_RATE_MAIL_TOTAL = (100_000, 3600)


@pytest.mark.usefixtures("limits_out_of_the_way")
def test_no_request_the_description_allows_makes_the_server_fail(cast: Cast) -> None:
    Presence.objects.create(user=cast.librarian, state="available")
    patron = start(cast.queue)
    api = schemathesis.openapi.from_dict(description())
    results = list(api.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "an operation of the description is unusable"
    assert len(operations) >= 9
    app = WSGIHandler()
    statuses: Counter[int] = Counter()

    @given(st.data())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def one_request(data: st.DataObject) -> None:
        operation = data.draw(st.sampled_from(operations))
        case = data.draw(operation.as_strategy())
        if isinstance(case.body, dict) and "queue" in case.body and data.draw(st.booleans()):
            case.body["queue"] = cast.queue.address  # past the lookup, into the handler
        if "conversation" in (case.path_parameters or {}) and data.draw(st.booleans()):
            case.path_parameters["conversation"] = patron.public_id
        response = case.call(
            app=app, headers={"Authorization": f"Bearer {patron.token}", "Host": "testserver"}
        )
        statuses[response.status_code] += 1
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)
        assert str(response.status_code) in operation.definition.raw["responses"], (
            case.method,
            case.path,
            response.status_code,
        )

    # As Django's test client does: a request must not close the test's own connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        one_request()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert sum(statuses.values()) >= EXAMPLES
    # The generated requests reach the handlers, not only validation.
    assert statuses[201] + statuses[200] + statuses[202] + statuses[204] > 0, statuses
