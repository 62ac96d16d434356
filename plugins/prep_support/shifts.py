"""On-call shifts (``shifts`` in routing.yaml) and what the next shift is handed over.

Shifts change at fixed local times (``changes``, "HH:MM" in ``timezone``); the shift starting at a
change lasts until the next one. :func:`shift_at` gives the shift a moment falls in, so a handover
run, its retries and a manual trigger during the shift all hand over the same shift and are keyed
on its start. :func:`plan_handover` keeps, per team (a service owner of the catalog), what the next
on-call needs; it reads nothing itself: the operator gathers the facts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

_CHANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Shifts(BaseModel):
    """``shifts`` in routing.yaml: when on-call changes hands, and who gets Airflow's own items."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    changes: list[str] = Field(min_length=1, max_length=24)
    # The team (a service owner of the catalog) whose handover lists what belongs to no service:
    # approvals and HITL steps waiting in Airflow, failed DAG runs, access-review and UAT deadlines.
    platform_team: str | None = None
    page_title: str = "Shift handover {date}"  # one Confluence page per local day, sections appended
    confluence_space: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as 'Europe/London')") from error
        return value

    @field_validator("changes")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _CHANGE.match(v)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a time of day HH:MM (00:00 to 23:59)")
        if len(set(value)) != len(value):
            raise ValueError("a shift change is listed twice")
        return sorted(value)

    @field_validator("page_title")
    @classmethod
    def _has_date(cls, value: str) -> str:
        if "{date}" not in value or value.count("{") != 1:
            raise ValueError("must contain {date} (and no other placeholder)")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def cron(self) -> list[str]:
        """One cron expression per change time (minute hour), in ``timezone``."""
        return [f"{int(c[3:])} {int(c[:2])} * * *" for c in self.changes]


@dataclass(frozen=True)
class Shift:
    start: datetime  # UTC
    end: datetime
    previous_start: datetime
    local_date: date  # the local day the shift starts on: its Confluence page

    def label(self, zone: ZoneInfo) -> str:
        start, end = self.start.astimezone(zone), self.end.astimezone(zone)
        return f"{start:%a %d %b %H:%M}–{end:%H:%M} {start.tzname()}"


def shift_at(when: datetime, shifts: Shifts) -> Shift:
    """The shift that ``when`` (aware) falls in: its start is the latest change at or before ``when``."""
    zone = shifts.zone
    local = when.astimezone(zone)
    starts = []
    for days in (-2, -1, 0, 1):
        day = local.date() + timedelta(days=days)
        for change in shifts.changes:
            # A wall-clock time skipped or repeated by a DST change resolves as zoneinfo does (fold=0).
            moment = datetime.combine(day, time(int(change[:2]), int(change[3:])), tzinfo=zone)
            starts.append(moment.astimezone(UTC))
    starts.sort()
    index = max(i for i, s in enumerate(starts) if s <= when.astimezone(UTC))
    start = starts[index]
    return Shift(start=start, end=starts[index + 1], previous_start=starts[index - 1],
                 local_date=start.astimezone(zone).date())


# -- what a handover holds ---------------------------------------------------------------------------

@dataclass(frozen=True)
class OpenIncident:
    key: str
    service_id: str
    kind: str
    priority: str
    state: str
    opened_at: datetime
    updated_at: datetime
    ticket_key: str | None
    ticket_url: str | None
    diagnosis: str | None = None  # shown when the incident has one


@dataclass(frozen=True)
class OutageItem:
    id: str
    service_id: str
    kind: str
    status: str
    starts_at: datetime
    expected_end: datetime | None
    ticket_url: str | None


@dataclass(frozen=True)
class WaitingStep:
    """An approval or other human-in-the-loop step waiting in Airflow."""

    dag_id: str
    run_id: str
    task_id: str
    subject: str
    since: datetime
    assignees: tuple[str, ...]
    url: str


@dataclass(frozen=True)
class FailedRun:
    dag_id: str
    run_id: str
    ended_at: datetime
    url: str


@dataclass(frozen=True)
class FailingDay:
    suite_id: str
    service_id: str
    day: date
    checks: tuple[str, ...]


@dataclass(frozen=True)
class MaintenanceStart:
    services: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    reason: str


@dataclass(frozen=True)
class Deadline:
    kind: str  # access review | UAT
    name: str
    due: datetime
    url: str | None


@dataclass(frozen=True)
class Facts:
    """Everything the operator read, for every team; :func:`plan_handover` picks a team's share."""

    incidents: Sequence[OpenIncident] = ()
    outages: Sequence[OutageItem] = ()
    waiting: Sequence[WaitingStep] = ()
    failed_runs: Sequence[FailedRun] = ()
    failing_days: Sequence[FailingDay] = ()
    maintenance: Sequence[MaintenanceStart] = ()
    deadlines: Sequence[Deadline] = ()


@dataclass(frozen=True)
class Team:
    id: str  # the services' owner in the catalog
    services: tuple[str, ...]
    service_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Handover:
    team: Team
    shift: Shift
    since: datetime
    incidents: tuple[OpenIncident, ...]
    outages_now: tuple[OutageItem, ...]
    outages_planned: tuple[OutageItem, ...]
    waiting: tuple[WaitingStep, ...]
    failed_runs: tuple[FailedRun, ...]
    failing_days: tuple[FailingDay, ...]
    maintenance: tuple[MaintenanceStart, ...]
    deadlines: tuple[Deadline, ...]

    @property
    def items(self) -> int:
        return sum(len(getattr(self, name)) for name in SECTIONS)

    @property
    def empty(self) -> bool:
        return self.items == 0

    def summary(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SECTIONS}


SECTIONS = ("incidents", "outages_now", "outages_planned", "waiting", "failed_runs", "failing_days", "maintenance",
            "deadlines")
LIVE_OUTAGE = ("active", "in_progress")


def teams_of(services: Iterable[tuple[str, str, str]]) -> list[Team]:
    """Teams from (service id, name, owner) triples, in the catalog's order of first appearance."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for service_id, name, owner in services:
        grouped.setdefault(owner, []).append((service_id, name))
    return [Team(owner, tuple(s for s, _ in pairs), dict(pairs)) for owner, pairs in grouped.items()]


def plan_handover(team: Team, shift: Shift, since: datetime, facts: Facts, *, platform_team: str | None) -> Handover:
    """What ``team``'s next on-call needs for ``shift``; failures are counted from ``since`` (the last handover)."""
    mine = set(team.services)
    platform = team.id == platform_team
    outages = [o for o in facts.outages if o.service_id in mine]
    return Handover(
        team=team, shift=shift, since=since,
        incidents=tuple(sorted((i for i in facts.incidents if i.service_id in mine), key=lambda i: i.opened_at)),
        outages_now=tuple(o for o in outages if o.status in LIVE_OUTAGE),
        outages_planned=tuple(sorted((o for o in outages if o.status == "scheduled" and o.starts_at < shift.end),
                                     key=lambda o: o.starts_at)),
        waiting=tuple(sorted(facts.waiting, key=lambda w: w.since)) if platform else (),
        failed_runs=tuple(sorted((r for r in facts.failed_runs if r.ended_at >= since),
                                 key=lambda r: r.ended_at)) if platform else (),
        failing_days=tuple(sorted((d for d in facts.failing_days if d.service_id in mine),
                                  key=lambda d: (d.day, d.suite_id))),
        maintenance=tuple(sorted((m for m in facts.maintenance
                                  if mine & set(m.services) and shift.start <= m.starts_at < shift.end),
                                 key=lambda m: m.starts_at)),
        deadlines=tuple(sorted((d for d in facts.deadlines if d.due < shift.end), key=lambda d: d.due))
        if platform else (),
    )


def handover_key(team: Team, shift: Shift, channel: str) -> str:
    """The notification-ledger key of a team's handover on a channel: one per shift, whatever re-runs."""
    return f"handover:{team.id}:{shift.start:%Y-%m-%dT%H:%MZ}:{channel}"


def section_anchor(team: Team, shift: Shift) -> str:
    """The id of the team's section on the day's Confluence page: present means already appended."""
    return "handover-" + re.sub(r"[^a-z0-9]+", "-", f"{team.id}-{shift.start:%Y%m%dT%H%MZ}".lower()).strip("-")
