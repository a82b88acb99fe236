"""Settings come from the environment, with embedded defaults and loud failures on bad values."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from reflib.env import env_bool, env_int, env_list, env_rate, env_str

ROOT = Path(__file__).resolve().parents[2]
SETUP = (
    "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','reflib.settings'); "
    "django.setup()"
)
PRODUCTION_KEY = secrets.token_urlsafe(45)[:60]


def python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run this virtualenv's Python in the project folder with exactly ``env`` (plus PATH)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "DEBUG": "0",
        "SECRET_KEY": PRODUCTION_KEY,
        "ALLOWED_HOSTS": "reflib.example.org",
        "DATABASE_URL": os.environ.get("DATABASE_URL")
        or f"sqlite:///{tmp_path / 'reflib.sqlite3'}",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "REFLIB_DATA_DIR": str(tmp_path),
        **extra,
    }


# --- the process refuses to start on a bad environment ---------------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DEBUG": "0"}, "SECRET_KEY"),
        ({"DEBUG": "0", "SECRET_KEY": "too-short-to-sign-anything"}, "SECRET_KEY"),
        ({"DEBUG": "0", "SECRET_KEY": PRODUCTION_KEY}, "ALLOWED_HOSTS"),
        ({"DATABASE_URL": "nonsense://x"}, "DATABASE_URL"),
        ({"REFLIB_RATE_MESSAGES": "abc"}, "REFLIB_RATE_MESSAGES"),
        ({"REFLIB_UPLOAD_MAX_BYTES": "-1"}, "REFLIB_UPLOAD_MAX_BYTES"),
        ({"EMAIL_PORT": "x"}, "EMAIL_PORT"),
        ({"EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"}, "EMAIL_USE_SSL"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"DEBUG": "0", "SECRET_KEY": "a" * 60, "ALLOWED_HOSTS": "x.org"}, "SECRET_KEY"),
    ],
    ids=[
        "debug-not-a-boolean",
        "no-secret-key",
        "short-secret-key",
        "no-allowed-hosts",
        "unknown-database-scheme",
        "rate-not-count-per-seconds",
        "upload-limit-negative",
        "email-port-not-a-number",
        "tls-and-ssl-together",
        "log-level-unknown",
        "secret-key-not-random",
    ],
)
def test_django_refuses_to_start_and_names_the_bad_variable(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = python(["-c", SETUP], {"REFLIB_DATA_DIR": str(tmp_path), **env})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert variable in last_line


def test_embedded_defaults_need_no_environment_at_all() -> None:
    code = (
        f"{SETUP}; import json; from django.conf import settings as s; print(json.dumps(["
        "s.DEBUG, s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], "
        "s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL, s.EMAIL_BACKEND, "
        "s.CACHES['default']['BACKEND']]))"
    )

    result = python(["-c", code], {})

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        True,
        "django.db.backends.sqlite3",
        "channels.layers.InMemoryChannelLayer",
        True,
        "memory://",
        "django.core.mail.backends.console.EmailBackend",
        "django.core.cache.backends.locmem.LocMemCache",
    ]


@pytest.mark.parametrize("https", ["1", "0"], ids=["https", "plain-http"])
def test_production_configuration_passes_the_deployment_checks_without_warnings(
    tmp_path: Path, https: str
) -> None:
    env = production_env(tmp_path, REFLIB_HTTPS=https)

    result = python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


# --- the typed readers -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_env_bool_reads_true(value: str) -> None:
    assert env_bool("FLAG", False, environ={"FLAG": value}) is True


@pytest.mark.parametrize("value", ["0", "False", "no", "off"])
def test_env_bool_reads_false(value: str) -> None:
    assert env_bool("FLAG", True, environ={"FLAG": value}) is False


@pytest.mark.parametrize("environ", [{}, {"FLAG": ""}, {"FLAG": "   "}])
def test_env_readers_treat_unset_and_blank_as_the_default(environ: dict[str, str]) -> None:
    assert env_bool("FLAG", True, environ=environ) is True
    assert env_str("FLAG", "fallback", environ=environ) == "fallback"
    assert env_int("FLAG", 7, environ=environ) == 7
    assert env_list("FLAG", ["a"], environ=environ) == ["a"]
    assert env_rate("FLAG", "5/10", environ=environ) == (5, 10)


def test_env_bool_refuses_anything_else_and_names_the_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^FLAG must be one of .*'maybe'"):
        env_bool("FLAG", True, environ={"FLAG": "maybe"})


def test_env_str_strips_surrounding_blanks() -> None:
    assert env_str("NAME", "", environ={"NAME": "  value \n"}) == "value"


def test_env_int_reads_a_whole_number() -> None:
    assert env_int("PORT", 25, environ={"PORT": "587"}) == 587


@pytest.mark.parametrize("value", ["x", "1.5", "25 ports"])
def test_env_int_refuses_what_is_not_a_whole_number(value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^PORT must be a whole number"):
        env_int("PORT", 25, environ={"PORT": value})


def test_env_int_enforces_its_minimum() -> None:
    assert env_int("SIZE", 2048, minimum=1024, environ={"SIZE": "1024"}) == 1024
    with pytest.raises(ImproperlyConfigured, match=r"^SIZE must be at least 1024; got 1023"):
        env_int("SIZE", 2048, minimum=1024, environ={"SIZE": "1023"})


def test_env_list_splits_on_commas_and_drops_empty_items() -> None:
    environ = {"HOSTS": " a.example.org, ,b.example.org,"}

    assert env_list("HOSTS", [], environ=environ) == ["a.example.org", "b.example.org"]


def test_env_list_default_is_a_copy() -> None:
    default = ["a"]

    env_list("HOSTS", default, environ={}).append("b")

    assert default == ["a"]


def test_env_rate_reads_count_per_seconds() -> None:
    assert env_rate("RATE", "1/1", environ={"RATE": "30/60"}) == (30, 60)


@pytest.mark.parametrize("value", ["abc", "30", "30/", "/60", "x/60", "30/y"])
def test_env_rate_refuses_what_is_not_count_per_seconds(value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^RATE must be COUNT/SECONDS"):
        env_rate("RATE", "1/1", environ={"RATE": value})


@pytest.mark.parametrize("value", ["0/60", "30/0", "-1/60"])
def test_env_rate_refuses_a_zero_or_negative_part(value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^RATE must have a positive count and period"):
        env_rate("RATE", "1/1", environ={"RATE": value})


def test_env_rate_also_checks_its_default() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^RATE must be COUNT/SECONDS"):
        env_rate("RATE", "thirty", environ={})


def test_env_readers_use_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REFLIB_TEST_READER", "42")

    assert env_int("REFLIB_TEST_READER", 0) == 42
