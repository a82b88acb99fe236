"""Routes of the chat: the patron HTTP API (PROTOCOL.md) and its OpenAPI document, the
widget, the desk and its follow-up tickets, and the patron's private ticket page."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from chat import api, desk_api, views, widget

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path(
        "api/v1/queues/<slug:library>/<slug:queue>/",
        api.QueueStatusView.as_view(),
        name="api_queue_status",
    ),
    path("api/v1/conversations/", api.ConversationStartView.as_view(), name="api_conversations"),
    path("api/v1/tickets/", api.TicketCreateView.as_view(), name="api_tickets"),
    path(
        "api/v1/conversations/<str:conversation>/",
        api.ConversationView.as_view(),
        name="api_conversation",
    ),
    path(
        "api/v1/conversations/<str:conversation>/files",
        api.FileUploadView.as_view(),
        name="api_files",
    ),
    path(
        "api/v1/conversations/<str:conversation>/files/<str:file>",
        api.FileDownloadView.as_view(),
        name="api_file",
    ),
    path(
        "api/v1/conversations/<str:conversation>/rating",
        api.RatingView.as_view(),
        name="api_rating",
    ),
    path(
        "api/v1/conversations/<str:conversation>/transcript",
        api.TranscriptView.as_view(),
        name="api_transcript",
    ),
    path(
        "api/v1/conversations/<str:conversation>/email",
        api.ConversationEmailView.as_view(),
        name="api_conversation_email",
    ),
    path(
        "api/v1/conversations/<str:conversation>/ticket",
        api.ConversationTicketView.as_view(),
        name="api_conversation_ticket",
    ),
    path("widget.js", widget.widget_js, name="widget_js"),
    path("widget/<slug:library>/<slug:queue>/", widget.panel, name="widget_panel"),
    path("desk/", views.desk, name="desk"),
    path("desk/shift/", views.desk_shift, name="desk_shift"),
    path("desk/shift/stay/", views.desk_shift_stay, name="desk_shift_stay"),
    path("desk/tickets/", views.desk_tickets, name="desk_tickets"),
    path("desk/tickets/<str:public_id>/", views.desk_ticket, name="desk_ticket"),
    path(
        "desk/tickets/<str:public_id>/assign/",
        views.desk_ticket_assign,
        name="desk_ticket_assign",
    ),
    path(
        "desk/tickets/<str:public_id>/answer/",
        views.desk_ticket_answer,
        name="desk_ticket_answer",
    ),
    path(
        "desk/tickets/<str:public_id>/close/",
        views.desk_ticket_close,
        name="desk_ticket_close",
    ),
    path("desk/api/colleagues/", desk_api.colleagues, name="desk_api_colleagues"),
    path("desk/api/canned-responses/", desk_api.canned_responses, name="desk_api_canned"),
    path(
        "desk/api/conversations/<str:public_id>/",
        desk_api.conversation,
        name="desk_api_conversation",
    ),
    path(
        "desk/api/conversations/<str:public_id>/files/",
        desk_api.file_upload,
        name="desk_api_files",
    ),
    path("tickets/<str:public_id>/", views.ticket_public, name="ticket_public"),
    path("tickets/<str:public_id>/open/", views.ticket_open, name="ticket_open"),
    path(
        "tickets/<str:public_id>/<str:access_key>/",
        views.ticket_public_key_in_path,
        name="ticket_public_key_in_path",
    ),
]
