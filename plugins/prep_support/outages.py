"""Outages as the analyst announces them: the request, its checks, keys, texts and figures.

No Airflow and no I/O here. ``outage_comms`` turns its form (or a critical-incident asset event)
into :class:`OutageRequest` objects with :func:`request_from_form` / :func:`requests_from_incidents`
(and :func:`incident_resolution` for the incidents since resolved) before anything is sent, so a bad
form fails the first task with a message naming the field.

Every message of an outage is keyed ``outage:<id>:<event>:<channel>`` in the notification ledger
(:func:`message_key`); events are ``announced``, ``reminder``, ``in_progress``, ``update-<digest>``
(the digest of the update's text, so the same update submitted twice is sent once), ``resolved``
and ``completed``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from prep_support.approvals import SYSTEM
from prep_support.catalog import Catalog, Service
from prep_support.form_input import BadInput

KINDS = ("planned", "unplanned")
SEVERITIES = ("critical", "major", "minor")
ACTIONS = ("announce", "update", "resolve")
CHANNELS = ("slack", "teams", "email", "statuspage", "status_page")
PROGRESS = ("investigating", "identified", "monitoring")
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,119}$"
# RFC 3339 date-time as the form's date-time picker sends it; seconds and zone optional (no zone = UTC).
DATE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}:?\d{2})?$"
TEXT_LIMIT = 2000
DEFAULT_REMIND_MINUTES = 60

# Statuspage: an unplanned outage's impact and its service's component status, by severity;
# services that depend on it are degraded (https://developer.statuspage.io/#tag/incidents).
IMPACT = {"critical": "critical", "major": "major", "minor": "minor"}
COMPONENT_STATUS = {"critical": "major_outage", "major": "partial_outage", "minor": "degraded_performance"}
DEPENDANT_STATUS = "degraded_performance"

# Outage rows' status: unplanned active -> resolved; planned scheduled -> in_progress -> completed.
ACTIVE = "active"
SCHEDULED = "scheduled"
IN_PROGRESS = "in_progress"
RESOLVED = "resolved"
COMPLETED = "completed"
CURRENT = (ACTIVE, IN_PROGRESS)
CLOSED = (RESOLVED, COMPLETED)


class OutageRequestError(BadInput):
    """The outage form (or event) cannot be acted on; the message names the field(s)."""


@dataclass(frozen=True)
class OutageRequest:
    """One thing to do for one outage: announce it, post an update, or resolve it."""

    action: str
    outage_id: str
    service_id: str
    kind: str
    severity: str
    starts_at: datetime
    expected_end: datetime | None
    impact: str
    workaround: str
    channels: tuple[str, ...]
    update: str = ""
    progress: str = "identified"
    remind_minutes: int = DEFAULT_REMIND_MINUTES
    source: str = "form"  # form | incident
    incident: dict[str, Any] = field(default_factory=dict)  # the monitoring incident behind it
    ended_at: datetime | None = None  # when a resolution's outage ended (its incident's resolution); None: now
    requested_by: str = SYSTEM  # who triggered the run that asked for it (prep_support.approvals.requester)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["starts_at"] = self.starts_at.isoformat()
        data["expected_end"] = self.expected_end.isoformat() if self.expected_end else None
        data["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutageRequest:
        values = dict(data)
        values["starts_at"] = datetime.fromisoformat(values["starts_at"])
        values["expected_end"] = datetime.fromisoformat(values["expected_end"]) if values["expected_end"] else None
        values["ended_at"] = datetime.fromisoformat(values["ended_at"]) if values.get("ended_at") else None
        values["channels"] = tuple(values["channels"])
        return cls(**values)

    @property
    def planned(self) -> bool:
        return self.kind == "planned"

    def with_outage(self, **changes: Any) -> OutageRequest:
        return replace(self, **changes)


def parse_time(value: Any, field_name: str) -> datetime | None:
    """An aware UTC datetime from the form's text (no zone means UTC), or None when empty."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if not re.match(DATE_TIME_PATTERN, text):
            raise OutageRequestError(f"{field_name}: {text!r} is not a date-time such as 2026-12-01T22:00Z")
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError as error:
            raise OutageRequestError(f"{field_name}: {text!r} is not a valid date-time ({error})") from error
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def derive_outage_id(service_id: str, starts_at: datetime) -> str:
    """The default outage id: the service and its start (minute), e.g. ``payments-api-20261201-2200``."""
    return f"{service_id}-{starts_at.astimezone(UTC):%Y%m%d-%H%M}"


def incident_outage_id(dedup_key: str, opened_at: datetime) -> str:
    """An incident's outage id, from its key ``service/check/kind`` and when it was opened."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", dedup_key.lower()).strip("-")
    return f"{slug[:100]}-{opened_at.astimezone(UTC):%Y%m%d-%H%M}"


def message_key(outage_id: str, event: str, channel: str) -> str:
    return f"outage:{outage_id}:{event}:{channel}"


def update_event(text: str) -> str:
    """The event name of an update: the same text is the same update (a double submit sends once)."""
    return "update-" + hashlib.sha256(text.strip().encode()).hexdigest()[:12]


def dependants(catalog: Catalog, service_id: str) -> list[str]:
    """Services that depend on ``service_id``, directly or through others, in catalog order."""
    affected: set[str] = set()
    frontier = {service_id}
    while frontier:
        frontier = {s.id for s in catalog.services if set(s.depends_on) & frontier and s.id not in affected}
        frontier.discard(service_id)
        affected |= frontier
    return [s.id for s in catalog.services if s.id in affected]


def affected_services(catalog: Catalog, service_id: str) -> list[str]:
    """The service itself, then everything that depends on it."""
    return [service_id, *dependants(catalog, service_id)]


def component_statuses(catalog: Catalog, service_id: str, severity: str) -> dict[str, str]:
    """Statuspage component status per service name for an unplanned outage."""
    statuses = {service_id: COMPONENT_STATUS[severity]}
    statuses.update({name: DEPENDANT_STATUS for name in dependants(catalog, service_id)})
    return statuses


def default_impact(service: Service, catalog: Catalog) -> str:
    """What users feel, from the catalog, when the form (or an incident) gives nothing more."""
    names = {s.id: s.name for s in catalog.services}
    others = [names[s] for s in dependants(catalog, service.id)]
    text = f"{service.name} is unavailable or degraded."
    if others:
        text += f" Services that depend on it may be affected: {', '.join(others)}."
    return text


def _text(params: Mapping[str, Any], name: str, problems: list[str]) -> str:
    value = params.get(name) or ""
    if not isinstance(value, str):
        problems.append(f"{name}: must be text")
        return ""
    if len(value) > TEXT_LIMIT:
        problems.append(f"{name}: at most {TEXT_LIMIT} characters ({len(value)} given)")
    return value.strip()


def request_from_form(params: Mapping[str, Any], catalog: Catalog, *, now: datetime) -> OutageRequest:
    """The form's request, with every cross-field rule checked; raises naming all bad fields.

    The JSON schema of the form has already checked each field alone. What it cannot say is
    checked here: a planned outage needs a start and an end in the future, the end after the
    start; an update needs its text; a service must be chosen.
    """
    problems: list[str] = []
    action = params.get("action") or "announce"
    services = {s.id: s for s in catalog.services}
    service_id = params.get("service")
    if not service_id:
        problems.append("service: choose the service the outage is about")
    elif service_id not in services:
        problems.append(f"service: {service_id!r} is not a service in the catalog")
    kind = params.get("kind") or "unplanned"
    severity = params.get("severity") or "major"
    if kind not in KINDS:
        problems.append(f"kind: must be one of {', '.join(KINDS)}")
    if severity not in SEVERITIES:
        problems.append(f"severity: must be one of {', '.join(SEVERITIES)}")
    starts_at = expected_end = None
    for name in ("start", "expected_end"):
        try:
            value = parse_time(params.get(name), name)
        except OutageRequestError as error:
            problems.append(str(error))
            continue
        if name == "start":
            starts_at = value
        else:
            expected_end = value
    if action == "announce" and kind == "planned":
        if params.get("start") in (None, ""):
            problems.append("start: a planned outage needs its start")
        if params.get("expected_end") in (None, ""):
            problems.append("expected_end: a planned outage needs its expected end")
    if starts_at is not None and expected_end is not None and expected_end <= starts_at:
        problems.append(f"expected_end: {expected_end.isoformat()} is not after start {starts_at.isoformat()}")
    impact = _text(params, "impact", problems)
    workaround = _text(params, "workaround", problems)
    update = _text(params, "update", problems)
    if action not in ACTIONS:
        problems.append(f"action: must be one of {', '.join(ACTIONS)}")
    if action == "update" and not update:
        problems.append("update: an update needs its text")
    channels = tuple(dict.fromkeys(params.get("channels") or ()))
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        problems.append(f"channels: unknown channel(s) {', '.join(map(str, unknown))}")
    if action == "announce" and not channels:
        problems.append("channels: choose at least one channel")
    outage_id = (params.get("outage_id") or "").strip()
    if outage_id and not re.match(ID_PATTERN, outage_id):
        problems.append(f"outage_id: {outage_id!r} must be lower-case letters, digits, '.', '_' or '-'")
    progress = params.get("progress") or "identified"
    if progress not in PROGRESS:
        problems.append(f"progress: must be one of {', '.join(PROGRESS)}")
    remind = params.get("remind_minutes")
    remind_minutes = DEFAULT_REMIND_MINUTES if remind in (None, "") else remind
    if not isinstance(remind_minutes, int) or isinstance(remind_minutes, bool) or not 0 <= remind_minutes <= 10080:
        problems.append("remind_minutes: a whole number of minutes from 0 to 10080")
        remind_minutes = DEFAULT_REMIND_MINUTES
    if problems:
        raise OutageRequestError("The outage form cannot be used: " + "; ".join(problems))
    start = starts_at or now.replace(second=0, microsecond=0)
    service = services[service_id]
    return OutageRequest(
        # An update or resolution without an id is about the service's one current outage (found by the caller).
        action=action, outage_id=outage_id or (derive_outage_id(service_id, start) if action == "announce" else ""),
        service_id=service_id,
        kind=kind, severity=severity, starts_at=start, expected_end=expected_end,
        impact=impact or default_impact(service, catalog), workaround=workaround, channels=channels,
        update=update, progress=progress, remind_minutes=remind_minutes,
    )


def requests_from_incidents(incidents: Iterable[Mapping[str, Any]], catalog: Catalog,
                            channels: Iterable[str] = CHANNELS) -> list[OutageRequest]:
    """An unplanned outage announcement per critical incident in an asset event's extra.

    Each incident is ``{"dedup_key", "service_id", "opened_at", ...}`` as health_sweep emits it;
    one that names a service no longer in the catalog is refused with its key.
    """
    services = {s.id: s for s in catalog.services}
    requests: dict[str, OutageRequest] = {}
    for incident in incidents:
        key = incident.get("dedup_key")
        service = services.get(incident.get("service_id", ""))
        if not key or service is None:
            raise OutageRequestError(f"incident {key!r}: service {incident.get('service_id')!r} is not in the catalog")
        opened = parse_time(incident.get("opened_at"), "opened_at") or datetime.now(UTC)
        outage_id = incident_outage_id(key, opened)
        requests[outage_id] = OutageRequest(
            action="announce", outage_id=outage_id, service_id=service.id, kind="unplanned", severity="critical",
            starts_at=opened, expected_end=None, impact=default_impact(service, catalog), workaround="",
            channels=tuple(channels), progress="investigating", source="incident",
            incident={k: incident.get(k) for k in ("incident_id", "dedup_key", "check_id", "state", "evidence",
                                                   "ticket_key", "ticket_id", "ticket_url", "tracker")},
        )
    return list(requests.values())


def incident_resolution(outage: Any, resolved: Mapping[str, Any]) -> OutageRequest:
    """The resolution of an outage announced for a monitoring incident, once that incident is resolved.

    ``outage`` is its row (the resolution speaks about it as announced, on the channels it was
    announced on); ``resolved`` is an entry of the asset event's ``resolved`` list, whose
    ``resolved_at`` is when the outage ended.
    """
    return OutageRequest(
        action="resolve", outage_id=outage.id, service_id=outage.service_id, kind=outage.kind,
        severity=outage.severity, starts_at=outage.starts_at, expected_end=outage.expected_end,
        impact=outage.impact, workaround=outage.workaround, channels=tuple(outage.channels or ()),
        source="incident", ended_at=parse_time(resolved.get("resolved_at"), "resolved_at"),
        incident={k: resolved.get(k) for k in ("incident_id", "dedup_key", "check_id")},
    )


def reminder_at(starts_at: datetime, remind_minutes: int) -> datetime:
    return starts_at - timedelta(minutes=remind_minutes)
