"""The daily report's pages: HTML at /analytics/LIB/reports/YYYY-MM-DD/ and its CSV.

Managers of the library only (and superusers); anyone else, and a day without a report, gets
404, as if the report did not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from analytics import csv_export
from analytics.models import DailyReport
from analytics.views import managed_library

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _report(request: HttpRequest, library: str, day: str) -> DailyReport:
    scoped = managed_library(request, library)
    try:
        report_day = date.fromisoformat(day)
    except ValueError:
        raise Http404("No such report.") from None
    report = DailyReport.objects.for_library(scoped).filter(day=report_day).first()
    if report is None:
        raise Http404("No such report.")
    return report


@login_required
@never_cache
@require_GET
def daily_report(request: HttpRequest, library: str, day: str) -> HttpResponse:
    report = _report(request, library, day)
    return render(
        request, "analytics/daily_report.html", {"report": report, "content": report.content}
    )


def _cell(value: Any) -> Any:
    """Text a patron typed must not run as a spreadsheet formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return f"'{value}"
    return "" if value is None else value


def report_rows(content: dict[str, Any]) -> Iterator[list[Any]]:
    """The report as one CSV: ``section, item, value, detail`` rows, header first."""
    yield ["section", "item", "value", "detail"]
    volumes = content["volumes"]
    yield ["volume", "total", volumes["total"], ""]
    for row in volumes["by_channel"]:
        yield ["volume by channel", row["channel"], row["count"], ""]
    for hour, count in enumerate(volumes["by_hour"]):
        yield ["volume by hour", f"{hour:02d}:00", count, ""]
    levels = content["service_levels"]
    yield ["service levels", "chats", levels["chats"], ""]
    for outcome, count in levels["outcomes"].items():
        yield ["service levels", f"outcome {outcome}", count, ""]
    for name in ("wait", "first_response", "duration"):
        spread = levels[name]
        yield ["service levels", f"{name} median (s)", spread["median_s"], spread["count"]]
        yield ["service levels", f"{name} p90 (s)", spread["p90_s"], spread["count"]]
    yield ["service levels", "abandonment rate", levels["abandonment_rate"], ""]
    yield ["service levels", "missed rate", levels["missed_rate"], ""]
    for score, count in levels["ratings"].items():
        yield ["ratings", f"score {score}", count, ""]
    yield ["ratings", "mean", levels["rating_mean"], ""]
    for row in content["rating_comments"]:
        yield ["rating comment", row["time"], row["score"], row["comment"]]
    for row in content["missed_and_abandoned"]:
        yield [row["status"], row["time"], row["waited_s"], row["queue"]]
    for row in content["tags"]:
        yield ["tag", row["tag"], row["count"], ""]
    for row in content["topics"]:
        yield ["topic", row["term"], row["conversations"], ""]
    for row in content["coverage"]:
        yield [
            "coverage",
            f"{row['hour']:02d}:00",
            row["questions"],
            f"{row['staff_hours']} staff-hours",
        ]
    for transcript in content["transcripts"]:
        for time, sender, text in transcript["lines"]:
            yield ["transcript", f"{transcript['conversation']} {time}", sender, text]


@login_required
@never_cache
@require_GET
def daily_report_csv(request: HttpRequest, library: str, day: str) -> HttpResponseBase:
    report = _report(request, library, day)
    rows = ([_cell(value) for value in row] for row in report_rows(report.content))
    return csv_export.response(
        rows, filename=f"{report.library.slug}-report-{report.day:%Y-%m-%d}.csv"
    )
