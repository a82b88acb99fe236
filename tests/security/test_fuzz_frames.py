"""Fuzzing both sockets with generated frames (SPEC.md §6: 10,000 frames, 0 server errors).

Hypothesis draws the frames: binary frames, text that is not JSON, JSON that is not an object,
objects without a type or with an unknown one, frames over the size limit, and frames of every
known type whose fields hold random JSON (wrong types, huge numbers, unicode edge cases, deep
nesting). Each frame is followed by a ``ping``: what arrives before the ``pong`` is the answer.
A frame that is bad by construction must be answered ``invalid`` or ``too_large``; any frame
may get another documented error code or its normal answer; a socket may only ever close with
a documented code (and is then reopened). No ERROR may be logged, no consumer may crash, and a
bystander's conversation on other sockets must carry on untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_django import Settings

from chat.protocol import MAX_FRAME_CHARS
from tests.chat.conftest import OTHER_ORIGIN, Socket, Sockets, go_available, start, start_accepted
from tests.conftest import Cast

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Ten thousand frames took up to two minutes on a busy two-core machine.
    pytest.mark.timeout(300),
]

db = database_sync_to_async

FRAMES_PER_SOCKET = 5000  # two sockets: 10,000 frames per run
ERROR_CODES = {
    "invalid",
    "too_large",
    "rate_limited",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "closed",
    "offline",
}
CLOSE_CODES = {4400, 4429}
SHARE_TYPES = [
    "share_request",
    "share_reply",
    "share_offer",
    "share_answer",
    "share_candidate",
    "share_stop",
]
PATRON_TYPES = ["send", "typing", "read", "checkin_answer", "ping", "hello", "end", *SHARE_TYPES]
DESK_TYPES = [
    "presence",
    "accept",
    "subscribe",
    "send",
    "note",
    "typing",
    "read",
    "transfer",
    "close",
    "checkin",
    "block",
    "ping",
    *SHARE_TYPES,
]
FIELDS = [
    "conversation",
    "client_msg_id",
    "body",
    "active",
    "seq",
    "last_seq",
    "id",
    "answer",
    "state",
    "to_user",
    "to_queue",
    "note",
    "read_level",
    "tags",
    "hours",
    "reason",
    "token",
    "share",
    "accept",
    "sdp",
    "candidate",
]
EDGE_TEXT = [
    "",
    " ",
    "\x00",
    "\ud800",
    "a\udfffb",
    "\u202e\u2066reversed",
    "\ufeff",
    "\uffff",
    "🦄" * 50,
    "e\u0301" * 20,
    "\u200d\u200d",
    "x" * 4001,
    "y" * 70,
    "demo/general",
    "other/general",
    "yes",
    "available",
]

edge_text = st.sampled_from(EDGE_TEXT)
any_text = st.text(st.characters(codec=None, categories=None), max_size=80)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, -1, 2**31, 2**31 + 1, 2**63, 10**30, 1.5, 1e308]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, any_text, edge_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)


@dataclass(frozen=True)
class Fuzz:
    """One generated frame: text or bytes, and whether it is bad by construction."""

    text: str | None
    data: bytes | None
    bad: bool


def _as_text(value: Any) -> str:
    # ensure_ascii keeps lone surrogates as \\u escapes, exactly as a hostile client sends them.
    return json.dumps(value, ensure_ascii=True)


def frames(types: list[str], ids: list[str]) -> st.SearchStrategy[Fuzz]:
    known = st.builds(
        lambda kind, fields, conversation: {"type": kind, **fields, **conversation},
        st.sampled_from(types),
        st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5),
        st.one_of(st.just({}), st.sampled_from(ids).map(lambda c: {"conversation": c})),
    ).map(lambda f: Fuzz(_as_text(f), None, False))
    return st.one_of(
        known,
        known,
        known,
        st.binary(min_size=1, max_size=64).map(lambda b: Fuzz(None, b, True)),
        any_text.filter(lambda t: t != "" and _not_json(t)).map(lambda t: Fuzz(t, None, True)),
        st.one_of(st.lists(json_values, max_size=3), numbers, any_text, st.none()).map(
            lambda v: Fuzz(_as_text(v), None, True)
        ),
        st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3)
        .map(lambda d: {**d, "type": 7})
        .map(lambda f: Fuzz(_as_text(f), None, True)),
        st.text(min_size=1, max_size=20)
        .filter(lambda k: k not in types)
        .map(lambda k: Fuzz(_as_text({"type": k}), None, True)),
        st.integers(min_value=1, max_value=3).map(
            lambda n: Fuzz(
                _as_text({"type": "send", "body": "z" * MAX_FRAME_CHARS * n}), None, True
            )
        ),
    )


def _is_ping(fuzz: Fuzz) -> bool:
    if fuzz.text is None or len(fuzz.text) > MAX_FRAME_CHARS:
        return False
    frame = json.loads(fuzz.text) if not _not_json(fuzz.text) else None
    return isinstance(frame, dict) and frame.get("type") == "ping"


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


def draw(strategy: st.SearchStrategy[Fuzz], count: int) -> list[Fuzz]:
    """``count`` frames drawn by Hypothesis (derandomized: the same frames on every run)."""
    drawn: list[Fuzz] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(fuzz: Fuzz) -> None:
        drawn.append(fuzz)

    collect()
    return drawn[:count]


@dataclass
class Tally:
    frames: int = 0
    bad: int = 0
    errors: int = 0
    closes: int = 0


async def fuzz_socket(
    opener: Callable[[], Awaitable[Socket]], fuzzes: list[Fuzz], tally: Tally
) -> None:
    socket = await opener()
    for fuzz in fuzzes:
        if fuzz.data is not None:
            await socket.send_bytes(fuzz.data)
        else:
            assert fuzz.text is not None
            await socket.send_text(fuzz.text)
        await socket.send({"type": "ping"})
        tally.frames += 1
        tally.bad += fuzz.bad
        answers: list[dict[str, Any]] = []
        pongs = 2 if _is_ping(fuzz) else 1  # a fuzzed ping is answered too
        while True:
            message = await socket.communicator.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                assert message.get("code") in CLOSE_CODES, (fuzz, message)
                tally.closes += 1
                socket.disconnected = True
                await socket.communicator.wait(timeout=5)
                socket = await opener()
                break
            frame = json.loads(message["text"])
            if frame == {"type": "pong"}:
                pongs -= 1
                if pongs == 0:
                    break
                continue
            answers.append(frame)
        errors = [a for a in answers if a.get("type") == "error"]
        tally.errors += len(errors)
        assert all(e["code"] in ERROR_CODES for e in errors), (fuzz, errors)
        if fuzz.bad and message["type"] != "websocket.close":
            assert errors, (fuzz, answers)
            assert errors[0]["code"] in ("invalid", "too_large"), (fuzz, answers)


@pytest.fixture
def loose_limits(settings: Settings) -> None:
    # The fuzzer sends as fast as it can: the flood limits are tested elsewhere.
    settings.REFLIB_RATE_FRAMES = (1_000_000, 10)
    settings.REFLIB_RATE_MESSAGES = (1_000_000, 10)
    settings.REFLIB_RATE_MESSAGES_ADDRESS = (1_000_000, 10)


@pytest.mark.usefixtures("loose_limits")
async def test_ten_thousand_fuzzed_frames_cause_no_server_error(
    cast: Cast, sockets: Sockets, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await db(go_available)(cast.librarian)
    fuzzed = await db(start_accepted)(cast.queue, cast.librarian, "The fuzzer's chat")
    # The bystander is another library's: the fuzzing librarian may not touch it.
    bystander = await db(start_accepted)(
        cast.other_queue, cast.other_librarian, "A bystander's chat"
    )
    waiting = await db(start)(cast.queue, "A waiting chat")
    ids = [fuzzed.public_id, bystander.public_id, waiting.public_id, "nope"]
    patron_frames = await db(draw)(frames(PATRON_TYPES, ids), FRAMES_PER_SOCKET)
    desk_frames = await db(draw)(frames(DESK_TYPES, ids), FRAMES_PER_SOCKET)

    watcher, _ = await sockets.patron(bystander, origin=OTHER_ORIGIN)
    await watcher.drain()

    async def patron() -> Socket:
        socket, _welcome = await sockets.patron(fuzzed)
        await socket.drain(quiet=0.05)
        return socket

    async def desk() -> Socket:
        socket, _welcome = await sockets.desk(cast.librarian)
        await socket.drain(quiet=0.05)
        return socket

    tally = Tally()
    await fuzz_socket(patron, patron_frames, tally)
    await fuzz_socket(desk, desk_frames, tally)

    # The bystander heard nothing of the fuzzing, and its chat still works both ways.
    heard = await watcher.drain(quiet=0.3)
    assert all(f.get("conversation") == bystander.public_id for f in heard), heard
    librarian, _ = await sockets.desk(cast.other_librarian)
    await librarian.send({"type": "subscribe", "conversation": bystander.public_id, "last_seq": 0})
    await watcher.send({"type": "send", "client_msg_id": "still-here", "body": "Still there?"})
    assert (await watcher.recv_until("ack"))["client_msg_id"] == "still-here"
    await librarian.recv_until("message", client_msg_id="still-here")

    assert tally.frames == 2 * FRAMES_PER_SOCKET
    assert tally.bad > FRAMES_PER_SOCKET // 2
    server_errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert server_errors == [], [r.getMessage() for r in server_errors[:5]]
    print(
        f"fuzzed {tally.frames} frames: {tally.bad} bad by construction, "
        f"{tally.errors} error answers, {tally.closes} closes"
    )
