"""Jira and ServiceNow behind one small interface (``prep_support.reconcile.Tracker``).

Every method is safe to repeat, which is what makes reconciliation idempotent:

- the incident's dedup key is on the ticket (a Jira label, the ServiceNow ``correlation_id``)
  and ``find_open`` looks it up before anything is created;
- comments carry a marker and are posted only if no comment has it yet;
- resolving a resolved ticket does nothing.

Transient failures (HTTP 5xx, 429, a dropped connection) are retried here with a short
backoff that honours Retry-After. A create that failed is not simply repeated: the caller
searches by key first (see ``prep_support.reconcile._ensure_ticket``), so this class retries
the *search-then-create* step as a whole.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from functools import cached_property, partial
from typing import Any, TypeVar

import requests

from hooks.http_client import HttpError, retry_after_seconds
from prep_support.messages import jira_text, servicenow_text
from prep_support.reconcile import Ticket
from prep_support.routing import ResolvedRoute

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS = 6
SEARCH_PAGE = 100  # Jira's largest page of search results
RECONCILE_MAX = 50  # Jira Cloud reconciles at most 50 issue ids per search
CLOUD_SETTLE_S = 5.0  # how long a retried create waits for Cloud's search to show an issue a lost answer made
LINK_TYPE = "Relates"  # a UAT sub-task <-> its release ticket; a recurrence <-> the earlier incident
REOPENED_STATUS = "To Do"  # where a re-opened Jira incident goes back to
STATE_IN_PROGRESS = "2"  # ServiceNow incident state a re-opened incident goes back to


def is_transient(error: BaseException) -> tuple[bool, float | None]:
    """Whether an error from a tracker client is worth another try, and the server's Retry-After."""
    if isinstance(error, HttpError):
        return error.status is None or error.status == 429 or error.status >= 500, None
    if isinstance(error, requests.HTTPError) and error.response is not None:
        status = error.response.status_code
        return status == 429 or status >= 500, retry_after_seconds(error.response.headers.get("Retry-After"), 0) or None
    return isinstance(error, requests.ConnectionError | requests.Timeout), None


def with_retries(describe: str, call: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except Exception as error:
            transient, retry_after = is_transient(error)
            if not transient or attempt == ATTEMPTS:
                raise
            delay = retry_after if retry_after is not None else min(5.0, 0.2 * 2 ** (attempt - 1))
            log.warning("%s failed (%s), try %d of %d in %.1f s", describe, error, attempt, ATTEMPTS, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def gone(error: BaseException) -> bool:
    """The tracker says the ticket does not exist (deleted, or moved out of our reach): HTTP 404."""
    response = getattr(error, "response", None)
    return getattr(error, "status", None) == 404 or getattr(response, "status_code", None) == 404


def unless_gone(describe: str, ticket_key: str, call: Callable[[], None]) -> None:
    """Run ``call`` with retries; a ticket someone deleted is logged and skipped, not retried for ever."""
    try:
        with_retries(describe, call)
    except Exception as error:
        if not gone(error):
            raise
        log.warning("%s skipped: ticket %s no longer exists (%s)", describe, ticket_key, error)


def jira_label(dedup_key: str) -> str:
    """Jira labels may not contain spaces; our keys never do, and the prefix makes them ours."""
    return "prep-support:" + re.sub(r"\s", "_", dedup_key)


class JiraIssues:
    """Jira issues through the atlassian-jira provider's JiraHook; each change looks first, so it is safe to repeat.

    Jira Cloud and Jira Server/Data Center search differently, and the site says which it is in
    ``serverInfo.deploymentType``. Server/DC: ``GET /rest/api/2/search`` with ``startAt`` and
    ``total`` (the client's ``jql()``). Cloud retired that endpoint (410 Gone, CHANGE-2046) for
    ``/rest/api/2/search/jql``: ``nextPageToken`` paging, ``isLast``, no ``total``, and an index that
    shows a new issue only after a moment unless its id is passed in ``reconcileIssues``
    (https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-search/). That endpoint
    is called here: atlassian-python-api's ``enhanced_jql`` goes to API v3, whose descriptions and
    comments are Atlassian Document Format rather than the v2 text everything else here reads, and
    cannot pass ``reconcileIssues``; its ``jql()`` on a Cloud client refuses any page after the first.
    """

    def __init__(self, conn_id: str = "jira_default") -> None:
        self.conn_id = conn_id
        self._created: deque[str] = deque(maxlen=RECONCILE_MAX)  # ids this object created, for reconcileIssues

    @cached_property
    def client(self) -> Any:
        from airflow.providers.atlassian.jira.hooks.jira import JiraHook

        return JiraHook(jira_conn_id=self.conn_id).get_conn()

    @cached_property
    def cloud(self) -> bool:
        """Whether the site is Jira Cloud (``serverInfo.deploymentType``), asked once."""
        info = with_retries("Jira serverInfo", self.client.get_server_info)
        return str((info or {}).get("deploymentType", "")).lower() == "cloud"

    def browse_url(self, key: str) -> str:
        return f"{self.client.url.rstrip('/')}/browse/{key}"

    def search(self, jql: str, fields: str = "summary,status,resolution,labels,issuelinks,issuetype",
               limit: int | None = None) -> list[dict]:
        """Every issue the query finds (the first ``limit`` if given), page by page (Jira caps a page at 100)."""
        size = min(limit or SEARCH_PAGE, SEARCH_PAGE)
        found: list[dict] = []
        token: str | None = None
        while True:
            if self.cloud:
                page = with_retries(f"Jira search {jql}", partial(self._search_jql, jql, fields, size, token))
                token = page.get("nextPageToken")
                issues = page.get("issues") or []
                last = bool(page.get("isLast", True)) or not token
            else:
                start = len(found)
                page = with_retries(f"Jira search {jql}",
                                    partial(self.client.jql, jql, fields=fields, start=start, limit=size))
                page = page if isinstance(page, dict) else {}
                issues = page.get("issues") or []
                last = not issues or start + len(issues) >= int(page.get("total", 0))
            found += issues
            if last or (limit is not None and len(found) >= limit):
                return found[:limit] if limit is not None else found

    def _search_jql(self, jql: str, fields: str, size: int, token: str | None) -> dict[str, Any]:
        """One page of Cloud's ``POST /rest/api/2/search/jql``, reconciling the issues this object created."""
        body: dict[str, Any] = {"jql": jql, "fields": [f.strip() for f in fields.split(",") if f.strip()],
                                "maxResults": size}
        if token:
            body["nextPageToken"] = token
        if self._created:
            body["reconcileIssues"] = [int(ident) for ident in self._created]
        return self.client.post(self.client.resource_url("search/jql"), data=body) or {}

    def create_once(self, describe: str, find: Callable[[], T | None], create: Callable[[], dict[str, Any]],
                    sleep: Callable[[float], None] = time.sleep) -> tuple[T | dict[str, Any], bool]:
        """``find()``, else ``create()`` (True if created); retried as a whole.

        A create whose answer never came may still have happened. The retry looks first; on Cloud, whose
        search shows a new issue only after a moment, it first waits until CLOUD_SETTLE_S have passed since
        that create was sent (one wait and one look, so a retry's calls do not fall into step with a
        server's failures).
        """
        sent_at: float | None = None

        def attempt() -> tuple[T | dict[str, Any], bool]:
            nonlocal sent_at
            if sent_at is not None and self.cloud:
                sleep(max(0.0, sent_at + CLOUD_SETTLE_S - time.monotonic()))
            existing = find()
            if existing is not None:
                return existing, False
            sent_at = time.monotonic()
            issue = create()
            self._created.append(str(issue["id"]))
            return issue, True

        return with_retries(describe, attempt)

    def find_by_label(self, label: str) -> dict | None:
        found = self.search(f'labels = "{label}" ORDER BY created ASC', fields="summary,status,issuelinks")
        return found[0] if found else None

    def ensure_issue(self, label: str, fields: dict[str, Any]) -> tuple[str, bool]:
        """The key of the issue labelled ``label``, created with ``fields`` if there is none (True if created)."""
        labels = [label, *[x for x in fields.get("labels", []) if x != label]]
        issue, created = self.create_once(f"Jira create {label}", lambda: self.find_by_label(label),
                                          lambda: self.client.issue_create(fields={**fields, "labels": labels}))
        return issue["key"], created

    def ensure_link(self, key: str, other: str, link_type: str = LINK_TYPE) -> bool:
        """Link ``key`` to ``other`` unless ``key`` already shows a link to it; True if linked now."""
        def link_once() -> bool:
            links = self.client.get_issue(key, fields="issuelinks")["fields"].get("issuelinks") or []
            if any((link.get("inwardIssue") or link.get("outwardIssue") or {}).get("key") == other for link in links):
                return False
            self.client.create_issue_link({"type": {"name": link_type}, "inwardIssue": {"key": key},
                                           "outwardIssue": {"key": other}})
            return True

        return with_retries(f"Jira link {key} to {other}", link_once)

    def comment_once(self, key: str, marker: str, text: str) -> None:
        with_retries(f"Jira comment on {key}", lambda: self._comment_unless_marked(key, marker, text))

    def _comment_unless_marked(self, key: str, marker: str, text: str) -> None:
        """One try: post ``marker`` and ``text`` unless a comment already carries the marker."""
        comments = self.client.issue_get_comments(key).get("comments", [])
        if not any(marker in (c.get("body") or "") for c in comments):
            self.client.issue_add_comment(key, f"{marker}\n{text}")

    def move_to(self, key: str, status: str) -> bool:
        """Transition ``key`` into ``status`` unless it is there; True if moved. No such transition: an error."""
        def transition() -> bool:
            current = self.client.get_issue(key, fields="status")["fields"]["status"]["name"]
            if current == status:
                return False
            offered = self.client.get_issue_transitions(key)
            into = [t for t in offered if t["to"] == status]
            if not into:
                names = ", ".join(t["to"] for t in offered) or "none"
                raise ValueError(f"Jira offers no transition of {key} from {current!r} into {status!r} "
                                 f"(offered: {names}); check the project's workflow")
            self.client.set_issue_status_by_transition_id(key, into[0]["id"])
            return True

        return with_retries(f"Jira transition {key} to {status}", transition)


class JiraTracker(JiraIssues):
    """Incidents as Jira issues, through the atlassian-jira provider's JiraHook."""

    def _ticket(self, issue: dict[str, Any]) -> Ticket:
        return Ticket(key=issue["key"], id=str(issue["id"]), url=self.browse_url(issue["key"]))

    def find_open(self, dedup_key: str) -> Ticket | None:
        jql = f'labels = "{jira_label(dedup_key)}" AND statusCategory != Done ORDER BY created DESC'
        issues = self.search(jql, fields="summary,status", limit=1)
        return self._ticket(issues[0]) if issues else None

    def create(self, *, dedup_key: str, summary: str, description: str, route: ResolvedRoute) -> Ticket:
        fields = {"project": {"key": route.project}, "issuetype": {"name": route.tracker.issue_type},
                  "summary": summary[:250], "description": jira_text(description),
                  "labels": [jira_label(dedup_key), "prep-support"], "priority": {"name": route.priority}}
        found, created = self.create_once(f"Jira create {dedup_key}", lambda: self.find_open(dedup_key),
                                          lambda: self.client.issue_create(fields=fields))
        return self._ticket(found) if created else found

    def comment(self, ticket: Ticket, marker: str, text: str) -> None:
        # Incident texts are plain text that quotes monitored systems and failing rows: escaped for the
        # wiki renderer, so a '[log in|https://evil]' in them shows as typed instead of as a link.
        unless_gone(f"Jira comment on {ticket.key}", ticket.key,
                    lambda: self._comment_unless_marked(ticket.key, marker, jira_text(text)))

    def resolve(self, ticket: Ticket, marker: str, text: str) -> None:
        self.comment(ticket, marker, text)

        def transition_once() -> None:
            # No transition into Done is offered once the issue is Done: that makes this safe to repeat.
            into_done = [t for t in self.client.get_issue_transitions(ticket.key) if t["to"] == "Done"]
            if into_done:
                self.client.set_issue_status_by_transition_id(ticket.key, into_done[0]["id"])

        unless_gone(f"Jira resolve {ticket.key}", ticket.key, transition_once)

    def attach(self, ticket: Ticket, file_name: str, content: bytes) -> None:
        import io

        def attach_once() -> None:
            issue = self.client.get_issue(ticket.key, fields="attachment")
            if any(a.get("filename") == file_name for a in issue["fields"].get("attachment") or []):
                return
            handle = io.BytesIO(content)
            handle.name = file_name
            self.client.add_attachment_object(ticket.key, handle)

        unless_gone(f"Jira attach {file_name} to {ticket.key}", ticket.key, attach_once)

    def reopen(self, ticket: Ticket, marker: str, text: str) -> None:
        """Comment why, then transition the issue back to To Do (nothing if it is not done)."""
        self.comment(ticket, marker, text)

        def back_to_do() -> None:
            category = self.client.get_issue(ticket.key, fields="status")["fields"]["status"].get("statusCategory")
            if (category or {}).get("key") == "done":
                self.move_to(ticket.key, REOPENED_STATUS)

        unless_gone(f"Jira reopen {ticket.key}", ticket.key, back_to_do)

    def link(self, ticket: Ticket, previous: Ticket) -> None:
        """A recurrence's issue 'relates to' the earlier one; linking twice keeps one link."""
        self.ensure_link(ticket.key, previous.key)


class ServiceNowTracker:
    """Incidents in ServiceNow through our ServiceNowHook (Table API)."""

    URGENCY = {"Highest": "1", "High": "1", "Medium": "2", "Low": "3"}
    IMPACT = {"Highest": "1", "High": "2", "Medium": "2", "Low": "3"}

    def __init__(self, conn_id: str = "servicenow_default") -> None:
        self.conn_id = conn_id

    @cached_property
    def hook(self) -> Any:
        from hooks.servicenow import ServiceNowHook

        return ServiceNowHook(servicenow_conn_id=self.conn_id)

    def _ticket(self, record: dict[str, Any]) -> Ticket:
        base = self.hook.conn_params.base_url
        return Ticket(key=record["number"], id=record["sys_id"],
                      url=f"{base}/nav_to.do?uri=incident.do?sys_id={record['sys_id']}")

    def find_open(self, dedup_key: str) -> Ticket | None:
        record = with_retries(f"ServiceNow search {dedup_key}", lambda: self.hook.find_open_incident(dedup_key))
        return self._ticket(record) if record else None

    def create(self, *, dedup_key: str, summary: str, description: str, route: ResolvedRoute) -> Ticket:
        def search_then_create() -> Ticket:
            existing = self.find_open(dedup_key)
            if existing is not None:
                return existing
            fields = {"short_description": summary[:160], "description": description, "correlation_id": dedup_key,
                      "correlation_display": "Prep Support", "urgency": self.URGENCY[route.priority],
                      "impact": self.IMPACT[route.priority], "category": "software"}
            if route.tracker.assignment_group:
                fields["assignment_group"] = route.tracker.assignment_group
            return self._ticket(self.hook.create_incident(fields))

        return with_retries(f"ServiceNow create {dedup_key}", search_then_create)

    def comment(self, ticket: Ticket, marker: str, text: str) -> None:
        def comment_once() -> None:
            if marker in self._journal(ticket):
                return
            self.hook.add_work_note(ticket.id, f"{marker}\n{servicenow_text(text)}")  # a journal field

        with_retries(f"ServiceNow work note on {ticket.key}", comment_once)

    def resolve(self, ticket: Ticket, marker: str, text: str) -> None:
        def resolve_once() -> None:
            record = self.hook.get_incident(ticket.id)
            if str(record.get("active")).lower() == "false":
                return
            self.hook.resolve_incident(ticket.id, close_notes=f"{marker}\n{text}")

        with_retries(f"ServiceNow resolve {ticket.key}", resolve_once)

    def attach(self, ticket: Ticket, file_name: str, content: bytes) -> None:
        def attach_once() -> None:
            if any(a.get("file_name") == file_name for a in self.hook.attachments(ticket.id)):
                return
            self.hook.attach_file(ticket.id, file_name, content, "text/csv")

        with_retries(f"ServiceNow attach {file_name} to {ticket.key}", attach_once)

    def reopen(self, ticket: Ticket, marker: str, text: str) -> None:
        """A work note saying why, then state back to In Progress (nothing if it is still active)."""
        self.comment(ticket, marker, text)

        def back_in_progress() -> None:
            record = self.hook.get_incident(ticket.id)
            if str(record.get("active")).lower() == "false":
                self.hook.update_incident(ticket.id, {"state": STATE_IN_PROGRESS})

        with_retries(f"ServiceNow reopen {ticket.key}", back_in_progress)

    def link(self, ticket: Ticket, previous: Ticket) -> None:
        """A recurrence names the earlier incident as its parent (the incident table's reference field)."""
        def link_once() -> None:
            if self.hook.get_incident(ticket.id).get("parent_incident") == previous.id:  # read without links
                return
            self.hook.update_incident(ticket.id, {"parent_incident": previous.id})

        with_retries(f"ServiceNow link {ticket.key} to {previous.key}", link_once)

    def _journal(self, ticket: Ticket) -> str:
        return "\n".join(self.hook.journal(ticket.id))


class Trackers:
    """Callable giving the tracker of a route: one client per Connection for as long as this lives."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, str], JiraTracker | ServiceNowTracker] = {}

    def __call__(self, route: ResolvedRoute) -> JiraTracker | ServiceNowTracker:
        key = (route.tracker.system, route.tracker.connection)
        if key not in self._made:
            kind = JiraTracker if route.tracker.system == "jira" else ServiceNowTracker
            self._made[key] = kind(route.tracker.connection)
        return self._made[key]
