"""Prometheus stand-in: the HTTP API's instant and range queries over the estate's telemetry.

Shapes follow https://prometheus.io/docs/prometheus/latest/querying/api/ :
``GET|POST /prometheus/api/v1/query`` (``query``, ``time``) answers a ``vector``,
``GET|POST /prometheus/api/v1/query_range`` (``query``, ``start``, ``end``, ``step``) a ``matrix``;
times are RFC 3339 or Unix seconds, ``step`` a duration or seconds; values are strings,
timestamps Unix seconds. Errors are ``{"status": "error", "errorType": "bad_data", "error": ...}``
with HTTP 400 (422 ``execution`` when a query would load too many samples).
``GET /prometheus/api/v1/status/buildinfo`` answers as Prometheus does.

Series, one per seeded app, labelled ``{app="<id>", job="estate"}``; the sample at time T
describes the minute that ended at T (a gauge scraped once a minute), and there are no
samples after now:

- ``app_request_latency_ms``  mean request latency in ms
- ``app_requests_per_minute`` requests served
- ``app_errors_per_minute``   requests that failed
- ``app_error_ratio``         errors / requests

The PromQL subset (https://prometheus.io/docs/prometheus/latest/querying/basics/):

- an instant vector selector, ``metric`` or ``metric{label="v", label!="v", label=~"re", label!~"re"}``
  (5 minute lookback, as Prometheus);
- one of ``avg_over_time``, ``min_over_time``, ``max_over_time``, ``sum_over_time``,
  ``count_over_time``, ``last_over_time`` around a range selector ``metric{...}[5m]``
  (durations like ``90s``, ``5m``, ``1h30m``, ``1d``; the window is left-open, right-closed,
  and the result drops ``__name__``, as in Prometheus 3).

Anything else, valid PromQL or not, is refused with ``bad_data``, saying why.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.telemetry import MINUTE_S, Minute, Telemetry

PREFIX = "/prometheus"
LOOKBACK_MS = 5 * 60 * 1000
MAX_POINTS_PER_SERIES = 11_000  # Prometheus refuses range queries beyond this resolution
MAX_SAMPLES = 2_000_000  # our --query.max-samples: keeps the sandbox responsive
VERSION = "3.5.0-sandbox"

METRICS: dict[str, Callable[[Minute], float]] = {
    "app_request_latency_ms": lambda minute: minute.latency_ms,
    "app_requests_per_minute": lambda minute: float(minute.requests),
    "app_errors_per_minute": lambda minute: float(minute.errors),
    "app_error_ratio": lambda minute: minute.error_ratio,
}

RANGE_FUNCTIONS: dict[str, Callable[[list[float]], float]] = {
    "avg_over_time": lambda values: sum(values) / len(values),
    "min_over_time": min,
    "max_over_time": max,
    "sum_over_time": sum,
    "count_over_time": lambda values: float(len(values)),
    "last_over_time": lambda values: values[-1],
}


class PromQLError(ValueError):
    """A query outside the supported subset, or not PromQL at all."""


class ExecutionError(RuntimeError):
    """A valid query that cannot be evaluated (too many samples)."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Query:
    """A parsed query: matchers, and for a range function its name and window."""

    matchers: tuple[Matcher, ...]
    function: str | None = None
    window_ms: int = 0


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<duration>\[[^\]]*\])
      | (?P<op>=~|!~|!=|=)
      | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
      | (?P<punct>[{}(),])
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
            "y": 31_536_000_000}


def parse_duration_ms(text: str) -> int:
    """A Prometheus duration (``5m``, ``1h30m``) in milliseconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise PromQLError(f'parse error: bad duration "{text}"')
    return sum(int(number) * _UNIT_MS[unit] for number, unit in parts)


def _tokens(query: str) -> list[tuple[str, str]]:
    tokens = []
    for found in _TOKEN.finditer(query):
        kind = found.lastgroup
        assert kind is not None
        if kind == "other" and found.group(kind) in "+-*/%^<>":
            raise PromQLError(f"unsupported by the sandbox's PromQL subset: operator {found.group(kind)!r}")
        if kind == "other":
            raise PromQLError(f"parse error: unexpected character {found.group(kind)!r}")
        tokens.append((kind, found.group(kind)))
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda escaped: {"n": "\n", "t": "\t"}.get(escaped.group(1), escaped.group(1)), body)


def parse(query: str) -> Query:
    """Parse the supported subset; raise PromQLError naming what is wrong or unsupported."""
    tokens = _tokens(query)
    if not tokens:
        raise PromQLError("parse error: no expression found in input")
    position = 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal position
        if position >= len(tokens):
            raise PromQLError(f"parse error: unexpected end of input, expected {value or kind}")
        got_kind, got_value = tokens[position]
        if got_kind != kind or (value is not None and got_value != value):
            raise PromQLError(f"parse error: unexpected {got_value!r}, expected {value or kind}")
        position += 1
        return got_value

    def peek(value: str) -> bool:
        return position < len(tokens) and tokens[position][1] == value

    function = None
    if len(tokens) > 1 and tokens[0][0] == "ident" and tokens[1][1] == "(":
        function = take("ident")
        if function not in RANGE_FUNCTIONS:
            raise PromQLError(
                f"unsupported by the sandbox's PromQL subset: function {function!r} "
                f"(supported: {', '.join(RANGE_FUNCTIONS)})"
            )
        take("punct", "(")
    matchers: list[Matcher] = []
    if position < len(tokens) and tokens[position][0] == "ident":
        matchers.append(Matcher("__name__", "=", take("ident")))
    if peek("{"):
        take("punct", "{")
        while not peek("}"):
            label = take("ident")
            op = take("op")
            matchers.append(Matcher(label, op, _unquote(take("string"))))
            if not peek("}"):
                take("punct", ",")
        take("punct", "}")
    for matcher in matchers:
        if matcher.op in ("=~", "!~"):
            try:
                re.compile(matcher.value)
            except re.error as error:
                raise PromQLError(f"parse error: invalid regular expression {matcher.value!r}: {error}") from error
    if all(matcher.matches({}) for matcher in matchers):
        raise PromQLError("parse error: vector selector must contain at least one non-empty matcher")
    window_ms = 0
    if position < len(tokens) and tokens[position][0] == "duration":
        window_ms = parse_duration_ms(take("duration")[1:-1].strip())
        if function is None:
            raise PromQLError("unsupported by the sandbox's PromQL subset: a bare range vector selector")
    elif function is not None:
        raise PromQLError(f"parse error: expected type range vector in call to function {function!r}")
    if function is not None:
        take("punct", ")")
    if position < len(tokens):
        raise PromQLError(
            f"unsupported by the sandbox's PromQL subset: unexpected {tokens[position][1]!r} "
            "(operators, aggregations and nested calls are not supported)"
        )
    return Query(tuple(matchers), function, window_ms)


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it (Go's FormatFloat(v, 'f', -1, 64))."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def format_timestamp(t_ms: int) -> int | float:
    """Unix seconds with millisecond precision, as Prometheus renders timestamps."""
    return t_ms // 1000 if t_ms % 1000 == 0 else round(t_ms / 1000, 3)


class Evaluator:
    """Evaluates a parsed query against the telemetry, caching minutes for one request."""

    def __init__(self, telemetry: Telemetry, now_ms: int) -> None:
        self.telemetry = telemetry
        self.latest_sample_ms = (now_ms // 60_000) * 60_000
        self.samples_loaded = 0
        self._minutes: dict[tuple[str, int], Minute] = {}

    def series(self, query: Query) -> list[dict[str, str]]:
        candidates = (
            {"__name__": name, "app": app, "job": "estate"} for name in METRICS for app in self.telemetry.apps
        )
        return [labels for labels in candidates if all(m.matches(labels) for m in query.matchers)]

    def sample(self, labels: dict[str, str], sample_ms: int) -> float:
        """The sample at ``sample_ms`` (a minute boundary): the minute that ended then."""
        self.samples_loaded += 1
        if self.samples_loaded > MAX_SAMPLES:
            raise ExecutionError("query processing would load too many samples into memory in query execution")
        key = (labels["app"], sample_ms // 1000 - MINUTE_S)
        minute = self._minutes.get(key)
        if minute is None:
            minute = self._minutes[key] = self.telemetry.minute(*key)
        return METRICS[labels["__name__"]](minute)

    def at(self, query: Query, labels: dict[str, str], t_ms: int) -> float | None:
        """The query's value for one series at ``t_ms``, or None when there is no sample."""
        if query.function is None:
            sample_ms = min((t_ms // 60_000) * 60_000, self.latest_sample_ms)
            if t_ms - sample_ms > LOOKBACK_MS:
                return None
            return self.sample(labels, sample_ms)
        last = min((t_ms // 60_000) * 60_000, self.latest_sample_ms)
        first = ((t_ms - query.window_ms) // 60_000 + 1) * 60_000  # window (t - range, t]
        values = [self.sample(labels, ms) for ms in range(first, last + 1, 60_000)]
        return RANGE_FUNCTIONS[query.function](values) if values else None

    @staticmethod
    def result_labels(query: Query, labels: dict[str, str]) -> dict[str, str]:
        if query.function is None:
            return dict(labels)
        return {name: value for name, value in labels.items() if name != "__name__"}


def _error(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "errorType": error_type, "error": message}, status_code=status)


def error_body(status: int) -> dict[str, Any]:
    """What an injected fault answers: Prometheus's error envelope."""
    error_type = "bad_data" if status < 500 and status != 429 else "unavailable" if status in (429, 503) else "internal"
    return {"status": "error", "errorType": error_type, "error": f"injected fault: HTTP {status}"}


def parse_time_ms(name: str, value: str) -> int:
    """An API time parameter (Unix seconds or RFC 3339) in milliseconds."""
    try:
        return round(float(value) * 1000)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PromQLError(f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp') from None
    if parsed.tzinfo is None:
        raise PromQLError(f'invalid parameter "{name}": cannot parse "{value}" to a valid timestamp')
    return round(parsed.timestamp() * 1000)


def parse_step_ms(value: str) -> int:
    try:
        step_ms = round(float(value) * 1000)
    except ValueError:
        try:
            step_ms = parse_duration_ms(value)
        except PromQLError:
            raise PromQLError(f'invalid parameter "step": cannot parse "{value}" to a valid duration') from None
    if step_ms <= 0:
        raise PromQLError("zero or negative query resolution step widths are not accepted. Try a positive integer")
    return step_ms


async def _params(request: Request) -> dict[str, str]:
    """URL parameters, and for POST the form body too (Prometheus reads both)."""
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({key: str(value) for key, value in form.items()})
    return params


def _query_param(params: dict[str, str]) -> str:
    query = params.get("query")
    if not query:
        raise PromQLError('invalid parameter "query": parse error: no expression found in input')
    return query


router = APIRouter(prefix=PREFIX, tags=["prometheus"])


def _now_ms() -> int:
    return round(time.time() * 1000)


@router.api_route("/api/v1/query", methods=["GET", "POST"], response_model=None)
async def instant_query(request: Request) -> dict[str, Any] | JSONResponse:
    """Evaluate an instant query at ``time`` (default now): a vector."""
    params = await _params(request)
    now_ms = _now_ms()
    try:
        query = parse(_query_param(params))
        t_ms = parse_time_ms("time", params["time"]) if params.get("time") else now_ms
        evaluator = Evaluator(request.app.state.telemetry, now_ms)
        result = []
        for labels in evaluator.series(query):
            value = evaluator.at(query, labels, t_ms)
            if value is not None:
                result.append({"metric": evaluator.result_labels(query, labels),
                               "value": [format_timestamp(t_ms), format_value(value)]})
    except PromQLError as error:
        return _error(400, "bad_data", str(error))
    except ExecutionError as error:
        return _error(422, "execution", str(error))
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@router.api_route("/api/v1/query_range", methods=["GET", "POST"], response_model=None)
async def range_query(request: Request) -> dict[str, Any] | JSONResponse:
    """Evaluate a query at ``start``, ``start + step``, ... up to ``end``: a matrix."""
    params = await _params(request)
    now_ms = _now_ms()
    try:
        query = parse(_query_param(params))
        for name in ("start", "end", "step"):
            if not params.get(name):
                raise PromQLError(f'invalid parameter "{name}": missing')
        start_ms, end_ms = parse_time_ms("start", params["start"]), parse_time_ms("end", params["end"])
        step_ms = parse_step_ms(params["step"])
        if end_ms < start_ms:
            raise PromQLError('invalid parameter "end": end timestamp must not be before start time')
        if (end_ms - start_ms) // step_ms >= MAX_POINTS_PER_SERIES:
            raise PromQLError(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        evaluator = Evaluator(request.app.state.telemetry, now_ms)
        result = []
        for labels in evaluator.series(query):
            values = []
            for t_ms in range(start_ms, end_ms + 1, step_ms):
                value = evaluator.at(query, labels, t_ms)
                if value is not None:
                    values.append([format_timestamp(t_ms), format_value(value)])
            if values:
                result.append({"metric": evaluator.result_labels(query, labels), "values": values})
    except PromQLError as error:
        return _error(400, "bad_data", str(error))
    except ExecutionError as error:
        return _error(422, "execution", str(error))
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


@router.get("/api/v1/status/buildinfo")
async def buildinfo() -> dict[str, Any]:
    """Build information, as ``/api/v1/status/buildinfo`` answers it."""
    return {"status": "success", "data": {"version": VERSION, "revision": "sandbox", "branch": "sandbox",
                                          "buildUser": "sandbox", "buildDate": "20250101-00:00:00",
                                          "goVersion": "go1.24"}}
