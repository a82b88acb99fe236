from datetime import timedelta
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_migrate, post_save
from django.utils.translation import gettext_lazy as _


class ReflibConfig(AppConfig):
    name = "reflib"
    verbose_name = _("Libraries and staff")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reflib import jobs, signals  # noqa: F401  (signals connects its receivers)
        from reflib.models import Library

        jobs.connect_signals()
        jobs.register_periodic(
            jobs.Periodic(
                name="clear-expired-sessions",
                task="reflib.tasks.clear_sessions",
                every_s=timedelta(days=1).total_seconds(),
                description="Delete expired login sessions.",
            )
        )
        jobs.register_periodic(
            jobs.Periodic(
                name="prune-job-runs",
                task="reflib.tasks.prune_job_runs",
                every_s=timedelta(days=1).total_seconds(),
                description=f"Delete job runs older than {settings.REFLIB_JOB_RUN_DAYS} days.",
            )
        )
        post_migrate.connect(_ensure_schedule, sender=self, dispatch_uid="reflib.schedule")
        post_save.connect(_library_saved, sender=Library, dispatch_uid="reflib.library_schedule")


def _ensure_schedule(**kwargs: Any) -> None:
    from reflib.jobs import periodic_tasks_ensure

    periodic_tasks_ensure()


def _library_saved(instance: Any, raw: bool = False, **kwargs: Any) -> None:
    from reflib.jobs import periodic_tasks_ensure

    if not raw:
        transaction.on_commit(lambda: periodic_tasks_ensure(library=instance))
