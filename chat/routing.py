"""WebSocket routes of the chat protocol (docs/protocol.md)."""

from django.urls import path

from chat.consumers import DeskConsumer, PatronConsumer

websocket_urlpatterns = [
    path("ws/v1/patron/", PatronConsumer.as_asgi()),
    path("ws/v1/desk/", DeskConsumer.as_asgi()),
]
