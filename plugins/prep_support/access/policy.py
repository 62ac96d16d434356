"""The access-review policy (``include/config/access/policy.yaml``), validated with pydantic.

A bad policy raises :class:`PolicyError` naming the file, the line and the field, so the
``access_review`` DAG's import error says what to fix (and only that DAG breaks).
"""

from __future__ import annotations

import fnmatch
import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prep_support import paths
from prep_support.config_errors import ConfigError, LocatedError, line_of, location_labels, parse_config
from prep_support.config_fields import People, SlackChannel

SYSTEMS = ("okta", "ad")
System = Literal["okta", "ad"]
Username = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")]


class PolicyError(ConfigError):
    """The access policy cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class HrSource(_Strict):
    """Where the HR roster is (the keyword arguments of HrRoster): a CSV export, or a table on a Connection."""

    path: str | None = Field(default=None, min_length=1)
    conn_id: str | None = Field(default=None, min_length=1)
    table: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> HrSource:
        if (self.path is None) == (self.conn_id is None):
            raise ValueError("give either path (a CSV export) or conn_id (a Connection), not both")
        return self


class SystemScope(_Strict):
    conn_id: str = Field(min_length=1)
    groups: list[str] = Field(default_factory=lambda: ["*"], min_length=1)

    def in_scope(self, group: str) -> bool:
        return any(fnmatch.fnmatchcase(group, pattern) for pattern in self.groups)


class GroupRef(_Strict):
    system: System
    group: str = Field(min_length=1)


class SodPair(_Strict):
    name: str = Field(min_length=1)
    system: System
    groups: list[str] = Field(min_length=2, max_length=2)

    @field_validator("groups")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if value[0] == value[1]:
            raise ValueError("a separation-of-duty pair needs two different groups")
        return value


class GroupPattern(_Strict):
    system: System
    pattern: str = Field(min_length=1)


class Application(_Strict):
    name: str = Field(min_length=1)
    owner: Username
    groups: list[GroupPattern] = Field(min_length=1)

    def owns(self, system: str, group: str) -> bool:
        return any(p.system == system and fnmatch.fnmatchcase(group, p.pattern) for p in self.groups)


class Reviewers(_Strict):
    applications: list[Application] = Field(default_factory=list)
    fallback: Annotated[list[Username], People] = Field(min_length=1)


class ReviewSettings(_Strict):
    items: Literal["all", "findings"] = "all"
    response_timeout_hours: float = Field(default=336, gt=0)
    reminder_hours_before: list[Annotated[float, Field(gt=0)]] = Field(default_factory=list)
    default_decision: Literal["keep", "revoke"] = "keep"
    reminder_check_minutes: float = Field(default=1, gt=0,
                                          description="How often reminders and decisions are looked at.")
    channel: SlackChannel = "#prep-support"
    slack_conn_id: str = "slack_api_default"

    @model_validator(mode="after")
    def _reminders_before_timeout(self) -> ReviewSettings:
        for hours in self.reminder_hours_before:
            if hours >= self.response_timeout_hours:
                raise ValueError(f"reminder_hours_before {hours:g} is not before the response timeout "
                                 f"({self.response_timeout_hours:g} h)")
        return self

    @property
    def response_timeout(self) -> timedelta:
        return timedelta(hours=self.response_timeout_hours)


class Evidence(_Strict):
    confluence_space: str | None = None
    parent_title: str | None = None
    directory: str | None = Field(default=None, description="Where files are written; default under AIRFLOW_HOME.")


class Policy(_Strict):
    systems: dict[System, SystemScope] = Field(min_length=1)
    hr: dict[str, Any] = Field(default_factory=lambda: {"conn_id": "hr_roster"},
                               description="Keyword arguments of HrRoster (checked as HrSource).")
    dormancy_days: int = Field(default=90, ge=1, le=3650)
    privileged: list[GroupRef] = Field(default_factory=list)
    sod_pairs: list[SodPair] = Field(default_factory=list)
    roles: dict[str, dict[System, list[str]]] = Field(default_factory=dict)
    reviewers: Reviewers
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    leaver_approvers: Annotated[list[Username], People] = Field(min_length=1)
    # Who approves privileged grants of user_lifecycle after the person's manager (never the requester
    # or the person); empty: the reviewers' fallback.
    privileged_approvers: Annotated[list[Username], People] = Field(default_factory=list)
    leaver_response_timeout_hours: float = Field(default=72, gt=0)
    evidence: Evidence = Field(default_factory=Evidence)

    @field_validator("hr")
    @classmethod
    def _hr_source(cls, value: dict[str, Any]) -> dict[str, Any]:
        # A misspelt key ('tabel:') is refused here, not by a TypeError in every later run's HrRoster(**hr).
        return HrSource.model_validate(value).model_dump(exclude_none=True)

    @model_validator(mode="after")
    def _systems_known(self) -> Policy:
        used = [(("privileged", i, "system"), p.system) for i, p in enumerate(self.privileged)]
        used += [(("sod_pairs", i, "system"), p.system) for i, p in enumerate(self.sod_pairs)]
        used += [(("roles", role), s) for role, template in self.roles.items() for s in template]
        used += [(("reviewers", "applications", i, "groups", j, "system"), g.system)
                 for i, app in enumerate(self.reviewers.applications) for j, g in enumerate(app.groups)]
        for location, system in used:
            if system not in self.systems:
                raise LocatedError(location, f"system {system!r} is used but not listed under 'systems'")
        for index, ref in enumerate(self.privileged):
            scope = self.systems[ref.system]
            if not scope.in_scope(ref.group):
                raise LocatedError(("privileged", index, "group"), (
                    f"{ref.system} group {ref.group!r} matches none of systems > {ref.system} > groups "
                    f"({', '.join(scope.groups)}): its members would never be reviewed"))
        return self

    @cached_property
    def privileged_pairs(self) -> set[tuple[str, str]]:
        return {(p.system, p.group) for p in self.privileged}

    def owner_of(self, system: str, group: str) -> Application | None:
        """The application whose groups include this one (the first listed wins)."""
        return next((app for app in self.reviewers.applications if app.owns(system, group)), None)

    def role_rows(self) -> list[dict[str, str]]:
        """The role templates as rows {role, system, group}."""
        return [{"role": role, "system": system, "group": group}
                for role, template in self.roles.items() for system, groups in template.items() for group in groups]


def policy_path() -> Path:
    """``PREP_SUPPORT_ACCESS_POLICY`` points elsewhere (tests, benchmarks)."""
    return Path(os.environ.get("PREP_SUPPORT_ACCESS_POLICY", paths.CONFIG_DIR / "access" / "policy.yaml"))


def load_policy(path: Path | str | None = None) -> Policy:
    """Read and validate the policy; raise PolicyError naming file, line and field."""
    path = Path(path or policy_path())
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PolicyError(f"{path}: cannot read the access policy: {error.strerror}") from error
    try:
        data = parse_config(path, raw)
    except ConfigError as error:
        raise PolicyError(str(error)) from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: the access policy must be a mapping (systems, reviewers, ...)")
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
        # A misspelt key is also a missing one: name the typo, which is what to fix.
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        location = tuple(step for step in first["loc"] if not (isinstance(step, str) and "[" in step))
        message = first["msg"].removeprefix("Value error, ")
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, LocatedError):
            location += cause.location
        elif first["type"] == "extra_forbidden":
            message = "unknown field (a typo?)"
        labels, steps = location_labels(data, location, ident_of=_entry_name)
        line = line_of(raw, steps)
        where = f" (line {line})" if line else ""
        raise PolicyError(f"{path}{where}: {labels or 'policy'}: {message}") from None


def _entry_name(entry: dict[str, Any]) -> Any:
    """How a list entry of the policy is named in an error: its name, group or system."""
    return entry.get("name") or entry.get("group") or entry.get("pattern")
