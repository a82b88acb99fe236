"""Manager analytics benchmark (SPEC §5): each manager view against the bare SQL it needs.

    .venv/bin/python -m bench.analytics --rows 1000000

One run: a fresh PostgreSQL database (``--database``, dropped and created with ``createdb``,
migrated), one library with its lists seeded through reflib's services, ``--rows``
transactions over one year inserted in SQL (a third of them chats with waits, outcomes and
ratings), ``ANALYZE``. Then, alternately, each manager view is requested through Django's full
stack (middleware, session, admin, template or CSV rendering; production settings) and the
hand-written SQL aggregates that view needs are run on a bare psycopg connection. Each round's
ratio is its view against the bare SQL run right after it, in the same state of the machine;
the verdict is the median of ``--repeat`` rounds' ratios, shown with their middle half (25th to
75th percentile) and, beside it, the ratio of the two medians. Budget: view time at most 1.5
times the bare SQL.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

BUDGET_RATIO = 1.5
TIMEZONE = "America/New_York"
YEAR_START = date(2025, 1, 1)
YEAR_END = date(2025, 12, 31)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.analytics",
        description="Each manager analytics view against the bare SQL aggregate it needs.",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="transactions")
    # Single timings on a shared 2-core machine vary by a fifth; the median of fewer rounds moved
    # a 28-day ratio by 0.15 from one run to the next (docs/benchmarks.md).
    parser.add_argument("--repeat", type=int, default=31, help="rounds per view (median)")
    parser.add_argument("--database", default="reflib_bench_analytics", help="dropped, created")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="reuse the database if it is full")
    return parser.parse_args(argv)


def create_database(pg: str, name: str, *, keep: bool = False) -> None:
    """Drop and create ``name``; with ``keep``, create it only if it does not exist."""
    parts = urlsplit(pg)
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    args += ["-U", parts.username or "postgres"]
    if keep:
        listed = subprocess.run(
            ["psql", *args, "-d", "postgres", "-tAc", "SELECT datname FROM pg_database"],
            check=True,
            capture_output=True,
            text=True,
        )
        if name in listed.stdout.split():
            return
    else:
        subprocess.run(["dropdb", "--if-exists", *args, name], check=True)
    subprocess.run(["createdb", *args, name], check=True)


def configure(pg: str, name: str) -> None:
    """Production settings against the bench database; then Django is set up."""
    os.environ.update(
        DATABASE_URL=f"{pg}/{name}",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="testserver",
        REFLIB_HTTPS="0",
        REFLIB_STATIC_ROOT=tempfile.mkdtemp(prefix="reflib-bench-static-"),
        DJANGO_SETTINGS_MODULE="reflib.settings",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def seed(rows: int) -> None:
    from django.db import connection

    from analytics.services import categories_ensure_defaults
    from reflib.models import Role
    from reflib.services import library_upsert, service_point_ensure, staff_upsert

    library = library_upsert(
        slug="bench", name="Bench Library", timezone=TIMEZONE, queue_slugs=["general", "law"]
    )
    points = [
        service_point_ensure(library=library, slug=slug, name=slug.title())
        for slug in ("main", "science", "chat")
    ]
    staff = staff_upsert(
        username="bench-manager", library=library, role=Role.MANAGER, display_name="Bench"
    )
    categories_ensure_defaults(library=library)
    start = datetime.combine(YEAR_START, datetime.min.time(), tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            """
            WITH lists AS (
              SELECT
                (SELECT array_agg(id ORDER BY position) FROM analytics_category
                  WHERE library_id = %(library)s AND kind = 'format') AS formats,
                (SELECT array_agg(id ORDER BY position) FROM analytics_category
                  WHERE library_id = %(library)s AND kind = 'question_type') AS types,
                (SELECT array_agg(id ORDER BY id) FROM reflib_queue
                  WHERE library_id = %(library)s) AS queues
            ), raw AS (
              SELECT n, random() AS r1, random() AS r2, random() AS r3, random() AS r4
              FROM generate_series(1, %(rows)s) AS n
            )
            INSERT INTO analytics_transaction (
              library_id, service_point_id, queue_id, format_id, started_at, ended_at,
              local_date, local_weekday, local_hour, question_type_id, read_level, note,
              staff_id, wait_s, first_response_s, duration_s, outcome, rolled_over, rating, source,
              created_at
            )
            SELECT
              %(library)s,
              CASE WHEN r1 < 0.33 THEN %(chat_point)s WHEN r2 < 0.7 THEN %(main)s
                   ELSE %(science)s END,
              CASE WHEN r1 < 0.33 THEN queues[1 + (r2 < 0.2)::int] END,
              CASE WHEN r1 < 0.33 THEN formats[1] ELSE formats[2 + floor(r3 * 3)::int] END,
              t, t + interval '5 minutes',
              (t AT TIME ZONE %(tz)s)::date,
              extract(isodow FROM t AT TIME ZONE %(tz)s) - 1,
              extract(hour FROM t AT TIME ZONE %(tz)s),
              types[1 + floor(r4 * 6)::int],
              1 + floor(r3 * r3 * 5)::int,
              '',
              %(staff)s,
              CASE WHEN r1 < 0.33 THEN 5 + floor(r4 * 300)::int END,
              CASE WHEN r1 < 0.33 AND r2 < 0.9 THEN 10 + floor(r4 * 320)::int END,
              CASE WHEN r1 < 0.33 AND r2 < 0.9 THEN 60 + floor(r3 * 1500)::int END,
              CASE WHEN r1 >= 0.33 THEN ''
                   WHEN r2 < 0.9 THEN 'answered' WHEN r2 < 0.95 THEN 'abandoned'
                   WHEN r2 < 0.97 THEN 'missed' WHEN r2 < 0.99 THEN 'ticket'
                   ELSE 'declined' END,
              r1 < 0.33 AND r3 < 0.05,
              CASE WHEN r1 < 0.33 AND r4 < 0.3 THEN 1 + floor(r3 * 5)::int END,
              CASE WHEN r1 < 0.33 THEN 'chat' ELSE 'tally' END,
              t
            FROM raw, lists,
              LATERAL (SELECT %(start)s::timestamptz + (n::bigint * 7919 %% 365)
                         * interval '1 day'
                       + interval '13 hours' + r2 * interval '11 hours' AS t) AS moment
            """,
            {
                "library": library.pk,
                "rows": rows,
                "chat_point": points[2].pk,
                "main": points[0].pk,
                "science": points[1].pk,
                "staff": staff.pk,
                "start": start,
                "tz": TIMEZONE,
            },
        )
        # A table in use is vacuumed by autovacuum; a fresh bulk load is not yet.
        cursor.execute("VACUUM ANALYZE analytics_transaction")


@dataclass
class Case:
    name: str
    url: str
    bare: Callable[[], None]


def cases(library_id: int, bare_cursor: object, first: date, last: date) -> list[Case]:
    cursor: object = bare_cursor
    frm, to = first.isoformat(), last.isoformat()
    zone = ZoneInfo(TIMEZONE)
    low = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    high = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    params = {"lib": library_id, "low": low, "high": high}
    sql = {
        "volume": """SELECT t.local_date, count(*)
            FROM analytics_transaction t WHERE
            t.library_id = %(lib)s
              AND t.started_at >= %(low)s AND t.started_at < %(high)s GROUP BY 1""",
        "heatmap": """SELECT t.local_weekday, t.local_hour, count(*)
            FROM analytics_transaction t WHERE
            t.library_id = %(lib)s
              AND t.started_at >= %(low)s AND t.started_at < %(high)s GROUP BY 1, 2""",
        "read": """SELECT t.read_level, count(*) FROM analytics_transaction t WHERE
            t.library_id = %(lib)s
              AND t.started_at >= %(low)s AND t.started_at < %(high)s
            GROUP BY 1""",
        "types": """SELECT c.id, c.label, sum(n) FROM (
              SELECT t.question_type_id, count(*) AS n FROM analytics_transaction t WHERE
              t.library_id = %(lib)s
                AND t.started_at >= %(low)s AND t.started_at < %(high)s GROUP BY 1
            ) AS recorded
            LEFT JOIN analytics_category q ON q.id = recorded.question_type_id
            LEFT JOIN analytics_category c ON c.id = q.current_id GROUP BY 1, 2""",
        # The statistics page's two scans: by local date and hour (volume and heat map), and
        # by READ level and question type (both distributions).
        "day_hour": """SELECT t.local_date, t.local_hour, count(*)
            FROM analytics_transaction t WHERE
            t.library_id = %(lib)s
              AND t.started_at >= %(low)s AND t.started_at < %(high)s GROUP BY 1, 2""",
        "read_types": """SELECT recorded.read_level, c.id, c.label, sum(n) FROM (
              SELECT t.read_level, t.question_type_id, count(*) AS n
              FROM analytics_transaction t WHERE
              t.library_id = %(lib)s
                AND t.started_at >= %(low)s AND t.started_at < %(high)s GROUP BY 1, 2
            ) AS recorded
            LEFT JOIN analytics_category q ON q.id = recorded.question_type_id
            LEFT JOIN analytics_category c ON c.id = q.current_id GROUP BY 1, 2, 3""",
        "roster": """SELECT s.start, s."end" FROM staffing_assignment a
            JOIN staffing_shift s ON s.id = a.shift_id
            WHERE s.library_id = %(lib)s AND NOT s.is_cancelled AND a.status = 'assigned'
              AND s.start < %(high)s AND s."end" > %(low)s""",
        "levels": """SELECT count(*), count(*) FILTER (WHERE t.rolled_over), avg(t.rating),
            count(*) FILTER (WHERE t.outcome = 'answered'),
            count(*) FILTER (WHERE t.outcome = 'abandoned'),
            count(*) FILTER (WHERE t.outcome = 'missed'),
            count(*) FILTER (WHERE t.outcome = 'ticket'),
            count(*) FILTER (WHERE t.outcome = 'declined'),
            count(t.wait_s) FILTER (WHERE t.outcome = 'answered'),
            percentile_cont(0.5) WITHIN GROUP (ORDER BY t.wait_s)
              FILTER (WHERE t.outcome = 'answered'),
            percentile_cont(0.9) WITHIN GROUP (ORDER BY t.wait_s)
              FILTER (WHERE t.outcome = 'answered'),
            count(t.first_response_s),
            percentile_cont(0.5) WITHIN GROUP (ORDER BY t.first_response_s),
            percentile_cont(0.9) WITHIN GROUP (ORDER BY t.first_response_s),
            count(t.duration_s) FILTER (WHERE t.outcome = 'answered'),
            percentile_cont(0.5) WITHIN GROUP (ORDER BY t.duration_s)
              FILTER (WHERE t.outcome = 'answered'),
            percentile_cont(0.9) WITHIN GROUP (ORDER BY t.duration_s)
              FILTER (WHERE t.outcome = 'answered'),
            count(*) FILTER (WHERE t.rating = 1), count(*) FILTER (WHERE t.rating = 2),
            count(*) FILTER (WHERE t.rating = 3), count(*) FILTER (WHERE t.rating = 4),
            count(*) FILTER (WHERE t.rating = 5)
            FROM analytics_transaction t JOIN analytics_category f ON f.id = t.format_id
            WHERE
            t.library_id = %(lib)s
              AND t.started_at >= %(low)s AND t.started_at < %(high)s
              AND f.current_id IN (SELECT current_id FROM analytics_category
              WHERE library_id = %(lib)s AND kind = 'format' AND slug = 'chat')
              AND t.outcome <> ''""",
    }

    def run(*names: str) -> Callable[[], None]:
        def bare() -> None:
            for name in names:
                cursor.execute(sql[name], params)  # type: ignore[attr-defined]
                cursor.fetchall()  # type: ignore[attr-defined]

        return bare

    query = f"from={frm}&to={to}"
    return [
        Case(
            "statistics page (all tables)",
            f"/admin/analytics/transaction/statistics/bench/?{query}",
            run("day_hour", "read_types", "levels", "roster"),
        ),
        Case("volume.csv", f"/analytics/bench/volume.csv?{query}", run("volume")),
        Case("heatmap.csv", f"/analytics/bench/heatmap.csv?{query}", run("heatmap")),
        Case("read-levels.csv", f"/analytics/bench/read-levels.csv?{query}", run("read")),
        Case("question-types.csv", f"/analytics/bench/question-types.csv?{query}", run("types")),
        Case(
            "service-levels.csv",
            f"/analytics/bench/service-levels.csv?{query}",
            run("levels"),
        ),
        Case("coverage.csv", f"/analytics/bench/coverage.csv?{query}", run("roster", "heatmap")),
    ]


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    create_database(options.pg, options.database, keep=options.keep)
    configure(options.pg, options.database)
    import psycopg
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from analytics.models import Transaction
    from reflib.models import Library

    call_command("migrate", verbosity=0, interactive=False)  # nothing to do on a kept database
    if not options.keep or not Library.objects.filter(slug="bench").exists():
        began = time.perf_counter()
        seed(options.rows)
        print(f"seeded {options.rows:,} transactions in {time.perf_counter() - began:.0f} s")
    library = Library.objects.get(slug="bench")
    count = Transaction.objects.filter(library=library).count()
    client = Client()
    client.force_login(User.objects.get(username="bench-manager"))

    def request(url: str) -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        if response.streaming:
            b"".join(response.streaming_content)  # type: ignore[attr-defined]
        else:
            response.content  # noqa: B018 - rendered on access

    worst = 0.0
    # Planned at every execution with its values, as Django's queries are (psycopg would
    # otherwise prepare a repeated statement and may settle on a generic plan).
    bare_url = f"{options.pg}/{options.database}"
    with psycopg.connect(bare_url, prepare_threshold=None) as bare_connection:
        cursor = bare_connection.cursor()
        # The whole year (the worst case), then the page's default range (the last 28 days).
        for first, last in [(YEAR_START, YEAR_END), (YEAR_END - timedelta(days=27), YEAR_END)]:
            rows = []
            for case in cases(library.pk, cursor, first, last):
                request(case.url)  # warm both paths once
                case.bare()
                view_times, bare_times = [], []
                for _ in range(options.repeat):
                    view_times.append(timed(partial(request, case.url)))
                    bare_times.append(timed(case.bare))
                view, bare = statistics.median(view_times), statistics.median(bare_times)
                paired = [v / b for v, b in zip(view_times, bare_times, strict=True)]
                low, middle, high = (
                    statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
                )
                rows.append((case.name, view, bare, view / bare, low, middle, high))
            print(
                f"\n{count:,} transactions in one library; range {first} to {last}; "
                f"median of {options.repeat}\n"
            )
            print(
                f"{'view':32} {'view ms':>9} {'bare SQL ms':>12} {'medians':>8} {'ratio':>7}"
                f" {'middle half':>11}  budget: ratio <= {BUDGET_RATIO}"
            )
            for name, view, bare, medians, low, middle, high in rows:
                worst = max(worst, middle)
                verdict = "ok" if middle <= BUDGET_RATIO else "MISSES"
                print(
                    f"{name:32} {view * 1000:9.1f} {bare * 1000:12.1f} {medians:8.2f} {middle:7.2f}"
                    f" {low:5.2f}-{high:<5.2f}  {verdict}"
                )
    return 0 if worst <= BUDGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
