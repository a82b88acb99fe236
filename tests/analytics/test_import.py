"""Importing transactions: dry run, every bad row by line, skip-bad, no doubles, round trip."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from analytics.csv_export import transaction_rows
from analytics.imports import import_transactions, parse_mapping
from analytics.models import CategoryKind, Outcome, Source, Transaction
from analytics.selectors import Scope
from analytics.services import tags_resolve
from reflib.models import ServicePoint
from tests.analytics.conftest import category, record
from tests.conftest import Cast

HEADER = "started_at,format,service_point,question_type,read_level,note\n"


def write(tmp_path: Path, text: str, name: str = "stats.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(path: Path, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_transactions", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def desk(cast: Cast) -> ServicePoint:
    return ServicePoint.objects.create(library=cast.library, slug="main-desk", name="Main desk")


GOOD = (
    HEADER
    + "2026-03-02 10:15,desk,main-desk,directional,1,\n"
    + "2026-03-02T10:20:00-05:00,Phone,Main desk,Policy,2,fines\n"
    + '2026-03-09 10:15,email,,,,"two, lines\nof note"\n'
)


def test_a_good_file_imports_every_row_with_local_times(
    cast: Cast, desk: ServicePoint, tmp_path: Path
) -> None:
    out, _err = run(write(tmp_path, GOOD), "--library", "demo")

    assert "3 rows: 3 imported" in out
    stored = list(Transaction.objects.order_by("started_at"))
    # No offset: New York time (EST on 2 March, EDT on 9 March, after the change).
    assert stored[0].started_at == datetime(2026, 3, 2, 15, 15, tzinfo=UTC)
    assert stored[1].started_at == datetime(2026, 3, 2, 15, 20, tzinfo=UTC)
    assert stored[2].started_at == datetime(2026, 3, 9, 14, 15, tzinfo=UTC)
    assert stored[1].format == category(cast.library, CategoryKind.FORMAT, "phone")
    assert stored[1].service_point == desk
    assert stored[1].read_level == 2
    assert stored[2].note == "two, lines\nof note"
    assert {row.source for row in stored} == {Source.IMPORT}


def test_a_dry_run_reports_and_imports_nothing(
    cast: Cast, desk: ServicePoint, tmp_path: Path
) -> None:
    out, _err = run(write(tmp_path, GOOD), "--library", "demo", "--dry-run")

    assert "3 would be imported" in out
    assert not Transaction.objects.exists()


BAD = (
    HEADER
    + "2026-03-02 10:15,desk,main-desk,directional,1,\n"
    + "yesterday,desk,,,,\n"
    + "2026-03-02 10:16,fax,,,,\n"
    + "2026-03-02 10:17,desk,,,7,\n"
    + "2026-03-02 10:18,desk,annex,,,\n"
    + "2026-03-02 10:19,desk,,,2,\n"
)


def test_any_bad_row_imports_nothing_and_every_bad_row_is_reported_by_line(
    cast: Cast, desk: ServicePoint, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="Nothing imported: 4 bad rows of 6"):
        _out, _err = run(write(tmp_path, BAD), "--library", "demo")

    report = import_transactions(stream=io.StringIO(BAD), library=cast.library)
    assert [(bad.line, bad.reason) for bad in report.bad] == [
        (3, "started_at “yesterday” is not a date and time"),
        (4, "unknown format “fax”"),
        (5, "read_level must be 1 to 6"),
        (6, "unknown service_point “annex”"),
    ]
    assert not Transaction.objects.exists()


def test_line_numbers_count_physical_lines_of_multi_line_cells(cast: Cast) -> None:
    text = HEADER + '2026-03-02 10:15,desk,,,,"a\nlong\nnote"\n2026-03-02 10:16,fax,,,,\n'

    report = import_transactions(stream=io.StringIO(text), library=cast.library, dry_run=True)

    assert [bad.line for bad in report.bad] == [5]


def test_skip_bad_imports_the_good_rows_and_reports_the_rest(
    cast: Cast, desk: ServicePoint, tmp_path: Path
) -> None:
    out, err = run(write(tmp_path, BAD), "--library", "demo", "--skip-bad")

    assert "6 rows: 2 imported, 0 already present, 4 bad" in out
    assert "line 3:" in err
    assert "line 6:" in err
    assert Transaction.objects.count() == 2


def test_importing_the_same_file_again_adds_nothing(
    cast: Cast, desk: ServicePoint, tmp_path: Path
) -> None:
    # Two identical rows are two questions; both stay two on every import.
    text = GOOD + "2026-03-02 10:15,desk,main-desk,directional,1,\n"
    path = write(tmp_path, text)
    run(path, "--library", "demo")

    out, _err = run(path, "--library", "demo")

    assert "4 rows: 0 imported, 4 already present" in out
    assert Transaction.objects.count() == 4


def test_export_then_import_is_an_exact_round_trip(cast: Cast, desk: ServicePoint) -> None:
    when = datetime(2026, 6, 3, 16, 5, 7, tzinfo=UTC)
    reference = category(cast.library, CategoryKind.QUESTION_TYPE, "reference")
    chat = record(
        cast.library,
        when,
        format="chat",
        source=Source.CHAT,
        queue=cast.queue,
        outcome=Outcome.ANSWERED,
        wait_s=31,
        first_response_s=40,
        duration_s=600,
        rolled_over=True,
        rating=4,
        read_level=3,
        staff=cast.librarian,
        ended_at=datetime(2026, 6, 3, 16, 15, 7, tzinfo=UTC),
    )
    chat.tags.set(tags_resolve(library=cast.library, names=["ill", "Genealogy"]))
    record(cast.library, when, service_point=desk, question_type=reference, note='He said "hi", ok')
    scope = Scope(library=cast.library, start=date(2026, 6, 1), end=date(2026, 6, 30))
    exported = _csv(scope)

    # Into the same library: everything is already there.
    again = import_transactions(stream=io.StringIO(exported), library=cast.library)
    assert (again.imported, again.already_present, again.bad) == (0, 2, [])
    # Emptied, then imported: the export is the same, byte for byte.
    Transaction.objects.all().delete()
    restored = import_transactions(stream=io.StringIO(exported), library=cast.library)
    assert (restored.imported, restored.bad) == (2, [])
    assert _csv(scope) == exported


def _csv(scope: Scope) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(transaction_rows(scope))
    return buffer.getvalue()


LIBINSIGHT = (
    "Entry ID,Date,Time,Question Type,Format,READ Scale,Notes\n"
    "101,03/02/2026,2:30 PM,Directional,Desk,1,\n"
    "102,03/02/2026,2:45 PM,Reference,Phone,3,database help\n"
)


def test_a_libinsight_export_imports_through_a_mapping(cast: Cast, tmp_path: Path) -> None:
    path = write(tmp_path, LIBINSIGHT)
    maps = [
        "Entry ID=key",
        "Date=date",
        "Time=time",
        "Question Type=question_type",
        "Format=format",
        "READ Scale=read_level",
        "Notes=note",
    ]
    args = [arg for item in maps for arg in ("--map", item)]

    out, _err = run(path, "--library", "demo", *args)
    again, _err = run(path, "--library", "demo", *args)

    assert "2 imported" in out
    assert "2 already present" in again
    second = Transaction.objects.get(import_key="102")
    assert second.started_at == datetime(2026, 3, 2, 19, 45, tzinfo=UTC)
    assert second.question_type == category(cast.library, CategoryKind.QUESTION_TYPE, "reference")


def test_unknown_library_mapping_or_missing_file_are_clear_errors(
    cast: Cast, tmp_path: Path
) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(CommandError, match="No library"):
        run(path, "--library", "nowhere")
    with pytest.raises(CommandError, match="SOURCE=FIELD"):
        run(path, "--library", "demo", "--map", "Date=when")
    with pytest.raises(CommandError, match="Cannot read"):
        run(tmp_path / "missing.csv", "--library", "demo")
    with pytest.raises(CommandError, match="no format column"):
        run(write(tmp_path, "started_at\n2026-03-02 10:15\n", "x.csv"), "--library", "demo")
    assert parse_mapping(["", "A=note"]) == {"A": "note"}


def test_the_admin_import_checks_first_and_then_imports(cast: Cast, desk: ServicePoint) -> None:
    client = cast.client_for(cast.manager)
    url = "/admin/analytics/transaction/import/demo/"

    def upload(text: str, **options: str) -> object:
        data = {"file": SimpleUploadedFile("stats.csv", text.encode()), **options}
        return client.post(url, data)

    checked = upload(BAD, dry_run="on")
    assert b"line 4: unknown format" in checked.content  # type: ignore[attr-defined]
    assert not Transaction.objects.exists()
    refused = upload(BAD)
    assert b"Nothing imported" in refused.content  # type: ignore[attr-defined]
    assert not Transaction.objects.exists()
    done = upload(GOOD)
    assert done.status_code == 302  # type: ignore[attr-defined]
    assert Transaction.objects.count() == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\n", b"The file is empty."),
        (b"\xff\xfe\x00bad", b"not UTF-8"),
        (b"when,what\n2026-03-02,x\n", b"no format column"),
    ],
)
def test_the_admin_import_explains_a_file_it_cannot_read(
    cast: Cast, content: bytes, message: bytes
) -> None:
    client = cast.client_for(cast.manager)

    response = client.post(
        "/admin/analytics/transaction/import/demo/",
        {"file": SimpleUploadedFile("stats.csv", content), "dry_run": "on"},
    )

    assert response.status_code == 200
    assert message in response.content
