"""The deployment files in deploy/ and the Procfile start what exists, as docs/ describes."""

from __future__ import annotations

import configparser
import importlib
import re
import shlex
from pathlib import Path

import pytest
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = ["reflib-daphne@.service", "reflib-celery-worker.service", "reflib-celery-beat.service"]


def importable(path: str) -> object:
    """Import ``module`` or ``module:attribute`` and return it."""
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def option(args: list[str], *names: str) -> str:
    for index, arg in enumerate(args):
        for name in names:
            if arg == name:
                return args[index + 1]
            if name.startswith("--") and arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    raise AssertionError(f"none of {names} in {args}")


def check_command(args: list[str]) -> str:
    """Assert that a daphne or celery command line names reflib's real entry points."""
    program = Path(args[0]).name
    if program == "daphne":
        application = importable(args[-1])
        assert args[-1] == "reflib.asgi:application"
        assert callable(application)
        assert "--proxy-headers" in args
        assert option(args, "--bind", "-b") == "127.0.0.1"
        return "daphne"
    assert program == "celery", args
    app = importable(option(args, "-A", "--app"))
    assert isinstance(getattr(app, "celery_app", app), Celery)
    if "beat" in args:
        scheduler = option(args, "--scheduler", "-S")
        assert scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
        importable(scheduler)
        return "beat"
    assert "worker" in args
    assert "--beat" not in args, "the worker must not run a second beat"
    assert "-B" not in args, "the worker must not run a second beat"
    return "worker"


def procfile() -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        assert sep, f"not a Procfile line: {line!r}"
        assert name not in entries, f"{name} appears twice"
        entries[name] = shlex.split(command)
    return entries


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


def env_example_variables() -> list[str]:
    """Every variable of reflib.env.example, set or shown commented out."""
    text = (DEPLOY / "reflib.env.example").read_text()
    return re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)


def test_procfile_runs_web_worker_and_exactly_one_beat() -> None:
    entries = procfile()

    assert set(entries) == {"web", "worker", "beat"}
    assert {name: check_command(args) for name, args in entries.items()} == {
        "web": "daphne",
        "worker": "worker",
        "beat": "beat",
    }
    beat_lines = [args for args in entries.values() if "beat" in args]
    assert len(beat_lines) == 1


@pytest.mark.parametrize("name", UNITS)
def test_systemd_unit_has_its_sections_and_reads_the_environment_file(name: str) -> None:
    parsed = unit(name)

    assert {"Unit", "Service", "Install"} <= set(parsed.sections())
    assert parsed["Service"]["EnvironmentFile"] == "/etc/reflib/reflib.env"
    assert parsed["Service"]["Restart"] == "on-failure"
    assert parsed["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("reflib-daphne@.service", "daphne"),
        ("reflib-celery-worker.service", "worker"),
        ("reflib-celery-beat.service", "beat"),
    ],
)
def test_systemd_unit_starts_the_right_program_with_reflibs_app(name: str, kind: str) -> None:
    args = shlex.split(unit(name)["Service"]["ExecStart"])

    assert args[0].startswith("/")
    assert check_command(args) == kind


def test_daphne_unit_is_a_template_whose_instance_is_the_port() -> None:
    args = shlex.split(unit("reflib-daphne@.service")["Service"]["ExecStart"])

    assert option(args, "--port", "-p") == "%i"


def test_nginx_upgrades_websockets_under_ws_and_forwards_the_scheme() -> None:
    conf = (DEPLOY / "nginx" / "reflib.conf").read_text()
    ws_block = conf[conf.index("location /ws/ {") :]
    ws_block = ws_block[: ws_block.index("}")]

    assert "proxy_pass http://reflib_daphne;" in ws_block
    assert "proxy_http_version 1.1;" in ws_block
    assert "proxy_set_header Upgrade $http_upgrade;" in ws_block
    assert 'proxy_set_header Connection "upgrade";' in ws_block
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in ws_block
    assert "proxy_set_header Host $host;" in ws_block


def test_nginx_upstream_lists_the_daphne_ports_of_the_systemd_instances() -> None:
    conf = (DEPLOY / "nginx" / "reflib.conf").read_text()
    upstream = conf[conf.index("upstream reflib_daphne {") :]
    upstream = upstream[: upstream.index("}")]

    assert re.findall(r"server 127\.0\.0\.1:(\d+);", upstream) == ["8001", "8002"]
    assert "X-Forwarded-Proto $scheme" in conf[conf.index("location / {") :]


def test_nginx_access_log_masks_a_ticket_key_in_an_old_link() -> None:
    conf = (DEPLOY / "nginx" / "reflib.conf").read_text()
    https = conf[conf.index("listen 443") :]

    assert "access_log /var/log/nginx/reflib.access.log reflib_private;" in https
    log_format = conf[conf.index("log_format reflib_private") :]
    log_format = log_format[: log_format.index(";")]
    assert "$reflib_loggable_uri" in log_format
    assert "$request " not in log_format
    assert "$request_uri" not in log_format
    rule = re.search(r'"~(\^[^"]+)" "\$\{reflib_ticket\}\[key\]/";', conf)
    assert rule is not None
    pattern = re.compile(rule.group(1).replace("(?<reflib_ticket>", "(?P<reflib_ticket>"))
    old_link = "/tickets/AbC123xYz0Q1/" + "k" * 43 + "/"
    assert pattern.sub(r"\g<reflib_ticket>[key]/", old_link) == "/tickets/AbC123xYz0Q1/[key]/"
    assert not pattern.match("/tickets/AbC123xYz0Q1/open/")


def test_every_example_variable_is_read_by_the_settings_and_documented() -> None:
    settings_source = (ROOT / "reflib" / "settings.py").read_text()
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    variables = env_example_variables()

    assert "DATABASE_URL" in variables
    assert "SECRET_KEY" in variables
    for variable in variables:
        assert f'"{variable}"' in settings_source, f"{variable} is not read by the settings"
        assert f"`{variable}`" in configuration, f"{variable} is not in docs/configuration.md"


def test_every_variable_the_settings_read_is_documented() -> None:
    settings_source = (ROOT / "reflib" / "settings.py").read_text()
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    read = re.findall(r'env_(?:str|bool|int|list|rate)\(\s*"([A-Z][A-Z0-9_]*)"', settings_source)

    assert len(read) > 20
    missing = [variable for variable in read if f"`{variable}`" not in configuration]
    assert not missing, f"not in docs/configuration.md: {missing}"
