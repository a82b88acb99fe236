from datetime import time
from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _record_chat(sender: Any, *, conversation_id: int, **kwargs: Any) -> None:
    from analytics.services import transaction_record_chat

    transaction_record_chat(conversation_id=conversation_id)


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = _("Statistics and reports")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat.signals import conversation_ended, conversation_rated

        # Both signals carry only the id: the service reads the conversation as it is now, so
        # a rating given after the chat ended reaches its transaction too.
        conversation_ended.connect(_record_chat, dispatch_uid="analytics.record_chat")
        conversation_rated.connect(_record_chat, dispatch_uid="analytics.record_chat_rating")

        from reflib.jobs import Periodic, register_periodic

        register_periodic(
            Periodic(
                name="daily-report",
                task="analytics.tasks.build_daily_report",
                at=time(0, 30),
                description="Build and e-mail the report on the library's previous local day.",
            )
        )
