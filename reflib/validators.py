"""Validators for the core domain's values."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(
            _("%(value)s is not a known time zone, e.g. America/New_York."),
            params={"value": value},
            code="invalid_timezone",
        )
    try:
        ZoneInfo(value)
    except ZoneInfoNotFoundError:
        raise ValidationError(
            _("%(value)s is not a known time zone."),
            params={"value": value},
            code="invalid_timezone",
        ) from None


# A DNS name: dot-separated labels of letters, digits and inner hyphens (IDNs in punycode).
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def _valid_host(host: str) -> bool:
    """A host name or an IP address; no wildcard, no separator of a CSP source list."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(HOSTNAME.match(host))


def validate_card_patterns(value: str) -> None:
    """One regular expression per line; each must compile and must not match empty text
    (which would put a placeholder between every two characters)."""
    for number, line in enumerate(value.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            pattern = re.compile(line)
        except re.error as exc:
            raise ValidationError(
                _("Line %(number)s is not a valid regular expression: %(error)s"),
                params={"number": number, "error": exc},
                code="invalid_pattern",
            ) from None
        if pattern.fullmatch(""):
            raise ValidationError(
                _("Line %(number)s matches empty text; it must match a card number."),
                params={"number": number},
                code="empty_pattern",
            )


def normalize_origin(value: str) -> str:
    """Return ``scheme://host[:port]`` in lower case, or raise ValidationError.

    A browser's Origin header is exactly this form, so stored origins compare by equality.
    ``null`` (sent by sandboxed frames and file: pages) is never a valid origin.
    """
    candidate = value.strip().rstrip("/").lower()
    parts = urlsplit(candidate)
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or not _valid_host(parts.hostname)
        or any(ch.isspace() or ch in ";,'\"*" for ch in candidate)
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        raise ValidationError(
            _(
                "%(value)s is not an origin: write scheme://host[:port], e.g. https://library.example.edu"
            ),
            params={"value": value},
            code="invalid_origin",
        )
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(
            _("%(value)s has an invalid port."), params={"value": value}, code="invalid_origin"
        ) from None
    default_port = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port is None or port == default_port:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def validate_origin(value: str) -> None:
    normalize_origin(value)
