"""The JSON variants of the pages (``/api/...``): the same rows, times in ISO 8601 UTC.

Ticket URLs pass the same http(s) filter as the pages' links, so a client that renders them as links
cannot be handed a ``javascript:`` URL either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prep_support.dashboard.queries import CheckHealth, HourPoint, Incident, ServiceDetail, ServiceSummary, Window
from prep_support.dashboard.render import safe_url


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def summary_payload(service: ServiceSummary) -> dict[str, Any]:
    return {
        "id": service.id, "name": service.name, "criticality": service.criticality, "state": service.state,
        "since": iso(service.since), "in_maintenance": service.in_maintenance,
        "checks": {"total": service.checks, "ok": service.ok, "degraded": service.degraded, "down": service.down,
                   "unknown": service.unknown, "flapping": service.flapping},
        "last_24h": {"results": service.results_24h, "failures": service.failures_24h,
                     "availability_pct": service.availability_24h_pct, "peak_p95_ms": service.peak_p95_24h_ms},
    }


def check_payload(check: CheckHealth) -> dict[str, Any]:
    return {"check_id": check.check_id, "service_id": check.service_id, "state": check.state, "cause": check.cause,
            "detail": check.detail, "since": iso(check.since), "flapping": check.flapping}


def service_payload(service: ServiceDetail) -> dict[str, Any]:
    return {
        "id": service.id, "name": service.name, "owner": service.owner, "criticality": service.criticality,
        "state": service.state, "since": iso(service.since), "in_maintenance": service.in_maintenance,
        "checks": [
            {**check_payload(check), "availability_24h_pct": check.availability_24h_pct,
             "availability_7d_pct": check.availability_7d_pct, "p95_7d_ms": check.p95_7d_ms,
             "results_7d": check.results_7d, "failures_7d": check.failures_7d}
            for check in service.checks
        ],
    }


def incident_payload(incident: Incident) -> dict[str, Any]:
    upstream = None
    if incident.upstream_id is not None:
        upstream = {"id": incident.upstream_id, "dedup_key": incident.upstream_key,
                    "ticket_key": incident.upstream_ticket_key,
                    "ticket_url": safe_url(incident.upstream_ticket_url)}
    return {
        "id": incident.id, "dedup_key": incident.dedup_key, "service_id": incident.service_id,
        "check_id": incident.check_id, "kind": incident.kind, "state": incident.state,
        "priority": incident.priority, "ticket_key": incident.ticket_key, "ticket_url": safe_url(incident.ticket_url),
        "evidence": incident.evidence, "opened_at": iso(incident.opened_at), "updated_at": iso(incident.updated_at),
        "upstream": upstream,
    }


def window_payload(window: Window) -> dict[str, Any]:
    return {
        "id": window.id, "key": window.key, "service_ids": window.service_ids, "starts_at": iso(window.starts_at),
        "ends_at": iso(window.ends_at), "reason": window.reason, "created_by": window.created_by,
        "active": window.active,
    }


def history_payload(points: list[HourPoint]) -> list[dict[str, Any]]:
    return [
        {"hour": iso(p.hour), "results": p.results, "failures": p.failures, "availability_pct": p.availability_pct,
         "p50_ms": p.p50_ms, "p95_ms": p.p95_ms}
        for p in points
    ]
