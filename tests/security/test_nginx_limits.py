"""The nginx site's flood limits: the shipped file passes ``nginx -t`` and its login limit
answers 429 (Debian's nginx, run unprivileged on a free port, in front of a stub upstream)."""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.live import free_port
from tests.test_deploy_files import DEPLOY

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


def site_for_test(tmp: Path, port: int, upstream: int) -> str:
    """The shipped site file on plain HTTP on ``port``, with ``upstream`` as its daphne."""
    conf = (DEPLOY / "nginx" / "reflib.conf").read_text()
    conf = re.sub(r"server 127\.0\.0\.1:800\d;\n", "", conf)
    conf = conf.replace("keepalive 16;", f"server 127.0.0.1:{upstream};\n    keepalive 16;")
    # The redirecting port-80 server is dropped; the TLS server listens on plain HTTP.
    conf = re.sub(r"server \{\n    listen 80;.*?\n\}\n", "", conf, count=1, flags=re.S)
    conf = re.sub(r"listen 443 ssl http2;", f"listen 127.0.0.1:{port};", conf)
    conf = re.sub(r"listen \[::\]:443 ssl http2;\n", "", conf)
    conf = re.sub(r"ssl_certificate.*;\n", "", conf)
    return conf


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[int]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    (tmp_path / "logs").mkdir()
    (tmp_path / "site.conf").write_text(site_for_test(tmp_path, port, upstream.server_address[1]))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\n"
        "daemon off;\nevents {}\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp_path};\n"
        f" proxy_temp_path {tmp_path};\n include {tmp_path}/site.conf;\n}}\n"
    )
    args = [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                threading.Event().wait(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        upstream.shutdown()
        upstream.server_close()


def status(port: int, method: str, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, headers={"Host": "reflib.example.org"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_shipped_site_declares_limits_for_requests_logins_and_sockets() -> None:
    conf = (DEPLOY / "nginx" / "reflib.conf").read_text()
    websocket = conf[conf.index("location /ws/") :]
    assert "limit_conn reflib_connections" in websocket.split("}")[0]
    assert "limit_req zone=reflib_handshakes" in websocket.split("}")[0]
    assert re.search(r"location ~ \^/\(accounts\|admin\)/login/\$ \{\s+limit_req", conf)
    assert "limit_req_status 429;" in conf


def test_nginx_answers_429_to_a_login_flood_and_serves_the_site_meanwhile(nginx: int) -> None:
    logins = [status(nginx, "POST", "/accounts/login/") for _ in range(12)]

    assert logins[:6] == [200] * 6  # the burst
    assert 429 in logins[6:]
    assert status(nginx, "GET", "/desk/") == 200
