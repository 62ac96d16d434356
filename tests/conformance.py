"""Checking recorded sandbox exchanges against the vendors' published OpenAPI descriptions (tests/specs/).

For each exchange of a system with a spec (Slack Web API, Jira Cloud platform v3, Okta management):
the operation exists and is not ``deprecated``, the request carries the operation's required
parameters and body, and the stand-in's answer validates against the schema the operation documents
for that status. Jira's v2 (and ``latest``) paths are checked as the v3 operation of the same path.

A known defect of a spec (or a documented behaviour the spec has not caught up with) is an
:class:`Allowed` entry with its reason; it matches an operation and, for schema errors, the part of
the answer the error is about. Anything else is a :class:`Finding`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

SPECS = Path(__file__).resolve().parent / "specs"
JSON_BODY = ("application/json", "application/json;charset=UTF-8", "*/*")


@dataclass(frozen=True)
class Allowed:
    """A deviation we accept: ``system``, ``operation`` (a regex, ``"*"`` for any), a regex on the finding, and why."""

    system: str
    operation: str
    pattern: str
    reason: str

    def covers(self, system: str, operation: str, finding: str) -> bool:
        return (self.system == system and (self.operation == "*" or re.fullmatch(self.operation, operation))
                and re.search(self.pattern, finding) is not None)


@dataclass
class Finding:
    system: str
    operation: str
    problem: str
    exchange: dict[str, Any]

    def __str__(self) -> str:
        return (f"{self.system} {self.operation}: {self.problem} "
                f"[{self.exchange['method']} {self.exchange['path']}?{self.exchange.get('query', '')} "
                f"-> {self.exchange.get('status')}]")


@dataclass(frozen=True)
class Operation:
    system: str
    method: str
    template: str  # the spec's path template
    spec: dict[str, Any]  # the operation object
    path_item: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template}"

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return [*self.path_item.get("parameters", []), *self.spec.get("parameters", [])]


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schemas as JSON Schema draft 4: ``nullable: true`` makes ``null`` one more allowed type,
    and a ``oneOf`` with a ``discriminator`` mapping picks its alternative by the discriminating property
    (plain ``oneOf`` would refuse an object two loose alternatives both accept)."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _to_json_schema(value) for key, value in node.items()}
    mapping = (converted.get("discriminator") or {}).get("mapping")
    if "oneOf" in converted and isinstance(mapping, dict):
        name = converted["discriminator"]["propertyName"]
        converted["anyOf"] = [{"allOf": [{"properties": {name: {"enum": [value]}}, "required": [name]},
                                         {"$ref": ref}]} for value, ref in mapping.items()]
        del converted["oneOf"]
    if converted.pop("nullable", False) is True:
        if isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
        else:
            return {"anyOf": [converted, {"type": "null"}]}
    return converted


class Spec:
    """One published description: finding an exchange's operation, and validating against it."""

    def __init__(self, system: str, path: Path, base: str, components: str) -> None:
        self.system, self.path, self.base, self.components = system, path, base, components
        self._validators: dict[int, jsonschema.Draft4Validator] = {}

    @cached_property
    def document(self) -> dict[str, Any]:
        text = self.path.read_text()
        raw = json.loads(text) if self.path.suffix == ".json" else yaml.load(text, Loader=yaml.CSafeLoader)
        if self.components == "components":  # OpenAPI 3.0
            raw = {**raw, "components": _to_json_schema(raw.get("components", {})),
                   "paths": _to_json_schema(raw["paths"])}
        return raw

    @cached_property
    def _templates(self) -> list[tuple[re.Pattern[str], str]]:
        """Path templates as regexes, literal ones first (``/search/jql`` before ``/search/{id}``)."""
        compiled = [(re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) + "$"), t)
                    for t in self.document["paths"]]
        return sorted(compiled, key=lambda pair: (pair[1].count("{"), -len(pair[1])))

    def operation(self, method: str, api_path: str) -> Operation | None:
        for pattern, template in self._templates:
            if pattern.match(api_path):
                item = self.document["paths"][template]
                found = item.get(method.lower())
                if found is None and self.system == "slack":  # Slack takes GET or POST for every method
                    found = next((item[m] for m in ("get", "post") if m in item), None)
                    method = next(m for m in ("get", "post") if m in item) if found else method
                if found is not None:
                    return Operation(self.system, method.lower(), template, found, item)
        return None

    def response_schema(self, operation: Operation, status: int | str) -> dict[str, Any] | None:
        responses = operation.spec.get("responses", {})
        answer = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if answer is None:
            return None
        if "$ref" in answer:
            answer = self._resolve(answer["$ref"])
        if self.components == "definitions":  # OpenAPI 2
            return answer.get("schema")
        content = answer.get("content") or {}
        chosen = next((content[kind] for kind in JSON_BODY if kind in content), None)
        return None if chosen is None else chosen.get("schema")

    def documents_status(self, operation: Operation, status: int) -> bool:
        responses = operation.spec.get("responses", {})
        return str(status) in responses or f"{str(status)[0]}XX" in responses or "default" in responses

    def _validator(self, schema: dict[str, Any]) -> jsonschema.Draft4Validator:
        """One validator per response schema (its references resolved within the whole spec), made once."""
        made = self._validators.get(id(schema))
        if made is None:
            rooted = {"$ref": "#/x-schema", "x-schema": schema, self.components: self.document[self.components]}
            made = self._validators[id(schema)] = jsonschema.Draft4Validator(rooted)
        return made

    def _resolve(self, ref: str) -> Any:
        node: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def errors(self, schema: dict[str, Any], body: Any) -> Iterator[str]:
        """Schema errors of ``body``, each as ``<where in the answer>: <what>``."""
        for error in self._validator(schema).iter_errors(body):
            if error.context:  # oneOf/anyOf: say why the closest alternative refused it
                error = jsonschema.exceptions.best_match(error.context)
            where = "/".join(str(part) for part in error.absolute_path) or "(answer)"
            yield f"{where}: {error.message[:300]}"


@dataclass
class Checked:
    """What a run of the checks found: operations validated per system, findings, and what the allowlist hid."""

    validated: dict[str, set[str]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    allowed: dict[Allowed, int] = field(default_factory=dict)
    exchanges: int = 0


class Conformance:
    """The specs by system, the path mapping of each stand-in onto its spec, and the allowlist."""

    def __init__(self, allowlist: Iterable[Allowed]) -> None:
        self.allowlist = list(allowlist)
        self.specs = {
            "slack": Spec("slack", SPECS / "slack_web_openapi_v2.json", "/slack/api", "definitions"),
            "jira": Spec("jira", SPECS / "jira_cloud_platform_v3_openapi.json", "/jira", "components"),
            "okta": Spec("okta", SPECS / "okta_management_openapi.yaml", "/okta", "components"),
        }

    def api_path(self, system: str, path: str) -> str | None:
        """The exchange's path as the spec writes it, or None for what is not the vendor's API."""
        if "/_sandbox/" in path:
            return None
        rest = path.removeprefix(self.specs[system].base)
        if system == "jira":
            if not rest.startswith("/rest/api/"):
                return None  # e.g. /secure/attachment/...: a download link, not the REST API
            return re.sub(r"^/rest/api/(2|latest)/", "/rest/api/3/", rest)
        return rest

    def check(self, exchanges: Iterable[dict[str, Any]]) -> Checked:
        checked = Checked()
        for exchange in exchanges:
            system = exchange.get("system")
            if system not in self.specs:
                continue
            api_path = self.api_path(system, exchange["path"])
            if api_path is None:
                continue
            checked.exchanges += 1
            spec = self.specs[system]
            operation = spec.operation(exchange["method"], api_path)
            if operation is None:
                self._found(checked, system, f"{exchange['method']} {api_path}",
                            "no such operation in the published spec", exchange)
                continue
            problems = [*self._request_problems(operation, exchange), *self._response_problems(spec, operation,
                                                                                                 exchange)]
            for problem in problems:
                self._found(checked, system, operation.name, problem, exchange)
            checked.validated.setdefault(system, set()).add(operation.name)
        return checked

    def _found(self, checked: Checked, system: str, operation: str, problem: str, exchange: dict[str, Any]) -> None:
        for allowed in self.allowlist:
            if allowed.covers(system, operation, problem):
                checked.allowed[allowed] = checked.allowed.get(allowed, 0) + 1
                return
        checked.findings.append(Finding(system, operation, problem, exchange))

    @staticmethod
    def _request_problems(operation: Operation, exchange: dict[str, Any]) -> Iterator[str]:
        if operation.spec.get("deprecated"):
            yield "operation is deprecated"
        request = exchange.get("request") or {}
        headers = request.get("headers") or {}
        body = request.get("body") or {}
        query = _query(exchange.get("query", ""))
        form = dict(body.get("form") or []) if body.get("form") else {}
        json_body = body.get("json") if isinstance(body.get("json"), dict) else {}
        for parameter in operation.parameters:
            if "$ref" in parameter or not parameter.get("required"):
                continue
            name, where = parameter["name"], parameter.get("in")
            if operation.system == "slack":
                # Slack reads every argument from the query string, a form or a JSON body, whichever the
                # method is called with (https://api.slack.com/web#basics), and the token from the
                # Authorization header (https://api.slack.com/authentication/basics#calling).
                present = (name in query or name in form or name in json_body
                           or (name == "token" and "authorization" in headers))
            else:
                present = {
                    "query": name in query,
                    "path": True,  # the path matched the template
                    "header": name.lower() in headers,
                    "body": bool(body),
                }.get(where, True)
            if not present:
                yield f"required {where} parameter {name!r} missing"
        request_body = operation.spec.get("requestBody")
        if isinstance(request_body, dict) and request_body.get("required") and not body:
            yield "required request body missing"

    def _response_problems(self, spec: Spec, operation: Operation, exchange: dict[str, Any]) -> Iterator[str]:
        status = exchange.get("status")
        if isinstance(status, str):  # "dropped", "lost (201)": a lost answer was still made
            match = re.search(r"\((\d{3})\)", status)
            status = int(match.group(1)) if match else None
        if not isinstance(status, int):
            return
        if not spec.documents_status(operation, status):
            if 200 <= status < 300:
                yield f"status {status} is not one the operation documents"
            return  # an error status the spec does not list (429, 5xx from fault injection)
        body = ((exchange.get("response") or {}).get("body") or {})
        if spec.system == "slack" and isinstance(body.get("json"), dict) and body["json"].get("ok") is False:
            status = "default"  # Slack answers errors with HTTP 200 and ok: false, the spec's "default" answer
        schema = spec.response_schema(operation, status)
        if schema is None or "json" not in body:
            return
        for error in spec.errors(schema, body["json"]):
            yield f"answer {error}"


def _query(query: str) -> dict[str, list[str]]:
    from urllib.parse import parse_qs

    return parse_qs(query, keep_blank_values=True)


CHECKED = pytest.StashKey[Checked]()  # what tests/test_conformance.py found, for the run's summary


def report(checked: Checked) -> list[str]:
    """The lines printed at the end of the run: operations validated per system, and the allowlist used."""
    lines = [f"{checked.exchanges} exchanges checked against tests/specs/"]
    for system, names in sorted(checked.validated.items()):
        lines.append(f"{system}: {len(names)} operations validated")
        lines += [f"  {name}" for name in sorted(names)]
    for allowed, count in checked.allowed.items():
        lines.append(f"allowed ({count}x) {allowed.system} {allowed.operation}: {allowed.reason}")
    return lines
