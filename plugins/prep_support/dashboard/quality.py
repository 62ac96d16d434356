"""Data quality on the dashboard: a calendar strip per suite (pass / fail / not run) for the last 30 days,
and a day's results, so on-call sees which days to fix and backfill.

A day is an interval by its start date, as the tickets name it (``2026-11-03`` is the night run that
checked the interval starting 2026-11-03 02:00). A day fails when a ``fail`` check's latest result failed;
``warn`` checks do not colour the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, select

from prep_support.schema import QualityResultRow

STRIP_DAYS = 30
PASS, FAIL, NOT_RUN = "pass", "fail", "not-run"
results = QualityResultRow.__table__


@dataclass(frozen=True)
class DayCell:
    day: date
    status: str  # pass | fail | not-run
    failed_checks: int


@dataclass(frozen=True)
class SuiteStrip:
    suite_id: str
    days: list[DayCell]  # oldest first

    @property
    def failing_days(self) -> list[date]:
        return [cell.day for cell in self.days if cell.status == FAIL]


def strip_days(today: date, days: int = STRIP_DAYS) -> list[date]:
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def build_strips(rows: list[Any], today: date, days: int = STRIP_DAYS) -> list[SuiteStrip]:
    """One strip per suite with results: (suite_id, interval_start, severity, success) rows -> cells."""
    failed: dict[tuple[str, date], int] = {}
    for row in rows:
        key = (row.suite_id, row.interval_start.astimezone(UTC).date())
        failed[key] = failed.get(key, 0) + (row.severity == "fail" and not row.success)
    suites = sorted({suite for suite, _day in failed})
    return [SuiteStrip(suite, [DayCell(day, NOT_RUN if (suite, day) not in failed else FAIL if failed[(suite, day)]
                                       else PASS, failed.get((suite, day), 0))
                               for day in strip_days(today, days)])
            for suite in suites]


def quality_strips(connection: Connection, today: date, days: int = STRIP_DAYS) -> list[SuiteStrip]:
    first = datetime.combine(strip_days(today, days)[0], time(), UTC)
    rows = connection.execute(
        select(results.c.suite_id, results.c.interval_start, results.c.severity, results.c.success)
        .where(results.c.interval_start >= first)).all()
    return build_strips(rows, today, days)


def day_results(connection: Connection, suite_id: str, day: date) -> list[Any]:
    """Every check's latest result for the suite's interval(s) starting on ``day``, failing first."""
    start = datetime.combine(day, time(), UTC)
    rows = connection.execute(
        select(results).where(results.c.suite_id == suite_id, results.c.interval_start >= start,
                              results.c.interval_start < start + timedelta(days=1))).all()
    return sorted(rows, key=lambda row: (row.success, row.severity != "fail", row.check_id))
