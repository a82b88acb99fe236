"""The demo installation: what ``seed_demo`` creates.

The apps that keep history (chat, staffing, analytics) register a history seeder with
:func:`register_history`; ``seed_demo`` runs them after the core, so the demo grows as the apps do
without the core importing them.
"""

from __future__ import annotations

from collections.abc import Callable

from reflib.models import Library, Role
from reflib.services import library_upsert, service_point_ensure, staff_upsert

DEMO_LIBRARY = "demo"
DEMO_TIMEZONE = "America/New_York"
DEMO_ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000"]
DEMO_STAFF = [
    ("librarian", Role.LIBRARIAN, "Alex (Reference)"),
    ("manager", Role.MANAGER, "Morgan (Head of Reference)"),
]
DEMO_SERVICE_POINTS = [("main-desk", "Main desk"), ("science", "Science library"), ("chat", "Chat")]

HistorySeeder = Callable[[Library], str]
_history_seeders: list[HistorySeeder] = []


def register_history(seeder: HistorySeeder) -> HistorySeeder:
    """Register ``seeder(library) -> summary line``; it must be idempotent."""
    if seeder not in _history_seeders:
        _history_seeders.append(seeder)
    return seeder


def seed_demo(*, history: bool) -> list[str]:
    library = library_upsert(
        slug=DEMO_LIBRARY,
        name="Demo Public Library",
        timezone=DEMO_TIMEZONE,
        queue_slugs=["general"],
        origins=DEMO_ORIGINS,
    )
    points = [
        service_point_ensure(library=library, slug=slug, name=name)
        for slug, name in DEMO_SERVICE_POINTS
    ]
    queue = library.queues.get(slug="general")
    if queue.service_point is None:
        queue.service_point = points[-1]
        queue.name = "Ask a librarian"
        queue.save(update_fields=["service_point", "name"])
    for username, role, display_name in DEMO_STAFF:
        if not library.memberships.filter(user__username=username).exists():
            staff_upsert(
                username=username,
                library=library,
                role=role,
                display_name=display_name,
                password=username,
            )
    summary = [
        f"Library {library.slug}: {library.name} ({library.timezone}), "
        f"queue {queue.address}, {len(points)} service points, "
        f"{len(DEMO_STAFF)} staff"
    ]
    if history:
        summary.extend(seeder(library) for seeder in _history_seeders)
    return summary
