"""The daily report through a real Celery worker (a subprocess) on the Redis broker, against
PostgreSQL, with the e-mail caught by a real SMTP server (aiosmtpd): stored once, e-mailed
once, no personal data in the HTML, CSV, e-mail or the worker's log; a re-run changes nothing;
a worker killed in the middle of the task is replaced and the task redone, still once."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from redis import Redis

from analytics import tasks
from analytics.models import DailyReport
from reflib.celery import app as celery_app
from reflib.models import JobOutcome, JobRun
from tests import live
from tests.analytics.report_data import DAY, PERSONAL, a_day_of_chats
from tests.conftest import Cast

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WAIT_S = 60.0
VISIBILITY_S = 5


@dataclass
class Mailbox:
    """An SMTP server's handler: keeps every message it accepts."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = live.free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@dataclass
class Worker:
    queue: str
    env: dict[str, str]
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "reflib", "worker",
                    "--pool=solo", "--loglevel=INFO", "-Q", self.queue,
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "--hostname", f"{self.queue}-{uuid.uuid4().hex[:6]}@%h",
                ],
                cwd=live.ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL, as when the machine or the process dies: no acknowledgement, no clean-up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_env(mailbox: tuple[Mailbox, int]) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": live.test_database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(mailbox[1]),
        "REFLIB_TASK_VISIBILITY_TIMEOUT": str(VISIBILITY_S),
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


@pytest.fixture
def workers(worker_env: dict[str, str]) -> Iterator[Callable[[], Worker]]:
    """Workers on a queue of this test's own; ``celery_app`` sends to the broker meanwhile."""
    queue = f"reports-test-{uuid.uuid4().hex[:8]}"
    started: list[Worker] = []
    celery_app.conf.task_always_eager = False

    def start() -> Worker:
        worker = Worker(queue=queue, env=worker_env)
        worker.start()
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
            worker.log.unlink(missing_ok=True)
        broker = Redis.from_url(django_settings.CELERY_BROKER_URL)
        broker.delete(queue)
        broker.close()


def until(condition: Callable[[], Any], what: str, seconds: float = WAIT_S) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def enqueue(queue: str, library_id: int) -> None:
    tasks.build_daily_report.apply_async(
        kwargs={"library_id": library_id, "day": DAY.isoformat()}, queue=queue
    )


def waiting_on(connection: psycopg.Connection[Any], table: str) -> bool:
    """Whether another session waits for a lock in a query on ``table``."""
    # Activity statistics are a snapshot per transaction, and this one holds the lock.
    connection.execute("SELECT pg_stat_clear_snapshot()")
    row = connection.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database() AND query LIKE %s",
        (f'%"{table}"%',),
    ).fetchone()
    return row is not None and row[0] > 0


def parts(message: Message) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found


def assert_no_personal_data(*texts: str) -> None:
    for text in texts:
        for personal in PERSONAL:
            assert personal not in text, personal


@pytest.fixture
def day_to_report(cast: Cast) -> None:
    """A manager with an e-mail address, and a day of chats with personal data in them."""
    cast.manager.email = "mara@demo-library.org"
    cast.manager.save()
    a_day_of_chats(cast.queue, cast.librarian)


@pytest.mark.usefixtures("day_to_report")
def test_a_days_report_is_stored_and_emailed_once_by_a_real_worker(
    cast: Cast, mailbox: tuple[Mailbox, int], workers: Callable[[], Worker]
) -> None:
    box, _ = mailbox
    worker = workers()

    enqueue(worker.queue, cast.library.pk)
    until(lambda: len(box.messages) == 1, "the report's e-mail")
    report = until(
        lambda: DailyReport.objects.filter(emailed_at__isnull=False).first(), "the stored report"
    )

    assert (report.library_id, report.day) == (cast.library.pk, DAY)
    message = box.messages[0]
    assert message["To"] == "mara@demo-library.org"
    assert message["Message-ID"] == "<daily-report.demo.2026-03-10@reflib>"
    bodies = parts(message)
    assert set(bodies) == {"text/plain", "text/html"}
    assert "genealogy (2)" in bodies["text/plain"]
    manager = cast.client_for(cast.manager)
    html = manager.get("/analytics/demo/reports/2026-03-10/").content.decode()
    csv_text = manager.get("/analytics/demo/reports/2026-03-10/csv").getvalue().decode()
    assert "call number HA37 .I7 1911" in html
    assert "[card]" in csv_text
    assert_no_personal_data(*bodies.values(), html, csv_text, worker.log.read_text())
    assert "mara@demo-library.org" not in worker.log.read_text()

    # Again: the same content, no second e-mail.
    enqueue(worker.queue, cast.library.pk)
    until(
        lambda: (
            JobRun.objects.filter(
                task=tasks.build_daily_report.name, outcome=JobOutcome.SUCCESS
            ).count()
            == 2
        ),
        "the second run",
    )
    assert DailyReport.objects.count() == 1
    again = DailyReport.objects.get()
    assert (again.content_hash, again.built_at) == (report.content_hash, report.built_at)
    time.sleep(0.5)
    assert len(box.messages) == 1


@pytest.mark.parametrize(
    ("blocked_table", "stage"),
    [
        ("analytics_dailyreport", "before the report is stored"),
        ("reflib_membership", "after the report is stored, before it is e-mailed"),
    ],
)
@pytest.mark.usefixtures("day_to_report")
def test_a_worker_killed_in_the_middle_is_replaced_and_the_report_made_once(
    cast: Cast,
    mailbox: tuple[Mailbox, int],
    workers: Callable[[], Worker],
    blocked_table: str,
    stage: str,
) -> None:
    box, _ = mailbox
    first = workers()

    # Hold the worker at the chosen stage: a table it must read next is locked.
    with psycopg.connect(live.test_database_url(), autocommit=False) as blocker:
        blocker.execute(f"LOCK TABLE {blocked_table} IN ACCESS EXCLUSIVE MODE")
        enqueue(first.queue, cast.library.pk)
        until(lambda: waiting_on(blocker, blocked_table), f"the worker to wait {stage}")
        first.kill()
        blocker.rollback()

    stored_before = DailyReport.objects.filter(emailed_at__isnull=True).count()
    assert stored_before == (1 if blocked_table == "reflib_membership" else 0)
    assert not box.messages
    # The broker gives the unacknowledged task back once its visibility timeout has passed; a
    # worker that starts after that takes it at once (a running one sweeps every ~100 s).
    time.sleep(VISIBILITY_S + 1)
    workers()
    until(lambda: len(box.messages) == 1, "the redelivered task's e-mail", VISIBILITY_S + WAIT_S)
    report = until(
        lambda: DailyReport.objects.filter(emailed_at__isnull=False).first(), "the report"
    )

    assert report.day == DAY
    assert DailyReport.objects.count() == 1
    time.sleep(1)
    assert len(box.messages) == 1
    runs = JobRun.objects.filter(task=tasks.build_daily_report.name).order_by("started_at")
    # The killed attempt stays "running" in the admin: the sign that a worker died in it.
    assert [run.outcome for run in runs] == [JobOutcome.RUNNING, JobOutcome.SUCCESS]
