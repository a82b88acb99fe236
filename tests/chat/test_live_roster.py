"""Online follows the roster across two real daphne processes on PostgreSQL and Redis.

The librarians' desks are open on one process, the patron asks the other: the four cases of
SPEC §1.3 (rostered and present, rostered but absent, present and covering, nobody) give the
same answer whichever process the patron reaches, and an offline queue says when it opens.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from chat.models import Presence
from chat.selectors import PRESENCE_TIMEOUT
from tests.chat.live_clients import LiveSocket, open_desk
from tests.chat.roster import on_shift, points
from tests.chat.test_live_cluster import Pair, pair, run, session_id, shared_pair
from tests.conftest import Cast
from tests.live import DaphneProcess

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
__all__ = ["pair", "shared_pair"]  # the fixtures, shared with the cluster tests

NY = ZoneInfo("America/New_York")
WAIT_S = 10.0


def queue_status(server: DaphneProcess) -> dict[str, Any]:
    url = f"{server.http_url}/api/v1/queues/demo/general/"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own http URL
        return dict(json.load(response))


def eventually(server: DaphneProcess, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The queue status as ``server`` answers it, once ``check`` holds (bounded wait)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        body = queue_status(server)
        if check(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


async def go_available(server: DaphneProcess, session: str) -> LiveSocket:
    desk, _welcome = await open_desk(server, session)
    await desk.send({"type": "presence", "state": "available"})
    return desk


def test_online_follows_the_roster_whichever_process_the_patron_reaches(
    pair: Pair, cast: Cast
) -> None:
    chat = points(cast).chat
    now = timezone.now()
    tomorrow = (now.astimezone(NY) + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    on_shift(cast.librarian, chat, tomorrow)
    lena, mara = session_id(cast.librarian), session_id(cast.manager)

    # Nobody: offline on both, with the next rostered opening in New York time.
    for server in (pair.a, pair.b):
        body = queue_status(server)
        assert (body["online"], body["opens_at"]) == (False, tomorrow.isoformat())

    # Rostered and present: Lena is on the chat now, her desk open on A; B says online.
    on_shift(cast.librarian, chat, now - timedelta(hours=1), hours=3)

    async def rostered_and_present() -> tuple[dict[str, Any], dict[str, Any]]:
        desk = await go_available(pair.a, lena)
        try:
            online = eventually(pair.b, lambda body: body["online"])
            await desk.send({"type": "presence", "state": "away"})
            away = eventually(pair.b, lambda body: not body["online"])
        finally:
            await desk.close()
        return online, away

    online, away = run(rostered_and_present())
    assert (online["online"], online["librarians_available"], online["opens_at"]) == (
        True,
        1,
        None,
    )
    # Rostered but not available: offline, and no opening is claimed while the shift runs.
    assert (away["online"], away["opens_at"]) == (False, None)

    # Rostered but absent: available, but her desk has been closed past the presence timeout.
    async def rostered_and_gone() -> None:
        desk = await go_available(pair.a, lena)
        eventually(pair.b, lambda body: body["online"])
        await desk.close()

    run(rostered_and_gone())
    Presence.objects.filter(user=cast.librarian).update(
        seen_at=timezone.now() - PRESENCE_TIMEOUT - timedelta(seconds=1)
    )
    for server in (pair.a, pair.b):
        assert queue_status(server)["online"] is False

    # Present and covering: Mara is on no shift; her desk is open on B, A says online.
    async def covering() -> dict[str, Any]:
        desk = await go_available(pair.b, mara)
        try:
            return eventually(pair.a, lambda body: body["online"])
        finally:
            await desk.close()

    body = run(covering())
    assert (body["online"], body["librarians_available"]) == (True, 1)
