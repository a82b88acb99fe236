"""Shared pieces of the analytics tests: a manager of the other library, transactions by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User

from analytics.models import Category, CategoryKind, Source, Transaction
from analytics.services import categories_ensure_defaults, category_current
from reflib.models import Library, Role
from reflib.services import staff_upsert
from tests.conftest import PASSWORD, Cast


@pytest.fixture
def other_manager(cast: Cast) -> User:
    return staff_upsert(
        username="olga",
        library=cast.other_library,
        role=Role.MANAGER,
        display_name="Olga",
        password=PASSWORD,
    )


def category(library: Library, kind: CategoryKind, slug: str) -> Category:
    categories_ensure_defaults(library=library)
    found = category_current(library=library, kind=kind, slug=slug)
    assert found is not None
    return found


def record(
    library: Library, started_at: datetime, *, format: str = "desk", **fields: Any
) -> Transaction:
    """A transaction as the tally or an import would store it."""
    fields.setdefault("source", Source.TALLY)
    return Transaction.objects.create(
        library=library,
        format=category(library, CategoryKind.FORMAT, format),
        started_at=started_at,
        **fields,
    )
