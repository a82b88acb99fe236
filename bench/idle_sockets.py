"""Idle sockets benchmark (SPEC §5): what open, quiet patron sockets cost one daphne process.

    .venv/bin/python -m bench.idle_sockets --sockets 2000

One run: a fresh PostgreSQL database (migrated; one library whose queues hold at most 10
waiting chats each, and one waiting chat per socket, started through reflib's services in this
process), one daphne process serving reflib, a few sockets opened and closed to warm it up, its
resident memory read, then ``--sockets`` patron sockets opened, each saying ``hello`` to its own
conversation, and left idle for ``--idle`` seconds while this process keeps reading them.
Prints daphne's memory growth per socket, its CPU while idle (the heartbeats) and the verdict
against the budgets: under 100 KB per socket (SPEC §5) and under 5 % of a core (issue 12).
docs/benchmarks.md explains how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import relay_clients
from bench.harness import (
    Cpu,
    Daphne,
    add_service_options,
    configure_environment,
    forget_redis_keys,
    raise_open_files,
    recreate_database,
    seed,
)
from bench.relay_clients import Side

BUDGET_KB_PER_SOCKET = 100.0
BUDGET_CORES = 0.05
BUDGET_SOCKETS = 2000
HEARTBEAT_S = 20
# Chats per queue. Each start tells everyone waiting in its queue their new position, which
# makes seeding quadratic in the queue's length; an idle socket costs the same in any queue.
QUEUE_SIZE = 10
WARMUP_SOCKETS = 20


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.idle_sockets",
        description="Memory and CPU of idle patron sockets on one daphne process.",
    )
    parser.add_argument("--sockets", type=int, default=BUDGET_SOCKETS)
    parser.add_argument(
        "--idle", type=float, default=3 * HEARTBEAT_S, help="seconds measured while idle"
    )
    parser.add_argument(
        "--calm", type=float, default=5, help="seconds between the last hello and the readings"
    )
    add_service_options(parser, database="reflib_bench_idle")
    return parser.parse_args(argv)


def seed_conversations(count: int) -> list[str]:
    """Migrate, seed one library, start ``count`` waiting chats; returns their tokens."""
    queue_slugs = [f"q{number}" for number in range(math.ceil(count / QUEUE_SIZE))]
    seed(0, queue_slugs=queue_slugs)
    from django.db import connections

    from chat import services as chat_services
    from reflib.models import Queue

    queues = list(Queue.objects.filter(library__slug="bench").order_by("pk"))
    tokens = []
    for index in range(count):
        started = chat_services.conversation_start(
            queue=queues[index % len(queues)],
            question=f"Idle question {index}",
            name=f"Patron {index}",
        )
        tokens.append(started.token)
    connections.close_all()
    return tokens


@dataclass(frozen=True)
class Readings:
    sockets: int
    open_s: float
    baseline_cores: float
    rss_before_kb: int
    rss_open_kb: int
    rss_end_kb: int
    idle: tuple[float, float, float]
    idle_s: float
    idle_frames: int
    closed: int
    errors: int

    def kb_per_socket(self, rss_kb: int) -> float:
        return (rss_kb - self.rss_before_kb) / self.sockets


async def open_patrons(daphne: Daphne, tokens: Sequence[str], concurrency: int = 20) -> list[Side]:
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, token: str) -> Side:
        async with gate:
            return await relay_clients.join_patron(daphne.url, token, f"p{index}.")

    return list(await asyncio.gather(*(one(i, token) for i, token in enumerate(tokens))))


async def close_all(sides: Sequence[Side]) -> None:
    await asyncio.gather(*(side.close() for side in sides), return_exceptions=True)


async def run(args: argparse.Namespace, daphne: Daphne, tokens: list[str]) -> Readings:
    # The first requests load code, open connections and fill caches: not a socket's cost.
    await close_all(await open_patrons(daphne, tokens[:WARMUP_SOCKETS]))
    before = Cpu.sample([daphne.pid])
    await asyncio.sleep(args.calm)
    baseline = Cpu.sample([daphne.pid]).cores_since(before)[0]
    rss_before = daphne.rss_kb()
    began = time.monotonic()
    patrons = await open_patrons(daphne, tokens[WARMUP_SOCKETS:])
    open_s = time.monotonic() - began
    print(f"{len(patrons)} sockets open in {open_s:.0f} s", flush=True)
    try:
        await asyncio.sleep(args.calm)
        rss_open = daphne.rss_kb()
        frames = sum(patron.frames for patron in patrons)
        before = Cpu.sample([daphne.pid])
        await asyncio.sleep(args.idle)
        after = Cpu.sample([daphne.pid])
        rss_end = daphne.rss_kb()
        closed = sum(1 for patron in patrons if patron.reader is None or patron.reader.done())
        return Readings(
            sockets=len(patrons),
            open_s=open_s,
            baseline_cores=baseline,
            rss_before_kb=rss_before,
            rss_open_kb=rss_open,
            rss_end_kb=rss_end,
            idle=after.cores_since(before),
            idle_s=after.at - before.at,
            idle_frames=sum(patron.frames for patron in patrons) - frames,
            closed=closed,
            errors=sum(len(patron.errors) for patron in patrons),
        )
    finally:
        await close_all(patrons)


def report(readings: Readings) -> None:
    daphne, client, machine = readings.idle
    print(
        f"\nidle sockets: {readings.sockets} patron sockets, each hello'd to its own waiting "
        f"chat, on 1 daphne; {os.cpu_count()} cores\n"
        f"daphne RSS: {readings.rss_before_kb / 1024:.1f} MB before, "
        f"{readings.rss_open_kb / 1024:.1f} MB with the sockets open, "
        f"{readings.rss_end_kb / 1024:.1f} MB after {readings.idle_s:.0f} s idle\n"
        f"per socket: {readings.kb_per_socket(readings.rss_open_kb):.1f} KB open, "
        f"{readings.kb_per_socket(readings.rss_end_kb):.1f} KB after the idle time\n"
        f"daphne with no socket open: {readings.baseline_cores:.3f} cores\n"
        f"idle {readings.idle_s:.0f} s ({readings.idle_s / HEARTBEAT_S:.1f} heartbeats of "
        f"{HEARTBEAT_S} s): daphne {daphne:.3f} cores, client {client:.2f}, machine "
        f"{machine:.2f}; {readings.idle_frames} frames received, {readings.closed} sockets "
        f"closed, {readings.errors} error frames"
    )
    kb = max(
        readings.kb_per_socket(readings.rss_open_kb), readings.kb_per_socket(readings.rss_end_kb)
    )
    at_size = (
        "" if readings.sockets >= BUDGET_SOCKETS else f" (the budget is set at {BUDGET_SOCKETS})"
    )
    memory = "meets" if kb < BUDGET_KB_PER_SOCKET else "MISSES"
    print(
        f"\nmemory per socket, the larger reading: {kb:.1f} KB "
        f"(budget < {BUDGET_KB_PER_SOCKET:.0f} KB): {memory}{at_size}"
    )
    cpu = "meets" if daphne < BUDGET_CORES else "MISSES"
    print(
        f"daphne CPU while idle: {100 * daphne:.1f} % of a core "
        f"(budget < {100 * BUDGET_CORES:.0f} %): {cpu}{at_size}"
    )
    if readings.closed or readings.errors:
        print(f"{readings.closed} sockets closed and {readings.errors} errors: not a clean run")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    daphne_env = configure_environment(
        pg=args.pg, database=args.database, redis=args.redis, layer="redis"
    )
    raise_open_files(2 * args.sockets + 1024)
    print(f"seeding {args.database} ...", flush=True)
    began = time.monotonic()
    recreate_database(args.pg, args.database)
    tokens = seed_conversations(args.sockets + WARMUP_SOCKETS)
    print(f"{len(tokens)} chats seeded in {time.monotonic() - began:.0f} s", flush=True)
    daphne = Daphne(daphne_env)
    try:
        readings = asyncio.run(run(args, daphne, tokens))
    finally:
        daphne.stop()
        forget_redis_keys(daphne_env)
        recreate_database(args.pg, args.database, create=False)
    report(readings)
    print(f"daphne log: {daphne.log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
