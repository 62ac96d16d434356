"""Carrying out an incident plan against the trackers, idempotently, and queueing its messages.

The order of writes is chosen so that a task killed at any point and retried ends with one
ticket, one comment per change and one message per event:

1. ``Open`` inserts the incident row first (a partial unique index allows one open row per
   dedup key), so our database claims the key before any ticket exists.
2. A repair pass then gives every open incident without a ticket its ticket: it *searches
   the tracker by the dedup key* before creating one, so a ticket created by a killed try is
   adopted, not duplicated.
3. Comments carry a marker (``[prep-support <key> #n]``) that is looked for before posting.
4. Messages go to the outbox (``notifications``) under deterministic keys with
   ON CONFLICT DO NOTHING; sending them is another task's job.
5. ``Reopen`` moves the ticket back first (marked comment, then the transition, both safe to
   repeat) and then the row, so a killed try is planned and finished again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, select, update

from prep_support.catalog import Catalog, Service
from prep_support.health import FLAPPING
from prep_support.incidents import DATA, Action, Open, OpenIncident, Reopen, Resolve, Update, plan
from prep_support.messages import human_duration, render, render_slack
from prep_support.results import dialect_insert
from prep_support.routing import ResolvedRoute, Routing
from prep_support.schema import IncidentRow, NotificationRow

incidents = IncidentRow.__table__
notifications = NotificationRow.__table__
# Kinds whose changes of evidence go on the ticket only: a flapping check would repeat itself, and a data
# incident gains a day per catch-up run; the channels hear when it opens, re-opens and resolves.
QUIET_UPDATES = {FLAPPING, DATA}


@dataclass(frozen=True)
class Ticket:
    key: str
    id: str
    url: str | None


class Tracker(Protocol):
    """What reconciliation needs of Jira or ServiceNow; every method is safe to repeat."""

    def find_open(self, dedup_key: str) -> Ticket | None: ...

    def create(self, *, dedup_key: str, summary: str, description: str, route: ResolvedRoute) -> Ticket: ...

    def comment(self, ticket: Ticket, marker: str, text: str) -> None: ...

    def resolve(self, ticket: Ticket, marker: str, text: str) -> None: ...

    def attach(self, ticket: Ticket, file_name: str, content: bytes) -> None: ...

    def reopen(self, ticket: Ticket, marker: str, text: str) -> None: ...

    def link(self, ticket: Ticket, previous: Ticket) -> None: ...


TrackerFor = Callable[[ResolvedRoute], Tracker]


def open_incidents(engine: Engine) -> list[OpenIncident]:
    with engine.connect() as connection:
        rows = connection.execute(select(incidents).where(incidents.c.status == "open"))
        return [OpenIncident(r.id, r.dedup_key, r.service_id, r.check_id, r.kind, r.state, r.evidence,
                             r.upstream_incident_id) for r in rows]


def reconcile_now(engine: Engine, catalog: Catalog, routing: Routing, tracker_for: TrackerFor, run_id: str,
                  now: datetime) -> dict[str, Any]:
    """Plan from the health the last sweep stored, skip services in maintenance, and carry the plan out."""
    from prep_support.maintenance import services_in_maintenance
    from prep_support.monitoring import current_health

    checks, service_states = current_health(engine, catalog)
    quiet = services_in_maintenance(engine, now)
    depends_on = {service.id: service.depends_on for service in catalog.services}
    # Health owns the incidents of its checks; a data incident stays open while its days fail, whatever the sweep.
    ours = [incident for incident in open_incidents(engine) if incident.kind != DATA]
    actions = plan(checks, service_states, depends_on, ours, quiet)
    done: dict[str, Any] = apply(engine, actions, catalog, routing, tracker_for, run_id, now)
    return done | {"in_maintenance": sorted(quiet), "actions": [repr(action) for action in actions]}


def apply(engine: Engine, actions: Iterable[Action], catalog: Catalog, routing: Routing, tracker_for: TrackerFor,
          run_id: str, now: datetime) -> dict[str, int]:
    """Carry out the plan, then repair whatever an earlier, interrupted try left half done."""
    services = {service.id: service for service in catalog.services}
    done = {"opened": 0, "linked": 0, "updated": 0, "resolved": 0, "reopened": 0}
    for action in actions:
        if isinstance(action, Open):
            done["linked" if _insert_incident(engine, action, services, routing, run_id, now) else "opened"] += 1
    for action in actions:
        if isinstance(action, Update):
            _update(engine, action, services, routing, tracker_for, now)
            done["updated"] += 1
        elif isinstance(action, Resolve):
            # Marked first, resolved in the tracker by the repair pass: a killed try is finished next time.
            with engine.begin() as connection:
                connection.execute(update(incidents).where(incidents.c.id == action.incident_id,
                                                           incidents.c.status == "open")
                                   .values(status="resolving", updated_at=now))
            done["resolved"] += 1
        elif isinstance(action, Reopen):
            _reopen(engine, action, services, routing, tracker_for, now)
            done["reopened"] += 1
    _repair(engine, services, routing, tracker_for, now, reasons={
        a.incident_id: a.reason for a in actions if isinstance(a, Resolve)
    })
    return done


def _insert_incident(engine: Engine, action: Open, services: dict[str, Service], routing: Routing, run_id: str,
                     now: datetime) -> bool:
    """Claim the dedup key with an open row; returns whether it was linked to an upstream incident."""
    route = routing.route(services[action.service_id])
    with engine.begin() as connection:
        upstream_id = None
        if action.upstream_service:
            upstream_id = connection.execute(
                select(incidents.c.id).where(incidents.c.service_id == action.upstream_service,
                                             incidents.c.status == "open", incidents.c.upstream_incident_id.is_(None))
                .order_by(incidents.c.id).limit(1)
            ).scalar()
        values = {"dedup_key": action.dedup_key, "service_id": action.service_id, "check_id": action.check_id,
                  "kind": action.kind, "status": "open", "state": action.state, "priority": route.priority,
                  "tracker": None if upstream_id else route.tracker.system, "upstream_incident_id": upstream_id,
                  "evidence": action.evidence, "updates": 0, "opened_run_id": run_id, "opened_at": now,
                  "updated_at": now}
        connection.execute(_insert_ignore(connection, incidents, values, "dedup_key",
                                          where=incidents.c.status == "open"))
    return upstream_id is not None


def _update(engine: Engine, action: Update, services: dict[str, Service], routing: Routing,
            tracker_for: TrackerFor, now: datetime) -> None:
    with engine.connect() as connection:
        row = connection.execute(select(incidents).where(incidents.c.id == action.incident_id)).one()
    number = row.updates + 1
    context = _context(row, services, event="updated", state=action.state, evidence=action.evidence)
    if row.ticket_key:
        route = routing.route(services[row.service_id])
        ticket = Ticket(row.ticket_key, row.ticket_id, row.ticket_url)
        tracker_for(route).comment(ticket, f"[prep-support {row.dedup_key} #{number}]",
                                   render("notifications/ticket.txt.j2", **context))
    with engine.begin() as connection:
        connection.execute(update(incidents).where(incidents.c.id == row.id, incidents.c.updates == row.updates)
                           .values(state=action.state, evidence=action.evidence, updates=number, updated_at=now))
        if row.upstream_incident_id is None and row.kind not in QUIET_UPDATES:
            _enqueue(connection, row.id, f"update-{number}", "updated", services[row.service_id], routing, context,
                     now)


def _reopen(engine: Engine, action: Reopen, services: dict[str, Service], routing: Routing,
            tracker_for: TrackerFor, now: datetime) -> None:
    """The resolved incident is open again: its ticket moves back with a comment, the channels hear it once."""
    with engine.connect() as connection:
        row = connection.execute(select(incidents).where(incidents.c.id == action.incident_id)).one()
    if row.status != "resolved":
        return
    number = row.updates + 1
    context = _context(row, services, event="reopened", state=action.state, evidence=action.evidence)
    if row.ticket_key:
        ticket = Ticket(row.ticket_key, row.ticket_id, row.ticket_url)
        tracker_for(routing.route(services[row.service_id])).reopen(
            ticket, f"[prep-support {row.dedup_key} reopened #{number}]", render("notifications/ticket.txt.j2",
                                                                                 **context))
    with engine.begin() as connection:
        changed = connection.execute(
            update(incidents).where(incidents.c.id == row.id, incidents.c.status == "resolved",
                                    incidents.c.updates == row.updates)
            .values(status="open", state=action.state, evidence=action.evidence, updates=number, resolved_at=None,
                    updated_at=now)).rowcount
        if changed and row.upstream_incident_id is None:
            _enqueue(connection, row.id, f"reopened-{number}", "reopened", services[row.service_id], routing,
                     context, now)


def _repair(engine: Engine, services: dict[str, Service], routing: Routing, tracker_for: TrackerFor, now: datetime,
            reasons: dict[int, str]) -> None:
    with engine.connect() as connection:
        pending = connection.execute(
            select(incidents).where(
                ((incidents.c.status == "open") & incidents.c.ticket_key.is_(None)
                 & incidents.c.upstream_incident_id.is_(None))
                | (incidents.c.status == "resolving")
            ).order_by(incidents.c.id)
        ).all()
    for row in pending:
        service = services.get(row.service_id)
        if service is None:
            continue
        route = routing.route(service)
        tracker = tracker_for(route) if row.upstream_incident_id is None else None
        if row.status == "open":
            ticket = _ensure_ticket(tracker, row, service, route)
            previous = _previous_ticket(engine, row)
            if previous is not None:
                tracker.link(ticket, previous)
            context = _context(row, services, event="opened", ticket=ticket)
            with engine.begin() as connection:
                connection.execute(update(incidents).where(incidents.c.id == row.id).values(
                    ticket_key=ticket.key, ticket_id=ticket.id, ticket_url=ticket.url, updated_at=now))
                _enqueue(connection, row.id, "opened" if row.kind != FLAPPING else "flapping",
                         "opened" if row.kind != FLAPPING else "flapping", service, routing, context, now)
        else:
            reason = reasons.get(row.id, "recovered")
            context = _context(row, services, event="resolved", reason=reason, duration=human_duration(
                now - row.opened_at))
            if tracker is not None and row.ticket_key:
                ticket = Ticket(row.ticket_key, row.ticket_id, row.ticket_url)
                tracker.resolve(ticket, f"[prep-support {row.dedup_key} resolved{_cycle(row)}]",
                                render("notifications/ticket.txt.j2", **context))
            with engine.begin() as connection:
                connection.execute(update(incidents).where(incidents.c.id == row.id).values(
                    status="resolved", resolved_at=now, updated_at=now))
                if row.upstream_incident_id is None:
                    _enqueue(connection, row.id, f"resolved{_cycle(row)}", "resolved", service, routing, context, now)


def _cycle(row) -> str:
    """Tells apart the resolutions of an incident that can be re-opened (data): each is marked and told once.
    Re-opening counts as an update, so the update number differs from one resolution to the next."""
    return f"-{row.updates}" if row.kind == DATA else ""


def _previous_ticket(engine: Engine, row) -> Ticket | None:
    """The ticket of the last resolved incident of the same key, which a recurrence links to."""
    if row.kind != DATA:
        return None
    with engine.connect() as connection:
        previous = connection.execute(
            select(incidents).where(incidents.c.dedup_key == row.dedup_key, incidents.c.id != row.id,
                                    incidents.c.status == "resolved", incidents.c.ticket_key.is_not(None))
            .order_by(incidents.c.resolved_at.desc(), incidents.c.id.desc()).limit(1)).first()
    return Ticket(previous.ticket_key, previous.ticket_id, previous.ticket_url) if previous else None


def _ensure_ticket(tracker: Tracker, row, service: Service, route: ResolvedRoute) -> Ticket:
    """The incident's ticket: the open one carrying its dedup key, or a new one."""
    existing = tracker.find_open(row.dedup_key)
    if existing is not None:
        return existing
    context = _context(row, {service.id: service}, event="opened")
    summary = f"[{service.criticality.upper()}] {service.name} {row.state}: {row.check_id} ({row.kind})"
    return tracker.create(dedup_key=row.dedup_key, summary=summary,
                          description=render("notifications/ticket.txt.j2", **context), route=route)


def _context(row, services: dict[str, Service], *, event: str, ticket: Ticket | None = None, **extra) -> dict:
    incident = dict(row._mapping)
    incident.update({k: v for k, v in extra.items() if k in ("state", "evidence")})
    if ticket is not None:
        incident.update(ticket_key=ticket.key, ticket_url=ticket.url)
    service = services[row.service_id]
    return {"event": event, "incident": incident, "service": service, "check_id": row.check_id,
            "changes": extra.get("changes", "several"), "reason": extra.get("reason", ""),
            "duration": extra.get("duration", "")}


def _enqueue(connection: Connection, incident_id: int, step: str, event: str, service: Service, routing: Routing,
             context: dict, now: datetime) -> None:
    """One outbox row per channel of the service's route, under a key that makes it once only."""
    route = routing.route(service)
    context = {**context, "event": event}
    rows = []
    channels = route.channels
    if channels.slack:  # evidence quotes what monitored systems answered: escaped for Slack
        rows.append(("slack", channels.slack.conn_id, route.slack_channel, "",
                     render_slack("notifications/incident.txt.j2", **context)))
    if channels.teams:
        rows.append(("teams", channels.teams.conn_id, f"{service.name} ({service.id})", "",
                     render("notifications/incident.txt.j2", **context)))
    if route.channels.email:
        headline = {"opened": f"{context['incident']['state']}", "updated": f"now {context['incident']['state']}",
                    "reopened": f"{context['incident']['state']} again", "resolved": "recovered",
                    "flapping": "flapping"}[event]
        html = render("notifications/incident_email.html.j2", headline=headline, **context)
        rows.append(("email", channels.email.conn_id, ",".join(channels.email.to),
                     f"[{service.name}] {headline}: {context['check_id']}", html))
    for channel, conn_id, target, subject, body in rows:
        queue_message(connection, key=f"incident:{incident_id}:{step}:{channel}", incident_id=incident_id,
                      event=event, channel=channel, conn_id=conn_id, target=target, subject=subject, body=body,
                      now=now)


def queue_message(connection: Connection, *, key: str, incident_id: int | None, event: str, channel: str,
                  conn_id: str, target: str, subject: str, body: str, now: datetime) -> None:
    """Put a message in the outbox once: a second call with the same key does nothing."""
    connection.execute(_insert_ignore(connection, notifications, {
        "key": key, "incident_id": incident_id, "event": event, "channel": channel, "conn_id": conn_id,
        "target": target, "subject": subject, "body": body, "status": "pending", "attempts": 0,
        "last_error": "", "created_at": now,
    }, "key"))


def _insert_ignore(connection: Connection, table, values: dict, key: str, where=None):
    statement = dialect_insert(connection, table).values(**values)
    if where is not None:
        return statement.on_conflict_do_nothing(index_elements=[key], index_where=where)
    return statement.on_conflict_do_nothing(index_elements=[key])

