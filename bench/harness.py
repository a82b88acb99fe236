"""What the chat benchmarks share: their database, daphne processes, and the readings they take.

``bench.chat_relay``, ``bench.queue_depth`` and ``bench.idle_sockets`` all measure reflib over the
wire: a fresh PostgreSQL database seeded through reflib's own services in the benchmark's
process, one or more daphne processes serving ``bench.relay_asgi`` with production settings (the
rate limiters on but set out of reach), and CPU and memory read from ``/proc``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def add_service_options(parser: argparse.ArgumentParser, *, database: str) -> None:
    parser.add_argument("--database", default=database, help="dropped and recreated")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")


# --- database and seed ----------------------------------------------------------------------


def recreate_database(pg: str, name: str, *, create: bool = True) -> None:
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(librarians: int, *, queue_slugs: Sequence[str] = ("general",)) -> list[str]:
    """Migrate; one library ``bench`` with these queues and ``librarians`` available
    librarians, each logged in. Returns their session keys."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    from chat import services as chat_services
    from chat.models import PresenceState
    from reflib import services
    from reflib.models import Role

    call_command("migrate", verbosity=0, interactive=False)
    library = services.library_upsert(slug="bench", timezone="UTC", queue_slugs=queue_slugs)
    session_keys = []
    for index in range(librarians):
        user = services.staff_upsert(
            username=f"librarian-{index}", library=library, role=Role.LIBRARIAN
        )
        chat_services.presence_set(user=user, state=PresenceState.AVAILABLE)
        client = Client()
        client.force_login(user)
        session_keys.append(client.cookies["sessionid"].value)
    connections.close_all()
    return session_keys


def configure_environment(*, pg: str, database: str, redis: str, layer: str) -> dict[str, str]:
    """reflib's settings for this process (seeding: no Redis) and for daphne (with Redis, on a
    channel and cache prefix of its own)."""
    prefix = f"bench{secrets.token_hex(3)}"
    os.environ.pop("REDIS_URL", None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="reflib.settings",
        DATABASE_URL=f"{pg}/{database}",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        REFLIB_HTTPS="0",
        # An empty directory: the benchmark serves no static files.
        REFLIB_STATIC_ROOT=tempfile.mkdtemp(prefix="reflib-bench-static-"),
        LOG_LEVEL="WARNING",
    )
    return dict(
        os.environ,
        REDIS_URL=redis,
        REFLIB_CHANNEL_PREFIX=prefix,
        REFLIB_CACHE_PREFIX=prefix,
        # The limiters still run on every start, message and socket; the defaults would refuse
        # one address starting hundreds of chats, lockstep pairs sending 30 messages per 10 s,
        # and more than 50 sockets from one address.
        REFLIB_RATE_SESSION_START="1000000/600",
        REFLIB_RATE_SESSION_START_LIBRARY="1000000/600",
        REFLIB_RATE_MESSAGES="1000000/10",
        REFLIB_RATE_MESSAGES_ADDRESS="1000000/10",
        REFLIB_RATE_FRAMES="1000000/10",
        REFLIB_MAX_SOCKETS_PER_ADDRESS="1000000",
        BENCH_CHANNEL_LAYER=layer,
    )


def forget_redis_keys(daphne_env: dict[str, str]) -> None:
    """Delete what the run left in Redis under its prefix: group memberships outlive their
    sockets by a day when a process is stopped before every consumer has left its groups."""
    import redis

    prefix = daphne_env["REFLIB_CHANNEL_PREFIX"]
    with redis.Redis.from_url(daphne_env["REDIS_URL"]) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])


def raise_open_files(needed: int) -> None:
    """Raise this process's open-file limit (daphne inherits it) to ``needed``, within the
    hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            print(f"open-file limit {target} (hard limit) is below the {needed} wanted")


# --- daphne ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daphne:
    """One daphne process on loopback serving bench.relay_asgi:application, logging to a
    temporary file."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        with tempfile.NamedTemporaryFile(prefix="daphne-", suffix=".log", delete=False) as log:
            self.log = Path(log.name)
        command = [sys.executable, "-m", "daphne", "--bind", "127.0.0.1", "--port"]
        command += [str(self.port), "--access-log", os.devnull, "bench.relay_asgi:application"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"daphne did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kb(self) -> int:
        """Resident memory now (``VmRSS`` of /proc/PID/status), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for daphne {self.pid}")

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# --- measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cpu:
    """CPU seconds at one instant: the daphne processes together, this process, and the whole
    machine (busy)."""

    at: float
    daphne: float
    client: float
    machine: float

    @classmethod
    def sample(cls, pids: Sequence[int]) -> Cpu:
        daphne = 0
        for pid in pids:
            stat = Path(f"/proc/{pid}/stat").read_text()
            utime, stime = (int(v) for v in stat[stat.rindex(")") + 2 :].split()[11:13])
            daphne += utime + stime
        own = os.times()
        cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
        busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait
        return cls(time.monotonic(), daphne / TICK, own.user + own.system, busy / TICK)

    def cores_since(self, before: Cpu) -> tuple[float, float, float]:
        """Average cores busy since ``before``: daphne, client, machine."""
        wall = self.at - before.at
        return (
            (self.daphne - before.daphne) / wall,
            (self.client - before.client) / wall,
            (self.machine - before.machine) / wall,
        )


async def settle(pids: Sequence[int], idle_cores: float = 0.1, timeout_s: float = 600) -> float:
    """Wait until the daphne processes have finished the work queued so far (two seconds in a
    row below ``idle_cores``); returns the seconds waited."""
    began = time.monotonic()
    deadline = began + timeout_s
    quiet = 0
    before = Cpu.sample(pids)
    while quiet < 2 and time.monotonic() < deadline:
        await asyncio.sleep(1)
        after = Cpu.sample(pids)
        quiet = quiet + 1 if after.cores_since(before)[0] < idle_cores else 0
        before = after
    return time.monotonic() - began


async def sample_at(pids: Sequence[int], delay: float) -> Cpu:
    await asyncio.sleep(delay)
    return Cpu.sample(pids)


def percentile_ms(values: Sequence[float], p: float) -> float:
    """Nearest rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return 1000 * ordered[max(0, math.ceil(p * len(ordered) / 100) - 1)]


class PeakRss:
    """The highest resident memory of a daphne process while the ``async with`` block runs
    (sampled every half second, and at both ends), in KiB."""

    def __init__(self, daphne: Daphne) -> None:
        self.daphne = daphne
        self.kb = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PeakRss:
        self.kb = self.daphne.rss_kb()
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.kb = max(self.kb, self.daphne.rss_kb())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.kb = max(self.kb, self.daphne.rss_kb())
