"""Fixtures for the core's tests."""

from __future__ import annotations

import pytest
from pytest_django import Settings


@pytest.fixture(autouse=True)
def _fast_password_hashing(request: pytest.FixtureRequest, settings: Settings) -> None:
    # The cast has three passwords; the default hasher makes each cost a third of a second.
    # Real daphne processes keep the default hashers, so their tests keep them too.
    if "daphne_cluster" not in request.fixturenames:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
