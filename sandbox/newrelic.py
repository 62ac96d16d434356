"""New Relic stand-in: NerdGraph's NRQL query over the estate's Transaction events.

NerdGraph is New Relic's GraphQL API (https://docs.newrelic.com/docs/apis/nerdgraph/get-started/introduction-new-relic-nerdgraph/):
``POST /newrelic/graphql`` (``https://api.newrelic.com/graphql`` for real) with the user key in
the ``API-Key`` header and ``{"query": ..., "variables": ...}`` as body. The one query
answered is NRQL through NerdGraph
(https://docs.newrelic.com/docs/apis/nerdgraph/examples/nerdgraph-nrql-tutorial/)::

    { actor { account(id: 1234567) { nrql(query: "SELECT count(*) FROM Transaction") { results } } } }

or the same with variables (``account(id: $accountId) { nrql(query: $nrql) ...``); the
answer is ``{"data": {"actor": {"account": {"nrql": {"results": [...]}}}}}``. GraphQL and NRQL
errors come back with HTTP 200 as ``{"errors": [{"message": ..., "path": [...], "extensions":
{"errorClass": ...}}], "data": ...}``; a missing or wrong key gets HTTP 401 with ``errors``.

The NRQL subset (https://docs.newrelic.com/docs/nrql/nrql-syntax-clauses-functions/), keywords
in any case::

    SELECT <agg> [AS 'name'] [, ...] FROM Transaction
      [WHERE <cond> [AND <cond> ...]] [SINCE <time>] [UNTIL <time>]

- ``<agg>``: ``count(*)`` -> ``{"count": N}``; ``average(duration)`` -> ``{"average.duration": s}``;
  ``percentile(duration, P)`` -> ``{"percentile.duration": {"P": s}}``. ``duration`` is in
  seconds, as New Relic records it.
- ``<cond>``: ``appName = 'x'``, ``appName IN ('x', 'y')``, ``error IS TRUE|FALSE``.
- ``<time>``: epoch milliseconds, ``'YYYY-MM-DD HH:MM[:SS]'`` (UTC unless it carries an offset),
  ``N minutes|hours|days ago``, or ``NOW``; SINCE defaults to 1 hour ago, UNTIL to now, and the
  interval is [SINCE, UNTIL).

Each request of :mod:`sandbox.telemetry` is one Transaction event (``appName`` = app id,
``error`` true for the failed ones, ``duration`` = the minute's mean latency), so percentiles
are over those per-request durations.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.telemetry import IntervalTraffic, Telemetry, interval_traffic

PREFIX = "/newrelic"
ACCOUNT_ID = 1234567
API_KEY = "NRAK-SANDBOX0000000000000000000"
NRQL_PATH = ["actor", "account", "nrql"]

_GRAPHQL = re.compile(
    r"""^\s*(?:query\b\s*\w*\s*(?:\([^)]*\))?\s*)?
    \{\s*actor\s*\{\s*account\s*\(\s*id\s*:\s*(?P<account>\d+|\$\w+)\s*\)\s*
    \{\s*nrql\s*\(\s*query\s*:\s*(?P<nrql>"(?:[^"\\]|\\.)*"|\$\w+)\s*(?:,\s*\w+\s*:\s*[\w$]+\s*)*\)\s*
    \{\s*results\s*\}\s*\}\s*\}\s*\}\s*$""",
    re.VERBOSE,
)
_NRQL = re.compile(r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<event>\w+)(?P<clauses>.*)$",
                   re.IGNORECASE | re.DOTALL)
_CLAUSES = re.compile(
    r"""^(?:\s+WHERE\s+(?P<where>.+?))?
    (?:\s+SINCE\s+(?P<since>.+?))?
    (?:\s+UNTIL\s+(?P<until>.+?))?\s*$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
_AGGREGATE = re.compile(
    r"""^(?:(?P<count>count\s*\(\s*\*\s*\))|(?P<average>average\s*\(\s*duration\s*\))
    |percentile\s*\(\s*duration\s*,\s*(?P<percentile>\d+(?:\.\d+)?)\s*\))
    (?:\s+AS\s+(?P<alias>'[^']*'|`[^`]*`|\w+))?$""",
    re.IGNORECASE | re.VERBOSE,
)
_CONDITION = re.compile(
    r"""^(?:appName\s*=\s*'(?P<app>[^']*)'
    |appName\s+IN\s*\((?P<apps>\s*'[^']*'\s*(?:,\s*'[^']*'\s*)*)\)
    |error\s+IS\s+(?P<error>TRUE|FALSE))$""",
    re.IGNORECASE | re.VERBOSE,
)
_AGO = re.compile(r"^(\d+)\s+(minute|hour|day|week)s?\s+ago$", re.IGNORECASE)
_UNIT_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000, "week": 604_800_000}


class NrqlError(ValueError):
    """A query outside the supported subset, or not NRQL at all."""


@dataclass
class Nrql:
    """A parsed query: the aggregates with their result keys, the filter and the interval."""

    aggregates: list[tuple[str, str, float | None]]  # (kind, result key, percentile)
    apps: set[str] | None = None
    error: bool | None = None
    since_ms: int = 0
    until_ms: int = 0


def parse_time_ms(text: str, now_ms: int, clause: str) -> int:
    """A SINCE/UNTIL value in epoch milliseconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text.upper() == "NOW":
        return now_ms
    if ago := _AGO.match(text):
        return now_ms - int(ago.group(1)) * _UNIT_MS[ago.group(2).lower()]
    if len(text) > 1 and text[0] == text[-1] == "'":
        try:
            parsed = datetime.fromisoformat(text[1:-1].strip())
        except ValueError:
            pass
        else:
            return round((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp() * 1000)
    raise NrqlError(f"NRQL Syntax Error: invalid {clause} value {text!r}")


def _top_level_parts(select: str) -> list[str]:
    """The comma-separated items of a SELECT list, ignoring commas inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in select:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def parse(query: str, now_ms: int) -> Nrql:
    """Parse the supported subset; raise NrqlError naming what is wrong or unsupported."""
    found = _NRQL.match(query)
    if found is None:
        raise NrqlError("NRQL Syntax Error: expected SELECT ... FROM ... [WHERE ...] [SINCE ...] [UNTIL ...]")
    clauses = _CLAUSES.match(found.group("clauses"))
    if clauses is None:
        raise NrqlError(f"unsupported by the sandbox's NRQL subset: {found.group('clauses').strip()!r} "
                        "(supported clauses: WHERE, SINCE, UNTIL, in that order)")
    if found.group("event").lower() != "transaction":
        raise NrqlError(f"unsupported by the sandbox's NRQL subset: event type {found.group('event')!r} "
                        "(only Transaction)")
    aggregates = []
    for part in _top_level_parts(found.group("select")):
        aggregate = _AGGREGATE.match(part.strip())
        if aggregate is None:
            raise NrqlError(f"unsupported by the sandbox's NRQL subset: {part.strip()!r} "
                            "(supported: count(*), average(duration), percentile(duration, P))")
        kind = next(name for name in ("count", "average", "percentile") if aggregate.group(name))
        percentile = float(aggregate.group("percentile")) if kind == "percentile" else None
        if percentile is not None and not 0 <= percentile <= 100:
            raise NrqlError(f"NRQL Syntax Error: percentile {percentile:g} is not between 0 and 100")
        key = {"count": "count", "average": "average.duration", "percentile": "percentile.duration"}[kind]
        alias = aggregate.group("alias")
        aggregates.append((kind, alias.strip("'`") if alias else key, percentile))
    parsed = Nrql(aggregates)
    for condition in re.split(r"\s+AND\s+", clauses.group("where") or "", flags=re.IGNORECASE):
        if not condition.strip():
            continue
        matched = _CONDITION.match(condition.strip())
        if matched is None:
            raise NrqlError(f"unsupported by the sandbox's NRQL subset: condition {condition.strip()!r} "
                            "(supported: appName = '...', appName IN (...), error IS TRUE|FALSE, joined by AND)")
        if matched.group("error") is not None:
            parsed.error = matched.group("error").upper() == "TRUE"
            continue
        listed = {matched.group("app")} if matched.group("app") is not None else set(
            re.findall(r"'([^']*)'", matched.group("apps")))
        parsed.apps = listed if parsed.apps is None else parsed.apps & listed
    parsed.since_ms = parse_time_ms(clauses.group("since"), now_ms, "SINCE") if clauses.group("since") else (
        now_ms - _UNIT_MS["hour"])
    parsed.until_ms = parse_time_ms(clauses.group("until"), now_ms, "UNTIL") if clauses.group("until") else now_ms
    if parsed.until_ms <= parsed.since_ms:
        raise NrqlError("NRQL Syntax Error: UNTIL must be after SINCE")
    return parsed


def _weighted_percentile(samples: list[tuple[float, int]], percentile: float) -> float | None:
    """The ``percentile`` of values given as (value, how many), nearest-rank."""
    total = sum(weight for _value, weight in samples)
    if not total:
        return None
    rank = max(1, math.ceil(percentile * total / 100))
    seen = 0
    for value, weight in sorted(samples):
        seen += weight
        if seen >= rank:
            return value
    return sorted(samples)[-1][0]


def evaluate(telemetry: Telemetry, query: Nrql) -> list[dict[str, Any]]:
    """The one result row of an aggregate query."""
    apps = [app for app in telemetry.apps if query.apps is None or app in query.apps]
    samples: list[tuple[float, int]] = []  # (duration s, events)
    for app in apps:
        traffic: IntervalTraffic = interval_traffic(telemetry, app, query.since_ms, query.until_ms)
        for minute, requests, errors in traffic.per_minute:
            selected = errors if query.error else requests - errors if query.error is False else requests
            if selected:
                samples.append((round(minute.latency_ms / 1000, 6), selected))
    count = sum(weight for _value, weight in samples)
    row: dict[str, Any] = {}
    for kind, key, percentile in query.aggregates:
        if kind == "count":
            row[key] = count
        elif kind == "average":
            row[key] = round(sum(value * weight for value, weight in samples) / count, 6) if count else None
        else:
            assert percentile is not None
            row[key] = {f"{percentile:g}": _weighted_percentile(samples, percentile)}
    return [row]


def _graphql_error(message: str, error_class: str, status: int = 200, path: list[str] | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "extensions": {"errorClass": error_class}}
    if path:
        error["path"] = path
    body: dict[str, Any] = {"errors": [error]}
    if path:
        body["data"] = {"actor": {"account": None if path[-1] == "account" else {"nrql": None}}}
    return JSONResponse(body, status_code=status)


def error_body(status: int) -> dict[str, Any]:
    """What an injected fault answers: a GraphQL error list."""
    error_class = "TOO_MANY_REQUESTS" if status == 429 else "SERVER_ERROR" if status >= 500 else "BAD_REQUEST"
    return {"errors": [{"message": f"injected fault: HTTP {status}", "extensions": {"errorClass": error_class}}]}


def _argument(literal: str, variables: dict[str, Any]) -> Any:
    if literal.startswith("$"):
        if literal[1:] not in variables:
            raise ValueError(f"Variable '{literal}' was not provided")
        return variables[literal[1:]]
    return json.loads(literal) if literal.startswith('"') else int(literal)


router = APIRouter(prefix=PREFIX, tags=["newrelic"])


@router.post("/graphql", response_model=None)
async def graphql(request: Request) -> dict[str, Any] | JSONResponse:
    """Answer the NRQL query of a NerdGraph request."""
    if request.headers.get("api-key") != API_KEY:
        return _graphql_error("Invalid API key", "UNAUTHORIZED", status=401)
    try:
        body = await request.json()
    except ValueError:
        return _graphql_error("Request body is not JSON", "BAD_REQUEST", status=400)
    document = body.get("query") if isinstance(body, dict) else None
    found = _GRAPHQL.match(document) if isinstance(document, str) else None
    if found is None:
        return _graphql_error(
            'The sandbox NerdGraph answers only { actor { account(id: N) { nrql(query: "...") { results } } } }',
            "GRAPHQL_VALIDATION_FAILED")
    variables = body.get("variables") or {}
    try:
        account_id = int(_argument(found.group("account"), variables))
        nrql = _argument(found.group("nrql"), variables)
    except (ValueError, TypeError) as error:
        return _graphql_error(str(error), "GRAPHQL_VALIDATION_FAILED")
    if account_id != ACCOUNT_ID:
        return _graphql_error(f"Account {account_id} not found or not authorized", "FORBIDDEN",
                              path=["actor", "account"])
    try:
        results = evaluate(request.app.state.telemetry, parse(str(nrql), round(time.time() * 1000)))
    except NrqlError as error:
        return _graphql_error(str(error), "INVALID_INPUT", path=NRQL_PATH)
    return {"data": {"actor": {"account": {"nrql": {"results": results}}}}}
