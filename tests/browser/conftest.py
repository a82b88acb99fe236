"""Browser fixtures: Debian's Chromium through Playwright, reflib in a real daphne process, and a
library's own web site on another origin whose pages embed the widget under a strict CSP.

Playwright's sync API keeps an asyncio event loop running in the test's thread for as long as it
is started. Django refuses ORM calls from such a thread, so while the browser is up this module
tells Django that the test code is synchronous (``DJANGO_ALLOW_ASYNC_UNSAFE``), and whatever
publishes to the channel layer (``async_to_sync``) runs in a worker thread (``in_thread``).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Frame, FrameLocator, Page, sync_playwright
from pytest_django import Settings
from websockets.sync.client import ClientConnection, connect

from reflib.services import library_upsert
from tests.conftest import Cast
from tests.live import DaphneCluster, DaphneProcess
from tests.services import require

CHROMIUM = "/usr/bin/chromium"
# NOTES.md: without the networking flags Chromium tries to reach the internet and slows down.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
RECEIVE_TIMEOUT_S = 10.0
PANEL_TITLE = "Chat with a librarian"

T = TypeVar("T")


def chromium_problem() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"needs Chromium: {CHROMIUM} is not installed (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module; every test gets a fresh context (a fresh profile)."""
    require(chromium_problem())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Settings) -> None:
    # The widget's tests make the librarian's session here, so the daphne process never checks
    # a password. A module whose librarians log in through the form overrides this fixture.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``function`` in a worker thread with its own database connection, closed after."""

    def run() -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


# --- the library's own web site ----------


@dataclass
class HostSite:
    """Pages of a library's site on an origin of its own, each embedding the widget."""

    server: ThreadingHTTPServer
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def page(
        self, reflib: str, queue: str = "demo/general", *, embed: bool = True, **options: str
    ) -> str:
        """A page with the one-line embed (``options`` become data- attributes); its URL.

        The page's CSP allows reflib's origin exactly where the widget needs it, and no
        inline script or style anywhere.
        """
        attributes = "".join(
            f' data-{name.replace("_", "-")}="{escape(value)}"' for name, value in options.items()
        )
        script = (
            f'<script src="{reflib}/widget.js" data-queue="{escape(queue)}"{attributes} async>'
            "</script>\n"
        )
        body = (
            "<!doctype html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            "<title>Springfield Public Library</title></head>\n"
            "<body><header><h1>Springfield Public Library</h1></header>\n"
            "<main><p>Open Monday to Saturday. Ask us anything.</p>"
            '<p><a id="ask" href="#ask">Ask us a question</a></p></main>\n'
            f"{script if embed else ''}</body></html>\n"
        )
        policy = (
            f"default-src 'self'; script-src 'self' {reflib}; style-src 'self' {reflib}; "
            f"frame-src {reflib}; connect-src {reflib}"
        )
        path = f"/page-{next(self.counter)}.html"
        self.pages[path] = (body, policy)
        return self.origin + path


@pytest.fixture(scope="session")
def host_site() -> Iterator[HostSite]:
    site: HostSite

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = site.pages.get(self.path.split("?")[0])
            if found is None:
                self.send_error(404)
                return
            body, policy = found
            payload = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", policy)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site = HostSite(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


# --- reflib ----------


@pytest.fixture
def reflib(
    cast: Cast,
    daphne_cluster: DaphneCluster,
    host_site: HostSite,
    tmp_path: Path,
) -> Iterator[DaphneProcess]:
    """One daphne process serving reflib; the host site may embed the demo library's chat.

    With Redis, the process gets key prefixes of its own: no other test run on the same Redis
    shares its groups or its rate-limit counters.
    """
    library_upsert(slug=cast.library.slug, origins=[host_site.origin])
    prefix = f"reflib-browser-{uuid.uuid4().hex}"
    (server,) = daphne_cluster.start(
        1,
        REFLIB_MEDIA_ROOT=str(tmp_path / "media"),
        REFLIB_CHANNEL_PREFIX=prefix,
        REFLIB_CACHE_PREFIX=prefix,
    )
    yield server
    # Shown with a failing test's output: what went wrong on the server's side.
    log = server.log.read_text(errors="replace")
    if "Traceback" in log:
        print(f"daphne log:\n{log[-6000:]}")


@dataclass
class Watched:
    """A page and what went wrong in it: script errors and refused CSP loads, in every frame."""

    page: Page
    problems: list[str] = field(default_factory=list)

    @property
    def panel(self) -> FrameLocator:
        return self.page.frame_locator("reflib-chat iframe")

    def shoot(self, state: str) -> None:
        """With REFLIB_SCREENSHOTS=DIR, save the page as DIR/widget-STATE.png."""
        folder = os.environ.get("REFLIB_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / f"widget-{state}.png"))

    def panel_frame(self) -> Frame:
        for frame in self.page.frames:
            if "/widget/" in frame.url:
                return frame
        raise AssertionError(f"no panel frame in {[f.url for f in self.page.frames]}")


@pytest.fixture
def context(browser: Browser, reflib: DaphneProcess) -> Iterator[BrowserContext]:
    # After reflib, so that the browser's sockets close before the server stops.
    context = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 820})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def watched(context: BrowserContext) -> Iterator[Watched]:
    page = context.new_page()
    watched = Watched(page)

    def console(message: Any) -> None:
        # Scripts a test evaluates (axe-core) have no URL; the page's and the widget's have.
        source = message.location.get("url", "")
        if message.type == "error" and "Content Security Policy" in message.text and source:
            watched.problems.append(f"{message.text} ({source})")

    page.on("console", console)
    page.on("pageerror", lambda error: watched.problems.append(f"uncaught: {error}"))
    yield watched
    assert watched.problems == [], "the page reported problems"


def axe_violations(target: Page | Frame, *, iframes: bool = True) -> list[dict[str, Any]]:
    """axe-core's violations in a page or one frame (injected there, run there)."""
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if not iframes:
        options["iframes"] = False
    results = Axe().run(target, options=options)
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "nodes": [node["target"] for node in violation["nodes"]],
            "summary": [node.get("failureSummary", "") for node in violation["nodes"]][:3],
        }
        for violation in results.response["violations"]
    ]


# --- the librarian, at the desk ----------


def session_id(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class Desk:
    """A librarian's desk socket (PROTOCOL.md) on the real server; every frame is kept."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []
        self.recv_until("welcome")

    def send(self, frame: dict[str, Any]) -> None:
        self.socket.send(json.dumps(frame))

    def recv_until(
        self, kind: str, timeout: float = RECEIVE_TIMEOUT_S, **fields: Any
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} frame with {fields}; received: {seen}")
            try:
                frame = json.loads(self.socket.recv(timeout=left))
            except TimeoutError:
                continue
            self.frames.append(frame)
            seen.append(frame)
            if frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items()):
                return dict(frame)

    def available(self) -> None:
        self.send({"type": "presence", "state": "available"})
        self.recv_until("queue")

    def next_waiting(self) -> str:
        """The conversation of the first patron in the queue (waits for one to arrive)."""
        for frame in reversed(self.frames):
            if frame.get("type") == "queue" and frame.get("items"):
                return str(frame["items"][0]["conversation"])
        frame = self.recv_until("queue", timeout=RECEIVE_TIMEOUT_S)
        while not frame["items"]:
            frame = self.recv_until("queue")
        return str(frame["items"][0]["conversation"])

    def accept(self, conversation: str) -> None:
        self.send({"type": "accept", "conversation": conversation})
        self.recv_until("accepted", conversation=conversation)

    def say(self, conversation: str, body: str) -> dict[str, Any]:
        client_msg_id = uuid.uuid4().hex
        self.send(
            {
                "type": "send",
                "conversation": conversation,
                "client_msg_id": client_msg_id,
                "body": body,
            }
        )
        return self.recv_until("ack", client_msg_id=client_msg_id)

    def message_from_patron(self, conversation: str, body: str) -> dict[str, Any]:
        for frame in self.frames:
            if (
                frame.get("type") == "message"
                and frame.get("from") == "patron"
                and frame.get("body") == body
            ):
                return frame
        return self.recv_until("message", conversation=conversation, body=body)


@contextmanager
def open_desk(server: DaphneProcess, user: User) -> Iterator[Desk]:
    headers = {"Origin": server.http_url, "Cookie": f"sessionid={session_id(user)}"}
    url = f"{server.ws_url}/ws/v1/desk/"
    with connect(url, additional_headers=headers, proxy=None) as socket:
        yield Desk(socket)


@pytest.fixture
def desk(reflib: DaphneProcess, cast: Cast) -> Iterator[Desk]:
    """The demo library's librarian at the desk, available: the queue is online."""
    with open_desk(reflib, cast.librarian) as desk:
        desk.available()
        yield desk


def name(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)
