"""The log filter: what a library logs on its own (a 404 quoting a path, an SMTP error quoting
a recipient) loses its secrets and personal data before it is written."""

from __future__ import annotations

import io
import logging
import secrets
from typing import Any

from django.conf import settings

from reflib.celery import _redact_worker_logs
from reflib.logfilter import RedactSecrets


def logged(*args: object, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger(f"test.logfilter.{secrets.token_hex(4)}")
    logger.propagate = False
    logger.addHandler(handler)
    if exc is None:
        logger.warning(*args)
    else:
        try:
            raise exc
        except type(exc):
            logger.exception(*args)
    return stream.getvalue()


def test_a_key_in_a_logged_path_is_masked_but_ids_are_kept() -> None:
    key = secrets.token_urlsafe(32)
    task_id = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
    line = logged("Not Found: %s (task %s)", f"/tickets/AbC123xYz0Q1/{key}/", task_id)
    assert key not in line
    assert f"/tickets/AbC123xYz0Q1/[secret]/ (task {task_id})" in line


def test_personal_data_in_a_message_and_its_traceback_is_redacted() -> None:
    error = OSError("550 mailbox unavailable: pat.patron@example.org, phone 503-555-0142")
    line = logged("sending to %s failed", "pat.patron@example.org", exc=error)
    assert "pat.patron" not in line
    assert "555-0142" not in line
    assert "sending to [email] failed" in line
    assert "OSError: 550 mailbox unavailable: [email], phone [phone]" in line


def test_the_console_handler_and_celerys_handlers_carry_the_filter() -> None:
    config: Any = settings.LOGGING
    assert config["handlers"]["console"]["filters"] == ["redact"]
    # SQL with its parameters (message text, e-mail addresses) is never logged.
    assert config["loggers"]["django.db.backends"]["level"] == "INFO"
    root = logging.getLogger()
    assert any(isinstance(f, RedactSecrets) for h in root.handlers for f in h.filters)

    worker = logging.getLogger(f"test.worker.{secrets.token_hex(4)}")
    worker.addHandler(logging.StreamHandler(io.StringIO()))
    _redact_worker_logs(logger=worker)
    _redact_worker_logs(logger=worker)
    assert [type(f) for f in worker.handlers[0].filters] == [RedactSecrets]
