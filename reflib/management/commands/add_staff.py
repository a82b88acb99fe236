"""Create or update a staff member of a library with a role."""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reflib.models import Library, Role
from reflib.services import staff_upsert


class Command(BaseCommand):
    help = (
        "Create or update a staff member. The password is read from standard input with "
        "--password-stdin; a new account without it gets an unusable password."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--library", required=True, help="library slug")
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument("--display-name", help="the name patrons see")
        parser.add_argument("--email")
        parser.add_argument("--password-stdin", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        library = Library.objects.filter(slug=options["library"]).first()
        if library is None:
            raise CommandError(f"No library with slug {options['library']!r}.")
        password = None
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin was given but standard input was empty.")
        try:
            if password is not None:
                # Compare with the user's own attributes (similar to the username, ...).
                candidate = User(username=options["username"], email=options["email"] or "")
                validate_password(password, user=candidate)
            user = staff_upsert(
                username=options["username"],
                library=library,
                role=Role(options["role"]),
                display_name=options["display_name"],
                email=options["email"],
                password=password,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"{user.get_username()} is {options['role']} at {library.slug}.")
