"""Atlassian Statuspage stand-in: a page's components and incidents through the REST API v1.

Under ``/statuspage`` (the Connection's host is ``api.statuspage.io`` in production; the sandbox
Connection sets extra ``base_path`` ``/statuspage``), ``/v1/pages/{page_id}/...``, with the
header ``Authorization: OAuth <api key>`` on every call (401 otherwise, 404 for another page):

- ``GET components`` (``page``/``per_page``), ``PATCH components/{id}`` (``{"component": {"status"}}``)
- ``GET incidents`` (``q`` searches name, body and updates; ``page`` and ``limit``, at most 100:
  ``per_page`` is not a parameter of this list and is ignored), ``GET incidents/unresolved``,
  ``GET incidents/scheduled`` (upcoming maintenance), ``GET incidents/active_maintenance``
  (``page``/``per_page``), ``GET incidents/{id}``
- Rate limit: one request a second per API key; over it Statuspage answers 420 (or 429) with
  ``Retry-After`` (https://community.atlassian.com/t5/Statuspage-articles/Upcoming-rate-limiting-changes-to-Statuspage-REST-API/ba-p/1455362).
  The stand-in does not count requests; a fault plan ``{"status": 420, "retry_after_s": 1}``
  answers as the limit does, body ``{"error": "Rate limit exceeded"}``.
- ``POST incidents`` (201) and ``PATCH incidents/{id}``: each status, body or component change
  appends an ``incident_update``; ``resolved_at`` is set on resolved/completed; component
  statuses follow ``components``
- 422 on a value outside the documented enums

Lists are bare JSON arrays, newest incident first, as Statuspage answers them; a short page
means the last. References: https://developer.statuspage.io/ (Components: "Get a list of
components", "Update a component"; Incidents: "Get a list of incidents", "Create an incident",
"Update an incident", "Get a list of unresolved incidents", "Get a list of upcoming incidents")
and https://support.atlassian.com/statuspage/docs/what-are-incident-statuses/ for the statuses.
Errors are ``{"error": "..."}`` (``{"error": [...]}`` for validation), Statuspage's Rails-style shape.

The page ``PAGE_ID`` is seeded with one component per service of the catalog (``include/config/services.yaml``)
(name = the service id, status operational). ``GET /statuspage/_sandbox/state`` shows components
and incidents with their updates; ``DELETE`` resets to the seed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.api_route import SystemRoute

PREFIX = "/statuspage"
FAULT_PREFIX = "/statuspage/"
PAGE_ID = "prepsupport01"
API_KEY = "sandbox-statuspage-api-key"
SERVICES_FILE = Path(__file__).resolve().parent.parent / "include" / "config" / "services.yaml"
DEFAULT_PER_PAGE, MAX_PER_PAGE = 100, 100
REALTIME_STATUSES = ("investigating", "identified", "monitoring", "resolved", "postmortem")
SCHEDULED_STATUSES = ("scheduled", "in_progress", "verifying", "completed")
CLOSED_STATUSES = ("resolved", "postmortem", "completed")
COMPONENT_STATUSES = ("operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage")
IMPACTS = ("none", "maintenance", "minor", "major", "critical")
# The impact Statuspage derives from the worst component status when no impact_override is given.
IMPACT_OF_STATUS = {"operational": "none", "under_maintenance": "maintenance", "degraded_performance": "minor",
                    "partial_outage": "major", "major_outage": "critical"}
_ID_ALPHABET = string.ascii_lowercase + string.digits


class StatuspageError(Exception):
    def __init__(self, status: int, error: str | list[str]) -> None:
        super().__init__(str(error))
        self.status, self.error = status, error

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error}, status_code=self.status)


def error_body(status: int) -> dict[str, Any]:
    """The body of an injected fault."""
    return {"error": "Rate limit exceeded" if status in (420, 429) else f"Injected fault: HTTP {status}"}


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def component_id(name: str) -> str:
    """A stable 12-character id per component name, so ids survive a reset."""
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return "".join(_ID_ALPHABET[(digest >> (6 * i)) % len(_ID_ALPHABET)] for i in range(12))


def seeded_services(path: Path | None = None) -> list[tuple[str, str]]:
    """(service id, service name) of every catalog entry; the sandbox does not need the whole catalog model.

    The catalog is ``PREP_SUPPORT_CATALOG`` when set (as for the DAGs), else include/config/services.yaml.
    """
    path = path or Path(os.environ.get("PREP_SUPPORT_CATALOG") or SERVICES_FILE)
    data = yaml.safe_load(path.read_text()) or {}
    return [(str(entry["id"]), str(entry.get("name", entry["id"]))) for entry in data.get("services", [])]


@dataclass
class Component:
    id: str
    name: str
    description: str
    position: int
    status: str = "operational"
    created_at: str = field(default_factory=timestamp)
    updated_at: str = field(default_factory=timestamp)

    def shown(self) -> dict[str, Any]:
        return {"id": self.id, "page_id": PAGE_ID, "group_id": None, "created_at": self.created_at,
                "updated_at": self.updated_at, "group": False, "name": self.name, "description": self.description,
                "position": self.position, "status": self.status, "showcase": True, "only_show_if_degraded": False,
                "automation_email": f"component+{self.id}@notifications.statuspage.io", "start_date": None}


@dataclass
class Incident:
    id: str
    name: str
    status: str
    impact_override: str | None
    metadata: dict[str, Any]
    component_ids: list[str]
    scheduled: dict[str, Any]
    updates: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    created_at: str = field(default_factory=timestamp)
    updated_at: str = field(default_factory=timestamp)
    monitoring_at: str | None = None
    resolved_at: str | None = None

    @property
    def is_scheduled(self) -> bool:
        return self.status in SCHEDULED_STATUSES

    def text(self) -> str:
        return "\n".join([self.name, *(u["body"] for u in self.updates)]).lower()


class StatusPage:
    """The sandbox's one page: components seeded from the catalog, incidents as created."""

    def __init__(self, services: list[tuple[str, str]] | None = None) -> None:
        self.services = seeded_services() if services is None else services
        self.reset()

    def reset(self) -> None:
        self.components = {
            component_id(service_id): Component(component_id(service_id), service_id, name, position)
            for position, (service_id, name) in enumerate(self.services, start=1)
        }
        self.incidents: dict[str, Incident] = {}

    def component(self, ident: str) -> Component:
        found = self.components.get(ident)
        if found is None:
            raise StatuspageError(404, f"Component {ident} not found")
        return found

    def incident(self, ident: str) -> Incident:
        found = self.incidents.get(ident)
        if found is None:
            raise StatuspageError(404, f"Incident {ident} not found")
        return found

    def set_component_status(self, component: Component, status: Any) -> dict[str, Any] | None:
        """Change a component's status; the ``affected_components`` entry when it changed."""
        if status not in COMPONENT_STATUSES:
            allowed = ", ".join(COMPONENT_STATUSES)
            raise StatuspageError(422, [f"Status {status!r} is not included in the list: {allowed}"])
        if component.status == status:
            return None
        change = {"code": component.id, "name": component.name, "old_status": component.status, "new_status": status}
        component.status, component.updated_at = status, timestamp()
        return change

    def _component_statuses(self, payload: dict[str, Any]) -> dict[str, str]:
        statuses = payload.get("components") or {}
        if not isinstance(statuses, dict):
            raise StatuspageError(422, ["components must be an object of component id to status"])
        ids = list(payload.get("component_ids") or []) + list(statuses)
        for ident in ids:
            self.component(str(ident))
        bad = [f"Component {k}: status {v!r} is not included in the list" for k, v in statuses.items()
               if v not in COMPONENT_STATUSES]
        if bad:
            raise StatuspageError(422, bad)
        return {str(k): v for k, v in statuses.items()}

    def create(self, payload: dict[str, Any]) -> Incident:
        name = payload.get("name")
        if not isinstance(name, str) or not name.strip():
            raise StatuspageError(422, ["Name can't be blank"])
        scheduled_for = payload.get("scheduled_for")
        status = payload.get("status") or ("scheduled" if scheduled_for else "investigating")
        if status not in REALTIME_STATUSES + SCHEDULED_STATUSES:
            raise StatuspageError(422, [f"Status {status!r} is not included in the list"])
        if status in SCHEDULED_STATUSES and not (scheduled_for and payload.get("scheduled_until")):
            raise StatuspageError(422, ["Scheduled maintenance needs scheduled_for and scheduled_until"])
        impact = payload.get("impact_override")
        if impact is not None and impact not in IMPACTS:
            raise StatuspageError(422, [f"Impact override {impact!r} is not included in the list"])
        metadata = payload.get("metadata") or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, dict) for v in metadata.values()):
            raise StatuspageError(422, ["metadata must be an object whose top-level values are objects"])
        statuses = self._component_statuses(payload)
        incident = Incident(
            id=new_id(), name=name, status=status, impact_override=impact, metadata=metadata,
            component_ids=list(dict.fromkeys([*map(str, payload.get("component_ids") or []), *statuses])),
            scheduled={key: payload.get(key) for key in ("scheduled_for", "scheduled_until")}
            | {key: bool(payload.get(key, False)) for key in ("scheduled_remind_prior", "scheduled_auto_in_progress",
                                                                "scheduled_auto_completed")},
        )
        self._append_update(incident, status, str(payload.get("body") or ""), statuses,
                            bool(payload.get("deliver_notifications", True)))
        self.incidents[incident.id] = incident
        return incident

    def update(self, ident: str, payload: dict[str, Any]) -> Incident:
        incident = self.incident(ident)
        status = payload.get("status", incident.status)
        family = SCHEDULED_STATUSES if incident.is_scheduled else REALTIME_STATUSES
        if status not in family:
            kind = "scheduled maintenance" if incident.is_scheduled else "realtime incident"
            raise StatuspageError(422, [f"Status {status!r} is not valid for a {kind}: one of {', '.join(family)}"])
        if "name" in payload:
            if not str(payload["name"] or "").strip():
                raise StatuspageError(422, ["Name can't be blank"])
            incident.name = str(payload["name"])
        if "impact_override" in payload:
            if payload["impact_override"] is not None and payload["impact_override"] not in IMPACTS:
                raise StatuspageError(422, [f"Impact override {payload['impact_override']!r} is not included"])
            incident.impact_override = payload["impact_override"]
        if isinstance(payload.get("metadata"), dict):
            incident.metadata = payload["metadata"]
        statuses = self._component_statuses(payload)
        incident.component_ids = list(dict.fromkeys([*incident.component_ids, *statuses]))
        if status != incident.status or payload.get("body") or statuses:
            self._append_update(incident, status, str(payload.get("body") or ""), statuses,
                                bool(payload.get("deliver_notifications", True)))
        return incident

    def _append_update(self, incident: Incident, status: str, body: str, statuses: dict[str, str],
                       deliver: bool) -> None:
        affected = [change for ident, new in statuses.items()
                    if (change := self.set_component_status(self.component(ident), new)) is not None]
        stamp = timestamp()
        incident.status, incident.updated_at = status, stamp
        if status == "monitoring" and incident.monitoring_at is None:
            incident.monitoring_at = stamp
        if status in CLOSED_STATUSES and incident.resolved_at is None:
            incident.resolved_at = stamp
        incident.updates.append({
            "id": new_id(), "incident_id": incident.id, "status": status, "body": body, "created_at": stamp,
            "updated_at": stamp, "display_at": stamp, "affected_components": affected or None,
            "deliver_notifications": deliver, "custom_tweet": None, "tweet_id": None,
        })

    def impact(self, incident: Incident) -> str:
        if incident.impact_override:
            return incident.impact_override
        statuses = [self.components[i].status for i in incident.component_ids if i in self.components]
        worst = max((COMPONENT_STATUSES.index(s) for s in statuses), default=0)
        return IMPACT_OF_STATUS[COMPONENT_STATUSES[worst]]

    def shown(self, incident: Incident) -> dict[str, Any]:
        return {
            "id": incident.id, "page_id": PAGE_ID, "name": incident.name, "status": incident.status,
            "impact": self.impact(incident), "impact_override": incident.impact_override,
            "created_at": incident.created_at, "updated_at": incident.updated_at, "started_at": incident.created_at,
            "monitoring_at": incident.monitoring_at, "resolved_at": incident.resolved_at,
            "shortlink": f"https://stspg.io/{incident.id[:9]}", "metadata": incident.metadata,
            **incident.scheduled, "scheduled_reminded_at": None, "reminder_intervals": None,
            "postmortem_body": None, "postmortem_body_last_updated_at": None, "postmortem_ignored": False,
            "postmortem_published_at": None, "postmortem_notified_subscribers": False,
            "postmortem_notified_twitter": False,
            "incident_updates": list(reversed(incident.updates)),  # newest first, as Statuspage lists them
            "components": [self.components[i].shown() for i in incident.component_ids if i in self.components],
        }

    def newest_first(self, keep: Callable[[Incident], bool]) -> list[Incident]:
        return [i for i in reversed(list(self.incidents.values())) if keep(i)]


def authenticate(request: Request, page_id: str) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "oauth" or not secrets.compare_digest(key.strip(), API_KEY):
        raise StatuspageError(401, "Could not authenticate")
    if page_id != PAGE_ID:
        raise StatuspageError(404, f"Page {page_id} not found")


class StatuspageRoute(SystemRoute):
    """Checks the OAuth key and page on the API; answers :class:`StatuspageError` in Statuspage's shape."""

    error = StatuspageError

    def authenticate(self, request: Request) -> None:
        authenticate(request, request.path_params.get("page_id", ""))


router = APIRouter(prefix=PREFIX, tags=["statuspage"], route_class=StatuspageRoute)
PAGE = "/v1/pages/{page_id}"


def get_page(request: Request) -> StatusPage:
    return request.app.state.statuspage


def _paged(request: Request, items: list[Any], size_param: str = "per_page") -> list[Any]:
    """One page of ``items``: ``page`` and the page size, ``per_page`` or (the incident list) ``limit``.

    A size parameter the endpoint does not take is ignored, as Rails ignores it: the default applies.
    """
    params = request.query_params
    try:
        page = int(params.get("page") or 1)
        per_page = int(params.get(size_param) or DEFAULT_PER_PAGE)
    except ValueError:
        raise StatuspageError(400, f"page and {size_param} must be numbers") from None
    if page < 1 or per_page < 1:
        raise StatuspageError(400, f"page and {size_param} must be positive")
    per_page = min(per_page, MAX_PER_PAGE)
    return items[(page - 1) * per_page:page * per_page]


async def _wrapped(request: Request, key: str) -> dict[str, Any]:
    try:
        payload = await request.json()
    except ValueError:
        raise StatuspageError(400, "The request body is not valid JSON") from None
    inner = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(inner, dict):
        raise StatuspageError(400, f"The request body needs a {key!r} object")
    return inner


@router.get(f"{PAGE}/components")
async def list_components(page_id: str, request: Request) -> list[dict[str, Any]]:
    page = get_page(request)
    return [c.shown() for c in _paged(request, sorted(page.components.values(), key=lambda c: c.position))]


@router.get(f"{PAGE}/components/{{ident}}")
async def get_component(page_id: str, ident: str, request: Request) -> dict[str, Any]:
    return get_page(request).component(ident).shown()


@router.api_route(f"{PAGE}/components/{{ident}}", methods=["PATCH", "PUT"])
async def update_component(page_id: str, ident: str, request: Request) -> dict[str, Any]:
    page = get_page(request)
    component = page.component(ident)
    changes = await _wrapped(request, "component")
    if "status" in changes:
        page.set_component_status(component, changes["status"])
    if "description" in changes:
        component.description = str(changes["description"] or "")
    return component.shown()


@router.get(f"{PAGE}/incidents")
async def list_incidents(page_id: str, request: Request) -> list[dict[str, Any]]:
    page = get_page(request)
    query = request.query_params.get("q", "").lower()
    found = page.newest_first(lambda i: query in i.text())
    return [page.shown(i) for i in _paged(request, found, "limit")]


@router.get(f"{PAGE}/incidents/unresolved")
async def unresolved_incidents(page_id: str, request: Request) -> list[dict[str, Any]]:
    page = get_page(request)
    found = page.newest_first(lambda i: not i.is_scheduled and i.status not in CLOSED_STATUSES)
    return [page.shown(i) for i in _paged(request, found)]


@router.get(f"{PAGE}/incidents/scheduled")
async def scheduled_incidents(page_id: str, request: Request) -> list[dict[str, Any]]:
    page = get_page(request)
    return [page.shown(i) for i in _paged(request, page.newest_first(lambda i: i.status == "scheduled"))]


@router.get(f"{PAGE}/incidents/upcoming")
async def upcoming_incidents(page_id: str, request: Request) -> list[dict[str, Any]]:
    return await scheduled_incidents(page_id, request)


@router.get(f"{PAGE}/incidents/active_maintenance")
async def active_maintenance(page_id: str, request: Request) -> list[dict[str, Any]]:
    page = get_page(request)
    found = page.newest_first(lambda i: i.status in ("in_progress", "verifying"))
    return [page.shown(i) for i in _paged(request, found)]


@router.get(f"{PAGE}/incidents/{{ident}}")
async def get_incident(page_id: str, ident: str, request: Request) -> dict[str, Any]:
    page = get_page(request)
    return page.shown(page.incident(ident))


@router.post(f"{PAGE}/incidents", status_code=201)
async def create_incident(page_id: str, request: Request) -> dict[str, Any]:
    page = get_page(request)
    return page.shown(page.create(await _wrapped(request, "incident")))


@router.api_route(f"{PAGE}/incidents/{{ident}}", methods=["PATCH", "PUT"])
async def update_incident(page_id: str, ident: str, request: Request) -> dict[str, Any]:
    page = get_page(request)
    return page.shown(page.update(ident, await _wrapped(request, "incident")))


@router.get("/_sandbox/state")
async def sandbox_state(request: Request) -> dict[str, Any]:
    """The page id, every component and every incident (oldest first, updates oldest first)."""
    page = get_page(request)
    return {
        "page_id": PAGE_ID,
        "components": [c.shown() for c in page.components.values()],
        "incidents": [{**page.shown(i), "incident_updates": i.updates} for i in page.incidents.values()],
    }


@router.delete("/_sandbox/state")
async def reset_state(request: Request) -> dict[str, Any]:
    get_page(request).reset()
    return {"reset": True}
