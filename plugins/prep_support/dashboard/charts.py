"""Chart geometry for inline SVG: one point per hour, polylines broken where an hour has no data.

The numbers are computed here and the SVG is written by a template (autoescaped like the rest of the
page); the browser needs no script and the machine no chart library from a CDN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from prep_support.dashboard.queries import HourPoint

HOUR = timedelta(hours=1)
WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 10, 24  # margins for the axis labels
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

Values = Sequence[float | None]


@dataclass(frozen=True)
class Series:
    name: str
    css_class: str
    lines: tuple[str, ...]  # "x,y x,y ..." per unbroken run of at least two hours
    dots: tuple[tuple[str, str], ...]  # hours with data but no neighbour to join
    points: int  # hours with a value

    @property
    def empty(self) -> bool:
        return self.points == 0


@dataclass(frozen=True)
class Chart:
    title: str
    series: tuple[Series, ...]
    x_labels: tuple[tuple[str, str], ...]
    y_labels: tuple[tuple[str, str], ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    plot_width: int = PLOT_WIDTH
    plot_height: int = PLOT_HEIGHT

    @property
    def empty(self) -> bool:
        return all(series.empty for series in self.series)

    @property
    def bottom(self) -> int:
        return self.top + self.plot_height


@dataclass(frozen=True)
class HourlySeries:
    """A service's hours [start, start + n h) as value lists, None where an hour has no data."""

    start: datetime
    p50_ms: list[float | None]
    p95_ms: list[float | None]
    availability_pct: list[float | None]

    @classmethod
    def of(cls, history: Sequence[HourPoint], start: datetime, hours: int) -> HourlySeries:
        p50: list[float | None] = [None] * hours
        p95: list[float | None] = [None] * hours
        availability: list[float | None] = [None] * hours
        first = start.timestamp()
        for point in history:
            index = int(point.hour.timestamp() - first) // 3600
            if 0 <= index < hours:
                p50[index], p95[index], availability[index] = point.p50_ms, point.p95_ms, point.availability_pct
        return cls(start, p50, p95, availability)

    def last(self, hours: int) -> HourlySeries:
        return HourlySeries(self.start + HOUR * (len(self.p50_ms) - hours), self.p50_ms[-hours:],
                            self.p95_ms[-hours:], self.availability_pct[-hours:])


def latency_chart(series: HourlySeries, title: str) -> Chart:
    top = nice_ceiling(max((v for values in (series.p50_ms, series.p95_ms) for v in values if v is not None),
                           default=1.0))
    return Chart(
        title=title,
        series=(_series("p95", "p95", series.p95_ms, 0.0, top), _series("p50", "p50", series.p50_ms, 0.0, top)),
        x_labels=_x_labels(series.start, len(series.p50_ms)), y_labels=_y_labels(0.0, top, "ms"),
    )


def availability_chart(series: HourlySeries, title: str) -> Chart:
    lowest = min((v for v in series.availability_pct if v is not None), default=100.0)
    bottom = max(0.0, math.floor(min(lowest, 95.0) / 5) * 5 - 5)  # room below the worst hour
    return Chart(
        title=title,
        series=(_series("availability", "availability", series.availability_pct, bottom, 100.0),),
        x_labels=_x_labels(series.start, len(series.availability_pct)), y_labels=_y_labels(bottom, 100.0, "%"),
    )


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^n not below ``value`` (axis tops that read well)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= value)


@cache
def _xs(count: int) -> tuple[str, ...]:
    """The x of each hour's point, at the middle of its slot."""
    return tuple(f"{LEFT + PLOT_WIDTH * (index + 0.5) / count:.1f}" for index in range(count))


def _y(value: float, low: float, high: float) -> str:
    return f"{TOP + PLOT_HEIGHT * (high - value) / ((high - low) or 1.0):.1f}"


def _series(name: str, css_class: str, values: Values, low: float, high: float) -> Series:
    """The callers' axes span every value (``low`` <= v <= ``high``), so nothing needs clamping."""
    scale = PLOT_HEIGHT / ((high - low) or 1.0)
    baseline = TOP + high * scale
    points = [None if value is None else f"{x},{baseline - value * scale:.1f}"
              for x, value in zip(_xs(len(values)), values, strict=True)]
    runs: list[list[str]] = [[]]
    for point in points:
        if point is not None:
            runs[-1].append(point)
        elif runs[-1]:
            runs.append([])
    lines = tuple(" ".join(run) for run in runs if len(run) > 1)
    dots = tuple(tuple(run[0].split(",")) for run in runs if len(run) == 1)
    return Series(name, css_class, lines, dots, len(values) - values.count(None))


def _x_labels(start: datetime, count: int) -> tuple[tuple[str, str], ...]:
    """Every 6 hours on a day's chart, every midnight on a week's."""
    step, pattern = (6, "%H:00") if count <= 48 else (24, "%a %d")
    first = (step - start.hour % step) % step
    xs = _xs(count)
    return tuple((xs[index], f"{start + HOUR * index:{pattern}}") for index in range(first, count, step))


def _y_labels(low: float, high: float, unit: str) -> tuple[tuple[str, str], ...]:
    return tuple((_y(value, low, high), f"{round(value, 1):g} {unit}") for value in (low, (low + high) / 2, high))
