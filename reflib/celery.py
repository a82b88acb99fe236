"""The Celery application. Embedded mode runs tasks eagerly (CELERY_TASK_ALWAYS_EAGER)."""

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reflib.settings")

app = Celery("reflib")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_worker_logs(logger: logging.Logger, **kwargs: Any) -> None:
    """The worker logs through its own handlers: they get the same filter as Django's."""
    from reflib.logfilter import install

    install(logger)
