"""The stable CSV URLs: a manager's own libraries only, local dates, the views' filters."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.http import HttpResponseBase
from django.test import Client

from analytics.models import CategoryKind
from reflib.models import ServicePoint
from tests.analytics.conftest import category, record
from tests.conftest import Cast

CSVS = ["transactions", "heatmap", "service-levels", "volume", "read-levels", "question-types"]
JUNE = "from=2026-06-01&to=2026-06-30"


def rows(response: HttpResponseBase) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.reader(io.StringIO(body)))


@pytest.mark.parametrize("name", CSVS)
def test_another_librarys_manager_gets_not_found(
    cast: Cast, other_manager: User, name: str
) -> None:
    record(cast.library, datetime(2026, 6, 3, 15, tzinfo=UTC))
    client = cast.client_for(other_manager)

    assert client.get(f"/analytics/demo/{name}.csv?{JUNE}").status_code == 404
    assert client.get(f"/analytics/other/{name}.csv?{JUNE}").status_code == 200


@pytest.mark.parametrize("name", CSVS)
def test_a_librarian_who_is_not_a_manager_gets_not_found(cast: Cast, name: str) -> None:
    response = cast.client_for(cast.librarian).get(f"/analytics/demo/{name}.csv")

    assert response.status_code == 404


def test_without_a_session_the_csv_asks_to_log_in(cast: Cast) -> None:
    response = Client().get(f"/analytics/demo/heatmap.csv?{JUNE}")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_statistics_page_of_another_library_does_not_exist_for_a_manager(
    cast: Cast, other_manager: User
) -> None:
    client = cast.client_for(other_manager)

    assert client.get("/admin/analytics/transaction/statistics/demo/").status_code == 404
    assert client.get("/admin/analytics/transaction/import/demo/").status_code == 404
    assert client.get("/admin/analytics/transaction/statistics/other/").status_code == 200


def test_a_filter_naming_another_librarys_service_point_is_refused(
    cast: Cast, other_manager: User
) -> None:
    theirs = ServicePoint.objects.create(library=cast.other_library, slug="desk", name="Desk")
    client = cast.client_for(cast.manager)

    response = client.get(f"/analytics/demo/transactions.csv?{JUNE}&service_point={theirs.pk}")

    assert response.status_code == 400
    assert b"service_point" in response.content


@pytest.mark.parametrize(
    "query", ["from=2026-06-31", "from=2026-06-10&to=2026-06-01", "from=2000-01-01&to=2026-06-01"]
)
def test_bad_dates_get_a_clear_error(cast: Cast, query: str) -> None:
    response = cast.client_for(cast.manager).get(f"/analytics/demo/heatmap.csv?{query}")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")


def test_heatmap_csv_has_every_hour_of_the_week_in_local_time(cast: Cast) -> None:
    record(cast.library, datetime(2026, 6, 1, 13, 30, tzinfo=UTC))  # Monday 09:30 in New York
    record(cast.other_library, datetime(2026, 6, 1, 13, 30, tzinfo=UTC))

    table = rows(cast.client_for(cast.manager).get(f"/analytics/demo/heatmap.csv?{JUNE}"))

    assert table[0] == ["weekday", "hour", "count"]
    assert len(table) == 1 + 7 * 24
    assert [row for row in table[1:] if row[2] != "0"] == [["0", "9", "1"]]


def test_transactions_csv_takes_the_filters_and_shows_local_times(cast: Cast) -> None:
    science = ServicePoint.objects.create(library=cast.library, slug="science", name="Science")
    record(cast.library, datetime(2026, 6, 1, 13, 30, tzinfo=UTC), service_point=science)
    record(cast.library, datetime(2026, 6, 2, 13, 30, tzinfo=UTC), format="phone", read_level=2)
    record(cast.library, datetime(2026, 7, 1, 13, 30, tzinfo=UTC))
    phone = category(cast.library, CategoryKind.FORMAT, "phone")
    client = cast.client_for(cast.manager)

    everything = rows(client.get(f"/analytics/demo/transactions.csv?{JUNE}"))
    by_point = rows(
        client.get(f"/analytics/demo/transactions.csv?{JUNE}&service_point={science.pk}")
    )
    by_format = rows(client.get(f"/analytics/demo/transactions.csv?{JUNE}&format={phone.pk}"))

    assert len(everything) == 3
    assert everything[1][1] == "2026-06-01T09:30:00-04:00"
    assert [row[4] for row in by_point[1:]] == ["science"]
    assert [(row[3], row[7]) for row in by_format[1:]] == [("phone", "2")]


def test_service_levels_csv_names_each_measure(cast: Cast) -> None:
    table = rows(cast.client_for(cast.manager).get(f"/analytics/demo/service-levels.csv?{JUNE}"))

    measures = [row[0] for row in table[1:]]
    for name in [
        "chats",
        "abandoned_rate",
        "missed_rate",
        "rollover_share",
        "wait_median_s",
        "wait_p90_s",
        "first_response_median_s",
        "duration_p90_s",
        "rating_mean",
    ]:
        assert name in measures
