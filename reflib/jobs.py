"""Background jobs: every run recorded, and the periodic schedule kept in the database.

**Runs.** Celery's task signals record each run of every task as a ``JobRun`` (task, library,
start, duration, outcome, error), which the admin lists: a job that fails is retried by its
task's retry policy, each failed attempt stays visible as ``retry``, and the last one surfaces
as ``failure`` (and in the log), never silently. A task that works for one library takes
``library_id`` as a keyword argument; that is how its runs are tied to the library.

**Schedule.** django-celery-beat's ``DatabaseScheduler`` reads the schedule from the database,
where the admin shows and changes it. Apps declare their periodic jobs here
(``register_periodic`` in their ``AppConfig.ready()``) and ``periodic_tasks_ensure`` writes the
missing ones after each ``migrate`` and whenever a library is saved: it creates, never
overwrites, so an interval or a time changed (or a job disabled) in the admin stays as set.
A job declared with a local time ``at`` runs once per library at that time of the library's own
time zone (each library's daily report after its own midnight); the others run for the whole
installation every ``every_s`` seconds.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import time as clock
from datetime import timedelta
from typing import Any

from celery import Task
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from reflib.models import JobOutcome, JobRun, Library
from reflib.redaction import redact

log = logging.getLogger(__name__)

ERROR_MAX_CHARS = 2000

# Daily jobs retry a failure three times, 1, 2 and 4 minutes later, then record it as failed.
# Their services are idempotent, so a retry (or a redelivery after a crash) does no harm.
DAILY_RETRY: dict[str, Any] = {
    "autoretry_for": (Exception,),
    "max_retries": 3,
    "retry_backoff": 60,
    "retry_jitter": False,
}


@dataclass(frozen=True)
class Periodic:
    """A periodic job: every ``every_s`` seconds, or daily at local ``at`` per library."""

    name: str
    task: str
    every_s: float | None = None
    at: clock | None = None
    expires_s: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if (self.every_s is None) == (self.at is None):
            raise ValueError(f"{self.name}: give exactly one of every_s and at")


_registry: dict[str, Periodic] = {}


def register_periodic(job: Periodic) -> None:
    _registry[job.name] = job


def registered_periodic() -> list[Periodic]:
    return list(_registry.values())


# --- the schedule ----------


def _library_kwargs(library: Library) -> str:
    return json.dumps({"library_id": library.pk})


@transaction.atomic
def periodic_tasks_ensure(*, library: Library | None = None) -> list[PeriodicTask]:
    """Create the missing periodic tasks (all of them, or only ``library``'s); returns those
    created. Existing rows keep what the admin set, except that a library's daily jobs follow
    a change of the library's time zone (same hour and minute, new zone)."""
    created: list[PeriodicTask] = []
    if library is None:
        _forget_deleted_libraries()
    libraries = [library] if library is not None else list(Library.objects.all())
    for job in registered_periodic():
        if job.every_s is not None:
            if library is None:
                created += _ensure_interval(job, job.every_s)
            continue
        for each in libraries:
            created += _ensure_daily(job, each)
    return created


def _ensure_interval(job: Periodic, every_s: float) -> list[PeriodicTask]:
    if PeriodicTask.objects.filter(name=job.name).exists():
        return []
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=max(1, round(every_s)), period=IntervalSchedule.SECONDS
    )
    return [
        PeriodicTask.objects.create(
            name=job.name,
            task=job.task,
            interval=interval,
            description=job.description,
            expire_seconds=job.expires_s,
        )
    ]


def _crontab(minute: str, hour: str, zone: str) -> CrontabSchedule:
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=zone,
    )
    return crontab


def _ensure_daily(job: Periodic, library: Library) -> list[PeriodicTask]:
    assert job.at is not None
    existing = PeriodicTask.objects.filter(task=job.task, kwargs=_library_kwargs(library)).first()
    if existing is not None:
        crontab = existing.crontab
        if crontab is not None and str(crontab.timezone) != library.timezone:
            existing.crontab = _crontab(crontab.minute, crontab.hour, library.timezone)
            existing.save()
        return []
    return [
        PeriodicTask.objects.create(
            name=f"{job.name}: {library.slug}",
            task=job.task,
            kwargs=_library_kwargs(library),
            crontab=_crontab(str(job.at.minute), str(job.at.hour), library.timezone),
            description=job.description,
            expire_seconds=job.expires_s,
        )
    ]


def _forget_deleted_libraries() -> None:
    existing = set(Library.objects.values_list("pk", flat=True))
    daily_tasks = [job.task for job in registered_periodic() if job.at is not None]
    for task in PeriodicTask.objects.filter(task__in=daily_tasks):
        if json.loads(task.kwargs or "{}").get("library_id") not in existing:
            task.delete()


# --- the runs ----------


def job_run_start(*, task: str, task_id: str, library_id: Any, attempt: int) -> JobRun:
    library = Library.objects.filter(pk=library_id).first() if isinstance(library_id, int) else None
    return JobRun.objects.create(task=task, task_id=task_id, library=library, attempt=attempt)


def describe_error(exc: BaseException) -> str:
    """The exception's class and message, redacted: a database error can quote a row."""
    return redact(f"{type(exc).__name__}: {exc}")[:ERROR_MAX_CHARS]


def job_run_finish(*, run_id: int, outcome: JobOutcome, duration: timedelta, error: str) -> None:
    JobRun.objects.filter(pk=run_id).update(outcome=outcome, duration=duration, error=error)


def job_runs_prune(*, now: Any = None) -> int:
    """Delete runs older than ``REFLIB_JOB_RUN_DAYS``; the chat's sweep alone makes thousands
    a day."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.REFLIB_JOB_RUN_DAYS)
    deleted, _ = JobRun.objects.filter(started_at__lt=cutoff).delete()
    return deleted


_OUTCOMES = {"SUCCESS": JobOutcome.SUCCESS, "RETRY": JobOutcome.RETRY}


def _on_prerun(task_id: str, task: Task[Any, Any], kwargs: dict[str, Any], **_: Any) -> None:
    run = job_run_start(
        task=task.name,
        task_id=task_id,
        library_id=(kwargs or {}).get("library_id"),
        attempt=(task.request.retries or 0) + 1,
    )
    # The request context is per attempt (an eager retry nests one inside another).
    setattr(task.request, "reflib_job", (run.pk, time.monotonic()))  # noqa: B010


def _on_postrun(task: Task[Any, Any], retval: Any, state: str, **_: Any) -> None:
    started = getattr(task.request, "reflib_job", None)
    if started is None:
        return
    run_id, began = started
    outcome = _OUTCOMES.get(state, JobOutcome.FAILURE)
    error = ""
    if outcome != JobOutcome.SUCCESS:
        exc = getattr(retval, "exc", None) or retval
        error = describe_error(exc) if isinstance(exc, BaseException) else str(state)
    if outcome == JobOutcome.FAILURE:
        log.error("job %s failed (run %s): %s", task.name, run_id, error)
    job_run_finish(
        run_id=run_id,
        outcome=outcome,
        duration=timedelta(seconds=time.monotonic() - began),
        error=error,
    )


def connect_signals() -> None:
    task_prerun.connect(_on_prerun, dispatch_uid="reflib.jobs.prerun", weak=False)
    task_postrun.connect(_on_postrun, dispatch_uid="reflib.jobs.postrun", weak=False)
