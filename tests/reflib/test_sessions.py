"""Staff sessions: reflib's store reads the session row with one written statement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reflib.sessions import SessionStore
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def _saved(**data: object) -> str:
    store = SessionStore()
    store.update(data)
    store.save()
    assert store.session_key
    return store.session_key


def test_the_project_uses_the_store() -> None:
    assert settings.SESSION_ENGINE == "reflib.sessions"


def test_a_saved_session_loads_with_its_data() -> None:
    key = _saved(library="demo", count=3)

    store = SessionStore(key)

    assert store.load() == {"library": "demo", "count": 3}
    assert store.session_key == key


def test_an_expired_session_loads_empty_and_forgets_its_key() -> None:
    key = _saved(library="demo")
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    store = SessionStore(key)

    assert store.load() == {}
    assert store.session_key is None


def test_an_unknown_key_loads_empty_and_forgets_it() -> None:
    store = SessionStore("k" * 32)

    assert store.load() == {}
    assert store.session_key is None


@pytest.mark.django_db(transaction=True)
async def test_the_async_load_reads_the_same_row() -> None:
    try:
        key = await sync_to_async(_saved)(library="demo")

        assert await SessionStore(key).aload() == {"library": "demo"}
        assert await SessionStore("k" * 32).aload() == {}
    finally:
        # The loads ran in asgiref's thread, which keeps its connection (CONN_MAX_AGE): close
        # it, or the test database cannot be dropped at the end of the run.
        await sync_to_async(connections.close_all)()


def test_a_logged_in_manager_stays_logged_in_and_a_logout_ends_the_session(cast: Cast) -> None:
    client = cast.client_for(cast.manager)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value

    assert client.get(reverse("admin:index")).status_code == 200
    client.post(reverse("admin:logout"))

    assert not Session.objects.filter(session_key=key).exists()
    stale = Client()
    stale.cookies[settings.SESSION_COOKIE_NAME] = key
    response = stale.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
