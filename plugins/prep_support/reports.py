"""Weekly trend reports per service, computed from the hourly rollups (``check_hourly``).

**Availability**, the SLA figure, is the share of a service's evaluated results of its
*critical* checks that did not fail, over the week [start, end)::

    availability % = 100 x (1 - failures / results)

with ``results`` and ``failures`` summed over every critical check of the service and every
hour of the week. A ``warn`` (slow, but answering) counts as available; ``not_evaluable``
results (live probes of a backfilled run) are no results at all, as in the rollups. A
non-critical check (a late batch, a low order volume) only degrades its service, so it does
not count against the service's availability; every check, critical or not, gets its own
figure by the same formula. A service without a single evaluated critical result in the week
has no figure (``None``, shown "no data"), never 100 %. Figures are shown truncated to two
decimals, so a report never rounds up past what was measured (99.996 % shows as 99.99 %).

Latency over the week is reported per check as the mean (exact, from the rollups' sums) and
as the mean of the hourly p95s (as the 7-day baseline of ``prep_support.monitoring``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, select

from prep_support.catalog import Catalog, check_key
from prep_support.messages import render
from prep_support.results import upsert
from prep_support.schema import CheckHourlyRow, CheckRow, TrendReportRow

WEEK = timedelta(days=7)
HOUR = timedelta(hours=1)
TEMPLATE = "reports/weekly_trend.txt.j2"
DEFINITION = ("availability = 1 - failures / results over the evaluated results of the service's critical checks "
              "in the week [week_start, week_end); warn counts as available, not_evaluable is not a result")

hourly = CheckHourlyRow.__table__
checks = CheckRow.__table__


def report_week(interval_end: datetime) -> tuple[datetime, datetime]:
    """The last full calendar week (Monday 00:00 to Monday 00:00 UTC) ending at or before ``interval_end``."""
    moment = interval_end.astimezone(UTC)
    # A plain datetime whatever comes in (Airflow's context gives pendulum's), so the arithmetic below is stdlib's.
    end = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) - timedelta(days=moment.weekday())
    return end - WEEK, end


@dataclass(frozen=True)
class HourlyRollup:
    """One check's hour, as ``check_hourly`` keeps it."""

    hour: datetime
    results: int
    failures: int
    latency_count: int = 0
    latency_sum_ms: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None


@dataclass(frozen=True)
class CheckTrend:
    check_id: str  # "service/check"
    critical: bool
    hours: tuple[HourlyRollup, ...]  # the week's rollups of this check, oldest first

    @property
    def results(self) -> int:
        return sum(h.results for h in self.hours)

    @property
    def failures(self) -> int:
        return sum(h.failures for h in self.hours)

    @property
    def availability_pct(self) -> float | None:
        return availability_pct(self.results, self.failures)

    @property
    def mean_ms(self) -> float | None:
        count = sum(h.latency_count for h in self.hours)
        return sum(h.latency_sum_ms for h in self.hours) / count if count else None

    @property
    def p95_ms(self) -> float | None:
        """The mean of the hourly p95s."""
        values = [h.p95_ms for h in self.hours if h.p95_ms is not None]
        return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class TrendSeries:
    """What the chart draws: one point per hour of the week (None where nothing was evaluated)."""

    hours: tuple[datetime, ...]
    availability_pct: tuple[float | None, ...]  # critical checks, per hour
    p50_ms: dict[str, tuple[float | None, ...]]  # per check
    p95_ms: dict[str, tuple[float | None, ...]]


@dataclass(frozen=True)
class ServiceReport:
    service_id: str
    service_name: str
    week_start: datetime
    week_end: datetime
    checks: tuple[CheckTrend, ...]

    @property
    def critical_results(self) -> int:
        return sum(c.results for c in self.checks if c.critical)

    @property
    def critical_failures(self) -> int:
        return sum(c.failures for c in self.checks if c.critical)

    @property
    def results(self) -> int:
        """Evaluated results of all the service's checks, critical or not."""
        return sum(c.results for c in self.checks)

    @property
    def availability_pct(self) -> float | None:
        return availability_pct(self.critical_results, self.critical_failures)

    @property
    def availability(self) -> str:
        """The figure as shown: '99.97 %', or 'no data'."""
        return shown_pct(self.critical_results, self.critical_failures)

    def hourly_totals(self) -> dict[datetime, tuple[int, int]]:
        """(results, failures) of the critical checks per hour that has any."""
        totals: dict[datetime, tuple[int, int]] = {}
        for check in self.checks:
            if check.critical:
                for h in check.hours:
                    results, failures = totals.get(h.hour, (0, 0))
                    totals[h.hour] = (results + h.results, failures + h.failures)
        return {hour: counts for hour, counts in sorted(totals.items()) if counts[0]}

    def series(self) -> TrendSeries:
        count = int((self.week_end - self.week_start).total_seconds() // HOUR.total_seconds())
        hours = tuple(self.week_start + HOUR * n for n in range(count))
        totals = self.hourly_totals()
        by_check = {c.check_id: {h.hour: h for h in c.hours} for c in self.checks}

        def per_hour(check_id: str, name: str) -> tuple[float | None, ...]:
            found = by_check[check_id]
            return tuple(getattr(found[hour], name) if hour in found else None for hour in hours)

        return TrendSeries(
            hours=hours,
            availability_pct=tuple(availability_pct(*totals[hour]) if hour in totals else None for hour in hours),
            p50_ms={check_id: per_hour(check_id, "p50_ms") for check_id in by_check},
            p95_ms={check_id: per_hour(check_id, "p95_ms") for check_id in by_check},
        )

    def worst_hour(self) -> tuple[datetime, int, int] | None:
        """(hour, results, failures) of the hour with the lowest availability (the earliest of equals), if any
        hour had a failure."""
        failed = [(Fraction(results - failures, results), hour, results, failures)
                  for hour, (results, failures) in self.hourly_totals().items() if failures]
        if not failed:
            return None
        _, hour, results, failures = min(failed)
        return hour, results, failures

    def summary(self) -> dict[str, Any]:
        """The report's figures, JSON-serialisable: stored with the report and rendered into the message."""
        worst = self.worst_hour()
        return {
            "service_id": self.service_id,
            "service_name": self.service_name,
            "week_start": self.week_start.isoformat(),
            "week_end": self.week_end.isoformat(),
            "week_label": f"{self.week_start:%Y-%m-%d} to {self.week_end - timedelta(days=1):%Y-%m-%d} (UTC)",
            "availability_pct": self.availability_pct,
            "availability": self.availability,
            "critical_results": self.critical_results,
            "critical_failures": self.critical_failures,
            "results": self.results,
            "worst_hour": None if worst is None else {
                "hour": worst[0].isoformat(), "label": f"{worst[0]:%a %Y-%m-%d %H:00}",
                "availability_pct": availability_pct(worst[1], worst[2]),
                "availability": shown_pct(worst[1], worst[2]),
            },
            "checks": [
                {"check_id": c.check_id, "critical": c.critical, "results": c.results, "failures": c.failures,
                 "availability_pct": c.availability_pct, "availability": shown_pct(c.results, c.failures),
                 "mean_ms": _round(c.mean_ms), "p95_ms": _round(c.p95_ms)}
                for c in self.checks
            ],
            "definition": DEFINITION,
        }


def availability_pct(results: int, failures: int) -> float | None:
    return 100.0 * (results - failures) / results if results else None


def shown_pct(results: int, failures: int) -> str:
    """'99.97 %', truncated (never rounded up) to two decimals from the exact ratio; 'no data' without results."""
    if not results:
        return "no data"
    hundredths = math.floor(Fraction(10_000 * (results - failures), results))
    return f"{hundredths // 100}.{hundredths % 100:02d} %"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def build_report(service_id: str, service_name: str, week_start: datetime, week_end: datetime,
                 critical: Mapping[str, bool], rollups: Mapping[str, Sequence[HourlyRollup]]) -> ServiceReport:
    """A service's report from its checks (``check id -> critical``) and their rollups within the week."""
    trends = []
    for check_id in sorted(critical):
        hours = sorted((r for r in rollups.get(check_id, ()) if week_start <= r.hour < week_end), key=lambda r: r.hour)
        trends.append(CheckTrend(check_id, critical[check_id], tuple(hours)))
    return ServiceReport(service_id, service_name, week_start, week_end, tuple(trends))


def weekly_reports(engine: Engine, catalog: Catalog, week_start: datetime, week_end: datetime) -> list[ServiceReport]:
    """One report per catalog service. Checks removed from the catalog still count for the weeks they ran,
    as critical as they were when last loaded."""
    rollups: dict[str, list[HourlyRollup]] = defaultdict(list)
    retired: dict[str, dict[str, bool]] = defaultdict(dict)
    current = set(catalog.checks_by_key)
    with engine.connect() as connection:
        for row in connection.execute(
            select(hourly, checks.c.service_id, checks.c.definition)
            .join(checks, checks.c.id == hourly.c.check_id)
            .where(hourly.c.hour >= week_start, hourly.c.hour < week_end)
            .order_by(hourly.c.check_id, hourly.c.hour)
        ):
            rollups[row.check_id].append(HourlyRollup(
                row.hour, row.results, row.failures, row.latency_count, row.latency_sum_ms, row.latency_p50_ms,
                row.latency_p95_ms))
            if row.check_id not in current:
                retired[row.service_id][row.check_id] = bool((row.definition or {}).get("critical", True))
    reports = []
    for service in catalog.services:
        critical = {check_key(service.id, c.id): c.critical for c in service.checks} | retired.get(service.id, {})
        reports.append(build_report(service.id, service.name, week_start, week_end, critical, rollups))
    return reports


def summary_text(report: ServiceReport, deflection: Any = None) -> str:
    """The report as a message (``include/templates/reports/weekly_trend.txt.j2``).

    ``deflection`` (``prep_support.how_to_store.Deflection`` of the same week) adds the how-to line.
    """
    return render(TEMPLATE, **report.summary(), deflection=deflection)


def store_report(engine: Engine, report: ServiceReport, chart_png: bytes, now: datetime) -> None:
    """Keep the report; a re-run of the same service and week replaces it."""
    upsert(engine, TrendReportRow.__table__, [{
        "service_id": report.service_id, "week_start": report.week_start, "week_end": report.week_end,
        "availability_pct": report.availability_pct, "results": report.results, "summary": report.summary(),
        "chart_png": chart_png, "created_at": now,
    }], ["service_id", "week_start"])


def stored_reports(engine: Engine, week_start: datetime) -> list[Any]:
    """The reports kept for a week, by service."""
    table = TrendReportRow.__table__
    with engine.connect() as connection:
        return connection.execute(
            select(table).where(table.c.week_start == week_start).order_by(table.c.service_id)).all()


def report_key(service_id: str, week_start: datetime, channel: str = "slack") -> str:
    """The notification ledger's key of a posted report."""
    return f"report:{service_id}:{week_start.date().isoformat()}:{channel}"
