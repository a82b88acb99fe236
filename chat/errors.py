"""The closed error vocabulary of the chat protocol (PROTOCOL.md, "Errors")."""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal[
    "invalid",
    "too_large",
    "rate_limited",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "closed",
    "offline",
]

HTTP_STATUS: dict[str, int] = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "closed": 409,
    "offline": 409,
    "too_large": 413,
    "rate_limited": 429,
}


class ChatError(Exception):
    """A refusal that clients understand: a code from the vocabulary and a human detail."""

    def __init__(self, code: ErrorCode, detail: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.code: ErrorCode = code
        self.detail = detail
        self.retry_after_s = retry_after_s
