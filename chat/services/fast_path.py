"""The chat's hot path on PostgreSQL: a message stored in one statement, on the event loop.

``message_send`` (chat.services.messages) stores a message through the ORM in a thread: a
thread hop, then ``BEGIN``, a row lock, an update, an insert and ``COMMIT``. Here the same
write is one statement, sent from the consumer's event loop over a small pool of psycopg async
connections in autocommit: the ``UPDATE … RETURNING`` bumps the conversation's ``seq`` *only if*
the sender may write (the row lock serialises the conversation's writers, as ``SELECT … FOR UPDATE``
does), and the ``INSERT`` takes the new ``seq``. When the statement stores nothing (no such
conversation, a state the sender may not write in) or hits the unique ``client_msg_id`` (a
resend), the caller falls back to ``message_send``, which says precisely why or returns the
stored message: those cases are rare, and their rules stay in one place.

The sender's right to see the conversation is the caller's: a desk uses this path only for a
conversation its socket follows, which it was allowed to see when it followed it, and a desk
whose memberships change is closed (chat.events.staff_access_changed_receiver).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone
from django.utils.translation import gettext_noop
from psycopg import errors as pg_errors
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from chat import backpressure, events
from chat.errors import ServerBusy
from chat.models import OPEN_STATUSES, Event, EventKind, Sender, Status, new_public_id

# A message waits this long for a free connection; then it is refused ``rate_limited`` and
# sent again by the client, so that an overloaded process slows its acks down instead of
# queueing a backlog (a connection is held for one statement: the wait is the event loop's).
POOL_WAIT_S = 3.0
BUSY = gettext_noop("The chat is busy; your message was not stored. Send it again in a moment.")

# ``%(gate)s`` picks the rule of who may write: a patron while the chat is open; a librarian
# (message or note) only as the conversation's current librarian, messages only while active.
STORE = """
WITH bumped AS (
    UPDATE chat_conversation SET last_seq = last_seq + 1
     WHERE id = %(conversation)s
       AND CASE %(gate)s
             WHEN 'patron' THEN status = ANY(%(open)s)
             WHEN 'librarian' THEN status = %(active)s AND librarian_id = %(author)s
             ELSE librarian_id = %(author)s
           END
 RETURNING id, last_seq
)
INSERT INTO chat_event (conversation_id, seq, public_id, kind, sender, author_id, author_name,
                     client_msg_id, body, data, staff_only, created_at)
SELECT id, last_seq, %(public_id)s, %(kind)s, %(sender)s, %(author)s, %(name)s,
       %(client_msg_id)s, %(body)s, '{}'::jsonb, %(staff_only)s, %(created_at)s
  FROM bumped
RETURNING seq
"""


def available() -> bool:
    """The fast path runs on PostgreSQL; SQLite (the embedded demo) keeps the ORM path."""
    return bool(connections["default"].vendor == "postgresql")


def _conninfo() -> str:
    params = connections["default"].settings_dict
    parts: dict[str, Any] = {
        "dbname": params["NAME"],
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
    }
    for key, value in (params.get("OPTIONS") or {}).items():
        if isinstance(value, str | int):
            parts[key] = value
    return make_conninfo(**{key: value for key, value in parts.items() if value is not None})


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool] = (
    weakref.WeakKeyDictionary()
)


async def _pool() -> AsyncConnectionPool:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = AsyncConnectionPool(
            _conninfo(),
            # Opened when the first socket opens, not at its first message: a database that
            # fails later fails the statement at once (the socket closes 4503, chat.outages).
            min_size=settings.REFLIB_DB_ASYNC_CONNECTIONS,
            max_size=settings.REFLIB_DB_ASYNC_CONNECTIONS,
            kwargs={"autocommit": True, "prepare_threshold": 0},
            open=False,
            name="reflib-chat",
            timeout=POOL_WAIT_S,
        )
        _pools[loop] = pool
        await pool.open()
    return pool


async def prepare() -> None:
    """Open this event loop's pool if it is not open (a socket that may send has opened)."""
    if available():
        await _pool()


async def close() -> None:
    """Close this event loop's pool (tests do, before their event loop ends)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()


async def message_store(
    *,
    conversation_id: int,
    conversation_public_id: str,
    sender: Sender,
    author_id: int | None,
    author_name: str,
    client_msg_id: str,
    body: str,
    note: bool = False,
) -> Event | None:
    """Store a message or note in one statement and ring its doorbell (the statement has
    committed); None when ``message_send`` must decide (or on SQLite, where it always does)."""
    if not available():
        return None
    gate = "patron" if sender == Sender.PATRON else "note" if note else "librarian"
    event = Event(
        conversation_id=conversation_id,
        public_id=new_public_id(),
        kind=EventKind.NOTE if note else EventKind.MESSAGE,
        sender=sender,
        author_id=author_id,
        author_name=author_name,
        client_msg_id=client_msg_id,
        body=body,
        data={},
        staff_only=note,
        created_at=timezone.now(),
    )
    params = {
        "conversation": conversation_id,
        "gate": gate,
        "open": [str(status) for status in OPEN_STATUSES],
        "active": str(Status.ACTIVE),
        "author": author_id,
        "public_id": event.public_id,
        "kind": str(event.kind),
        "sender": str(sender),
        "name": author_name,
        "client_msg_id": client_msg_id,
        "body": body,
        "staff_only": note,
        "created_at": event.created_at,
    }
    pool = await _pool()
    asked = time.monotonic()
    try:
        async with pool.connection() as conn:
            backpressure.here().waited(time.monotonic() - asked, "database connections")
            row = await (await conn.execute(STORE, params)).fetchone()
    except pg_errors.UniqueViolation:
        return None  # a resend: message_send returns the stored one
    except PoolTimeout:
        raise ServerBusy(BUSY) from None
    if row is None:
        return None
    event.seq = row[0]
    await events.publish_event_now(conversation_public_id, event)
    return event
