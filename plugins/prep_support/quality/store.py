"""Data-quality results in the support database: one row per (suite, check, interval), replaced on re-run."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from prep_support.quality.config import Suite
from prep_support.quality.outcomes import CheckOutcome, jsonable
from prep_support.results import upsert
from prep_support.schema import QualityResultRow

results = QualityResultRow.__table__


def record_outcomes(engine: Engine, suite: Suite, outcomes: Iterable[CheckOutcome], interval_start: datetime,
                    interval_end: datetime, run_id: str, now: datetime) -> int:
    """Upsert every outcome of one validation in one transaction: all of them or none. An interval keeps
    its latest evaluation: a run finishing late with an earlier result does not replace a newer one."""
    rows = [
        {"suite_id": suite.id, "check_id": o.check_id, "interval_start": interval_start,
         "interval_end": interval_end, "expectation": o.expectation, "severity": o.severity,
         "success": o.success, "observed_value": jsonable(o.observed_value), "unexpected_count": o.unexpected_count,
         "element_count": o.element_count, "unexpected_percent": o.unexpected_percent,
         "details": jsonable(o.details), "sample": {"columns": list(o.sample_columns),
                                                     "rows": jsonable(o.sample_rows)},
         "run_id": run_id, "evaluated_at": now}
        for o in outcomes
    ]
    upsert(engine, results, rows, ["suite_id", "check_id", "interval_start"], newer="evaluated_at")
    return len(rows)


def volume_history(engine: Engine, suite: Suite, before: datetime, window: int = 30) -> dict[str, list[int]]:
    """For each volume check, the row counts recorded for the intervals before ``before`` (oldest first)."""
    volume_checks = [check.id for check in suite.checks if check.expectation == "volume"]
    history: dict[str, list[int]] = {}
    with engine.connect() as connection:
        for check_id in volume_checks:
            rows = connection.execute(
                select(results.c.observed_value).where(
                    results.c.suite_id == suite.id, results.c.check_id == check_id,
                    results.c.interval_start < before)
                .order_by(results.c.interval_start.desc()).limit(window)
            ).scalars().all()
            history[check_id] = [int(value) for value in reversed(rows) if isinstance(value, int | float)]
    return history


def recent_results(engine: Engine, since: datetime) -> list[Any]:
    """Every recorded outcome of intervals ending after ``since``, oldest interval first."""
    with engine.connect() as connection:
        return connection.execute(
            select(results).where(results.c.interval_end > since).order_by(results.c.interval_start)
        ).all()


def lookback_start(latest_end: datetime, days: int) -> datetime:
    return latest_end - timedelta(days=days)
