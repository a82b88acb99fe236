"""`manage.py rundemo`, what `make run` ends with: it serves, and a stop stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command_line:
            found.append(int(entry.name))
    return found


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback http)
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def test_rundemo_serves_and_a_sigterm_stops_daphne_and_celery_too(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env["REFLIB_DATA_DIR"] = str(tmp_path)  # also the Celery beat schedule's folder
    command = [sys.executable, "manage.py", "rundemo", "--port", str(port)]
    demo = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not answers(f"http://127.0.0.1:{port}/widget.js"):
            assert demo.poll() is None, "rundemo exited before serving"
            assert time.monotonic() < deadline, "rundemo did not serve within 60 s"
            time.sleep(0.3)
        children = processes_mentioning(str(tmp_path))
        assert len(children) >= 1, "no Celery worker with the demo's beat schedule"

        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=30) == 0
        assert processes_mentioning(str(tmp_path)) == []
        assert not answers(f"http://127.0.0.1:{port}/widget.js")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        for pid in processes_mentioning(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)
