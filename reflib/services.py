"""Writes to the core domain: libraries, queues, origins and staff.

The management commands, the admin and the demo seed all go through these functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from reflib.models import (
    AllowedOrigin,
    Library,
    Membership,
    Queue,
    Role,
    ServicePoint,
    StaffProfile,
)
from reflib.validators import normalize_origin, validate_timezone

# Slugs appear in widget snippets (LIB/QUEUE): keep them to lower-case letters, digits and -.
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@transaction.atomic
def library_upsert(
    *,
    slug: str,
    name: str | None = None,
    timezone: str | None = None,
    queue_slugs: Iterable[str] = (),
    origins: Iterable[str] = (),
) -> Library:
    """Create or update a library, adding (never removing) queues and allowed origins."""
    if not SLUG.fullmatch(slug):
        raise ValidationError(f"{slug!r} is not a valid slug (lower-case letters, digits, -)")
    if timezone is not None:
        validate_timezone(timezone)
    normalized_origins = [normalize_origin(origin) for origin in origins]
    for queue_slug in queue_slugs:
        if not SLUG.fullmatch(queue_slug):
            raise ValidationError(f"{queue_slug!r} is not a valid queue slug")

    library = Library.objects.filter(slug=slug).first() or Library(slug=slug, name=name or slug)
    if name is not None:
        library.name = name
    if timezone is not None:
        library.timezone = timezone
    library.full_clean()
    library.save()

    for queue_slug in queue_slugs:
        Queue.objects.get_or_create(
            library=library,
            slug=queue_slug,
            defaults={"name": queue_slug.replace("-", " ").capitalize()},
        )
    for origin in normalized_origins:
        AllowedOrigin.objects.get_or_create(library=library, origin=origin)
    return library


def service_point_ensure(*, library: Library, slug: str, name: str) -> ServicePoint:
    point, _created = ServicePoint.objects.get_or_create(
        library=library, slug=slug, defaults={"name": name}
    )
    return point


@transaction.atomic
def staff_upsert(
    *,
    username: str,
    library: Library,
    role: Role,
    display_name: str | None = None,
    password: str | None = None,
    email: str | None = None,
) -> User:
    """Create or update a staff member of ``library`` with ``role``.

    A new account without a password gets an unusable one. Managers get the admin's staff
    flag; what they may see there is limited to their libraries by the admin itself.
    """
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model(username=username)
        user.set_unusable_password()
    if password is not None:
        user.set_password(password)
    if email is not None:
        user.email = email
    user.full_clean(exclude=["password"])
    user.save()

    Membership.objects.update_or_create(user=user, library=library, defaults={"role": role})
    user.is_staff = (
        user.is_superuser or Membership.objects.filter(user=user, role=Role.MANAGER).exists()
    )
    user.save(update_fields=["is_staff"])

    profile = StaffProfile.objects.filter(user=user).first() or StaffProfile(
        user=user, display_name=user.get_username()
    )
    if display_name is not None:
        profile.display_name = display_name
    profile.full_clean()
    profile.save()
    assert isinstance(user, User)
    return user


@transaction.atomic
def rollover_partnership_agree(*, source: Queue, partner: Queue) -> None:
    """Both sides of a rollover partnership at once (a deployer or a test that speaks for both
    libraries): ``source`` lists ``partner``, and ``partner`` accepts ``source``."""
    source.partners.add(partner)
    if partner.library_id != source.library_id:
        partner.accepts_rollover_from.add(source)
