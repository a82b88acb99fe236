"""A logging filter that keeps secrets and personal data out of log lines.

The code logs ids, never a token, key, e-mail address or message text; this filter is the
second line for what libraries log on their own: a 404 that quotes a path with an old ticket
key, an SMTP error that quotes a recipient, a database error that quotes a row. It replaces
e-mail addresses, phone and card numbers and street addresses (``reflib.redaction``) and any
run of 32 or more URL-safe characters (tokens, keys, hashes: reflib's are 43 or 64) in the
message and in the traceback. Installed on the console handler (settings.LOGGING) and on
Celery's handlers (reflib/celery.py).
"""

from __future__ import annotations

import logging
import re

from reflib.redaction import redact

_SECRET = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{32,}(?![\w-])")


# Celery's task ids are UUIDs: ids, not secrets, and what an operator searches the logs for.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _mask(match: re.Match[str]) -> str:
    return match.group() if _UUID.fullmatch(match.group()) else "[secret]"


def scrub(text: str) -> str:
    return _SECRET.sub(_mask, redact(text))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def install(logger: logging.Logger) -> None:
    """Add the filter to every handler of ``logger`` (Celery sets up its own)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
