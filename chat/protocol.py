"""Validation of incoming WebSocket frames: turns raw text into typed values or ChatError."""

from __future__ import annotations

import json
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
