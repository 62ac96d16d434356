"""Nagios Core: a service's current status and its worst state over a past interval.

Through the JSON CGIs of Nagios Core 4 (``cgi/statusjson.c`` and ``cgi/archivejson.c`` in
https://github.com/NagiosEnterprises/nagioscore; the CGIs describe themselves with
``query=help``): ``statusjson.cgi?query=service`` for now, ``archivejson.cgi?query=statechangelist``
for history, paged with ``start``/``count``. Every answer carries ``result.type_code``
(0 = success); a refused query still answers HTTP 200, so the hook checks it.

Values are the CGIs' numeric enumerations: ``status`` in statusjson is a status bit
(1 pending, 2 ok, 4 warning, 8 unknown, 16 critical), ``state`` in archivejson an archive bit
(8 ok, 16 warning, 32 critical, 64 unknown); times are milliseconds.

The Connection (``http``): host, schema, port; login/password = a CGI user (Basic auth, as
Apache guards the CGIs); extra ``base_path`` = where Nagios lives (usually ``/nagios``; the
CGIs are under ``{base_path}/cgi-bin``), ``timeout``, ``verify``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook

from hooks.api_connection import ApiConnection, api_connection, epoch_seconds
from hooks.http_client import send

STATUS_STATES = {1: "pending", 2: "ok", 4: "warning", 8: "unknown", 16: "critical"}
ARCHIVE_STATES = {8: "ok", 16: "warning", 32: "critical", 64: "unknown"}
# How bad a state is, for the worst state of an interval: unknown (the check could not tell)
# ranks between warning and critical.
SEVERITY = {"ok": 0, "pending": 1, "warning": 2, "unknown": 3, "critical": 4}
PAGE_SIZE = 200
PSEUDO_STATE_SUFFIX = "Pseudo-State"  # "Initial/Final Service Pseudo-State" entries archivejson adds


class NagiosQueryError(RuntimeError):
    """A CGI refused a query; the message names the query and the CGI's reason."""


class NagiosHook(BaseHook):
    """Read service states from Nagios Core, now and for a past interval."""

    conn_name_attr = "nagios_conn_id"
    default_conn_name = "nagios_default"
    conn_type = "http"
    hook_name = "Nagios Core"

    def __init__(self, *, nagios_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nagios_conn_id = nagios_conn_id

    @cached_property
    def api(self) -> ApiConnection:
        """The CGI root and credentials, read from the Connection on first use."""
        return api_connection(self.get_connection(self.nagios_conn_id), "Nagios", needs=("login", "password"))

    @cached_property
    def session(self) -> requests.Session:
        return self.api.json_session(basic_auth=True)

    def _cgi(self, cgi: str, params: dict[str, Any]) -> dict[str, Any]:
        """Call a CGI and return its ``data``; NagiosQueryError when ``result.type_code`` is not 0."""
        response = send(self.session, "GET", f"{self.api.base_url}/cgi-bin/{cgi}", params=params,
                        timeout=self.api.timeout)
        body = response.json()
        result = body.get("result", {})
        if result.get("type_code") != 0:
            described = ", ".join(f"{key}={value}" for key, value in params.items())
            raise NagiosQueryError(
                f"Nagios {cgi} refused {described}: {result.get('type_text')}: {result.get('message')}"
            )
        return body["data"]

    def service_status(self, host: str, service: str) -> dict[str, Any]:
        """The service's current status.

        ``{"host", "service", "state"`` (ok, warning, critical, unknown or pending)``, "output",
        "last_check": datetime | None, "last_state_change": datetime | None, "hard": bool}``.
        """
        data = self._cgi("statusjson.cgi", {"query": "service", "hostname": host, "servicedescription": service})
        status = data["service"]
        state = _state(status["status"], STATUS_STATES)
        return {
            "host": host,
            "service": service,
            "state": "pending" if not status.get("has_been_checked", True) else state,
            "output": status.get("plugin_output", ""),
            "last_check": _time(status.get("last_check")),
            "last_state_change": _time(status.get("last_state_change")),
            "hard": status.get("state_type") in (1, "hard"),
        }

    def state_changes(self, host: str, service: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The archive's state-change list for [start, end): every page, with the pseudo-states.

        Each entry is ``{"at": datetime, "state": str, "output": str}``, oldest first: the
        "Initial Service Pseudo-State" (the state before ``start``), the changes, the "Final"
        one. Nagios counts whole seconds and includes ``endtime``, so the query ends a second early.
        """
        start_s = math.floor(epoch_seconds(start, "start"))
        end_s = math.ceil(epoch_seconds(end, "end")) - 1
        if end_s < start_s:
            raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
        params: dict[str, Any] = {"query": "statechangelist", "objecttype": "service", "hostname": host,
                                  "servicedescription": service, "starttime": start_s, "endtime": end_s,
                                  "count": PAGE_SIZE}
        initial: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        final: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._cgi("archivejson.cgi", {**params, "start": offset})["statechangelist"]
            final, before = [], len(changes)  # every page repeats the pseudo-states: first initial, last final
            for item in page:
                entry = {"at": _time(item["timestamp"]), "state": _state(item["state"], ARCHIVE_STATES),
                         "output": item.get("plugin_output", "")}
                if not entry["output"].endswith(PSEUDO_STATE_SUFFIX):
                    changes.append(entry)
                elif entry["output"].startswith("Initial"):
                    initial = initial or [entry]
                else:
                    final = [entry]
            if len(changes) - before < PAGE_SIZE:
                break
            offset += PAGE_SIZE
        return initial + changes + final

    def worst_state(self, host: str, service: str, start: datetime, end: datetime) -> str:
        """The worst state the service was in during [start, end): the one in force at start, or any after.

        Raises NagiosQueryError when the archive knows nothing of the service in that interval.
        """
        entries = self.state_changes(host, service, start, end)
        if not entries:
            raise NagiosQueryError(f"Nagios has no state history for {host}/{service} in [{start}, {end})")
        start_at = datetime.fromtimestamp(math.floor(epoch_seconds(start)), UTC)
        # A change at exactly ``start`` is in force at start; the initial pseudo-state is what came before it.
        at_start = [entry for entry in entries if entry["at"] <= start_at]
        states = [at_start[-1]["state"]] if at_start else []
        states += [entry["state"] for entry in entries if entry["at"] > start_at]
        return max(states, key=SEVERITY.__getitem__)

    def test_connection(self) -> tuple[bool, str]:
        try:
            program = self._cgi("statusjson.cgi", {"query": "programstatus"})["programstatus"]
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        return True, f"Connected to Nagios {program.get('version', '(unknown version)')} at {self.api.base_url}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": [],
            "relabeling": {"schema": "Scheme (http or https)", "login": "CGI user", "password": "CGI password"},
            "placeholders": {"host": "nagios.example.com", "schema": "https", "login": "nagiosadmin",
                             "extra": '{"base_path": "/nagios", "timeout": 30, "verify": true}'},
        }


def _state(value: int | str, numeric: dict[int, str]) -> str:
    """A state from its number, or from its name (``formatoptions=enumerate``)."""
    if isinstance(value, str):
        if value in SEVERITY:
            return value
        raise NagiosQueryError(f"Nagios answered an unknown state {value!r}")
    if value not in numeric:
        raise NagiosQueryError(f"Nagios answered an unknown state code {value}")
    return numeric[value]


def _time(milliseconds: int | None) -> datetime | None:
    """A CGI time (ms since the epoch; 0 = never) as an aware datetime."""
    return datetime.fromtimestamp(milliseconds / 1000, UTC) if milliseconds else None
