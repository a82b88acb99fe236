"""Coverage: when a service point has fewer people rostered than its shifts' minimum.

Where shifts of one service point overlap, their minimums add up (two desks' worth of
staffing in the same hour need both), and so do the people on them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, Q

from reflib.models import Library, ServicePoint
from staffing import wallclock
from staffing.models import AssignmentStatus, Shift


@dataclass(frozen=True)
class Gap:
    """A stretch of time in which ``rostered`` people cover a need of ``required``."""

    service_point: ServicePoint
    start: datetime
    end: datetime
    required: int
    rostered: int

    @property
    def missing(self) -> int:
        return self.required - self.rostered

    @property
    def hours(self) -> float:
        return wallclock.hours(self.start, self.end)

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(self.service_point.library.zone)

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(self.service_point.library.zone)


@dataclass
class PointCoverage:
    service_point: ServicePoint
    gaps: list[Gap] = field(default_factory=list)

    @property
    def hours_below_minimum(self) -> float:
        """Clock hours in which the service point is below its minimum."""
        return sum(gap.hours for gap in self.gaps)

    @property
    def missing_staff_hours(self) -> float:
        """Staff-hours still to roster to reach the minimum everywhere."""
        return sum(gap.hours * gap.missing for gap in self.gaps)


def coverage(*, library: Library, start: date, end: date) -> list[PointCoverage]:
    """Coverage of every active service point of ``library`` over shifts starting on local
    dates ``start`` to ``end``; service points without gaps are listed with none."""
    shifts = (
        Shift.objects.filter(
            library=library, is_cancelled=False, date__gte=start, date__lte=end, min_staff__gt=0
        )
        .annotate(
            rostered=Count("assignments", filter=Q(assignments__status=AssignmentStatus.ASSIGNED))
        )
        .values_list("service_point_id", "start", "end", "min_staff", "rostered")
    )
    changes: dict[int, dict[datetime, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for point_id, begin, finish, required, rostered in shifts:
        changes[point_id][begin][0] += required
        changes[point_id][begin][1] += rostered
        changes[point_id][finish][0] -= required
        changes[point_id][finish][1] -= rostered
    points = (
        ServicePoint.objects.filter(library=library)
        .filter(Q(is_active=True) | Q(pk__in=list(changes)))
        .select_related("library")
    )
    report = []
    for point in points.order_by("name"):
        result = PointCoverage(service_point=point)
        required = rostered = 0
        moments = sorted(changes.get(point.pk, {}).items())
        for index, (moment, (add_required, add_rostered)) in enumerate(moments[:-1]):
            required += add_required
            rostered += add_rostered
            if rostered >= required:
                continue
            until = moments[index + 1][0]
            last = result.gaps[-1] if result.gaps else None
            if (
                last is not None
                and last.end == moment
                and (last.required, last.rostered) == (required, rostered)
            ):
                result.gaps[-1] = Gap(point, last.start, until, required, rostered)
            else:
                result.gaps.append(Gap(point, moment, until, required, rostered))
        report.append(result)
    return report


def coverage_week(*, library: Library, week_start: date) -> list[PointCoverage]:
    """Coverage of the week (Monday to Sunday) that contains ``week_start``."""
    monday = week_start - timedelta(days=week_start.weekday())
    return coverage(library=library, start=monday, end=monday + timedelta(days=6))
