"""Nagios Core stand-in: the JSON CGIs' service status and state-change history.

Nagios Core 4 ships ``statusjson.cgi`` and ``archivejson.cgi``; their queries and fields are
defined in its sources (``cgi/statusjson.c``, ``cgi/archivejson.c``, ``cgi/jsonutils.c``,
https://github.com/NagiosEnterprises/nagioscore) and shown by the CGIs' own ``query=help`` and
the query generator ``jsonquery.html`` (https://labs.nagios.com/2014/06/19/exploring-the-new-json-cgis-in-nagios-core-4-0-7-part-1/).

- ``GET /nagios/cgi-bin/statusjson.cgi?query=service&hostname=H&servicedescription=S``:
  ``data.service`` with ``status`` as a Nagios status bit (1 pending, 2 ok, 4 warning,
  8 unknown, 16 critical), ``plugin_output``, and times (``last_check``, ...) in ms.
  ``query=programstatus`` answers ``data.programstatus``.
- ``GET /nagios/cgi-bin/archivejson.cgi?query=statechangelist&objecttype=service&hostname=H
  &servicedescription=S&starttime=<s>&endtime=<s>[&start=N&count=N]``: ``data.statechangelist``,
  the service's log entries in [starttime, endtime] paged by ``start``/``count``, framed by two
  pseudo-states written exactly as ``json_archive_statechangelist`` in ``cgi/archivejson.c``
  writes them (and so unlike what their names promise):

  * "Initial Service Pseudo-State" at ``starttime``, on every page, but only when the service has
    an entry in [starttime, endtime]. Its state is the service's last entry before ``starttime``
    in the archives read, or 0 (``AU_STATE_NO_DATA``, ``"no_data"``) when they hold none (the
    service was added after it, ``nagios_since`` of :mod:`sandbox.telemetry`).
  * "Final Service Pseudo-State" at ``endtime``, whenever the service is in the archives read.
    Its state is that of the *last entry the CGI read*, of whatever service, up to the end of the
    newest archive file: another service's alert after ``endtime`` shows up here.

  The archives read are daily files (``log_rotation_method=d``, rotated at midnight UTC here),
  from the one holding ``endtime`` back to four before the one holding ``starttime`` (the CGI's
  default ``backtrackedarchives`` for daily rotation). Each file begins with a
  ``CURRENT SERVICE STATE`` entry per service (``log_current_states=1``), then the alerts.
  Archive states are archive bits (8 ok, 16 warning, 32 critical, 64 unknown, 0 no data).
  ``starttime``/``endtime`` are Unix seconds, or relative to now with a sign (``-3600``).

``formatoptions=enumerate`` turns enumerated values into their names (``"ok"``,
``"hard"``), as in Nagios. Every answer has the CGI envelope ``{"format_version": 0,
"result": {..., "type_code": 0, "type_text": "Success", "message": ""}, "data": {...}}``; a bad
or unknown option answers HTTP 200 with ``type_code`` 3-6 and no ``data``, as Nagios does.
The CGIs sit behind HTTP Basic auth (Apache's ``Nagios Access`` realm). There is one service
per seeded app: host = the app id, description ``HTTP``, checked every minute, whose state
comes from :mod:`sandbox.telemetry` (ok unless an injected incident says otherwise).
"""

from __future__ import annotations

import base64
import binascii
import time
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from sandbox.telemetry import MINUTE_S, Telemetry, minute_floor

PREFIX = "/nagios"
USERNAME = "nagiosadmin"
PASSWORD = "nagios-sandbox"
SERVICE_DESCRIPTION = "HTTP"
MAX_ATTEMPTS = 3

# statusjson.cgi: SERVICE_PENDING .. SERVICE_CRITICAL (include/statusdata.h)
STATUS_CODES = {"pending": 1, "ok": 2, "warning": 4, "unknown": 8, "critical": 16}
# archivejson.cgi: AU_STATE_SERVICE_* (include/archiveutils.h)
ARCHIVE_STATES = {"no_data": 0, "ok": 8, "warning": 16, "critical": 32, "unknown": 64}
ARCHIVE_FILE_S = 86_400  # log_rotation_method=d
BACKTRACKED_ARCHIVES = 4  # archivejson's default for daily rotation
LAST_HARD_STATE = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
HARD_STATE_TYPE = 1  # HARD_STATE in statusjson, AU_STATETYPE_HARD in archivejson
SERVICE_OBJECT_TYPE = 2  # AU_OBJTYPE_SERVICE

RESULT_SUCCESS, RESULT_OPTION_INVALID, RESULT_OPTION_MISSING = 0, 3, 4
RESULT_OPTION_VALUE_MISSING, RESULT_OPTION_VALUE_INVALID = 5, 6
RESULT_TYPES = ("Success", "Unable to Allocate Memory", "Unable to Open File for Reading", "Option Invalid",
                "Option Missing", "Option Value Missing", "Option Value Invalid", "Option Ignored")


class CgiError(ValueError):
    """A query the CGI refuses: its result type code and message."""

    def __init__(self, type_code: int, message: str) -> None:
        super().__init__(message)
        self.type_code = type_code


def plugin_output(state: str, latency_ms: float) -> str:
    """What check_http would print for the service in ``state``."""
    seconds = latency_ms / 1000
    return {
        "ok": f"HTTP OK: HTTP/1.1 200 OK - 512 bytes in {seconds:.3f} second response time",
        "warning": f"HTTP WARNING: HTTP/1.1 200 OK - 512 bytes in {seconds:.3f} second response time",
        "critical": f"HTTP CRITICAL: HTTP/1.1 503 Service Unavailable - 0 bytes in {seconds:.3f} second response time",
        "unknown": "HTTP UNKNOWN - Could not parse the server's response",
    }[state]


class Cgi:
    """One request's view: the query time, the program start and how enumerations are shown."""

    def __init__(self, request: Request, cgi: str) -> None:
        self.telemetry: Telemetry = request.app.state.telemetry
        self.program_start_s = self.telemetry.started_s
        self.params = dict(request.query_params)
        self.cgi = cgi
        self.now_s = time.time()
        self.enumerate = "enumerate" in self.params.get("formatoptions", "").replace("+", " ").split()

    def enum(self, name: str, number: int) -> str | int:
        return name if self.enumerate else number

    def envelope(self, query: str | None, data: dict[str, Any] | None = None, type_code: int = RESULT_SUCCESS,
                 message: str = "") -> JSONResponse:
        now_ms = int(self.now_s * 1000)
        result = {"query_time": now_ms, "cgi": self.cgi, "user": USERNAME, "query": query,
                  "query_status": "released" if self.cgi == "statusjson.cgi" else "beta",
                  "program_start": self.program_start_s * 1000, "last_data_update": now_ms,
                  "type_code": type_code, "type_text": RESULT_TYPES[type_code], "message": message}
        body: dict[str, Any] = {"format_version": 0, "result": result}
        if data is not None:
            body["data"] = data
        return JSONResponse(body)

    def required(self, name: str) -> str:
        value = self.params.get(name)
        if value is None:
            raise CgiError(RESULT_OPTION_MISSING, f"The {name} option must be specified for this query.")
        if value == "":
            raise CgiError(RESULT_OPTION_VALUE_MISSING, f"No value specified for {name} option.")
        return value

    def service(self) -> str:
        """The app id of the service the query names; CgiError when there is no such service."""
        host, description = self.required("hostname"), self.required("servicedescription")
        if host not in self.telemetry.apps or description != SERVICE_DESCRIPTION:
            raise CgiError(RESULT_OPTION_VALUE_INVALID,
                           f"The service '{description}' on host '{host}' could not be found.")
        return host

    def time_option(self, name: str) -> int:
        raw = self.required(name)
        try:
            value = int(raw)
        except ValueError:
            raise CgiError(RESULT_OPTION_VALUE_INVALID, f"Invalid value for {name}: {raw!r}.") from None
        return int(self.now_s) + value if raw[0] in "+-" else value

    def count_option(self, name: str) -> int:
        raw = self.params.get(name, "0")
        if not raw.isdigit():
            raise CgiError(RESULT_OPTION_VALUE_INVALID, f"Invalid value for {name}: {raw!r}.")
        return int(raw)


def _authorized(request: Request) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return (user, password) == (USERNAME, PASSWORD)


def _unauthorized() -> HTMLResponse:
    return HTMLResponse(
        "<html><head><title>401 Unauthorized</title></head><body><h1>Unauthorized</h1>"
        "<p>This server could not verify that you are authorized to access the document requested.</p>"
        "</body></html>",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="Nagios Access"'},
    )


def error_body(status: int) -> dict[str, Any]:
    """What an injected fault answers: the CGI envelope carrying the HTTP error."""
    return {"format_version": 0, "result": {"type_code": status, "type_text": HTTPStatus(status).phrase,
                                            "message": f"injected fault: HTTP {status}"}}


def service_status(cgi: Cgi, app: str) -> dict[str, Any]:
    """``data.service`` of statusjson.cgi for the app's HTTP service."""
    last_check_s = minute_floor(cgi.now_s)
    state = cgi.telemetry.nagios_state_at(app, last_check_s)
    changes = [when for when, _state in cgi.telemetry.nagios_changes(app) if when <= last_check_s]
    last_change_ms = (changes[-1] if changes else cgi.program_start_s) * 1000
    latency_ms = cgi.telemetry.minute(app, last_check_s - MINUTE_S).latency_ms
    last_check_ms = last_check_s * 1000
    return {
        "host_name": app,
        "description": SERVICE_DESCRIPTION,
        "plugin_output": plugin_output(state, latency_ms),
        "long_plugin_output": "",
        "perf_data": f"time={latency_ms / 1000:.6f}s;;;0.000000 size=512B;;;0",
        "max_attempts": MAX_ATTEMPTS,
        "current_attempt": 1 if state == "ok" else MAX_ATTEMPTS,
        "status": cgi.enum(state, STATUS_CODES[state]),
        "last_update": int(cgi.now_s * 1000),
        "has_been_checked": True,
        "should_be_scheduled": True,
        "last_check": last_check_ms,
        "check_type": cgi.enum("active", 0),
        "checks_enabled": True,
        "last_state_change": last_change_ms,
        "last_hard_state_change": last_change_ms,
        "last_hard_state": cgi.enum(state, LAST_HARD_STATE[state]),
        "state_type": cgi.enum("hard", HARD_STATE_TYPE),
        "next_check": last_check_ms + MINUTE_S * 1000,
        "check_interval": 1.0,
        "retry_interval": 1.0,
        "problem_has_been_acknowledged": False,
        "scheduled_downtime_depth": 0,
    }


def statechange(cgi: Cgi, app: str, at_s: int, state: str, output: str | None = None) -> dict[str, Any]:
    """One entry of ``data.statechangelist``."""
    if output is None:
        output = plugin_output(state, cgi.telemetry.minute(app, minute_floor(at_s)).latency_ms)
    return {"timestamp": at_s * 1000, "object_type": cgi.enum("service", SERVICE_OBJECT_TYPE),
            "host_name": app, "description": SERVICE_DESCRIPTION, "state_type": cgi.enum("hard", HARD_STATE_TYPE),
            "state": cgi.enum(state, ARCHIVE_STATES[state]), "plugin_output": output}


def archived_log(cgi: Cgi, start_time: int, end_time: int) -> list[tuple[int, int, str, str]]:
    """``(timestamp, service order, app, state)`` of every entry in the archive files the CGI reads."""
    first_file = start_time // ARCHIVE_FILE_S - BACKTRACKED_ARCHIVES
    last_read = min(int(cgi.now_s), (end_time // ARCHIVE_FILE_S + 1) * ARCHIVE_FILE_S - 1)
    entries = []
    for order, app in enumerate(cgi.telemetry.apps):
        since = cgi.telemetry.nagios_since_s(app) or 0
        rotations = [day * ARCHIVE_FILE_S for day in range(first_file, last_read // ARCHIVE_FILE_S + 1)]
        entries += [(at, order, app, cgi.telemetry.nagios_state_at(app, at)) for at in rotations if at >= since]
        entries += [(at, order, app, state) for at, state in cgi.telemetry.nagios_changes(app)
                    if max(since, first_file * ARCHIVE_FILE_S) <= at <= last_read]
    return sorted(entries)


def statechangelist(cgi: Cgi, app: str, start_time: int, end_time: int, start: int,
                    count: int) -> list[dict[str, Any]]:
    """``data.statechangelist``: the loop of ``json_archive_statechangelist``, quirks included."""
    log = archived_log(cgi, start_time, end_time)
    initial_state, seen_first, current, listed = "no_data", False, 0, []
    for at, _order, entry_app, state in log:
        if entry_app != app or at > end_time:
            continue
        if at < start_time:
            initial_state = state
            continue
        if not seen_first:
            listed.append(statechange(cgi, app, start_time, initial_state, "Initial Service Pseudo-State"))
            seen_first = True
        if current >= start and (not count or current - start < count):
            listed.append(statechange(cgi, app, at, state))
        current += 1
    if any(entry_app == app for _at, _order, entry_app, _state in log):
        # The state of the last entry read, whichever service it belongs to.
        listed.append(statechange(cgi, app, end_time, log[-1][3], "Final Service Pseudo-State"))
    return listed


router = APIRouter(prefix=f"{PREFIX}/cgi-bin", tags=["nagios"])


@router.get("/statusjson.cgi", response_model=None)
async def statusjson(request: Request) -> JSONResponse | HTMLResponse:
    """Current status: ``query=service`` or ``query=programstatus``."""
    if not _authorized(request):
        return _unauthorized()
    cgi = Cgi(request, "statusjson.cgi")
    query = cgi.params.get("query")
    try:
        if query == "service":
            return cgi.envelope(query, {"service": service_status(cgi, cgi.service())})
        if query == "programstatus":
            return cgi.envelope(query, {"programstatus": {
                "version": "4.5.9", "nagios_pid": 4242, "program_start": cgi.program_start_s * 1000,
                "enable_notifications": True, "execute_service_checks": True}})
        raise CgiError(RESULT_OPTION_VALUE_INVALID if query else RESULT_OPTION_MISSING,
                       f"Unsupported query {query!r}: the sandbox answers query=service and query=programstatus.")
    except CgiError as error:
        return cgi.envelope(query, type_code=error.type_code, message=str(error))


@router.get("/archivejson.cgi", response_model=None)
async def archivejson(request: Request) -> JSONResponse | HTMLResponse:
    """History: ``query=statechangelist`` for a service."""
    if not _authorized(request):
        return _unauthorized()
    cgi = Cgi(request, "archivejson.cgi")
    query = cgi.params.get("query")
    try:
        if query != "statechangelist":
            raise CgiError(RESULT_OPTION_VALUE_INVALID if query else RESULT_OPTION_MISSING,
                           f"Unsupported query {query!r}: the sandbox answers query=statechangelist.")
        if cgi.required("objecttype") != "service":
            raise CgiError(RESULT_OPTION_VALUE_INVALID, "The sandbox keeps history for objecttype=service only.")
        app = cgi.service()
        start_time, end_time = cgi.time_option("starttime"), cgi.time_option("endtime")
        if end_time < start_time:
            raise CgiError(RESULT_OPTION_VALUE_INVALID, "The end time must be after the start time.")
        start, count = cgi.count_option("start"), cgi.count_option("count")
    except CgiError as error:
        return cgi.envelope(query, type_code=error.type_code, message=str(error))
    entries = statechangelist(cgi, app, start_time, end_time, start, count)
    selectors: dict[str, Any] = {"starttime": start_time * 1000, "endtime": end_time * 1000,
                                 "hostname": app, "servicedescription": SERVICE_DESCRIPTION}
    selectors.update({name: value for name, value in (("start", start), ("count", count)) if value})
    return cgi.envelope(query, {"selectors": selectors, "statechangelist": entries})
