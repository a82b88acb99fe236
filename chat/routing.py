"""WebSocket routes of the chat protocol (docs/protocol.md)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
