"""Where a service's incidents and messages go: ``include/config/routing.yaml``.

``defaults`` apply to every service; ``services.<id>`` overrides them field by field. The
tracker is Jira (project = the service's tracker_project unless given) or ServiceNow; the
channels are any of Slack (the service's team channel unless given), Teams (a webhook
Connection) and email (addresses). Validated when a DAG parses, like the catalog.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prep_support import paths
from prep_support.catalog import Catalog, Service
from prep_support.config_errors import ConfigError, line_of, location_labels, parse_config
from prep_support.config_fields import Email, SlackChannel
from prep_support.health import Thresholds
from prep_support.shifts import Shifts

PRIORITIES = {"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low"}
DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class RoutingError(ConfigError):
    """routing.yaml cannot be used; the message names the file, the entry and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Tracker(_Strict):
    system: Literal["jira", "servicenow"] = "jira"
    conn_id: str | None = None  # default: jira_default / servicenow_default
    project: str | None = None  # Jira project; default: the service's tracker_project
    issue_type: str = "Incident"
    assignment_group: str | None = None  # ServiceNow

    @property
    def connection(self) -> str:
        return self.conn_id or f"{self.system}_default"


class SlackRoute(_Strict):
    conn_id: str = "slack_api_default"
    channel: SlackChannel | None = None  # default: the service's team_channel


class TeamsRoute(_Strict):
    conn_id: str = "teams_default"


class EmailRoute(_Strict):
    conn_id: str = "smtp_default"
    to: list[Email] = Field(min_length=1)


class Channels(_Strict):
    slack: SlackRoute | None = None
    teams: TeamsRoute | None = None
    email: EmailRoute | None = None


class Route(_Strict):
    tracker: Tracker = Tracker()
    channels: Channels = Channels(slack=SlackRoute())


class ServiceRoute(_Strict):
    tracker: Tracker | None = None
    channels: Channels | None = None


class Routing(_Strict):
    support_channel: SlackChannel = "#prep-support"  # task failures and reports of the platform itself
    support_slack_conn_id: str = "slack_api_default"
    thresholds: Thresholds = Thresholds()
    defaults: Route = Route()
    services: dict[str, ServiceRoute] = {}
    # A data problem back within this long after its incident resolved re-opens the same ticket;
    # later it opens a new one, linked to the old. Written as 7d, 12h or 90m.
    reopen_within: timedelta = timedelta(days=7)
    shifts: Shifts | None = None  # on-call shift changes: shift_handover runs at each

    @field_validator("reopen_within", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"expected a duration such as 7d, 12h or 90m, got {value!r}")
        duration = timedelta(**{UNITS[match[2]]: int(match[1])})
        if duration > timedelta(days=365):
            raise ValueError(f"{value!r} is longer than a year")
        return duration

    def route(self, service: Service) -> ResolvedRoute:
        override = self.services.get(service.id) or ServiceRoute()
        tracker = override.tracker or self.defaults.tracker
        channels = override.channels or self.defaults.channels
        return ResolvedRoute(
            tracker=tracker,
            project=tracker.project or service.tracker_project,
            priority=PRIORITIES[service.criticality],
            slack_channel=(channels.slack.channel or service.team_channel) if channels.slack else None,
            channels=channels,
        )


class ResolvedRoute(_Strict):
    tracker: Tracker
    project: str
    priority: str
    slack_channel: str | None
    channels: Channels


def load_routing(catalog: Catalog, path: Path | None = None) -> Routing:
    path = Path(path or paths.routing_path())
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RoutingError(f"{path}: cannot read: {error.strerror}") from error
    try:
        data: Any = parse_config(path, raw) or {}
    except ConfigError as error:
        raise RoutingError(str(error)) from None
    if not isinstance(data, dict):
        raise RoutingError(f"{path}: routing must be a mapping (defaults, services, ...)")
    try:
        routing = Routing.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        message = "unknown field (a typo?)" if first["type"] == "extra_forbidden" else first["msg"]
        raise RoutingError(_describe(path, raw, data, tuple(first["loc"]),
                                     message.removeprefix("Value error, "))) from None
    known = {service.id for service in catalog.services}
    unknown = [name for name in routing.services if name not in known]
    if unknown:
        raise RoutingError(_describe(path, raw, data, ("services", unknown[0]), (
            f"{unknown[0]!r} is not a service in the catalog ({', '.join(sorted(known))})")))
    owners = {service.owner for service in catalog.services}
    if routing.shifts and routing.shifts.platform_team and routing.shifts.platform_team not in owners:
        raise RoutingError(f"{path}: shifts > platform_team: {routing.shifts.platform_team!r} owns no service "
                           f"in the catalog (owners: {', '.join(sorted(owners))})")
    return routing


def _describe(path: Path, raw: bytes, data: Any, location: tuple, message: str) -> str:
    """``file (line N): services > payments-api > channels > slack > field 'channel': message``."""
    labels, steps = location_labels(data, location)
    line = line_of(raw, steps)
    return f"{path}{f' (line {line})' if line else ''}: {labels or 'routing'}: {message}"
