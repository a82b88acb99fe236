"""Edge checks for staff pages: who may open the desk and the staff pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from reflib.models import Library, Role

View = Callable[..., HttpResponse]


def librarian_required(view: View) -> View:
    """Require a logged-in librarian (or manager) of at least one library."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not Library.objects.visible_to(request.user, role=Role.LIBRARIAN).exists():
            raise PermissionDenied(_("You are not a librarian of any library."))
        return view(request, *args, **kwargs)

    return wrapper


def staff_user(request: HttpRequest) -> User:
    """The logged-in staff member of a request that passed :func:`librarian_required`."""
    user = request.user
    assert isinstance(user, User)
    return user
