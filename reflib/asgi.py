"""ASGI entry point: HTTP through Django, WebSockets through the chat's consumers."""

import os

from django.core.asgi import get_asgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reflib.settings")
# Django must be set up before the consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat import arrivals  # noqa: E402
from chat.outages import OutageGuard  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from reflib import gcpolicy  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OutageGuard(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
# daphne stamps each frame it reads, so that back-pressure sees the frames waiting for their
# consumer (chat.arrivals).
arrivals.install()
# Django loads the URLconf (the views, serializers and API schema it imports) on the first
# request: load it now, so that the first patron does not wait for it.
get_resolver().url_patterns  # noqa: B018
# What start-up built lives as long as the process, and so do most survivors of a full
# collection: the collector need not scan them again on every full collection, which pauses
# every socket of the process (reflib.gcpolicy, docs/benchmarks.md).
gcpolicy.install()
