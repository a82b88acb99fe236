"""JSON endpoints the librarian desk calls next to its WebSocket, authenticated by the session.

What the desk needs that is no frame of the protocol: a conversation's details (earlier chats of
the same patron, whom it can be transferred to), the library's canned responses, who else is
on, and a librarian's file upload into a conversation (downloads are the patron API's
``files/ID`` URL, which also accepts a librarian's session).
Errors have the protocol's shape: ``{"error": CODE, "detail": TEXT}``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from chat import selectors, services
from chat.errors import ChatError, error_response
from chat.models import CannedResponse, Conversation, Sender, Status
from chat.views import colleagues_on_now
from reflib.models import Library, Queue, display_name

EARLIER_SHOWN = 10
View = Callable[..., HttpResponse]


def librarian_api(view: View) -> View:
    """A logged-in librarian, else 401/403 in JSON (no redirect to a login page)."""

    @wraps(view)
    @never_cache
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return error_response(ChatError("unauthorized", _("Log in first.")))
        if not Library.objects.visible_to(user).exists():
            return error_response(ChatError("forbidden", _("You are not a librarian.")))
        try:
            return view(request, *args, **kwargs)
        except ChatError as error:
            return error_response(error)

    return wrapper


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@require_GET
@librarian_api
def colleagues(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"available": colleagues_on_now(_user(request))})


@require_GET
@librarian_api
def canned_responses(request: HttpRequest) -> HttpResponse:
    """The canned responses of the librarian's libraries (``?library=SLUG`` for one)."""
    responses = CannedResponse.objects.visible_to(_user(request)).select_related("library")
    if request.GET.get("library"):
        responses = responses.filter(library__slug=request.GET["library"])
    items = [
        {"id": r.pk, "library": r.library.slug, "title": r.title, "body": r.body} for r in responses
    ]
    return JsonResponse({"items": items})


@require_GET
@librarian_api
def conversation(request: HttpRequest, public_id: str) -> HttpResponse:
    user = _user(request)
    chat = services.staff_conversation(user=user, public_id=public_id, details=True)
    queue = chat.queue
    return JsonResponse(
        {
            "conversation": chat.public_id,
            "status": chat.status,
            "library": queue.library.slug,
            "library_name": queue.library.name,
            "queue": queue.address,
            "queue_name": queue.name,
            "question": chat.question,
            "patron_name": chat.patron_name,
            "patron_display_name": chat.patron_display_name,
            "page_url": chat.page_url,
            "created_at": chat.created_at.isoformat(),
            "librarian": display_name(chat.librarian) if chat.librarian else None,
            "mine": chat.librarian_id == user.pk,
            "earlier": _earlier(user, chat),
            "transfer": {
                "colleagues": _transfer_colleagues(user, queue),
                "queues": _transfer_queues(queue),
            },
        }
    )


def _earlier(user: User, chat: Conversation) -> list[dict[str, Any]]:
    # A partner library's librarian sees the rolled-over chat, never the home library's history.
    if chat.library_id not in selectors.librarian_libraries(user):
        return []
    earlier = selectors.earlier_conversations(chat).select_related("librarian__staff_profile")
    return [
        {
            "id": c.public_id,
            "created_at": c.created_at.isoformat(),
            "status": c.status,
            "status_label": c.get_status_display(),
            "question": c.question,
            "librarian": display_name(c.librarian) if c.librarian else None,
            "read_level": c.read_level,
            "tags": c.tags,
        }
        for c in earlier[:EARLIER_SHOWN]
    ]


def _transfer_colleagues(user: User, queue: Queue) -> list[dict[str, Any]]:
    available = set(selectors.available_librarians([queue.library_id]).values_list("pk", flat=True))
    members = (
        User.objects.filter(is_active=True, memberships__library_id=queue.library_id)
        .exclude(pk=user.pk)
        .select_related("staff_profile")
        .distinct()
        .order_by("username")
    )
    rows = [
        {"username": m.get_username(), "name": display_name(m), "available": m.pk in available}
        for m in members
    ]
    return sorted(rows, key=lambda row: not row["available"])


def _transfer_queues(queue: Queue) -> list[dict[str, str]]:
    # The service accepts the library's own queues and the queue's agreed partners.
    partners = Queue.objects.partners_of(queue).values("pk")
    targets = (
        Queue.objects.filter(Q(library_id=queue.library_id) | Q(pk__in=partners))
        .filter(is_active=True)
        .exclude(pk=queue.pk)
        .select_related("library")
        .distinct()
    )
    return [{"address": q.address, "name": f"{q.name} ({q.library.name})"} for q in targets]


@require_POST
@librarian_api
def file_upload(request: HttpRequest, public_id: str) -> HttpResponse:
    """The conversation's librarian shares a file: an image or a PDF, checked by content."""
    user = _user(request)
    chat = services.staff_conversation(user=user, public_id=public_id, details=True)
    if chat.status != Status.ACTIVE or chat.librarian_id != user.pk:
        raise ChatError("forbidden", _("Only the librarian answering this chat can send files."))
    upload = request.FILES.get("file")
    if upload is None or not upload.size:
        raise ChatError("invalid", _("Choose a file to send."))
    event = services.file_upload(
        conversation_id=chat.pk, sender=Sender.LIBRARIAN, author=user, upload=upload
    )
    return JsonResponse(
        {
            "id": event.public_id,
            "seq": event.seq,
            "filename": event.data["filename"],
            "size": event.data["size"],
            "content_type": event.data["content_type"],
            "url": event.data["url"],
        },
        status=201,
    )
