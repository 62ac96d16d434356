"""Splunk: run a search over a time range with ``search/jobs/export`` and read its streamed results.

REST reference: https://docs.splunk.com/Documentation/Splunk/latest/RESTREF/RESTsearch#search.2Fjobs.2Fexport .
Export runs the search and streams its results without creating a job to poll: with
``output_mode=json`` one JSON object per line, ``{"preview": bool, "offset": N, "result": {...}}``;
rows with ``preview: true`` are interim (a ``stats`` search sends some while it runs) and are
skipped. The stream is the whole answer, so there is nothing to page. Field values are strings.
Authentication uses a Splunk authentication token as ``Authorization: Bearer <token>``
(https://docs.splunk.com/Documentation/Splunk/latest/Security/UseAuthTokens).

The export is a POST: 429/503 are waited out, a 500 is not repeated by
:func:`hooks.http_client.send`; Airflow's task retries take over.

The Connection (``http``): host, schema, port (the management port, 8089 by default);
password = the token; extra ``base_path``, ``timeout``, ``verify`` (false or a CA bundle for
the management port's often self-signed certificate).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook

from hooks.api_connection import ApiConnection, api_connection, epoch_seconds, error_json
from hooks.http_client import HttpError, send

_STATS_COUNT = re.compile(r"\|\s*stats\s+count(?:\s+as\s+(\w+))?\s*$", re.IGNORECASE)


class SplunkSearchError(RuntimeError):
    """Splunk refused or failed a search; the message names the search and Splunk's reason."""


class SplunkHook(BaseHook):
    """Run SPL over [earliest, latest) and return the final result rows."""

    conn_name_attr = "splunk_conn_id"
    default_conn_name = "splunk_default"
    conn_type = "http"
    hook_name = "Splunk"

    def __init__(self, *, splunk_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.splunk_conn_id = splunk_conn_id

    @cached_property
    def api(self) -> ApiConnection:
        """The management API root and token, read from the Connection on first use."""
        return api_connection(self.get_connection(self.splunk_conn_id), "Splunk", needs=("password",))

    @cached_property
    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {self.api.password}"})
        session.verify = self.api.verify
        return session

    def export(self, search: str, earliest: datetime, latest: datetime) -> list[dict[str, Any]]:
        """The final result rows of ``search`` over [earliest, latest).

        A search that does not start with a command gets ``search`` in front, as the REST API
        runs the text as given (``index=x`` alone would be taken for a command).
        """
        spl = search.strip()
        if not re.match(r"(?i)(search\b|\|)", spl):
            spl = f"search {spl}"
        form = {"search": spl, "output_mode": "json",
                "earliest_time": f"{epoch_seconds(earliest, 'earliest'):.3f}",
                "latest_time": f"{epoch_seconds(latest, 'latest'):.3f}"}
        url = f"{self.api.base_url}/services/search/jobs/export"
        try:
            response = send(self.session, "POST", url, data=form, timeout=self.api.timeout, stream=True)
        except HttpError as error:
            reason = _messages(error_json(error))
            detail = f"HTTP {error.status}: {reason}" if reason else str(error)
            raise SplunkSearchError(f"Splunk search {search!r} failed: {detail}") from error
        with response:
            return _final_rows(search, response.iter_lines())

    def count(self, search: str, earliest: datetime, latest: datetime) -> int:
        """How many events ``search`` finds in [earliest, latest).

        ``| stats count`` is appended unless the search already ends with it (``AS name`` too).
        """
        found = _STATS_COUNT.search(search)
        field = (found.group(1) or "count") if found else "count"
        rows = self.export(search if found else f"{search.rstrip()} | stats count", earliest, latest)
        return int(rows[0][field]) if rows else 0

    def test_connection(self) -> tuple[bool, str]:
        try:
            response = send(self.session, "GET", f"{self.api.base_url}/services/server/info",
                            params={"output_mode": "json"}, timeout=self.api.timeout)
            version = response.json()["entry"][0]["content"].get("version", "(unknown version)")
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        return True, f"Connected to Splunk {version} at {self.api.base_url}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"schema": "Scheme (http or https)", "password": "Authentication token"},
            "placeholders": {"host": "splunk.example.com", "port": "8089", "schema": "https",
                             "extra": '{"timeout": 60, "verify": "/etc/ssl/certs/splunk-ca.pem"}'},
        }


def _final_rows(search: str, lines: Any) -> list[dict[str, Any]]:
    """The non-preview ``result`` objects of an export stream; SplunkSearchError on a fatal message."""
    rows = []
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        fatal = [m.get("text", "") for m in row.get("messages", []) if m.get("type") in ("FATAL", "ERROR")]
        if fatal:
            raise SplunkSearchError(f"Splunk search {search!r} failed: {'; '.join(fatal)}")
        if not row.get("preview") and "result" in row:
            rows.append(row["result"])
    return rows


def _messages(body: Any) -> str:
    """The texts of Splunk's ``{"messages": [{"type", "text"}]}`` error body, joined."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return ""
    return "; ".join(str(message.get("text", message)) for message in body["messages"] if isinstance(message, dict))
