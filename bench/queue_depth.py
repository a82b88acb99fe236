"""Queue depth benchmark: starting a chat must not cost more as the queue grows (issue 12).

    .venv/bin/python -m bench.queue_depth --depth 500

One run: a fresh PostgreSQL database (migrated; one library with queue ``general`` and one
available, logged-in librarian, seeded through reflib's services), one daphne process serving
reflib, that librarian's desk socket open (so the queue is online), then ``--depth`` chats
started one after another over the wire: ``POST /api/v1/conversations/``, then that patron's
socket says ``hello`` and answers a ``ping`` before the next start. ``--warmup`` starts come
first, untimed in the buckets (a fresh process imports and connects lazily on its first
request), and their patrons stay. Nobody accepts, so each start finds every earlier patron
waiting, each with an open socket that this process keeps reading, as it does the desk's.
Prints each depth bucket's start latency (p50, p99, max), daphne's CPU, the frames the sockets
received per start, and the verdict against the budget: p50 <= 50 ms and p99 <= 150 ms at every
depth up to 500. docs/benchmarks.md explains how to read it.
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
from typing import Any

from bench import relay_clients
from bench.harness import (
    Cpu,
    Daphne,
    add_service_options,
    configure_environment,
    forget_redis_keys,
    percentile_ms,
    raise_open_files,
    recreate_database,
    seed,
    settle,
)
from bench.relay_clients import Side

BUDGET_P50_MS = 50.0
BUDGET_P99_MS = 150.0
BUDGET_DEPTH = 500


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.queue_depth",
        description="Chat start latency against the number of patrons waiting.",
    )
    parser.add_argument("--depth", type=int, default=BUDGET_DEPTH, help="chats started")
    parser.add_argument("--bucket", type=int, default=50, help="depths per row of the report")
    parser.add_argument(
        "--warmup", type=int, default=1, help="starts before the timed ones (reported apart)"
    )
    add_service_options(parser, database="reflib_bench_depth")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Bucket:
    """The starts made while ``first``..``first + len(latencies_s) - 1`` patrons waited."""

    first: int
    latencies_s: list[float]
    cores: tuple[float, float, float]
    daphne_cpu_s: float
    desk_frames: int
    patron_frames: int

    @property
    def starts(self) -> int:
        return len(self.latencies_s)

    @property
    def meets(self) -> bool:
        return (
            percentile_ms(self.latencies_s, 50) <= BUDGET_P50_MS
            and percentile_ms(self.latencies_s, 99) <= BUDGET_P99_MS
        )


def timed_start(base_url: str, index: int) -> tuple[dict[str, Any], float]:
    """Start a chat; its response and the seconds the request took."""
    began = time.perf_counter()
    started = relay_clients.start_conversation(base_url, index)
    return started, time.perf_counter() - began


async def start_and_join(base_url: str, index: int, patrons: list[Side]) -> float:
    """One start, timed, then its patron's socket joins (and stays); the start's seconds."""
    started, seconds = await asyncio.to_thread(timed_start, base_url, index)
    patrons.append(await relay_clients.join_patron(base_url, started["token"], f"p{index}."))
    return seconds


async def run(
    args: argparse.Namespace, daphne: Daphne, session_key: str
) -> tuple[list[float], list[Bucket]]:
    desk = await relay_clients.open_desk(daphne.url, session_key, "desk.")
    patrons: list[Side] = []
    buckets: list[Bucket] = []
    pids = [daphne.pid]
    try:
        warmup = [await start_and_join(daphne.url, index, patrons) for index in range(args.warmup)]
        await settle(pids)
        for first in range(args.warmup, args.warmup + args.depth, args.bucket):
            before = Cpu.sample(pids)
            desk_frames = desk.frames
            patron_frames = sum(patron.frames for patron in patrons)
            latencies = []
            for index in range(first, min(first + args.bucket, args.warmup + args.depth)):
                latencies.append(await start_and_join(daphne.url, index, patrons))
            after = Cpu.sample(pids)
            bucket = Bucket(
                first,
                latencies,
                after.cores_since(before),
                after.daphne - before.daphne,
                desk.frames - desk_frames,
                sum(patron.frames for patron in patrons) - patron_frames,
            )
            buckets.append(bucket)
            print(
                f"{first:4d}-{first + bucket.starts - 1}: p50 "
                f"{percentile_ms(latencies, 50):.0f} ms, daphne {bucket.cores[0]:.2f} cores",
                flush=True,
            )
        errors = [error for side in [desk, *patrons] for error in side.errors]
        if errors:
            print(f"{len(errors)} error frames, the first: {errors[0]}")
    finally:
        await asyncio.gather(*(side.close() for side in [desk, *patrons]), return_exceptions=True)
    return warmup, buckets


def report(args: argparse.Namespace, warmup: list[float], buckets: list[Bucket]) -> None:
    print(
        f"\nqueue depth: {args.depth} chats started one after another, 1 desk open, every "
        f"waiting patron's socket open; 1 daphne, {os.cpu_count()} cores\n"
        f"{'waiting':>9} | {'starts':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} | "
        f"{'daphne':>6} {'machine':>7} {'ms/start':>8} | {'desk':>5} {'patrons':>8}\n"
        f"{'-' * 9}-+-{'-' * 30}-+-{'-' * 23}-+-{'-' * 14}"
    )
    for bucket in buckets:
        latencies = bucket.latencies_s
        daphne, _, machine = bucket.cores
        print(
            f"{bucket.first:4d}-{bucket.first + bucket.starts - 1:<4d} | {bucket.starts:6d} "
            f"{percentile_ms(latencies, 50):7.1f} {percentile_ms(latencies, 99):7.1f} "
            f"{percentile_ms(latencies, 100):7.1f} | {daphne:6.2f} {machine:7.2f} "
            f"{1000 * bucket.daphne_cpu_s / bucket.starts:8.1f} | "
            f"{bucket.desk_frames / bucket.starts:5.1f} {bucket.patron_frames / bucket.starts:8.1f}"
        )
    print(
        "(latency: the POST's round trip; daphne, machine: cores busy during the bucket; "
        "ms/start: daphne CPU per start, with the patron's hello; desk, patrons: frames "
        "received per start by the desk and by all patrons together)"
    )
    if warmup:
        print(
            f"warm-up, not in the rows: {len(warmup)} start(s) of the fresh process, the first "
            f"{1000 * warmup[0]:.1f} ms"
        )
    missed = [bucket for bucket in buckets if not bucket.meets]
    verdict = "meets" if not missed else f"MISSES from {missed[0].first} waiting"
    if args.warmup + args.depth < BUDGET_DEPTH:
        verdict += f" (the budget runs up to {BUDGET_DEPTH} waiting)"
    print(
        f"\nchat start at every depth: p50 <= {BUDGET_P50_MS:.0f} ms and "
        f"p99 <= {BUDGET_P99_MS:.0f} ms: {verdict}"
    )
    total = sum(sum(bucket.latencies_s) for bucket in buckets)
    print(f"all {args.depth} starts: {total:.1f} s of request time")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    daphne_env = configure_environment(
        pg=args.pg, database=args.database, redis=args.redis, layer="redis"
    )
    raise_open_files(2 * (args.warmup + args.depth) + 1024)
    print(f"seeding {args.database} ...", flush=True)
    recreate_database(args.pg, args.database)
    (session_key,) = seed(1)
    daphne = Daphne(daphne_env)
    began = time.monotonic()
    try:
        warmup, buckets = asyncio.run(run(args, daphne, session_key))
    finally:
        daphne.stop()
        forget_redis_keys(daphne_env)
        recreate_database(args.pg, args.database, create=False)
    report(args, warmup, buckets)
    print(f"run: {math.ceil(time.monotonic() - began)} s; daphne log: {daphne.log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
