from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = _("Live chat")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat.demo import seed_chat_history
        from chat.events import staff_access_changed_receiver
        from reflib.demo import register_history
        from reflib.signals import staff_access_changed

        register_history(seed_chat_history)
        staff_access_changed.connect(
            staff_access_changed_receiver, dispatch_uid="chat.staff_access_changed"
        )
