"""UAT cycles: test plans, who tests what, the keys that make tickets and messages idempotent, the report.

A test plan is ``include/config/uat/<name>.yaml`` (see its README) or, when the form's ``test_plan`` is
``jql: <query>``, the Jira issues that query finds (one case per issue). Everything here is pure: the
operators in ``operators/uat_cycle.py`` talk to Jira, Slack and Confluence and call these functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prep_support import paths
from prep_support.catalog import unique_ids
from prep_support.config_errors import ConfigError, LocatedError, line_of, location_labels, parse_config
from prep_support.config_fields import People, SlackChannel
from prep_support.form_input import BadInput
from prep_support.messages import jira_text, slack_text

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$"
RELEASE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$"
# ISO 8601 with a time zone; JSON schema's "format": "date-time" is not enforced without extra packages.
DEADLINE_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$"
JQL_PREFIX = "jql:"
Identifier = Annotated[str, Field(pattern=ID_PATTERN, max_length=60)]
Username = Annotated[str, Field(pattern=USERNAME_PATTERN)]

# Outcomes of one case for one tester.
PASSED, FAILED, OPEN, NOT_DONE = "passed", "failed", "open", "not done"


class PlanError(BadInput, ConfigError):
    """A test plan cannot be used; the message names the file, the case and the field."""


def plans_dir() -> Path:
    return paths.CONFIG_DIR / "uat"


class UatCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: Identifier
    title: str = Field(min_length=1, max_length=200)
    steps: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    expected: str = Field(min_length=1)
    testers: Annotated[list[Username], People] = []


class UatPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=120)
    description: str = ""
    jira_project: str = Field(default="UAT", pattern=r"^[A-Z][A-Z0-9]{1,9}$")
    slack_channel: SlackChannel = "#uat-testing"
    slack_conn_id: str = "slack_api_default"
    confluence_space: str | None = None
    # Testers with open cases are reminded this many hours before the deadline (once per tester and time).
    remind_hours_before_deadline: list[Annotated[int, Field(gt=0, le=24 * 30)]] = [24, 2]
    testers: Annotated[list[Username], People] = []  # who tests a case that names nobody
    cases: list[UatCase] = Field(min_length=1)

    @field_validator("cases")
    @classmethod
    def _unique_case_ids(cls, cases: list[UatCase]) -> list[UatCase]:
        return unique_ids(cases, "case")

    @model_validator(mode="after")
    def _every_case_has_a_tester(self) -> UatPlan:
        if not self.testers:
            untested = [case.id for case in self.cases if not case.testers]
            if untested:
                raise ValueError(f"case(s) {', '.join(untested)} name no testers and the plan has no 'testers'")
        return self


def plan_names(directory: Path | None = None) -> list[str]:
    """The plans a form may offer: the YAML files' names without the extension."""
    directory = directory or plans_dir()
    return sorted(path.stem for path in directory.glob("*.yaml")) if directory.is_dir() else []


def load_plan(name: str, directory: Path | None = None) -> UatPlan:
    """Read and validate ``<directory>/<name>.yaml``; PlanError names file, case and field."""
    directory = directory or plans_dir()
    if not re.match(ID_PATTERN, name):
        raise PlanError(f"test plan {name!r}: a plan name is lower-case letters, digits, '-', '_' or '.'")
    path = directory / f"{name}.yaml"
    try:
        raw = path.read_bytes()
    except OSError as error:
        known = ", ".join(plan_names(directory)) or "none"
        raise PlanError(f"{path}: no such test plan ({error.strerror}); known plans: {known}") from error
    try:
        data = parse_config(path, raw)
    except ConfigError as error:
        raise PlanError(str(error)) from None
    return validate_plan(data, str(path), raw)


def validate_plan(data: Any, source: str, raw: bytes | None = None) -> UatPlan:
    """The plan in ``data``; PlanError names the source, the line (given the file's ``raw`` bytes), case and field."""
    if not isinstance(data, dict):
        raise PlanError(f"{source}: a test plan is a mapping with 'name' and 'cases'")
    try:
        return UatPlan.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        cause = (first.get("ctx") or {}).get("error")
        location = tuple(first["loc"]) + (cause.location if isinstance(cause, LocatedError) else ())
        labels, steps = location_labels(data, location)
        message = "unknown field (a typo?)" if first["type"] == "extra_forbidden" else first["msg"]
        line = line_of(raw, steps) if raw is not None else None
        where = f" (line {line})" if line else ""
        raise PlanError(f"{source}{where}: {labels or 'plan'}: {message.removeprefix('Value error, ')}") from None


@dataclass(frozen=True)
class PlanChoice:
    """The form's ``test_plan``: a plan file's name, or a JQL filter whose issues are the cases."""

    plan: str | None = None
    jql: str | None = None


def parse_test_plan(value: str) -> PlanChoice:
    value = (value or "").strip()
    if value.lower().startswith(JQL_PREFIX):
        query = value[len(JQL_PREFIX):].strip()
        if not query:
            raise PlanError("test_plan: 'jql:' needs a query after it, e.g. 'jql: project = UAT AND labels = checkout'")
        return PlanChoice(jql=query)
    if not value:
        raise PlanError("test_plan: give a plan name or 'jql: <query>'")
    return PlanChoice(plan=value)


def plan_choice_pattern(names: Iterable[str]) -> str:
    """JSON-schema pattern for the form: one of the plans, or ``jql:`` and a query."""
    alternatives = "|".join(re.escape(name) for name in names)
    return rf"^(({alternatives})|jql:\s*\S.*)$" if alternatives else r"^jql:\s*\S.*$"


def plan_from_issues(issues: Sequence[Mapping[str, Any]], testers: Sequence[str], query: str,
                     project: str = "UAT") -> UatPlan:
    """A plan from a JQL filter: one case per issue (id = its key), steps from its description."""
    if not issues:
        raise PlanError(f"test_plan: the JQL filter {query!r} finds no issues, so there is nothing to test")
    if not testers:
        raise PlanError("testers: a JQL test plan names no testers; list them in the form's 'testers'")
    cases = []
    for issue in issues:
        fields = issue.get("fields") or {}
        description = (fields.get("description") or "").strip()
        steps = [line.strip(" -*#\t") for line in description.splitlines() if line.strip(" -*#\t")]
        cases.append({"id": str(issue["key"]).lower(), "title": (fields.get("summary") or issue["key"])[:200],
                      "steps": steps or [f"Follow {issue['key']}"],
                      "expected": f"As described in {issue['key']}"})
    return validate_plan({"name": f"JQL: {query}"[:120], "jira_project": project, "testers": list(testers),
                          "cases": cases}, f"JQL filter {query!r}")


@dataclass(frozen=True)
class Assignment:
    case: UatCase
    tester: str


def assignments(plan: UatPlan, override: Sequence[str] = ()) -> list[Assignment]:
    """Who tests which case: the form's testers (every case each) or else the plan's assignment."""
    if override:
        testers_of = {case.id: list(dict.fromkeys(override)) for case in plan.cases}
    else:
        testers_of = {case.id: list(case.testers or plan.testers) for case in plan.cases}
    return [Assignment(case, tester) for case in plan.cases for tester in testers_of[case.id]]


# --- keys: Jira labels (no spaces) and ledger keys ------------------------------------------------

def release_label(release: str) -> str:
    return f"prep-support:uat:{release}"


def ticket_label(release: str, case_id: str, tester: str) -> str:
    return f"prep-support:uat:{release}:{case_id}:{tester}"


def notify_key(release: str, tester: str) -> str:
    return f"uat:{release}:notify:{tester}"


def remind_key(release: str, tester: str, hours: int) -> str:
    return f"uat:{release}:remind:{tester}:{hours}h"


def result_key(release: str) -> str:
    return f"uat:{release}:result"


def subtask_description(case: UatCase, tester: str, deadline: datetime) -> str:
    """Jira wiki text: the steps, the expected result and how to record the outcome (values escaped)."""
    steps = "\n".join(f"# {jira_text(step)}" for step in case.steps)
    return (f"h3. Steps\n{steps}\n\nh3. Expected result\n{jira_text(case.expected)}\n\n"
            f"Tester: {jira_text(tester)}. Deadline: {deadline:%Y-%m-%d %H:%M} UTC.\n"
            "Record the outcome by moving this sub-task to *Passed* or *Failed*; "
            "link any Bug you raise to this sub-task.")


# --- waiting: reminders ---------------------------------------------------------------------------

def due_reminders(now: datetime, deadline: datetime, hours_before: Iterable[int]) -> list[int]:
    """The reminder times (hours before the deadline) that have come and whose deadline has not passed.

    Only the latest due slot is returned: a tester not reminded at 24 h (the cycle started later) gets
    one reminder, not a burst.
    """
    if now >= deadline:
        return []
    due = [hours for hours in sorted(set(hours_before)) if now >= deadline - timedelta(hours=hours)]
    return due[:1]


def next_wake(now: datetime, deadline: datetime, hours_before: Iterable[int]) -> datetime:
    """When the wait must look again at the latest: the next reminder slot still to come, or the deadline."""
    slots = [deadline - timedelta(hours=hours) for hours in hours_before]
    return min([slot for slot in slots if slot > now] + [deadline])


# --- results and the report -----------------------------------------------------------------------

def outcome(status: str, category: str, resolution: str | None, deadline_passed: bool) -> str:
    """A sub-task's outcome from its Jira status (Passed/Failed, or a done status and its resolution)."""
    if status.lower() == "passed":
        return PASSED
    if status.lower() == "failed":
        return FAILED
    if category == "done":
        return PASSED if (resolution or "Done") in ("Done", "Passed", "Fixed") else FAILED
    return NOT_DONE if deadline_passed else OPEN


@dataclass(frozen=True)
class Defect:
    key: str
    summary: str
    status: str
    url: str
    done: bool
    found_in: tuple[str, ...]  # sub-task keys


@dataclass(frozen=True)
class Result:
    case_id: str
    tester: str
    key: str
    url: str
    status: str
    outcome: str


@dataclass
class UatReport:
    release: str
    plan: str
    deadline: datetime
    deadline_passed: bool
    cases: list[UatCase]
    testers: list[str]
    results: list[Result]
    defects: list[Defect] = field(default_factory=list)

    def cell(self, case_id: str, tester: str) -> Result | None:
        return next((r for r in self.results if r.case_id == case_id and r.tester == tester), None)

    @property
    def counts(self) -> dict[str, int]:
        counted = {PASSED: 0, FAILED: 0, OPEN: 0, NOT_DONE: 0}
        for result in self.results:
            counted[result.outcome] += 1
        return counted

    @property
    def open_items(self) -> list[Result]:
        return [r for r in self.results if r.outcome in (OPEN, NOT_DONE)]

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.outcome == FAILED]

    @property
    def open_defects(self) -> list[Defect]:
        return [d for d in self.defects if not d.done]

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and all(r.outcome == PASSED for r in self.results) and not self.open_defects

    def blockers(self) -> list[str]:
        """What stands in the way of the release, one line each (listed when it is rejected)."""
        titles = {case.id: case.title for case in self.cases}
        lines = [f"{r.key} {titles.get(r.case_id, r.case_id)} ({r.tester}): failed" for r in self.failures]
        lines += [f"{r.key} {titles.get(r.case_id, r.case_id)} ({r.tester}): {r.outcome}" for r in self.open_items]
        lines += [f"{d.key} {d.summary}: open defect ({d.status})" for d in self.open_defects]
        return lines

    def summary(self) -> dict[str, Any]:
        """Small and JSON-serialisable (XCom, the cycle's row)."""
        return {"release": self.release, "plan": self.plan, "deadline": self.deadline.isoformat(),
                "deadline_passed": self.deadline_passed, "counts": self.counts, "all_passed": self.all_passed,
                "results": [r.__dict__ for r in self.results],
                "defects": [{**d.__dict__, "found_in": list(d.found_in)} for d in self.defects],
                "blockers": self.blockers()}


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~])")


def markdown_text(value: Any) -> str:
    """Plain text inside a Markdown line: emphasis, code, links, tables and inline HTML characters escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(value).replace("\n", " "))


def signoff_body(report: UatReport, page_url: str | None) -> str:
    """The sign-off request in Markdown: the matrix, the open items and the defects, values as text."""
    esc = markdown_text
    counts = report.counts
    lines = [f"**Release {esc(report.release)}**: UAT plan {esc(report.plan)}, deadline "
             f"{report.deadline:%Y-%m-%d %H:%M} UTC" + (" (passed)" if report.deadline_passed else ""), "",
             f"Passed {counts[PASSED]}, failed {counts[FAILED]}, not done {counts[NOT_DONE] + counts[OPEN]}, "
             f"open defects {len(report.open_defects)}.", ""]
    lines.append("| Case | " + " | ".join(esc(t) for t in report.testers) + " |")
    lines.append("|---|" + "---|" * len(report.testers))
    for case in report.cases:
        cells = []
        for tester in report.testers:
            result = report.cell(case.id, tester)
            cells.append("" if result is None else f"{result.outcome} ({esc(result.key)})")
        lines.append(f"| {esc(case.title)} | " + " | ".join(cells) + " |")
    lines += ["", "**Open items**" if report.open_items else "**Open items**: none"]
    titles = {case.id: case.title for case in report.cases}
    lines += [f"- {esc(r.key)} {esc(titles.get(r.case_id, r.case_id))}, {esc(r.tester)}: {r.outcome}"
              for r in report.open_items]
    lines += ["", "**Defects**" if report.defects else "**Defects**: none"]
    lines += [f"- {esc(d.key)} {esc(d.summary)} ({esc(d.status)})" for d in report.defects]
    if page_url:
        lines += ["", f"Full report: {page_url}"]
    return "\n".join(lines)


def slack_link(url: str, label: str) -> str:
    return f"<{url}|{slack_text(label)}>"
