"""reflib: the project package and the core domain every app stands on."""

from reflib.celery import app as celery_app

__all__ = ["celery_app"]
