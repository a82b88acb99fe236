"""Staff pages of the chat: the librarian desk."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from reflib.access import librarian_required, staff_user
from reflib.models import Library, Membership, Queue


@librarian_required
def desk(request: HttpRequest) -> HttpResponse:
    libraries = Library.objects.visible_to(request.user)
    memberships = Membership.objects.filter(user=staff_user(request)).select_related("library")
    queues = Queue.objects.filter(library__in=libraries, is_active=True).select_related("library")
    return render(
        request,
        "chat/desk.html",
        {"libraries": libraries, "memberships": memberships, "queues": queues},
    )
