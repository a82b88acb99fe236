"""The deployer's management commands: library, add_staff, seed_demo."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from reflib.models import AllowedOrigin, Library, Membership, Queue, Role, StaffProfile
from tests.conftest import PASSWORD, Cast

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command(*args, stdout=out)
    finally:
        sys.stdin = old_stdin
    return out.getvalue()


def command_error(*args: str, stdin: str = "") -> str:
    with pytest.raises(CommandError) as excinfo:
        run(*args, stdin=stdin)
    message = str(excinfo.value)
    assert message
    assert "\n" not in message
    return message


# --- library -------------------------------------------------------------------------------


def test_library_creates_a_library_with_queues_and_origins(db: None) -> None:
    output = run(
        "library",
        "north",
        "--name",
        "North Branch",
        "--timezone",
        "Europe/Madrid",
        "--queue",
        "general",
        "--queue",
        "law",
        "--origin",
        "https://north.example.org",
    )

    library = Library.objects.get(slug="north")
    assert (library.name, library.timezone) == ("North Branch", "Europe/Madrid")
    assert sorted(library.queues.values_list("slug", flat=True)) == ["general", "law"]
    assert list(library.allowed_origins.values_list("origin", flat=True)) == [
        "https://north.example.org"
    ]
    assert "north/general" in output
    assert "north/law" in output


def test_library_without_a_name_is_named_after_its_slug(db: None) -> None:
    run("library", "south")

    library = Library.objects.get(slug="south")
    assert (library.name, library.timezone) == ("south", "UTC")


def test_library_updates_an_existing_library_and_only_adds_queues(cast: Cast) -> None:
    run("library", "demo", "--name", "Demo City Library", "--queue", "spanish")

    library = Library.objects.get(slug="demo")
    assert library.name == "Demo City Library"
    assert library.timezone == "America/New_York"
    assert sorted(library.queues.values_list("slug", flat=True)) == ["general", "spanish"]
    assert library.allowed_origins.count() == 1


def test_library_run_twice_adds_nothing_the_second_time(db: None) -> None:
    args = ("library", "north", "--queue", "general", "--origin", "https://north.example.org")
    run(*args)
    run(*args)

    assert Library.objects.count() == 1
    assert Queue.objects.count() == 1
    assert AllowedOrigin.objects.count() == 1


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("HTTPS://Lib.Example.org:443/", "https://lib.example.org"),
        ("http://lib.example.org:80", "http://lib.example.org"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_library_stores_origins_in_the_form_browsers_send(
    db: None, given: str, stored: str
) -> None:
    run("library", "north", "--origin", given)

    assert list(AllowedOrigin.objects.values_list("origin", flat=True)) == [stored]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["Bad Slug!"], "not a valid slug"),
        (["north", "--queue", "Law School"], "not a valid queue slug"),
        (["north", "--timezone", "Mars/Olympus_Mons"], "not a known time zone"),
        (["north", "--origin", "null"], "is not an origin"),
        (["north", "--origin", "ftp://x"], "is not an origin"),
        (["north", "--origin", "https://lib.example.org/ask"], "is not an origin"),
        (["north", "--origin", "https://lib.example.org:99999"], "invalid port"),
    ],
    ids=["slug", "queue-slug", "time-zone", "null-origin", "ftp-origin", "path", "port"],
)
def test_library_rejects_bad_values_with_a_one_line_error_and_writes_nothing(
    db: None, args: list[str], fragment: str
) -> None:
    message = command_error("library", *args)

    assert fragment in message
    assert not Library.objects.exists()


def test_library_command_line_exits_1_with_a_one_line_error(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "REFLIB_DATA_DIR": str(tmp_path)}

    result = subprocess.run(
        [sys.executable, "manage.py", "library", "bad/slug"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("CommandError: 'bad/slug' is not a valid slug")


# --- add_staff -------------------------------------------------------------------------------


def test_add_staff_creates_a_librarian_with_a_password_from_stdin(cast: Cast) -> None:
    output = run(
        "add_staff",
        "rosa",
        "--library",
        "demo",
        "--role",
        "librarian",
        "--display-name",
        "Rosa (Reference)",
        "--email",
        "rosa@example.org",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )

    user = User.objects.get(username="rosa")
    assert user.check_password(PASSWORD)
    assert user.email == "rosa@example.org"
    assert not user.is_staff
    assert user.staff_profile.display_name == "Rosa (Reference)"
    assert Membership.objects.get(user=user).role == Role.LIBRARIAN
    assert output.strip() == "rosa is librarian at demo."


def test_add_staff_without_a_password_gives_an_unusable_one(cast: Cast) -> None:
    run("add_staff", "rosa", "--library", "demo", "--role", "librarian")

    user = User.objects.get(username="rosa")
    assert not user.has_usable_password()
    assert user.staff_profile.display_name == "rosa"


def test_add_staff_promotes_a_librarian_to_manager_and_keeps_the_password(cast: Cast) -> None:
    run("add_staff", "lena", "--library", "demo", "--role", "manager")

    cast.librarian.refresh_from_db()
    assert cast.librarian.is_staff
    assert cast.librarian.check_password(PASSWORD)
    assert cast.librarian.staff_profile.display_name == "Lena"
    assert Membership.objects.get(user=cast.librarian).role == Role.MANAGER


def test_add_staff_adds_a_second_library_to_an_existing_account(cast: Cast) -> None:
    run("add_staff", "otto", "--library", "demo", "--role", "librarian")

    libraries = Membership.objects.filter(user=cast.other_librarian).values_list(
        "library__slug", flat=True
    )
    assert sorted(libraries) == ["demo", "other"]
    assert User.objects.filter(username="otto").count() == 1


def test_add_staff_rejects_an_unknown_library(cast: Cast) -> None:
    message = command_error("add_staff", "rosa", "--library", "nowhere", "--role", "librarian")

    assert "nowhere" in message
    assert not User.objects.filter(username="rosa").exists()


def test_add_staff_rejects_an_unknown_role(cast: Cast) -> None:
    message = command_error("add_staff", "rosa", "--library", "demo", "--role", "boss")

    assert "invalid choice: 'boss'" in message
    assert not User.objects.filter(username="rosa").exists()


def test_add_staff_rejects_an_empty_password_on_stdin(cast: Cast) -> None:
    message = command_error(
        "add_staff", "rosa", "--library", "demo", "--role", "librarian", "--password-stdin"
    )

    assert "standard input was empty" in message
    assert not User.objects.filter(username="rosa").exists()


def test_add_staff_rejects_a_password_the_validators_refuse(cast: Cast) -> None:
    message = command_error(
        "add_staff",
        "lena",
        "--library",
        "demo",
        "--role",
        "librarian",
        "--password-stdin",
        stdin="abc\n",
    )

    assert "too short" in message
    cast.librarian.refresh_from_db()
    assert cast.librarian.check_password(PASSWORD)


def test_add_staff_rejects_a_display_name_over_80_characters_and_creates_nobody(
    cast: Cast,
) -> None:
    message = command_error(
        "add_staff", "rosa", "--library", "demo", "--role", "librarian", "--display-name", "R" * 81
    )

    assert "at most 80 characters" in message
    assert not User.objects.filter(username="rosa").exists()
    assert not StaffProfile.objects.filter(display_name="R" * 81).exists()


def test_add_staff_rejects_an_invalid_username(cast: Cast) -> None:
    message = command_error("add_staff", "no spaces", "--library", "demo", "--role", "librarian")

    assert "username" in message.lower()
    assert not User.objects.filter(username="no spaces").exists()


# --- seed_demo -------------------------------------------------------------------------------


def _counts() -> tuple[int, int, int, int]:
    return (
        Library.objects.count(),
        Queue.objects.count(),
        User.objects.count(),
        Membership.objects.count(),
    )


def test_seed_demo_creates_the_demo_library_queue_and_staff(db: None) -> None:
    output = run("seed_demo", "--force")

    library = Library.objects.get(slug="demo")
    assert library.timezone == "America/New_York"
    assert Queue.objects.by_address("demo/general") is not None
    for username, role in [("librarian", Role.LIBRARIAN), ("manager", Role.MANAGER)]:
        user = User.objects.get(username=username)
        assert user.check_password(username)
        assert Membership.objects.get(user=user, library=library).role == role
    assert User.objects.get(username="manager").is_staff
    assert not User.objects.get(username="librarian").is_staff
    assert "demo use only" in output


def test_seed_demo_is_idempotent(db: None) -> None:
    run("seed_demo", "--force")
    first = _counts()

    run("seed_demo", "--force")

    assert _counts() == first
    assert first[0] == 1


def test_seed_demo_leaves_a_changed_demo_password_alone(db: None) -> None:
    run("seed_demo", "--force")
    manager = User.objects.get(username="manager")
    manager.set_password(PASSWORD)
    manager.save()

    run("seed_demo", "--force")

    manager.refresh_from_db()
    assert manager.check_password(PASSWORD)
