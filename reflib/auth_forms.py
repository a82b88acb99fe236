"""The staff login, throttled against password guessing (/accounts/login/ and /admin/login/).

Every attempt counts against its username and its address (an IPv6 /64) before the password
is checked, so a guesser learns nothing more once over either limit; the form then says when
to try again instead of checking the password.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext as _

from reflib.ratelimit import address_key, client_ip, hit

THROTTLED = "throttled"


def check_login_rate(request: Any, username: str) -> None:
    """Raise a form error when this username or address has tried too often."""
    address = address_key(client_ip(request)) if request is not None else "unknown"
    limits = (
        (f"login:user:{username.strip().lower()}", settings.REFLIB_RATE_LOGIN_USERNAME),
        (f"login:addr:{address}", settings.REFLIB_RATE_LOGIN_ADDRESS),
    )
    waits = [hit(key, limit) for key, limit in limits]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        minutes = max(1, -(-wait // 60))
        raise forms.ValidationError(
            _(
                "Too many login attempts. Try again in %(minutes)d minute(s), or ask a "
                "manager to reset your password."
            )
            % {"minutes": minutes},
            code=THROTTLED,
        )


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self) -> dict[str, Any]:
        check_login_rate(self.request, self.data.get("username", "") or "")
        return super().clean()


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        check_login_rate(self.request, self.data.get("username", "") or "")
        return super().clean()
