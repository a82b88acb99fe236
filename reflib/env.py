"""Typed readers for the environment variables that configure reflib.

Every reader fails loudly (ImproperlyConfigured, naming the variable) on a value it cannot
understand, so that a typo in a deployment stops the process instead of silently falling back
to a default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str, *, environ: Mapping[str, str] | None = None) -> str:
    value = _raw(name, environ)
    return default if value is None else value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {value!r}"
    )


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {number}")
    return number


def env_list(
    name: str, default: list[str], *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """A comma-separated list; empty items are dropped."""
    value = _raw(name, environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_rate(
    name: str, default: str, *, environ: Mapping[str, str] | None = None
) -> tuple[int, int]:
    """A rate limit written as COUNT/SECONDS, e.g. ``30/60``: returns (count, seconds)."""
    value = env_str(name, default, environ=environ)
    count, sep, seconds = value.partition("/")
    try:
        if not sep:
            raise ValueError
        result = int(count), int(seconds)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be COUNT/SECONDS, e.g. 30/60; got {value!r}"
        ) from None
    if result[0] < 1 or result[1] < 1:
        raise ImproperlyConfigured(f"{name} must have a positive count and period; got {value!r}")
    return result
