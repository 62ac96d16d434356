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
import time
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
NO_DATA = 0  # AU_STATE_NO_DATA (include/archiveutils.h): an Initial pseudo-state the archive could not fill


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
        """The service's archived states in [start, end), oldest first: every page.

        Each entry is ``{"at": datetime, "state": str, "output": str}``. The first is the
        "Initial Service Pseudo-State" (the state before ``start``) when Nagios knows it; the
        "Final" one is never returned (see ``_statechangelist``). Nagios counts whole seconds and
        includes ``endtime``, so the query ends a second early.
        """
        initial, changes = self._statechangelist(host, service, *_seconds(start, end))
        return ([initial] if initial is not None and initial["state"] is not None else []) + changes

    def _statechangelist(self, host: str, service: str, start_s: int, end_s: int,
                         first_page_only: bool = False) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The Initial pseudo-state (None when Nagios wrote none) and the entries of [start_s, end_s].

        Two quirks of ``json_archive_statechangelist`` (``cgi/archivejson.c`` in Nagios Core 4):
        the Initial pseudo-state is written only when the service has an entry in the interval,
        and its state is 0 (no data; ``"state": None`` here) when the archives read hold nothing
        of the service before ``starttime``; the Final pseudo-state carries the state of the last
        log entry the CGI read, of *any* service, so it says nothing about this one and is dropped.
        Both are repeated on every page.
        """
        page_size = 1 if first_page_only else PAGE_SIZE
        params: dict[str, Any] = {"query": "statechangelist", "objecttype": "service", "hostname": host,
                                  "servicedescription": service, "starttime": start_s, "endtime": end_s,
                                  "count": page_size}
        initial: dict[str, Any] | None = None
        changes: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._cgi("archivejson.cgi", {**params, "start": offset})["statechangelist"]
            before = len(changes)
            for item in page:
                output = item.get("plugin_output", "")
                if output.startswith("Initial ") and output.endswith(PSEUDO_STATE_SUFFIX):
                    no_data = item["state"] in (NO_DATA, "no_data")
                    initial = initial or {"at": _time(item["timestamp"]), "output": output,
                                          "state": None if no_data else _state(item["state"], ARCHIVE_STATES)}
                elif not output.endswith(PSEUDO_STATE_SUFFIX):
                    changes.append({"at": _time(item["timestamp"]), "state": _state(item["state"], ARCHIVE_STATES),
                                    "output": output})
            if first_page_only or len(changes) - before < page_size:
                break
            offset += page_size
        return initial, changes

    def worst_state(self, host: str, service: str, start: datetime, end: datetime) -> str:
        """The worst state the service was in during [start, end): the one in force at start, or any after.

        Raises NagiosQueryError when the archive cannot tell the state in that interval.
        """
        start_s, end_s = _seconds(start, end)
        initial, changes = self._statechangelist(host, service, start_s, end_s)
        if initial is None:  # no entry of the service in the interval: it kept the state it had at start
            return self._state_throughout(host, service, start_s, start, end)
        start_at = datetime.fromtimestamp(start_s, UTC)
        # A change at exactly ``start`` is in force at start; the initial pseudo-state is what came before it.
        at_start = [entry["state"] for entry in changes if entry["at"] <= start_at][-1:] or (
            [initial["state"]] if initial["state"] is not None else [])
        states = at_start + [entry["state"] for entry in changes if entry["at"] > start_at]
        return max(states, key=SEVERITY.__getitem__)

    def _state_throughout(self, host: str, service: str, start_s: int, start: datetime, end: datetime) -> str:
        """The state of a service with no archived entry in [start, end): the state it had at start.

        Asked as the Initial pseudo-state of [start, now] (one entry is enough); when nothing was
        logged since either, the state has not changed since before start and the current status says it.
        """
        initial, _changes = self._statechangelist(host, service, start_s, math.floor(time.time()), first_page_only=True)
        if initial is None:
            return self.service_status(host, service)["state"]
        if initial["state"] is None:
            raise NagiosQueryError(f"Nagios has no state history for {host}/{service} in [{start}, {end})")
        return initial["state"]

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


def _seconds(start: datetime, end: datetime) -> tuple[int, int]:
    """The CGI's ``starttime``/``endtime`` for [start, end): whole seconds, ``endtime`` included."""
    start_s = math.floor(epoch_seconds(start, "start"))
    end_s = math.ceil(epoch_seconds(end, "end")) - 1
    if end_s < start_s:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    return start_s, end_s


def _time(milliseconds: int | None) -> datetime | None:
    """A CGI time (ms since the epoch; 0 = never) as an aware datetime."""
    return datetime.fromtimestamp(milliseconds / 1000, UTC) if milliseconds else None
