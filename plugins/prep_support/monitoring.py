"""One sweep's evaluation: results -> hourly rollups, trends, check and service health.

Everything happens in one transaction, so a task that dies half way leaves nothing half
written, and folding the same run twice changes nothing (``health.advance`` skips a run
it has seen). Only live runs move the state machine: a backfilled run (results from the
past) fills history and rollups but does not replay old health into today's state.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from prep_support.catalog import Catalog
from prep_support.health import CheckState, Thresholds, Transition, advance, service_state
from prep_support.incidents import CheckView
from prep_support.results import upsert
from prep_support.schema import CheckHourlyRow, CheckResultRow, CheckStateRow, ServiceStateRow
from prep_support.trends import is_regression, window_stats

RECENT = timedelta(hours=1)
BASELINE = timedelta(days=7)
BASELINE_REFRESH = timedelta(hours=1)

results_table = CheckResultRow.__table__
states_table = CheckStateRow.__table__
hourly_table = CheckHourlyRow.__table__


@dataclass
class SweepEvaluation:
    checks: list[CheckView] = field(default_factory=list)
    service_states: dict[str, str] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = defaultdict(int)
        for state in self.service_states.values():
            counts[state] += 1
        return {"services": dict(counts), "transitions": len(self.transitions), "regressions": len(self.regressions)}


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def evaluate_sweep(engine: Engine, catalog: Catalog, thresholds: Thresholds, run_id: str,
                   interval_start: datetime, interval_end: datetime, now: datetime, live: bool) -> SweepEvaluation:
    evaluation = SweepEvaluation()
    with engine.begin() as connection:
        since = min(interval_end - RECENT, hour_of(interval_start))
        window: dict[str, list[Any]] = defaultdict(list)
        for row in connection.execute(
            select(results_table.c.check_id, results_table.c.run_id, results_table.c.status,
                   results_table.c.latency_ms, results_table.c.data_interval_start,
                   results_table.c.data_interval_end, results_table.c.detail)
            .where(results_table.c.data_interval_end > since, results_table.c.data_interval_end <= interval_end)
        ):
            window[row.check_id].append(row)
        _store_hourly(connection, window, hour_of(interval_start))
        states = _load_states(connection)
        if live:
            _refresh_baselines(connection, states, interval_end, now)
            states = _load_states(connection)
        updated: dict[str, CheckState] = {}
        for key, (_service, check) in catalog.checks_by_key.items():
            previous = states.get(key, (CheckState(key), None, 0))[0]
            this_run = next((row for row in window.get(key, []) if row.run_id == run_id), None)
            if not live or this_run is None:
                updated[key] = previous
                continue
            recent = window_stats((row.status, row.latency_ms) for row in window[key]
                                  if row.data_interval_end > interval_end - RECENT)
            _, baseline_p95, baseline_hours = states.get(key, (None, None, 0))
            regression = is_regression(recent, baseline_p95, baseline_hours, thresholds.regression_factor)
            if regression:
                evaluation.regressions.append(key)
            detail = (f"p95 {recent.p95_ms:.0f} ms over the last hour vs {baseline_p95:.0f} ms 7-day baseline"
                      if regression else this_run.detail)
            result = advance(previous, this_run.status, critical=check.critical, run_id=run_id, at=interval_end,
                             detail=detail, regression=regression, thresholds=thresholds)
            updated[key] = result.state
            evaluation.transitions.extend(result.transitions)
        if live:
            _save_states(connection, updated, now)
        for service in catalog.services:
            members = [(updated[f"{service.id}/{c.id}"], c.critical) for c in service.checks]
            evaluation.service_states[service.id] = service_state(members)
            evaluation.checks.extend(
                CheckView(state.check_id, service.id, state.state, state.cause, state.flapping, state.detail)
                for state, _critical in members
            )
        if live:
            upsert(connection, ServiceStateRow.__table__, keys=["service_id"], rows=[
                {"service_id": service_id, "state": state, "updated_at": now}
                for service_id, state in evaluation.service_states.items()
            ])
    return evaluation


def _store_hourly(connection: Connection, window: dict[str, list[Any]], hour: datetime) -> None:
    """Recompute the rollup of the hour this run falls in, from its raw results."""
    rows = []
    for check_id, results in window.items():
        in_hour = [r for r in results if hour <= r.data_interval_start < hour + timedelta(hours=1)]
        if not in_hour:
            continue
        stats = window_stats((r.status, r.latency_ms) for r in in_hour)
        rows.append({"check_id": check_id, "hour": hour, "results": stats.results, "failures": stats.failures,
                     "latency_count": stats.latency_count, "latency_sum_ms": stats.latency_sum_ms,
                     "latency_p50_ms": stats.p50_ms, "latency_p95_ms": stats.p95_ms,
                     "latency_max_ms": stats.max_ms})
    upsert(connection, hourly_table, rows, ["check_id", "hour"])


def _load_states(connection: Connection) -> dict[str, tuple[CheckState, float | None, int]]:
    states = {}
    for row in connection.execute(select(states_table)):
        state = CheckState(
            check_id=row.check_id, state=row.state, cause=row.cause, since=row.since, failures=row.failures,
            problems=row.problems, successes=row.successes, flapping=row.flapping,
            changes=tuple(datetime.fromisoformat(t) for t in row.changes or []),
            regression_streak=row.regression_streak, last_run_id=row.last_run_id, detail=row.detail,
        )
        states[row.check_id] = (state, row.baseline_p95_ms, row.baseline_hours)
    return states


def _save_states(connection: Connection, states: dict[str, CheckState], now: datetime) -> None:
    upsert(connection, states_table, [
        {"check_id": s.check_id, "state": s.state, "cause": s.cause, "since": s.since, "failures": s.failures,
         "problems": s.problems, "successes": s.successes, "flapping": s.flapping,
         "changes": [t.isoformat() for t in s.changes], "regression_streak": s.regression_streak,
         "last_run_id": s.last_run_id, "detail": s.detail, "updated_at": now}
        for s in states.values()
    ], ["check_id"])


def _refresh_baselines(connection: Connection, states: dict[str, Any], interval_end: datetime,
                       now: datetime) -> None:
    """Once an hour: each check's 7-day p95 baseline (mean of hourly p95s, the last hour excluded)."""
    stale_before = now - BASELINE_REFRESH
    rows = connection.execute(select(states_table.c.check_id, states_table.c.baseline_at)).all()
    if rows and all(r.baseline_at is not None and r.baseline_at > stale_before for r in rows):
        return
    baselines = connection.execute(
        select(hourly_table.c.check_id, func.avg(hourly_table.c.latency_p95_ms), func.count())
        .where(hourly_table.c.hour >= interval_end - BASELINE, hourly_table.c.hour < hour_of(interval_end - RECENT),
               hourly_table.c.latency_p95_ms.is_not(None))
        .group_by(hourly_table.c.check_id)
    ).all()
    found = {check_id: (p95, hours) for check_id, p95, hours in baselines}
    upsert(connection, states_table, [
        {"check_id": check_id, "baseline_p95_ms": found.get(check_id, (None, 0))[0],
         "baseline_hours": found.get(check_id, (None, 0))[1], "baseline_at": now, "updated_at": now}
        for check_id in set(found) | {r.check_id for r in rows}
    ], ["check_id"])


def current_health(engine: Engine, catalog: Catalog) -> tuple[list[CheckView], dict[str, str]]:
    """The checks' and services' health as the last live sweep left it (ok where never evaluated)."""
    with engine.connect() as connection:
        states = {row.check_id: row for row in connection.execute(select(states_table))}
        services = dict(connection.execute(
            select(ServiceStateRow.__table__.c.service_id, ServiceStateRow.__table__.c.state)).all())
    checks = []
    for key, (service, _check) in catalog.checks_by_key.items():
        row = states.get(key)
        checks.append(CheckView(key, service.id, row.state if row else "ok", row.cause if row else "",
                                bool(row.flapping) if row else False, row.detail if row else ""))
    return checks, {service.id: services.get(service.id, "ok") for service in catalog.services}
