"""Shared fixtures: the named cast, service markers and real daphne processes."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.signals import setting_changed
from django.db import connections
from django.test import Client

from chat import selectors
from chat.consumers import orm_threads
from reflib import gcpolicy
from reflib.celery import app as celery_app
from reflib.models import Library, Queue, Role
from reflib.services import library_upsert, staff_upsert
from tests.live import DaphneCluster
from tests.services import postgres_problem, redis_problem, require


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("postgres") or item.get_closest_marker("redis"):
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture(autouse=True)
def _services(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres"):
        require(postgres_problem())
    if request.node.get_closest_marker("redis"):
        require(redis_problem())


@pytest.fixture(scope="session", autouse=True)
def _close_orm_connections(django_db_setup: None) -> Iterator[None]:
    """Consumers' ORM threads keep their connections; close them before the test database
    is dropped (PostgreSQL refuses to drop a database in use)."""
    yield
    workers = settings.REFLIB_DB_THREADS
    everyone = threading.Barrier(workers)

    def close() -> None:
        everyone.wait(timeout=10)  # one task per thread: each waits for all the others
        connections.close_all()

    for future in [orm_threads.submit(close) for _ in range(workers)]:
        future.result(timeout=20)


@pytest.fixture(autouse=True)
def _settings_restored() -> Iterator[None]:
    """A test whose teardown was cut short (a time-out) may leave its overridden settings in
    place: the next tests would talk to its stopped Redis. Put the settings back and fail."""
    before = getattr(settings, "_wrapped")  # noqa: B009  (LazySettings' holder, untyped)
    yield
    if getattr(settings, "_wrapped") is not before:  # noqa: B009
        setattr(settings, "_wrapped", before)  # noqa: B010
        for name in ("CHANNEL_LAYERS", "CACHES", "REDIS_URL"):
            setting_changed.send(sender=None, setting=name, value=None, enter=False)
        pytest.fail("the test left overridden settings behind; they were put back")


@pytest.fixture(scope="session", autouse=True)
def _collector_not_frozen() -> None:
    """reflib.asgi, which the socket tests import, gives the test process a server's collector
    policy (reflib.gcpolicy): set it aside. Frozen objects hide their referrers from
    gc.get_referrers, and Hypothesis relies on that to check its random generators."""
    for callback in [c for c in gc.callbacks if isinstance(c, gcpolicy.FreezeSurvivors)]:
        gc.callbacks.remove(callback)
    gc.unfreeze()


@pytest.fixture(autouse=True)
def _queue_outlooks_forgotten() -> None:
    """Each test starts without the queue outlooks an earlier test's process read
    (chat.selectors.queue_outlook keeps them for a second)."""
    selectors.outlooks.clear()


@pytest.fixture
def outlook_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The monotonic clock that dates the queue outlooks; a test moves it by changing ``[0]``."""
    now = [1000.0]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: now[0])
    return now


@pytest.fixture(autouse=True)
def _celery_inline() -> Iterator[None]:
    """Tasks run inline in the test, whatever REDIS_URL says; a test that starts a real
    worker does so explicitly, with its own broker settings."""
    was = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = was


@dataclass(frozen=True)
class Patron:
    name: str
    email: str


@dataclass(frozen=True)
class Cast:
    """The people every test can call by name."""

    library: Library
    queue: Queue
    other_library: Library
    other_queue: Queue
    patron: Patron
    librarian: User
    manager: User
    other_librarian: User

    def client_for(self, user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client


PASSWORD = "correct horse battery staple"


@pytest.fixture
def cast(db: None) -> Cast:
    library = library_upsert(
        slug="demo",
        name="Demo Public Library",
        timezone="America/New_York",
        queue_slugs=["general"],
        origins=["https://www.demo-library.org"],
    )
    other = library_upsert(
        slug="other",
        name="Other County Library",
        timezone="Europe/Madrid",
        queue_slugs=["general"],
        origins=["https://other-library.example"],
    )
    return Cast(
        library=library,
        queue=library.queues.get(slug="general"),
        other_library=other,
        other_queue=other.queues.get(slug="general"),
        patron=Patron(name="Pat Patron", email="pat@example.org"),
        librarian=staff_upsert(
            username="lena",
            library=library,
            role=Role.LIBRARIAN,
            display_name="Lena",
            password=PASSWORD,
        ),
        manager=staff_upsert(
            username="mara",
            library=library,
            role=Role.MANAGER,
            display_name="Mara",
            password=PASSWORD,
        ),
        other_librarian=staff_upsert(
            username="otto",
            library=other,
            role=Role.LIBRARIAN,
            display_name="Otto",
            password=PASSWORD,
        ),
    )


@pytest.fixture
def daphne_cluster(transactional_db: None) -> Iterator[DaphneCluster]:
    """Real daphne processes serving this test's database; start them with ``.start(n)``."""
    cluster = DaphneCluster()
    try:
        yield cluster
    finally:
        cluster.stop()
