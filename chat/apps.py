from datetime import time

from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = _("Live chat")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat.demo import seed_chat_history
        from chat.events import staff_access_changed_receiver
        from reflib.demo import register_history
        from reflib.jobs import Periodic, register_periodic
        from reflib.signals import staff_access_changed

        register_history(seed_chat_history)
        staff_access_changed.connect(
            staff_access_changed_receiver, dispatch_uid="chat.staff_access_changed"
        )
        register_periodic(
            Periodic(
                name="chat-sweep",
                task="chat.tasks.sweep",
                every_s=settings.REFLIB_SWEEP_SECONDS,
                expires_s=30,
                description="The chat's timers: presence, ticket offers, rollover, missed.",
            )
        )
        register_periodic(
            Periodic(
                name="retention",
                task="chat.tasks.apply_retention",
                at=time(3, 30),
                description="Anonymise conversations older than the library's retention.",
            )
        )
