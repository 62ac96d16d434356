"""The ``outages`` table: one row per outage id, the source of the status pages and the known-issues page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from prep_support.outages import CLOSED, CURRENT, SCHEDULED, OutageRequest, incident_outage_id
from prep_support.schema import OutageRow

outages = OutageRow.__table__


def get(engine: Engine, outage_id: str) -> Any | None:
    with engine.connect() as connection:
        return connection.execute(select(outages).where(outages.c.id == outage_id)).first()


def open_for_service(engine: Engine, service_id: str) -> list[Any]:
    """The service's outages that are not over (scheduled, active or in progress), oldest first."""
    with engine.connect() as connection:
        return connection.execute(
            select(outages).where(outages.c.service_id == service_id, outages.c.status.not_in(CLOSED))
            .order_by(outages.c.starts_at)
        ).all()


def record_announcement(engine: Engine, request: OutageRequest, *, status: str, affected: list[str], run_id: str,
                        now: datetime) -> Any:
    """Insert the outage once; a repeated announcement of the same id keeps the row (and its status)."""
    with engine.begin() as connection:
        existing = connection.execute(select(outages).where(outages.c.id == request.outage_id)).first()
        if existing is None:
            connection.execute(insert(outages).values(
                id=request.outage_id, service_id=request.service_id, kind=request.kind, severity=request.severity,
                status=status, impact=request.impact, workaround=request.workaround, channels=list(request.channels),
                affected=affected, starts_at=request.starts_at, expected_end=request.expected_end, ended_at=None,
                last_update="", source=request.source, incident_key=request.incident.get("dedup_key"),
                created_run_id=run_id, announced_by=request.requested_by, created_at=now, updated_at=now,
            ))
        return connection.execute(select(outages).where(outages.c.id == request.outage_id)).one()


def set_values(engine: Engine, outage_id: str, now: datetime, **values: Any) -> Any:
    with engine.begin() as connection:
        connection.execute(update(outages).where(outages.c.id == outage_id).values(updated_at=now, **values))
        return connection.execute(select(outages).where(outages.c.id == outage_id)).one()


def listing(engine: Engine) -> dict[str, list[Any]]:
    """Current outages (active, in progress) and upcoming maintenance (scheduled), by start."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(outages).where(outages.c.status.in_((*CURRENT, SCHEDULED))).order_by(outages.c.starts_at)
        ).all()
    return {"current": [r for r in rows if r.status in CURRENT], "upcoming": [r for r in rows if r.status == SCHEDULED]}


def critical_incidents_opened(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    """Incidents this health_sweep run opened that are outages: a critical service down, with its own ticket.

    Linked incidents (a dependant of a down service) and flapping ones are not; the list is the
    ``extra`` of the CRITICAL_INCIDENTS asset event, JSON only.
    """
    from prep_support.health import DOWN
    from prep_support.routing import PRIORITIES
    from prep_support.schema import IncidentRow

    incidents = IncidentRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(incidents).where(
            incidents.c.opened_run_id == run_id, incidents.c.upstream_incident_id.is_(None),
            incidents.c.priority == PRIORITIES["critical"], incidents.c.state == DOWN,
            incidents.c.kind != "flapping",
        ).order_by(incidents.c.id)).all()
    return [{"incident_id": r.id, "dedup_key": r.dedup_key, "service_id": r.service_id, "check_id": r.check_id,
             "kind": r.kind, "state": r.state, "evidence": r.evidence, "tracker": r.tracker,
             "ticket_key": r.ticket_key, "ticket_id": r.ticket_id, "ticket_url": r.ticket_url,
             "opened_at": r.opened_at.isoformat()} for r in rows]


def incident_outages_to_resolve(engine: Engine) -> list[dict[str, Any]]:
    """Outages announced for a monitoring incident that is resolved while the outage is not.

    Each outage is matched to its own incident: the same key, and the outage id derived from that
    incident's key and opening (an incident re-opened later under the same key is another outage).
    The state, not one run's changes: an outage_comms run that failed is retried by the next sweep.
    The list is the ``resolved`` part of the CRITICAL_INCIDENTS asset event's ``extra``, JSON only.
    """
    from prep_support.schema import IncidentRow

    incidents = IncidentRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(
            select(outages.c.id.label("outage_id"), incidents.c.id.label("incident_id"), incidents.c.dedup_key,
                   incidents.c.service_id, incidents.c.check_id, incidents.c.status, incidents.c.opened_at,
                   incidents.c.resolved_at, incidents.c.updated_at)
            .join_from(outages, incidents, incidents.c.dedup_key == outages.c.incident_key)
            .where(outages.c.source == "incident", outages.c.status.not_in(CLOSED))
            .order_by(outages.c.id, incidents.c.id)
        ).all()
    matches: dict[str, list[Any]] = {}
    for row in rows:
        if incident_outage_id(row.dedup_key, row.opened_at) == row.outage_id:
            matches.setdefault(row.outage_id, []).append(row)
    resolved = []
    for outage_id, found in matches.items():
        # Re-opened within the same minute, the incident has the same outage id: that outage is not over.
        if any(r.status != "resolved" for r in found):
            continue
        last = found[-1]
        resolved.append({"outage_id": outage_id, "incident_id": last.incident_id, "dedup_key": last.dedup_key,
                         "service_id": last.service_id, "check_id": last.check_id,
                         "opened_at": last.opened_at.isoformat(),
                         "resolved_at": (last.resolved_at or last.updated_at).isoformat()})
    return resolved
