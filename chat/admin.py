"""Admin for the chat, scoped to the manager's libraries like the core admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from chat.models import CannedResponse, Conversation, Event, PatronBlock, Ticket, TicketMessage
from reflib.admin import LibraryScopedAdmin


class EventInline(admin.TabularInline):
    model = Event
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "seq",
        "kind",
        "sender",
        "author_name",
        "body",
        "staff_only",
        "created_at",
    )
    ordering = ["seq"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


@admin.register(Conversation)
class ConversationAdmin(LibraryScopedAdmin):
    """Transcripts are records: managers read them here; every change goes through the desk."""

    list_display = [
        "public_id",
        "library",
        "queue",
        "status",
        "patron_name",
        "librarian",
        "created_at",
        "read_level",
        "rating",
    ]
    list_filter = ["library", "status", "queue", "read_level"]
    search_fields = ["public_id", "patron_name", "patron_email", "question"]
    date_hierarchy = "created_at"
    inlines = [EventInline]
    readonly_fields = [field.name for field in Conversation._meta.fields if field.name != "id"]
    exclude = ["token_hash"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TicketMessageInline(admin.TabularInline):
    model = TicketMessage
    extra = 0
    fields = readonly_fields = ("created_at", "sender", "author", "body")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


@admin.register(Ticket)
class TicketAdmin(LibraryScopedAdmin):
    list_display = [
        "public_id",
        "library",
        "queue",
        "status",
        "source",
        "patron_email",
        "assigned_to",
        "created_at",
    ]
    list_filter = ["library", "status", "source"]
    search_fields = ["public_id", "patron_email", "question"]
    readonly_fields = [
        "public_id",
        "conversation",
        "source",
        "question",
        "patron_name",
        "patron_email",
        "created_at",
        "updated_at",
    ]
    exclude = ["access_hash"]
    inlines = [TicketMessageInline]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False


@admin.register(CannedResponse)
class CannedResponseAdmin(LibraryScopedAdmin):
    list_display = ["title", "library"]
    list_filter = ["library"]
    search_fields = ["title", "body"]


@admin.register(PatronBlock)
class PatronBlockAdmin(LibraryScopedAdmin):
    list_display = ["library", "ip", "until", "reason", "created_by", "created_at"]
    list_filter = ["library"]
    readonly_fields = ["token_hash", "created_by", "created_at"]
