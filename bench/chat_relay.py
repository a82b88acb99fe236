"""Chat relay benchmark (SPEC §5): reflib's full chat path against a bare Channels group relay.

    .venv/bin/python -m bench.chat_relay --conversations 200 --layer redis
    .venv/bin/python -m bench.chat_relay --conversations 200 --processes 2 --curve

One run: a fresh PostgreSQL database (migrated; one library, one queue and one librarian per
conversation, seeded through reflib's services), daphne serving ``bench.relay_asgi`` (reflib
plus a bare relay route on the same channel layer), and this process driving patron and
librarian WebSockets, first against the bare relay and then against reflib, in two modes:
lockstep (saturated: throughput) and paced (each side sends every 2 s: latency). Optionally
also: the same lockstep with patrons on one daphne process and librarians on a second
(``--processes 2``), paced runs from a tenth to twice the lockstep capacity (``--curve``), and
a py-spy recording of daphne during lockstep (``--profile DIR``). Prints tables and the verdict
against the budgets. docs/benchmarks.md explains how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import pyspy, relay_clients
from bench.harness import (
    Cpu,
    Daphne,
    PeakRss,
    add_service_options,
    configure_environment,
    forget_redis_keys,
    percentile_ms,
    raise_open_files,
    recreate_database,
    sample_at,
    seed,
    settle,
)
from bench.relay_clients import PATRON_TO_LIBRARIAN, Pair, Result

BUDGET_RATIO = 1.0
BUDGET_P99_MS = 100.0
BUDGET_CONVERSATIONS = 200
CURVE_LOADS = "0.1,0.25,0.5,0.75,1,1.5,2"
# Seconds the curve waits after its last send (plus twice the sending time) for what is still
# on its way; what has not arrived by then counts as lost.
CURVE_DRAIN_S = 10
TARGETS = (("relay", "bare relay"), ("reflib", "full path"))


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
    parser.add_argument(
        "--processes",
        type=int,
        choices=[1, 2],
        default=1,
        help="2: also measure lockstep with patrons on one daphne and librarians on another",
    )
    parser.add_argument(
        "--curve", action="store_true", help="paced runs from 0.1x to 2x the lockstep capacity"
    )
    parser.add_argument(
        "--curve-loads",
        type=lambda text: [float(v) for v in text.split(",")],
        default=CURVE_LOADS,
        help="fractions of capacity, comma-separated (default %(default)s)",
    )
    parser.add_argument(
        "--curve-seconds",
        type=float,
        default=20,
        help="sending time per load (longer when one send period is longer)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record daphne with py-spy during each lockstep window, into DIR",
    )
    add_service_options(parser, database="reflib_bench")
    return parser.parse_args(argv)


# --- measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    result: Result
    cores: tuple[float, float, float]


@dataclass(frozen=True)
class CurvePoint:
    load: float
    interval_s: float
    result: Result
    daphne_cores: float
    rss_end_kb: int
    rss_peak_kb: int


@dataclass
class Measurement:
    """One target's phases on one topology."""

    lockstep: Phase
    paced: Phase | None = None
    curve: list[CurvePoint] = field(default_factory=list)
    errors: int = 0
    profile: Path | None = None


async def open_pairs(
    target: str, args: argparse.Namespace, patron: Daphne, librarian: Daphne, keys: list[str]
) -> list[Pair]:
    began = time.monotonic()
    pairs = await relay_clients.open_pairs(
        target, args.conversations, patron.url, librarian.url, keys
    )
    opened = time.monotonic()
    pids = sorted({patron.pid, librarian.pid})
    await settle(pids)
    print(
        f"{target} on {len(pids)} daphne: {len(pairs)} pairs open in {opened - began:.0f} s, "
        f"daphne idle {time.monotonic() - opened:.0f} s later",
        flush=True,
    )
    return pairs


async def _record(pid: int, delay: float, seconds: float, output: Path) -> None:
    await asyncio.sleep(delay)
    spy = pyspy.record(pid, seconds, output)
    _, stderr = await asyncio.to_thread(spy.communicate)
    if spy.returncode:
        print(f"py-spy failed: {stderr.decode()[-2000:]}", file=sys.stderr)


async def lockstep(
    pairs: list[Pair], args: argparse.Namespace, pids: list[int], profile: Path | None = None
) -> Phase:
    start = asyncio.create_task(sample_at(pids, args.warmup))
    end = asyncio.create_task(sample_at(pids, args.warmup + args.seconds))
    spy = None
    if profile is not None:
        spy = asyncio.create_task(_record(pids[0], args.warmup, args.seconds, profile))
    result = await relay_clients.lockstep(pairs, warmup_s=args.warmup, seconds=args.seconds)
    if spy is not None:
        await spy
    return Phase(result, (await end).cores_since(await start))


async def paced(pairs: list[Pair], args: argparse.Namespace, pids: list[int]) -> Phase:
    before = Cpu.sample(pids)
    result = await relay_clients.paced(
        pairs, seconds=args.paced_seconds, interval_s=args.paced_interval
    )
    return Phase(result, Cpu.sample(pids).cores_since(before))


async def curve(
    pairs: list[Pair], capacity: float, args: argparse.Namespace, daphne: Daphne
) -> list[CurvePoint]:
    """Paced runs at each load (a fraction of ``capacity``, messages per second both ways
    together), each side of each pair sending every ``2 * pairs / offered`` seconds; daphne
    works off any backlog before the next load."""
    points = []
    for load in args.curve_loads:
        interval = 2 * len(pairs) / (load * capacity)
        seconds = max(args.curve_seconds, interval)
        start = asyncio.create_task(sample_at([daphne.pid], 0))
        end = asyncio.create_task(sample_at([daphne.pid], seconds))
        async with PeakRss(daphne) as peak:
            # Beyond capacity the senders' backlog (refused, held) drains after the last send.
            result = await relay_clients.paced(
                pairs, seconds=seconds, interval_s=interval, drain_s=CURVE_DRAIN_S + 2 * seconds
            )
            rss_end = daphne.rss_kb()
        cores = (await end).cores_since(await start)[0]
        points.append(CurvePoint(load, interval, result, cores, rss_end, peak.kb))
        print(
            f"  {load:g}x: offered {result.sent / seconds:.0f} msg/s, "
            f"delivered {result.arrived_in_window / seconds:.0f}, lost {result.lost}",
            flush=True,
        )
        await settle([daphne.pid])
    return points


async def measure_one_process(
    target: str, args: argparse.Namespace, daphne: Daphne, keys: list[str]
) -> Measurement:
    pairs = await open_pairs(target, args, daphne, daphne, keys)
    pids = [daphne.pid]
    profile = args.profile / f"{target}-lockstep.txt" if args.profile else None
    try:
        measurement = Measurement(await lockstep(pairs, args, pids, profile), profile=profile)
        measurement.paced = await paced(pairs, args, pids)
        if args.curve:
            await settle(pids)
            capacity = measurement.lockstep.result.messages_per_s
            print(f"{target}: curve against {capacity:.0f} msg/s", flush=True)
            measurement.curve = await curve(pairs, capacity, args, daphne)
        measurement.errors = relay_clients.error_count(pairs)
    finally:
        await relay_clients.close_pairs(pairs)
    await asyncio.sleep(2)  # disconnect writes settle before the next target
    return measurement


async def measure_two_processes(
    target: str, args: argparse.Namespace, patrons: Daphne, librarians: Daphne, keys: list[str]
) -> Measurement:
    pairs = await open_pairs(target, args, patrons, librarians, keys)
    try:
        measurement = Measurement(await lockstep(pairs, args, [patrons.pid, librarians.pid]))
        measurement.errors = relay_clients.error_count(pairs)
    finally:
        await relay_clients.close_pairs(pairs)
    await asyncio.sleep(2)
    return measurement


@dataclass
class Results:
    one: dict[str, Measurement] = field(default_factory=dict)
    two: dict[str, Measurement] = field(default_factory=dict)


async def run(args: argparse.Namespace, servers: list[Daphne], session_keys: list[str]) -> Results:
    """Each round uses librarians of its own: the first ``conversations`` keys on one process,
    the next ones on two."""
    results = Results()
    count = args.conversations
    for target, _ in TARGETS:
        results.one[target] = await measure_one_process(
            target, args, servers[0], session_keys[:count]
        )
    if len(servers) == 2:
        for target, _ in TARGETS:
            results.two[target] = await measure_two_processes(
                target, args, servers[0], servers[1], session_keys[count:]
            )
    return results


# --- report ---------------------------------------------------------------------------------


def cpu_ms_per_message(phase: Phase) -> float:
    """Milliseconds of daphne CPU (all processes) per message completed."""
    return 1000 * phase.cores[0] / phase.result.messages_per_s


def report(args: argparse.Namespace, results: Results) -> None:
    print(
        f"\nchat relay: layer {args.layer}, {args.conversations} conversations, 1 daphne, "
        f"{os.cpu_count()} cores\n"
        f"{'':10} | {f'lockstep {args.seconds:.0f} s (saturated)':53}"
        f"| paced, each side every {args.paced_interval:g} s, {args.paced_seconds:.0f} s\n"
        f"{'target':10} |  msg/s  p50 ms  p99 ms daphne client machine  ms/msg "
        f"| p50 ms  p95 ms  p99 ms  lost  daphne\n"
        f"{'-' * 10}-+-{'-' * 53}+-{'-' * 36}"
    )
    for target, label in TARGETS:
        lock, paced = results.one[target].lockstep, results.one[target].paced
        assert paced is not None
        lock_lat = lock.result.latencies_s[PATRON_TO_LIBRARIAN]
        paced_lat = paced.result.latencies_s[PATRON_TO_LIBRARIAN]
        daphne, client, machine = lock.cores
        print(
            f"{label:10} | {lock.result.messages_per_s:6.0f} {percentile_ms(lock_lat, 50):7.1f} "
            f"{percentile_ms(lock_lat, 99):7.1f} {daphne:6.2f} {client:6.2f} {machine:7.2f} "
            f"{cpu_ms_per_message(lock):7.2f} "
            f"| {percentile_ms(paced_lat, 50):6.1f} {percentile_ms(paced_lat, 95):7.1f} "
            f"{percentile_ms(paced_lat, 99):7.1f} {paced.result.lost:5d}  {paced.cores[0]:6.2f}"
        )
    print(
        "(latency: patron→librarian, send to arrival; daphne, client, machine: cores busy; "
        "ms/msg: daphne CPU per message; lost: lockstep timeouts + paced messages not arrived "
        "10 s after the last send)"
    )
    report_verdict(args, results)
    if results.two:
        report_processes(results)
    for target, label in TARGETS:
        if results.one[target].curve:
            report_curve(label, results.one[target])
    for target, label in TARGETS:
        measurement = results.one[target]
        if measurement.profile is not None and measurement.profile.exists():
            print(
                f"\n{label}: daphne's interpreter time during lockstep, by the package running "
                f"(py-spy, {measurement.profile})"
            )
            messages = measurement.lockstep.result.messages
            print("\n".join(pyspy.breakdown(measurement.profile, messages)))


def report_verdict(args: argparse.Namespace, results: Results) -> None:
    relay, full = results.one["relay"], results.one["reflib"]
    assert full.paced is not None
    ratio = full.lockstep.result.messages_per_s / relay.lockstep.result.messages_per_s
    p99 = percentile_ms(full.paced.result.latencies_s[PATRON_TO_LIBRARIAN], 99)
    lost = full.lockstep.result.lost + full.paced.result.lost + full.errors
    print(
        f"\nthroughput full/bare: {ratio:.2f}x (budget >= {BUDGET_RATIO:.1f}x): "
        f"{'meets' if ratio >= BUDGET_RATIO else 'MISSES'}"
    )
    verdict = "meets" if p99 <= BUDGET_P99_MS and not lost else "MISSES"
    if args.conversations != BUDGET_CONVERSATIONS:
        verdict += f" (the budget is set at {BUDGET_CONVERSATIONS} conversations)"
    print(f"paced p99 patron→librarian: {p99:.1f} ms (budget <= {BUDGET_P99_MS:.0f} ms): {verdict}")
    if lost:
        print(f"full path: {lost} messages lost or refused (errors: {full.errors})")


def report_processes(results: Results) -> None:
    print(
        "\nlockstep on 1 and 2 daphne processes (2: patrons on one, librarians on the other; "
        "daphne: both processes together)\n"
        f"{'processes':9} | {'target':10} |  msg/s  p50 ms  p99 ms daphne machine  ms/msg  lost\n"
        f"{'-' * 9}-+-{'-' * 10}-+-{'-' * 52}"
    )
    for processes, measurements in ((1, results.one), (2, results.two)):
        for target, label in TARGETS:
            phase = measurements[target].lockstep
            latencies = phase.result.latencies_s[PATRON_TO_LIBRARIAN]
            daphne, _, machine = phase.cores
            print(
                f"{processes:9} | {label:10} | {phase.result.messages_per_s:6.0f} "
                f"{percentile_ms(latencies, 50):7.1f} {percentile_ms(latencies, 99):7.1f} "
                f"{daphne:6.2f} {machine:7.2f} {cpu_ms_per_message(phase):7.2f} "
                f"{phase.result.lost + measurements[target].errors:5d}"
            )
    for target, label in TARGETS:
        one = results.one[target].lockstep.result.messages_per_s
        two = results.two[target].lockstep.result.messages_per_s
        print(f"{label}: 2 processes carry {two / one:.2f}x the messages of 1")
    ratio = (
        results.two["reflib"].lockstep.result.messages_per_s
        / results.two["relay"].lockstep.result.messages_per_s
    )
    print(f"full/bare on 2 processes: {ratio:.2f}x")


def report_curve(label: str, measurement: Measurement) -> None:
    capacity = measurement.lockstep.result.messages_per_s
    print(
        f"\n{label}: paced load against the lockstep capacity ({capacity:.0f} msg/s)\n"
        f"{'load':>5} {'every s':>8} {'offered':>8} {'delivered':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'ack p99':>8} {'server p99':>10} {'lost':>6} {'resent':>7} "
        f"{'daphne':>7} {'RSS MB':>7} {'peak MB':>8}"
    )
    for point in measurement.curve:
        result = point.result
        latencies = result.latencies_s[PATRON_TO_LIBRARIAN]
        print(
            f"{point.load:5.2f} {point.interval_s:8.2f} {result.sent / result.seconds:8.0f} "
            f"{result.arrived_in_window / result.seconds:10.0f} "
            f"{percentile_ms(latencies, 50):8.1f} {percentile_ms(latencies, 99):8.1f} "
            f"{percentile_ms(result.ack_latencies_s, 99):8.1f} "
            f"{percentile_ms(result.answer_latencies_s, 99):10.1f} "
            f"{result.lost:6d} {result.resent:7d} {point.daphne_cores:7.2f} "
            f"{point.rss_end_kb / 1024:7.1f} "
            f"{point.rss_peak_kb / 1024:8.1f}"
        )
    print(
        "(offered and delivered: msg/s both ways, delivered = arrived while sending; latency "
        "patron→librarian, from the first send, so a message refused busy counts its wait; "
        "ack p99: the patron's first send to its ack; server p99: a message's last send to "
        "the server's answer, ack or refusal, both sides; "
        f"lost: not arrived {CURVE_DRAIN_S} s + twice the sending time after the last send; "
        "resent: refused busy (back-pressure) and sent again after retry_after_s; RSS: "
        "daphne's at the end of the drain, and the highest seen)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    daphne_env = configure_environment(
        pg=args.pg, database=args.database, redis=args.redis, layer=args.layer
    )
    raise_open_files(4 * args.conversations + 1024)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(f"seeding {args.database} ...", flush=True)
    recreate_database(args.pg, args.database)
    session_keys = seed(args.conversations * args.processes)
    servers: list[Daphne] = []
    try:
        servers.extend(Daphne(daphne_env) for _ in range(args.processes))
        results = asyncio.run(run(args, servers, session_keys))
    finally:
        for server in servers:
            server.stop()
        forget_redis_keys(daphne_env)
        recreate_database(args.pg, args.database, create=False)
    report(args, results)
    print(f"daphne log: {', '.join(str(server.log) for server in servers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
