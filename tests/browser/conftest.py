"""Browser fixtures: Debian's Chromium through Playwright, reflib in a real daphne process, and a
library's own web site on another origin whose pages embed the widget under a strict CSP.

Playwright's sync API keeps an asyncio event loop running in the test's thread for as long as it
is started. Django refuses ORM calls from such a thread, so while the module's browser is up this
module tells Django that the test code is synchronous (``DJANGO_ALLOW_ASYNC_UNSAFE``), and
whatever publishes to the channel layer (``async_to_sync``) runs on a thread of its own
(``orm``). Tests that start a Chromium of their own (``browsers``) make every ORM and service
call there.
"""

from __future__ import annotations

import copy
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
from PIL import Image
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Frame,
    FrameLocator,
    Locator,
    Page,
    expect,
    sync_playwright,
)
from pytest_django import Settings
from websockets.sync.client import ClientConnection, connect

from reflib.services import library_upsert
from tests.conftest import PASSWORD, Cast
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
FILLER = "<p>Opening hours, events, the catalogue and our databases.</p>"

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


# --- the library's own web site ----------


@dataclass
class HostSite:
    """Pages of a library's site on an origin of its own, each embedding the widget."""

    server: ThreadingHTTPServer
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def origin(self) -> str:
        # Another site than reflib's 127.0.0.1, as a library's own site is: the browser treats
        # the widget's frame as third-party (NOTES.md: its own storage is denied).
        return f"http://localhost:{self.server.server_address[1]}"

    def page(
        self,
        reflib: str,
        queue: str = "demo/general",
        *,
        embed: bool = True,
        title: str = "Springfield Public Library",
        long: bool = False,
        **options: str,
    ) -> str:
        """A page with the one-line embed (``options`` become data- attributes); its URL.

        ``long`` makes it taller than any screen, so that it scrolls.

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
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title></head>\n"
            "<body><header><h1>Springfield Public Library</h1></header>\n"
            "<main><p>Open Monday to Saturday. Ask us anything.</p>"
            '<p><a id="ask" href="#ask">Ask us a question</a></p>'
            f"{FILLER * (60 if long else 0)}"
            "</main>\n"
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
    settings: Settings,
    tmp_path: Path,
) -> Iterator[DaphneProcess]:
    """One daphne process serving reflib; the host site may embed the demo library's chat.

    The process and the test share the folder of uploaded files. With Redis they also share key
    prefixes of their own: what the test's services publish rings the process's doorbells, and
    no other test run on the same Redis shares its groups or its rate-limit counters.
    """
    library_upsert(slug=cast.library.slug, origins=[host_site.origin])
    settings.MEDIA_ROOT = tmp_path / "media"
    env = {"REFLIB_MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    if settings.REDIS_URL:
        prefix = f"reflib-browser-{uuid.uuid4().hex[:12]}"
        layers = copy.deepcopy(settings.CHANNEL_LAYERS)
        layers["default"]["CONFIG"]["prefix"] = prefix
        settings.CHANNEL_LAYERS = layers
        env |= {"REFLIB_CHANNEL_PREFIX": prefix, "REFLIB_CACHE_PREFIX": prefix}
    (server,) = daphne_cluster.start(1, **env)
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
            path = Path(folder) / f"widget-{state}.png"
            self.page.screenshot(path=str(path), scale="css")

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


@contextmanager
def watching(page: Page) -> Iterator[Watched]:
    """The page, watched for script errors and refused CSP loads until the block ends."""
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


@pytest.fixture
def watched(context: BrowserContext) -> Iterator[Watched]:
    with watching(context.new_page()) as watched:
        yield watched


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


# --- the patron, in the widget ----------


def name(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


ONLINE = name(r"^Ask a librarian \(online\)$")
OFFLINE = name(r"^Ask a librarian \(offline\)$")


def messages(panel: FrameLocator) -> Locator:
    """The widget's list of messages."""
    return panel.get_by_role("list", name="Messages")


def send(panel: FrameLocator, text: str) -> None:
    """The patron types ``text`` into the widget and presses Enter."""
    box = panel.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def ask(watched: Watched, question: str) -> FrameLocator:
    """Open the panel from the launcher and start a chat; returns the panel."""
    watched.page.get_by_role("button", name=ONLINE).click()
    panel = watched.panel
    panel.get_by_label("Question", exact=True).fill(question)
    panel.get_by_role("button", name="Start chat").click()
    expect(panel.get_by_role("status")).to_contain_text("You are number 1 in the queue.")
    return panel


def answered(watched: Watched, desk: Desk, question: str) -> tuple[FrameLocator, str]:
    """A chat the librarian has accepted; returns the panel and the conversation's id."""
    panel = ask(watched, question)
    conversation = desk.next_waiting()
    desk.accept(conversation)
    expect(messages(panel).get_by_text("Lena joined the chat.")).to_be_visible()
    return panel, conversation


def png_file(path: Path) -> Path:
    Image.new("RGB", (40, 30), "teal").save(path, format="PNG")
    return path


# --- librarians in a browser, at the desk page ----------


class Orm:
    """Runs the test's own ORM and service calls on a thread of their own.

    Playwright's sync API keeps an event loop running on the test's thread, where Django
    refuses synchronous database calls and services cannot publish (``async_to_sync``).
    """

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="orm")

    def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.pool.submit(function, *args, **kwargs).result(timeout=30)

    def close(self) -> None:
        self.pool.submit(connections.close_all).result(timeout=30)
        self.pool.shutdown()


@pytest.fixture
def orm(transactional_db: None) -> Iterator[Orm]:
    runner = Orm()
    try:
        yield runner
    finally:
        runner.close()


class Browsers:
    """Browser contexts, one per person, that collect every script and console error."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.opened: list[BrowserContext] = []
        self.errors: list[str] = []

    def new(self) -> BrowserContext:
        context = self.browser.new_context(base_url=self.base_url, locale="en-US")
        context.on("weberror", lambda error: self.errors.append(str(error.error)))
        context.on("console", self._console)
        self.opened.append(context)
        return context

    def _console(self, message: ConsoleMessage) -> None:
        # A CSP violation, a failing module or a server error shows up here. Not errors of
        # the page: the 404 a test asks for, and network failures ("net::ERR_...") while a
        # test has the server or the network down.
        expected = ("404 (Not Found)", "net::ERR_")
        if message.type == "error" and not any(text in message.text for text in expected):
            self.errors.append(message.text)


@pytest.fixture
def browsers(reflib: DaphneProcess, orm: Orm) -> Iterator[Browsers]:
    """Chromium for one test. It depends on the server and the database, so that it stops
    (and its event loop with it) before they are cleaned up."""
    require(chromium_problem())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        opened = Browsers(browser, reflib.http_url)
        try:
            yield opened
        finally:
            browser.close()
    assert opened.errors == [], "the pages logged errors"


def log_in(context: BrowserContext, username: str) -> Page:
    """Log in through the login form, land on the desk, wait for its socket."""
    page = context.new_page()
    page.goto("/accounts/login/?next=/desk/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/desk/$"))
    expect(page.locator("#desk-connection")).to_have_text("Connected", timeout=TIMEOUT_MS)
    return page


def go_available(page: Page) -> None:
    page.locator("#presence").get_by_text("Available", exact=True).click()
    expect(page.get_by_role("radio", name="Available")).to_be_checked()


def panel(page: Page) -> Locator:
    """The desk's conversation panel in view."""
    return page.get_by_role("tabpanel")


def open_tool(page: Page, summary: str) -> None:
    panel(page).locator("summary", has_text=summary).click()


def log_entries(page: Page, text: str) -> Locator:
    return panel(page).get_by_role("log").locator("li", has_text=text)
