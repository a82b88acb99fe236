"""Shapes of the patron HTTP API (PROTOCOL.md, "Patron HTTP API"): what requests may carry
and what responses contain. Input serializers validate; output serializers document."""

from __future__ import annotations

from typing import Any, get_args

from django.core.validators import RegexValidator
from rest_framework import serializers

from chat.errors import ErrorCode

QUEUE_ADDRESS_MAX = 101  # two slugs of at most 50 characters and the slash
# LIB/QUEUE: two slugs (Django's SlugField) of at most 50 characters each.
QUEUE_ADDRESS = r"^[-a-zA-Z0-9_]{1,50}/[-a-zA-Z0-9_]{1,50}$"
# Text that is more than white space (fields are trimmed, and an empty question is refused).
NOT_BLANK = RegexValidator(r"\S", "Write something other than spaces.")
EMAIL_MAX = 254  # RFC 5321 and the database column
# The description states what the API checks, so that a client generated from it is refused
# nothing it was told it could send. Optional text fields default to "" in the view, not
# here: a default of "" is not an e-mail address or a URL, which makes the description invalid.


def queue_field() -> serializers.RegexField:
    return serializers.RegexField(
        QUEUE_ADDRESS,
        max_length=QUEUE_ADDRESS_MAX,
        help_text="LIB/QUEUE: the library's slug and the queue's slug.",
    )


def question_field() -> serializers.CharField:
    return serializers.CharField(min_length=1, max_length=2000, validators=[NOT_BLANK])


def optional_email_field(**kwargs: Any) -> serializers.EmailField:
    return serializers.EmailField(required=False, allow_blank=True, max_length=EMAIL_MAX, **kwargs)


class QueueStatusSerializer(serializers.Serializer):
    library = serializers.CharField(help_text="The library's slug.")
    library_name = serializers.CharField()
    queue = serializers.CharField(help_text="The queue's address, LIB/QUEUE.")
    name = serializers.CharField(help_text="The queue's name.")
    online = serializers.BooleanField(help_text="A librarian is there to answer now.")
    librarians_available = serializers.IntegerField()
    estimated_wait_s = serializers.IntegerField(
        allow_null=True, help_text="The wait of a patron who starts a chat now; null offline."
    )
    opens_at = serializers.DateTimeField(
        allow_null=True, help_text="When an offline queue next opens, if known."
    )


class ConversationStartSerializer(serializers.Serializer):
    queue = queue_field()
    question = question_field()
    name = serializers.CharField(max_length=80, required=False, allow_blank=True)
    email = optional_email_field()
    page_url = serializers.URLField(
        max_length=500,
        required=False,
        allow_blank=True,
        validators=[RegexValidator(r"^[hH][tT][tT][pP][sS]?://")],
        help_text="The http(s) page the patron asked from (the librarian sees it).",
    )


class ConversationStartedSerializer(serializers.Serializer):
    conversation = serializers.CharField(help_text="The conversation's public id.")
    token = serializers.CharField(
        help_text="The patron's secret: send it as 'Authorization: Bearer' and in the "
        "WebSocket hello, never in a URL."
    )
    status = serializers.CharField()


class TicketCreateSerializer(serializers.Serializer):
    queue = queue_field()
    question = question_field()
    email = serializers.EmailField(max_length=EMAIL_MAX)
    name = serializers.CharField(max_length=80, required=False, allow_blank=True)


class ConversationToTicketSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=EMAIL_MAX)


class ConversationEmailSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=EMAIL_MAX, help_text="Where the transcript may go.")


class TicketCreatedSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="The ticket's public id.")


class FileUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=False,
        help_text="An image (PNG, JPEG, GIF, WebP) or a PDF, checked by content.",
    )


class FileSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The id of the conversation's `file` event.")
    seq = serializers.IntegerField(help_text="The `seq` of that event.")
    url = serializers.CharField()
    filename = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField(help_text="The detected type, not the client's.")


class RatingSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class TranscriptRequestSerializer(serializers.Serializer):
    email = optional_email_field(
        help_text=(
            "Must be the address given at the start or confirmed during the chat, which is "
            "used when left out."
        ),
    )


class TranscriptQueuedSerializer(serializers.Serializer):
    email = serializers.EmailField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.ChoiceField(choices=list(get_args(ErrorCode)))
    detail = serializers.CharField()
    # DRF takes declared fields out of the class, so this does not shadow Serializer.fields.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Only with status 400: what is wrong with each field.",
    )
