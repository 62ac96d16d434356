"""Splunk stand-in: ``search/jobs/export`` streaming the estate's application logs.

``POST /splunk/services/search/jobs/export`` (GET too), as in the REST API reference
(https://docs.splunk.com/Documentation/Splunk/latest/RESTREF/RESTsearch#search.2Fjobs.2Fexport),
with form fields ``search``, ``earliest_time``, ``latest_time`` and ``output_mode=json``. The
answer streams one JSON object per line, ``{"preview": false, "offset": N, "result": {...}}``,
the last one with ``"lastrow": true``; a ``stats`` search first streams a ``"preview": true``
row, as Splunk does while a search runs. Field values are strings. Authentication is an
authentication token (https://docs.splunk.com/Documentation/Splunk/latest/Security/UseAuthTokens)
as ``Authorization: Bearer <token>`` or ``Authorization: Splunk <token>``; errors are Splunk's
``{"messages": [{"type": "FATAL", "text": ...}]}`` (400 for a bad search, 401 unauthenticated).

Times (``earliest_time`` required, ``latest_time`` default now; events with
earliest <= _time < latest): epoch seconds, ISO 8601 with an offset, ``now``, or relative
``-15m`` / ``-24h`` / ``-7d`` (units s, m, h, d, w).

``GET /splunk/services/server/info?output_mode=json`` answers the version, as Splunk does.

The SPL subset (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Search)::

    search index=app_logs [field=value ...] [| stats count [AS name]] [| head N]

Terms are ``field=value`` (value quoted or not, ``*`` as wildcard, compared without case)
over ``index``, ``app``, ``host``, ``level`` (``INFO``/``ERROR``), ``status`` (``200``/``500``),
``sourcetype`` (``app:json``) and ``source``. Each request of :mod:`sandbox.telemetry` is one
event in ``index=app_logs`` (failed ones at ``level=ERROR``), so counts agree with New Relic's.
Anything else is refused with a message saying what the subset lacks.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from sandbox.telemetry import Minute, Telemetry, event_indices, event_time_ms

PREFIX = "/splunk"
TOKEN = "splunk-sandbox-token"
VERSION = "9.4.0-sandbox"
INDEX = "app_logs"
FIELDS = ("index", "app", "host", "level", "status", "sourcetype", "source")
_TERM = re.compile(r'(?P<field>[A-Za-z_]\w*)\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"|[^\s"|]+)|(?P<other>"[^"]*"|\S+)')
_RELATIVE = re.compile(r"^([+-])(\d+)(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class SplError(ValueError):
    """A search outside the supported subset, or not SPL at all."""


@dataclass(frozen=True)
class Search:
    """A parsed search: field filters, whether to count (and under what name), a row limit."""

    filters: tuple[tuple[str, str], ...]
    count_as: str | None = None
    head: int | None = None


def parse(spl: str) -> Search:
    """Parse the supported subset; raise SplError naming what is wrong or unsupported."""
    first, *rest = [command.strip() for command in spl.split("|")]
    if not first:
        raise SplError(f"unsupported by the sandbox's SPL subset: generating command '{rest[0] if rest else ''}'")
    if first.split()[0].lower() != "search":
        # The REST API runs the text as given: without "search" its first word is taken as a command.
        word = re.split(r"[\s=]", first)[0]
        raise SplError(f"Unknown search command '{word}'.")
    filters = []
    for term in _TERM.finditer(first[len("search"):]):
        if term.group("other"):
            raise SplError(f"unsupported by the sandbox's SPL subset: term {term.group('other')!r} "
                           "(only field=value terms)")
        field, value = term.group("field"), term.group("value")
        if field not in FIELDS:
            raise SplError(f"unsupported by the sandbox's SPL subset: field {field!r} (known: {', '.join(FIELDS)})")
        filters.append((field, json.loads(value) if value.startswith('"') else value))
    search = Search(tuple(filters))
    for command in rest:
        words = command.split()
        if not words:
            raise SplError("Error in 'search' command: empty command after '|'.")
        if [word.lower() for word in words[:2]] == ["stats", "count"] and search.count_as is None:
            if len(words) == 2:
                name = "count"
            elif len(words) == 4 and words[2].lower() == "as":
                name = words[3]
            else:
                raise SplError(f"unsupported by the sandbox's SPL subset: '{command}' (only stats count [AS name])")
            search = Search(search.filters, name, search.head)
        elif words[0].lower() == "head" and len(words) == 2 and words[1].isdigit():
            search = Search(search.filters, search.count_as, int(words[1]))
        else:
            raise SplError(f"unsupported by the sandbox's SPL subset: command '{command}' "
                           "(supported: stats count [AS name], head N)")
    return search


def parse_time_s(value: str, now_s: float, name: str) -> float:
    """A time modifier in epoch seconds."""
    value = value.strip()
    if value.lower() == "now":
        return now_s
    if relative := _RELATIVE.match(value):
        sign = 1 if relative.group(1) == "+" else -1
        return now_s + sign * int(relative.group(2)) * _UNIT_S[relative.group(3)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise SplError(f"Invalid {name}: '{value}' (epoch seconds, ISO 8601 with offset, now, or -Nunit)")
    return parsed.timestamp()


@dataclass(frozen=True)
class Stream:
    """The events of one app at one level: constant fields, and how many per minute."""

    app: str
    level: str

    @property
    def fields(self) -> dict[str, str]:
        return {"index": INDEX, "app": self.app, "host": self.app, "level": self.level,
                "status": "500" if self.level == "ERROR" else "200", "sourcetype": "app:json",
                "source": f"/var/log/{self.app}/app.log"}

    def count_in(self, minute: Minute) -> int:
        return minute.errors if self.level == "ERROR" else minute.requests - minute.errors

    def matches(self, filters: tuple[tuple[str, str], ...]) -> bool:
        fields = self.fields
        return all(fnmatch.fnmatchcase(fields[name].lower(), pattern.lower()) for name, pattern in filters)


def _streams(telemetry: Telemetry, search: Search) -> list[Stream]:
    every = (Stream(app, level) for app in telemetry.apps for level in ("INFO", "ERROR"))
    return [stream for stream in every if stream.matches(search.filters)]


def count(telemetry: Telemetry, search: Search, earliest_ms: int, latest_ms: int) -> int:
    total = 0
    for stream in _streams(telemetry, search):
        for minute in telemetry.minutes(stream.app, earliest_ms / 1000, latest_ms / 1000):
            total += len(event_indices(minute.start, stream.count_in(minute), earliest_ms, latest_ms))
    return total


def events(telemetry: Telemetry, search: Search, earliest_ms: int, latest_ms: int) -> Iterator[dict[str, str]]:
    """Matching events, newest first (Splunk's order)."""
    streams = _streams(telemetry, search)
    minutes_by_app = {stream.app: list(reversed(telemetry.minutes(stream.app, earliest_ms / 1000, latest_ms / 1000)))
                      for stream in streams}
    for minute_position in range(max((len(m) for m in minutes_by_app.values()), default=0)):
        batch = []
        for stream in streams:
            minutes = minutes_by_app[stream.app]
            if minute_position >= len(minutes):
                continue
            minute = minutes[minute_position]
            n = stream.count_in(minute)
            for index in event_indices(minute.start, n, earliest_ms, latest_ms):
                batch.append((event_time_ms(minute.start, index, n), stream, minute))
        for at_ms, stream, minute in sorted(batch, key=lambda item: item[0], reverse=True):
            yield _event(at_ms, stream, minute)


def _event(at_ms: int, stream: Stream, minute: Minute) -> dict[str, str]:
    when = datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds")
    status = stream.fields["status"]
    raw = json.dumps({"ts": when, "app": stream.app, "level": stream.level, "status": int(status),
                      "latency_ms": minute.latency_ms, "msg": f"GET /api {status}"})
    return {"_time": when, "_raw": raw, **stream.fields, "latency_ms": str(minute.latency_ms),
            "splunk_server": "sandbox"}


def _rows(telemetry: Telemetry, search: Search, earliest_ms: int, latest_ms: int) -> Iterator[bytes]:
    """The export stream: NDJSON rows, previews first for a stats search."""
    if search.count_as is not None:
        middle_ms = (earliest_ms + latest_ms) // 2
        partial = count(telemetry, search, earliest_ms, middle_ms)
        yield _line({"preview": True, "offset": 0, "result": {search.count_as: str(partial)}})
        total = count(telemetry, search, earliest_ms, latest_ms)
        yield _line({"preview": False, "offset": 0, "lastrow": True, "result": {search.count_as: str(total)}})
        return
    rows = events(telemetry, search, earliest_ms, latest_ms)
    if search.head is not None:
        rows = itertools.islice(rows, search.head)
    # Hold one row back so the last one can carry "lastrow".
    previous, offset = None, -1
    for offset, event in enumerate(rows):
        if previous is not None:
            yield _line({"preview": False, "offset": offset - 1, "result": previous})
        previous = event
    if previous is not None:
        yield _line({"preview": False, "offset": offset, "lastrow": True, "result": previous})


def _line(row: dict[str, Any]) -> bytes:
    return json.dumps(row, separators=(",", ":")).encode() + b"\n"


def _messages(status: int, text: str, kind: str = "FATAL") -> JSONResponse:
    return JSONResponse({"messages": [{"type": kind, "text": text}]}, status_code=status)


def error_body(status: int) -> dict[str, Any]:
    """What an injected fault answers: Splunk's messages envelope."""
    return {"messages": [{"type": "ERROR", "text": f"injected fault: HTTP {status}"}]}


def _authenticated(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() in ("bearer", "splunk") and token.strip() == TOKEN


router = APIRouter(prefix=f"{PREFIX}/services", tags=["splunk"])


@router.get("/server/info", response_model=None)
async def server_info(request: Request) -> dict[str, Any] | JSONResponse:
    """The server's version, as ``server/info`` answers with ``output_mode=json``."""
    if not _authenticated(request):
        return _messages(401, "call not properly authenticated", "WARN")
    return {"entry": [{"name": "server-info", "content": {"version": VERSION, "serverName": "sandbox",
                                                          "product_type": "enterprise"}}]}


@router.api_route("/search/jobs/export", methods=["GET", "POST"], response_model=None)
async def export(request: Request) -> StreamingResponse | JSONResponse:
    """Run a search over [earliest_time, latest_time) and stream its results."""
    if not _authenticated(request):
        return _messages(401, "call not properly authenticated", "WARN")
    params = dict(request.query_params)
    if request.method == "POST":
        params.update({key: str(value) for key, value in (await request.form()).items()})
    if params.get("output_mode", "xml") != "json":
        return _messages(400, "The sandbox streams output_mode=json only.")
    now_s = time.time()
    try:
        if not params.get("search"):
            raise SplError("Empty search.")
        search = parse(params["search"])
        if not params.get("earliest_time"):
            raise SplError("The sandbox needs earliest_time (its history has no beginning).")
        earliest_ms = round(parse_time_s(params["earliest_time"], now_s, "earliest_time") * 1000)
        latest_ms = round(parse_time_s(params.get("latest_time") or "now", now_s, "latest_time") * 1000)
    except SplError as error:
        return _messages(400, str(error))
    if latest_ms <= earliest_ms:
        return _messages(400, "latest_time must be after earliest_time.")
    telemetry: Telemetry = request.app.state.telemetry
    return StreamingResponse(_rows(telemetry, search, earliest_ms, latest_ms), media_type="application/json")
