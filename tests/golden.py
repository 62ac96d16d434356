"""Golden request/response fixtures, written from vendors' documentation, and the check of exchanges against them.

For systems without a machine-readable spec here (ServiceNow, Statuspage, Confluence v2, Microsoft
Graph, Nagios, Splunk, New Relic, Prometheus), ``tests/golden/<system>.yaml`` lists each operation
the hooks call as its documentation shows it: the page's URL, the method and path, the query
parameters and body fields the documentation requires, the success statuses, and the documented
example answer. An exchange the sandbox recorded (``sandbox/exchanges.py``) is checked against the
operation its method and path match:

- the request carries every required query parameter and body field (``a.b`` for nested fields);
- a success answer has every field of the documented example, with the same JSON type, recursively
  (the first item of an example list stands for each item), and the documented headers;
- an exchange no operation matches is a finding: the hook called something the fixtures do not document.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
JSON_TYPES = ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"), (list, "array"),
              (dict, "object"), (type(None), "null"))


def json_type(value: Any) -> str:
    return next(name for kind, name in JSON_TYPES if isinstance(value, kind))


@dataclass
class Operation:
    system: str
    name: str
    doc: str
    method: str
    path: str
    query_required: list[str]
    body_required: list[str]
    success: list[int]
    example: Any
    headers_required: list[str]
    json_lines: bool
    match_query: dict[str, str]
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{[a-zA-Z_]+:path\\\}", ".+", re.escape(self.path))
        self.pattern = re.compile("^" + re.sub(r"\\\{[a-zA-Z_-]+\\\}", "[^/]+", regex) + "$")

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Golden:
    system: str
    prefix: str
    operations: list[Operation]

    def operation(self, method: str, path: str, query: dict[str, list[str]]) -> Operation | None:
        """The first operation (in file order) whose method, path and ``match_query`` fit."""
        relative = path.removeprefix(self.prefix) if path.startswith(self.prefix) else None
        if relative is None:
            return None
        return next((op for op in self.operations if op.method == method and op.pattern.match(relative)
                     and all(query.get(name) == [value] for name, value in op.match_query.items())), None)


def load(system: str) -> Golden:
    raw = yaml.safe_load((GOLDEN_DIR / f"{system}.yaml").read_text(encoding="utf-8"))
    operations = []
    for entry in raw["operations"]:
        request, response = entry.get("request") or {}, entry.get("response") or {}
        if not str(entry.get("doc", "")).startswith("https://"):
            raise ValueError(f"{system}.yaml: {entry.get('name')!r} needs the URL of the documentation it is from")
        operations.append(Operation(
            system=system, name=entry["name"], doc=entry["doc"], method=entry["method"], path=entry["path"],
            query_required=list(request.get("query_required") or []),
            body_required=list(request.get("body_required") or []),
            success=list(response.get("status") or [200]), example=response.get("example"),
            headers_required=[h.lower() for h in response.get("headers_required") or []],
            json_lines=bool(response.get("json_lines")),
            match_query={str(k): str(v) for k, v in (entry.get("match_query") or {}).items()}))
    return Golden(system=system, prefix=raw["prefix"], operations=operations)


def _has(value: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def shape_findings(example: Any, answer: Any, where: str = "") -> list[str]:
    """How ``answer`` departs from the documented example's shape (missing fields, other JSON types)."""
    if example is None:
        return []
    if json_type(example) != json_type(answer):
        return [f"{where.rstrip('.') or 'the answer'} is {json_type(answer)}, documented as {json_type(example)}"]
    if isinstance(example, dict):
        findings = []
        for key, documented in example.items():
            if key not in answer:
                findings.append(f"{where}{key} is missing")
            else:
                findings += shape_findings(documented, answer[key], f"{where}{key}.")
        return findings
    if isinstance(example, list) and example:
        return [finding for index, item in enumerate(answer)
                for finding in shape_findings(example[0], item, f"{where.rstrip('.')}[{index}].")]
    return []


def _request_body(exchange: dict[str, Any]) -> dict[str, Any]:
    body = exchange["request"].get("body") or {}
    if "json" in body:
        return body["json"] if isinstance(body["json"], dict) else {}
    if "form" in body:
        return {key: value for key, value in body["form"]}
    return {}


def check(golden: Golden, exchanges: list[dict[str, Any]]) -> tuple[list[str], set[str]]:
    """Findings for these exchanges of ``golden.system``, and the operations they exercised."""
    findings: list[str] = []
    exercised: set[str] = set()
    for exchange in exchanges:
        method, path = exchange["method"], exchange["path"]
        query = parse_qs(exchange.get("query") or "", keep_blank_values=True)
        operation = golden.operation(method, path, query)
        if operation is None:
            findings.append(f"{golden.system}: {method} {path}: no documented operation in tests/golden")
            continue
        exercised.add(operation.name)
        where = f"{golden.system}: {operation.name} ({method} {path})"
        findings += [f"{where}: query parameter {name!r} missing" for name in operation.query_required
                     if name not in query]
        body = _request_body(exchange)
        findings += [f"{where}: request field {name!r} missing" for name in operation.body_required
                     if not _has(body, name)]
        status = exchange.get("status")
        if not isinstance(status, int) or status not in operation.success:
            continue  # an error, a fault the test injected or a lost answer: not the documented success
        headers = exchange["response"].get("headers") or {}
        findings += [f"{where}: answer header {name!r} missing" for name in operation.headers_required
                     if name not in headers]
        answer = exchange["response"].get("body") or {}
        if operation.json_lines:
            lines = [json.loads(line) for line in str(answer.get("text", "")).splitlines() if line.strip()]
            findings += [f"{where}: {finding}" for line in lines[:1] for finding in shape_findings(
                operation.example, line)]
        elif operation.example is not None:
            if "json" not in answer:
                findings.append(f"{where}: the answer is not JSON")
            else:
                findings += [f"{where}: {finding}" for finding in shape_findings(operation.example, answer["json"])]
    return findings, exercised
