"""The client half of the chat relay benchmark: conversation pairs over real WebSockets.

A *pair* is a patron socket and a librarian socket. Against reflib they speak PROTOCOL.md: the
librarian's desk connects with its session cookie, the patron starts a chat with
``POST /api/v1/conversations/``, the librarian accepts it, the patron says hello with the token.
Against the bare relay (``/ws/bench/relay/``) both sockets join one group and every text frame
goes to both. Either way a message *arrives* when the other side receives it, and the sender
knows it was taken when it gets its ``ack`` (reflib) or its own copy (relay).

Two drivers: ``lockstep`` (each pair sends, waits for arrival and ack, the other side answers,
repeat: the server is saturated) and ``paced`` (each side sends on a fixed period, never
waiting: latency at a given load).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

RELAY_PATH = "/ws/bench/relay/"
QUEUE = "bench/general"
TIMEOUT_S = 60
# About the length of a typical chat line.
BODY = "Could you tell me where the interlibrary loan request form is, please?"
PATRON_TO_LIBRARIAN = "patron→librarian"
LIBRARIAN_TO_PATRON = "librarian→patron"

now = time.perf_counter
Arrival = tuple[float, dict[str, Any]]


@dataclass
class Side:
    """One socket. Frames it waits for are keyed ``(kind, message id)``."""

    ws: ClientConnection
    prefix: str
    relay: bool
    waiting: dict[tuple[str, str], asyncio.Future[Arrival]] = field(default_factory=dict)
    # Paced mode: arrival time of each message from the other side, by message id.
    arrivals: dict[str, float] | None = None
    # Paced mode: when each of this side's own messages was acknowledged, by message id.
    acks: dict[str, float] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Back-pressure taken as a client should: a message refused busy (rate_limited) goes again
    # after retry_after_s, and what the side writes meanwhile waits behind it, then goes one at
    # a time, each after the ack of the one before, until nothing is held: the sender slows
    # down to what the server takes. unacked: raw frames by id until their ack; held: waiting.
    unacked: dict[str, str] = field(default_factory=dict)
    held: list[tuple[str, str]] = field(default_factory=list)
    # Paced: when each message last went on the wire, by id, and the time from there to the
    # server's answer (its ack or its refusal): how long the server kept it.
    on_wire: dict[str, float] | None = None
    answers: list[float] = field(default_factory=list)
    hold_until: float = 0.0
    flush: asyncio.TimerHandle | None = None
    resent: int = 0
    frames: int = 0
    reader: asyncio.Task[None] | None = None
    counter: Iterator[int] = field(default_factory=itertools.count)

    def next_id(self) -> str:
        """A message id unique on this socket across phases (reflib keeps client ids)."""
        return f"{self.prefix}{next(self.counter)}"

    def expect(self, kind: str, key: str = "") -> asyncio.Future[Arrival]:
        future: asyncio.Future[Arrival] = asyncio.get_running_loop().create_future()
        self.waiting[(kind, key)] = future
        return future

    def start(self) -> None:
        self.reader = asyncio.create_task(self._read())

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def send_message(self, message_id: str, raw: str) -> None:
        if not self.relay:
            self.unacked[message_id] = raw
            if self.held or now() < self.hold_until:
                self.held.append((message_id, raw))
                return
        if self.on_wire is not None:
            self.on_wire[message_id] = now()
        await self.ws.send(raw)

    def _refused_busy(self, message_id: str, retry_after_s: float) -> None:
        raw = self.unacked.get(message_id)
        if raw is None:
            return
        self.resent += 1
        self.held.append((message_id, raw))
        self.hold_until = max(self.hold_until, now() + retry_after_s)
        if self.flush is None:
            self.flush = asyncio.get_running_loop().call_at(
                asyncio.get_running_loop().time() + retry_after_s, self._send_held
            )

    def _send_held(self) -> None:
        loop = asyncio.get_running_loop()
        if now() < self.hold_until:  # refused again meanwhile
            self.flush = loop.call_at(loop.time() + self.hold_until - now(), self._send_held)
            return
        self.flush = None
        self._send_next_held()

    def _send_next_held(self) -> None:
        if self.held and self.flush is None:
            message_id, raw = self.held.pop(0)
            if self.on_wire is not None:
                self.on_wire[message_id] = now()
            asyncio.ensure_future(self.ws.send(raw))  # noqa: RUF006 (the reader sees the answer)

    async def _read(self) -> None:
        with suppress(ConnectionClosed):
            async for raw in self.ws:
                received = now()
                self.frames += 1
                frame = json.loads(raw)
                kind, key = self._classify(frame)
                if kind == "msg" and self.arrivals is not None:
                    self.arrivals[key] = received
                elif kind == "ack" and self.acks is not None:
                    self.acks[key] = received
                future = self.waiting.pop((kind, key), None)
                if future is not None and not future.done():
                    future.set_result((received, frame))

    def _classify(self, frame: dict[str, Any]) -> tuple[str, str]:
        kind = frame.get("type")
        if self.relay:
            key = str(frame.get("id", ""))
            return ("ack" if key.startswith(self.prefix) else "msg"), key
        if kind == "message":
            key = frame.get("client_msg_id") or ""
            return ("echo" if key.startswith(self.prefix) else "msg"), key
        if kind in ("ack", "error"):
            self._answered(str(frame.get("client_msg_id")))
        if kind == "ack":
            self.unacked.pop(frame["client_msg_id"], None)
            self._send_next_held()
            return "ack", frame["client_msg_id"]
        if kind == "error":
            refused = str(frame.get("client_msg_id"))
            if frame.get("code") == "rate_limited" and refused in self.unacked:
                self._refused_busy(refused, float(frame.get("retry_after_s") or 1))
            else:
                self.errors.append(frame)
        return str(kind), ""

    def _answered(self, message_id: str) -> None:
        if self.on_wire is not None and message_id in self.on_wire:
            self.answers.append(now() - self.on_wire.pop(message_id))

    async def ask(self, frame: dict[str, Any], answer: str) -> dict[str, Any]:
        """Send ``frame`` and wait for the first frame of type ``answer``."""
        future = self.expect(answer)
        await self.send_json(frame)
        _, reply = await asyncio.wait_for(future, TIMEOUT_S)
        return reply

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            with suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.reader, 5)


@dataclass
class Pair:
    patron: Side
    librarian: Side
    conversation: str = ""

    def frame(self, side: Side, message_id: str) -> str:
        if side.relay:
            return json.dumps({"type": "relay", "id": message_id, "body": BODY})
        frame = {"type": "send", "client_msg_id": message_id, "body": BODY}
        if side is self.librarian:
            frame["conversation"] = self.conversation
        return json.dumps(frame)

    async def close(self) -> None:
        await asyncio.gather(self.patron.close(), self.librarian.close())


async def connect_socket(url: str, **kwargs: Any) -> ClientConnection:
    return await connect(
        url, compression=None, ping_interval=None, open_timeout=TIMEOUT_S, **kwargs
    )


def start_conversation(base_url: str, index: int) -> dict[str, Any]:
    body = {"queue": QUEUE, "question": f"Bench question {index}", "name": f"Patron {index}"}
    request = urllib.request.Request(  # noqa: S310 (the benchmark's own http:// server)
        f"{base_url}/api/v1/conversations/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
        return dict(json.load(response))


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://")


async def open_desk(base_url: str, session_key: str, prefix: str) -> Side:
    """A librarian's desk socket, logged in with ``session_key``, after its ``welcome``."""
    ws = await connect_socket(
        f"{ws_url(base_url)}/ws/v1/desk/", additional_headers={"Cookie": f"sessionid={session_key}"}
    )
    desk = Side(ws, prefix, relay=False)
    welcome = desk.expect("welcome")
    desk.start()
    await asyncio.wait_for(welcome, TIMEOUT_S)
    return desk


async def join_patron(base_url: str, token: str, prefix: str) -> Side:
    """A patron's socket after its ``hello`` and a ``ping``: frames are handled in order per
    socket, so the ``pong`` means the replay and queue position before it have been sent."""
    patron = Side(await connect_socket(f"{ws_url(base_url)}/ws/v1/patron/"), prefix, relay=False)
    patron.start()
    await patron.ask({"type": "hello", "token": token, "last_seq": 0}, "welcome")
    await patron.ask({"type": "ping"}, "pong")
    return patron


async def open_reflib_pair(
    index: int, patron_url: str, librarian_url: str, session_key: str
) -> Pair:
    """Desk connects, patron starts a chat over HTTP, librarian accepts, patron says hello.
    The patron's requests and socket go to ``patron_url``, the desk's to ``librarian_url``."""
    librarian = await open_desk(librarian_url, session_key, f"l{index}.")
    started = await asyncio.to_thread(start_conversation, patron_url, index)
    conversation = started["conversation"]
    await librarian.ask({"type": "accept", "conversation": conversation}, "accepted")
    patron = await join_patron(patron_url, started["token"], f"p{index}.")
    await librarian.ask({"type": "ping"}, "pong")
    return Pair(patron, librarian, conversation)


async def open_relay_pair(index: int, patron_url: str, librarian_url: str) -> Pair:
    # The consumer accepts only after group_add, so an open socket is already in the group.
    path = f"{RELAY_PATH}?group=g{index}"
    patron = Side(await connect_socket(f"{ws_url(patron_url)}{path}"), f"p{index}.", relay=True)
    librarian_ws = await connect_socket(f"{ws_url(librarian_url)}{path}")
    librarian = Side(librarian_ws, f"l{index}.", relay=True)
    patron.start()
    librarian.start()
    return Pair(patron, librarian)


async def open_pairs(
    target: str,
    count: int,
    patron_url: str,
    librarian_url: str,
    session_keys: Sequence[str],
    concurrency: int = 10,
) -> list[Pair]:
    """``count`` pairs; patrons talk to the daphne at ``patron_url``, librarians to the one at
    ``librarian_url`` (the same one, or another serving the same database and layer)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Pair:
        async with gate:
            if target == "reflib":
                return await open_reflib_pair(index, patron_url, librarian_url, session_keys[index])
            return await open_relay_pair(index, patron_url, librarian_url)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def close_pairs(pairs: Sequence[Pair]) -> None:
    await asyncio.gather(*(pair.close() for pair in pairs), return_exceptions=True)


def error_count(pairs: Sequence[Pair]) -> int:
    return sum(len(pair.patron.errors) + len(pair.librarian.errors) for pair in pairs)


@dataclass
class Result:
    """Messages that arrived in the measurement window, and their latencies by direction."""

    seconds: float
    latencies_s: dict[str, list[float]]
    lost: int = 0
    # Paced: messages sent, and those that arrived before the last send was due.
    sent: int = 0
    arrived_in_window: int = 0
    # Paced: messages refused busy and sent again (back-pressure), counted once per refusal;
    # each patron message's time from its first send to its ack; and the time from each
    # message's last send to the server's answer, ack or refusal (both sides).
    resent: int = 0
    ack_latencies_s: list[float] = field(default_factory=list)
    answer_latencies_s: list[float] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(len(values) for values in self.latencies_s.values())

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds


async def lockstep(pairs: Sequence[Pair], *, warmup_s: float, seconds: float) -> Result:
    """Every pair: patron sends, waits for the librarian's receipt and its own ack; the
    librarian answers the same way; repeat. Counts the messages done inside the window."""
    window_start = now() + warmup_s
    window_end = window_start + seconds
    latencies: dict[str, list[float]] = {PATRON_TO_LIBRARIAN: [], LIBRARIAN_TO_PATRON: []}
    lost = 0

    async def run(pair: Pair) -> None:
        nonlocal lost
        directions = itertools.cycle(
            (
                (pair.patron, pair.librarian, PATRON_TO_LIBRARIAN),
                (pair.librarian, pair.patron, LIBRARIAN_TO_PATRON),
            )
        )
        while now() < window_end:
            sender, receiver, direction = next(directions)
            message_id = sender.next_id()
            ack = sender.expect("ack", message_id)
            arrival = receiver.expect("msg", message_id)
            sent = now()
            await sender.send_message(message_id, pair.frame(sender, message_id))
            try:
                (acked, _), (arrived, _) = await asyncio.wait_for(
                    asyncio.gather(ack, arrival), TIMEOUT_S
                )
            except TimeoutError:
                lost += 1
                sender.waiting.pop(("ack", message_id), None)
                receiver.waiting.pop(("msg", message_id), None)
                continue
            if window_start <= max(acked, arrived) < window_end:
                latencies[direction].append(arrived - sent)

    await asyncio.gather(*(run(pair) for pair in pairs))
    return Result(seconds, latencies, lost)


async def paced(
    pairs: Sequence[Pair], *, seconds: float, interval_s: float, drain_s: float = 10
) -> Result:
    """Each side sends every ``interval_s`` from a random start in the first interval, on a
    fixed schedule, without waiting. A message's latency runs from its send to its arrival at
    the other side (one clock: this process); what has not arrived ``drain_s`` after the last
    send is lost."""
    sent_at: dict[str, dict[str, float]] = {PATRON_TO_LIBRARIAN: {}, LIBRARIAN_TO_PATRON: {}}
    for pair in pairs:
        pair.patron.arrivals = {}
        pair.librarian.arrivals = {}
        pair.patron.acks = {}
        for side in (pair.patron, pair.librarian):
            side.on_wire = {}
            side.answers = []
    resent_before = _resent(pairs)
    start = now()
    end = start + seconds

    async def run(pair: Pair, sender: Side, direction: str) -> None:
        next_send = start + random.uniform(0, interval_s)
        while next_send < end:
            await asyncio.sleep(max(0.0, next_send - now()))
            message_id = sender.next_id()
            sent_at[direction][message_id] = now()
            await sender.send_message(message_id, pair.frame(sender, message_id))
            next_send += interval_s

    await asyncio.gather(
        *(run(pair, pair.patron, PATRON_TO_LIBRARIAN) for pair in pairs),
        *(run(pair, pair.librarian, LIBRARIAN_TO_PATRON) for pair in pairs),
    )
    expected = sum(len(sent) for sent in sent_at.values())
    drain_end = now() + drain_s
    while now() < drain_end and _arrived(pairs) < expected:  # noqa: ASYNC110 (a count, polled)
        await asyncio.sleep(0.1)
    arrivals = {
        PATRON_TO_LIBRARIAN: _merge(pair.librarian for pair in pairs),
        LIBRARIAN_TO_PATRON: _merge(pair.patron for pair in pairs),
    }
    latencies = {
        direction: [
            arrivals[direction][key] - sent
            for key, sent in sent_at[direction].items()
            if key in arrivals[direction]
        ]
        for direction in sent_at
    }
    in_window = sum(
        1 for direction in arrivals.values() for arrived in direction.values() if arrived <= end
    )
    acks = _merge_acks(pair.patron for pair in pairs)
    ack_latencies = [
        acks[key] - sent for key, sent in sent_at[PATRON_TO_LIBRARIAN].items() if key in acks
    ]
    answers = [
        wait for pair in pairs for side in (pair.patron, pair.librarian) for wait in side.answers
    ]
    for pair in pairs:
        pair.patron.arrivals = pair.librarian.arrivals = pair.patron.acks = None
        pair.patron.on_wire = pair.librarian.on_wire = None
    lost = expected - sum(len(v) for v in latencies.values())
    return Result(
        seconds,
        latencies,
        lost,
        sent=expected,
        arrived_in_window=in_window,
        resent=_resent(pairs) - resent_before,
        ack_latencies_s=ack_latencies,
        answer_latencies_s=answers,
    )


def _merge_acks(sides: Any) -> dict[str, float]:
    merged: dict[str, float] = {}
    for side in sides:
        merged.update(side.acks or {})
    return merged


def _resent(pairs: Sequence[Pair]) -> int:
    return sum(pair.patron.resent + pair.librarian.resent for pair in pairs)


def _arrived(pairs: Sequence[Pair]) -> int:
    return sum(len(side.arrivals or {}) for pair in pairs for side in (pair.patron, pair.librarian))


def _merge(sides: Any) -> dict[str, float]:
    merged: dict[str, float] = {}
    for side in sides:
        merged.update(side.arrivals or {})
    return merged
