from datetime import time
from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _record_chat(sender: Any, *, conversation_id: int, **kwargs: Any) -> None:
    from analytics.services import transaction_record_chat

    transaction_record_chat(conversation_id=conversation_id)


def _library_saved(
    sender: Any, *, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    from analytics.services import categories_ensure_defaults

    # A new library starts with its lists, so that no page has to write them on a GET.
    if created and not raw:
        categories_ensure_defaults(library=instance)


def _library_timezone_changed(sender: Any, *, library: Any, **kwargs: Any) -> None:
    from analytics.services import transactions_localise

    transactions_localise(library=library)


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = _("Statistics and reports")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from analytics.demo import seed_analytics_history
        from chat.signals import conversation_ended, conversation_rated
        from reflib.demo import register_history
        from reflib.jobs import Periodic, register_periodic
        from reflib.models import Library
        from reflib.signals import library_timezone_changed

        # After the chat's seeder (chat is installed first): its conversations become
        # transactions through the same service as live ones.
        register_history(seed_analytics_history)

        # Both signals carry only the id: the service reads the conversation as it is now, so
        # a rating given after the chat ended reaches its transaction too.
        conversation_ended.connect(_record_chat, dispatch_uid="analytics.record_chat")
        conversation_rated.connect(_record_chat, dispatch_uid="analytics.record_chat_rating")
        post_save.connect(_library_saved, sender=Library, dispatch_uid="analytics.library_lists")
        library_timezone_changed.connect(
            _library_timezone_changed, dispatch_uid="analytics.library_timezone"
        )
        register_periodic(
            Periodic(
                name="daily-report",
                task="analytics.tasks.build_daily_report",
                at=time(0, 30),
                description="Build and e-mail the report on the library's previous local day.",
            )
        )
