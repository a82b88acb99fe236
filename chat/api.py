"""The patron HTTP API (PROTOCOL.md, "Patron HTTP API"): start a chat or leave a ticket, and,
with the conversation's token, share files, rate, get the transcript, or erase the chat.

These views only translate: validate the request, check origin, token and rate, call a service,
shape the reply. Every error is ``{"error": CODE, "detail": TEXT}`` from the protocol's closed
vocabulary, with ``"fields"`` on (and only on) status 400.

Origins: a request with an ``Origin`` header (a browser page) is served only if the origin is
reflib's own or one of the concerned library's allowed origins, and ``Origin: null`` never is.
A request without one cannot have been forged by a page and is served (apps, bots). Responses
to an allowed origin name it in ``Access-Control-Allow-Origin``; never ``*``, never credentials:
the token in the ``Authorization`` header is the patron's only credential.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from chat import origins, selectors, services, tasks
from chat.errors import ChatError, error_response
from chat.mail import check_mail_budget
from chat.models import Conversation, Sender
from chat.ratelimit import check_rate
from chat.serializers import (
    ConversationEmailSerializer,
    ConversationStartedSerializer,
    ConversationStartSerializer,
    ConversationToTicketSerializer,
    ErrorSerializer,
    FileSerializer,
    FileUploadSerializer,
    QueueStatusSerializer,
    RatingSerializer,
    TicketCreatedSerializer,
    TicketCreateSerializer,
    TranscriptQueuedSerializer,
    TranscriptRequestSerializer,
)
from reflib.models import Queue
from reflib.ratelimit import address_key, client_ip

MAX_JSON_BYTES = 64 * 1024
# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Each transcript is an e-mail to an address the client names: few per conversation.
TRANSCRIPT_LIMIT = (5, 3600)
PREFLIGHT_MAX_AGE_S = 3600
ORIGIN_REFUSED = "This web site may not use this library's chat."
NO_SUCH_CONVERSATION = "No such conversation."
TRANSCRIPT_ADDRESS = (
    "A transcript goes only to the address given when the chat started or confirmed during it."
)


# --- errors ----------


def _field_errors(detail: Any) -> dict[str, list[str]]:
    """DRF's error detail of a flat serializer as ``{"field": [text, ...]}``."""
    if isinstance(detail, dict):
        return {
            name: [str(text) for text in (texts if isinstance(texts, list) else [texts])]
            for name, texts in detail.items()
        }
    return {
        "non_field_errors": [
            str(text) for text in (detail if isinstance(detail, list) else [detail])
        ]
    }


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """Turn every refusal into the protocol's error body; anything else is a server error."""
    if isinstance(exc, ChatError):
        return error_response(exc)
    if isinstance(exc, exceptions.ValidationError):
        refusal = ChatError("invalid", "Some fields are not valid.")
        return error_response(refusal, fields=_field_errors(exc.detail))
    if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType):
        return error_response(ChatError("invalid", str(exc.detail)))
    if isinstance(exc, RequestDataTooBig):
        return error_response(ChatError("too_large", "The request is too large."))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return error_response(
            ChatError("unauthorized", str(exc.detail)),
            headers={"WWW-Authenticate": PatronTokenAuthentication.www_authenticate},
        )
    if isinstance(exc, Http404 | exceptions.NotFound):
        return error_response(ChatError("not_found", "Not found."))
    if isinstance(exc, DjangoPermissionDenied | exceptions.PermissionDenied):
        return error_response(ChatError("forbidden", "You may not do this."))
    if isinstance(exc, exceptions.MethodNotAllowed):
        return error_response(ChatError("invalid", str(exc.detail)), status=405)
    return None


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {status: OpenApiResponse(ErrorSerializer) for status in statuses}


# --- authentication ----------


class PatronTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer TOKEN``, the token returned when the chat started.

    A request with a token authenticates no user: ``request.auth`` is the conversation.
    """

    www_authenticate = 'Bearer realm="reflib"'

    def authenticate(self, request: Request) -> tuple[None, Conversation] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Bearer TOKEN'.")
        conversation = Conversation.objects.by_token(parts[1].decode("latin-1"))
        if conversation is None:
            raise exceptions.AuthenticationFailed("Unknown or expired token.")
        return None, conversation

    def authenticate_header(self, request: Request) -> str:
        return self.www_authenticate


class PatronTokenScheme(OpenApiAuthenticationExtension):
    target_class = PatronTokenAuthentication
    name = "patronToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}


class HasPatronToken(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        # A CORS preflight never carries the Authorization header.
        return request.method == "OPTIONS" or isinstance(request.auth, Conversation)


class HasPatronTokenOrStaffSession(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method == "OPTIONS" or isinstance(request.auth, Conversation):
            return True
        return isinstance(request.user, User) and request.user.is_authenticated


class JSONOnly(DefaultContentNegotiation):
    """The API answers in JSON whatever the Accept header says, errors included."""

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


# --- base views ----------


class PatronAPIView(APIView):
    """Origin rule, CORS headers, body size guard and the protocol's error bodies."""

    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes: list[type[BasePermission]] = []
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnly
    cors_origin: str | None = None

    def get_exception_handler(self) -> Any:
        return api_exception_handler

    def max_body_bytes(self) -> int:
        return MAX_JSON_BYTES

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        origin = request.headers.get("Origin")
        if origin is not None:
            # Refused before anything else; the library-specific check follows in the view.
            if not origins.is_allowed_anywhere(origin, host=request.get_host()):
                raise ChatError("forbidden", ORIGIN_REFUSED)
            self.cors_origin = origin
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.max_body_bytes():
            raise ChatError("too_large", "The request is too large.")
        super().initial(request, *args, **kwargs)

    def check_origin(self, request: Request, library_id: int) -> None:
        if not origins.is_allowed(
            request.headers.get("Origin"), host=request.get_host(), library_id=library_id
        ):
            self.cors_origin = None
            raise ChatError("forbidden", ORIGIN_REFUSED)

    def queue(self, request: Request, address: str) -> Queue:
        queue = Queue.objects.by_address(address)
        if queue is None:
            raise ChatError("not_found", "No such queue.")
        self.check_origin(request, queue.library_id)
        return queue

    def validated(self, serializer_class: type[Serializer], request: Request) -> dict[str, Any]:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def admit(
        self, request: Request, serializer_class: type[Serializer], too_many: str
    ) -> tuple[str | None, dict[str, Any], Queue]:
        """What a new chat or ticket must pass: the address's start budget (counted before
        validation, so malformed attempts spend it too; chats and tickets share it, as both
        create work from an anonymous request), valid fields, the queue, and no block."""
        ip = client_ip(request)
        check_rate(
            key=f"start:{address_key(ip)}",
            limit=settings.REFLIB_RATE_SESSION_START,
            detail=too_many,
        )
        data = self.validated(serializer_class, request)
        queue = self.queue(request, data["queue"])
        check_rate(
            key=f"start:lib:{queue.library_id}",
            limit=settings.REFLIB_RATE_SESSION_START_LIBRARY,
            detail=too_many,
        )
        services.check_patron_not_blocked(library=queue.library, ip=ip)
        return ip, data, queue

    @extend_schema(exclude=True)
    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        """The CORS preflight (``initial`` has refused a foreign origin already)."""
        response = Response(status=204)
        methods = ", ".join(self.allowed_methods)
        response["Allow"] = methods
        if self.cors_origin is not None:
            response["Access-Control-Allow-Methods"] = methods
            response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
        return response

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # ``response`` may also be a plain Django response (a file): DRF passes those through.
        response = super().finalize_response(request, response, *args, **kwargs)
        patch_vary_headers(response, ["Origin"])
        if self.cors_origin is not None:
            response["Access-Control-Allow-Origin"] = self.cors_origin
            # A rate-limited widget reads when it may try again.
            response["Access-Control-Expose-Headers"] = "Retry-After"
        if "Cache-Control" not in response:
            # Answers hold tokens and live state: nothing to keep.
            response["Cache-Control"] = "no-store"
        return response


class PatronConversationView(PatronAPIView):
    """An endpoint of one conversation, for the holder of its token."""

    authentication_classes = [PatronTokenAuthentication]
    permission_classes = [HasPatronToken]

    def conversation(self, request: Request, public_id: str) -> Conversation:
        conversation = request.auth
        assert isinstance(conversation, Conversation)
        self.check_origin(request, conversation.library_id)
        if conversation.public_id != public_id:
            # Another conversation's token: as if the conversation did not exist.
            raise ChatError("not_found", NO_SUCH_CONVERSATION)
        return conversation

    def readable(self, request: Request, public_id: str) -> Conversation:
        """The conversation, if its token still opens it for reading (the end-of-chat window)."""
        conversation = self.conversation(request, public_id)
        if not selectors.patron_may_read(conversation):
            raise ChatError("unauthorized", selectors.NO_LONGER_READABLE)
        return conversation


def _send_receipt_on_commit(created: services.CreatedTicket) -> None:
    ticket_id, access_key = created.ticket.pk, created.access_key
    transaction.on_commit(lambda: tasks.send_ticket_receipt.delay(ticket_id, access_key))


# --- endpoints ----------


class QueueStatusView(PatronAPIView):
    @extend_schema(
        operation_id="queue_status",
        responses={200: QueueStatusSerializer, **_errors(403, 404)},
        summary="Whether a queue is online, and the wait a new patron can expect.",
    )
    def get(self, request: Request, library: str, queue: str) -> Response:
        found = self.queue(request, f"{library}/{queue}")
        # Read now: the widget's "online" must never outlive the last librarian's presence.
        outlook = selectors.queue_outlook(found, fresh=True)
        availability = outlook.availability
        waiting = Conversation.objects.waiting().filter(queue=found).count()
        return Response(
            {
                "library": found.library.slug,
                "library_name": found.library.name,
                "queue": found.address,
                "name": found.name,
                "online": availability.online,
                "librarians_available": availability.librarians_available,
                "estimated_wait_s": selectors.estimated_wait_s(
                    found, waiting + 1, availability, outlook.model
                ),
                "opens_at": None if availability.online else selectors.queue_opens_at(found),
            }
        )


class ConversationStartView(PatronAPIView):
    @extend_schema(
        operation_id="conversation_start",
        request=ConversationStartSerializer,
        responses={201: ConversationStartedSerializer, **_errors(400, 403, 404, 409, 429)},
        summary="Start a chat; 409 offline when nobody is there (offer a ticket instead).",
    )
    def post(self, request: Request) -> Response:
        ip, data, queue = self.admit(
            request, ConversationStartSerializer, "Too many chats started."
        )
        if not selectors.queue_outlook(queue).availability.online:
            raise ChatError(
                "offline", "No librarian is available now. Leave your question as a ticket."
            )
        started = services.conversation_start(
            queue=queue,
            question=data["question"],
            name=data.get("name", ""),
            email=data.get("email", ""),
            page_url=data.get("page_url", ""),
            ip=ip,
        )
        return Response(
            {
                "conversation": started.conversation.public_id,
                "token": started.token,
                "status": started.conversation.status,
            },
            status=201,
        )


class TicketCreateView(PatronAPIView):
    @extend_schema(
        operation_id="ticket_create",
        request=TicketCreateSerializer,
        responses={201: TicketCreatedSerializer, **_errors(400, 403, 404, 429)},
        summary="Leave a question to be answered by e-mail; the receipt has a private link.",
    )
    def post(self, request: Request) -> Response:
        _ip, data, queue = self.admit(request, TicketCreateSerializer, "Too many questions sent.")
        check_mail_budget(data["email"])
        created = services.ticket_create(
            queue=queue,
            question=data["question"],
            email=data["email"],
            name=data.get("name", ""),
        )
        _send_receipt_on_commit(created)
        return Response({"ticket": created.ticket.public_id}, status=201)


class ConversationView(PatronConversationView):
    @extend_schema(
        operation_id="conversation_erase",
        responses={204: None, **_errors(401, 403, 404)},
        summary="Erase the patron's data; the token stops working.",
    )
    def delete(self, request: Request, conversation: str) -> Response:
        found = self.conversation(request, conversation)
        services.conversation_erase(conversation_id=found.pk)
        return Response(status=204)


class FileUploadView(PatronConversationView):
    parser_classes = [MultiPartParser]

    def max_body_bytes(self) -> int:
        return int(settings.REFLIB_UPLOAD_MAX_BYTES) + MULTIPART_OVERHEAD_BYTES

    @extend_schema(
        operation_id="file_upload",
        request={"multipart/form-data": FileUploadSerializer},
        responses={201: FileSerializer, **_errors(400, 401, 403, 404, 409, 413, 415, 429)},
        summary="Share an image or PDF; it appears in the conversation as a `file` event.",
    )
    def post(self, request: Request, conversation: str) -> Response:
        found = self.conversation(request, conversation)
        check_rate(
            key=f"msg:{found.token_hash}",
            limit=settings.REFLIB_RATE_MESSAGES,
            detail="You are sending too fast.",
        )
        upload = self.validated(FileUploadSerializer, request)["file"]
        event = services.file_upload(
            conversation_id=found.pk, sender=Sender.PATRON, author=None, upload=upload
        )
        return Response(
            {
                "id": event.public_id,
                "seq": event.seq,
                "url": event.data["url"],
                "filename": event.data["filename"],
                "size": event.data["size"],
                "content_type": event.data["content_type"],
            },
            status=201,
        )


class FileDownloadView(PatronConversationView):
    """A shared file, for the conversation's patron or a librarian who may see it.

    Always a download (``Content-Disposition: attachment``, ``nosniff``, the detected type),
    so that no uploaded byte is ever rendered as a page of reflib's origin.
    """

    authentication_classes = [PatronTokenAuthentication, SessionAuthentication]
    permission_classes = [HasPatronTokenOrStaffSession]

    @extend_schema(
        operation_id="file_download",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file, as an attachment."
            ),
            **_errors(401, 403, 404),
        },
        summary="Download a shared file.",
    )
    def get(self, request: Request, conversation: str, file: str) -> HttpResponseBase:
        if isinstance(request.auth, Conversation):
            found = self.readable(request, conversation)
        else:
            found = self._staff_conversation(request, conversation)
        attachment = found.attachments.filter(public_id=file).first()
        if attachment is None:
            raise ChatError("not_found", "No such file.")
        response = FileResponse(
            attachment.file.open("rb"),
            as_attachment=True,
            filename=attachment.filename,
            content_type=attachment.content_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response

    def _staff_conversation(self, request: Request, public_id: str) -> Conversation:
        # The desk is served from reflib's own origin; embedding sites get no staff access.
        origin = request.headers.get("Origin")
        if origin is not None and not origins.is_own(origin, request.get_host()):
            self.cors_origin = None
            raise ChatError("forbidden", ORIGIN_REFUSED)
        user = request.user
        assert isinstance(user, User)
        return services.staff_conversation(user=user, public_id=public_id)


class RatingView(PatronConversationView):
    @extend_schema(
        operation_id="conversation_rate",
        request=RatingSerializer,
        responses={200: RatingSerializer, **_errors(400, 401, 403, 404, 409)},
        summary="Rate the chat (1 to 5) once it has ended.",
    )
    def post(self, request: Request, conversation: str) -> Response:
        found = self.conversation(request, conversation)
        data = self.validated(RatingSerializer, request)
        rated = services.conversation_rate(
            conversation_id=found.pk, score=data["score"], comment=data["comment"]
        )
        return Response({"score": rated.rating, "comment": rated.rating_comment})


class TranscriptView(PatronConversationView):
    @extend_schema(
        operation_id="transcript_send",
        request=TranscriptRequestSerializer,
        responses={202: TranscriptQueuedSerializer, **_errors(400, 401, 403, 404, 429)},
        summary="E-mail the transcript to the address given at the start or during the chat.",
    )
    def post(self, request: Request, conversation: str) -> Response:
        found = self.readable(request, conversation)
        data = self.validated(TranscriptRequestSerializer, request)
        # Only the patron's own address: whoever holds the token later (a shared computer)
        # must not send the conversation elsewhere.
        email = found.patron_email
        asked = data.get("email", "")
        if not email or (asked and asked.lower() != email.lower()):
            raise exceptions.ValidationError({"email": [TRANSCRIPT_ADDRESS]})
        check_rate(
            key=f"transcript:{found.token_hash}",
            limit=TRANSCRIPT_LIMIT,
            detail="Too many transcripts sent.",
        )
        check_mail_budget(email)
        conversation_id = found.pk
        transaction.on_commit(lambda: tasks.send_transcript.delay(conversation_id, email))
        return Response({"email": email}, status=202)


class ConversationEmailView(PatronConversationView):
    @extend_schema(
        operation_id="conversation_email",
        request=ConversationEmailSerializer,
        responses={200: ConversationEmailSerializer, **_errors(400, 401, 403, 404, 409)},
        summary="Confirm, while the chat goes on, the address a transcript may go to.",
    )
    def post(self, request: Request, conversation: str) -> Response:
        found = self.conversation(request, conversation)
        data = self.validated(ConversationEmailSerializer, request)
        changed = services.conversation_email_set(conversation_id=found.pk, email=data["email"])
        return Response({"email": changed.patron_email})


class ConversationTicketView(PatronConversationView):
    @extend_schema(
        operation_id="conversation_to_ticket",
        request=ConversationToTicketSerializer,
        responses={201: TicketCreatedSerializer, **_errors(400, 401, 403, 404, 409)},
        summary="Leave a waiting chat's question as a ticket answered by e-mail.",
    )
    def post(self, request: Request, conversation: str) -> Response:
        found = self.conversation(request, conversation)
        data = self.validated(ConversationToTicketSerializer, request)
        check_mail_budget(data["email"])
        created = services.conversation_to_ticket(conversation_id=found.pk, email=data["email"])
        _send_receipt_on_commit(created)
        return Response({"ticket": created.ticket.public_id}, status=201)
