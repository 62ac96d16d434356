"""The service catalog: the applications and interfaces we support, and how to check them.

``include/config/services.yaml`` is validated with pydantic when a DAG parses. A bad
catalog raises :class:`CatalogError`, whose message names the file, the entry, the
field and (where the YAML gives one) the line, so the DAG's import error tells the
analyst exactly what to fix. Validated catalogs are cached on disk keyed on the
file's content hash: the DAG processor re-parses every file every 30 s and every
task start parses its DAG again, while validating 1,000 checks takes a quarter second.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prep_support import paths
from prep_support.config_errors import ConfigError, LocatedError, line_of, location_labels, parse_config
from prep_support.config_fields import Email, SlackChannel, Url

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN, max_length=100)]
Criticality = Literal["critical", "high", "medium", "low"]


class CatalogError(ConfigError):
    """The catalog cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _CheckBase(_Strict):
    id: Identifier
    description: str = ""
    # A failing non-critical check degrades its service instead of taking it down.
    critical: bool = True
    timeout_s: float = Field(default=5.0, gt=0, le=300)

    @property
    def conn_ids(self) -> set[str]:
        conn_id = getattr(self, "conn_id", None)
        return {conn_id} if conn_id else set()


class HttpCheck(_CheckBase):
    """An HTTP(S) request whose status, body and latency are judged."""

    kind: Literal["http"]
    url: Url = Field(min_length=1)
    conn_id: str | None = Field(
        default=None, description="Connection giving the base URL (for a relative url) and extra 'headers'."
    )
    method: Literal["GET", "HEAD", "POST", "OPTIONS"] = "GET"
    expected_status: list[Annotated[int, Field(ge=100, le=599)]] = [200]
    body_contains: str | None = None
    json_path_equals: dict[str, Any] | None = Field(
        default=None, description="JSON paths such as '$.status' or '$.items[0].state' and their values."
    )
    latency_warning_ms: float = Field(default=500, gt=0)
    latency_critical_ms: float = Field(default=2000, gt=0)

    @field_validator("expected_status", mode="before")
    @classmethod
    def _one_status_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @field_validator("json_path_equals")
    @classmethod
    def _paths_parse(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for path in value or {}:
            parse_json_path(path)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> HttpCheck:
        if self.latency_warning_ms > self.latency_critical_ms:
            raise ValueError("latency_warning_ms must not exceed latency_critical_ms")
        if not re.match(r"^https?://", self.url) and not self.conn_id:
            raise ValueError("a relative url needs a conn_id whose host is the base URL")
        return self


class TcpCheck(_CheckBase):
    """A TCP connect to an interface listener (host and port, or a Connection's)."""

    kind: Literal["tcp"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    conn_id: str | None = None

    @model_validator(mode="after")
    def _has_address(self) -> TcpCheck:
        if not self.conn_id and not (self.host and self.port):
            raise ValueError("give host and port, or a conn_id whose host and port to use")
        return self


class _Bounds(BaseModel):
    """A value judged against an expected value, or a minimum and/or a maximum."""

    model_config = ConfigDict(allow_inf_nan=False)

    expected: float | int | str | bool | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_expectation(self) -> _Bounds:
        if self.expected is None and self.min is None and self.max is None:
            raise ValueError("give expected, or min and/or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class SqlCheck(_Bounds, _CheckBase):
    """A query returning one value, compared with an expected value or bounds.

    The query may use ``:data_interval_start`` and ``:data_interval_end``; it is then
    evaluated for the run's interval, so a backfilled run fills history truthfully.
    """

    kind: Literal["sql"]
    conn_id: str
    query_file: str

    @field_validator("query_file")
    @classmethod
    def _query_file_exists(cls, value: str) -> str:
        path = (paths.SQL_DIR / value).resolve()
        if not path.is_relative_to(paths.SQL_DIR.resolve()):
            raise ValueError(f"query_file must stay under {paths.SQL_DIR}")
        if not path.is_file():
            raise ValueError(f"no such query file: {paths.SQL_DIR / value}")
        return value

    @property
    def query(self) -> str:
        return (paths.SQL_DIR / self.query_file).read_text()


# Monitoring sources: each reads the monitoring system's view of the run's data interval, so
# (unlike live probes) a backfilled sweep fills history from them.


class PrometheusCheck(_Bounds, _CheckBase):
    """A PromQL expression evaluated at the end of the interval (use ``[5m]`` ranges to cover it)."""

    kind: Literal["prometheus"]
    conn_id: str = "prometheus_default"
    query: str = Field(min_length=1)


class NagiosCheck(_CheckBase):
    """A Nagios Core service: its worst state over the interval (ok, warning -> warn, else fail)."""

    kind: Literal["nagios"]
    conn_id: str = "nagios_default"
    host: str = Field(min_length=1)
    service: str = Field(min_length=1)


class NewRelicCheck(_Bounds, _CheckBase):
    """An NRQL query returning one number; ``SINCE ... UNTIL ...`` of the interval is appended."""

    kind: Literal["newrelic"]
    conn_id: str = "newrelic_default"
    nrql: str = Field(min_length=1)

    @field_validator("nrql")
    @classmethod
    def _interval_is_ours(cls, value: str) -> str:
        if re.search(r"\b(SINCE|UNTIL)\b", value, re.IGNORECASE):
            raise ValueError("leave SINCE/UNTIL out: the run's data interval is appended")
        return value


class SplunkCheck(_Bounds, _CheckBase):
    """A Splunk search whose event count over the interval is judged (e.g. errors at most N)."""

    kind: Literal["splunk"]
    conn_id: str = "splunk_default"
    search: str = Field(min_length=1)


SOURCE_KINDS = ("prometheus", "nagios", "newrelic", "splunk")
KINDS = ("http", "tcp", "sql", *SOURCE_KINDS)


Check = Annotated[
    HttpCheck | TcpCheck | SqlCheck | PrometheusCheck | NagiosCheck | NewRelicCheck | SplunkCheck,
    Field(discriminator="kind"),
]


class Runbook(_Strict):
    """How to operate a service by hand, as the support team wrote it (published by support_docs)."""

    restart: str = ""
    failover: str = ""
    notes: str = ""


class Service(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    owner: Email
    team_channel: SlackChannel
    tracker_project: str = Field(min_length=1)
    criticality: Criticality
    depends_on: list[Identifier] = []
    checks: list[Check] = Field(min_length=1)
    runbook: Runbook | None = None  # optional: restart / failover / notes text

    @field_validator("checks")
    @classmethod
    def _unique_check_ids(cls, checks: list[Check]) -> list[Check]:
        return unique_ids(checks, "check")


def unique_ids(items: list, what: str) -> list:
    """``items`` unchanged when their ``id``s are unique; else a LocatedError at the first duplicate's id."""
    duplicate = first_duplicate_id(items)
    if duplicate is not None:
        raise LocatedError((duplicate, "id"), f"duplicate {what} id {items[duplicate].id!r}")
    return items


def first_duplicate_id(items: list) -> int | None:
    """The index of the first item whose ``id`` an earlier item already has, or None."""
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.id in seen:
            return index
        seen.add(item.id)
    return None


class Catalog(_Strict):
    services: list[Service] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> Catalog:
        duplicate = first_duplicate_id(self.services)
        if duplicate is not None:
            first = next(s for s in self.services if s.id == self.services[duplicate].id)
            raise LocatedError(("services", duplicate, "id"), f"duplicate service id {first.id!r} "
                               f"(first at services[{self.services.index(first)}])")
        ids = {service.id for service in self.services}
        for index, service in enumerate(self.services):
            for position, dependency in enumerate(service.depends_on):
                if dependency not in ids:
                    raise LocatedError(("services", index, "depends_on", position), f"depends on unknown "
                                       f"service {dependency!r}; the catalog has {', '.join(sorted(ids))}")
        cycle = dependency_cycle({service.id: service.depends_on for service in self.services})
        if cycle:
            index = next(i for i, service in enumerate(self.services) if service.id == cycle[0])
            raise LocatedError(("services", index, "depends_on"), (
                f"{cycle[0]!r} depends on itself" if len(cycle) == 2 else
                f"dependency cycle {' -> '.join(cycle)}") + "; each would be marked caused by the next")
        return self

    @cached_property
    def checks_by_key(self) -> dict[str, tuple[Service, Check]]:
        """Every check under its catalog-wide key ``service/check``."""
        return {check_key(s.id, c.id): (s, c) for s in self.services for c in s.checks}

    @property
    def conn_ids(self) -> set[str]:
        return {conn for service in self.services for check in service.checks for conn in check.conn_ids}


def dependency_cycle(depends_on: Mapping[str, Iterable[str]]) -> list[str]:
    """The first cycle of ``depends_on`` as ``[a, b, ..., a]`` (``[a, a]`` for a self-dependency), or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in depends_on:
        if state.get(start):
            continue
        path, stack = [start], [iter(depends_on.get(start, ()))]
        state[start] = 1
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(following) == 1:
                return path[path.index(following):] + [following]
            elif not state.get(following):
                state[following] = 1
                path.append(following)
                stack.append(iter(depends_on.get(following, ())))
    return []


def check_key(service_id: str, check_id: str) -> str:
    return f"{service_id}/{check_id}"


_JSON_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']+)'\]")


def parse_json_path(path: str) -> list[str | int]:
    """Split a simple JSON path (``$.a.b[0]['c-d']``) into keys and indexes."""
    if not path.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with '$'")
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        match = _JSON_PATH_STEP.match(path, position)
        if not match:
            raise ValueError(f"JSON path {path!r} is not understood at position {position}")
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (name or quoted))
        position = match.end()
    return steps


def known_connection_ids(
    doc_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> set[str]:
    """Connections the deployment provides: documented in connections.yaml or set as AIRFLOW_CONN_*."""
    environ = os.environ if environ is None else environ
    doc_path = doc_path or paths.connections_doc_path()
    known = {key[len("AIRFLOW_CONN_") :].lower() for key in environ if key.startswith("AIRFLOW_CONN_")}
    if doc_path.is_file():
        documented = parse_config(doc_path, doc_path.read_bytes()) or {}
        entries = documented.get("connections") if isinstance(documented, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "conn_id" in e for e in entries):
            raise ConfigError(f"{doc_path}: expected 'connections:' with a list of entries that each have a conn_id")
        known |= {str(entry["conn_id"]) for entry in entries}
    return known


def load_catalog(path: Path | None = None, known_connections: Iterable[str] | None = None) -> Catalog:
    """Read, validate and cache the catalog; raise CatalogError naming file, entry, field and line."""
    path = Path(path or paths.catalog_path())
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CatalogError(f"{path}: cannot read the catalog: {error.strerror}") from error
    catalog = _read_cached(raw) or _validate(path, raw)
    known = set(known_connection_ids() if known_connections is None else known_connections)
    for service_index, service in enumerate(catalog.services):
        for check_index, check in enumerate(service.checks):
            for conn_id in sorted(check.conn_ids - known):
                location = ("services", service_index, "checks", check_index, "conn_id")
                raise CatalogError(
                    _describe(path, raw, location, f"unknown Connection {conn_id!r}; define "
                              f"AIRFLOW_CONN_{conn_id.upper()} or document it in {paths.connections_doc_path()}")
                )
    return catalog


def catalog_digest(path: Path | str | None = None) -> str:
    """The sha256 of the catalog file's bytes: what health_sweep compares to tell that the catalog changed."""
    return hashlib.sha256(Path(path or paths.catalog_path()).read_bytes()).hexdigest()


def _cache_file(raw: bytes) -> Path:
    code = Path(__file__).read_bytes()
    digest = hashlib.sha256(code + b"\0" + str(paths.SQL_DIR).encode() + b"\0" + raw).hexdigest()
    return paths.cache_dir() / f"catalog-{digest[:32]}.pickle"


def _read_cached(raw: bytes) -> Catalog | None:
    try:
        with _cache_file(raw).open("rb") as handle:
            catalog = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None
    return catalog if isinstance(catalog, Catalog) else None


def _write_cache(raw: bytes, catalog: Catalog) -> None:
    target = _cache_file(raw)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(pickle.dumps(catalog, protocol=pickle.HIGHEST_PROTOCOL))
        temporary.replace(target)
    except OSError:
        pass  # a read-only home only costs the next parse a validation


def _validate(path: Path, raw: bytes) -> Catalog:
    try:
        data = parse_config(path, raw)
    except ConfigError as error:
        raise CatalogError(str(error)) from None
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: the catalog must be a mapping with a 'services' list")
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location, message = tuple(first["loc"]), first["msg"].removeprefix("Value error, ")
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, LocatedError):
            location += cause.location
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            location += ("kind",)
            message = f"unknown kind {first['input'].get('kind')!r}; expected one of {', '.join(KINDS)}"
        # from None: pydantic's own text repeats the input, which may be a URL's password.
        raise CatalogError(_describe(path, raw, location, message, data)) from None
    _write_cache(raw, catalog)
    return catalog


def _describe(path: Path, raw: bytes, location: tuple, message: str, data: Any = None) -> str:
    """'file (line N): services[1] (id 'x') > checks[0] (id 'y') > field 'timeout_s': message'."""
    if data is None:
        data = parse_config(path, raw)
    labels, steps = location_labels(data, location, discriminator="kind")
    line = line_of(raw, steps)
    where = f" (line {line})" if line else ""
    return f"{path}{where}: {labels or 'catalog'}: {message}"
