"""The OpenAPI description of the patron API: valid, and as strict as the API.

A client generated from it must not be refused what it was told it could send, and nothing
generated from it may make the server fail. Hypothesis generates requests from the
description itself (each operation's path parameters and body schema: patterns, lengths,
formats, one-ofs) and, as often, arbitrary JSON bodies, against the real Django application
with a real queue, a real conversation and its token, so the handlers behind validation run
too. The run is bounded so it stays short.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from pytest_django import Settings

from chat.models import Presence
from chat.serializers import QUEUE_ADDRESS
from tests.chat.conftest import start
from tests.conftest import Cast

EXAMPLES = 400


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


def from_schema(schema: dict[str, Any], spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a JSON schema of the description allows (the subset the description uses)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return from_schema(spec["components"]["schemas"][name], spec)
    if "oneOf" in schema:
        return st.one_of([from_schema(option, spec) for option in schema["oneOf"]])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, spec) for k, v in properties.items() if k in required},
            optional={k: from_schema(v, spec) for k, v in properties.items() if k not in required},
        )
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 300)
        if schema.get("format") == "email":
            text: st.SearchStrategy[str] = st.emails()
        elif schema.get("format") == "uri":
            text = st.from_regex(r"https?://[a-z]{1,12}\.example/[a-z0-9/]{0,20}", fullmatch=True)
        elif schema.get("format") == "binary":
            return st.binary(max_size=64)
        elif "pattern" in schema and schema["pattern"].startswith("^"):
            text = st.from_regex(schema["pattern"], fullmatch=True)
        elif "pattern" in schema:
            text = st.text(min_size=max(low, 1), max_size=high).filter(
                lambda t: re.search(schema["pattern"], t) is not None
            )
        else:
            text = st.text(min_size=low, max_size=high)
        return text.filter(lambda t: low <= len(t) <= high)
    return json_values


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    body: dict[str, Any] | None
    multipart: bool
    documented: set[int]


def operations(spec: dict[str, Any]) -> list[Operation]:
    found = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            multipart = "multipart/form-data" in content
            body = content.get("application/json") or content.get("multipart/form-data") or {}
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    body=body.get("schema"),
                    multipart=multipart,
                    documented={int(code) for code in operation["responses"]},
                )
            )
    return found


@pytest.mark.usefixtures("limits_out_of_the_way")
def test_no_request_the_description_allows_makes_the_server_fail(cast: Cast) -> None:
    Presence.objects.create(user=cast.librarian, state="available")
    patron = start(cast.queue)
    spec = description()
    api = operations(spec)
    assert len(api) >= 9
    statuses: Counter[int] = Counter()
    segment = st.one_of(
        st.just(patron.public_id), st.from_regex(r"[A-Za-z0-9_-]{1,30}", fullmatch=True)
    )
    address = st.one_of(st.just("demo/general"), st.from_regex(QUEUE_ADDRESS, fullmatch=True))

    @given(st.data())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def one_request(data: st.DataObject) -> None:
        operation = data.draw(st.sampled_from(api))
        path = re.sub(r"\{library\}", "demo", operation.path)
        path = re.sub(r"\{queue\}", "general", path)
        path = re.sub(r"\{[a-z_]+\}", lambda _m: data.draw(segment), path)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {patron.token}")
        kwargs: dict[str, Any] = {}
        if operation.body is not None:
            if operation.multipart:
                content = data.draw(st.binary(max_size=256))
                kwargs["data"] = {"file": SimpleUploadedFile("f.bin", content)}
            else:
                value = data.draw(st.one_of(from_schema(operation.body, spec), json_values))
                if isinstance(value, dict) and "queue" in value:
                    value["queue"] = data.draw(address)
                kwargs = {"data": json.dumps(value), "content_type": "application/json"}
        response = getattr(client, operation.method.lower())(path, **kwargs)
        if getattr(response, "streaming", False):
            response.getvalue()
        statuses[response.status_code] += 1
        assert response.status_code < 500, (operation, kwargs, response.content[:300])
        assert response.status_code in operation.documented | {405}, (
            operation.method,
            path,
            response.status_code,
            response.content[:300],
        )

    one_request()
    assert sum(statuses.values()) >= EXAMPLES
    # The generated requests reach the handlers, not only validation.
    assert statuses[201] + statuses[200] + statuses[202] + statuses[204] > 0, statuses
