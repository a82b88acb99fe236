"""Faults to inject into real services: a Redis of the test's own, PostgreSQL refusing the test
database, and the daphne logs to read afterwards.

The machine's Redis is never touched: each test starts ``redis-server`` on a free port with
nothing persisted, and stops, restarts or pauses that one. The PostgreSQL outage affects the
test database only, and ``postgres_refusing`` always allows connections again on the way out.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.db import connection
from psycopg import sql
from redis import Redis
from redis.exceptions import RedisError

from tests.live import DaphneProcess, free_port

TRACEBACK_MARKERS = ("Traceback (most recent call last)", "Exception inside application")


@dataclass
class OwnRedis:
    """A ``redis-server`` of this test only, on a free port, keeping nothing on disk."""

    port: int = field(default_factory=free_port)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="reflib-redis-")))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        client = Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except RedisError:
            return False
        finally:
            client.close()

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "yes",
                "--enable-debug-command", "local",
                "--dir", str(self.directory),
                "--pidfile", str(self.directory / "redis.pid"),
                "--logfile", str(self.directory / "redis.log"),
            ],
            check=True,
            timeout=10,
        )  # fmt: skip
        self._wait(until=True, what="answer PING")

    def stop(self) -> None:
        """Shut down without saving, as a crash of a cache-only Redis loses everything."""
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
            timeout=10,
            capture_output=True,
        )
        self._wait(until=False, what="shut down")

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self, seconds: int) -> subprocess.Popen[bytes]:
        """``DEBUG SLEEP``: Redis answers nobody for ``seconds``; returns the sleeping client."""
        return subprocess.Popen(
            ["redis-cli", "-p", str(self.port), "debug", "sleep", str(seconds)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _wait(self, *, until: bool, what: str) -> None:
        deadline = time.monotonic() + 10
        while self.answers() is not until:
            assert time.monotonic() < deadline, f"Redis on {self.port} did not {what}"
            time.sleep(0.05)


@contextlib.contextmanager
def own_redis() -> Iterator[OwnRedis]:
    redis = OwnRedis()
    redis.start()
    try:
        yield redis
    finally:
        if redis.answers():
            redis.stop()
        shutil.rmtree(redis.directory, ignore_errors=True)


def _maintenance() -> psycopg.Connection[tuple[object, ...]]:
    """A connection to the server's ``postgres`` database, from which the test one is ruled."""
    db = connection.settings_dict
    return psycopg.connect(
        dbname="postgres",
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        autocommit=True,
    )


def _allow(dbname: str, allowed: bool) -> None:
    with _maintenance() as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(dbname), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [dbname],
            )


@contextlib.contextmanager
def postgres_refusing() -> Iterator[None]:
    """The test database refuses every connection and loses the open ones (this process's
    too: call ``connection.close()`` afterwards, outside async code), until the block ends;
    connections are allowed again whatever happens inside."""
    dbname = str(connection.settings_dict["NAME"])
    try:
        _allow(dbname, False)
        yield
    finally:
        _allow(dbname, True)


def log_text(process: DaphneProcess) -> str:
    return process.log.read_text(errors="replace")


def tracebacks(processes: list[DaphneProcess]) -> list[str]:
    """The lines of the servers' logs that show an unhandled error, with their neighbours."""
    found = []
    for process in processes:
        lines = log_text(process).splitlines()
        for number, line in enumerate(lines):
            if any(marker in line for marker in TRACEBACK_MARKERS):
                found.append(f"{process.port}: " + "\n".join(lines[number : number + 12]))
    return found
