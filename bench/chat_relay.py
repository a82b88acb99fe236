"""Chat relay benchmark (SPEC §5): reflib's full chat path against a bare Channels group relay.

    .venv/bin/python -m bench.chat_relay --conversations 200 --layer redis

One run: a fresh PostgreSQL database (migrated; one library, one queue and one librarian per
conversation, seeded through reflib's services), daphne serving ``bench.relay_asgi`` (reflib
plus a bare relay route on the same channel layer), and this process driving patron and
librarian WebSockets, first against the bare relay and then against reflib, in two modes:
lockstep (saturated: throughput) and paced (each side sends every 2 s: latency). Prints a table
and the verdict against the budgets. docs/benchmarks.md explains how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
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

from bench import relay_clients
from bench.relay_clients import PATRON_TO_LIBRARIAN, Result

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
BUDGET_RATIO = 1.0
BUDGET_P99_MS = 100.0
BUDGET_CONVERSATIONS = 200


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chat_relay",
        description="reflib's full chat path against a bare Channels group relay (SPEC §5).",
    )
    parser.add_argument("--conversations", type=int, default=200, help="concurrent pairs")
    parser.add_argument(
        "--layer",
        choices=["redis", "pubsub"],
        default="redis",
        help="redis: reflib's RedisChannelLayer; pubsub: RedisPubSubChannelLayer",
    )
    parser.add_argument("--warmup", type=float, default=3, help="lockstep seconds not counted")
    parser.add_argument("--seconds", type=float, default=15, help="lockstep seconds counted")
    parser.add_argument("--paced-seconds", type=float, default=30)
    parser.add_argument("--paced-interval", type=float, default=2.0, help="seconds per send")
    parser.add_argument("--database", default="reflib_bench", help="dropped and recreated")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    return parser.parse_args(argv)


# --- database and seed ----------------------------------------------------------------------


def recreate_database(pg: str, name: str, *, create: bool = True) -> None:
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(count: int) -> list[str]:
    """Migrate; one library with queue ``general`` and ``count`` available librarians, each
    logged in. Returns their session keys. The conversations are started over the wire."""
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
    library = services.library_upsert(slug="bench", timezone="UTC", queue_slugs=["general"])
    session_keys = []
    for index in range(count):
        user = services.staff_upsert(
            username=f"librarian-{index}", library=library, role=Role.LIBRARIAN
        )
        chat_services.presence_set(user=user, state=PresenceState.AVAILABLE)
        client = Client()
        client.force_login(user)
        session_keys.append(client.cookies["sessionid"].value)
    connections.close_all()
    return session_keys


# --- daphne ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daphne:
    """One daphne process on loopback serving bench.relay_asgi:application."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        command = [sys.executable, "-m", "daphne", "--bind", "127.0.0.1", "--port"]
        command += [str(self.port), "--access-log", os.devnull, "bench.relay_asgi:application"]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"daphne did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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


def configure_environment(args: argparse.Namespace, prefix: str) -> dict[str, str]:
    """reflib's settings for this process (seeding: no Redis) and for daphne (with Redis)."""
    os.environ.pop("REDIS_URL", None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="reflib.settings",
        DATABASE_URL=f"{args.pg}/{args.database}",
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
        REDIS_URL=args.redis,
        REFLIB_CHANNEL_PREFIX=prefix,
        REFLIB_CACHE_PREFIX=prefix,
        # The limiters still run on every start and message; the defaults would refuse one
        # address starting 200 chats and lockstep pairs sending 30 messages per 10 s.
        REFLIB_RATE_SESSION_START="1000000/600",
        REFLIB_RATE_MESSAGES="1000000/10",
        REFLIB_RATE_MESSAGES_ADDRESS="1000000/10",
        REFLIB_RATE_FRAMES="1000000/10",
        REFLIB_MAX_SOCKETS_PER_ADDRESS="1000000",
        BENCH_CHANNEL_LAYER=args.layer,
    )


# --- measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cpu:
    """CPU seconds at one instant: daphne, this process, and the whole machine (busy)."""

    at: float
    daphne: float
    client: float
    machine: float

    @classmethod
    def sample(cls, pid: int) -> Cpu:
        stat = Path(f"/proc/{pid}/stat").read_text()
        utime, stime = (int(v) for v in stat[stat.rindex(")") + 2 :].split()[11:13])
        own = os.times()
        cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
        busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait
        return cls(time.monotonic(), (utime + stime) / TICK, own.user + own.system, busy / TICK)

    def cores_since(self, before: Cpu) -> tuple[float, float, float]:
        """Average cores busy since ``before``: daphne, client, machine."""
        wall = self.at - before.at
        return (
            (self.daphne - before.daphne) / wall,
            (self.client - before.client) / wall,
            (self.machine - before.machine) / wall,
        )


@dataclass(frozen=True)
class Phase:
    result: Result
    cores: tuple[float, float, float]
    errors: int


async def settle(pid: int, idle_cores: float = 0.1, timeout_s: float = 600) -> None:
    """Wait until daphne has finished the work that opening the pairs queued (each chat start
    and accept refreshes the waiting list of every open desk)."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    before = Cpu.sample(pid)
    while quiet < 2 and time.monotonic() < deadline:
        await asyncio.sleep(1)
        after = Cpu.sample(pid)
        quiet = quiet + 1 if after.cores_since(before)[0] < idle_cores else 0
        before = after


async def _sample_at(pid: int, delay: float) -> Cpu:
    await asyncio.sleep(delay)
    return Cpu.sample(pid)


async def measure(
    target: str, args: argparse.Namespace, daphne: Daphne, session_keys: list[str]
) -> tuple[Phase, Phase]:
    began = time.monotonic()
    pairs = await relay_clients.open_pairs(target, args.conversations, daphne.url, session_keys)
    opened = time.monotonic()
    pid = daphne.process.pid
    try:
        await settle(pid)
        print(
            f"{target}: {len(pairs)} pairs open in {opened - began:.0f} s, "
            f"daphne idle {time.monotonic() - opened:.0f} s later",
            flush=True,
        )
        start = asyncio.create_task(_sample_at(pid, args.warmup))
        end = asyncio.create_task(_sample_at(pid, args.warmup + args.seconds))
        result = await relay_clients.lockstep(pairs, warmup_s=args.warmup, seconds=args.seconds)
        lockstep = Phase(result, (await end).cores_since(await start), 0)
        before = Cpu.sample(pid)
        result = await relay_clients.paced(
            pairs, seconds=args.paced_seconds, interval_s=args.paced_interval
        )
        paced = Phase(result, Cpu.sample(pid).cores_since(before), 0)
        errors = relay_clients.error_count(pairs)
    finally:
        await relay_clients.close_pairs(pairs)
    await asyncio.sleep(2)  # disconnect writes settle before the next target
    return Phase(lockstep.result, lockstep.cores, errors), paced


async def run(
    args: argparse.Namespace, daphne: Daphne, session_keys: list[str]
) -> dict[str, tuple[Phase, Phase]]:
    results = {}
    for target in ("relay", "reflib"):
        results[target] = await measure(target, args, daphne, session_keys)
    return results


# --- report ---------------------------------------------------------------------------------


def percentile_ms(values: Sequence[float], p: float) -> float:
    """Nearest rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return 1000 * ordered[max(0, math.ceil(p * len(ordered) / 100) - 1)]


def report(args: argparse.Namespace, results: dict[str, tuple[Phase, Phase]]) -> None:
    print(
        f"\nchat relay: layer {args.layer}, {args.conversations} conversations, 1 daphne, "
        f"{os.cpu_count()} cores\n"
        f"{'':10} | lockstep {args.seconds:.0f} s (saturated)        "
        f"| paced, each side every {args.paced_interval:g} s, {args.paced_seconds:.0f} s\n"
        f"{'target':10} |  msg/s  p50 ms  p99 ms  daphne client machine "
        f"| p50 ms  p95 ms  p99 ms  lost  daphne\n"
        f"{'-' * 10}-+-{'-' * 54}-+-{'-' * 36}"
    )
    for target, label in (("relay", "bare relay"), ("reflib", "full path")):
        lock, paced = results[target]
        lock_lat = lock.result.latencies_s[PATRON_TO_LIBRARIAN]
        paced_lat = paced.result.latencies_s[PATRON_TO_LIBRARIAN]
        daphne, client, machine = lock.cores
        print(
            f"{label:10} | {lock.result.messages_per_s:6.0f} {percentile_ms(lock_lat, 50):7.1f} "
            f"{percentile_ms(lock_lat, 99):7.1f}  {daphne:5.2f}  {client:5.2f}  {machine:5.2f}  "
            f"| {percentile_ms(paced_lat, 50):6.1f} {percentile_ms(paced_lat, 95):7.1f} "
            f"{percentile_ms(paced_lat, 99):7.1f} {paced.result.lost:5d}  {paced.cores[0]:5.2f}"
        )
    print(
        "(latency: patron→librarian, send to arrival; daphne, client, machine: cores busy; "
        "lost: lockstep timeouts + paced messages not arrived 10 s after the last send)"
    )
    relay, full = results["relay"][0], results["reflib"][0]
    ratio = full.result.messages_per_s / relay.result.messages_per_s
    p99 = percentile_ms(results["reflib"][1].result.latencies_s[PATRON_TO_LIBRARIAN], 99)
    lost = sum(phase.result.lost for phase in results["reflib"]) + full.errors
    at_budget_size = args.conversations == BUDGET_CONVERSATIONS
    print(
        f"\nthroughput full/bare: {ratio:.2f}x (budget >= {BUDGET_RATIO:.1f}x): "
        f"{'meets' if ratio >= BUDGET_RATIO else 'MISSES'}"
    )
    verdict = "meets" if p99 <= BUDGET_P99_MS and not lost else "MISSES"
    if not at_budget_size:
        verdict += f" (the budget is set at {BUDGET_CONVERSATIONS} conversations)"
    print(f"paced p99 patron→librarian: {p99:.1f} ms (budget <= {BUDGET_P99_MS:.0f} ms): {verdict}")
    if lost:
        print(f"full path: {lost} messages lost or refused (errors: {full.errors})")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prefix = f"bench{secrets.token_hex(3)}"
    daphne_env = configure_environment(args, prefix)
    print(f"seeding {args.database} ...", flush=True)
    recreate_database(args.pg, args.database)
    session_keys = seed(args.conversations)
    with tempfile.NamedTemporaryFile(prefix="daphne-", suffix=".log", delete=False) as log:
        daphne = Daphne(daphne_env, Path(log.name))
    try:
        results = asyncio.run(run(args, daphne, session_keys))
    finally:
        daphne.stop()
        recreate_database(args.pg, args.database, create=False)
    report(args, results)
    print(f"daphne log: {daphne.log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
