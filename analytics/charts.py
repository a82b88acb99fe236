"""Geometry and shading for the server-rendered pictures of the manager views.

No JavaScript and no external library: the templates draw SVG from these numbers. Every
picture is also a table of numbers (readable without colour, and by a screen reader).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from analytics import selectors
from analytics.selectors import DayVolume, HeatMap, hours_of_week

WEEKDAYS = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
HEAT_LEVELS = 6  # CSS classes heat-0 (none) to heat-5 (busiest)

CHART_WIDTH = 720
CHART_HEIGHT = 180


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
            label=date_format(day.day, "D j M"),
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
