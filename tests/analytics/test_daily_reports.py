"""Daily reports (SPEC §4): what a report says, per library and local day, redacted; stored
once, e-mailed once; the pages, the command, the task and the admin."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.core.management import CommandError, call_command
from django.test import Client
from django_celery_beat.models import PeriodicTask

from analytics import tasks
from analytics.models import DailyReport
from analytics.report_services import report_build, report_day_before, report_email
from reflib.celery import app as celery_app
from reflib.jobs import periodic_tasks_ensure
from reflib.models import JobOutcome, JobRun, Library, Role
from reflib.services import library_upsert, service_point_ensure, staff_upsert
from staffing.models import Assignment, Shift
from tests.analytics.report_data import DAY, PERSONAL, Chat, a_day_of_chats, chat_at, local
from tests.conftest import PASSWORD, Cast
from tests.live import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def day_of_chats(cast: Cast) -> list[Chat]:
    return a_day_of_chats(cast.queue, cast.librarian)


def content_text(report: DailyReport) -> str:
    return json.dumps(report.content, ensure_ascii=False)


def test_the_report_of_a_local_day_has_every_section_and_no_personal_data(
    cast: Cast, day_of_chats: list[Chat]
) -> None:
    desk = service_point_ensure(library=cast.library, slug="main", name="Main desk")
    shift = Shift.objects.create(
        library=cast.library,
        service_point=desk,
        date=DAY,
        start=local(DAY, 9),
        end=local(DAY, 11),
    )
    Assignment.objects.create(shift=shift, user=cast.librarian, status="assigned")

    report = report_build(library=cast.library, day=DAY)
    content = report.content

    assert content["day"] == "2026-03-10"
    assert content["period"] == {
        "start": "2026-03-10T00:00:00-04:00",
        "end": "2026-03-11T00:00:00-04:00",
    }
    assert content["volumes"]["total"] == 4
    assert content["volumes"]["by_channel"] == [{"channel": "Chat", "count": 4}]
    by_hour = content["volumes"]["by_hour"]
    assert (by_hour[9], by_hour[14], by_hour[23], sum(by_hour)) == (2, 1, 1, 4)
    levels = content["service_levels"]
    assert levels["chats"] == 4
    assert levels["outcomes"]["answered"] == 2
    assert levels["outcomes"]["missed"] == 1
    assert levels["outcomes"]["abandoned"] == 1
    assert levels["wait"]["median_s"] == pytest.approx(45)
    assert levels["ratings"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}
    assert levels["rating_mean"] == pytest.approx(4.5)
    assert [(r["time"], r["status"]) for r in content["missed_and_abandoned"]] == [
        ("14:05", "missed"),
        ("23:50", "abandoned"),
    ]
    assert content["rating_comments"][0] == {
        "time": "09:15",
        "score": 5,
        "comment": "Great help! [name] ([email])",
    }
    assert content["tags"] == [
        {"tag": "genealogy", "count": 2},
        {"tag": "microfilm", "count": 1},
    ]
    # Every question asked for the census; "call", "have", "you" are stop words or once only.
    assert content["topics"][0] == {"term": "census", "conversations": 4}
    terms = {row["term"] for row in content["topics"]}
    assert not terms & {"you", "have", "the", "call", "email", "name"}
    assert {"hour": 9, "questions": 2, "staff_hours": 1.0, "questions_per_staff_hour": 2.0} in (
        content["coverage"]
    )
    assert {
        "hour": 14,
        "questions": 1,
        "staff_hours": 0,
        "questions_per_staff_hour": None,
    } in content["coverage"]
    first = content["transcripts"][0]
    assert first["started"] == "09:15"
    assert ["09:15", "Patron", "Do you have the 1911 census? I'm [name], [email]"] in first["lines"]
    assert any(
        line[1] == "Lena" and "call number HA37 .I7 1911" in line[2] for line in first["lines"]
    )
    assert len(content["transcripts"]) == 4
    text = content_text(report)
    for personal in PERSONAL:
        assert personal not in text, personal
    assert "elsewhere" not in text


def test_building_a_day_again_leaves_one_report_with_the_same_content(
    cast: Cast, day_of_chats: list[Chat]
) -> None:
    first = report_build(library=cast.library, day=DAY)
    again = report_build(library=cast.library, day=DAY)

    assert DailyReport.objects.count() == 1
    assert again.pk == first.pk
    assert again.content_hash == first.content_hash
    assert again.built_at == first.built_at
    assert again.content == first.content

    chat_at(cast.queue, cast.librarian, local(DAY, 16), tags=("late",))
    changed = report_build(library=cast.library, day=DAY)
    assert DailyReport.objects.count() == 1
    assert changed.content_hash != first.content_hash
    assert changed.content["volumes"]["total"] == 5


def test_libraries_in_los_angeles_and_madrid_get_their_own_local_days(cast: Cast) -> None:
    la = library_upsert(
        slug="la", name="LA Library", timezone="America/Los_Angeles", queue_slugs=["general"]
    )
    madrid = library_upsert(
        slug="madrid", name="Biblioteca", timezone="Europe/Madrid", queue_slugs=["general"]
    )
    la_lib = staff_upsert(username="lou", library=la, role=Role.LIBRARIAN, password=PASSWORD)
    es_lib = staff_upsert(username="eva", library=madrid, role=Role.LIBRARIAN, password=PASSWORD)
    la_zone, madrid_zone = ZoneInfo("America/Los_Angeles"), ZoneInfo("Europe/Madrid")
    # 23:30 on the 10th in Los Angeles is 07:30 UTC on the 11th.
    chat_at(la.queues.get(), la_lib, local(DAY, 23, 30, la_zone))
    # 00:30 on the 11th in Madrid is 23:30 UTC on the 10th.
    chat_at(madrid.queues.get(), es_lib, local(DAY + timedelta(days=1), 0, 30, madrid_zone))

    assert report_build(library=la, day=DAY).content["volumes"]["by_hour"][23] == 1
    assert report_build(library=la, day=DAY + timedelta(days=1)).content["volumes"]["total"] == 0
    assert report_build(library=madrid, day=DAY).content["volumes"]["total"] == 0
    eleventh = report_build(library=madrid, day=DAY + timedelta(days=1)).content
    assert eleventh["volumes"]["by_hour"][0] == 1

    # At 06:30 UTC on the 11th it is 07:30 on the 11th in Madrid, 23:30 on the 10th in LA.
    instant = datetime(2026, 3, 11, 6, 30, tzinfo=ZoneInfo("UTC"))
    assert report_day_before(library=madrid, now=instant) == DAY
    assert report_day_before(library=la, now=instant) == DAY - timedelta(days=1)

    # Each library's report job runs after its own local midnight.
    periodic_tasks_ensure()
    jobs = {
        task.name: task for task in PeriodicTask.objects.filter(task=tasks.build_daily_report.name)
    }
    for library in (la, madrid):
        job = jobs[f"daily-report: {library.slug}"]
        assert job.crontab is not None
        assert (job.crontab.hour, job.crontab.minute) == ("0", "30")
        assert str(job.crontab.timezone) == library.timezone
        assert json.loads(job.kwargs) == {"library_id": library.pk}


def test_the_report_is_emailed_to_the_managers_once_in_html_and_text(
    cast: Cast, day_of_chats: list[Chat]
) -> None:
    cast.manager.email = "mara@demo-library.org"
    cast.manager.save()
    cast.librarian.email = "lena@demo-library.org"
    cast.librarian.save()
    report = report_build(library=cast.library, day=DAY)

    assert report_email(report_id=report.pk) is True
    assert report_email(report_id=report.pk) is False
    report_build(library=cast.library, day=DAY)
    assert report_email(report_id=report.pk) is False

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["mara@demo-library.org"]
    assert message.subject == "Demo Public Library: daily report for 2026-03-10"
    assert message.extra_headers["Message-ID"] == "<daily-report.demo.2026-03-10@reflib>"
    assert isinstance(message, EmailMultiAlternatives)
    html, kind = message.alternatives[0]
    assert kind == "text/html"
    assert "/analytics/demo/reports/2026-03-10/" in str(message.body)
    assert "genealogy (2)" in str(message.body)
    assert "Missed and abandoned chats" in str(html)
    for personal in PERSONAL:
        assert personal not in str(message.body)
        assert personal not in str(html)


def test_the_daily_task_reports_on_the_previous_local_day_as_a_recorded_job(
    cast: Cast,
) -> None:
    cast.manager.email = "mara@demo-library.org"
    cast.manager.save()

    tasks.build_daily_report.delay(library_id=cast.library.pk)
    tasks.build_daily_report.delay(library_id=cast.library.pk)

    yesterday = report_day_before(library=cast.library)
    report = DailyReport.objects.get()
    assert (report.library, report.day) == (cast.library, yesterday)
    assert report.emailed_at is not None
    assert len(mail.outbox) == 1
    runs = JobRun.objects.filter(task=tasks.build_daily_report.name)
    assert [(r.library, r.outcome) for r in runs] == [(cast.library, JobOutcome.SUCCESS)] * 2


# --- the pages ----------


def test_a_manager_reads_the_html_and_the_csv(cast: Cast, day_of_chats: list[Chat]) -> None:
    report_build(library=cast.library, day=DAY)
    client = cast.client_for(cast.manager)

    page = client.get("/analytics/demo/reports/2026-03-10/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Transcripts (personal data redacted)" in html
    assert "call number HA37 .I7 1911" in html
    assert "[name]" in html

    download = client.get("/analytics/demo/reports/2026-03-10/csv")
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="demo-report-2026-03-10.csv"'
    rows = list(csv.reader(io.StringIO(download.getvalue().decode())))
    assert rows[0] == ["section", "item", "value", "detail"]
    assert ["volume", "total", "4", ""] in rows
    assert ["tag", "genealogy", "2", ""] in rows
    assert any(row[0] == "transcript" and "[card]" in row[3] for row in rows)
    for personal in PERSONAL:
        assert personal not in html
        assert all(personal not in cell for row in rows for cell in row)


def test_a_transcript_line_cannot_become_a_spreadsheet_formula(cast: Cast) -> None:
    chat_at(cast.queue, cast.librarian, local(DAY, 10), lines=("=HYPERLINK(evil)",))
    report_build(library=cast.library, day=DAY)

    download = cast.client_for(cast.manager).get("/analytics/demo/reports/2026-03-10/csv")
    text = download.getvalue().decode()
    assert "'=HYPERLINK(evil)" in text


def test_only_the_librarys_managers_see_its_reports(cast: Cast, other_manager: Any) -> None:
    report_build(library=cast.library, day=DAY)
    url = "/analytics/demo/reports/2026-03-10/"

    assert cast.client_for(cast.manager).get(url).status_code == 200
    assert cast.client_for(cast.manager).get(f"{url}csv").status_code == 200
    for user in (cast.librarian, other_manager, cast.other_librarian):
        client = cast.client_for(user)
        assert client.get(url).status_code == 404
        assert client.get(f"{url}csv").status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert "/accounts/login/" in anonymous["Location"]
    manager = cast.client_for(cast.manager)
    assert manager.get("/analytics/demo/reports/2026-03-11/").status_code == 404
    assert manager.get("/analytics/demo/reports/2026-13-45/").status_code == 404
    assert manager.get("/analytics/other/reports/2026-03-10/").status_code == 404


def test_the_admin_lists_a_managers_own_reports_only(cast: Cast, other_manager: Any) -> None:
    mine = report_build(library=cast.library, day=DAY)
    theirs = report_build(library=cast.other_library, day=DAY)

    page = cast.client_for(cast.manager).get("/admin/analytics/dailyreport/")
    assert page.status_code == 200
    assert [r.pk for r in page.context["cl"].result_list] == [mine.pk]
    assert "/analytics/demo/reports/2026-03-10/csv" in page.content.decode()
    other = cast.client_for(cast.manager).get(f"/admin/analytics/dailyreport/{theirs.pk}/change/")
    assert other.status_code == 302


# --- the command ----------


def test_the_command_backfills_a_range_for_one_library(
    cast: Cast, day_of_chats: list[Chat], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command(
        "build_daily_reports", "--library", "demo", "--from", "2026-03-09", "--to", "2026-03-11"
    )
    call_command("build_daily_reports", "--library", "demo", "--date", "2026-03-10")

    days = list(DailyReport.objects.order_by("day").values_list("day", flat=True))
    assert days == [date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11)]
    assert "demo 2026-03-10: stored" in capsys.readouterr().out
    assert not mail.outbox


def test_the_command_without_a_date_builds_each_librarys_previous_local_day(cast: Cast) -> None:
    call_command("build_daily_reports")

    built = set(DailyReport.objects.values_list("library__slug", "day"))
    assert built == {
        (library.slug, report_day_before(library=library)) for library in Library.objects.all()
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-02-30"], "is not a date"),
        (["--date", "2026-03-10", "--from", "2026-03-01"], "either --date or --from"),
        (["--from", "2026-03-01"], "go together"),
        (["--from", "2026-03-10", "--to", "2026-03-01"], "before --from"),
        (["--from", "2020-01-01", "--to", "2026-01-01"], "at most 366 days"),
        (["--library", "nowhere"], "no library with the slug"),
    ],
)
def test_the_command_refuses_bad_arguments_clearly(
    cast: Cast, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("build_daily_reports", *args)
    assert not DailyReport.objects.exists()


def test_a_report_whose_email_fails_is_retried_then_listed_as_failed_and_sent_later(
    cast: Cast, day_of_chats: list[Chat], settings: Any
) -> None:
    cast.manager.email = "mara@demo-library.org"
    cast.manager.save()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there: the mail server is down
    settings.EMAIL_TIMEOUT = 2
    # Eagerly run tasks retry inline only when they do not propagate their exceptions.
    celery_app.conf.task_eager_propagates = False
    try:
        result = tasks.build_daily_report.delay(library_id=cast.library.pk, day=DAY.isoformat())
    finally:
        celery_app.conf.task_eager_propagates = True

    assert result.state == "FAILURE"
    runs = list(JobRun.objects.filter(task=tasks.build_daily_report.name).order_by("attempt"))
    assert [run.outcome for run in runs] == [JobOutcome.RETRY] * 3 + [JobOutcome.FAILURE]
    assert runs[-1].error.startswith("ConnectionRefusedError")
    report = DailyReport.objects.get()
    assert report.emailed_at is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    tasks.build_daily_report.delay(library_id=cast.library.pk, day=DAY.isoformat())
    report.refresh_from_db()
    assert report.emailed_at is not None
    assert len(mail.outbox) == 1
