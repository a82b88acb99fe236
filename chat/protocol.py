"""Validation of incoming WebSocket frames: turns raw text into typed values or ChatError."""

from __future__ import annotations

import json
import re
from typing import Any

from chat.errors import ChatError

MAX_FRAME_CHARS = 16_384
MAX_CLIENT_MSG_ID = 64
MAX_BODY = 4000


def parse_frame(text: str | None) -> dict[str, Any]:
    if text is None:
        raise ChatError("invalid", "Frames are JSON text, not binary.")
    if len(text) > MAX_FRAME_CHARS:
        raise ChatError("too_large", f"A frame may be at most {MAX_FRAME_CHARS} characters.")
    try:
        frame = json.loads(text)
    except ValueError:
        raise ChatError("invalid", "The frame is not valid JSON.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ChatError("invalid", 'A frame is a JSON object with a "type".')
    return frame


def text_field(
    frame: dict[str, Any], name: str, *, max_length: int, required: bool = True, min_length: int = 1
) -> str:
    value = frame.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not min_length <= len(value) <= max_length:
        raise ChatError(
            "invalid", f'"{name}" must be text of {min_length} to {max_length} characters.'
        )
    if not storable(value):
        raise ChatError("invalid", f'"{name}" contains a character text cannot hold.')
    return value


def storable(value: str) -> bool:
    """Text a database column can hold: no NUL character, no lone UTF-16 surrogate (JSON's
    ``\\ud800`` escapes decode to one, and neither PostgreSQL nor UTF-8 accepts it)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def int_field(
    frame: dict[str, Any], name: str, *, minimum: int, maximum: int, required: bool = True
) -> int | None:
    value = frame.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ChatError("invalid", f'"{name}" must be a whole number from {minimum} to {maximum}.')
    return value


def bool_field(frame: dict[str, Any], name: str) -> bool:
    value = frame.get(name)
    if not isinstance(value, bool):
        raise ChatError("invalid", f'"{name}" must be true or false.')
    return value


def body_field(frame: dict[str, Any]) -> str:
    body = text_field(frame, "body", max_length=MAX_BODY)
    if not body.strip():
        raise ChatError("invalid", "The message is empty.")
    return body


def client_msg_id_field(frame: dict[str, Any]) -> str:
    return text_field(frame, "client_msg_id", max_length=MAX_CLIENT_MSG_ID)


# --- screen sharing (docs/protocol.md "Screen sharing") ----------

MAX_SHARE_ID = 64
# A screen-only session description is 2-6 KB; the frame limit caps it anyway.
MAX_SDP = 12_000
MAX_CANDIDATE = 1_000
SHARE_ID = re.compile(r"[A-Za-z0-9_-]+")


def share_id_field(frame: dict[str, Any]) -> str:
    value = text_field(frame, "share", max_length=MAX_SHARE_ID)
    if not SHARE_ID.fullmatch(value):
        raise ChatError("invalid", '"share" may hold only letters, digits, "-" and "_".')
    return value


def sdp_field(frame: dict[str, Any]) -> str:
    sdp = text_field(frame, "sdp", max_length=MAX_SDP)
    if not sdp.startswith("v=0"):
        raise ChatError("invalid", '"sdp" must be a session description (starting "v=0").')
    return sdp


def candidate_field(frame: dict[str, Any]) -> dict[str, Any]:
    """An ICE candidate as the browser's ``RTCIceCandidate.toJSON()`` gives it; only its four
    known fields are kept. An empty ``candidate`` is the end-of-candidates marker."""
    value = frame.get("candidate")
    if not isinstance(value, dict):
        raise ChatError("invalid", '"candidate" must be an object.')
    clean: dict[str, Any] = {
        "candidate": text_field(value, "candidate", max_length=MAX_CANDIDATE, min_length=0)
    }
    mid = value.get("sdpMid")
    if mid is not None and (not isinstance(mid, str) or len(mid) > 64):
        raise ChatError("invalid", '"sdpMid" must be text of at most 64 characters or null.')
    clean["sdpMid"] = mid
    clean["sdpMLineIndex"] = int_field(
        value, "sdpMLineIndex", minimum=0, maximum=64, required=False
    )
    fragment = value.get("usernameFragment")
    if fragment is not None and (not isinstance(fragment, str) or len(fragment) > 256):
        raise ChatError(
            "invalid", '"usernameFragment" must be text of at most 256 characters or null.'
        )
    clean["usernameFragment"] = fragment
    if mid is None and clean["sdpMLineIndex"] is None:
        raise ChatError("invalid", 'A candidate needs "sdpMid" or "sdpMLineIndex".')
    return clean


def stop_reason_field(frame: dict[str, Any]) -> str:
    """Why a share stopped, when it was not a person's choice: only "failed" (the two browsers
    could not connect), so the other side can say so too."""
    if frame.get("reason") != "failed":
        raise ChatError("invalid", '"reason" may only be "failed".')
    return "failed"
