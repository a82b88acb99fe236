"""Screen sharing between a patron and the librarian answering them (docs/protocol.md).

The video goes straight from one browser to the other over WebRTC; reflib only relays the
signalling (offer, answer, ICE candidates) between the two participants and never keeps it.
What reflib does keep is the consent state of the one share a conversation may have at a time,
in the cache (shared by every process when Redis is configured), so that no offer is relayed
before the viewer has said yes:

    request (sharer)  -> asked
    reply accept      -> agreed   (reply decline, or stop, forgets it)
    offer (sharer)    -> live     (stored "screen sharing started")
    stop (either)     -> gone     (stored "screen sharing ended" when it was live)

It also hands both browsers the ICE servers (``REFLIB_ICE_SERVERS``), with short-lived TURN
credentials in the form coturn's REST API expects (``use-auth-secret``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import wraps
from typing import Any, Literal, TypeVar, cast

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponseBase
from django.utils.translation import gettext as _

from chat import outages
from chat.errors import ChatError

log = logging.getLogger(__name__)

Side = Literal["patron", "librarian"]
View = TypeVar("View", bound=Callable[..., HttpResponseBase])
Step = Literal["request", "reply", "offer", "answer", "candidate", "stop"]
STEPS: tuple[Step, ...] = ("request", "reply", "offer", "answer", "candidate", "stop")

# An unanswered request lapses; an agreed or live share is forgotten long after any real one.
ASKED_TTL_S = 120
LIVE_TTL_S = 12 * 3600

# The panel and the desk may capture a screen, in their own documents only (the loader's
# frame also grants it with allow="display-capture"); sharing needs no camera or microphone.
PERMISSIONS_POLICY = "display-capture=(self), camera=(), microphone=()"


def turn_credentials(*, secret: str, user: str, ttl_s: int, now: float) -> tuple[str, str]:
    """coturn's REST API credentials: ``username = expiry:user`` (expiry in Unix seconds),
    ``credential = base64(HMAC-SHA1(secret, username))``."""
    username = f"{int(now) + ttl_s}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(*, user: str, now: float | None = None) -> list[dict[str, Any]]:
    """The RTCPeerConnection ``iceServers`` for one conversation's share."""
    urls: list[str] = settings.REFLIB_ICE_SERVERS
    stun = [url for url in urls if url.startswith(("stun:", "stuns:"))]
    turn = [url for url in urls if url.startswith(("turn:", "turns:"))]
    servers: list[dict[str, Any]] = []
    if stun:
        servers.append({"urls": stun})
    if turn:
        username, credential = turn_credentials(
            secret=settings.REFLIB_TURN_SECRET,
            user=user,
            ttl_s=settings.REFLIB_TURN_TTL_S,
            now=time.time() if now is None else now,
        )
        servers.append({"urls": turn, "username": username, "credential": credential})
    return servers


@dataclass
class Share:
    id: str
    sharer: Side
    state: Literal["asked", "agreed", "live"]


@dataclass(frozen=True)
class Outcome:
    """What a step changed: ``recorded`` is "started" or "ended" when the transcript gets a
    status event."""

    share: Share
    recorded: Literal["started", "ended"] | None = None


def _key(conversation_id: int) -> str:
    return f"chat:share:{conversation_id}"


@contextmanager
def _state_available() -> Iterator[None]:
    """The share states live in the cache (Redis): while it is unreachable, sharing says so
    instead of failing the socket (chat/outages.py)."""
    try:
        yield
    except outages.LAYER_ERRORS as error:
        log.warning("screen sharing unavailable: the cache is unreachable (%s)", error)
        raise ChatError(
            "conflict", _("Screen sharing is unavailable for a moment. Please try again.")
        ) from None


def _current(conversation_id: int) -> Share | None:
    stored = cache.get(_key(conversation_id))
    return Share(**stored) if isinstance(stored, dict) else None


def _keep(conversation_id: int, share: Share) -> None:
    ttl = ASKED_TTL_S if share.state == "asked" else LIVE_TTL_S
    cache.set(_key(conversation_id), asdict(share), timeout=ttl)


def _not_in_progress() -> ChatError:
    return ChatError("conflict", _("This screen share is not in progress."))


def share_step(
    *, conversation_id: int, side: Side, step: Step, share_id: str, accept: bool = False
) -> Outcome:
    """Move a conversation's share one step, or refuse with ``conflict`` when the step does not
    fit (an offer before consent, a reply from the sharer, an answer to nothing)."""
    with _state_available():
        return _step(conversation_id, side, step, share_id, accept)


def _step(conversation_id: int, side: Side, step: Step, share_id: str, accept: bool) -> Outcome:
    if step == "request":
        asked = Share(id=share_id, sharer=side, state="asked")
        if cache.add(_key(conversation_id), asdict(asked), timeout=ASKED_TTL_S):
            return Outcome(asked)
        current = _current(conversation_id)
        if current is not None and current.id == share_id and current.sharer == side:
            return Outcome(current)  # the same request again (a resend after a reconnect)
        raise ChatError("conflict", _("A screen is already being shared in this chat."))
    current = _current(conversation_id)
    if current is None or current.id != share_id:
        raise _not_in_progress()
    viewer = side != current.sharer
    if step == "stop":
        cache.delete(_key(conversation_id))
        return Outcome(current, "ended" if current.state == "live" else None)
    if step == "reply" and viewer and current.state == "asked":
        if not accept:
            cache.delete(_key(conversation_id))
            return Outcome(current)
        current.state = "agreed"
        _keep(conversation_id, current)
        return Outcome(current)
    if step == "offer" and not viewer and current.state in ("agreed", "live"):
        recorded: Literal["started"] | None = "started" if current.state == "agreed" else None
        current.state = "live"
        _keep(conversation_id, current)
        return Outcome(current, recorded)
    if step == "answer" and viewer and current.state == "live":
        return Outcome(current)
    if step == "candidate" and current.state in ("agreed", "live"):
        return Outcome(current)
    raise _not_in_progress()


def share_forget(*, conversation_id: int) -> Share | None:
    """The conversation ended or changed hands: whatever share it had is over once that
    commits (a transaction that rolls back leaves the share as it was)."""
    try:
        current = _current(conversation_id)
    except outages.LAYER_ERRORS as error:
        # Ending or passing on a chat must not wait for Redis; a share it had lapses.
        log.warning("a screen share could not be ended: the cache is unreachable (%s)", error)
        return None
    if current is not None:
        key = _key(conversation_id)
        transaction.on_commit(lambda: cache.delete(key), robust=True)
    return current


def allows_display_capture(view: View) -> View:
    """Send the Permissions-Policy of a page that may share its user's screen."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        response["Permissions-Policy"] = PERMISSIONS_POLICY
        return response

    return cast(View, wrapped)


def share_strings(failed: str) -> dict[str, str]:
    """What the screen-sharing module says, on the panel and the desk alike; ``failed`` is
    each side's own advice when the two browsers cannot connect."""
    return {
        "shareWaiting": _("Waiting for %(name)s to accept your screen…"),
        "shareAsk": _("%(name)s would like to show you their screen."),
        "shareView": _("View screen"),
        "shareDecline": _("Decline"),
        "shareCancel": _("Cancel"),
        "shareDeclined": _("%(name)s declined to view your screen."),
        "shareConnecting": _("Connecting the screen…"),
        "shareSharing": _("You are sharing your screen with %(name)s."),
        "shareViewing": _("You are viewing %(name)s's screen."),
        "shareScreenOf": _("%(name)s's screen"),
        "shareStop": _("Stop sharing"),
        "shareStopViewing": _("Stop viewing"),
        "shareEnded": _("Screen sharing has ended."),
        "shareCancelled": _("Your screen was not shared."),
        "shareUnsupported": _("This browser cannot share a screen."),
        "shareFailed": failed,
        "sharing_started": _("Screen sharing started."),
        "sharing_ended": _("Screen sharing ended."),
    }
