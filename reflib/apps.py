from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReflibConfig(AppConfig):
    name = "reflib"
    verbose_name = _("Libraries and staff")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reflib import signals  # noqa: F401  (connects the receivers)
