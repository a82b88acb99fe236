"""The closed error vocabulary of the chat protocol (PROTOCOL.md, "Errors")."""

from __future__ import annotations

from typing import Any, Literal

from django.http import JsonResponse

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
    """A refusal that clients understand: a code from the vocabulary and a human detail.

    ``http_status`` is the HTTP status when it is not the code's usual one."""

    http_status: int | None = None

    def __init__(self, code: ErrorCode, detail: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.code: ErrorCode = code
        self.detail = detail
        self.retry_after_s = retry_after_s


class ServerBusy(ChatError):
    """``rate_limited`` because the server, not the client, is behind: the message was not
    stored and the client sends it again after ``retry_after_s`` (the acks slow down instead
    of a backlog growing). It never counts towards closing the socket as a flood."""

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__("rate_limited", detail, retry_after_s=retry_after_s)


def error_response(
    error: ChatError,
    *,
    status: int | None = None,
    fields: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    """The HTTP answer to a refusal: ``{"error": CODE, "detail": TEXT}``, with ``"fields"`` on
    (and only on) status 400, and ``Retry-After`` when the client should wait."""
    status = status or error.http_status or HTTP_STATUS[error.code]
    body: dict[str, Any] = {"error": error.code, "detail": error.detail}
    if status == 400:
        body["fields"] = fields or {}
    headers = dict(headers or {})
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(error.retry_after_s)
    return JsonResponse(body, status=status, headers=headers)
