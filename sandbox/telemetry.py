"""The estate's synthetic telemetry, shared by the Prometheus, Nagios, New Relic and Splunk stand-ins.

Every seeded application has, for every minute of any day (past ones included), a request
count, an error count and a mean latency. They are a pure function of (app, minute): a
per-app baseline, a daily sine (busier and slower in the afternoon, UTC) and a hash-based
jitter, so a backfill asks about three days ago and gets the same answer every time.

Inside a minute, requests are spread evenly: request ``i`` of ``n`` happens
``60 * i / n`` seconds after the minute starts (errors and successes each on their own even
grid). New Relic's Transaction events and Splunk's log events are those requests, so counts
over any interval agree between the two; Prometheus exposes per-minute gauges.

Incidents are injected with ``PUT /telemetry/_sandbox/incidents/{app}``::

    {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T10:30:00Z",
     "latency_factor": 5, "error_rate": 0.5, "nagios_state": "critical"}

``start`` and ``end`` are truncated to the minute; ``end: null`` means still going on. In the
minutes covered, latency is multiplied by ``latency_factor``, errors become ``error_rate`` of
the requests (when given), and Nagios reports ``nagios_state`` (a state change at ``start``,
recovery to ok at ``end``). One incident per app: a second PUT replaces it.
``DELETE /telemetry/_sandbox/incidents/{app}`` clears one, ``DELETE /telemetry/_sandbox/incidents``
all of them, ``GET /telemetry/_sandbox/incidents`` lists them.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sandbox.estate import SEEDED_APPS

PREFIX = "/telemetry"
MINUTE_S = 60
DAY_S = 86_400

NagiosState = Literal["ok", "warning", "critical", "unknown"]


@dataclass(frozen=True)
class Baseline:
    """What an application does on an average minute."""

    latency_ms: float
    requests_per_minute: int
    error_ratio: float


BASELINES: dict[str, Baseline] = dict(
    zip(
        SEEDED_APPS,
        (
            Baseline(latency_ms=120.0, requests_per_minute=900, error_ratio=0.002),  # payments-api
            Baseline(latency_ms=180.0, requests_per_minute=600, error_ratio=0.004),  # orders-api
            Baseline(latency_ms=350.0, requests_per_minute=1200, error_ratio=0.003),  # customer-portal
            Baseline(latency_ms=900.0, requests_per_minute=60, error_ratio=0.01),  # reporting
            Baseline(latency_ms=90.0, requests_per_minute=400, error_ratio=0.002),  # inventory-api
            Baseline(latency_ms=40.0, requests_per_minute=1500, error_ratio=0.001),  # auth-gateway
        ),
        strict=True,
    )
)


@dataclass(frozen=True)
class Minute:
    """One application's traffic in the minute starting at ``start`` (epoch seconds)."""

    app: str
    start: int
    requests: int
    errors: int
    latency_ms: float

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class Incident(BaseModel):
    """An injected incident; see the module docstring."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime
    end: AwareDatetime | None = None
    latency_factor: float = Field(default=1.0, gt=0, le=1000)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    nagios_state: NagiosState = "critical"
    nagios_since: AwareDatetime | None = None

    @property
    def start_s(self) -> int:
        return minute_floor(self.start.timestamp())

    @property
    def end_s(self) -> float:
        return math.inf if self.end is None else minute_floor(self.end.timestamp())

    def covers(self, at_s: float) -> bool:
        return self.start_s <= at_s < self.end_s

    def as_dict(self) -> dict[str, Any]:
        def iso(seconds: float) -> str | None:
            return None if math.isinf(seconds) else datetime.fromtimestamp(seconds, UTC).isoformat()

        return {"start": iso(self.start_s), "end": iso(self.end_s), "latency_factor": self.latency_factor,
                "error_rate": self.error_rate, "nagios_state": self.nagios_state,
                "nagios_since": None if self.nagios_since is None else self.nagios_since.isoformat()}


def minute_floor(epoch_s: float) -> int:
    """The start of the minute ``epoch_s`` falls in."""
    return int(epoch_s // MINUTE_S) * MINUTE_S


def _unit_noise(app: str, minute_start: int, channel: str) -> float:
    """A stable pseudo-random number in [0, 1) for (app, minute, channel)."""
    digest = hashlib.blake2b(f"{app}|{minute_start}|{channel}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Telemetry:
    """The synthetic history plus the incidents injected into it."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {}
        # When the monitoring systems "started" (Nagios's program_start): before the first check it answers.
        self.started_s = minute_floor(time.time()) - MINUTE_S

    @property
    def apps(self) -> tuple[str, ...]:
        return tuple(BASELINES)

    def incident_at(self, app: str, at_s: float) -> Incident | None:
        incident = self.incidents.get(app)
        return incident if incident is not None and incident.covers(at_s) else None

    def minute(self, app: str, minute_start: int) -> Minute:
        """The traffic of ``app`` in the minute starting at ``minute_start`` (a multiple of 60)."""
        base = BASELINES[app]
        # Peak at 15:00 UTC, trough at 03:00 UTC.
        daily = math.sin(2 * math.pi * ((minute_start % DAY_S) / DAY_S - 0.375))
        load = 1 + 0.3 * daily + 0.1 * (2 * _unit_noise(app, minute_start, "load") - 1)
        requests = max(1, round(base.requests_per_minute * load))
        latency = base.latency_ms * (1 + 0.2 * daily) * (0.9 + 0.2 * _unit_noise(app, minute_start, "latency"))
        errors = round(requests * base.error_ratio * 2 * _unit_noise(app, minute_start, "errors"))
        incident = self.incident_at(app, minute_start)
        if incident is not None:
            latency *= incident.latency_factor
            if incident.error_rate is not None:
                errors = round(requests * incident.error_rate)
        return Minute(app, minute_start, requests, errors, round(latency, 3))

    def minutes(self, app: str, start_s: float, end_s: float) -> list[Minute]:
        """Every minute overlapping [start_s, end_s)."""
        first = minute_floor(start_s)
        return [self.minute(app, m) for m in range(first, math.ceil(end_s), MINUTE_S) if m < end_s]

    def nagios_changes(self, app: str) -> list[tuple[int, NagiosState]]:
        """The service's state changes, oldest first; before the first one it was ok."""
        incident = self.incidents.get(app)
        if incident is None or incident.nagios_state == "ok":
            return []
        changes: list[tuple[int, NagiosState]] = [(incident.start_s, incident.nagios_state)]
        if not math.isinf(incident.end_s):
            changes.append((int(incident.end_s), "ok"))
        return changes

    def nagios_state_at(self, app: str, at_s: float) -> NagiosState:
        state: NagiosState = "ok"
        for when, changed_to in self.nagios_changes(app):
            if when <= at_s:
                state = changed_to
        return state

    def nagios_since_s(self, app: str) -> int | None:
        """When Nagios began checking the app's service (None: for ever)."""
        incident = self.incidents.get(app)
        return None if incident is None or incident.nagios_since is None else int(incident.nagios_since.timestamp())


def event_indices(minute_start: int, count: int, start_ms: int, end_ms: int) -> range:
    """Which of the ``count`` evenly spread events of a minute happen in [start_ms, end_ms).

    Event ``i`` happens at ``minute_start * 1000 + floor(60000 * i / count)`` ms.
    """

    def first_at_or_after(offset_ms: int) -> int:
        # floor(60000 i / n) >= x  <=>  i >= ceil(x n / 60000) for integer x.
        return min(count, max(0, -(-offset_ms * count // (MINUTE_S * 1000))))

    base_ms = minute_start * 1000
    return range(first_at_or_after(start_ms - base_ms), first_at_or_after(end_ms - base_ms))


def event_time_ms(minute_start: int, index: int, count: int) -> int:
    return minute_start * 1000 + MINUTE_S * 1000 * index // count


@dataclass(frozen=True)
class IntervalTraffic:
    """Request events of one app in an interval: counts and the latency of each minute's share."""

    requests: int
    errors: int
    latency_weighted_ms: float  # sum over minutes of latency * requests in the interval
    per_minute: list[tuple[Minute, int, int]]  # (minute, requests in interval, errors in interval)

    @property
    def average_latency_ms(self) -> float | None:
        return self.latency_weighted_ms / self.requests if self.requests else None


def interval_traffic(telemetry: Telemetry, app: str, start_ms: int, end_ms: int) -> IntervalTraffic:
    """The request events of ``app`` that happen in [start_ms, end_ms)."""
    requests = errors = 0
    weighted = 0.0
    per_minute = []
    for minute in telemetry.minutes(app, start_ms / 1000, end_ms / 1000):
        ok = len(event_indices(minute.start, minute.requests - minute.errors, start_ms, end_ms))
        failed = len(event_indices(minute.start, minute.errors, start_ms, end_ms))
        if ok + failed:
            per_minute.append((minute, ok + failed, failed))
        requests += ok + failed
        errors += failed
        weighted += minute.latency_ms * (ok + failed)
    return IntervalTraffic(requests, errors, weighted, per_minute)


router = APIRouter(prefix=f"{PREFIX}/_sandbox", tags=["telemetry"])


def get_telemetry(request: Request) -> Telemetry:
    return request.app.state.telemetry


def _unknown_app(app: str) -> JSONResponse:
    return JSONResponse({"error": f"unknown app {app!r}; known: {', '.join(BASELINES)}"}, status_code=404)


@router.get("/incidents")
async def list_incidents(request: Request) -> dict[str, Any]:
    """Every injected incident, by app."""
    return {"incidents": {app: incident.as_dict() for app, incident in get_telemetry(request).incidents.items()}}


@router.put("/incidents/{app}", response_model=None)
async def put_incident(request: Request, app: str, incident: Incident) -> dict[str, Any] | JSONResponse:
    """Inject (or replace) the app's incident."""
    if app not in BASELINES:
        return _unknown_app(app)
    if incident.end is not None and incident.end_s <= incident.start_s:
        return JSONResponse({"error": "end must be at least a minute after start"}, status_code=422)
    get_telemetry(request).incidents[app] = incident
    return {"app": app, "incident": incident.as_dict()}


@router.delete("/incidents/{app}")
async def delete_incident(request: Request, app: str) -> dict[str, Any]:
    """Clear the app's incident, if any."""
    return {"app": app, "cleared": get_telemetry(request).incidents.pop(app, None) is not None}


@router.delete("/incidents")
async def clear_incidents(request: Request) -> dict[str, Any]:
    """Clear every incident."""
    telemetry = get_telemetry(request)
    cleared = len(telemetry.incidents)
    telemetry.incidents.clear()
    return {"cleared": cleared}
