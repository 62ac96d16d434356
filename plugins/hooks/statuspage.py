"""Atlassian Statuspage components and incidents through the REST API v1, keyed for idempotency.

Usage::

    from hooks.statuspage import StatuspageHook

    hook = StatuspageHook()                                 # Connection "statuspage_default"
    ids = hook.component_ids(["payments-api"])              # component name -> id
    incident = hook.create_incident(
        key="outage/payments-api/2024-05-01", name="Payments degraded", status="investigating",
        body="We are looking into failed payments.", impact="major",
        component_statuses={ids["payments-api"]: "partial_outage"},
    )                                                       # a second call returns the same incident
    hook.update_incident(incident["id"], status="resolved", body="Fixed.",
                         component_statuses={ids["payments-api"]: "operational"})

Each incident we open carries our key in its ``metadata`` (``{"prep_support": {"key": ...}}``;
Statuspage accepts a JSON object on incidents whose top-level values are objects), and
``create_incident`` looks the key up first, so a retried task never opens a second incident.
Scheduled maintenance: pass ``status="scheduled"`` with ``scheduled_for``/``scheduled_until``.

The Connection (``http``): host = ``api.statuspage.io``, password = an API key (sent as
``Authorization: OAuth <key>``); extra ``page_id`` (required), ``base_path`` (the sandbox:
``/statuspage``), ``timeout`` (seconds), ``verify``.

REST API: https://developer.statuspage.io/ (Components, Incidents). The API allows one request a
second per key and answers a request over it with 420 as well as 429, both with ``Retry-After``
(https://community.atlassian.com/t5/Statuspage-articles/Upcoming-rate-limiting-changes-to-Statuspage-REST-API/ba-p/1455362:
the move to 429 was announced, and 420 kept for the integrations built on it); ``send`` waits both out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook

from hooks.api_connection import ApiConnection, api_connection, epoch_seconds
from hooks.http_client import HttpError, send
from prep_support.messages import statuspage_text

log = logging.getLogger(__name__)

PER_PAGE = 100
METADATA_NAMESPACE = "prep_support"
REALTIME_STATUSES = ("investigating", "identified", "monitoring", "resolved")
SCHEDULED_STATUSES = ("scheduled", "in_progress", "verifying", "completed")
COMPONENT_STATUSES = ("operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage")
IMPACTS = ("none", "maintenance", "minor", "major", "critical")
STATUSPAGE_REMINDER_MINUTES = 60  # scheduled_remind_prior: Statuspage reminds subscribers 60 minutes before


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(allowed)}")


def incident_key(incident: dict[str, Any]) -> str | None:
    """Our key in an incident's metadata, or None for an incident someone else opened."""
    ours = (incident.get("metadata") or {}).get(METADATA_NAMESPACE) or {}
    return ours.get("key") if isinstance(ours, dict) else None


class StatuspageHook(BaseHook):
    """Components and incidents of one Statuspage page."""

    conn_name_attr = "statuspage_conn_id"
    default_conn_name = "statuspage_default"
    conn_type = "http"
    hook_name = "Statuspage"

    def __init__(self, *, statuspage_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.statuspage_conn_id = statuspage_conn_id

    @cached_property
    def conn_params(self) -> ApiConnection:
        """The API root, key and page id, read from the Connection on first use."""
        params = api_connection(self.get_connection(self.statuspage_conn_id), "Statuspage", needs=("password",))
        if not str(params.extra.get("page_id") or "").strip():
            raise ValueError(f"Connection {self.statuspage_conn_id!r} needs extra 'page_id' for Statuspage")
        return params

    @property
    def page_id(self) -> str:
        return str(self.conn_params.extra["page_id"]).strip()

    @cached_property
    def session(self) -> requests.Session:
        return self.conn_params.json_session(headers={"Authorization": f"OAuth {self.conn_params.password}"})

    def _url(self, path: str) -> str:
        return f"{self.conn_params.base_url}/v1/pages/{self.page_id}/{path}"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self._url(path)
        try:
            return send(self.session, method, url, timeout=self.conn_params.timeout, **kwargs)
        except HttpError as error:
            if error.status in (401, 403):
                detail = str(error).partition(f"HTTP {error.status}: ")[2]
                raise HttpError(method, url, error.status, f"Statuspage refused the API key of Connection "
                                                           f"{self.statuspage_conn_id!r}: {detail}") from error
            raise

    def _pages(self, path: str, params: dict[str, Any] | None = None, per_page: int | None = None,
               size_param: str = "per_page") -> Iterator[dict[str, Any]]:
        """Every item of a list call: Statuspage lists are bare arrays; a short page is the last.

        The page size is ``per_page`` on most lists but ``limit`` on the incident list.
        """
        page, per_page = 1, per_page or PER_PAGE
        while True:
            chunk = self._call("GET", path, params={**(params or {}), "page": page, size_param: per_page}).json()
            yield from chunk
            if len(chunk) < per_page:
                return
            page += 1

    # --- components ----------------------------------------------------------------------------

    def components(self, *, per_page: int | None = None) -> list[dict[str, Any]]:
        """Every component of the page (all pages followed)."""
        return list(self._pages("components", per_page=per_page))

    def component_ids(self, names: Iterable[str]) -> dict[str, str]:
        """Component name -> id for these names; ValueError naming the ones the page does not have."""
        wanted = list(dict.fromkeys(names))
        by_name = {component["name"]: component["id"] for component in self.components()}
        unknown = [name for name in wanted if name not in by_name]
        if unknown:
            raise ValueError(f"Statuspage page {self.page_id} (Connection {self.statuspage_conn_id!r}) has no "
                             f"component named {', '.join(map(repr, unknown))}; it has {', '.join(sorted(by_name))}")
        return {name: by_name[name] for name in wanted}

    def set_component_status(self, component_id: str, status: str) -> dict[str, Any]:
        """Set one component's status; the updated component."""
        _check(status, COMPONENT_STATUSES, "component status")
        return self._call("PATCH", f"components/{component_id}", json={"component": {"status": status}}).json()

    # --- incidents -----------------------------------------------------------------------------

    def find_incident(self, key: str, name: str | None = None) -> dict[str, Any] | None:
        """The incident opened with ``key`` (in its metadata), or None.

        Looked for where an incident being opened or moved is: the unresolved incidents, the
        upcoming and the active maintenance (short lists), then, given its ``name``, the newest
        page of incidents matching it (``q`` searches names). Never the whole history: the API
        allows one request a second, and a page holds at most 100. The caller keeps the id of an
        incident it opened (the outage ledger) and does not ask again.
        """
        if not key:
            raise ValueError("an incident key must not be empty")
        for path in ("incidents/unresolved", "incidents/scheduled", "incidents/active_maintenance"):
            for incident in self._pages(path):
                if incident_key(incident) == key:
                    return incident
        if name:
            matching = self._call("GET", "incidents", params={"q": name, "page": 1, "limit": PER_PAGE}).json()
            return next((incident for incident in matching if incident_key(incident) == key), None)
        return None

    def create_incident(self, *, key: str, name: str, status: str, body: str, impact: str,
                        component_statuses: dict[str, str], scheduled_for: datetime | None = None,
                        scheduled_until: datetime | None = None, remind_minutes: int | None = None) -> dict[str, Any]:
        """Open the incident (or scheduled maintenance) for ``key``; the one already open when it exists.

        ``component_statuses`` maps component ids to their status during the incident.
        ``remind_minutes`` turns on Statuspage's reminder, which is always sent 60 minutes before.
        """
        scheduled = status in SCHEDULED_STATUSES
        _check(status, REALTIME_STATUSES + SCHEDULED_STATUSES, "incident status")
        _check(impact, IMPACTS, "impact")
        for status_of_component in component_statuses.values():
            _check(status_of_component, COMPONENT_STATUSES, "component status")
        if scheduled and (scheduled_for is None or scheduled_until is None):
            raise ValueError(f"scheduled maintenance {key!r} needs scheduled_for and scheduled_until")
        existing = self.find_incident(key, name)
        if existing is not None:
            return existing
        incident: dict[str, Any] = {
            "name": name, "status": status, "impact_override": impact, "body": statuspage_text(body),
            "component_ids": list(component_statuses), "components": dict(component_statuses),
            "metadata": {METADATA_NAMESPACE: {"key": key}}, "deliver_notifications": True,
        }
        if scheduled:
            if epoch_seconds(scheduled_until, "scheduled_until") <= epoch_seconds(scheduled_for, "scheduled_for"):
                raise ValueError(f"scheduled maintenance {key!r}: scheduled_until must be after scheduled_for")
            if remind_minutes not in (None, STATUSPAGE_REMINDER_MINUTES):
                log.info("Statuspage reminds %s minutes before maintenance, not %s", STATUSPAGE_REMINDER_MINUTES,
                         remind_minutes)
            incident |= {"scheduled_for": scheduled_for.isoformat(), "scheduled_until": scheduled_until.isoformat(),
                         "scheduled_remind_prior": remind_minutes is not None,
                         "scheduled_auto_in_progress": True, "scheduled_auto_completed": True}
        try:
            return self._call("POST", "incidents", json={"incident": incident}).json()
        except HttpError as error:
            if error.status is not None and error.status < 500:
                raise
            # The POST may have taken effect before the answer was lost: look for it before failing.
            found = self.find_incident(key, name)
            if found is None:
                raise
            return found

    def update_incident(self, incident_id: str, *, status: str, body: str,
                        component_statuses: dict[str, str] | None = None) -> dict[str, Any]:
        """Post an update (status and message, optionally component statuses); the updated incident."""
        _check(status, REALTIME_STATUSES + SCHEDULED_STATUSES, "incident status")
        incident: dict[str, Any] = {"status": status, "body": statuspage_text(body)}
        if component_statuses:
            for status_of_component in component_statuses.values():
                _check(status_of_component, COMPONENT_STATUSES, "component status")
            incident |= {"components": dict(component_statuses), "component_ids": list(component_statuses)}
        return self._call("PATCH", f"incidents/{incident_id}", json={"incident": incident}).json()

    def get_incident(self, incident_id: str) -> dict[str, Any]:
        return self._call("GET", f"incidents/{incident_id}").json()

    def test_connection(self) -> tuple[bool, str]:
        try:
            count = len(self.components())
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        return True, f"Page {self.page_id} has {count} components"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"host": "API host", "password": "API key"},
            "placeholders": {"host": "api.statuspage.io", "schema": "https",
                             "extra": '{"page_id": "your-page-id", "timeout": 30}'},
        }
