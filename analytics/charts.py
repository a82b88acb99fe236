"""Geometry and shading for the server-rendered pictures of the manager views.

No JavaScript and no external library: the statistics page draws SVG from these numbers. Every
picture is also a table of numbers (readable without colour, and by a screen reader).

The page's repeated fragments (the volume's bars and its table, the 7 by 24 cells of the heat map
and of the coverage) are written here, once, from escaped values: as template loops they were
most of the page's rendering time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from django.conf import settings
from django.template.defaultfilters import floatformat
from django.utils.formats import date_format, localize
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from analytics import selectors
from analytics.selectors import DayVolume, HeatMap, hours_of_week

WEEKDAYS = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
HEAT_LEVELS = 6  # CSS classes heat-0 (none) to heat-5 (busiest)

CHART_WIDTH = 720
CHART_HEIGHT = 180


def day_label(day: date, pattern: str) -> str:
    """``date_format(day, pattern)``, kept per day, pattern and language: the volume's chart and
    table name each day of the range, and formatting them was a tenth of the page's own time
    (docs/benchmarks.md, "Manager analytics views")."""
    return _day_label(day, pattern, get_language())


@lru_cache(maxsize=4096)
def _day_label(day: date, pattern: str, language: str | None) -> str:
    return date_format(day, pattern)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class VolumeChart:
    bars: list[Bar]
    trend_points: str  # an SVG polyline's points
    maximum: int
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def volume_chart(days: list[DayVolume]) -> VolumeChart:
    maximum = max([day.count for day in days] + [1])
    step = CHART_WIDTH / max(len(days), 1)
    scale = CHART_HEIGHT / maximum
    bars = [
        Bar(
            x=round(index * step + step * 0.1, 2),
            y=round(CHART_HEIGHT - day.count * scale, 2),
            width=round(step * 0.8, 2),
            height=round(day.count * scale, 2),
            label=day_label(day.day, "D j M"),
            value=day.count,
        )
        for index, day in enumerate(days)
    ]
    points = " ".join(
        f"{round(index * step + step / 2, 2)},{round(CHART_HEIGHT - day.trend * scale, 2)}"
        for index, day in enumerate(days)
    )
    return VolumeChart(bars=bars, trend_points=points, maximum=maximum)


@dataclass(frozen=True)
class HeatCell:
    hour: int
    count: int
    level: int


@dataclass(frozen=True)
class HeatRow:
    weekday: str
    cells: list[HeatCell]


def heat_rows(cells: HeatMap) -> list[HeatRow]:
    """Rows Monday to Sunday of 24 cells; the shade is a step of the busiest cell's count."""
    busiest = max(cells.values(), default=0)
    rows: list[HeatRow] = [HeatRow(weekday=str(name), cells=[]) for name in WEEKDAYS]
    for weekday, hour in hours_of_week():
        count = cells.get((weekday, hour), 0)
        level = (
            0 if not count else 1 + min(HEAT_LEVELS - 2, (count * (HEAT_LEVELS - 1) - 1) // busiest)
        )
        rows[weekday].cells.append(HeatCell(hour=hour, count=count, level=level))
    return rows


@dataclass(frozen=True)
class Share:
    label: str
    count: int
    percent: float
    width: float  # of a 100-wide SVG bar


def shares(items: list[tuple[str, int]]) -> list[Share]:
    total = sum(count for _label, count in items) or 1
    biggest = max([count for _label, count in items] + [1])
    return [
        Share(
            label=label,
            count=count,
            percent=round(100 * count / total, 1),
            width=round(100 * count / biggest, 2),
        )
        for label, count in items
    ]


@dataclass(frozen=True)
class CoverageRow:
    weekday: str
    cells: list[tuple[selectors.CoverageCell, str]]  # the cell and "under", "over" or ""


def coverage_rows(coverage: selectors.Coverage) -> list[CoverageRow]:
    rows = [CoverageRow(weekday=str(name), cells=[]) for name in WEEKDAYS]
    for cell in coverage.cells:
        rows[cell.weekday].cells.append((cell, coverage.assessment(cell)))
    return rows


def hour_name(cell: selectors.CoverageCell) -> str:
    return f"{WEEKDAYS[cell.weekday]} {cell.hour:02d}:00 to {(cell.hour + 1) % 24:02d}:00"


# --- the page's repeated fragments, as HTML ----------


def _count(n: int) -> str:
    """A count as the templates write it: grouped only if the settings group thousands."""
    return localize(n) if settings.USE_THOUSAND_SEPARATOR else str(n)


def _html(parts: Iterable[str], separator: str = "") -> SafeString:
    """Joined fragments, each written here from escaped text, numbers and fixed class names."""
    return mark_safe(separator.join(parts))  # noqa: S308 - every value is escaped or a number


def volume_bars(chart: VolumeChart) -> SafeString:
    """The volume chart's ``<rect>`` elements, each titled with its day and count."""
    return _html(
        f'<rect class="stats-bar" x="{bar.x}" y="{bar.y}" width="{bar.width}" '
        f'height="{bar.height}"><title>{escape(bar.label)}: {_count(bar.value)}</title>'
        "</rect>"
        for bar in chart.bars
    )


def volume_rows(days: list[DayVolume]) -> SafeString:
    """The rows of the volume's table: the day, its count, the 7-day mean."""
    return _html(
        f'<tr><th scope="row">{escape(day_label(day.day, "D j M Y"))}</th>'
        f"<td>{_count(day.count)}</td><td>{floatformat(day.trend, 1)}</td></tr>"
        for day in days
    )


def hour_headers() -> SafeString:
    """The header cells 00 to 23 of a table per hour of the day."""
    return _html(f'<th scope="col">{hour:02d}</th>' for hour in range(24))


def heat_table_rows(rows: list[HeatRow]) -> SafeString:
    """The heat map's rows: the weekday, then each hour's count, shaded by its level."""
    return _html(
        (
            f'<tr><th scope="row">{escape(row.weekday)}</th>'
            + "".join(
                f'<td class="heat-{cell.level}">{_count(cell.count)}</td>' for cell in row.cells
            )
            + "</tr>"
            for row in rows
        ),
        "\n",
    )


COVERAGE_MARKS = {
    "under": "\N{BLACK UP-POINTING TRIANGLE}",
    "over": "\N{BLACK DOWN-POINTING TRIANGLE}",
}


def _coverage_text(cell: selectors.CoverageCell) -> str:
    """Questions per staff-hour; questions over nobody rostered; a dash for neither."""
    if cell.staff_hours:
        return str(floatformat(cell.per_staff_hour, 1))
    if cell.questions:
        return f"{_count(cell.questions)}/0"
    return "\N{EN DASH}"


def coverage_table_rows(rows: list[CoverageRow]) -> SafeString:
    """The coverage's rows: the weekday, then each hour's questions per staff-hour, marked with
    an up triangle (under-staffed) or a down one (over-staffed) besides its class, so that colour
    is not needed."""
    return _html(
        (
            f'<tr><th scope="row">{escape(row.weekday)}</th>'
            + "".join(
                f'<td class="coverage-{mark or "ok"}">'
                f"{COVERAGE_MARKS.get(mark, '')}{_coverage_text(cell)}</td>"
                for cell, mark in row.cells
            )
            + "</tr>"
            for row in rows
        ),
        "\n",
    )
