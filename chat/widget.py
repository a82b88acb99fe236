"""The patron widget (SPEC §1.1): the loader a library pastes into its pages, and the chat panel
the loader opens in an iframe from reflib's own origin.

``/widget.js`` is a plain script file with two placeholders filled in here: the address of the
launcher's style sheet and the launcher's few words in every shipped language (the loader picks
the patron's language in the browser, so it carries them all). The panel page is the only page
of reflib that other sites may frame: it is exempt from ``X-Frame-Options`` and its CSP
``frame-ancestors`` names the library's allowed embedding origins.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from csp.decorators import csp_replace, csp_update
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import quote_etag
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe

from chat import origins
from chat.sharing import allows_display_capture, share_strings
from reflib.models import Queue

LOADER_PATH = Path(__file__).resolve().parent / "static" / "chat" / "widget" / "loader.js"
LOADER_MAX_AGE_S = 300
# Only these two forms: the value ends up in CSS, where anything else could inject rules.
COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
ACCEPTED_FILES = "image/png,image/jpeg,image/gif,image/webp,application/pdf"


def clean_color(value: str) -> str:
    """``value`` if it is a ``#rgb`` or ``#rrggbb`` colour, else "" (the default theme)."""
    return value if COLOR.fullmatch(value) else ""


def _launcher_strings() -> dict[str, str]:
    return {
        "ask": _("Ask a librarian"),
        "online": _("online"),
        "offline": _("offline"),
        # %s is a weekday and time, e.g. "Mon 9:00 AM".
        "opens": _("offline, opens %s"),
        "frame": _("Chat with a librarian"),
    }


def loader_source() -> str:
    strings = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            strings[code] = _launcher_strings()
    # The source's comment lines and indentation stay in the repository: every byte here goes
    # to every page view of every library that embeds the chat. (The loader has no multi-line
    # strings, where indentation would matter.)
    source = "".join(
        line.lstrip()
        for line in LOADER_PATH.read_text(encoding="utf-8").splitlines(keepends=True)
        if not line.lstrip().startswith("//")
    )
    return source.replace(
        '"__REFLIB_STRINGS__"', json.dumps(strings, ensure_ascii=False, separators=(",", ":"))
    ).replace("__REFLIB_LAUNCHER_CSS__", static("chat/widget/launcher.css"))


@require_safe
def widget_js(request: HttpRequest) -> HttpResponseBase:
    """The loader script; pages on any site load it with a plain script tag (no CORS)."""
    source = loader_source()
    etag = quote_etag(hashlib.sha256(source.encode()).hexdigest()[:32])
    response = HttpResponse(source, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    # Short, so that a fixed loader reaches every library's pages within minutes.
    patch_cache_control(response, public=True, max_age=LOADER_MAX_AGE_S)
    conditional = get_conditional_response(request, etag=etag, response=response)
    return conditional or response


def _language(request: HttpRequest) -> str:
    """The ``lang`` parameter if reflib speaks it, else the browser's language."""
    try:
        return translation.get_supported_language_variant(request.GET.get("lang", "").lower())
    except LookupError:
        return translation.get_language_from_request(request)


def _parent_origin(request: HttpRequest, allowed: list[str]) -> str:
    """The embedding page's origin as the loader states it, if it may embed this queue.

    The panel talks to its parent only with this exact origin, both ways; an origin that is
    not allowed here could not frame the panel anyway (frame-ancestors).
    """
    origin = origins.normalized(request.GET.get("origin", ""))
    if origin is None:
        return ""
    if origin in allowed or origins.is_own(origin, request.get_host()):
        return origin
    return ""


def panel_strings(retention_days: int) -> dict[str, str]:
    """What the panel's script says, translated; ``%(name)s`` placeholders as in Django."""
    return {
        "connecting": _("Connecting…"),
        "reconnecting": _("Connection lost. Reconnecting…"),
        "waiting": _("Waiting for a librarian…"),
        "position": _("You are number %(position)s in the queue."),
        "waitOne": _("Estimated wait: about 1 minute."),
        "waitMany": _("Estimated wait: about %(minutes)s minutes."),
        "joined": _("%(name)s joined the chat."),
        "chattingWith": _("You are chatting with %(name)s."),
        "transferred": _("Your chat was passed to another queue. Please wait."),
        "typing": _("%(name)s is typing…"),
        "librarian": _("The librarian"),
        "you": _("You"),
        "sending": _("Sending…"),
        "sent": _("Sent"),
        "read": _("Read"),
        "notSent": _("Not sent"),
        "closed": _("The chat has ended."),
        "abandoned": _("You left the queue before a librarian answered."),
        "missed": _(
            "No librarian was free to answer in time. Start a new chat or leave your question "
            "and we will answer by e-mail."
        ),
        "ticket": _("Your question was left for the librarians. The answer will come by e-mail."),
        "offerTicket": _(
            "No librarian is free yet. You can keep waiting, or leave your question and we "
            "will answer by e-mail."
        ),
        "checkin": _("Does this answer your question?"),
        "yes": _("Yes"),
        "partly": _("Partly"),
        "no": _("No"),
        "answered": _("You answered: %(answer)s"),
        "shared": _("%(name)s shared a file: %(filename)s"),
        "download": _("Download %(filename)s (%(size)s)"),
        "uploading": _("Uploading %(filename)s…"),
        "tooLarge": _("This file is too large. Files may be at most %(size)s."),
        "fileType": _("Only images (PNG, JPEG, GIF, WebP) and PDF files can be shared."),
        "rateLimited": _("That was too fast. Please try again in %(seconds)s seconds."),
        "chatEnded": _("This chat has ended, so nothing more can be sent."),
        "failed": _("Something went wrong. Please try again."),
        "offline": _("No librarian is online right now."),
        "opensAt": _("Chat opens %(when)s."),
        "offlineHelp": _("Leave your question and we will answer by e-mail."),
        "askTitle": _("Ask a librarian"),
        "leaveTitle": _("Leave a question"),
        "startChat": _("Start chat"),
        "sendQuestion": _("Send question"),
        "emailOptional": _("E-mail (optional)"),
        "emailRequired": _("E-mail"),
        "ticketSent": _("Thank you. A librarian will answer by e-mail at %(email)s."),
        "ratingThanks": _("Thank you for your feedback."),
        "transcriptSent": _("The transcript is on its way to %(email)s."),
        "transcriptTo": _("E-mail the transcript to %(email)s."),
        "mailConfirmed": _("Once the chat has ended, its transcript can go to %(email)s."),
        "deleted": _("Your conversation has been deleted."),
        "newMessages": _("%(name)s: %(body)s"),
        **share_strings(
            _(
                "Your screen could not be connected to the library's: a firewall or a strict "
                "network is in the way. Describe what you see in the chat instead, or try "
                "another network."
            )
        ),
        "retention": ngettext(
            "Your messages, name and e-mail are kept for %(days)s day, then anonymised.",
            "Your messages, name and e-mail are kept for %(days)s days, then anonymised.",
            retention_days,
        )
        % {"days": retention_days},
    }


def _render_panel(request: HttpRequest, queue: Queue, lang: str) -> HttpResponseBase:
    library = queue.library
    allowed = list(library.allowed_origins.values_list("origin", flat=True))
    conversation_url = reverse("api_conversation", args=["__ID__"])
    config: dict[str, Any] = {
        "queue": queue.address,
        "parentOrigin": _parent_origin(request, allowed),
        "maxUpload": settings.REFLIB_UPLOAD_MAX_BYTES,
        "lang": lang,
        "urls": {
            "status": reverse("api_queue_status", args=[library.slug, queue.slug]),
            "start": reverse("api_conversations"),
            "tickets": reverse("api_tickets"),
            # The script puts the conversation's id in place of __ID__.
            "conversation": conversation_url,
            "socket": "/ws/v1/patron/",
        },
    }
    with translation.override(lang):
        config["strings"] = panel_strings(library.retention_days)
        response = render(
            request,
            "chat/widget/panel.html",
            {
                "queue": queue,
                "library": library,
                "lang": lang,
                "color": clean_color(request.GET.get("color", "")),
                "config": config,
                "accepted_files": ACCEPTED_FILES,
            },
        )
    response["Content-Language"] = lang
    # django-csp's decorators take a fixed policy; this one depends on the library, so they
    # are applied per request. Shared images are shown from blob: URLs (fetched with the token).
    frame_policy = {"frame-ancestors": ["'self'", *allowed]}
    images = {"img-src": ["blob:"]}
    return csp_update(images)(csp_replace(frame_policy)(lambda _request: response))(request)


@require_safe
@xframe_options_exempt
@allows_display_capture
def panel(request: HttpRequest, library: str, queue: str) -> HttpResponseBase:
    """The chat panel, framed by the loader on the library's pages."""
    found = Queue.objects.by_address(f"{library}/{queue}")
    if found is None:
        raise Http404(_("No such chat queue."))
    return _render_panel(request, found, _language(request))
