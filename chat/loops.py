"""State kept once per event loop: a daphne process runs one, and each test its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One ``factory()`` object for each running event loop; closed loops' are dropped."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self.factory = factory
        self.found: dict[asyncio.AbstractEventLoop, T] = {}

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        for stale in [other for other in self.found if other.is_closed()]:
            del self.found[stale]
        found = self.found.get(loop)
        if found is None:
            found = self.found[loop] = self.factory()
        return found
