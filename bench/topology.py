"""The production topology on this machine, started as docs/deployment.md says, and one whole
conversation through it in Chromium.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reflib python -m bench.topology

What runs: nginx (Debian's package, installed with apt-get when missing) with the repository's
``deploy/nginx/reflib.conf`` over HTTPS, in front of two daphne processes, one Celery worker and
exactly one Celery beat, each started with the command line of its ``deploy/systemd`` unit and
the environment of ``deploy/reflib.env.example``; PostgreSQL and Redis. Only what cannot be the
same on a test machine is changed, and every change is a checked substitution (so an edit of a
deploy file that the deployment guide relies on fails here): loopback ports instead of 80/443,
a self-signed certificate, 127.0.0.1 as the host name, the checkout instead of /srv/reflib.

Then: ``manage.py check --deploy --fail-level WARNING`` must be clean; ``nginx -t`` must pass;
a patron on a library's page asks in the widget, a librarian logs in to the desk, accepts and
answers, the patron answers back, the librarian closes, and the patron rates the chat, all
through nginx; both daphne processes served requests, the beat sent a periodic task and the
worker ran it; no process may log a traceback. The database server is shared, nothing else:
the script creates a database of its own (dropped afterwards), starts its own redis-server and
runs nginx from a temporary folder. Exit status 0 when everything held.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness import free_port, recreate_database
from tests.resilience.faults import TRACEBACK_MARKERS, OwnRedis, own_redis

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
SITE_PORT = free_port()
LIBRARY_SITE = f"http://localhost:{SITE_PORT}"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUESTION = "Do you have the 1923 town plans?"
ANSWER = "Yes: they are in the local history room, drawer 4."
THANKS = "Perfect, I will come on Saturday."
PASSWORD = secrets.token_urlsafe(18)
TIMEOUT_MS = 20_000


def step(what: str) -> None:
    print(f"{time.monotonic() - STARTED:6.1f} s  {what}", flush=True)


STARTED = time.monotonic()


def replace_once(text: str, old: str, new: str, where: str) -> str:
    if text.count(old) != 1:
        raise SystemExit(f"{where} no longer contains exactly one {old!r}: update {__file__}")
    return text.replace(old, new)


# --- nginx ----------------------------------------------------------------------------------


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if found:
        return found
    step("nginx is missing: installing Debian's package")
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "nginx"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("nginx") or "/usr/sbin/nginx"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def site_config(
    *, daphne_ports: Sequence[int], http: int, https: int, cert: Path, key: Path, folder: Path
) -> str:
    """deploy/nginx/reflib.conf with this machine's ports, certificate and folders."""
    where = "deploy/nginx/reflib.conf"
    text = (DEPLOY / "nginx" / "reflib.conf").read_text()
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in daphne_ports)
    text = replace_once(
        text, "    server 127.0.0.1:8001;\n    server 127.0.0.1:8002;\n", servers, where
    )
    text = replace_once(text, "    listen 80;\n", f"    listen 127.0.0.1:{http};\n", where)
    text = replace_once(text, "    listen [::]:80;\n", "", where)
    text = replace_once(
        text, "    listen 443 ssl http2;\n", f"    listen 127.0.0.1:{https} ssl http2;\n", where
    )
    text = replace_once(text, "    listen [::]:443 ssl http2;\n", "", where)
    text = text.replace("server_name reflib.example.org;", "server_name 127.0.0.1;")
    text = replace_once(
        text, "/etc/letsencrypt/live/reflib.example.org/fullchain.pem", str(cert), where
    )
    text = replace_once(
        text, "/etc/letsencrypt/live/reflib.example.org/privkey.pem", str(key), where
    )
    text = replace_once(
        text, "/var/log/nginx/reflib.access.log", str(folder / "nginx-access.log"), where
    )
    static = folder / "staticfiles"
    return replace_once(text, "alias /srv/reflib/staticfiles/;", f"alias {static}/;", where)


def main_config(folder: Path) -> str:
    """The rest of an nginx.conf, as Debian's /etc/nginx/nginx.conf provides it, in ``folder``."""
    return f"""worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder}/nginx-access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/reflib.conf;
}}
"""


# --- the deploy files' environment and command lines ------------------------------------------


def deploy_environment(**overrides: str) -> dict[str, str]:
    """deploy/reflib.env.example read as systemd and a shell read it, with ``overrides``."""
    env: dict[str, str] = {}
    for line in (DEPLOY / "reflib.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            words = shlex.split(value)
            env[name.strip()] = words[0] if words else ""
    missing = set(overrides) - set(env) - OPTIONAL
    if missing:
        raise SystemExit(f"deploy/reflib.env.example no longer names {sorted(missing)}")
    return {**env, **overrides}


# Variables the example leaves commented out, set here for this machine only.
OPTIONAL = {"REFLIB_CHANNEL_PREFIX", "REFLIB_CACHE_PREFIX"}


def unit_command(unit: str, instance: str = "") -> list[str]:
    """The ExecStart of a deploy/systemd unit, for this checkout's virtualenv."""
    text = (DEPLOY / "systemd" / unit).read_text()
    match = re.search(r"^ExecStart=(.+)$", text, re.MULTILINE)
    assert match, unit
    args = shlex.split(match.group(1).replace("%i", instance))
    venv = "/srv/reflib/.venv/bin/"
    if not args[0].startswith(venv):
        raise SystemExit(f"{unit} no longer starts from {venv}: update {__file__}")
    return [str(VENV_BIN / args[0].removeprefix(venv)), *args[1:]]


@dataclass
class Processes:
    folder: Path
    env: dict[str, str]
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str]) -> None:
        with (self.folder / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def wait_for_log(self, name: str, pattern: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not re.search(pattern, self.log(name)):
            if self.running[name].poll() is not None:
                raise SystemExit(f"{name} exited:\n{self.log(name)[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not log {pattern!r}:\n{self.log(name)[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in self.running.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                print(f"{name} ignored SIGTERM; killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing listens on {port}") from None
            time.sleep(0.1)


# --- the conversation -------------------------------------------------------------------------


@contextlib.contextmanager
def library_site(reflib: str) -> Iterator[str]:
    """The library's own web site, whose page embeds the widget: another site than reflib's
    127.0.0.1 (on loopback, since Chromium refuses a public site's requests to loopback)."""
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Smoke Test Library</title></head><body><h1>Smoke Test Library</h1>"
        f'<script src="{reflib}/widget.js" data-queue="smoke/general" async></script>'
        "</body></html>"
    ).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", SITE_PORT), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LIBRARY_SITE
    finally:
        server.shutdown()
        server.server_close()


def conversation(reflib: str, folder: Path) -> None:
    """A patron in the widget on the library's site and a librarian at the desk, each in a
    browser context of their own, through nginx. On a failure the pages are saved as
    screenshots in ``folder`` and the patron page's console is printed."""
    from playwright.sync_api import expect, sync_playwright

    console: list[str] = []
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            desk_context = browser.new_context(base_url=reflib, ignore_https_errors=True)
            desk_context.set_default_timeout(TIMEOUT_MS)
            desk = desk_context.new_page()
            desk.goto("/accounts/login/?next=/desk/")
            desk.get_by_label("Username").fill("lena")
            desk.get_by_label("Password").fill(PASSWORD)
            desk.get_by_role("button", name="Log in").click()
            expect(desk).to_have_url(re.compile(r"/desk/$"))
            expect(desk.locator("#desk-connection")).to_have_text("Connected")
            desk.locator("#presence").get_by_text("Available", exact=True).click()
            expect(desk.get_by_role("radio", name="Available")).to_be_checked()
            step("librarian logged in at the desk, available")

            patron_context = browser.new_context(ignore_https_errors=True)
            patron_context.set_default_timeout(TIMEOUT_MS)
            site = patron_context.new_page()
            site.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            site.goto(f"{LIBRARY_SITE}/")
            site.get_by_role("button", name=re.compile(r"^Ask a librarian \(online\)$")).click()
            widget = site.frame_locator("reflib-chat iframe")
            widget.get_by_label("Question", exact=True).fill(QUESTION)
            widget.get_by_role("button", name="Start chat").click()
            expect(widget.get_by_role("status")).to_contain_text("You are number 1 in the queue.")
            step("patron asked in the widget on the library's page")

            waiting = desk.get_by_role("region", name=re.compile(r"^Waiting patrons"))
            expect(waiting.get_by_text(QUESTION)).to_be_visible()
            waiting.get_by_role("button", name="Accept").click()
            panel = desk.get_by_role("tabpanel")
            expect(panel.get_by_text("Lena is answering.")).to_be_visible()
            box = panel.get_by_role("textbox", name="Message")
            box.fill(ANSWER)
            box.press("Enter")
            expect(widget.get_by_role("list", name="Messages").get_by_text(ANSWER)).to_be_visible()
            step("librarian accepted and answered; the patron sees the answer")

            patron_box = widget.get_by_role("textbox", name="Message")
            patron_box.fill(THANKS)
            patron_box.press("Enter")
            expect(panel.get_by_role("log").get_by_text(THANKS)).to_be_visible()
            panel.locator("summary", has_text="Close the conversation").click()
            panel.get_by_role("radio", name=re.compile(r"^2 — ")).check()
            panel.get_by_role("button", name="Close conversation").click()
            expect(panel.get_by_text("This conversation has ended.")).to_be_visible()
            expect(widget.get_by_role("heading", name="The chat has ended")).to_be_visible()
            widget.get_by_role("radio", name="5").check()
            widget.get_by_role("button", name="Send rating").click()
            expect(widget.get_by_role("status").filter(has_text="Thank you")).to_be_visible()
            step("patron answered, librarian closed, patron rated the chat")
        except Exception:
            for number, context in enumerate(browser.contexts):
                for page in context.pages:
                    page.screenshot(path=str(folder / f"failure-{number}.png"))
            print("patron page console:", *console, sep="\n  ")
            raise
        finally:
            browser.close()


# --- the run ----------------------------------------------------------------------------------


@contextlib.contextmanager
def own_database(database_url: str) -> Iterator[str]:
    parts = urlsplit(database_url)
    name = f"{parts.path.lstrip('/') or 'reflib'}_topology"
    server = f"{parts.scheme}://{parts.netloc}"
    recreate_database(server, name)
    try:
        yield f"{server}/{name}"
    finally:
        recreate_database(server, name, create=False)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs, nginx config)"
    )
    return parser.parse_args(argv)


def run(folder: Path, database_url: str, redis: OwnRedis) -> list[str]:
    """Start everything, check it, hold the conversation; returns the problems found."""
    nginx = nginx_binary()
    daphne_ports = [free_port(), free_port()]
    http, https = free_port(), free_port()
    reflib = f"https://127.0.0.1:{https}"
    static = folder / "staticfiles"
    cert, key = self_signed_certificate(folder)
    (folder / "reflib.conf").write_text(
        site_config(
            daphne_ports=daphne_ports, http=http, https=https, cert=cert, key=key, folder=folder
        )
    )
    (folder / "nginx.conf").write_text(main_config(folder))
    test = subprocess.run(
        [nginx, "-t", "-p", str(folder), "-c", str(folder / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    if test.returncode != 0:
        return [f"nginx -t failed: {test.stderr}"]
    step("nginx -t: the site configuration is valid")

    prefix = f"reflib-topology-{secrets.token_hex(4)}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REFLIB_", "DJANGO_"))},
        **deploy_environment(
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS="127.0.0.1",
            CSRF_TRUSTED_ORIGINS=reflib,
            REFLIB_BASE_URL=reflib,
            DATABASE_URL=database_url,
            REDIS_URL=redis.url,
            REFLIB_DATA_DIR=str(folder / "data"),
            REFLIB_MEDIA_ROOT=str(folder / "media"),
            REFLIB_STATIC_ROOT=str(static),
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(free_port()),
            REFLIB_CHANNEL_PREFIX=prefix,
            REFLIB_CACHE_PREFIX=prefix,
        ),
    }
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    checked = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    if "System check identified no issues" not in checked:
        return [f"check --deploy is not clean:\n{checked}"]
    step("check --deploy --fail-level WARNING: no issues")
    manage(
        env, "library", "smoke", "--name", "Smoke Test Library", "--timezone", "Europe/Madrid",
        "--queue", "general", "--origin", LIBRARY_SITE,
    )  # fmt: skip
    manage(
        env, "add_staff", "lena", "--library", "smoke", "--role", "librarian",
        "--display-name", "Lena", "--password-stdin", stdin=f"{PASSWORD}\n",
    )  # fmt: skip

    processes = Processes(folder, env)
    try:
        for port in daphne_ports:
            processes.start(f"daphne-{port}", unit_command("reflib-daphne@.service", str(port)))
        processes.start("celery-worker", unit_command("reflib-celery-worker.service"))
        processes.start("celery-beat", unit_command("reflib-celery-beat.service"))
        processes.start(
            "nginx",
            [nginx, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
        )
        for port in [*daphne_ports, https]:
            wait_for_port(port)
        processes.wait_for_log("celery-worker", r"celery@\S+ ready\.")
        processes.wait_for_log("celery-beat", r"beat: Starting\.\.\.")
        step(f"nginx on {https}, daphne on {daphne_ports}, a Celery worker and one beat")
        with library_site(reflib):
            conversation(reflib, folder)
    finally:
        processes.stop()
    problems = []
    for name in processes.running:
        text = processes.log(name)
        if any(marker in text for marker in TRACEBACK_MARKERS):
            problems.append(f"{name} logged a traceback:\n{text[-4000:]}")
    access = (folder / "nginx-access.log").read_text()
    for path in ("/widget.js", "/ws/v1/patron/", "/ws/v1/desk/", "/accounts/login/"):
        if path not in access:
            problems.append(f"nginx never served {path}")
    if not re.search(r"Sending due task", processes.log("celery-beat")):
        problems.append("the beat sent no periodic task")
    if not re.search(r"Task \S+ succeeded", processes.log("celery-worker")):
        problems.append("the worker ran no task")
    for name in processes.running:
        if name.startswith("daphne-") and not re.search(
            r'"(GET|POST|WSCONNECT) /', processes.log(name)
        ):
            problems.append(f"{name} served nothing: nginx did not balance over both")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        raise SystemExit("set DATABASE_URL=postgres://... (a database named NAME_topology is used)")
    folder = Path(tempfile.mkdtemp(prefix="reflib-topology-"))
    folder.chmod(0o755)  # nginx's workers read the static files in it
    try:
        with own_redis() as redis, own_database(database_url) as url:
            problems = run(folder, url, redis)
    finally:
        if args.keep:
            print(f"logs and configuration kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    step("production topology: " + ("FAILED" if problems else "every check passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
