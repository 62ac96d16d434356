"""What shift_handover reads from the support database, and its record of each handover.

Incidents are read with the columns the table has now: a ``diagnosis`` column (added by the
diagnosis work) is shown when present and its value set, and needs no change here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, insert, select

from prep_support.schema import (
    AccessCampaignRow,
    IncidentRow,
    MaintenanceWindowRow,
    OutageRow,
    QualityResultRow,
    ShiftHandoverRow,
    UatCycleRow,
)
from prep_support.shifts import (
    Deadline,
    FailingDay,
    MaintenanceStart,
    OpenIncident,
    OutageItem,
)

handovers = ShiftHandoverRow.__table__


def open_incidents(engine: Engine) -> list[OpenIncident]:
    incidents = Table(IncidentRow.__tablename__, MetaData(), autoload_with=engine)
    has_diagnosis = "diagnosis" in incidents.c
    with engine.connect() as connection:
        rows = connection.execute(select(incidents).where(incidents.c.status == "open")
                                  .order_by(incidents.c.opened_at)).all()
    return [OpenIncident(key=r.dedup_key, service_id=r.service_id, kind=r.kind, priority=r.priority, state=r.state,
                         opened_at=_utc(r.opened_at), updated_at=_utc(r.updated_at), ticket_key=r.ticket_key,
                         ticket_url=r.ticket_url, diagnosis=_text(r.diagnosis) if has_diagnosis else None)
            for r in rows]


def outages(engine: Engine, until: datetime) -> list[OutageItem]:
    """Outages in progress, and scheduled ones starting before ``until``."""
    table = OutageRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table).where(
            table.c.status.in_(("active", "in_progress", "scheduled")), table.c.starts_at < until)).all()
    return [OutageItem(r.id, r.service_id, r.kind, r.status, r.starts_at, r.expected_end, r.ticket_url) for r in rows]


def failing_days(engine: Engine, since: datetime, suite_services: Mapping[str, str]) -> list[FailingDay]:
    """Days whose data failed a ``fail`` check in a validation since ``since``, per suite."""
    table = QualityResultRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.suite_id, table.c.check_id, table.c.interval_start).where(
            table.c.severity == "fail", table.c.success.is_(False), table.c.evaluated_at >= since)).all()
    days: dict[tuple[str, Any], set[str]] = defaultdict(set)
    for row in rows:
        days[(row.suite_id, row.interval_start.date())].add(row.check_id)
    return [FailingDay(suite, suite_services.get(suite, ""), day, tuple(sorted(checks)))
            for (suite, day), checks in sorted(days.items())]


def maintenance_starting(engine: Engine, start: datetime, end: datetime) -> list[MaintenanceStart]:
    table = MaintenanceWindowRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table).where(table.c.starts_at >= start, table.c.starts_at < end)).all()
    return [MaintenanceStart(tuple(r.service_ids), r.starts_at, r.ends_at, r.reason) for r in rows]


def deadlines(engine: Engine, review_timeout: timedelta | None) -> list[Deadline]:
    """UAT cycles still testing, and access reviews waiting for reviewers, with when they are due."""
    uat, campaigns = UatCycleRow.__table__, AccessCampaignRow.__table__
    with engine.connect() as connection:
        cycles = connection.execute(select(uat).where(uat.c.status == "testing")).all()
        reviews = connection.execute(select(campaigns).where(
            campaigns.c.status == "review", campaigns.c.review_started_at.is_not(None))).all()
    found = [Deadline("UAT", r.release, r.deadline, r.report_url) for r in cycles]
    if review_timeout is not None:
        found += [Deadline("access review", r.id, r.review_started_at + review_timeout, r.page_url) for r in reviews]
    return found


def last_handover(engine: Engine, team: str, before: datetime) -> datetime | None:
    with engine.connect() as connection:
        return connection.execute(select(handovers.c.shift_start).where(
            handovers.c.team == team, handovers.c.shift_start < before)
            .order_by(handovers.c.shift_start.desc()).limit(1)).scalar()


def record_handover(connection: Connection, *, team: str, shift_start: datetime, shift_end: datetime,
                    since: datetime, items: int, summary: dict[str, Any], now: datetime) -> bool:
    """Keep the handover once: False when this shift's handover of the team was already recorded."""
    found = connection.execute(select(handovers.c.id).where(
        handovers.c.team == team, handovers.c.shift_start == shift_start)).first()
    if found is not None:
        return False
    connection.execute(insert(handovers).values(
        team=team, shift_start=shift_start, shift_end=shift_end, since=since, items=items, summary=summary,
        page_url=None, created_at=now))
    return True


def record_page(engine: Engine, team: str, shift_start: datetime, url: str) -> None:
    with engine.begin() as connection:
        connection.execute(handovers.update().where(handovers.c.team == team, handovers.c.shift_start == shift_start)
                           .values(page_url=url))


def _utc(value: datetime) -> datetime:
    """A reflected SQLite column gives naive UTC datetimes (the model's UtcDateTime is not applied)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None
