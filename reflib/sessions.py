"""Staff sessions: Django's database store, read with one written statement.

Every staff request and desk handshake reads its session. Django's store builds and compiles an
ORM query for that each time, which took longer than the query itself on a warm connection
(docs/benchmarks.md, "Manager analytics views"). The statement below is the ORM's:
the row with this key that has not expired. Saving, deleting and clearing stay Django's.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends import db
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import connections, router
from django.utils import timezone

COLUMNS = ["session_key", "session_data", "expire_date"]


class SessionStore(db.SessionStore):
    def _get_session_from_db(self) -> AbstractBaseSession | None:
        model = self.model
        alias = router.db_for_read(model)
        connection = connections[alias]
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT session_key, session_data, expire_date FROM {table}"  # noqa: S608
                " WHERE session_key = %s AND expire_date > %s",
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return model.from_db(alias, COLUMNS, row)

    async def _aget_session_from_db(self) -> AbstractBaseSession | None:
        return await sync_to_async(self._get_session_from_db)()
