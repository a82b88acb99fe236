"""Screen sharing's signalling (docs/protocol.md "Screen sharing") through the real ASGI
application: consent before any offer, relay only between the patron and the librarian answering
the chat, validated fields, rate limits, a stored "started/ended" and nothing else kept; the ICE
servers and coturn's TURN credentials; the pages' Permissions-Policy."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async
from django.core.cache import cache
from django.test import Client
from pytest_django import Settings

from chat import services, sharing
from chat.errors import ChatError
from chat.models import Conversation, Event, EventKind, Sender, Status
from chat.widget import loader_source
from tests.chat.conftest import (
    Frame,
    Socket,
    Sockets,
    Started,
    start,
    start_accepted,
)
from tests.chat.test_consumers import accepted_chat
from tests.conftest import Cast
from tests.reflib.test_settings import SETUP, python

db = database_sync_to_async

OFFER_SDP = (
    "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
)
ANSWER_SDP = (
    "v=0\r\no=- 7301 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
)
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 192.0.2.7 54321 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "abcd",
}


@pytest.fixture(autouse=True)
def _no_shares_left() -> None:
    """Share states and rate-limit counters live in the cache, keyed by conversation."""
    cache.clear()


async def reading_along(sockets: Sockets, cast: Cast, started: Started) -> Socket:
    """Mara, a colleague of Lena's, follows the conversation at her desk (drained)."""
    mara, _welcome = await sockets.desk(cast.manager)
    await mara.send({"type": "subscribe", "conversation": started.public_id, "last_seq": 0})
    await mara.drain()
    return mara


def of_types(frames: list[Frame], *kinds: str) -> list[Frame]:
    """The frames of these types, in the order of ``kinds`` (each exactly once)."""
    found = [[frame for frame in frames if frame["type"] == kind] for kind in kinds]
    assert [len(group) for group in found] == [1] * len(kinds), frames
    return [group[0] for group in found]


def desk_frame(started: Started, kind: str, **fields: Any) -> Frame:
    return {"type": kind, "conversation": started.public_id, **fields}


async def patron_shares_and_lena_watches(started: Started, patron: Socket, desk: Socket) -> None:
    """The whole handshake of the patron's screen, up to the first candidate each way."""
    await patron.send({"type": "share_request", "share": "s1"})
    await desk.recv_until("share_request", share="s1")
    await desk.send(desk_frame(started, "share_reply", share="s1", accept=True))
    await patron.recv_until("share_reply", share="s1", accept=True)
    await desk.recv_until("share_reply", share="s1")
    await patron.send({"type": "share_offer", "share": "s1", "sdp": OFFER_SDP})
    await desk.recv_until("share_offer", share="s1")
    await desk.send(desk_frame(started, "share_answer", share="s1", sdp=ANSWER_SDP))
    await patron.recv_until("share_answer", share="s1")


# --- the handshake, both ways ----------


async def test_a_patron_shares_only_after_the_librarian_accepts_and_both_see_it_noted(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await patron.send({"type": "share_request", "share": "s1"})
    request = await desk.recv_until("share_request")
    assert request == {
        "type": "share_request",
        "conversation": started.public_id,
        "from": "patron",
        "share": "s1",
        "name": "Pat Patron",
    }

    # No offer goes anywhere before the librarian says yes.
    await patron.send({"type": "share_offer", "share": "s1", "sdp": OFFER_SDP})
    refused = await patron.recv_until("error")
    assert (refused["code"], refused["share"]) == ("conflict", "s1")
    assert await desk.nothing()

    await desk.send(desk_frame(started, "share_reply", share="s1", accept=True))
    consent = await patron.recv_until("share_reply")
    assert consent["accept"] is True
    assert consent["from"] == "librarian"
    assert consent["ice_servers"] == []  # none configured: host candidates only
    assert consent["ice_transport_policy"] == "all"
    assert (await desk.recv_until("share_reply"))["accept"] is True  # the viewer's own copy

    await patron.send({"type": "share_offer", "share": "s1", "sdp": OFFER_SDP})
    # The stored note is published when its transaction commits, before the offer is relayed.
    noted, offer = of_types(await desk.drain(), "status", "share_offer")
    assert (offer["sdp"], offer["from"]) == (OFFER_SDP, "patron")
    assert noted["sharing"] == "started"
    assert noted["sharer"] == "patron"
    assert noted["status"] == "active"
    assert (await patron.recv_until("status"))["sharing"] == "started"

    await desk.send(desk_frame(started, "share_answer", share="s1", sdp=ANSWER_SDP))
    assert (await patron.recv_until("share_answer"))["sdp"] == ANSWER_SDP
    await patron.send({"type": "share_candidate", "share": "s1", "candidate": CANDIDATE})
    assert (await desk.recv_until("share_candidate"))["candidate"] == CANDIDATE
    await desk.send(desk_frame(started, "share_candidate", share="s1", candidate=CANDIDATE))
    assert (await patron.recv_until("share_candidate"))["candidate"] == CANDIDATE

    await desk.send(desk_frame(started, "share_stop", share="s1"))
    noted, stop = of_types(await patron.drain(), "status", "share_stop")
    assert stop["from"] == "librarian"
    assert noted["sharing"] == "ended"

    kept = await db(
        lambda: [(e.data.get("sharing"), e.data.get("reason")) for e in Event.objects.all()]
    )()
    assert ("started", "screen sharing started") in kept
    assert ("ended", "screen sharing ended") in kept
    everything = await db(lambda: repr(list(Event.objects.values())))()
    assert "v=0" not in everything
    assert "candidate:1" not in everything


async def test_a_librarian_shares_with_a_patron_who_declines_and_nothing_is_noted(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await desk.send(desk_frame(started, "share_request", share="lena-1"))
    request = await patron.recv_until("share_request")
    assert (request["from"], request["name"]) == ("librarian", "Lena")
    await patron.send({"type": "share_reply", "share": "lena-1", "accept": False})
    declined = await desk.recv_until("share_reply")
    assert declined["accept"] is False
    assert "ice_servers" not in declined

    await desk.send(desk_frame(started, "share_offer", share="lena-1", sdp=OFFER_SDP))
    assert (await desk.recv_until("error"))["code"] == "conflict"
    assert await patron.nothing()
    shares = await db(Event.objects.filter(data__has_key="sharing").count)()
    assert shares == 0


async def test_only_the_viewer_consents_and_one_share_runs_at_a_time(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    await patron.send({"type": "share_request", "share": "s1"})
    await desk.recv_until("share_request")

    await patron.send({"type": "share_reply", "share": "s1", "accept": True})
    assert (await patron.recv_until("error"))["code"] == "conflict"
    await desk.send(desk_frame(started, "share_request", share="s2"))
    busy = await desk.recv_until("error")
    assert (busy["code"], busy["share"]) == ("conflict", "s2")
    await desk.send(desk_frame(started, "share_reply", share="not-this-one", accept=True))
    assert (await desk.recv_until("error"))["code"] == "conflict"
    await desk.send(desk_frame(started, "share_answer", share="s1", sdp=ANSWER_SDP))
    assert (await desk.recv_until("error"))["code"] == "conflict"


# --- who hears the signalling ----------


async def test_signalling_reaches_neither_a_colleague_reading_along_nor_another_patron(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    mara = await reading_along(sockets, cast, started)
    other = await db(start)(cast.queue, "Another question")
    other_patron, _welcome = await sockets.patron(other)
    await other_patron.drain()

    await patron_shares_and_lena_watches(started, patron, desk)
    await patron.send({"type": "share_candidate", "share": "s1", "candidate": CANDIDATE})
    await desk.recv_until("share_candidate")

    heard_by_mara = await mara.drain()
    assert [f["type"] for f in heard_by_mara if f["type"].startswith("share_")] == []
    assert [f.get("sharing") for f in heard_by_mara if f["type"] == "status"] == ["started"]
    heard_by_other = await other_patron.drain()
    assert [f for f in heard_by_other if f["type"] != "queue"] == []


async def test_a_colleague_who_is_not_answering_cannot_share_or_take_part(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, _desk = await accepted_chat(sockets, cast)
    mara = await reading_along(sockets, cast, started)

    await mara.send(desk_frame(started, "share_request", share="m1"))
    assert (await mara.recv_until("error"))["code"] == "forbidden"
    await patron.send({"type": "share_request", "share": "s1"})
    await mara.send(desk_frame(started, "share_reply", share="s1", accept=True))
    assert (await mara.recv_until("error"))["code"] == "forbidden"
    assert [f for f in await patron.drain() if f["type"] == "share_reply"] == []


async def test_a_librarian_of_another_library_cannot_reach_the_conversation(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, _desk = await accepted_chat(sockets, cast)
    otto, _welcome = await sockets.desk(cast.other_librarian)

    await otto.send(desk_frame(started, "share_request", share="o1"))
    assert (await otto.recv_until("error"))["code"] == "not_found"
    await patron.send({"type": "share_request", "share": "s1"})
    assert [f for f in await otto.drain() if f["type"].startswith("share_")] == []


async def test_a_waiting_chat_cannot_share_a_screen(cast: Cast, sockets: Sockets) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    await patron.send({"type": "share_request", "share": "s1"})
    error = await patron.recv_until("error")
    assert (error["code"], error["share"]) == ("conflict", "s1")


# --- validation and limits ----------


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "share_wave", "share": "s1"},
        {"type": "share_request"},
        {"type": "share_request", "share": ""},
        {"type": "share_request", "share": "no spaces"},
        {"type": "share_request", "share": "x" * 65},
        {"type": "share_reply", "share": "s1", "accept": "yes"},
        {"type": "share_offer", "share": "s1"},
        {"type": "share_offer", "share": "s1", "sdp": "hello"},
        {"type": "share_offer", "share": "s1", "sdp": "v=0" + "a" * 12_000},
        {"type": "share_candidate", "share": "s1", "candidate": "candidate:1"},
        {"type": "share_candidate", "share": "s1", "candidate": {"candidate": "c"}},
        {"type": "share_candidate", "share": "s1", "candidate": {**CANDIDATE, "sdpMid": 7}},
        {"type": "share_candidate", "share": "s1", "candidate": {**CANDIDATE, "sdpMLineIndex": -1}},
        {"type": "share_candidate", "share": "s1", "candidate": {**CANDIDATE, "candidate": 1}},
    ],
    ids=[
        "unknown-step",
        "no-share-id",
        "empty-share-id",
        "share-id-with-space",
        "share-id-too-long",
        "accept-not-boolean",
        "offer-without-sdp",
        "sdp-not-a-description",
        "sdp-too-long",
        "candidate-not-an-object",
        "candidate-without-mid-or-index",
        "candidate-mid-not-text",
        "candidate-index-negative",
        "candidate-text-not-text",
    ],
)
async def test_a_malformed_sharing_frame_is_refused_invalid_and_relays_nothing(
    cast: Cast, sockets: Sockets, frame: Frame
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await patron.send(frame)
    assert (await patron.recv_until("error"))["code"] == "invalid"
    await desk.send({**frame, "conversation": started.public_id})
    assert (await desk.recv_until("error"))["code"] == "invalid"
    assert await desk.nothing(0.2)
    assert [f for f in await patron.drain(0.2) if f["type"].startswith("share_")] == []


async def test_candidates_keep_only_their_four_known_fields(cast: Cast, sockets: Sockets) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    await patron_shares_and_lena_watches(started, patron, desk)

    extra = {**CANDIDATE, "relayProtocol": "udp", "note": "x" * 100}
    await patron.send({"type": "share_candidate", "share": "s1", "candidate": extra})

    assert (await desk.recv_until("share_candidate"))["candidate"] == CANDIDATE


async def test_signalling_over_the_rate_is_refused_rate_limited(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_RATE_SHARE_SIGNALS = (3, 60)
    started, patron, desk = await accepted_chat(sockets, cast)
    await patron.send({"type": "share_request", "share": "s1"})
    await desk.recv_until("share_request", share="s1")  # a reply before it would be refused
    await desk.send(desk_frame(started, "share_reply", share="s1", accept=True))
    await patron.recv_until("share_reply")
    await patron.send({"type": "share_candidate", "share": "s1", "candidate": CANDIDATE})
    await desk.recv_until("share_candidate")
    await patron.send({"type": "share_candidate", "share": "s1", "candidate": CANDIDATE})
    await desk.recv_until("share_candidate")

    await patron.send({"type": "share_candidate", "share": "s1", "candidate": CANDIDATE})
    error = await patron.recv_until("error")

    assert error["code"] == "rate_limited"
    assert 1 <= error["retry_after_s"] <= 61


# --- a share ends with its socket or its chat ----------


async def test_a_share_that_could_not_connect_says_so_to_the_other_side(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    await patron_shares_and_lena_watches(started, patron, desk)

    await desk.send(desk_frame(started, "share_stop", share="s1", reason="failed"))

    _noted, stop = of_types(await patron.drain(), "status", "share_stop")
    assert stop["reason"] == "failed"
    await patron.send({"type": "share_request", "share": "s2"})
    await desk.recv_until("share_request")
    await patron.send({"type": "share_stop", "share": "s2", "reason": "bored"})
    assert (await patron.recv_until("error"))["code"] == "invalid"


async def test_a_patron_who_leaves_mid_share_ends_it_for_the_librarian(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    await patron_shares_and_lena_watches(started, patron, desk)

    await patron.disconnect()

    noted, stop = of_types(await desk.drain(), "status", "share_stop")
    assert stop["share"] == "s1"
    assert noted["sharing"] == "ended"


async def test_closing_the_chat_mid_share_notes_the_end_before_the_close(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    await patron_shares_and_lena_watches(started, patron, desk)

    await desk.send(desk_frame(started, "close"))
    await patron.recv_until("status", status="closed")

    notes = await db(
        lambda: [
            (e.data["status"], e.data.get("sharing"))
            for e in Event.objects.filter(kind=EventKind.STATUS).order_by("seq")
        ]
    )()
    assert notes[-3:] == [("active", "started"), ("active", "ended"), ("closed", None)]
    await patron.send({"type": "share_stop", "share": "s1"})
    assert (await patron.recv_until("error"))["code"] == "conflict"


async def test_a_transfer_mid_share_ends_it_and_the_patron_can_share_with_the_new_librarian(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    mara, _welcome = await sockets.desk(cast.manager)
    await patron_shares_and_lena_watches(started, patron, desk)

    await desk.send(desk_frame(started, "transfer", to_user="mara"))
    await mara.recv_until("assigned", conversation=started.public_id)

    frames = await patron.drain()
    told = [
        (f["type"], f.get("sharing") or f.get("share"))
        for f in frames
        if "seq" in f or f["type"] == "share_stop"
    ]
    assert told == [("status", "ended"), ("share_stop", "s1"), ("status", None)]
    assert frames[-1]["reason"] == "transferred to Mara"
    await mara.drain()
    await desk.drain()
    await patron.send({"type": "share_request", "share": "s2"})
    assert (await mara.recv_until("share_request"))["share"] == "s2"
    assert [f for f in await desk.drain() if f["type"].startswith("share_")] == []


def test_the_recorded_events_go_out_only_after_commit(
    cast: Cast, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr("chat.doorbell.ring_sync", lambda topic, message: sent.append(message))

    with django_capture_on_commit_callbacks(execute=True):
        services.screen_sharing_record(
            conversation_id=started.pk, sharer=Sender.PATRON, state="started"
        )
        assert sent == []

    frames = [message["event"] for message in sent]
    assert [(f["type"], f["sharing"], f["sharer"]) for f in frames] == [
        ("status", "started", "patron")
    ]
    assert frames[0]["status"] == Status.ACTIVE


# --- ICE servers and TURN credentials ----------


def test_turn_credentials_are_the_hmac_sha1_of_expiry_and_user_as_coturn_checks_them() -> None:
    # Checked with: printf '1700003600:conv42' | openssl dgst -sha1 -hmac north-wind -binary
    #   | base64
    username, credential = sharing.turn_credentials(
        secret="north-wind", user="conv42", ttl_s=3600, now=1_700_000_000.7
    )

    assert username == "1700003600:conv42"
    assert credential == "EpPT8w7eiZOwzhYit0mOtBhkcUA="


def test_ice_servers_give_stun_as_is_and_turn_with_short_lived_credentials(
    settings: Settings,
) -> None:
    settings.REFLIB_ICE_SERVERS = [
        "stun:turn.library.example:3478",
        "turn:turn.library.example:3478?transport=udp",
        "turns:turn.library.example:5349",
    ]
    settings.REFLIB_TURN_SECRET = "north-wind"
    settings.REFLIB_TURN_TTL_S = 600

    servers = sharing.ice_servers(user="conv42", now=1_700_000_000)

    assert servers == [
        {"urls": ["stun:turn.library.example:3478"]},
        {
            "urls": [
                "turn:turn.library.example:3478?transport=udp",
                "turns:turn.library.example:5349",
            ],
            "username": "1700000600:conv42",
            "credential": sharing.turn_credentials(
                secret="north-wind", user="conv42", ttl_s=600, now=1_700_000_000
            )[1],
        },
    ]


async def test_the_consent_hands_both_browsers_the_configured_ice_servers(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_ICE_SERVERS = ["stun:stun.library.example", "turn:turn.library.example"]
    settings.REFLIB_TURN_SECRET = "north-wind"
    settings.REFLIB_ICE_TRANSPORT_POLICY = "relay"
    started, patron, desk = await accepted_chat(sockets, cast)
    await patron.send({"type": "share_request", "share": "s1"})
    await desk.recv_until("share_request", share="s1")  # a reply before it would be refused
    await desk.send(desk_frame(started, "share_reply", share="s1", accept=True))

    for socket in (patron, desk):
        consent = await socket.recv_until("share_reply")
        assert consent["ice_transport_policy"] == "relay"
        servers = consent["ice_servers"]
        assert servers[0] == {"urls": ["stun:stun.library.example"]}
        assert servers[1]["username"].endswith(":" + started.public_id)
        assert servers[1]["credential"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REFLIB_ICE_SERVERS": "http://turn.example"}, "REFLIB_ICE_SERVERS"),
        ({"REFLIB_ICE_SERVERS": "turn:turn.example"}, "REFLIB_TURN_SECRET"),
        ({"REFLIB_TURN_TTL_S": "10"}, "REFLIB_TURN_TTL_S"),
        ({"REFLIB_RATE_SHARE_SIGNALS": "lots"}, "REFLIB_RATE_SHARE_SIGNALS"),
        ({"REFLIB_ICE_TRANSPORT_POLICY": "direct"}, "REFLIB_ICE_TRANSPORT_POLICY"),
        ({"REFLIB_ICE_TRANSPORT_POLICY": "relay"}, "REFLIB_ICE_TRANSPORT_POLICY"),
    ],
    ids=[
        "not-an-ice-url",
        "turn-without-secret",
        "ttl-too-short",
        "rate-not-count-per-seconds",
        "unknown-transport-policy",
        "relay-only-without-turn",
    ],
)
def test_a_bad_sharing_setting_stops_the_process_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    result = python(["-c", SETUP], env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr.splitlines()[-1]


# --- the pages that may capture a screen ----------


def test_the_panel_and_the_desk_may_capture_their_own_screen_and_nothing_else(
    cast: Cast,
) -> None:
    panel = Client().get("/widget/demo/general/")
    desk = cast.client_for(cast.librarian).get("/desk/")
    home = Client().get("/accounts/login/")

    for response in (panel, desk):
        assert response.status_code == 200
        assert response["Permissions-Policy"] == "display-capture=(self), camera=(), microphone=()"
        assert "connect-src 'self'" in response["Content-Security-Policy"]
        assert "media-src" not in response["Content-Security-Policy"]
    assert "Permissions-Policy" not in home


def test_the_loader_lets_its_frame_ask_for_the_screen() -> None:
    assert 'frame.allow="display-capture";' in loader_source().replace(" ", "")


# --- while the cache (Redis) is unreachable ----------


def _cache_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise redis.ConnectionError("Connection refused")

    for method in ("get", "add", "set", "delete"):
        monkeypatch.setattr(sharing.cache, method, refuse)


def test_sharing_says_it_is_unavailable_while_the_cache_is_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _cache_down(monkeypatch)

    with pytest.raises(ChatError) as refused:
        sharing.share_step(conversation_id=1, side="patron", step="request", share_id="s1")

    assert refused.value.code == "conflict"
    assert "unavailable" in refused.value.detail


def test_a_chat_still_closes_while_the_cache_is_unreachable(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = start_accepted(cast.queue, cast.librarian)
    _cache_down(monkeypatch)

    services.conversation_close(conversation_id=started.pk, user=cast.librarian)

    assert Conversation.objects.get(pk=started.pk).status == Status.CLOSED
