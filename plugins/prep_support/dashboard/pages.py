"""What each page shows: the overview, and one service with its charts.

Each page's statements run in two groups at once (``database.read_together``), balanced so that the
groups take about as long: the heaviest statement alone, the rest together.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy import Engine

from prep_support.dashboard import charts
from prep_support.dashboard.database import read_together
from prep_support.dashboard.on_call import OnCall, on_call
from prep_support.dashboard.quality import SuiteStrip, quality_strips
from prep_support.dashboard.queries import (
    SEVERITY,
    CheckHealth,
    HourPoint,
    Incident,
    ServiceDetail,
    ServiceSummary,
    Window,
    checks_needing_attention,
    current_and_upcoming_windows,
    open_incidents,
    service_detail,
    service_history,
    services_summary,
    silenced_services,
)

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def chart_end(now: datetime) -> datetime:
    """The end of the hour in progress: the last 24 hours and 7 days include it."""
    return now.replace(minute=0, second=0, microsecond=0) + charts.HOUR


def availability(points: list[HourPoint]) -> float | None:
    results = sum(point.results for point in points)
    return 100.0 * (results - sum(point.failures for point in points)) / results if results else None


@dataclass
class Overview:
    now: datetime
    services: list[ServiceSummary]  # worst first
    attention: list[CheckHealth]  # checks not ok, or flapping
    incidents: list[Incident]
    windows: list[Window]
    quality: list[SuiteStrip] = field(default_factory=list)  # data quality per suite, last 30 days
    on_call: OnCall | None = None  # last shift handovers, how-to deflection

    @property
    def state_counts(self) -> list[tuple[str, int]]:
        """How many services are in each state, worst first."""
        counts = Counter(service.state for service in self.services)
        return sorted(counts.items(), key=lambda item: SEVERITY.get(item[0], 0))


@dataclass
class ServicePage:
    now: datetime
    service: ServiceDetail
    incidents: list[Incident]
    windows: list[Window]
    history: list[HourPoint]  # the last 7 days, hourly, hours without results left out

    @cached_property
    def end(self) -> datetime:
        return chart_end(self.now)

    @cached_property
    def day_history(self) -> list[HourPoint]:
        start = self.end - DAY
        return [point for point in self.history if point.hour >= start]

    @property
    def availability_24h_pct(self) -> float | None:
        return availability(self.day_history)

    @property
    def availability_7d_pct(self) -> float | None:
        return availability(self.history)

    def charts(self) -> list[charts.Chart]:
        week = charts.HourlySeries.of(self.history, self.end - WEEK, WEEK // charts.HOUR)
        day = week.last(DAY // charts.HOUR)
        return [
            charts.latency_chart(day, "Latency, last 24 hours"),
            charts.availability_chart(day, "Availability, last 24 hours"),
            charts.latency_chart(week, "Latency, last 7 days"),
            charts.availability_chart(week, "Availability, last 7 days"),
        ]


def load_overview(engine: Engine, now: datetime) -> Overview:
    end = chart_end(now)
    found, (windows, attention, incidents), quality = read_together(
        engine,
        lambda connection: services_summary(connection, end - DAY, end),
        lambda connection: (current_and_upcoming_windows(connection, now), checks_needing_attention(connection),
                            open_incidents(connection)),
        lambda connection: (quality_strips(connection, now.date()), on_call(connection, now)),
    )
    quality, desk = quality
    silenced = silenced_services(windows)
    for service in found:
        service.in_maintenance = service.id in silenced
    return Overview(now, found, attention, incidents, windows, quality, desk)


def load_service_page(engine: Engine, service_id: str, now: datetime) -> ServicePage | None:
    end = chart_end(now)
    (service, windows), (history, incidents) = read_together(
        engine,
        lambda connection: (service_detail(connection, service_id, end - WEEK, end - DAY, end),
                            current_and_upcoming_windows(connection, now, service_id)),
        lambda connection: (service_history(connection, service_id, end - WEEK, end),
                            open_incidents(connection, service_id)),
    )
    if service is None:
        return None
    service.in_maintenance = service_id in silenced_services(windows)
    return ServicePage(now, service, incidents, windows, history)
