"""What the dashboard reads, as SQLAlchemy Core statements over the support database.

The statements are built once, with bound parameters, and each page runs a few of them on one
connection and shows exactly the rows they return. The database does the counting and summing:
history comes from the hourly rollups (``check_hourly``, kept as results arrive), never from raw
results, so a service's 7-day chart reads at most 168 rows per check whatever the sweep frequency,
and the overview's 24-hour figures read 24 per check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, String, bindparam, case, cast, func, or_, select
from sqlalchemy.orm import aliased

from prep_support.schema import (
    CheckHourlyRow,
    CheckRow,
    CheckStateRow,
    IncidentRow,
    MaintenanceWindowRow,
    ServiceRow,
    ServiceStateRow,
)

HOUR = timedelta(hours=1)
UNKNOWN = "unknown"  # a service or check no live sweep has evaluated yet
SEVERITY = {"down": 0, "degraded": 1, UNKNOWN: 2, "ok": 3}
PRIORITY_ORDER = {"Highest": 0, "High": 1, "Medium": 2, "Low": 3}

services = ServiceRow.__table__
service_states = ServiceStateRow.__table__
checks = CheckRow.__table__
check_states = CheckStateRow.__table__
incidents = IncidentRow.__table__
windows = MaintenanceWindowRow.__table__
hourly = CheckHourlyRow.__table__


def _availability(results: int, failures: int) -> float | None:
    """The share of evaluated results that did not fail, in % (None without results, never 100 %)."""
    return 100.0 * (results - failures) / results if results else None


@dataclass(slots=True)
class ServiceSummary:
    """A service on the overview: its state, its checks counted by state, its last 24 hours."""

    id: str
    name: str
    criticality: str
    state: str
    since: datetime | None
    checks: int
    ok: int
    degraded: int
    down: int
    flapping: int
    results_24h: int  # evaluated results of the critical checks
    failures_24h: int
    peak_p95_24h_ms: float | None  # the slowest check's worst hourly p95
    in_maintenance: bool = False

    @property
    def unknown(self) -> int:
        return self.checks - self.ok - self.degraded - self.down

    @property
    def availability_24h_pct(self) -> float | None:
        return _availability(self.results_24h, self.failures_24h)


@dataclass(slots=True)
class CheckHealth:
    check_id: str  # "service/check"
    service_id: str
    service_name: str
    state: str
    cause: str
    detail: str
    since: datetime | None
    flapping: bool

    @property
    def name(self) -> str:
        return self.check_id.partition("/")[2]


@dataclass(slots=True)
class CheckDetail(CheckHealth):
    """A check on its service's page: its health and its own figures over 24 hours and 7 days."""

    results_24h: int = 0
    failures_24h: int = 0
    results_7d: int = 0
    failures_7d: int = 0
    p95_7d_ms: float | None = None  # the mean of its hourly p95s, as in the weekly report

    @property
    def availability_24h_pct(self) -> float | None:
        return _availability(self.results_24h, self.failures_24h)

    @property
    def availability_7d_pct(self) -> float | None:
        return _availability(self.results_7d, self.failures_7d)


@dataclass(slots=True)
class ServiceDetail:
    id: str
    name: str
    owner: str
    criticality: str
    state: str
    since: datetime | None
    checks: list[CheckDetail]
    in_maintenance: bool = False


@dataclass(slots=True)
class Incident:
    id: int
    dedup_key: str
    service_id: str
    service_name: str | None
    check_id: str
    kind: str
    state: str
    priority: str
    ticket_key: str | None
    ticket_url: str | None
    evidence: str
    opened_at: datetime
    updated_at: datetime
    upstream_id: int | None
    upstream_key: str | None
    upstream_ticket_key: str | None
    upstream_ticket_url: str | None


@dataclass(slots=True)
class Window:
    id: int
    key: str
    service_ids: list[str]
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    active: bool


@dataclass(slots=True)
class HourPoint:
    """One hour of a service, summed over its checks (see :data:`SERVICE_HISTORY`)."""

    hour: datetime
    results: int  # evaluated results of the service's critical checks
    failures: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def availability_pct(self) -> float | None:
        return _availability(self.results, self.failures)


def _severity(column: Any) -> Any:
    return case(SEVERITY, value=func.coalesce(column, UNKNOWN), else_=len(SEVERITY))


# Each check once, with its catalog flag: PostgreSQL would otherwise parse the JSON definition for
# every rollup row joined to it.
_check_flags = (
    select(checks.c.id, checks.c.service_id, checks.c.definition["critical"].as_boolean().label("critical"))
    .cte("check_flags")
    .prefix_with("MATERIALIZED", dialect="postgresql")
)


def _counted(state: str) -> Any:
    return func.coalesce(func.sum(case((check_states.c.state == state, 1), else_=0)), 0)


_check_counts = (
    select(checks.c.service_id, func.count().label("checks"), _counted("ok").label("ok"),
           _counted("degraded").label("degraded"), _counted("down").label("down"),
           func.coalesce(func.sum(case((check_states.c.flapping, 1), else_=0)), 0).label("flapping"))
    .select_from(checks.outerjoin(check_states, check_states.c.check_id == checks.c.id))
    .where(checks.c.active)
    .group_by(checks.c.service_id)
    .subquery("check_counts")
)
_last_day = (
    select(_check_flags.c.service_id,
           func.sum(case((_check_flags.c.critical, hourly.c.results), else_=0)).label("results"),
           func.sum(case((_check_flags.c.critical, hourly.c.failures), else_=0)).label("failures"),
           func.max(hourly.c.latency_p95_ms).label("peak_p95_ms"))
    .select_from(hourly.join(_check_flags, _check_flags.c.id == hourly.c.check_id))
    .where(hourly.c.hour >= bindparam("start"), hourly.c.hour < bindparam("end"))
    .group_by(_check_flags.c.service_id)
    .subquery("last_day")
)

SERVICES_SUMMARY = (
    select(services.c.id, services.c.name, services.c.criticality, service_states.c.state,
           service_states.c.since, _check_counts.c.checks, _check_counts.c.ok, _check_counts.c.degraded,
           _check_counts.c.down, _check_counts.c.flapping, _last_day.c.results, _last_day.c.failures,
           _last_day.c.peak_p95_ms)
    .select_from(
        services.outerjoin(service_states, service_states.c.service_id == services.c.id)
        .outerjoin(_check_counts, _check_counts.c.service_id == services.c.id)
        .outerjoin(_last_day, _last_day.c.service_id == services.c.id)
    )
    .where(services.c.active)
    .order_by(_severity(service_states.c.state), services.c.name, services.c.id)
)
"""Active services worst first, each with its checks counted by state and its last 24 hours
(``start``, ``end``) from the rollups."""

_check_columns = (checks.c.id.label("check_id"), checks.c.service_id, services.c.name.label("service_name"),
                  check_states.c.state, check_states.c.cause, check_states.c.detail, check_states.c.since,
                  check_states.c.flapping)

CHECKS_NEEDING_ATTENTION = (
    select(*_check_columns)
    .select_from(check_states.join(checks, checks.c.id == check_states.c.check_id)
                 .join(services, services.c.id == checks.c.service_id))
    .where(checks.c.active, services.c.active, or_(check_states.c.state != "ok", check_states.c.flapping))
    .order_by(_severity(check_states.c.state), services.c.name, checks.c.id)
)
"""Active checks that are not ok, or flapping, worst first."""

_in_last_day = hourly.c.hour >= bindparam("day_start")
_check_figures = (
    select(hourly.c.check_id, func.sum(case((_in_last_day, hourly.c.results), else_=0)).label("results_24h"),
           func.sum(case((_in_last_day, hourly.c.failures), else_=0)).label("failures_24h"),
           func.sum(hourly.c.results).label("results_7d"), func.sum(hourly.c.failures).label("failures_7d"),
           func.avg(hourly.c.latency_p95_ms).label("p95_7d_ms"))
    .select_from(hourly.join(checks, checks.c.id == hourly.c.check_id))
    .where(checks.c.service_id == bindparam("service_id"), hourly.c.hour >= bindparam("start"),
           hourly.c.hour < bindparam("end"))
    .group_by(hourly.c.check_id)
    .subquery("check_figures")
)
SERVICE_DETAIL = (
    select(services.c.owner, services.c.criticality, service_states.c.state.label("service_state"),
           service_states.c.since.label("service_since"), *_check_columns, _check_figures.c.results_24h,
           _check_figures.c.failures_24h, _check_figures.c.results_7d, _check_figures.c.failures_7d,
           _check_figures.c.p95_7d_ms)
    .select_from(
        services.outerjoin(service_states, service_states.c.service_id == services.c.id)
        .outerjoin(checks, (checks.c.service_id == services.c.id) & checks.c.active)
        .outerjoin(check_states, check_states.c.check_id == checks.c.id)
        .outerjoin(_check_figures, _check_figures.c.check_id == checks.c.id)
    )
    .where(services.c.id == bindparam("service_id"), services.c.active)
    .order_by(checks.c.id)
)
"""One service (``service_id``) and its active checks, one row per check: each check's state and its own
figures over the last 24 hours (from ``day_start``) and 7 days ([start, end)) from the rollups."""

_upstream = aliased(incidents, name="upstream")
OPEN_INCIDENTS = (
    select(incidents.c.id, incidents.c.dedup_key, incidents.c.service_id, services.c.name.label("service_name"),
           incidents.c.check_id, incidents.c.kind, incidents.c.state, incidents.c.priority, incidents.c.ticket_key,
           incidents.c.ticket_url, incidents.c.evidence, incidents.c.opened_at, incidents.c.updated_at,
           _upstream.c.id.label("upstream_id"), _upstream.c.dedup_key.label("upstream_key"),
           _upstream.c.ticket_key.label("upstream_ticket_key"), _upstream.c.ticket_url.label("upstream_ticket_url"))
    .select_from(
        incidents.outerjoin(services, services.c.id == incidents.c.service_id)
        .outerjoin(_upstream, _upstream.c.id == incidents.c.upstream_incident_id)
    )
    .where(incidents.c.status == "open")
    .order_by(case(PRIORITY_ORDER, value=incidents.c.priority, else_=len(PRIORITY_ORDER)), incidents.c.opened_at,
              incidents.c.id)
)
"""Open incidents, most urgent first, with the upstream incident each is linked to."""
OPEN_INCIDENTS_OF_SERVICE = OPEN_INCIDENTS.where(incidents.c.service_id == bindparam("service_id"))

WINDOWS = select(windows).where(windows.c.ends_at > bindparam("now")).order_by(windows.c.starts_at, windows.c.id)
"""Maintenance windows not over at ``now``: the active ones and those to come, soonest first."""
WINDOWS_OF_SERVICE = WINDOWS.where(
    cast(windows.c.service_ids, String).contains(bindparam("quoted_service_id"), escape="/"))
"""Those of them whose service list (as JSON text) names a service: see :func:`service_windows_params`."""


def service_windows_params(now: datetime, service_id: str) -> dict[str, Any]:
    """:data:`WINDOWS_OF_SERVICE`'s parameters: the id in JSON quotes, LIKE's wildcards escaped."""
    quoted = f'"{service_id}"'.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return {"now": now, "quoted_service_id": quoted}

_measured = case((hourly.c.latency_p50_ms.is_not(None), hourly.c.latency_count), else_=0)
SERVICE_HISTORY = (
    select(hourly.c.hour,
           func.sum(case((_check_flags.c.critical, hourly.c.results), else_=0)).label("results"),
           func.sum(case((_check_flags.c.critical, hourly.c.failures), else_=0)).label("failures"),
           (func.sum(hourly.c.latency_p50_ms * _measured) / func.nullif(func.sum(_measured), 0)).label("p50_ms"),
           func.max(hourly.c.latency_p95_ms).label("p95_ms"))
    .select_from(hourly.join(_check_flags, _check_flags.c.id == hourly.c.check_id))
    .where(_check_flags.c.service_id == bindparam("service_id"), hourly.c.hour >= bindparam("start"),
           hourly.c.hour < bindparam("end"))
    .group_by(hourly.c.hour)
    .order_by(hourly.c.hour)
)
"""A service's hours in [start, end), summed over all its checks' rollups (retired checks included:
they were measured then).

Availability counts the critical checks only, as the weekly report does (a failing non-critical check
degrades a service, it does not take it down). Percentiles do not add up across checks, so the
service's p95 is its slowest check's hourly p95 and its p50 the checks' hourly medians averaged,
weighted by how many latencies each measured."""


def services_summary(connection: Connection, start: datetime, end: datetime) -> list[ServiceSummary]:
    return [
        ServiceSummary(r.id, r.name, r.criticality, r.state or UNKNOWN, r.since, r.checks or 0, r.ok or 0,
                       r.degraded or 0, r.down or 0, r.flapping or 0, int(r.results or 0), int(r.failures or 0),
                       r.peak_p95_ms)
        for r in connection.execute(SERVICES_SUMMARY, {"start": start, "end": end}).all()
    ]


def _check(row: Any) -> CheckHealth:
    return CheckHealth(row.check_id, row.service_id, row.service_name, row.state or UNKNOWN, row.cause or "",
                       row.detail or "", row.since, bool(row.flapping))


def checks_needing_attention(connection: Connection) -> list[CheckHealth]:
    return [_check(row) for row in connection.execute(CHECKS_NEEDING_ATTENTION).all()]


def service_detail(connection: Connection, service_id: str, start: datetime, day_start: datetime,
                   end: datetime) -> ServiceDetail | None:
    rows = connection.execute(SERVICE_DETAIL, {"service_id": service_id, "start": start, "day_start": day_start,
                                               "end": end}).all()
    if not rows:
        return None
    first = rows[0]
    checks_found = [
        CheckDetail(r.check_id, r.service_id, r.service_name, r.state or UNKNOWN, r.cause or "", r.detail or "",
                    r.since, bool(r.flapping), int(r.results_24h or 0), int(r.failures_24h or 0),
                    int(r.results_7d or 0), int(r.failures_7d or 0), r.p95_7d_ms)
        for r in rows if r.check_id is not None
    ]
    return ServiceDetail(service_id, first.service_name, first.owner, first.criticality,
                         first.service_state or UNKNOWN, first.service_since, checks_found)


def open_incidents(connection: Connection, service_id: str | None = None) -> list[Incident]:
    if service_id is None:
        rows = connection.execute(OPEN_INCIDENTS)
    else:
        rows = connection.execute(OPEN_INCIDENTS_OF_SERVICE, {"service_id": service_id})
    return [Incident(*row) for row in rows.all()]


def current_and_upcoming_windows(connection: Connection, now: datetime,
                                 service_id: str | None = None) -> list[Window]:
    if service_id is None:
        rows = connection.execute(WINDOWS, {"now": now}).all()
    else:
        rows = connection.execute(WINDOWS_OF_SERVICE, service_windows_params(now, service_id)).all()
    found = [
        Window(row.id, row.key, list(row.service_ids or []), row.starts_at, row.ends_at, row.reason or "",
               row.created_by or "", row.starts_at <= now)
        for row in rows
    ]
    # The text match is a filter for the database; the parsed list decides.
    return found if service_id is None else [window for window in found if service_id in window.service_ids]


def silenced_services(found: list[Window]) -> set[str]:
    """The services an active window covers (their checks are recorded, nobody is paged)."""
    return {service for window in found if window.active for service in window.service_ids}


def service_history(connection: Connection, service_id: str, start: datetime, end: datetime) -> list[HourPoint]:
    rows = connection.execute(SERVICE_HISTORY, {"service_id": service_id, "start": start, "end": end}).all()
    return [HourPoint(hour, int(results or 0), int(failures or 0), p50, p95)
            for hour, results, failures, p50, p95 in rows]
