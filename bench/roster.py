"""Roster benchmark (SPEC §5): 60 staff, 5 service points, 4 weeks.

    .venv/bin/python -m bench.roster

One run: a fresh PostgreSQL database (migrated), one library in America/New_York with 5
service points, 60 librarians with weekly availability and some approved time off, and 4
shift templates per service point and day (105 a week). Then, each timed as the median of
``--repeat`` runs:

- **generation**: ``roster_generate`` for 4 weeks into an empty roster, against a bare SQL
  ``INSERT ... SELECT`` over ``generate_series`` that computes the same shifts (local wall time
  to UTC with ``AT TIME ZONE``); and a second generation of the same range (creates nothing);
- **auto-fill**: ``autofill_propose`` for the 4 weeks (no SQL baseline: the rule is not SQL);
- **conflicts**: ``roster_conflicts`` over the filled roster (plus a few deliberate clashes),
  against one SQL query that finds double bookings, rest, time off and weekly hours (not
  availability, whose weekly windows and exceptions are not one query);
- **coverage**: ``coverage`` for the 4 weeks, against a bare SQL aggregate of the missing
  staff-hours per service point (the templates do not overlap, so both must agree).

Prints a table and the verdict against the budget (generation, conflicts and coverage each
≤ 1 s); docs/benchmarks.md has the latest numbers.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import time as clock
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from typing import Any, TypeVar

import psycopg

BUDGET_S = 1.0
# SPEC §5 budgets these; auto-fill is measured too, without a budget.
BUDGETED = ("generation", "conflicts", "coverage")
ZONE = "America/New_York"
T = TypeVar("T")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.roster",
        description="Roster generation, conflicts and coverage against bare SQL (SPEC §5).",
    )
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="server")
    parser.add_argument("--database", default="reflib_bench_roster", help="dropped and recreated")
    parser.add_argument("--staff", type=int, default=60)
    parser.add_argument("--points", type=int, default=5)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement")
    return parser.parse_args(argv)


def fresh_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def setup_django(server: str, name: str) -> None:
    os.environ.update(
        DATABASE_URL=f"{server}/{name}",
        DJANGO_SETTINGS_MODULE="reflib.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="localhost",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed(
    work: Callable[[], T], repeat: int, reset: Callable[[], None] | None = None
) -> tuple[float, T]:
    """Median seconds of ``repeat`` runs of ``work`` (``reset`` before each, untimed)."""
    times: list[float] = []
    result: Any = None
    for _ in range(repeat):
        if reset is not None:
            reset()
        started = clock.perf_counter()
        result = work()
        times.append(clock.perf_counter() - started)
    return statistics.median(times), result


GENERATE_SQL = """
INSERT INTO staffing_shift
    (library_id, service_point_id, template_id, date, start, "end", min_staff, max_staff,
     is_cancelled)
SELECT t.library_id, t.service_point_id, t.id, d::date,
       (d::date + t.start_time) AT TIME ZONE %(zone)s,
       ((CASE WHEN t.end_time <= t.start_time THEN d::date + 1 ELSE d::date END)
        + t.end_time) AT TIME ZONE %(zone)s,
       t.min_staff, t.max_staff, false
FROM staffing_shifttemplate t
CROSS JOIN generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
WHERE t.library_id = %(library)s AND t.is_active
  AND extract(isodow FROM d) - 1 = t.weekday
ON CONFLICT ON CONSTRAINT unique_shift_per_template DO NOTHING
"""

CONFLICTS_SQL = """
WITH a AS (
    SELECT a.id, a.user_id, s.start, s."end", s.date, s.library_id
    FROM staffing_assignment a JOIN staffing_shift s ON s.id = a.shift_id
    WHERE a.status = 'assigned' AND NOT s.is_cancelled
      AND s."end" > %(lo)s AND s.start < %(hi)s
), mine AS (
    SELECT * FROM a WHERE library_id = %(library)s AND date BETWEEN %(first)s AND %(last)s
), weeks AS (
    SELECT user_id, date_trunc('week', date) AS week,
           sum(extract(epoch FROM "end" - start)) / 3600 AS hours
    FROM a WHERE library_id = %(library)s GROUP BY 1, 2
)
SELECT DISTINCT m.id, 'double_booking' FROM mine m JOIN a o
    ON o.user_id = m.user_id AND o.id <> m.id AND o.start < m."end" AND m.start < o."end"
UNION
SELECT DISTINCT m.id, 'rest' FROM mine m JOIN a o
    ON o.user_id = m.user_id AND o.date <> m.date
   AND NOT (o.start < m."end" AND m.start < o."end")
   AND greatest(m.start - o."end", o.start - m."end") < %(rest)s
UNION
SELECT DISTINCT m.id, 'time_off' FROM mine m JOIN staffing_timeoffrequest t
    ON t.user_id = m.user_id AND t.status = 'approved' AND t.start < m."end" AND m.start < t."end"
UNION
SELECT m.id, 'weekly_hours' FROM mine m JOIN weeks w
    ON w.user_id = m.user_id AND w.week = date_trunc('week', m.date) AND w.hours > %(limit)s
"""

COVERAGE_SQL = """
SELECT p.slug, coalesce(sum(extract(epoch FROM s."end" - s.start) / 3600
                            * greatest(s.min_staff - s.rostered, 0)), 0)
FROM reflib_servicepoint p
LEFT JOIN (
    SELECT s.*, count(a.id) FILTER (WHERE a.status = 'assigned') AS rostered
    FROM staffing_shift s LEFT JOIN staffing_assignment a ON a.shift_id = s.id
    WHERE s.library_id = %(library)s AND NOT s.is_cancelled
      AND s.date BETWEEN %(first)s AND %(last)s
    GROUP BY s.id
) s ON s.service_point_id = p.id
WHERE p.library_id = %(library)s
GROUP BY p.slug ORDER BY p.slug
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    fresh_database(args.pg, args.database)
    setup_django(args.pg, args.database)

    from django.contrib.auth.models import User
    from django.db import connection

    from reflib.models import Membership, Role, StaffProfile
    from reflib.services import library_upsert, service_point_ensure
    from staffing.autofill import autofill_propose
    from staffing.conflicts import policy_for, roster_conflicts
    from staffing.coverage import coverage
    from staffing.models import (
        Assignment,
        Availability,
        RequestStatus,
        Shift,
        ShiftTemplate,
        TimeOffRequest,
    )
    from staffing.services import roster_generate
    from staffing.wallclock import local_instant

    rng = random.Random(20261130)
    library = library_upsert(slug="bench", name="Bench Library", timezone=ZONE)
    points = [
        service_point_ensure(library=library, slug=f"desk-{n}", name=f"Desk {n}")
        for n in range(args.points)
    ]
    users = User.objects.bulk_create(User(username=f"staff{n:03d}") for n in range(args.staff))
    Membership.objects.bulk_create(
        Membership(user=user, library=library, role=Role.LIBRARIAN) for user in users
    )
    StaffProfile.objects.bulk_create(
        StaffProfile(user=user, display_name=f"Staff {n}") for n, user in enumerate(users)
    )
    ShiftTemplate.objects.bulk_create(
        ShiftTemplate(
            library=library,
            service_point=point,
            weekday=day,
            start_time=start,
            end_time=end,
            min_staff=2,
            max_staff=3,
        )
        for point in points
        for day in range(7)
        for start, end in [
            (time(8), time(12)),
            (time(12), time(16)),
            (time(16), time(20)),
            (time(20), time(23)),
        ]
    )
    Availability.objects.bulk_create(
        Availability(
            library=library,
            user=user,
            weekday=day,
            start_time=time(start),
            end_time=time(start + 10),
        )
        for user in users
        for day in rng.sample(range(7), 5)
        for start in [rng.choice([8, 10, 12, 13])]
    )
    today = datetime.now().date()  # noqa: DTZ005 - only picks a future Monday
    first = today + timedelta(days=14 - today.weekday())
    last = first + timedelta(weeks=args.weeks, days=-1)
    TimeOffRequest.objects.bulk_create(
        TimeOffRequest(
            library=library,
            user=user,
            start=local_instant(first + timedelta(days=offset), time(0), library.zone),
            end=local_instant(first + timedelta(days=offset + 3), time(0), library.zone),
            status=RequestStatus.APPROVED,
        )
        for user in rng.sample(users, 10)
        for offset in [rng.randrange(args.weeks * 7)]
    )
    before = local_instant(first, time(0), library.zone) - timedelta(days=1)
    sql_params: dict[str, Any] = {"zone": ZONE, "first": first, "last": last, "library": library.pk}

    def empty_roster() -> None:
        Shift.objects.filter(library=library).delete()

    def bare_generate() -> int:
        with connection.cursor() as cursor:
            cursor.execute(GENERATE_SQL, sql_params)
            return cursor.rowcount

    def reflib_generate() -> int:
        return len(roster_generate(library=library, start=first, end=last, now=before).created)

    rows: list[tuple[str, float, float | None, str]] = []
    sql_s, sql_created = timed(bare_generate, args.repeat, empty_roster)
    gen_s, created = timed(reflib_generate, args.repeat, empty_roster)
    assert created == sql_created, (created, sql_created)
    rows.append(("generation (empty roster)", gen_s, sql_s, f"{created} shifts"))
    again_s, again = timed(reflib_generate, args.repeat)
    assert again == 0
    rows.append(("generation again (no-op)", again_s, None, "0 created"))

    fill_s, proposals = timed(
        lambda: autofill_propose(library=library, start=first, end=last, now=before), args.repeat
    )
    Assignment.objects.bulk_create(
        Assignment(shift_id=p.shift_id, user_id=p.user_id) for p in proposals
    )
    rows.append(("auto-fill proposal", fill_s, None, f"{len(proposals)} proposed"))
    # Some clashes for the detectors to find: people put on a second, overlapping shift.
    shifts = list(Shift.objects.filter(library=library))
    on = set(Assignment.objects.values_list("shift_id", "user_id"))
    extra = [
        Assignment(shift=shift, user=user)
        for shift, user in zip(rng.sample(shifts, 40), rng.sample(users, 40), strict=True)
        if (shift.pk, user.pk) not in on
    ]
    Assignment.objects.bulk_create(extra)
    assignments = Assignment.objects.filter(status="assigned").count()

    policy = policy_for(library)
    lo, hi = (
        local_instant(first, time(0), library.zone) - timedelta(days=8),
        local_instant(last, time(0), library.zone) + timedelta(days=9),
    )
    conflict_params: dict[str, Any] = {
        **sql_params,
        "lo": lo,
        "hi": hi,
        "rest": timedelta(hours=float(policy.min_rest_hours)),
        "limit": float(policy.weekly_hour_limit),
    }

    def bare_conflicts() -> set[tuple[int, str]]:
        with connection.cursor() as cursor:
            cursor.execute(CONFLICTS_SQL, conflict_params)
            return set(cursor.fetchall())

    sql_s, sql_found = timed(bare_conflicts, args.repeat)
    conflicts_s, found = timed(
        lambda: roster_conflicts(library=library, start=first, end=last), args.repeat
    )
    ours = {(pk, c.kind.value) for pk, items in found.items() for c in items}
    without_availability = {item for item in ours if item[1] != "outside_availability"}
    assert without_availability == sql_found, (len(without_availability), len(sql_found))
    rows.append(
        (
            "conflicts",
            conflicts_s,
            sql_s,
            f"{assignments} assignments, {len(ours)} conflicts "
            f"({len(ours) - len(without_availability)} availability)",
        )
    )

    def bare_coverage() -> dict[str, float]:
        with connection.cursor() as cursor:
            cursor.execute(COVERAGE_SQL, sql_params)
            return {slug: float(hours) for slug, hours in cursor.fetchall()}

    sql_s, sql_missing = timed(bare_coverage, args.repeat)
    coverage_s, report = timed(
        lambda: coverage(library=library, start=first, end=last), args.repeat
    )
    missing = {point.service_point.slug: point.missing_staff_hours for point in report}
    assert missing == sql_missing, (missing, sql_missing)
    rows.append(("coverage", coverage_s, sql_s, f"{sum(missing.values()):g} staff-hours missing"))

    print(
        f"roster: {args.staff} staff, {args.points} service points, {args.weeks} weeks "
        f"({first} to {last}), median of {args.repeat} runs, PostgreSQL"
    )
    print(f"{'measurement':<28} {'reflib':>9} {'bare SQL':>9} {'ratio':>7}  notes")
    verdict = True
    for name, seconds, baseline, note in rows:
        base = f"{baseline * 1000:7.1f}ms" if baseline is not None else f"{'-':>9}"
        ratio = f"{seconds / baseline:6.1f}x" if baseline else f"{'-':>7}"
        print(f"{name:<28} {seconds * 1000:7.1f}ms {base} {ratio}  {note}")
        if name.startswith(BUDGETED):
            verdict = verdict and seconds <= BUDGET_S
    print(f"budget (generation, conflicts, coverage each ≤ {BUDGET_S:g} s): ", end="")
    print("met" if verdict else "MISSED")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
