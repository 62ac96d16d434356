"""Outage communication: plan the run's outage requests, then tell every channel once.

- :class:`PlanOutagesOperator` turns the form (or the critical-incident asset events that
  triggered the run: incidents opened are announced, outages whose incident was resolved are
  resolved) into outage requests and checks them; it changes nothing, so a bad form fails here
  before any message leaves.
- :class:`CommunicateOutageOperator` carries a stage out for each request: the run's action
  (announce, update, resolve), or a planned outage's reminder, start and completion. Each channel
  send is claimed in the notification ledger under ``outage:<id>:<event>:<channel>`` before it is
  made and recorded after, so a retried or cleared task sends only what was not sent. Then the
  static status page and the Confluence "Known issues" page are rebuilt from the ``outages`` table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from operators.support_state import SupportStateOperator
from prep_support import approvals

if TYPE_CHECKING:
    from airflow.sdk import Context
    from sqlalchemy import Engine

    from prep_support.catalog import Catalog
    from prep_support.outages import OutageRequest
    from prep_support.routing import Routing

STAGES = ("request", "reminder", "in_progress", "completed")
KNOWN_ISSUES_TITLE = "Known issues"
PLAN_TASK_ID = "plan_outages"


class OutagesNotFullyAnnounced(RuntimeError):
    """Some channels failed; what was sent is recorded and the retry sends only the rest."""


def entries_from_events(events: Any, part: str) -> list[dict[str, Any]]:
    """One list (``incidents`` opened, or ``resolved``) of the ``extra`` of the CRITICAL_INCIDENTS asset
    events that triggered a run, all events together."""
    from support_assets import CRITICAL_INCIDENTS

    entries: list[dict[str, Any]] = []
    if not events:
        return entries
    for event in events[CRITICAL_INCIDENTS] if CRITICAL_INCIDENTS in events else []:
        entries.extend((event.extra or {}).get(part, []))
    return entries


class PlanOutagesOperator(SupportStateOperator):
    """Validate the run's request(s); returns them as JSON and pushes the planned outage's times.

    XComs ``reminder_at``, ``starts_at`` and ``ends_at`` (ISO times) are set when the run announces
    a planned outage: the waits of its lifecycle read them.
    """

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from operators.bad_input import failing_on_bad_input
        from prep_support.catalog import load_catalog

        catalog = load_catalog(self.catalog_path)
        events = context.get("triggering_asset_events")
        incidents, resolved = entries_from_events(events, "incidents"), entries_from_events(events, "resolved")
        # The run's own time, not now: a cleared plan derives the same outage ids.
        run_after = context["dag_run"].run_after
        with failing_on_bad_input():  # OutageRequestError is bad input: fail once, before anything was sent
            requests = plan_requests(dict(context["params"]), incidents, catalog, self.support_engine(), run_after,
                                     resolved=resolved)
        # Who asked: the analyst who triggered the run; the system when an incident's asset event did.
        requester = approvals.requester(context["dag_run"].triggering_user_name)
        requests = [request.with_outage(requested_by=requester) for request in requests]
        lifecycle = next((r for r in requests if r.action == "announce" and r.planned), None)
        if lifecycle is not None:
            from prep_support.outages import reminder_at

            ti = context["ti"]
            remind_at = reminder_at(lifecycle.starts_at, lifecycle.remind_minutes)
            ti.xcom_push(key="reminder_at", value=remind_at.isoformat())
            ti.xcom_push(key="starts_at", value=lifecycle.starts_at.isoformat())
            ti.xcom_push(key="ends_at", value=lifecycle.expected_end.isoformat())
        for request in requests:
            self.log.info("%s %s outage %s of %s", request.action, request.kind, request.outage_id, request.service_id)
        return [request.to_json() for request in requests]



def plan_requests(params: dict[str, Any], incidents: list[dict[str, Any]], catalog: Catalog, engine: Engine,
                  now: datetime, resolved: list[dict[str, Any]] | None = None) -> list[OutageRequest]:
    """Requests from the asset events (incidents opened, then incidents resolved) or from the form,
    checked against the outages table."""
    from prep_support import outage_store
    from prep_support.outages import OutageRequestError, request_from_form, requests_from_incidents

    if incidents or resolved:
        return [*requests_from_incidents(incidents, catalog, params.get("channels") or ()),
                *incident_resolutions(resolved or [], engine)]
    request = request_from_form(params, catalog, now=now)
    if request.action == "announce":
        existing = outage_store.get(engine, request.outage_id)
        if existing is not None and existing.service_id != request.service_id:
            raise OutageRequestError(f"outage_id: {request.outage_id!r} is an outage of {existing.service_id}, "
                                     f"not {request.service_id}")
        # A new planned outage must still be ahead; re-running an announced one only sends what is missing.
        if existing is None and request.planned and request.expected_end <= now:
            raise OutageRequestError(f"expected_end: {request.expected_end.isoformat()} is in the past")
        return [request]
    if request.outage_id:
        row = outage_store.get(engine, request.outage_id)
        if row is None:
            raise OutageRequestError(f"outage_id: no outage {request.outage_id!r} was announced")
    else:
        candidates = outage_store.open_for_service(engine, request.service_id)
        if len(candidates) != 1:
            found = ", ".join(r.id for r in candidates) or "none"
            raise OutageRequestError(f"outage_id: give the outage to {request.action} "
                                     f"({request.service_id} has {len(candidates)} open: {found})")
        row = candidates[0]
    if row.service_id != request.service_id:
        raise OutageRequestError(f"outage_id: {row.id!r} is an outage of {row.service_id}, not {request.service_id}")
    # Updates and resolutions speak about the outage as announced, on the channels it was announced on.
    return [request.with_outage(outage_id=row.id, kind=row.kind, severity=row.severity, starts_at=row.starts_at,
                                expected_end=request.expected_end or row.expected_end,
                                impact=row.impact, workaround=request.workaround or row.workaround,
                                channels=tuple(row.channels))]


def incident_resolutions(resolved: list[dict[str, Any]], engine: Engine) -> list[OutageRequest]:
    """A resolution per outage whose monitoring incident was resolved (each once, however many events name it).

    An outage resolved by hand meanwhile is still planned: its resolution messages are in the ledger,
    so nothing is sent twice, and a channel that failed then is sent now.
    """
    from prep_support import outage_store
    from prep_support.outages import incident_resolution

    requests: dict[str, OutageRequest] = {}
    for entry in resolved:
        row = outage_store.get(engine, entry.get("outage_id") or "")
        if row is not None and row.id not in requests:
            requests[row.id] = incident_resolution(row, entry)
    return list(requests.values())


class CommunicateOutageOperator(SupportStateOperator):
    """Carry one stage out for the requests ``plan_outages`` returned (see the module docstring)."""

    template_fields = ("support_db_conn_id", "status_page_dir")

    def __init__(self, *, stage: str, catalog_path: str | None = None, routing_path: str | None = None,
                 support_db_conn_id: str = "support_db", statuspage_conn_id: str = "statuspage_default",
                 confluence_conn_id: str = "confluence_default", status_page_dir: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(catalog_path=catalog_path, routing_path=routing_path, support_db_conn_id=support_db_conn_id,
                         **kwargs)
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        self.stage = stage
        self.statuspage_conn_id = statuspage_conn_id
        self.confluence_conn_id = confluence_conn_id
        self.status_page_dir = status_page_dir

    def execute(self, context: Context) -> dict[str, Any]:
        from prep_support.outages import OutageRequest

        catalog, routing = self.load_config()
        engine = self.support_engine()
        requests = [OutageRequest.from_json(r) for r in context["ti"].xcom_pull(task_ids=PLAN_TASK_ID) or []]
        if self.stage != "request":
            requests = [r for r in requests if r.action == "announce" and r.planned]
        comms = OutageComms(engine, catalog, routing, run_id=context["run_id"], log=self.log,
                            statuspage_conn_id=self.statuspage_conn_id, confluence_conn_id=self.confluence_conn_id,
                            status_page_dir=self.status_page_dir)
        return comms.carry_out(requests, self.stage)


class OutageComms:
    """One task's worth of outage communication; every step safe to repeat."""

    def __init__(self, engine: Engine, catalog: Catalog, routing: Routing, *, run_id: str, log: Any,
                 statuspage_conn_id: str = "statuspage_default", confluence_conn_id: str = "confluence_default",
                 status_page_dir: str | None = None) -> None:
        from hooks.channels import EmailSender, SlackSender
        from hooks.trackers import Trackers

        self.engine, self.catalog, self.routing, self.run_id, self.log = engine, catalog, routing, run_id, log
        self.services = {s.id: s for s in catalog.services}
        self.statuspage_conn_id = statuspage_conn_id
        self.confluence_conn_id = confluence_conn_id
        self.status_page_dir = status_page_dir
        self.slack, self.email, self.trackers = SlackSender(), EmailSender(), Trackers()

    # --- the stages ---------------------------------------------------------------------------

    def carry_out(self, requests: list[OutageRequest], stage: str) -> dict[str, Any]:
        from prep_support import outage_store

        summary: dict[str, Any] = {"stage": stage, "outages": {}}
        failures: list[str] = []
        for request in requests:
            now = datetime.now(UTC)
            try:
                if stage == "request" and request.action == "announce":
                    outcome = self.announce(request, now)
                elif stage == "request":
                    outcome = self.follow_up(request, now)
                else:
                    outcome = self.lifecycle(request, stage, now)
            except OutagesNotFullyAnnounced as error:
                failures.append(f"{request.outage_id}: {error}")
                continue
            summary["outages"][request.outage_id] = outcome
        self.publish_pages(outage_store.listing(self.engine), datetime.now(UTC))
        if failures:
            raise OutagesNotFullyAnnounced("; ".join(failures))
        return summary

    def announce(self, request: OutageRequest, now: datetime) -> dict[str, str]:
        from prep_support import maintenance, outage_store
        from prep_support.outages import ACTIVE, SCHEDULED, affected_services

        affected = affected_services(self.catalog, request.service_id)
        row = outage_store.record_announcement(self.engine, request, status=SCHEDULED if request.planned else ACTIVE,
                                               affected=affected, run_id=self.run_id, now=now)
        if request.planned:
            # Monitoring stays quiet for the service and everything that depends on it.
            maintenance.add_window(self.engine, key=request.outage_id, service_ids=affected,
                                   starts_at=request.starts_at, ends_at=request.expected_end,
                                   reason=f"Planned outage {request.outage_id}: {request.impact}"[:2000],
                                   created_by="outage_comms", known_services=self.services)
        row = self.ensure_ticket(row, request)
        return self.send_event(row, "announced", request, now)

    def follow_up(self, request: OutageRequest, now: datetime) -> dict[str, str]:
        from prep_support import outage_store
        from prep_support.outages import CLOSED, COMPLETED, RESOLVED, update_event

        row = outage_store.get(self.engine, request.outage_id)
        if request.action == "update":
            if row.status not in CLOSED:
                row = outage_store.set_values(self.engine, row.id, now, last_update=request.update,
                                              workaround=request.workaround,
                                              expected_end=request.expected_end or row.expected_end)
            return self.send_event(row, update_event(request.update), request, now)
        if row.status not in CLOSED:
            # An incident's outage ended when monitoring resolved the incident, not when this run came.
            row = outage_store.set_values(self.engine, row.id, now, ended_at=request.ended_at or now,
                                          status=COMPLETED if row.kind == "planned" else RESOLVED,
                                          resolved_by=request.requested_by,
                                          last_update=request.update or row.last_update)
        return self.send_event(row, "resolved", request, now)

    def lifecycle(self, request: OutageRequest, stage: str, now: datetime) -> dict[str, str]:
        """A planned outage's reminder, start or completion, unless it was resolved by hand already."""
        from prep_support import outage_store
        from prep_support.outages import CLOSED, COMPLETED, IN_PROGRESS, SCHEDULED

        row = outage_store.get(self.engine, request.outage_id)
        if row is None:
            return {"outage": "not recorded"}
        # Resolved by hand (an analyst's resolve run) before this stage: its messages were the resolution.
        if row.status in CLOSED and (stage != "completed" or self.sent_any(row.id, "resolved")):
            self.log.info("%s is %s already: no %s message", row.id, row.status, stage)
            return {"outage": row.status}
        if stage == "in_progress" and row.status == SCHEDULED:
            row = outage_store.set_values(self.engine, row.id, now, status=IN_PROGRESS)
        elif stage == "completed" and row.status not in CLOSED:
            row = outage_store.set_values(self.engine, row.id, now, status=COMPLETED, ended_at=now)
        return self.send_event(row, stage, request, now)

    # --- one event on every channel -----------------------------------------------------------

    def send_event(self, row: Any, event: str, request: OutageRequest, now: datetime) -> dict[str, str]:
        """Send ``event`` once per chosen channel; raise after trying them all if any failed."""
        from prep_support import outbox
        from prep_support.outages import message_key

        texts = self.texts(row, event, request)
        outcome: dict[str, str] = {}
        failures: list[str] = []
        for channel in ("slack", "teams", "email", "statuspage"):
            if channel not in (row.channels or []):
                continue
            target = self.target(row, channel)
            if target is None:
                outcome[channel] = "not_routed"
                continue
            conn_id, address = target
            key = message_key(row.id, event, channel)
            subject = texts["subject"] if channel == "email" else ""
            body = {"slack": texts["slack"], "email": texts["email"]}.get(channel, texts["plain"])
            try:
                sent = outbox.send_once(
                    self.engine, key=key, event=_ledger_event(event), channel=channel, conn_id=conn_id,
                    target=address, subject=subject, body=body, now=now, requested_by=request.requested_by,
                    send=partial(self.deliver, channel, row, event, request, key, conn_id, address, texts))
            except Exception as error:  # noqa: BLE001 - recorded, the other channels still go; raised below
                failures.append(f"{channel}: {type(error).__name__}: {error}")
                self.log.warning("%s not sent: %s", key, error)
                continue
            outcome[channel] = "sent" if sent else "already_sent"
            self.log.info("%s %s", key, outcome[channel])
        self.ticket_note(row, event, texts["plain"], request)
        if failures:
            raise OutagesNotFullyAnnounced(f"{len(failures)} channel(s) failed for {event}: " + "; ".join(failures))
        return outcome

    def target(self, row: Any, channel: str) -> tuple[str, str] | None:
        """(Connection, address) of a channel for the outage's service, from routing.yaml."""
        service = self.services[row.service_id]
        route = self.routing.route(service)
        channels = route.channels
        if channel == "slack":
            return (channels.slack.conn_id if channels.slack else "slack_api_default",
                    route.slack_channel or service.team_channel)
        if channel == "teams":
            return (channels.teams.conn_id if channels.teams else "teams_default", f"{service.name} ({service.id})")
        if channel == "email":
            # The service's distribution list from routing.yaml, else its owner in the catalog.
            recipients = channels.email.to if channels.email else [service.owner]
            return (channels.email.conn_id if channels.email else "smtp_default", ",".join(recipients))
        return self.statuspage_conn_id, row.service_id

    def deliver(self, channel: str, row: Any, event: str, request: OutageRequest, key: str, conn_id: str,
                address: str, texts: dict[str, str]) -> Any:
        from types import SimpleNamespace

        from prep_support.outbox import Sent

        root = self.root_message(row.id, channel) if event != "announced" else None
        # "resolved" makes SlackSender strike the announcement through and reply in its thread.
        closing = event in ("resolved", "completed")
        message = SimpleNamespace(key=key, conn_id=conn_id, target=address, subject=texts["subject"],
                                  event="resolved" if closing else event,
                                  body=texts["slack"] if channel == "slack" else texts["email"])
        if channel == "slack":
            return self.slack.send(message, root)
        if channel == "email":
            return self.email.send(message, root)
        if channel == "teams":
            from hooks.teams import TeamsWebhookHook

            TeamsWebhookHook(teams_conn_id=conn_id).post_card(outage_card(texts["plain"], event))
            return Sent(message_id=key)
        return Sent(message_id=self.statuspage(row, event, request, texts["plain"]))

    def sent_any(self, outage_id: str, event: str) -> bool:
        """Whether any channel's ``event`` message of the outage is in the ledger (sent or being sent)."""
        from sqlalchemy import select

        from prep_support.outages import message_key
        from prep_support.schema import NotificationRow

        table = NotificationRow.__table__
        with self.engine.connect() as connection:
            return connection.execute(select(table.c.id).where(
                table.c.key.like(message_key(outage_id, event, "%")))).first() is not None

    def root_message(self, outage_id: str, channel: str) -> Any | None:
        """The announcement's ledger row on a channel, once sent (its thread takes the follow-ups)."""
        from sqlalchemy import select

        from prep_support.outages import message_key
        from prep_support.schema import NotificationRow

        table = NotificationRow.__table__
        with self.engine.connect() as connection:
            return connection.execute(select(table).where(
                table.c.key == message_key(outage_id, "announced", channel), table.c.status == "sent")).first()

    # --- Statuspage ---------------------------------------------------------------------------

    @cached_property
    def statuspage_hook(self) -> Any:
        from hooks.statuspage import StatuspageHook

        return StatuspageHook(statuspage_conn_id=self.statuspage_conn_id)

    def statuspage(self, row: Any, event: str, request: OutageRequest, body: str) -> str:
        """Create or move the outage's Statuspage incident (or scheduled maintenance); returns its id."""
        from prep_support import outage_store
        from prep_support.outages import COMPONENT_STATUS, DEPENDANT_STATUS

        hook = self.statuspage_hook
        affected = list(row.affected or [row.service_id])
        ids = hook.component_ids(affected)
        unknown = [name for name in affected if name not in ids]
        if unknown:
            self.log.warning("No Statuspage component named %s: left out", ", ".join(unknown))
        name = f"{self.services[row.service_id].name}: " + ("planned maintenance" if row.kind == "planned"
                                                              else f"{row.severity} outage")
        if event == "announced":
            if row.statuspage_incident_id:  # a retried or re-run announcement: the ledger has the incident
                return row.statuspage_incident_id
            if row.kind == "planned":
                incident = hook.create_incident(
                    key=row.id, name=name, status="scheduled", body=body, impact="maintenance",
                    component_statuses={i: "operational" for i in ids.values()},
                    scheduled_for=row.starts_at, scheduled_until=row.expected_end,
                    remind_minutes=request.remind_minutes or None)
            else:
                statuses = {ids[n]: (COMPONENT_STATUS[row.severity] if n == row.service_id else DEPENDANT_STATUS)
                            for n in affected if n in ids}
                incident = hook.create_incident(key=row.id, name=name, status=request.progress, body=body,
                                                impact=row.severity, component_statuses=statuses)
            outage_store.set_values(self.engine, row.id, datetime.now(UTC), statuspage_incident_id=incident["id"])
            return incident["id"]
        incident_id = row.statuspage_incident_id or (hook.find_incident(row.id, name) or {}).get("id")
        if not incident_id:
            raise RuntimeError(f"no Statuspage incident for outage {row.id}: it was not announced there")
        operational = {i: "operational" for i in ids.values()}
        if event == "in_progress":
            hook.update_incident(incident_id, status="in_progress", body=body,
                                 component_statuses={i: "under_maintenance" for i in ids.values()})
        elif event == "completed" or (event == "resolved" and row.kind == "planned"):
            hook.update_incident(incident_id, status="completed", body=body, component_statuses=operational)
        elif event == "resolved":
            hook.update_incident(incident_id, status="resolved", body=body, component_statuses=operational)
        elif event == "reminder":
            pass  # Statuspage reminds its subscribers itself (remind_minutes)
        else:
            status = row.status if row.kind == "planned" else request.progress  # scheduled | in_progress
            hook.update_incident(incident_id, status=status, body=body)
        return incident_id

    # --- the ticket ---------------------------------------------------------------------------

    def ensure_ticket(self, row: Any, request: OutageRequest) -> Any:
        """The outage's ticket: the monitoring incident's, or one opened (found first) under ``outage:<id>``."""
        from prep_support import outage_store

        if row.ticket_key:
            return row
        incident = request.incident or {}
        service = self.services[row.service_id]
        route = self.routing.route(service)
        if incident.get("ticket_key"):
            values = {"ticket_system": incident.get("tracker") or route.tracker.system,
                      "ticket_key": incident["ticket_key"], "ticket_id": str(incident.get("ticket_id") or ""),
                      "ticket_url": incident.get("ticket_url")}
        else:
            texts = self.texts(row, "announced", request)
            ticket = self.trackers(route).create(dedup_key=f"outage:{row.id}", summary=texts["subject"],
                                                 description=f"{texts['plain']}\n{by_line('announced', request)}",
                                                 route=route)
            values = {"ticket_system": route.tracker.system, "ticket_key": ticket.key, "ticket_id": ticket.id,
                      "ticket_url": ticket.url}
        return outage_store.set_values(self.engine, row.id, datetime.now(UTC), **values)

    def ticket_note(self, row: Any, event: str, text: str, request: OutageRequest) -> None:
        """Comment every event after the announcement on the ticket; resolve our own ticket at the end."""
        from prep_support.reconcile import Ticket

        if event == "announced" or not row.ticket_key:
            return
        route = self.routing.route(self.services[row.service_id])
        tracker = self.trackers(route)
        ticket = Ticket(row.ticket_key, row.ticket_id or "", row.ticket_url)
        marker = f"[prep-support outage:{row.id} {event}]"
        text = "\n".join(filter(None, [text, by_line(event, request)]))
        if event in ("resolved", "completed") and row.source != "incident":
            tracker.resolve(ticket, marker, text)
        else:
            # A monitoring incident's ticket is resolved by health_sweep when the service recovers.
            tracker.comment(ticket, marker, text)

    # --- texts and pages ----------------------------------------------------------------------

    def texts(self, row: Any, event: str, request: OutageRequest) -> dict[str, str]:
        return outage_texts(row, event, request, self.catalog)

    def publish_pages(self, listing: dict[str, list[Any]], now: datetime) -> None:
        """The static status page and the Confluence "Known issues" page, from the whole outages table."""
        from pathlib import Path

        from prep_support.messages import render
        from prep_support.status_page import page_context, status_page_dir, write_page

        names = {s.id: s.name for s in self.catalog.services}
        context = page_context([(s.id, s.name) for s in self.catalog.services], listing,
                               self.health(), names, now)
        path = write_page(Path(self.status_page_dir) if self.status_page_dir else status_page_dir(),
                          render("outage/status_page.html.j2", when=when, **context))
        self.log.info("Status page written: %s", path)
        from hooks.confluence import ConfluenceHook

        body = render("outage/known_issues.html.j2", current=listing["current"], upcoming=listing["upcoming"],
                      names=names, generated_at=now, when=when)
        page = ConfluenceHook(confluence_conn_id=self.confluence_conn_id).publish_page(KNOWN_ISSUES_TITLE, body)
        self.log.info("Confluence page %r is at version %s: %s", page.title, page.version, page.url)

    def health(self) -> dict[str, str]:
        from sqlalchemy import select

        from prep_support.schema import ServiceStateRow

        table = ServiceStateRow.__table__
        with self.engine.connect() as connection:
            return {r.service_id: r.state for r in connection.execute(select(table.c.service_id, table.c.state))}


def _ledger_event(event: str) -> str:
    return event if len(event) <= 30 else event[:30]


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def outage_texts(row: Any, event: str, request: OutageRequest, catalog: Catalog) -> dict[str, str]:
    """Slack (mrkdwn-escaped), plain (Teams, Statuspage, ticket) and e-mail (HTML) texts of one event."""
    from prep_support.messages import human_duration, render, slack_text

    names = {s.id: s.name for s in catalog.services}
    outage = dict(row._mapping)
    ended = row.ended_at or datetime.now(UTC)
    kind = "update" if event.startswith("update-") else event
    context = {"event": kind, "outage": outage, "service_name": names.get(row.service_id, row.service_id),
               "affected_names": [names.get(s, s) for s in (row.affected or [row.service_id])],
               "duration": human_duration(ended - row.starts_at), "ended_at": ended, "update": request.update,
               "progress": request.progress, "when": when}
    slack = render("outage/message.txt.j2", esc=slack_text, b=lambda s: f"*{s}*", icons=True,
                   link=lambda url: f"<{slack_text(url)}>", **context)
    plain = render("outage/message.txt.j2", esc=str, b=str, icons=False, link=str, **context)
    headline = plain.splitlines()[0].strip()
    return {"slack": slack, "plain": plain, "subject": f"[{row.kind} outage] {headline}"[:250],
            "email": render("outage/email.html.j2", headline=headline, **context)}


def by_line(event: str, request: OutageRequest) -> str:
    """Who asked for an event, for the ticket (never the public channels); empty for the timed steps of planned
    work, which nobody asks for."""
    action = {"announced": "Announced", "resolved": "Resolved"}.get(event, "Posted" if event.startswith("update")
                                                                    else "")
    return f"{action} by {request.requested_by}." if action else ""


def outage_card(text: str, event: str) -> dict[str, Any]:
    """An Adaptive Card of the text's lines, each in ``TextRun``s (never Markdown), so form text shows as typed."""
    from hooks.teams import CARD_SCHEMA, CARD_VERSION, text_runs

    style = {"announced": "attention", "resolved": "good", "completed": "good", "in_progress": "warning",
             "reminder": "accent"}.get(event, "warning")
    lines = [line for line in text.splitlines() if line.strip()]
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": style, "bleed": True,
         "items": [text_runs({"text": lines[0], "weight": "Bolder", "size": "Medium"})]},
    ]
    body += [text_runs(line) for line in lines[1:]]
    return {"$schema": CARD_SCHEMA, "type": "AdaptiveCard", "version": CARD_VERSION, "body": body,
            "msteams": {"width": "Full"}}
