"""The chat across real processes: two daphne servers, PostgreSQL and the Redis channel layer.

SPEC §0 and §6: every process is stateless, so a patron on one process and a librarian on
another chat normally, and nothing is lost or repeated when a client drops, a server process is
killed, or Redis restarts. The tests share one pair of daphne processes on a channel-layer
prefix of their own (the reliability test, which kills one, has its own pair); each writes its
rows with the ORM and talks to the servers over real sockets (tests/chat/live_clients.py).
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client
from pytest_django import Settings
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from websockets.exceptions import ConnectionClosed

from chat import services
from chat.models import Conversation, Event, EventKind, PresenceState
from tests.chat.live_clients import (
    DEMO_ORIGIN,
    QUIET_S,
    Frame,
    LiveSocket,
    ResumingClient,
    is_stored,
    open_desk,
    open_patron,
)
from tests.conftest import Cast
from tests.live import DaphneCluster, DaphneProcess
from tests.services import postgres_problem, redis_problem, require

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

T = TypeVar("T")
SCENARIO_TIMEOUT_S = 60.0
FOREIGN_ORIGIN = "https://evil.example"
OTHER_LIBRARY_ORIGIN = "https://other-library.example"  # allowed, but for `other` only


@dataclass(frozen=True)
class Pair:
    a: DaphneProcess
    b: DaphneProcess
    prefix: str

    def __repr__(self) -> str:  # not the processes' environment
        return f"<Pair A={self.a.port} B={self.b.port} prefix={self.prefix}>"


def start_pair(cluster: DaphneCluster, **env: str) -> Pair:
    """Two daphne processes, started side by side, on a channel-layer prefix of their own.

    The prefix keeps their groups and rate-limit counters apart from any other run on the same
    Redis.
    """
    prefix = f"reflib-live-{uuid.uuid4().hex[:12]}"
    # Every client of these tests comes from 127.0.0.1: the per-address and per-socket flood
    # limits (tests/security) would count them all as one abuser.
    everyone_local = {
        "REFLIB_MAX_SOCKETS_PER_ADDRESS": "100000",
        "REFLIB_RATE_MESSAGES_ADDRESS": "1000000/10",
        "REFLIB_RATE_FRAMES": "1000000/10",
    }
    env = {
        "REFLIB_CHANNEL_PREFIX": prefix,
        "REFLIB_CACHE_PREFIX": prefix,
        **everyone_local,
        **env,
    }
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: cluster.start(1, **env)[0], range(2))
    return Pair(a, b, prefix)


def stop_pair(pair: Pair) -> None:
    """Stop both servers side by side (each may take seconds to shut down)."""
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(DaphneProcess.stop, [pair.a, pair.b]))


def use_prefix(settings: Settings, pair: Pair) -> None:
    """This process publishes on the pair's prefix too, so what the ORM setup sends (queue
    changes, events) reaches the servers' sockets."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["prefix"] = pair.prefix
    settings.CHANNEL_LAYERS = layers


@contextlib.contextmanager
def printed_logs(processes: list[DaphneProcess]) -> Iterator[None]:
    """Print what the servers log meanwhile; pytest shows it when the test fails."""
    sizes = {process.port: process.log.stat().st_size for process in processes}
    try:
        yield
    finally:
        for process in processes:
            with process.log.open("rb") as log:
                log.seek(sizes.get(process.port, 0))
                text = log.read()[-20_000:].decode(errors="replace")
            print(f"--- daphne on port {process.port} ---\n{text}")


@pytest.fixture(scope="module")
def shared_pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    """One pair for the tests that neither kill a server nor restart Redis: starting daphne
    costs seconds. Each test still gets fresh rows (transactional tests flush the database);
    its conversations, libraries and users, hence its groups, are new."""
    require(postgres_problem())
    require(redis_problem())
    request.getfixturevalue("django_db_setup")  # the test database the servers will use
    cluster = DaphneCluster()
    try:
        pair = start_pair(cluster)
        yield pair
        stop_pair(pair)
    finally:
        cluster.stop()


@pytest.fixture
def pair(shared_pair: Pair, settings: Settings) -> Iterator[Pair]:
    use_prefix(settings, shared_pair)
    with printed_logs([shared_pair.a, shared_pair.b]):
        yield shared_pair


def run(scenario: Coroutine[Any, Any, T], timeout: float = SCENARIO_TIMEOUT_S) -> T:
    return asyncio.run(asyncio.wait_for(scenario, timeout))


def session_id(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def queued(cast: Cast, question: str = "Do you have The Hobbit?") -> services.StartedConversation:
    """A waiting conversation: seq 1 is the question, seq 2 the ``queued`` status."""
    services.presence_set(user=cast.librarian, state=PresenceState.AVAILABLE)
    return services.conversation_start(queue=cast.queue, question=question, name="Pat Patron")


def accepted(cast: Cast) -> services.StartedConversation:
    """A conversation Lena answers: seq 3 is the ``active`` status."""
    started = queued(cast)
    services.conversation_accept(conversation_id=started.conversation.pk, user=cast.librarian)
    return started


def stored_seqs(frames: list[Frame]) -> list[int]:
    return [frame["seq"] for frame in frames if is_stored(frame)]


def db_seqs(conversation: Conversation) -> list[int]:
    return list(conversation.events.order_by("seq").values_list("seq", flat=True))


def send(client_msg_id: str, body: str, conversation: str | None = None) -> Frame:
    frame: Frame = {"type": "send", "client_msg_id": client_msg_id, "body": body}
    if conversation is not None:
        frame["conversation"] = conversation
    return frame


# --- Redis, for the restart and the group clean-up ----------


def redis_client() -> Redis:
    return Redis.from_url(django_settings.REDIS_URL, socket_timeout=2)


def redis_port() -> int:
    return urlsplit(django_settings.REDIS_URL).port or 6379


def redis_answers() -> bool:
    client = redis_client()
    try:
        return bool(client.ping())
    except RedisConnectionError:
        return False
    finally:
        client.close()


def redis_start() -> None:
    subprocess.run(
        [
            "redis-server",
            "--daemonize", "yes",
            "--bind", "127.0.0.1", "-::1",
            "--port", str(redis_port()),
            "--save", "",
            "--appendonly", "no",
            "--dir", "/var/lib/redis",
            "--logfile", "/var/log/redis/ci.log",
        ],
        check=True,
        timeout=10,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not redis_answers():
        assert time.monotonic() < deadline, "Redis did not answer PING after a restart"
        time.sleep(0.05)


def redis_restart() -> None:
    """Restart Redis with nothing kept, as after a crash of a cache-only Redis."""
    subprocess.run(
        ["redis-cli", "-p", str(redis_port()), "shutdown", "nosave"],
        timeout=10,
        capture_output=True,
    )
    deadline = time.monotonic() + 10
    while redis_answers():
        assert time.monotonic() < deadline, "Redis did not shut down"
        time.sleep(0.05)
    redis_start()


def members_after_close(key: str, seconds: float = 3) -> int:
    """The members a group still has once closed sockets have had time to leave it."""
    deadline = time.monotonic() + seconds
    while (members := group_sizes([key])[key]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return members


def group_sizes(keys: list[str]) -> dict[str, int]:
    """Members of these channel-layer groups (channels_redis keeps each in a sorted set)."""
    client = redis_client()
    try:
        return {key: int(client.zcard(key)) for key in keys}
    finally:
        client.close()


# --- 1. two processes, one chat ----------


def test_patron_and_librarian_on_different_processes_chat_in_seq_order(
    pair: Pair, cast: Cast
) -> None:
    started = queued(cast)
    conversation = started.conversation.public_id
    lena = session_id(cast.librarian)

    async def scenario() -> tuple[list[Frame], list[Frame], Frame]:
        patron, welcome = await open_patron(pair.a, started.token)
        try:
            desk, desk_welcome = await open_desk(pair.b, lena)
            try:
                assert conversation in [item["conversation"] for item in desk_welcome["queue"]]
                await patron.recv_until("status", seq=2, status="queued")
                await desk.send({"type": "accept", "conversation": conversation})
                await desk.recv_until("accepted", conversation=conversation)
                await desk.recv_until("status", seq=3, status="active", librarian="Lena")
                await patron.recv_until("status", seq=3, status="active", librarian="Lena")
                for turn in range(3):
                    await desk.send(send(f"lena-{turn}", f"Answer {turn}", conversation))
                    ack = await desk.recv_until("ack", client_msg_id=f"lena-{turn}")
                    await patron.recv_until("message", seq=ack["seq"], body=f"Answer {turn}")
                    await patron.send(send(f"pat-{turn}", f"Question {turn}"))
                    ack = await patron.recv_until("ack", client_msg_id=f"pat-{turn}")
                    await desk.recv_until("message", seq=ack["seq"], body=f"Question {turn}")
                # Then both at once: the two processes append to one log.
                for n in range(5):
                    await asyncio.gather(
                        desk.send(send(f"lena-burst-{n}", f"Also {n}", conversation)),
                        patron.send(send(f"pat-burst-{n}", f"And {n}")),
                    )
                await patron.recv_until("message", seq=19)
                await desk.recv_until("message", seq=19)
                await patron.drain()
                await desk.drain()
            finally:
                await desk.close()
        finally:
            await patron.close()
        return patron.stored(), desk.stored(), welcome

    patron_events, desk_events, welcome = run(scenario())

    assert welcome == {
        "type": "welcome",
        "conversation": conversation,
        "status": "queued",
        "last_seq": 2,
    }
    expected = list(range(1, 20))
    assert db_seqs(started.conversation) == expected
    assert stored_seqs(patron_events) == expected
    assert stored_seqs(desk_events) == expected
    # The same frames, in the same order, on both sides; the desk's status frames also say
    # whether the chat is this desk's librarian's.
    assert [{k: v for k, v in f.items() if k != "mine"} for f in desk_events] == patron_events
    assert [(f["seq"], f["mine"]) for f in desk_events if f["type"] == "status"] == [
        (2, False),
        (3, True),
    ]
    messages = [(f["from"], f["body"]) for f in patron_events if f["type"] == "message"]
    assert messages[:7] == [
        ("patron", "Do you have The Hobbit?"),
        ("librarian", "Answer 0"),
        ("patron", "Question 0"),
        ("librarian", "Answer 1"),
        ("patron", "Question 1"),
        ("librarian", "Answer 2"),
        ("patron", "Question 2"),
    ]
    # In the burst each side's messages keep the order they were sent in.
    burst = messages[7:]
    assert [body for sender, body in burst if sender == "patron"] == [f"And {n}" for n in range(5)]
    assert [body for sender, body in burst if sender == "librarian"] == [
        f"Also {n}" for n in range(5)
    ]


# --- 2. the accept race ----------


def test_concurrent_accepts_on_two_processes_have_exactly_one_winner(
    pair: Pair, cast: Cast
) -> None:
    conversations = [queued(cast, f"Question {n}?").conversation for n in range(3)]
    lena, mara = session_id(cast.librarian), session_id(cast.manager)

    async def scenario() -> list[tuple[Frame, Frame, list[Frame], list[Frame]]]:
        rounds = []
        lena_desk, _ = await open_desk(pair.a, lena)
        try:
            mara_desk, _ = await open_desk(pair.b, mara)
            try:
                for conversation in conversations:
                    frame = {"type": "accept", "conversation": conversation.public_id}
                    await asyncio.gather(lena_desk.send(frame), mara_desk.send(frame))
                    lena_reply, mara_reply = await asyncio.gather(
                        lena_desk.recv_until(("accepted", "error")),
                        mara_desk.recv_until(("accepted", "error")),
                    )
                    rounds.append(
                        (lena_reply, mara_reply, await lena_desk.drain(), await mara_desk.drain())
                    )
            finally:
                await mara_desk.close()
        finally:
            await lena_desk.close()
        return rounds

    rounds = run(scenario())

    names = {"Lena": cast.librarian, "Mara": cast.manager}
    for conversation, (lena_reply, mara_reply, lena_after, mara_after) in zip(
        conversations, rounds, strict=True
    ):
        replies = {"Lena": lena_reply, "Mara": mara_reply}
        after = {"Lena": lena_after, "Mara": mara_after}
        winners = [name for name, reply in replies.items() if reply["type"] == "accepted"]
        assert len(winners) == 1, replies
        (winner,) = winners
        (loser,) = set(replies) - {winner}
        assert replies[winner] == {"type": "accepted", "conversation": conversation.public_id}
        assert replies[loser]["code"] == "conflict", replies[loser]
        assert replies[loser]["conversation"] == conversation.public_id
        # Only the winner follows the conversation.
        assert [f["seq"] for f in after[winner] if is_stored(f)] == [1, 2, 3]
        assert not [f for f in after[loser] if is_stored(f)]
        conversation.refresh_from_db()
        assert conversation.librarian == names[winner]
        statuses = conversation.events.filter(kind=EventKind.STATUS).values_list("data", flat=True)
        assert [data["status"] for data in statuses] == ["queued", "active"]


# --- 3. idempotent sends ----------


def test_a_resent_client_msg_id_stores_nothing_new_even_on_the_other_process(
    pair: Pair, cast: Cast
) -> None:
    started = accepted(cast)
    conversation = started.conversation.public_id
    lena = session_id(cast.librarian)

    async def scenario() -> dict[str, list[Frame]]:
        acks: dict[str, list[Frame]] = {"patron": [], "desk": []}
        seen: dict[str, list[Frame]] = {"patron": [], "desk": []}
        patron_frame = send("pat-1", "Is it on the shelf?")
        desk_frame = send("lena-1", "Let me look.", conversation)

        patron, _ = await open_patron(pair.a, started.token)
        try:
            desk, _ = await open_desk(pair.b, lena)
            try:
                await desk.send({"type": "subscribe", "conversation": conversation, "last_seq": 3})
                for _ in range(2):
                    await patron.send(patron_frame)
                    await desk.send(desk_frame)
                for _ in range(2):
                    acks["patron"].append(await patron.recv_until("ack"))
                    acks["desk"].append(await desk.recv_until("ack"))
                await patron.drain()
                await desk.drain()
            finally:
                await desk.close()
        finally:
            await patron.close()
        seen["patron"] += patron.stored()
        seen["desk"] += desk.stored()

        # Reconnected to the other process, each side retries once more.
        last_seq = max(stored_seqs(seen["patron"]))
        patron, _ = await open_patron(pair.b, started.token, last_seq=last_seq)
        try:
            desk, _ = await open_desk(pair.a, lena)
            try:
                await desk.send(
                    {"type": "subscribe", "conversation": conversation, "last_seq": last_seq}
                )
                await patron.send(patron_frame)
                await desk.send(desk_frame)
                acks["patron"].append(await patron.recv_until("ack"))
                acks["desk"].append(await desk.recv_until("ack"))
                await patron.drain()
                await desk.drain()
            finally:
                await desk.close()
        finally:
            await patron.close()
        seen["patron"] += patron.stored()
        seen["desk"] += desk.stored()
        return {**{f"ack:{k}": v for k, v in acks.items()}, **seen}

    result = run(scenario())

    patron_message = Event.objects.get(conversation=started.conversation, client_msg_id="pat-1")
    desk_message = Event.objects.get(conversation=started.conversation, client_msg_id="lena-1")
    for role, event in (("patron", patron_message), ("desk", desk_message)):
        expected_ack = {
            "type": "ack",
            "client_msg_id": event.client_msg_id,
            "seq": event.seq,
            "id": event.public_id,
        }
        assert result[f"ack:{role}"] == [expected_ack] * 3
    assert db_seqs(started.conversation) == [1, 2, 3, 4, 5]
    # Each message reached each side once: the patron replayed from 0, the desk from 3, and
    # the second connections resumed after everything.
    assert sorted(stored_seqs(result["patron"])) == [1, 2, 3, 4, 5]
    assert sorted(stored_seqs(result["desk"])) == [4, 5]


# --- 4. resume on the other process ----------


def test_a_patron_who_drops_resumes_on_the_other_process_with_exactly_the_missed_events(
    pair: Pair, cast: Cast
) -> None:
    started = accepted(cast)
    conversation = started.conversation.public_id
    lena = session_id(cast.librarian)

    async def scenario() -> tuple[list[Frame], list[Frame], Frame, list[Frame]]:
        desk, _ = await open_desk(pair.b, lena)
        try:
            await desk.send({"type": "subscribe", "conversation": conversation, "last_seq": 0})
            await desk.recv_until("status", seq=3)
            patron, _ = await open_patron(pair.a, started.token)
            try:
                await patron.recv_until("status", seq=3)
                await patron.drain()
            finally:
                await patron.close()
            before = patron.stored()
            last_seen = before[-1]["seq"]

            for n in range(5):
                await desk.send(send(f"lena-{n}", f"While you were away {n}", conversation))
                await desk.recv_until("ack", client_msg_id=f"lena-{n}")

            patron, welcome = await open_patron(pair.b, started.token, last_seq=last_seen)
            try:
                replayed = [await patron.recv() for _ in range(5)]
                await desk.send(send("lena-live", "Still there?", conversation))
                await patron.recv_until("message", client_msg_id="lena-live")
                await patron.send(send("pat-back", "Yes, back now"))
                await desk.recv_until("message", client_msg_id="pat-back")
                await patron.drain()
            finally:
                await patron.close()
        finally:
            await desk.close()
        return before, replayed, welcome, patron.frames

    before, replayed, welcome, after = run(scenario())

    assert stored_seqs(before) == [1, 2, 3]
    assert welcome["last_seq"] == 8
    assert [(f["type"], f["seq"], f["body"]) for f in replayed] == [
        ("message", 4 + n, f"While you were away {n}") for n in range(5)
    ]
    assert stored_seqs(after) == [4, 5, 6, 7, 8, 9, 10]
    assert [f["client_msg_id"] for f in after if is_stored(f)][5:] == ["lena-live", "pat-back"]
    assert db_seqs(started.conversation) == list(range(1, 11))


# --- 5. staff notes ----------


def test_staff_notes_never_reach_the_patron_live_or_replayed(pair: Pair, cast: Cast) -> None:
    started = accepted(cast)
    conversation = started.conversation.public_id
    lena = session_id(cast.librarian)

    async def scenario() -> tuple[list[Frame], list[Frame], list[Frame]]:
        desk, _ = await open_desk(pair.b, lena)
        try:
            await desk.send({"type": "subscribe", "conversation": conversation, "last_seq": 3})
            patron, _ = await open_patron(pair.a, started.token)  # the other process
            try:
                await patron.recv_until("status", seq=3)
                await desk.send(
                    {
                        "type": "note",
                        "conversation": conversation,
                        "client_msg_id": "note-1",
                        "body": "Regular; prefers large print.",
                    }
                )
                await desk.recv_until("note", client_msg_id="note-1")
                await desk.send(send("lena-1", "Found it.", conversation))
                await patron.recv_until("message", client_msg_id="lena-1")
                await patron.drain()
            finally:
                await patron.close()
            live_a = patron.frames

            patron, _ = await open_patron(pair.b, started.token)  # the desk's process
            try:
                await patron.recv_until("message", client_msg_id="lena-1")
                await desk.send(
                    {
                        "type": "note",
                        "conversation": conversation,
                        "client_msg_id": "note-2",
                        "body": "Offered ILL.",
                    }
                )
                await desk.recv_until("note", client_msg_id="note-2")
                await desk.send(send("lena-2", "Anything else?", conversation))
                await patron.recv_until("message", client_msg_id="lena-2")
                await patron.drain()
            finally:
                await patron.close()
            await desk.drain()
        finally:
            await desk.close()
        return live_a, patron.frames, desk.stored()

    live_a, replay_and_live_b, desk_events = run(scenario())

    notes = list(
        started.conversation.events.filter(kind=EventKind.NOTE).values_list("seq", flat=True)
    )
    assert notes == [4, 6]
    assert stored_seqs(live_a) == [1, 2, 3, 5]
    assert stored_seqs(replay_and_live_b) == [1, 2, 3, 5, 7]
    for frame in live_a + replay_and_live_b:
        assert frame["type"] != "note", frame
        assert "Regular" not in str(frame), frame
        assert "ILL" not in str(frame), frame
    assert stored_seqs(desk_events) == [4, 5, 6, 7]
    assert [f["type"] for f in desk_events] == ["note", "message", "note", "message"]


# --- 6. handshakes that fail, and the hello deadline ----------


def test_a_foreign_origin_or_a_wrong_token_or_no_session_closes_the_socket(
    pair: Pair, cast: Cast
) -> None:
    started = queued(cast)
    lena = session_id(cast.librarian)

    async def hello_and_close(
        server: DaphneProcess, origin: str, token: str = started.token
    ) -> int:
        socket = await LiveSocket.open(f"{server.ws_url}/ws/v1/patron/", origin=origin)
        try:
            # A refused origin may be closed before the hello is out.
            with contextlib.suppress(ConnectionClosed):
                await socket.send({"type": "hello", "token": token, "last_seq": 0})
            return await socket.close_code()
        finally:
            await socket.close()

    async def desk_close(server: DaphneProcess, origin: str, cookie: str | None) -> int:
        socket = await LiveSocket.open(f"{server.ws_url}/ws/v1/desk/", origin=origin, cookie=cookie)
        try:
            return await socket.close_code()
        finally:
            await socket.close()

    async def scenario() -> dict[str, int]:
        return {
            "foreign origin on A": await hello_and_close(pair.a, FOREIGN_ORIGIN),
            "foreign origin on B": await hello_and_close(pair.b, FOREIGN_ORIGIN),
            "null origin": await hello_and_close(pair.b, "null"),
            "another library's origin": await hello_and_close(pair.b, OTHER_LIBRARY_ORIGIN),
            "wrong token on A": await hello_and_close(pair.a, DEMO_ORIGIN, "not-a-token"),
            "wrong token on B": await hello_and_close(pair.b, DEMO_ORIGIN, "not-a-token"),
            "desk without a session": await desk_close(pair.b, pair.b.http_url, None),
            "desk from a foreign origin": await desk_close(
                pair.b, FOREIGN_ORIGIN, f"sessionid={lena}"
            ),
        }

    assert run(scenario()) == {
        "foreign origin on A": 4403,
        "foreign origin on B": 4403,
        "null origin": 4403,
        "another library's origin": 4403,
        "wrong token on A": 4401,
        "wrong token on B": 4401,
        "desk without a session": 4401,
        "desk from a foreign origin": 4403,
    }


def test_a_socket_without_hello_is_closed_after_10_s_while_idle_chat_sockets_stay_open(
    pair: Pair, cast: Cast
) -> None:
    """The one slow test: it waits out the hello deadline (PROTOCOL.md: 10 s, then 4401).

    Meanwhile a patron and a desk sit idle for longer than the channel layer's blocking receive
    (5 s in channels_redis); afterwards they must still be connected and hear each other.
    """
    started = accepted(cast)
    conversation = started.conversation.public_id
    lena = session_id(cast.librarian)

    async def outcome(step: Coroutine[Any, Any, Frame]) -> Any:
        try:
            return (await step)["seq"]
        except ConnectionClosed as closed:
            return f"closed with {closed.rcvd.code if closed.rcvd else None}"

    async def scenario() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        seen: dict[str, Any] = {}
        silent = await LiveSocket.open(f"{pair.a.ws_url}/ws/v1/patron/", origin=DEMO_ORIGIN)
        opened_at = loop.time()
        try:
            patron, _ = await open_patron(pair.a, started.token, last_seq=3)
            try:
                desk, _ = await open_desk(pair.b, lena)
                try:
                    await desk.send(
                        {"type": "subscribe", "conversation": conversation, "last_seq": 3}
                    )
                    seen["no hello"] = await silent.close_code(seconds=13)
                    seen["after 9.5 to 13 s"] = 9.5 <= loop.time() - opened_at <= 13
                    # Idle for two blocking receives at least, whenever the silent one closed.
                    await asyncio.sleep(max(QUIET_S, opened_at + 10.5 - loop.time()))
                    with contextlib.suppress(ConnectionClosed):
                        await desk.send(send("lena-1", "Sorry for the wait!", conversation))
                    seen["desk ack"] = await outcome(desk.recv_until("ack"))
                    seen["patron heard"] = await outcome(
                        patron.recv_until("message", client_msg_id="lena-1")
                    )
                finally:
                    await desk.close()
            finally:
                await patron.close()
        finally:
            await silent.close()
        return seen

    seen = run(scenario())
    # A socket whose consumer died never left its group: the member stays until group_expiry.
    seen["members left in the desk's group"] = members_after_close(
        f"{pair.prefix}:group:chat.desk.{cast.library.pk}"
    )
    assert seen == {
        "no hello": 4401,
        "after 9.5 to 13 s": True,
        "desk ack": 4,
        "patron heard": 4,
        "members left in the desk's group": 0,
    }


# --- 7. group clean-up ----------


def test_closed_sockets_leave_no_member_in_their_groups(pair: Pair, cast: Cast) -> None:
    started = accepted(cast)
    conversation = started.conversation.public_id
    lena = session_id(cast.librarian)
    keys = [
        f"{pair.prefix}:group:{name}"
        for name in (f"chat.desk.{cast.library.pk}", f"chat.user.{cast.librarian.pk}")
    ]

    async def scenario() -> dict[str, int]:
        desk, _ = await open_desk(pair.b, lena)
        try:
            await desk.send({"type": "subscribe", "conversation": conversation, "last_seq": 0})
            await desk.recv_until("status", seq=3)
            patron, _ = await open_patron(pair.a, started.token)
            await patron.close()  # a reload: the first socket goes, a second one comes
            patron, _ = await open_patron(pair.b, started.token, last_seq=3)
            try:
                await patron.send(send("pat-1", "Thanks!"))
                await desk.recv_until("message", client_msg_id="pat-1")
                await patron.recv_until("message", client_msg_id="pat-1")
                sizes = await asyncio.to_thread(group_sizes, keys)
            finally:
                await patron.close()
        finally:
            await desk.close()
        return sizes

    while_open = run(scenario())
    # The desk alone in its library's group and its own (conversations need no group: their
    # sockets follow them through the process's doorbell, chat.doorbell).
    assert while_open == dict(zip(keys, [1, 1], strict=True))

    deadline = time.monotonic() + 5
    while any(group_sizes(keys).values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_sizes(keys) == dict.fromkeys(keys, 0)


# --- 8. reliability (SPEC §6); last, because it restarts Redis under the shared pair ----------

MESSAGES_EACH_WAY = 60
SEND_INTERVAL_S = 0.05  # 20 messages a second each way


@dataclass
class Progress:
    """How many numbered messages a sender has handed to its client so far."""

    sent: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def step(self) -> None:
        self.sent += 1
        self.changed.set()

    async def reach(self, count: int) -> None:
        while self.sent < count:
            self.changed.clear()
            await self.changed.wait()


def test_no_message_is_lost_or_repeated_across_a_drop_a_killed_process_and_a_redis_restart(
    daphne_cluster: DaphneCluster,
    settings: Settings,
    cast: Cast,
) -> None:
    # A pair of its own, to kill; the default limit (30 per 10 s) would throttle 20 a second.
    pair = start_pair(daphne_cluster, REFLIB_RATE_MESSAGES="10000/10")
    use_prefix(settings, pair)
    started = accepted(cast)
    conversation = started.conversation.public_id
    lena = session_id(cast.librarian)
    total = 3 + 2 * MESSAGES_EACH_WAY
    faults: list[tuple[str, int]] = []  # what happened, after how many patron messages
    began = time.monotonic()

    def mark(what: str, progress: Progress) -> None:
        faults.append((what, progress.sent))
        print(f"{time.monotonic() - began:6.2f} s  {what} (patron sent {progress.sent})")

    async def send_numbered(client: ResumingClient, prefix: str, progress: Progress) -> None:
        for n in range(MESSAGES_EACH_WAY):
            await client.send(f"{prefix}-{n:03d}", f"{prefix} message {n}")
            progress.step()
            await asyncio.sleep(SEND_INTERVAL_S)

    async def inject_faults(patron: ResumingClient, progress: Progress) -> None:
        await progress.reach(10)
        patron.drop()
        mark("patron dropped", progress)
        await progress.reach(20)
        pair.a.kill()
        mark("A killed", progress)
        restart = asyncio.create_task(asyncio.to_thread(pair.a.start))
        await progress.reach(40)
        mark("Redis stopping", progress)
        await asyncio.to_thread(redis_restart)
        mark("Redis answers", progress)
        await restart
        mark("A restarted", progress)

    def everything_arrived(client: ResumingClient, other: str) -> Callable[[], bool]:
        def done() -> bool:
            numbered = [f for f in client.messages_from(other) if f["client_msg_id"] is not None]
            return not client.pending and len(numbered) >= MESSAGES_EACH_WAY

        return done

    async def scenario() -> tuple[ResumingClient, ResumingClient, Frame]:
        patron = ResumingClient("patron", [pair.a, pair.b], conversation, started.token)
        desk = ResumingClient("desk", [pair.b, pair.a], conversation, lena)
        patron.start()
        desk.start()
        try:
            await patron.wait_for(lambda: patron.last_seq >= 3, 10, "the first connection")
            await desk.wait_for(lambda: desk.last_seq >= 3, 10, "the first connection")
            patron_progress = Progress()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(send_numbered(patron, "pat", patron_progress))
                tasks.create_task(send_numbered(desk, "lena", Progress()))
                tasks.create_task(inject_faults(patron, patron_progress))
            print(f"{time.monotonic() - began:6.2f} s  all sent")
            for client, other in ((patron, "librarian"), (desk, "patron")):
                await client.wait_for(
                    everything_arrived(client, other),
                    30,
                    f"every message acked and every message from the {other} received",
                )
            print(f"{time.monotonic() - began:6.2f} s  all arrived")
            await asyncio.sleep(QUIET_S)  # a late duplicate would arrive now
        finally:
            await patron.stop()
            await desk.stop()
        # The restarted process serves the conversation again.
        socket, welcome = await open_patron(pair.a, started.token, last_seq=total)
        try:
            assert await socket.drain() == []
        finally:
            await socket.close()
        print(f"{time.monotonic() - began:6.2f} s  A serves again")
        print("\n".join(["patron:", *patron.history, "desk:", *desk.history]))
        return patron, desk, welcome

    with printed_logs([pair.a, pair.b]):
        try:
            patron, desk, welcome = run(scenario(), timeout=90)
        finally:
            if not redis_answers():
                redis_start()
    stop_pair(pair)

    assert [name for name, _sent in faults] == [
        "patron dropped",
        "A killed",
        "Redis stopping",
        "Redis answers",
        "A restarted",
    ]
    assert dict(faults)["Redis answers"] < MESSAGES_EACH_WAY, faults  # traffic went on after
    assert welcome["last_seq"] == total

    events = list(started.conversation.events.order_by("seq"))
    assert [event.seq for event in events] == list(range(1, total + 1))
    started.conversation.refresh_from_db()
    assert started.conversation.last_seq == total
    stored_ids = Counter(event.client_msg_id for event in events if event.client_msg_id)
    sent_by = {
        "pat": {f"pat-{n:03d}" for n in range(MESSAGES_EACH_WAY)},
        "lena": {f"lena-{n:03d}" for n in range(MESSAGES_EACH_WAY)},
    }
    assert set(stored_ids) == sent_by["pat"] | sent_by["lena"]
    assert set(stored_ids.values()) == {1}
    seq_of = {event.client_msg_id: event.seq for event in events if event.client_msg_id}

    for client, own, other, other_role in (
        (patron, "pat", "lena", "librarian"),
        (desk, "lena", "pat", "patron"),
    ):
        context = f"{client}; faults {faults}"
        assert client.duplicates == [], context
        assert client.out_of_order == [], context
        assert client.ack_mismatches == [], context
        assert client.errors == [], context
        # Every event of the conversation exactly once, in seq order, and nothing else.
        assert sorted(client.events) == list(range(1, total + 1)), context
        received = [
            frame["client_msg_id"]
            for frame in client.messages_from(other_role)
            if frame["client_msg_id"] is not None  # not the question
        ]
        assert len(received) == MESSAGES_EACH_WAY, context
        assert set(received) == sent_by[other], context
        assert set(client.acks) == sent_by[own], context
        assert {cid: ack["seq"] for cid, ack in client.acks.items()} == {
            cid: seq_of[cid] for cid in sent_by[own]
        }, context
    # The faults really hit the patron: the drop, the killed process and the Redis restart.
    assert len(patron.failures) >= 3, patron
    assert len(patron.connections) >= 3, patron
