"""No secrets or personal data in logs (SPEC §4, §1.6): a whole conversation and a whole ticket
through a real daphne process, with its access log on and every logger at DEBUG, then its
log is searched for the patron's token, the ticket's key, e-mail addresses and message text.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from http.cookiejar import CookieJar
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
from django.test import Client
from redis import Redis

from chat import services
from chat.models import PresenceState, Ticket, hash_token
from tests.chat.live_clients import DEMO_ORIGIN, open_desk, open_patron
from tests.conftest import Cast
from tests.live import DaphneCluster, DaphneProcess

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

NAME = "Quentin Marlowe-Pryce"
EMAIL = "quentin.pryce@example.net"
TRANSCRIPT_EMAIL = "q.marlowe@example.com"
TICKET_EMAIL = "qmp.ticket@example.org"
QUESTION = "Where are the Zanzibar shipping manifests of 1887?"
PATRON_LINE = "My card is 21234009998887 and my phone is (503) 555-0177"
LIBRARIAN_LINE = "The manifests are in Special Collections, box Xylophone-42"
RATING_COMMENT = "Wonderfully patient librarian, thanks"
TICKET_QUESTION = "Could you scan the Halcyon Quarterly index for me?"
TICKET_REPLY = "Also the Periwinkle Gazette, please"
TICKET_KEY = "ticket-key-the-test-knows-" + uuid.uuid4().hex


class Browser:
    """A cookie-keeping HTTP client, as a patron's browser is."""

    def __init__(self, server: DaphneProcess) -> None:
        self.server = server
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()))

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        data = None
        all_headers = {"Origin": DEMO_ORIGIN, **(headers or {})}
        if json_body is not None:
            data = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        if form is not None:
            data = urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
            all_headers["Origin"] = self.server.http_url
            all_headers["Referer"] = f"{self.server.http_url}{path}"
        request = Request(  # noqa: S310 (always http://127.0.0.1)
            f"{self.server.http_url}{path}", data=data, method=method, headers=all_headers
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read().decode()
        except HTTPError as error:
            return error.code, error.read().decode()

    def csrf_token(self, page: str) -> str:
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match is not None, page
        return match.group(1)


def session_id(cast: Cast) -> str:
    client = Client()
    client.force_login(cast.librarian)
    return client.cookies["sessionid"].value


@pytest.fixture
def server(cast: Cast) -> Any:
    cluster = DaphneCluster(args=("--access-log", "-"))
    prefix = f"reflib-logs-{uuid.uuid4().hex[:12]}"
    try:
        (process,) = cluster.start(
            1,
            LOG_LEVEL="DEBUG",
            REFLIB_CHANNEL_PREFIX=prefix,
            REFLIB_CACHE_PREFIX=prefix,
        )
        yield process
    finally:
        cluster.stop()


def test_a_whole_conversation_and_ticket_leave_no_secret_or_personal_data_in_the_logs(
    server: DaphneProcess, cast: Cast, settings: Any
) -> None:
    services.presence_set(user=cast.librarian, state=PresenceState.AVAILABLE)
    patron = Browser(server)
    status, body = patron.request(
        "POST",
        "/api/v1/conversations/",
        json_body={
            "queue": "demo/general",
            "question": QUESTION,
            "name": NAME,
            "email": EMAIL,
            "page_url": "https://www.demo-library.org/special?from=newsletter",
        },
    )
    assert status == 201, body
    started = json.loads(body)
    conversation, token = started["conversation"], started["token"]
    lena = session_id(cast)
    # A transcript goes only to an address given at the start or confirmed during the chat.
    status, body = patron.request(
        "POST",
        f"/api/v1/conversations/{conversation}/email",
        json_body={"email": TRANSCRIPT_EMAIL},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 200, body

    async def chat() -> None:
        patron_socket, _ = await open_patron(server, token)
        desk, _ = await open_desk(server, lena)
        try:
            await desk.send({"type": "accept", "conversation": conversation})
            await desk.recv_until("accepted")
            await patron_socket.send({"type": "send", "client_msg_id": "p1", "body": PATRON_LINE})
            await patron_socket.recv_until("ack", client_msg_id="p1")
            await desk.send(
                {
                    "type": "send",
                    "conversation": conversation,
                    "client_msg_id": "l1",
                    "body": LIBRARIAN_LINE,
                }
            )
            await desk.recv_until("ack", client_msg_id="l1")
            await patron_socket.recv_until("message", body=LIBRARIAN_LINE)
            await desk.send({"type": "close", "conversation": conversation, "tags": ["manifests"]})
            await patron_socket.recv_until("status", status="closed")
        finally:
            await patron_socket.close()
            await desk.close()

    asyncio.run(asyncio.wait_for(chat(), 60))
    auth = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/conversations/{conversation}"
    assert (
        patron.request(
            "POST",
            f"{base}/rating",
            json_body={"score": 5, "comment": RATING_COMMENT},
            headers=auth,
        )[0]
        == 200
    )
    assert (
        patron.request(
            "POST", f"{base}/transcript", json_body={"email": TRANSCRIPT_EMAIL}, headers=auth
        )[0]
        == 202
    )
    assert patron.request("POST", f"{base}/rating", json_body={"score": 9}, headers=auth)[0] == 400
    assert patron.request("DELETE", f"{base}/", headers=auth)[0] == 204
    assert patron.request("DELETE", f"{base}/", headers=auth)[0] == 401

    # A question left while offline, then the patron's page opened from the e-mailed link.
    status, body = patron.request(
        "POST",
        "/api/v1/tickets/",
        json_body={
            "queue": "demo/general",
            "question": TICKET_QUESTION,
            "email": TICKET_EMAIL,
            "name": NAME,
        },
    )
    assert status == 201, body
    ticket_id = json.loads(body)["ticket"]
    # The real key travels only in the receipt e-mail; give the ticket one the test knows.
    Ticket.objects.filter(public_id=ticket_id).update(access_hash=hash_token(TICKET_KEY))
    reader = Browser(server)
    status, page = reader.request("GET", f"/tickets/{ticket_id}/")
    assert status == 200
    csrf = reader.csrf_token(page)
    wrong = reader.request(
        "POST",
        f"/tickets/{ticket_id}/open/",
        form={"key": TICKET_KEY[:-1] + "x", "csrfmiddlewaretoken": csrf},
    )
    assert wrong[0] == 404
    status, page = reader.request(
        "POST", f"/tickets/{ticket_id}/open/", form={"key": TICKET_KEY, "csrfmiddlewaretoken": csrf}
    )
    assert status == 200
    assert TICKET_QUESTION in page
    status, page = reader.request(
        "POST",
        f"/tickets/{ticket_id}/",
        form={"body": TICKET_REPLY, "csrfmiddlewaretoken": reader.csrf_token(page)},
    )
    assert status == 200
    assert TICKET_REPLY in page

    log = server.log.read_text(errors="replace")
    # The access log and DEBUG logging were on: the requests are there, by path.
    assert f"POST /tickets/{ticket_id}/open/" in log
    assert "POST /api/v1/conversations/" in log
    secrets = {
        "patron token": token,
        "ticket key": TICKET_KEY,
        "session id": lena,
        "csrf token": csrf,
    }
    personal = {
        "name": NAME,
        "e-mail": EMAIL,
        "transcript e-mail": TRANSCRIPT_EMAIL,
        "ticket e-mail": TICKET_EMAIL,
        "question": QUESTION,
        "patron's message": PATRON_LINE,
        "librarian's message": LIBRARIAN_LINE,
        "rating comment": RATING_COMMENT,
        "ticket question": TICKET_QUESTION,
        "ticket reply": TICKET_REPLY,
    }
    for what, value in {**secrets, **personal}.items():
        assert value not in log, f"the {what} is in daphne's log"
    for fragment in ("Zanzibar", "Xylophone", "Halcyon", "Periwinkle", "21234009998887"):
        assert fragment not in log
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", log), "an e-mail address is in the log"

    # The transcript and receipt e-mails were queued for a worker (none runs here); leave the
    # broker as it was.
    broker = Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    broker.close()
