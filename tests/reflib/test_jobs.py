"""Background jobs (SPEC §4): every run recorded and visible in the admin, failures retried
then surfaced, and the periodic schedule kept in the database where the admin changes it."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from chat import tasks as chat_tasks
from reflib import jobs
from reflib.celery import app as celery_app
from reflib.models import JobOutcome, JobRun, Library
from reflib.services import library_upsert
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


@celery_app.task(bind=True, autoretry_for=(ConnectionError,), max_retries=2)
def always_failing(self: Any, *, library_id: int) -> None:
    raise ConnectionError(f"mail server refused jane.doe@example.org (library {library_id})")


@celery_app.task
def succeeding(*, library_id: int) -> int:
    return library_id


def test_a_successful_run_is_recorded_with_its_library_and_duration(cast: Cast) -> None:
    succeeding.delay(library_id=cast.library.pk)
    run = JobRun.objects.get(task=succeeding.name)
    assert run.library == cast.library
    assert run.outcome == JobOutcome.SUCCESS
    assert run.duration is not None
    assert run.duration >= timedelta(0)
    assert run.error == ""


def test_a_failing_job_is_retried_then_surfaces_as_failed_without_personal_data(
    cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    # Eagerly run tasks retry inline only when they do not propagate their exceptions.
    celery_app.conf.task_eager_propagates = False
    try:
        result = always_failing.delay(library_id=cast.library.pk)
    finally:
        celery_app.conf.task_eager_propagates = True
    assert result.state == "FAILURE"
    runs = list(JobRun.objects.filter(task=always_failing.name).order_by("attempt"))
    assert [(r.attempt, r.outcome) for r in runs] == [
        (1, JobOutcome.RETRY),
        (2, JobOutcome.RETRY),
        (3, JobOutcome.FAILURE),
    ]
    assert runs[-1].error.startswith("ConnectionError: mail server refused [email]")
    assert "jane.doe" not in " ".join(r.error for r in runs)
    assert any(r.levelname == "ERROR" and always_failing.name in r.message for r in caplog.records)


def test_the_chat_sweep_is_a_recorded_job_of_the_whole_installation(cast: Cast) -> None:
    chat_tasks.sweep.delay()
    run = JobRun.objects.get(task="chat.tasks.sweep")
    assert run.library is None
    assert run.outcome == JobOutcome.SUCCESS


def test_old_runs_are_pruned(cast: Cast) -> None:
    old = JobRun.objects.create(task="x", started_at=timezone.now() - timedelta(days=30))
    recent = JobRun.objects.create(task="x")
    assert jobs.job_runs_prune() == 1
    assert not JobRun.objects.filter(pk=old.pk).exists()
    assert JobRun.objects.filter(pk=recent.pk).exists()


def test_migrate_leaves_the_periodic_jobs_in_the_database() -> None:
    sweep = PeriodicTask.objects.get(name="chat-sweep")
    assert sweep.task == "chat.tasks.sweep"
    assert sweep.interval is not None
    assert sweep.interval.every == 5
    assert sweep.expire_seconds == 30
    assert PeriodicTask.objects.filter(task="reflib.tasks.clear_sessions").count() == 1


def test_ensuring_again_keeps_what_the_admin_changed_and_adds_nothing() -> None:
    sweep = PeriodicTask.objects.get(name="chat-sweep")
    sweep.interval, _ = IntervalSchedule.objects.get_or_create(
        every=15, period=IntervalSchedule.SECONDS
    )
    sweep.enabled = False
    sweep.save()
    count = PeriodicTask.objects.count()
    assert jobs.periodic_tasks_ensure() == []
    sweep.refresh_from_db()
    assert sweep.interval is not None
    assert sweep.interval.every == 15
    assert not sweep.enabled
    assert PeriodicTask.objects.count() == count


@pytest.fixture
def nightly() -> Any:
    job = jobs.Periodic(name="test-nightly", task=succeeding.name, at=time(0, 30))
    jobs.register_periodic(job)
    yield job
    jobs._registry.pop(job.name)


def test_a_daily_job_runs_per_library_in_each_librarys_own_time_zone(
    nightly: jobs.Periodic, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        la = library_upsert(slug="la", name="LA", timezone="America/Los_Angeles")
        madrid = library_upsert(slug="madrid", name="Madrid", timezone="Europe/Madrid")
    tasks = {t.name: t for t in PeriodicTask.objects.filter(task=succeeding.name)}
    assert set(tasks) == {"test-nightly: la", "test-nightly: madrid"}
    for task, library in ((tasks["test-nightly: la"], la), (tasks["test-nightly: madrid"], madrid)):
        assert task.crontab is not None
        assert (task.crontab.hour, task.crontab.minute) == ("0", "30")
        assert str(task.crontab.timezone) == library.timezone
        assert task.kwargs == f'{{"library_id": {library.pk}}}'

    # A library that moves follows with its jobs, at the same local time.
    with django_capture_on_commit_callbacks(execute=True):
        library_upsert(slug="la", timezone="America/New_York")
    task = PeriodicTask.objects.get(name="test-nightly: la")
    assert task.crontab is not None
    assert str(task.crontab.timezone) == "America/New_York"

    # A job left by a library that is gone is removed.
    gone = Library.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1
    PeriodicTask.objects.filter(name="test-nightly: madrid").update(
        kwargs=f'{{"library_id": {gone}}}'
    )
    jobs.periodic_tasks_ensure()
    assert not PeriodicTask.objects.filter(kwargs=f'{{"library_id": {gone}}}').exists()
    recreated = PeriodicTask.objects.get(name="test-nightly: madrid")
    assert recreated.kwargs == f'{{"library_id": {madrid.pk}}}'


def test_a_manager_sees_only_their_librarys_job_runs_and_cannot_edit_them(cast: Cast) -> None:
    mine = JobRun.objects.create(task="analytics.tasks.build_daily_report", library=cast.library)
    theirs = JobRun.objects.create(
        task="analytics.tasks.build_daily_report", library=cast.other_library
    )
    installation = JobRun.objects.create(task="chat.tasks.sweep")
    client = cast.client_for(cast.manager)
    page = client.get("/admin/reflib/jobrun/")
    assert page.status_code == 200
    shown = {run.pk for run in page.context["cl"].result_list}
    assert shown == {mine.pk}
    assert client.get(f"/admin/reflib/jobrun/{theirs.pk}/change/").status_code == 302
    assert client.get(f"/admin/reflib/jobrun/{installation.pk}/change/").status_code == 302
    delete = client.post(f"/admin/reflib/jobrun/{mine.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert JobRun.objects.filter(pk=mine.pk).exists()


def test_a_librarian_has_no_job_admin(cast: Cast) -> None:
    assert cast.client_for(cast.librarian).get("/admin/reflib/jobrun/").status_code == 302
    assert Client().get("/admin/reflib/jobrun/").status_code == 302
