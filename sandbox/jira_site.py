"""The Jira stand-in's data: projects, issue types, workflows, issue links and the issues.

Objects are rendered in the shapes of the Jira REST API v2 (``self`` links, ``fields``,
``statusCategory``, comment and attachment objects), see
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issues/ and
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-workflow-statuses/.
Workflows are per project and issue type as in a Jira workflow scheme: every issue follows
To Do / In Progress / Done, except in the UAT project, where a Sub-task (a test execution) ends
Passed or Failed and a Task (a release) ends Done or Rejected. Issue links follow
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-links/ (Jira's default
link types): a link ``{"type", "inwardIssue": A, "outwardIssue": B}`` shows on A as ``outwardIssue: B``
(A *blocks* B) and on B as ``inwardIssue: A`` (B *is blocked by* A), in ``fields.issuelinks``.
Errors are :class:`JiraError`, answered in Jira's shape ``{"errorMessages": [...], "errors": {...}}``
(https://developer.atlassian.com/cloud/jira/platform/rest/v2/intro/#status-codes).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.jira_jql import Clause, Query

USER = {"name": "prep-support", "key": "JIRAUSER10000", "accountId": "712020:5e1f4c2a-prep-support",
        "displayName": "Prep Support", "emailAddress": "prep-support@example.com"}
PROJECTS = {  # key: (id, name)
    "PAY": ("10000", "Payments"), "ORD": ("10001", "Orders"), "WEB": ("10002", "Web"),
    "DATA": ("10003", "Data"), "INV": ("10004", "Inventory"), "IAM": ("10005", "Identity and Access"),
    "OPS": ("10006", "Operations"), "UAT": ("10007", "User Acceptance Testing"),
}
ISSUE_TYPES = {  # name: (id, subtask)
    "Incident": ("10004", False), "Task": ("10001", False), "Bug": ("10002", False), "Sub-task": ("10003", True),
}
CATEGORIES = {  # key: (id, name, colour)
    "new": (2, "To Do", "blue-gray"), "indeterminate": (4, "In Progress", "yellow"), "done": (3, "Done", "green"),
}
STATUSES = {"To Do": ("10000", "new"), "In Progress": ("3", "indeterminate"), "Done": ("10001", "done"),
            "Passed": ("10100", "done"), "Failed": ("10101", "done"), "Rejected": ("10102", "done")}
# Global transitions into each status; an issue is offered those of its workflow.
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done", "41": "Passed", "51": "Failed", "61": "Rejected"}
DEFAULT_WORKFLOW = ("To Do", "In Progress", "Done")
WORKFLOWS = {  # (project, issue type): statuses; anything else follows DEFAULT_WORKFLOW
    ("UAT", "Sub-task"): ("To Do", "In Progress", "Passed", "Failed"),
    ("UAT", "Task"): ("To Do", "In Progress", "Done", "Rejected"),
}
DEFAULT_RESOLUTION = {"Rejected": "Won't Do"}  # when a transition into a done status names none: "Done"
LINK_TYPES = {  # name: (id, inward, outward), Jira's defaults
    "Blocks": ("10000", "is blocked by", "blocks"), "Cloners": ("10001", "is cloned by", "clones"),
    "Duplicate": ("10002", "is duplicated by", "duplicates"), "Relates": ("10003", "relates to", "relates to"),
}
RESOLUTIONS = {"Done": "10000", "Won't Do": "10001", "Duplicate": "10002", "Cannot Reproduce": "10003"}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
CREATABLE = {"project", "issuetype", "summary", "description", "labels", "priority", "parent", "assignee",
             "duedate", "environment"}
EDITABLE = CREATABLE - {"project", "issuetype", "parent"}
NOT_SETTABLE = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
NO_ISSUE = "Issue does not exist or you do not have permission to see it."


class JiraError(Exception):
    """A request Jira refuses: HTTP status, general messages and per-field errors."""

    def __init__(self, status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None):
        super().__init__("; ".join([*(messages or []), *(errors or {}).values()]))
        self.status, self.messages, self.errors = status, messages or [], errors or {}

    def body(self) -> dict[str, Any]:
        return {"errorMessages": self.messages, "errors": self.errors}


def timestamp(when: datetime) -> str:
    """Jira's date-time format, e.g. ``2024-05-01T12:34:56.789+0000``."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def _by_name(table: dict[str, Any], given: Any, field_name: str, label: str) -> str:
    """The canonical name of ``{"name": ...}`` or ``{"id": ...}`` in ``table`` (ids are the first of a tuple)."""
    if not isinstance(given, dict):
        raise JiraError(400, errors={field_name: f"Specify a valid 'id' or 'name' for {label}"})
    for name, value in table.items():
        ident = value[0] if isinstance(value, tuple) else value
        if str(given.get("name", "")).lower() == name.lower() or str(given.get("id", "")) == ident:
            return name
    raise JiraError(400, errors={field_name: f"Specify a valid 'id' or 'name' for {label}"})


@dataclass
class Issue:
    id: str
    key: str
    project: str
    issuetype: str
    fields: dict[str, Any]  # summary, description, labels, priority and the other settable fields
    created: datetime
    updated: datetime
    status: str = "To Do"
    resolution: str | None = None
    resolved: datetime | None = None
    parent: str | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class IssueLink:
    id: str
    type: str  # a LINK_TYPES name
    inward: str  # key of the issue the outward description applies to ("A blocks B": A)
    outward: str  # key of the other one ("B is blocked by A": B)


DEPLOYMENTS = ("Server", "Cloud")  # serverInfo.deploymentType of Jira Data Center / Server, and of Jira Cloud
CLOUD_INDEX_LAG_S = 1.0  # how long a new issue stays out of Cloud's search unless reconcileIssues names it


class JiraSite:
    """One Jira site: its issues and the counters that key them, and whether it behaves as Cloud or Server/DC.

    As Cloud, search is eventually consistent: an issue created less than ``index_lag_s`` ago is not
    found, unless the search names its id in ``reconcileIssues``
    (https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-search/#api-rest-api-2-search-jql-post).
    """

    def __init__(self) -> None:
        self.deployment = "Server"
        self.index_lag_s = 0.0
        self.clear()

    @property
    def cloud(self) -> bool:
        return self.deployment == "Cloud"

    def set_deployment(self, deployment: str, index_lag_s: float | None = None) -> None:
        if deployment not in DEPLOYMENTS:
            raise JiraError(400, errors={"deploymentType": f"one of {', '.join(DEPLOYMENTS)}"})
        self.deployment = deployment
        default_lag = CLOUD_INDEX_LAG_S if deployment == "Cloud" else 0.0
        self.index_lag_s = default_lag if index_lag_s is None else max(float(index_lag_s), 0.0)

    def clear(self) -> None:
        self.issues: dict[str, Issue] = {}
        self.links: dict[str, IssueLink] = {}
        self.contents: dict[str, bytes] = {}  # attachment id -> bytes
        self._ids = itertools.count(10000)
        self._numbers = {key: itertools.count(1) for key in PROJECTS}

    def next_id(self) -> str:
        return str(next(self._ids))

    # -- issues ---------------------------------------------------------------------------------

    def get(self, ref: str) -> Issue:
        """An issue by key (any case) or numeric id; 404 in Jira's words otherwise."""
        found = self.issues.get(ref.upper()) or next((i for i in self.issues.values() if i.id == ref), None)
        if found is None:
            raise JiraError(404, [NO_ISSUE])
        return found

    def create(self, payload: Any) -> Issue:
        fields = payload.get("fields") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            raise JiraError(400, ["Request body must contain 'fields'."])
        errors: dict[str, str] = {}
        project = self._project(fields.get("project"), errors)
        issuetype = self._issuetype(fields.get("issuetype"), errors)
        if "summary" not in fields:
            errors["summary"] = "You must specify a summary of the issue."
        parent = self._parent(fields.get("parent"), issuetype, errors)
        for name in fields:
            if name not in CREATABLE and not name.startswith("customfield_"):
                errors[name] = NOT_SETTABLE.format(name)
        settable = {name: value for name, value in fields.items()
                    if name not in ("project", "issuetype", "parent")}
        values = self._settable(settable, errors, defaults={"labels": [], "priority": "Medium", "description": None})
        if errors:
            raise JiraError(400, errors=errors)
        now = datetime.now(UTC)
        issue = Issue(self.next_id(), f"{project}-{next(self._numbers[project])}", project, issuetype, values,
                      created=now, updated=now, parent=parent)
        self.issues[issue.key] = issue
        return issue

    def edit(self, issue: Issue, payload: Any) -> None:
        """PUT /issue: ``fields`` set values; ``update`` adds/removes/sets labels and adds comments."""
        payload = payload if isinstance(payload, dict) else {}
        errors: dict[str, str] = {}
        fields = payload.get("fields") or {}
        for name in fields:
            if name not in EDITABLE and not name.startswith("customfield_"):
                errors[name] = NOT_SETTABLE.format(name)
        values = self._settable(fields, errors, defaults={})
        labels = list(values.get("labels", issue.fields["labels"]))
        comments = []
        for name, operations in (payload.get("update") or {}).items():
            for operation in operations if isinstance(operations, list) else []:
                if name == "labels" and isinstance(operation, dict):
                    labels = _apply_label_operation(labels, operation, errors)
                elif name == "comment" and isinstance(operation, dict) and "add" in operation:
                    comments.append(operation["add"].get("body", ""))
                else:
                    errors[name] = NOT_SETTABLE.format(name)
        if errors:
            raise JiraError(400, errors=errors)
        issue.fields |= values | {"labels": labels}
        for body in comments:
            self.add_comment(issue, {"body": body})
        issue.updated = datetime.now(UTC)

    def _project(self, given: Any, errors: dict[str, str]) -> str:
        if not isinstance(given, dict) or not (given.get("key") or given.get("id")):
            errors["project"] = "project is required"
            return ""
        for key, (ident, _name) in PROJECTS.items():
            if str(given.get("key", "")).upper() == key or str(given.get("id", "")) == ident:
                return key
        errors["project"] = "valid project is required"
        return ""

    def _issuetype(self, given: Any, errors: dict[str, str]) -> str:
        if not isinstance(given, dict) or not (given.get("name") or given.get("id")):
            errors["issuetype"] = "issue type is required"
            return ""
        try:
            return _by_name(ISSUE_TYPES, given, "issuetype", "issuetype")
        except JiraError:
            errors["issuetype"] = "valid issue type is required"
            return ""

    def _parent(self, given: Any, issuetype: str, errors: dict[str, str]) -> str | None:
        is_subtask = bool(issuetype) and ISSUE_TYPES[issuetype][1]
        if given is None:
            if is_subtask:
                errors["parent"] = "Issue type is a sub-task but parent issue key or id not specified."
            return None
        ref = str(given.get("key") or given.get("id") or "") if isinstance(given, dict) else ""
        try:
            return self.get(ref).key
        except JiraError:
            errors["parent"] = f"Could not find issue by id or key '{ref}'."
            return None

    def _settable(self, fields: dict[str, Any], errors: dict[str, str], defaults: dict[str, Any]) -> dict[str, Any]:
        """Validated values of the plain fields, over ``defaults``."""
        values = dict(defaults)
        for name, value in fields.items():
            if name == "summary":
                if not isinstance(value, str) or not value.strip():
                    errors["summary"] = "You must specify a summary of the issue."
                elif len(value) > 255:
                    errors["summary"] = "Summary must be less than 255 characters."
                values[name] = value
            elif name == "labels":
                if not isinstance(value, list) or not all(isinstance(label, str) for label in value):
                    errors["labels"] = "Labels must be a list of strings."
                elif any(" " in label for label in value):
                    bad = next(label for label in value if " " in label)
                    errors["labels"] = f"The label '{bad}' contains spaces which is invalid."
                else:
                    values[name] = list(dict.fromkeys(value))
            elif name == "priority":
                try:
                    values[name] = _by_name(PRIORITIES, value, "priority", "Priority")
                except JiraError as error:
                    errors |= error.errors
            elif name in EDITABLE or name.startswith("customfield_"):
                values[name] = value
        return values

    # -- comments, attachments, transitions -----------------------------------------------------

    def add_comment(self, issue: Issue, payload: Any) -> dict[str, Any]:
        body = payload.get("body") if isinstance(payload, dict) else None
        if not isinstance(body, str) or not body.strip():
            raise JiraError(400, errors={"comment": "Comment body can not be empty!"})
        now = timestamp(datetime.now(UTC))
        comment = {"id": self.next_id(), "body": body, "created": now, "updated": now}
        issue.comments.append(comment)
        issue.updated = datetime.now(UTC)
        return comment

    def add_attachment(self, issue: Issue, filename: str, content: bytes, mime_type: str) -> dict[str, Any]:
        attachment = {"id": self.next_id(), "filename": filename, "size": len(content), "mimeType": mime_type,
                      "created": timestamp(datetime.now(UTC))}
        issue.attachments.append(attachment)
        self.contents[attachment["id"]] = content
        issue.updated = datetime.now(UTC)
        return attachment

    def available_transitions(self, issue: Issue) -> list[tuple[str, str]]:
        """(id, target status) of every transition of the issue's workflow out of its status."""
        workflow = WORKFLOWS.get((issue.project, issue.issuetype), DEFAULT_WORKFLOW)
        return [(ident, target) for ident, target in TRANSITIONS.items()
                if target in workflow and target != issue.status]

    def transition(self, issue: Issue, payload: Any) -> None:
        transition = payload.get("transition") if isinstance(payload, dict) else None
        ident = str(transition.get("id")) if isinstance(transition, dict) else "None"
        if ident not in dict(self.available_transitions(issue)):
            raise JiraError(400, [f"Transition id '{ident}' is not valid for this issue."])
        target = TRANSITIONS[ident]
        resolution = None
        if STATUSES[target][1] == "done":
            default = {"name": DEFAULT_RESOLUTION.get(target, "Done")}
            given = (payload.get("fields") or {}).get("resolution") or default
            resolution = _by_name(RESOLUTIONS, given, "resolution", "Resolution")
        now = datetime.now(UTC)
        issue.transitions.append({"id": self.next_id(), "transition": ident, "from": issue.status, "to": target,
                                  "at": timestamp(now)})
        issue.status, issue.resolution, issue.updated = target, resolution, now
        issue.resolved = now if resolution else None
        for operation in (payload.get("update") or {}).get("comment", []):
            if isinstance(operation, dict) and isinstance(operation.get("add"), dict):
                self.add_comment(issue, operation["add"])

    # -- issue links ------------------------------------------------------------------------------

    def link(self, payload: Any) -> IssueLink:
        """POST /issueLink; linking the same two issues the same way again keeps the one link, as Jira does."""
        payload = payload if isinstance(payload, dict) else {}
        try:
            kind = _by_name(LINK_TYPES, payload.get("type"), "issueLinkType", "issue link type")
        except JiraError:
            raise JiraError(404, [f"No issue link type with name '{(payload.get('type') or {}).get('name')}' "
                                  "found."]) from None
        ends = []
        for side in ("inwardIssue", "outwardIssue"):
            given = payload.get(side)
            ref = str(given.get("key") or given.get("id") or "") if isinstance(given, dict) else ""
            if not ref:
                raise JiraError(400, errors={side: f"{side} is required"})
            ends.append(self.get(ref).key)
        for existing in self.links.values():
            if (existing.type, existing.inward, existing.outward) == (kind, *ends):
                return existing
        created = IssueLink(self.next_id(), kind, *ends)
        self.links[created.id] = created
        comment = payload.get("comment")
        if isinstance(comment, dict) and comment.get("body"):
            self.add_comment(self.issues[ends[0]], comment)
        for key in ends:
            self.issues[key].updated = datetime.now(UTC)
        return created

    def get_link(self, ident: str) -> IssueLink:
        if ident not in self.links:
            raise JiraError(404, [f"No issue link with id '{ident}' exists."])
        return self.links[ident]

    def links_of(self, issue: Issue) -> list[IssueLink]:
        return [link for link in self.links.values() if issue.key in (link.inward, link.outward)]

    # -- search -----------------------------------------------------------------------------------

    def search(self, query: Query, reconcile: frozenset[str] = frozenset()) -> list[Issue]:
        """Issues matching ``query``, but not those created within the index lag unless ``reconcile`` has their id."""
        for clause in query.clauses:
            self._check_values(clause)
        indexed_before = datetime.now(UTC).timestamp() - self.index_lag_s
        found = [issue for issue in self.issues.values()
                 if (issue.created.timestamp() <= indexed_before or issue.id in reconcile)
                 and all(clause.matches(self._shown(issue, clause.field)) for clause in query.clauses)]
        found.sort(key=lambda issue: int(issue.id), reverse=True)  # Jira's default: newest first
        for name, descending in reversed(query.order):
            found.sort(key=_sort_key(name), reverse=descending)
        return found

    def _shown(self, issue: Issue, name: str) -> list[str]:
        """How the issue's field can be named in JQL: names, keys and ids."""
        if name == "project":
            return [issue.project, *PROJECTS[issue.project]]
        if name == "labels":
            return issue.fields["labels"]
        if name == "status":
            return [issue.status, STATUSES[issue.status][0]]
        if name == "statusCategory":
            key = STATUSES[issue.status][1]
            return [key, CATEGORIES[key][1], str(CATEGORIES[key][0])]
        if name == "issuetype":
            return [issue.issuetype, ISSUE_TYPES[issue.issuetype][0]]
        if name == "key":
            return [issue.key, issue.id]
        return [issue.parent, self.issues[issue.parent].id] if issue.parent else []

    def _check_values(self, clause: Clause) -> None:
        """Jira rejects a query naming a project, status, type or issue that does not exist."""
        known = {
            "project": [name for key, (ident, title) in PROJECTS.items() for name in (key, ident, title)],
            "status": [name for status, (ident, _) in STATUSES.items() for name in (status, ident)],
            "statusCategory": [str(n) for key, (ident, title, _) in CATEGORIES.items() for n in (key, ident, title)],
            "issuetype": [name for kind, (ident, _) in ISSUE_TYPES.items() for name in (kind, ident)],
        }.get(clause.field)
        if clause.field in ("key", "parent"):
            known = [name for issue in self.issues.values() for name in (issue.key, issue.id)]
        lowered = {name.lower() for name in known or []}
        for value in clause.values if known is not None else ():
            if value.lower() not in lowered:
                if clause.field in ("key", "parent"):
                    raise JiraError(400, [f"An issue with key '{value}' does not exist for field '{clause.field}'."])
                raise JiraError(400, [f"The value '{value}' does not exist for the field '{clause.field}'."])


def _apply_label_operation(labels: list[str], operation: dict[str, Any], errors: dict[str, str]) -> list[str]:
    """One of ``{"add": x}``, ``{"remove": x}``, ``{"set": [...]}`` on the label list."""
    if "set" in operation and isinstance(operation["set"], list):
        return list(dict.fromkeys(operation["set"]))
    if isinstance(operation.get("add"), str) and " " not in operation["add"]:
        return labels if operation["add"] in labels else [*labels, operation["add"]]
    if isinstance(operation.get("remove"), str):
        return [label for label in labels if label != operation["remove"]]
    errors["labels"] = f"Invalid label operation {operation!r}."
    return labels


def _sort_key(name: str) -> Any:
    if name == "key":
        return lambda issue: (issue.project, int(issue.key.rsplit("-", 1)[1]))
    return lambda issue: (getattr(issue, name), int(issue.id))  # ids break ties within a millisecond
