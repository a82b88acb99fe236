"""Spanish: staff pages follow the browser's language, and the catalogue stays complete.

The catalogue tests drive GNU gettext (``makemessages`` and ``compilemessages`` need it too;
scripts/ensure-test-packages installs it)."""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from pytest_django import Settings

from tests.conftest import Cast

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "es" / "LC_MESSAGES"
# What makemessages must not read: tests, benchmarks, vendored files, virtualenvs.
NOT_SOURCES = {".git", ".venv", "venv", "node_modules", "tests", "bench", "vendor", "__pycache__"}
SOURCE_SUFFIXES = {".py", ".html", ".txt", ".po"}
# msgfmt --statistics when nothing is fuzzy or untranslated.
ALL_TRANSLATED = re.compile(r"\d+ translated messages?\.")


def test_login_page_speaks_spanish_to_a_spanish_browser(db: None) -> None:
    html = Client().get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert '<html lang="es">' in html
    assert "Acceso del personal" in html
    assert "Iniciar sesión" in html
    assert "Contraseña" in html  # Django's own catalogue, for the form's labels
    assert "Staff log in" not in html


def test_login_page_stays_english_without_a_language_preference(db: None) -> None:
    html = Client().get("/accounts/login/").content.decode()

    assert '<html lang="en">' in html
    assert "Staff log in" in html


def test_a_wrong_password_is_refused_in_spanish(cast: Cast) -> None:
    response = Client().post(
        "/accounts/login/",
        {"username": cast.librarian.username, "password": "wrong"},
        HTTP_ACCEPT_LANGUAGE="es",
    )

    assert response.status_code == 200
    assert "Por favor, introduzca un nombre de usuario y clave correctos" in (
        response.content.decode()
    )


def test_home_page_links_staff_to_the_reference_desk_in_spanish(cast: Cast) -> None:
    html = Client().get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert "Para el personal" in html
    assert "Mostrador de referencia" in html


def _sources(directory: str, names: list[str]) -> set[str]:
    """shutil.copytree's ``ignore``: keep the folders and files makemessages reads."""
    return {
        name
        for name in names
        if name in NOT_SOURCES
        or (not (Path(directory) / name).is_dir() and Path(name).suffix not in SOURCE_SUFFIXES)
    }


def _statistics(po: Path) -> str:
    checked = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(po)],
        capture_output=True,
        text=True,
        check=True,
    )
    return checked.stderr.strip()


def _left_over(po: Path) -> str:
    """The untranslated and the fuzzy entries of ``po``, as gettext prints them."""
    found = [
        subprocess.run(
            ["msgattrib", option, "--no-wrap", str(po)], capture_output=True, text=True, check=True
        ).stdout
        for option in ("--untranslated", "--only-fuzzy")
    ]
    return "\n".join(found)


def test_spanish_catalogue_has_every_marked_string_translated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """makemessages on a copy of the sources: a newly marked string arrives untranslated (or
    fuzzy, when it resembles an old one), and either fails this test until it is translated."""
    copy = tmp_path / "reflib"
    shutil.copytree(settings.BASE_DIR, copy, ignore=_sources)
    settings.LOCALE_PATHS = [copy / "locale"]
    monkeypatch.chdir(copy)

    call_command("makemessages", locale=["es"], add_location="file", verbosity=0)

    po = copy / "locale" / "es" / "LC_MESSAGES" / "django.po"
    statistics = _statistics(po)
    assert ALL_TRANSLATED.fullmatch(statistics), f"{statistics}\n{_left_over(po)}"


def test_committed_catalogue_has_no_empty_or_fuzzy_entries() -> None:
    po = CATALOGUE / "django.po"
    statistics = _statistics(po)

    assert ALL_TRANSLATED.fullmatch(statistics), f"{statistics}\n{_left_over(po)}"


def test_compiled_catalogue_is_the_translated_one(tmp_path: Path) -> None:
    """The .mo Django loads says what the .po says (run compilemessages after editing it)."""
    fresh = tmp_path / "django.mo"
    subprocess.run(
        ["msgfmt", "--check-format", "-o", str(fresh), str(CATALOGUE / "django.po")], check=True
    )

    with fresh.open("rb") as built, (CATALOGUE / "django.mo").open("rb") as committed:
        expected = gettext.GNUTranslations(built)
        shipped = gettext.GNUTranslations(committed)

    assert shipped._catalog == expected._catalog  # type: ignore[attr-defined]
