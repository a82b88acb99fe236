"""The production topology of docs/deployment.md on this machine (bench/topology.py): nginx with
deploy/nginx/reflib.conf over HTTPS in front of two daphne processes, a Celery worker and one
beat from the deploy/systemd units, PostgreSQL and Redis; ``check --deploy`` clean, ``nginx -t``
clean, and one whole conversation through nginx with the widget and the desk in Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.mark.timeout(240)
def test_the_deployment_guide_topology_serves_a_whole_conversation_through_nginx() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.topology"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0
    for step in (
        "nginx -t: the site configuration is valid",
        "check --deploy --fail-level WARNING: no issues",
        "a Celery worker and one beat",
        "patron asked in the widget on the library's page",
        "librarian accepted and answered; the patron sees the answer",
        "patron answered, librarian closed, patron rated the chat",
        "production topology: every check passed",
    ):
        assert step in result.stdout
