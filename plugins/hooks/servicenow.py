"""ServiceNow incidents through the Table API and the Attachment API.

REST API reference: Table API
https://docs.servicenow.com/bundle/vancouver-api-reference/page/integrate/inbound-rest/concept/c_TableAPI.html
and Attachment API
https://docs.servicenow.com/bundle/vancouver-api-reference/page/integrate/inbound-rest/concept/c_AttachmentAPI.html

The Connection (``http``): host = the instance (``acme.service-now.com``), schema = URL
scheme (https by default), port optional, login/password = a user with the ``itil`` role
(Basic auth); extra ``base_path`` when the API is not at the root (the sandbox serves it under
``/servicenow``), ``timeout`` (seconds to wait for an answer, default 30) and ``close_code``
(the resolution code incidents are resolved with, default "Solution provided").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook

from hooks.api_connection import ApiConnection, api_connection
from hooks.http_client import send

TABLE = "incident"
STATE_RESOLVED = "6"
PAGE_SIZE = 100
DEFAULT_CLOSE_CODE = "Solution provided"
# The line a journal field's display value puts above each entry: "2024-05-01 10:00:00 - Prep Support (Work notes)"
JOURNAL_HEADER = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} - .* \([^()\n]+\)\n", re.MULTILINE)


class ServiceNowHook(BaseHook):
    """Find, open, update, resolve and attach files to incidents in a ServiceNow instance.

    Creating is not idempotent and a POST that fails is not retried (it may have taken effect):
    callers look the incident up by its correlation id (:meth:`find_open_incident`) first.
    """

    conn_name_attr = "servicenow_conn_id"
    default_conn_name = "servicenow_default"
    conn_type = "http"
    hook_name = "ServiceNow"

    def __init__(self, *, servicenow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.servicenow_conn_id = servicenow_conn_id

    @cached_property
    def conn_params(self) -> ApiConnection:
        """The instance's URL and credentials, read from the Connection on first use."""
        return api_connection(self.get_connection(self.servicenow_conn_id), "ServiceNow", needs=("login", "password"))

    @cached_property
    def session(self) -> requests.Session:
        return self.conn_params.json_session(basic_auth=True)

    def _url(self, path: str) -> str:
        return f"{self.conn_params.base_url}/api/now/{path}"

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return send(self.session, method, url, timeout=self.conn_params.timeout, **kwargs)

    def _table_url(self, sys_id: str | None = None) -> str:
        return self._url(f"table/{TABLE}" + (f"/{sys_id}" if sys_id else ""))

    def iter_incidents(self, query: str, *, fields: list[str] | None = None,
                       page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Incidents matching an encoded query, following the ``Link: rel="next"`` pages to the end."""
        params: dict[str, Any] | None = {
            "sysparm_query": query,
            "sysparm_limit": page_size,
            "sysparm_exclude_reference_link": "true",
        }
        if fields:
            params["sysparm_fields"] = ",".join(fields)
        url: str | None = self._table_url()
        while url is not None:
            response = self._call("GET", url, params=params)
            yield from response.json()["result"]
            url, params = response.links.get("next", {}).get("url"), None
            if url is not None and not url.startswith(self.conn_params.base_url + "/"):
                # The next page must come from the same instance: the session would send it our password.
                raise ValueError(f"ServiceNow sent a next page outside {self.conn_params.base_url}: {url}")

    def list_incidents(self, query: str, *, fields: list[str] | None = None,
                       page_size: int = PAGE_SIZE) -> list[dict[str, Any]]:
        """Every incident matching an encoded query (all pages)."""
        return list(self.iter_incidents(query, fields=fields, page_size=page_size))

    def find_open_incident(self, correlation_id: str) -> dict[str, Any] | None:
        """The newest active incident carrying ``correlation_id`` (our dedup key), or None."""
        if not correlation_id or "^" in correlation_id:
            # ``^`` separates the terms of an encoded query; a key containing it would change the query.
            raise ValueError(f"correlation_id must be non-empty and free of '^', got {correlation_id!r}")
        response = self._call("GET", self._table_url(), params={
            "sysparm_query": f"correlation_id={correlation_id}^active=true^ORDERBYDESCsys_created_on",
            "sysparm_limit": 1,
            "sysparm_exclude_reference_link": "true",
        })
        found = response.json()["result"]
        return found[0] if found else None

    def create_incident(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Open an incident with these fields (``short_description``, ``correlation_id``, ...); the new record."""
        return self._call("POST", self._table_url(), json=fields).json()["result"]

    def get_incident(self, sys_id: str) -> dict[str, Any]:
        """One incident by sys_id; HttpError (404) when there is none."""
        response = self._call("GET", self._table_url(sys_id), params={"sysparm_exclude_reference_link": "true"})
        return response.json()["result"]

    def update_incident(self, sys_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Change only the fields given (PATCH); the updated record."""
        return self._call("PATCH", self._table_url(sys_id), json=fields).json()["result"]

    def add_work_note(self, sys_id: str, text: str) -> dict[str, Any]:
        """Append a work note to the incident's journal (ServiceNow appends; it never overwrites)."""
        return self.update_incident(sys_id, {"work_notes": text})

    def journal(self, sys_id: str, element: str = "work_notes") -> list[str]:
        """The incident's journal entries (work notes by default), oldest first.

        Read as the journal field's display value (``sysparm_display_value=true``), which the
        instance renders from every entry, newest first, each under a
        ``"<when> - <who> (<field label>)"`` line: an ``itil`` user may read that, unlike the
        Journal Entries table ``sys_journal_field`` whose read ACL is admin's
        (https://www.servicenow.com/docs/r/australia/platform-administration/c_JournalFields.html).
        """
        response = self._call("GET", self._table_url(sys_id), params={
            "sysparm_fields": element, "sysparm_display_value": "true",
        })
        return journal_entries(response.json()["result"].get(element) or "")

    @cached_property
    def close_codes(self) -> list[str]:
        """The instance's active resolution codes (``incident.close_code`` choices in ``sys_choice``)."""
        response = self._call("GET", self._url("table/sys_choice"), params={
            "sysparm_query": "name=incident^element=close_code^inactive=false", "sysparm_fields": "value",
        })
        return [choice["value"] for choice in response.json()["result"]]

    def resolve_incident(self, sys_id: str, close_notes: str, close_code: str | None = None) -> dict[str, Any]:
        """Set the incident Resolved (state 6) with its resolution code and notes, both mandatory.

        The code is ``close_code``, else the Connection's extra ``close_code``, else
        "Solution provided" (the legacy "Solved (Permanently)" is inactive on current releases:
        https://www.servicenow.com/docs/r/it-service-management/incident-management/resolve-and-close-an-incident.html).
        The instance stores any value it is sent, so the code is checked against its choices first.
        """
        code = close_code or self.conn_params.extra.get("close_code") or DEFAULT_CLOSE_CODE
        if code not in self.close_codes:
            raise ValueError(
                f"ServiceNow close_code {code!r} (Connection {self.servicenow_conn_id!r}, extra 'close_code') is "
                f"not an active resolution code of {self.conn_params.base_url}; it has: {', '.join(self.close_codes)}"
            )
        return self.update_incident(sys_id, {"state": STATE_RESOLVED, "close_code": code, "close_notes": close_notes})

    def attach_file(self, sys_id: str, file_name: str, content: bytes, content_type: str) -> dict[str, Any]:
        """Upload ``content`` as an attachment of the incident; the attachment's metadata."""
        response = self._call(
            "POST", self._url("attachment/file"),
            params={"table_name": TABLE, "table_sys_id": sys_id, "file_name": file_name},
            data=content, headers={"Content-Type": content_type},
        )
        return response.json()["result"]

    def attachments(self, sys_id: str) -> list[dict[str, Any]]:
        """Metadata (file_name, size_bytes, ...) of the incident's attachments."""
        response = self._call("GET", self._url("attachment"), params={"sysparm_query": f"table_sys_id={sys_id}"})
        return response.json()["result"]

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._call("GET", self._table_url(), params={"sysparm_limit": 1, "sysparm_fields": "sys_id"})
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        return True, f"Read incidents at {self.conn_params.base_url} as {self.conn_params.login}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": [],
            "relabeling": {"host": "Instance host", "schema": "Scheme", "login": "User", "password": "Password"},
            "placeholders": {
                "host": "acme.service-now.com",
                "schema": "https",
                "login": "a user with the itil role",
                "extra": '{"base_path": "", "timeout": 30}',
            },
        }


def journal_entries(display: str) -> list[str]:
    """A journal field's display value as its entries, oldest first.

    Where the user's date format is not the default and no header is recognised, the whole text
    is one entry: a marker is still found in it.
    """
    headers = list(JOURNAL_HEADER.finditer(display))
    if not headers:
        return [display.strip()] if display.strip() else []
    ends = [header.start() for header in headers[1:]] + [len(display)]
    return [display[header.end():end].rstrip("\n") for header, end in zip(headers, ends, strict=True)][::-1]
