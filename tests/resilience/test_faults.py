"""Fault injection on real processes (SPEC §6): two daphne processes, PostgreSQL, and a Redis of
the test's own, with conversations going on while things break.

Clients behave as PROTOCOL.md asks of them (tests/chat/live_clients.py ``ResumingClient``):
reconnect with jittered backoff, resume from the last ``seq``, resend what has no ack under the
same ``client_msg_id``. Every test ends by reading the servers' logs: a fault may produce
warnings, never a traceback. Reconnect times are printed (``pytest -s``) and recorded in
docs/operations.md.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.db import connection, connections
from pytest_django import Settings
from websockets.exceptions import ConnectionClosed

from chat import services
from chat.models import Conversation, PresenceState
from chat.outages import CLOSE_TRY_AGAIN
from reflib.models import Queue
from reflib.services import library_upsert
from tests.chat.live_clients import LiveSocket, ResumingClient, open_desk, open_patron
from tests.chat.test_live_cluster import (
    Pair,
    accepted,
    printed_logs,
    queued,
    run,
    send,
    session_id,
    start_pair,
    stop_pair,
    use_prefix,
)
from tests.conftest import Cast
from tests.live import DaphneCluster
from tests.resilience.faults import OwnRedis, log_text, postgres_refusing, tracebacks

# The scenarios carry their own deadlines (up to 150 s, ``run``); pytest-timeout's default 120 s
# would interrupt one mid-teardown instead, leaving its servers and settings behind.
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(300)]

BACK_WITHIN_S = 15.0
STORM_PATRONS = 300
# Every start tells each patron waiting in the same queue its new position: spread over queues,
# setting up the crowd costs seconds, not minutes.
STORM_QUEUES = 30


@pytest.fixture
def pair(
    daphne_cluster: DaphneCluster,
    redis_server: OwnRedis,
    settings: Settings,
) -> Iterator[Pair]:
    """Two servers on the test's own Redis; the default limit (30 per 10 s) would throttle the
    steady traffic of these tests."""
    pair = start_pair(daphne_cluster, REFLIB_RATE_MESSAGES="10000/10")
    use_prefix(settings, pair)
    try:
        with printed_logs([pair.a, pair.b]):
            yield pair
        found = tracebacks([pair.a, pair.b])  # before the servers stop, which removes the logs
    finally:
        stop_pair(pair)
        # A scenario that failed during a database outage leaves this process's connection
        # terminated: the database's flush after the test, and every later test, would fail.
        connections.close_all()
    assert found == []


def assert_exactly_once(
    conversation: Conversation, clients: list[ResumingClient], sent: dict[str, set[str]]
) -> None:
    """Every stored event reached every client once, in ``seq`` order; every message was stored
    once and acked to its sender with its stored ``seq``. ``sent`` maps a role to its ids."""
    events = list(conversation.events.order_by("seq"))
    total = len(events)
    assert [event.seq for event in events] == list(range(1, total + 1))
    stored = Counter(event.client_msg_id for event in events if event.client_msg_id)
    assert set(stored) == sent["patron"] | sent["desk"]
    assert set(stored.values()) == {1}
    seq_of = {event.client_msg_id: event.seq for event in events if event.client_msg_id}
    for client in clients:
        assert client.duplicates == [], client
        assert client.out_of_order == [], client
        assert client.ack_mismatches == [], client
        assert client.errors == [], client
        assert sorted(client.events) == list(range(1, total + 1)), client
        assert {cid: ack["seq"] for cid, ack in client.acks.items()} == {
            cid: seq_of[cid] for cid in sent[client.role]
        }, client


def connected_after(client: ResumingClient, since: float) -> Callable[[], bool]:
    """The client has (re)connected after ``since`` (event-loop time)."""
    return lambda: any(at > since for at in client.connected_at)


@dataclass
class Talk:
    """Both sides of one conversation sending numbered messages until told to stop."""

    patron: ResumingClient
    desk: ResumingClient
    sent: dict[str, set[str]] = field(default_factory=lambda: {"patron": set(), "desk": set()})

    async def chatter(self, stop: asyncio.Event, interval: float) -> None:
        n = 0
        while not stop.is_set():
            for client in (self.patron, self.desk):
                client_msg_id = f"{client.role}-{client.conversation}-{n:04d}"
                await client.send(client_msg_id, f"{client.role} message {n}")
                self.sent[client.role].add(client_msg_id)
            n += 1
            await asyncio.sleep(interval)

    def everything_arrived(self) -> Callable[[], bool]:
        def done() -> bool:
            for client, other in ((self.patron, "desk"), (self.desk, "patron")):
                heard = {
                    f["client_msg_id"] for f in client.events.values() if f["type"] == "message"
                }
                if client.pending or not self.sent[other] <= heard:
                    return False
            return True

        return done


def test_conversations_survive_a_drop_a_kill_a_redis_restart_and_pause_and_a_database_outage(
    pair: Pair, redis_server: OwnRedis, cast: Cast
) -> None:
    conversations = [accepted(cast) for _ in range(2)]
    lena = session_id(cast.librarian)
    timeline: list[str] = []
    began = time.monotonic()

    def mark(what: str) -> None:
        timeline.append(what)
        print(f"{time.monotonic() - began:6.2f} s  {what}")

    async def back_after(clients: list[ResumingClient], since: float, what: str) -> float:
        """Seconds until every client has connected again after ``since`` (event-loop time)."""
        for client in clients:
            await client.wait_for(
                connected_after(client, since),
                BACK_WITHIN_S,
                f"back after {what}",
            )
        worst = max(min(t for t in c.connected_at if t > since) - since for c in clients)
        mark(f"{what}: every client back within {worst:.2f} s")
        return worst

    async def inject_faults(talks: list[Talk]) -> dict[str, float]:
        loop = asyncio.get_running_loop()
        patrons = [talk.patron for talk in talks]
        everyone = patrons + [talk.desk for talk in talks]
        times: dict[str, float] = {}
        await asyncio.sleep(1)
        at = loop.time()
        for patron in patrons:
            patron.drop()  # (a) no close frame: the TCP connection is simply gone
        mark("patron sockets cut")
        times["cut socket"] = await back_after(patrons, at, "the cut")
        await asyncio.sleep(1)
        on_a = [client for client in everyone if client.connections[-1] == pair.a.ws_url]
        assert on_a, everyone
        at = loop.time()
        pair.a.kill()  # (b)
        mark(f"daphne A SIGKILLed under {len(on_a)} of the {len(everyone)} clients")
        times["SIGKILL, failover"] = await back_after(on_a, at, "the SIGKILL")
        await asyncio.to_thread(pair.a.start)
        mark("daphne A restarted")
        await asyncio.sleep(1)
        await asyncio.to_thread(redis_server.restart)  # (c)
        mark("Redis restarted (nothing kept)")
        await asyncio.sleep(2)
        sleeper = redis_server.pause(3)  # (d)
        mark("Redis paused for 3 s")
        await asyncio.to_thread(sleeper.wait, 10)
        mark("Redis answers again")
        await asyncio.sleep(1)
        with postgres_refusing():  # (e)
            mark("PostgreSQL refuses the test database")
            await asyncio.sleep(3)
        at = loop.time()
        mark("PostgreSQL accepts again")
        await asyncio.sleep(1)
        return times

    async def scenario() -> tuple[list[Talk], dict[str, float]]:
        talks = []
        for n, started in enumerate(conversations):
            servers = [pair.a, pair.b] if n % 2 == 0 else [pair.b, pair.a]
            public_id = started.conversation.public_id
            talks.append(
                Talk(
                    ResumingClient("patron", servers, public_id, started.token),
                    ResumingClient("desk", servers[::-1], public_id, lena),
                )
            )
        clients = [client for talk in talks for client in (talk.patron, talk.desk)]
        for client in clients:
            client.start()
        try:
            for client in clients:
                await client.wait_for(connected_after(client, 0), 10, "connected")
            stop = asyncio.Event()
            chatter = [asyncio.create_task(talk.chatter(stop, 0.1)) for talk in talks]
            times = await inject_faults(talks)
            stop.set()
            await asyncio.gather(*chatter)
            mark("all sent")
            for talk in talks:
                await talk.patron.wait_for(talk.everything_arrived(), 30, "everything arrived")
            mark("all arrived")
            await asyncio.sleep(0.5)  # a late duplicate would arrive now
        finally:
            for client in clients:
                await client.stop()
        return talks, times

    talks, times = run(scenario(), timeout=120)
    connection.close()  # the database outage ended this process's connection too

    for started, talk in zip(conversations, talks, strict=True):
        assert_exactly_once(started.conversation, [talk.patron, talk.desk], talk.sent)
        assert len(talk.sent["patron"]) >= 100, talk.sent  # traffic went on through the faults
    # The faults really reached the clients.
    for talk in talks:
        assert len(talk.patron.connections) >= 2, talk.patron
        assert all(status < 500 for status in talk.patron.refused_statuses), talk.patron
    messages = sum(len(talk.sent["patron"]) + len(talk.sent["desk"]) for talk in talks)
    print(f"{messages} messages acked, each delivered once to both sides; back within {times}")
    assert all(seconds < BACK_WITHIN_S for seconds in times.values())
    # The outages were noticed, and handled without a traceback (checked by the fixture).
    logs = log_text(pair.a) + log_text(pair.b)
    assert "channel layer unreachable" in logs
    assert "database unreachable" in logs


def test_a_reconnect_storm_after_a_sigkill_gets_no_5xx_and_everyone_is_back_within_15_s(
    pair: Pair, cast: Cast
) -> None:
    library_upsert(slug=cast.library.slug, queue_slugs=[f"q{n}" for n in range(STORM_QUEUES)])
    queues = list(Queue.objects.filter(library=cast.library, slug__startswith="q"))
    services.presence_set(user=cast.librarian, state=PresenceState.AVAILABLE)
    patrons = [
        services.conversation_start(queue=queues[n % len(queues)], question=f"Question {n}?")
        for n in range(STORM_PATRONS)
    ]

    async def storm(clients: list[ResumingClient], kill: Callable[[], None]) -> list[float]:
        loop = asyncio.get_running_loop()
        at = loop.time()
        kill()
        for client in clients:
            await client.wait_for(connected_after(client, at), BACK_WITHIN_S, "back")
        return sorted(min(t for t in c.connected_at if t > at) - at for c in clients)

    async def scenario() -> dict[str, list[float]]:
        clients = [
            ResumingClient("patron", [pair.a, pair.b], p.conversation.public_id, p.token)
            for p in patrons
        ]
        for client in clients:
            client.start()
        try:
            for client in clients:
                await client.wait_for(connected_after(client, 0), 30, "connected")
            times = {"A SIGKILLed, all to B": await storm(clients, pair.a.kill)}
            await asyncio.to_thread(pair.a.start)
            times["B SIGKILLed, all to A"] = await storm(clients, pair.b.kill)
            await asyncio.to_thread(pair.b.start)
        finally:
            for client in clients:
                await client.stop()
        for client in clients:
            assert client.duplicates == [], client
            assert client.out_of_order == [], client
            assert client.refused_statuses == [], client
        return times

    times = run(scenario(), timeout=150)

    for what, seconds in times.items():
        print(
            f"{what}: {STORM_PATRONS} patrons back, median {statistics.median(seconds):.2f} s, "
            f"95th {seconds[int(len(seconds) * 0.95) - 1]:.2f} s, slowest {seconds[-1]:.2f} s"
        )
        assert seconds[-1] < BACK_WITHIN_S


def test_sockets_serve_from_the_database_while_redis_is_down_and_catch_up_when_it_returns(
    pair: Pair, redis_server: OwnRedis, cast: Cast
) -> None:
    started = accepted(cast)
    conversation = started.conversation.public_id
    lena = session_id(cast.librarian)

    async def scenario() -> dict[str, object]:
        seen: dict[str, object] = {}
        patron, _ = await open_patron(pair.a, started.token, last_seq=3)
        try:
            await asyncio.to_thread(redis_server.stop)
            # A handshake and a send while the layer is down: welcome, replay, ack.
            desk, welcome = await open_desk(pair.b, lena)
            try:
                seen["desk welcome"] = welcome["user"]
                await desk.send({"type": "subscribe", "conversation": conversation, "last_seq": 0})
                seen["desk replay"] = [
                    (await desk.recv_until("status", seq=3))["status"],
                ]
                await desk.send(send("lena-1", "Found it on floor 2.", conversation))
                seen["desk ack"] = (await desk.recv_until("ack", client_msg_id="lena-1"))["seq"]
                await patron.send(send("pat-1", "Thank you!"))
                seen["patron ack"] = (await patron.recv_until("ack", client_msg_id="pat-1"))["seq"]
                second, _ = await open_patron(pair.b, started.token, last_seq=0)
                await second.recv_until("message", seq=5)
                seen["second patron socket replayed"] = [f["seq"] for f in second.stored()]
                await second.close()
                # Redis comes back empty: the sockets join their groups again and catch up.
                await asyncio.to_thread(redis_server.start)
                heard = await patron.recv_until("message", client_msg_id="lena-1", seconds=10)
                seen["patron caught up"] = heard["seq"]
                await desk.recv_until("message", client_msg_id="pat-1", seconds=10)
                await desk.send(send("lena-2", "Anything else?", conversation))
                live = await patron.recv_until("message", client_msg_id="lena-2", seconds=3)
                seen["live again"] = live["seq"]
            finally:
                await desk.close()
        finally:
            await patron.close()
        return seen

    seen = run(scenario())

    assert seen == {
        "desk welcome": "Lena",
        "desk replay": ["active"],
        "desk ack": 4,
        "patron ack": 5,
        "second patron socket replayed": [1, 2, 3, 4, 5],
        "patron caught up": 4,
        "live again": 6,
    }
    assert "channel layer unreachable" in log_text(pair.a)


def test_sockets_close_with_4503_while_the_database_refuses_and_resume_after(
    pair: Pair, cast: Cast
) -> None:
    started = accepted(cast)
    waiting = queued(cast, "Are you open on Sunday?")
    lena = session_id(cast.librarian)

    async def close_code(opening: Callable[[], object]) -> int | str:
        try:
            socket: LiveSocket = await opening()  # type: ignore[misc]
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else "no close frame"
        return await socket.close_code()

    async def scenario() -> dict[str, object]:
        seen: dict[str, object] = {}
        patron, _ = await open_patron(pair.a, started.token, last_seq=3)
        try:
            with postgres_refusing():
                await patron.send(send("pat-1", "Is anyone there?"))
                seen["open socket sending"] = await patron.close_code()
                seen["patron handshake"] = await close_code(
                    lambda: open_patron(pair.b, started.token)
                )
                seen["desk handshake"] = await close_code(lambda: open_desk(pair.a, lena))
        finally:
            await patron.close()
        # Connections are allowed again: the client resumes and resends under the same id.
        patron, _ = await open_patron(pair.b, started.token, last_seq=3)
        try:
            await patron.send(send("pat-1", "Is anyone there?"))
            seen["after, ack"] = (await patron.recv_until("ack", client_msg_id="pat-1"))["seq"]
        finally:
            await patron.close()
        desk, desk_welcome = await open_desk(pair.a, lena)
        await desk.close()
        seen["after, desk queue"] = [item["conversation"] for item in desk_welcome["queue"]]
        return seen

    seen = run(scenario())
    connection.close()  # the database outage ended this process's connection too
    assert Conversation.objects.count() == 2

    assert seen == {
        "open socket sending": CLOSE_TRY_AGAIN,
        "patron handshake": CLOSE_TRY_AGAIN,
        "desk handshake": CLOSE_TRY_AGAIN,
        "after, ack": 4,
        "after, desk queue": [waiting.conversation.public_id],
    }
    assert "database unreachable" in log_text(pair.a)
