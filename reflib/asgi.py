"""ASGI entry point: HTTP through Django, WebSockets through the chat's consumers."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reflib.settings")
# Django must be set up before the consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.outages import OutageGuard  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OutageGuard(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
# What start-up built lives as long as the process: the collector need not scan it again on
# every full collection, which pauses every socket of the process (docs/benchmarks.md).
gc.freeze()
