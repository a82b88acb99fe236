"""Pages of the chat: the librarian desk, the follow-up tickets, the patron's ticket page."""

from __future__ import annotations

import hmac
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from chat import selectors, services, ticket_services
from chat.errors import ChatError
from chat.forms import (
    DeskCannedSearchForm,
    DeskCloseForm,
    DeskMessageForm,
    DeskTransferForm,
    TicketAnswerForm,
    TicketAssignForm,
    TicketFilterForm,
    TicketReplyForm,
)
from chat.models import Presence, PresenceState, Ticket, TicketStatus, hash_token
from chat.sharing import allows_display_capture, share_strings
from reflib.access import librarian_required, staff_user
from reflib.models import Library, Queue, display_name
from staffing import selectors as roster

TICKETS_PER_PAGE = 25


# --- the desk ----------


def colleagues_on_now(user: User) -> list[dict[str, str]]:
    """Librarians of ``user``'s libraries who are available now, ``user`` left out."""
    library_ids = list(Library.objects.visible_to(user).values_list("pk", flat=True))
    colleagues = (
        selectors.available_librarians(library_ids)
        .exclude(pk=user.pk)
        .select_related("staff_profile")
        .order_by("username")
    )
    return [{"username": c.get_username(), "name": display_name(c)} for c in colleagues]


def desk_shift_context(user: User) -> dict[str, Any]:
    """The desk's shift card: my current and next shift, who else is rostered now (and
    whether they are at the desk), and the end-of-shift notice (chat.selectors)."""
    now = timezone.now()
    libraries = list(Library.objects.visible_to(user))
    current, upcoming = roster.current_and_next_shift(user=user, now=now)
    presence = Presence.objects.filter(user=user).first()
    notice = selectors.shift_end_notices([presence], now=now).get(user.pk) if presence else None
    present = set(
        selectors.available_librarians([library.pk for library in libraries], now=now).values_list(
            "pk", flat=True
        )
    )
    on_now = [
        {"view": view, "present": view.user_id in present}
        for library in libraries
        for view in roster.on_now(library=library, now=now)
        if view.user_id != user.pk
    ]
    shown = current or upcoming
    return {
        "zone": shown.zone if shown else libraries[0].zone,
        "current": current,
        "next": upcoming,
        "on_now": on_now,
        "notice": notice,
        "presence": presence.state if presence else PresenceState.OFFLINE,
        "staying": bool(
            current
            and presence
            and presence.staying_after is not None
            and presence.staying_after >= current.end
        ),
    }


@librarian_required
@never_cache
def desk_shift(request: HttpRequest) -> HttpResponse:
    """The shift card alone, which the desk fetches again as time passes."""
    return render(request, "chat/desk_shift.html", desk_shift_context(staff_user(request)))


@require_POST
@librarian_required
def desk_shift_stay(request: HttpRequest) -> HttpResponse:
    """ "I'm staying": stay available after my shift ends."""
    try:
        services.presence_stay(user=staff_user(request))
    except ChatError as error:
        messages.error(request, error.detail)
    if request.headers.get("X-Requested-With") == "fetch":
        return desk_shift(request)
    return redirect("desk")


@librarian_required
@never_cache
@allows_display_capture
def desk(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    libraries = Library.objects.visible_to(user)
    config = {
        "wsPath": "/ws/v1/desk/",
        "me": display_name(user),
        "csrfToken": get_token(request),
        "urls": {
            "colleagues": reverse("desk_api_colleagues"),
            "canned": reverse("desk_api_canned"),
            # The script puts a conversation's id in place of __ID__.
            "conversation": reverse("desk_api_conversation", args=["__ID__"]),
            "files": reverse("desk_api_files", args=["__ID__"]),
            "shift": reverse("desk_shift"),
        },
    }
    return render(
        request,
        "chat/desk.html",
        {
            "libraries": libraries,
            "queues": Queue.objects.filter(library__in=libraries, is_active=True).select_related(
                "library"
            ),
            "presence": selectors.presence_of(user),
            "presence_states": PresenceState.choices,
            "colleagues": colleagues_on_now(user),
            "shift": desk_shift_context(user),
            "config": config,
            "strings": _desk_strings(),
            "message_form": DeskMessageForm(),
            "canned_form": DeskCannedSearchForm(),
            "transfer_form": DeskTransferForm(),
            "close_form": DeskCloseForm(),
        },
    )


def _desk_strings() -> dict[str, str]:
    """What the desk's script says, translated here so the script needs no catalogue."""
    return {
        "connecting": _("Connecting…"),
        "connected": _("Connected"),
        "reconnecting": _("Connection lost; reconnecting…"),
        "signedOut": _("You are signed out. Reload the page to log in again."),
        "anonymous": _("Patron (no name given)"),
        "noPage": _("page unknown"),
        "note": _("Internal note (the patron does not see it)"),
        "sending": _("Sending…"),
        "notSent": _("Not sent:"),
        "seen": _("Seen by the patron"),
        "typing": _("%(name)s is typing…"),
        "checkinAsked": _("You asked: %(body)s"),
        "checkinWaiting": _("Waiting for the patron's answer."),
        "checkinAnswer": _("The patron answered: %(answer)s"),
        "answer_yes": _("Yes"),
        "answer_partly": _("Partly"),
        "answer_no": _("No"),
        "fileShared": _("%(name)s shared a file:"),
        "fileSending": _("Sending the file…"),
        "status_queued": _("Waiting in the queue."),
        "status_active": _("%(librarian)s is answering."),
        "status_closed": _("The chat has ended."),
        "status_abandoned": _("The patron left before being answered."),
        "status_missed": _("Nobody answered in time."),
        "status_ticket": _("The patron left the question as a follow-up ticket."),
        "stateMine": _("You are answering this chat."),
        "stateQueued": _("Waiting in the queue: accept it to answer."),
        "stateElsewhere": _("%(librarian)s is answering now; you can read along."),
        "stateEnded": _("This conversation has ended."),
        "unread": _("unread"),
        "colleaguesNone": _("Nobody else is available right now."),
        "available": _("available"),
        "colleaguesGroup": _("Colleagues"),
        "queuesGroup": _("Queues"),
        "earlierNone": _("None: no earlier chats with the same e-mail address."),
        "noCanned": _("No canned response matches."),
        "readLevel": _("READ level %(level)s"),
        "newPatron": _("New patron waiting"),
        "newMessage": _("New message from %(name)s"),
        "transferredToYou": _("A conversation was transferred to you"),
        "notificationsOn": _("Sound and notifications are on"),
        "notificationsBlocked": _("Notifications are blocked; sound is on"),
        "error": _("The desk could not do that:"),
        **share_strings(
            _(
                "The screen could not be connected: the patron's network blocks direct "
                "connections and no TURN relay is configured or reachable (REFLIB_ICE_SERVERS). "
                "Continue in the chat, or ask the patron to try another network."
            )
        ),
    }


# --- follow-up tickets (staff) ----------


def _visible_tickets(user: User) -> QuerySet[Ticket]:
    return Ticket.objects.visible_to(user).select_related(
        "library", "queue__library", "assigned_to__staff_profile"
    )


@librarian_required
def desk_tickets(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    tickets = _visible_tickets(user)
    # A first visit lists the open tickets; "Any status" is an explicit empty choice.
    form = TicketFilterForm(request.GET or {"status": TicketStatus.OPEN})
    if form.is_valid():
        if form.cleaned_data["status"]:
            tickets = tickets.filter(status=form.cleaned_data["status"])
        if form.cleaned_data["mine"]:
            tickets = tickets.filter(assigned_to=user)
    page = Paginator(tickets, TICKETS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "chat/desk_tickets.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


def _ticket_page(
    request: HttpRequest, ticket: Ticket, *, answer_form: TicketAnswerForm | None = None
) -> HttpResponse:
    assign_form = TicketAssignForm(
        ticket=ticket, initial={"assignee": ticket.assigned_to_id}, auto_id="assign_%s"
    )
    assign_form.helper.form_action = reverse("desk_ticket_assign", args=[ticket.public_id])
    answer_form = answer_form or TicketAnswerForm(auto_id="answer_%s")
    answer_form.helper.form_action = reverse("desk_ticket_answer", args=[ticket.public_id])
    context: dict[str, Any] = {
        "ticket": ticket,
        "thread": ticket.messages.select_related("author__staff_profile"),
        "assign_form": assign_form,
        "answer_form": answer_form,
    }
    return render(request, "chat/desk_ticket.html", context)


@librarian_required
def desk_ticket(request: HttpRequest, public_id: str) -> HttpResponse:
    ticket = get_object_or_404(_visible_tickets(staff_user(request)), public_id=public_id)
    return _ticket_page(request, ticket)


@require_POST
@librarian_required
def desk_ticket_assign(request: HttpRequest, public_id: str) -> HttpResponse:
    ticket = get_object_or_404(_visible_tickets(staff_user(request)), public_id=public_id)
    form = TicketAssignForm(request.POST, ticket=ticket)
    if form.is_valid():
        assignee = form.cleaned_data["assignee"]
        ticket_services.ticket_assign(ticket_id=ticket.pk, assignee=assignee)
        if assignee is None:
            messages.success(request, _("The ticket is now unassigned."))
        else:
            messages.success(request, _("Assigned to %(name)s.") % {"name": display_name(assignee)})
    else:
        messages.error(request, _("Choose a librarian of this ticket's library."))
    return redirect("desk_ticket", public_id=ticket.public_id)


@require_POST
@librarian_required
def desk_ticket_answer(request: HttpRequest, public_id: str) -> HttpResponse:
    ticket = get_object_or_404(_visible_tickets(staff_user(request)), public_id=public_id)
    form = TicketAnswerForm(request.POST, auto_id="answer_%s")
    if not form.is_valid():
        return _ticket_page(request, ticket, answer_form=form)
    try:
        ticket_services.ticket_answer(
            ticket_id=ticket.pk, user=staff_user(request), body=form.cleaned_data["body"]
        )
    except ChatError as error:
        messages.error(request, error.detail)
    else:
        messages.success(
            request,
            _("Your answer was e-mailed to %(email)s.") % {"email": ticket.patron_email},
        )
    return redirect("desk_ticket", public_id=ticket.public_id)


@require_POST
@librarian_required
def desk_ticket_close(request: HttpRequest, public_id: str) -> HttpResponse:
    ticket = get_object_or_404(_visible_tickets(staff_user(request)), public_id=public_id)
    ticket_services.ticket_close(ticket_id=ticket.pk)
    messages.success(request, _("The ticket is closed."))
    return redirect("desk_tickets")


# --- the patron's private ticket page ----------
#
# The e-mailed link is /tickets/ID/#k=KEY. A fragment never leaves the browser, so the key is
# in no request line, access log or Referer header. The page's script posts the key once
# (``ticket_open``); the server keeps the ticket's current key hash in the patron's session and
# the address bar shows /tickets/ID/ only. Links e-mailed before (/tickets/ID/KEY/) still work:
# they are exchanged the same way and redirected, but that first request carries the key in
# its path, as it always did (docs/operations.md).

TICKET_GRANTS = "chat.ticket_grants"


def _ticket_for_key(public_id: str, access_key: str) -> Ticket:
    ticket = Ticket.objects.select_related("library").filter(public_id=public_id).first()
    if ticket is None or not hmac.compare_digest(ticket.access_hash, hash_token(access_key)):
        raise Http404("No such ticket")
    return ticket


def _granted_ticket(request: HttpRequest, public_id: str) -> Ticket | None:
    """The ticket, if this browser opened it with its current key (a newer answer's key, an
    erasure or retention replaces the hash, and the grant lapses with it)."""
    granted = request.session.get(TICKET_GRANTS, {}).get(public_id)
    if not isinstance(granted, str):
        return None
    ticket = Ticket.objects.select_related("library").filter(public_id=public_id).first()
    if ticket is None or not hmac.compare_digest(ticket.access_hash, granted):
        return None
    return ticket


def _grant_and_show(request: HttpRequest, ticket: Ticket) -> HttpResponse:
    grants = dict(request.session.get(TICKET_GRANTS, {}))
    grants[ticket.public_id] = ticket.access_hash
    request.session[TICKET_GRANTS] = grants
    return _private(redirect("ticket_public", public_id=ticket.public_id))


def _private(response: HttpResponse) -> HttpResponse:
    # Keep the page out of other sites' Referer headers and out of search engines. Not
    # "no-referrer": with it browsers send "Origin: null" on the reply form's POST, which CSRF
    # protection rightly refuses.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
def ticket_public(request: HttpRequest, public_id: str) -> HttpResponse:
    """The patron reads the thread and replies, once their browser has opened the ticket."""
    ticket = _granted_ticket(request, public_id)
    if ticket is None:
        if request.method == "POST":
            raise Http404("No such ticket")
        # The same page whether or not the ticket exists: it says nothing about either.
        return _private(render(request, "chat/ticket_open.html", {"public_id": public_id}))
    form = TicketReplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ticket_services.ticket_reply_by_patron(ticket_id=ticket.pk, body=form.cleaned_data["body"])
        messages.success(request, _("Your reply was sent. A librarian will answer by e-mail."))
        return redirect(request.path)
    return _private(
        render(
            request,
            "chat/ticket_public.html",
            {
                "ticket": ticket,
                "thread": ticket.messages.select_related("author__staff_profile"),
                "form": form,
            },
        )
    )


@never_cache
@require_POST
def ticket_open(request: HttpRequest, public_id: str) -> HttpResponse:
    """Exchange the key from the link's fragment (a form post: never in a URL) for access."""
    return _grant_and_show(request, _ticket_for_key(public_id, request.POST.get("key", "")))


@never_cache
def ticket_public_key_in_path(
    request: HttpRequest, public_id: str, access_key: str
) -> HttpResponse:
    """A link e-mailed before the key moved to the fragment: exchanged, then redirected."""
    return _grant_and_show(request, _ticket_for_key(public_id, access_key))
