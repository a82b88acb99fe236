"""Signals the core sends to the apps above it.

``staff_access_changed(user_id)`` is sent after commit whenever a staff membership is created,
changed (its role or library) or deleted, or a staff account is deactivated: whatever the
user may see may have changed, so anything holding their old access (the chat desk's open
sockets) must drop it. Receivers must be idempotent.

``library_timezone_changed(library)`` is sent when a saved library's time zone differs from the
stored one, right after the save and inside its transaction (the admin's and
``library_upsert``'s), so that what is kept in local time changes with it or not at all.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import Signal, receiver

from reflib.models import Library, Membership

staff_access_changed = Signal()
library_timezone_changed = Signal()

_ZONE_CHANGED = "_reflib_timezone_changed"


def _announce(user_id: int) -> None:
    transaction.on_commit(lambda: staff_access_changed.send(sender=Membership, user_id=user_id))


@receiver(post_save, sender=Membership, dispatch_uid="reflib.membership_saved")
def _membership_saved(sender: type[Membership], instance: Membership, **kwargs: Any) -> None:
    _announce(instance.user_id)


@receiver(post_delete, sender=Membership, dispatch_uid="reflib.membership_deleted")
def _membership_deleted(sender: type[Membership], instance: Membership, **kwargs: Any) -> None:
    _announce(instance.user_id)


@receiver(post_save, sender=User, dispatch_uid="reflib.user_saved")
def _user_saved(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    if not created and not instance.is_active:
        _announce(instance.pk)


@receiver(pre_save, sender=Library, dispatch_uid="reflib.library_zone_check")
def _library_zone_check(sender: type[Library], instance: Library, **kwargs: Any) -> None:
    stored = (
        Library.objects.filter(pk=instance.pk).values_list("timezone", flat=True).first()
        if instance.pk
        else None
    )
    setattr(instance, _ZONE_CHANGED, stored is not None and stored != instance.timezone)


@receiver(post_save, sender=Library, dispatch_uid="reflib.library_zone_changed")
def _library_zone_changed(sender: type[Library], instance: Library, **kwargs: Any) -> None:
    if getattr(instance, _ZONE_CHANGED, False):
        setattr(instance, _ZONE_CHANGED, False)
        library_timezone_changed.send(sender=Library, library=instance)
