"""Which incidents should exist, given the checks' health: the reconciliation plan.

Level-based, not edge-based: each sweep compares the incidents that *should* be open
(a check that is down or degraded, a check that flaps) with those that *are* open, and
plans the difference. A retried, late or skipped run therefore converges on the same
incidents instead of replaying a stream of events. Each incident is keyed
``service/check/kind``; at most one is open per key.

- A service in a maintenance window: nothing opened, updated or resolved.
- A service whose dependency is down: its failing checks are linked to the upstream
  incident (no ticket, no message); the upstream's evidence lists them.
- A flapping check: one ``flapping`` incident; its other incidents are left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prep_support.health import DOWN, FLAPPING, OK, blocked_by

# Data-quality incidents are reconciled from their results by prep_support.quality, never by health.
DATA = "data"


@dataclass(frozen=True)
class CheckView:
    check_id: str  # "service/check"
    service_id: str
    state: str
    cause: str
    flapping: bool
    detail: str


@dataclass(frozen=True)
class OpenIncident:
    id: int
    dedup_key: str
    service_id: str
    check_id: str
    kind: str
    state: str
    evidence: str
    upstream_incident_id: int | None


@dataclass(frozen=True)
class Open:
    dedup_key: str
    service_id: str
    check_id: str
    kind: str
    state: str
    evidence: str
    upstream_service: str | None = None  # linked to that service's open incident instead of a ticket


@dataclass(frozen=True)
class Update:
    incident_id: int
    state: str
    evidence: str


@dataclass(frozen=True)
class Resolve:
    incident_id: int
    reason: str


@dataclass(frozen=True)
class Reopen:
    """Open a resolved incident and its ticket again: the problem came back soon after it was resolved."""

    incident_id: int
    state: str
    evidence: str


Action = Open | Update | Resolve | Reopen


def dedup_key(check_id: str, kind: str) -> str:
    return f"{check_id}/{kind}"


_VOLATILE = re.compile(r"\d+(?:\.\d+)? ?(?:ms|s)\b")


def evidence_of(state: str, detail: str, dependants: Iterable[str] = ()) -> str:
    """What an incident's tracker comment is about; numbers that move every sweep are left out."""
    text = f"{state}: {_VOLATILE.sub('…', detail)}"
    linked = sorted(dependants)
    return text + (f" | also failing because of it: {', '.join(linked)}" if linked else "")


def plan(checks: Iterable[CheckView], service_states: Mapping[str, str], depends_on: Mapping[str, Iterable[str]],
         open_incidents: Iterable[OpenIncident], in_maintenance: set[str]) -> list[Action]:
    """The actions that make the open incidents match the checks' health."""
    checks = list(checks)
    incidents = {incident.dedup_key: incident for incident in open_incidents}
    blockers = {service: blocked_by(service, depends_on, service_states) for service in service_states}
    # Link to the root cause: a down dependency that is not itself down because of another.
    roots = {service: [b for b in found if not blockers.get(b)] or found for service, found in blockers.items()}
    wanted: dict[str, tuple[CheckView, str, str | None]] = {}  # key -> (check, kind, upstream service)
    frozen: set[str] = set()  # checks whose non-flapping incidents stay as they are
    for check in checks:
        if check.service_id in in_maintenance:
            frozen.add(check.check_id)
            continue
        if check.flapping:
            wanted[dedup_key(check.check_id, FLAPPING)] = (check, FLAPPING, None)
            frozen.add(check.check_id)
        elif check.state != OK:
            upstream = roots.get(check.service_id) or []
            wanted[dedup_key(check.check_id, check.cause)] = (check, check.cause, upstream[0] if upstream else None)

    dependants: dict[str, list[str]] = {}
    for check, _kind, upstream in wanted.values():
        if upstream:
            dependants.setdefault(upstream, []).append(check.check_id)

    actions: list[Action] = []
    for key, incident in incidents.items():
        if incident.check_id in frozen and incident.kind != FLAPPING:
            continue
        if incident.service_id in in_maintenance:
            continue
        target = wanted.get(key)
        if target is None:
            actions.append(Resolve(incident.id, "recovered" if incident.kind != FLAPPING else "stable again"))
            continue
        check, _kind, upstream = target
        if incident.upstream_incident_id is not None and upstream is None:
            # The upstream cause is gone but this check still fails: it gets an incident of its own.
            actions.append(Resolve(incident.id, "upstream recovered"))
            continue
        evidence = evidence_of(check.state, check.detail, _own_dependants(check, dependants))
        if evidence != incident.evidence or check.state != incident.state:
            actions.append(Update(incident.id, check.state, evidence))

    resolved = {a.incident_id for a in actions if isinstance(a, Resolve)}
    still_open = {key for key, incident in incidents.items() if incident.id not in resolved}
    for key, (check, kind, upstream) in sorted(wanted.items(), key=lambda item: (item[1][2] is not None, item[0])):
        if key in still_open:
            continue
        evidence = evidence_of(check.state, check.detail, _own_dependants(check, dependants))
        actions.append(Open(key, check.service_id, check.check_id, kind, check.state, evidence, upstream))
    return actions


def _own_dependants(check: CheckView, dependants: Mapping[str, list[str]]) -> list[str]:
    """Dependants are listed on the service's down checks (the ones they are linked to)."""
    return dependants.get(check.service_id, []) if check.state == DOWN else []
