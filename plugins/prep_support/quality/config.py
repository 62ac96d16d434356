"""Data-quality suites: one YAML file per dataset under ``include/config/quality/``.

A suite names where its data is (a table or a query file on a Connection, or files in a folder),
how a row maps to a data interval (``partition_column``), who owns it, and its checks (see
:mod:`prep_support.quality.checks`; the format is documented in include/config/quality/README.md).
:func:`load_suites` validates every file with pydantic when the DAG parses; a broken file becomes
a :class:`SuiteError` naming the file, the line, the check (index and id) and the field, and the
other suites still load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prep_support import paths
from prep_support.catalog import ID_PATTERN, Catalog, first_duplicate_id, known_connection_ids
from prep_support.config_errors import ConfigError, LocatedError, line_of, location_labels, parse_config
from prep_support.config_fields import Email
from prep_support.quality.checks import (
    EXPECTATIONS,
    AnyCheck,
    CheckSpec,
    SqlIdentifier,
    TableName,
    check_query_file,
    derive_check_id,
    read_query,
    split_table_name,
)

_ASSET_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
SUITE_FILE_PATTERNS = ("*.yaml", "*.yml")
SOURCE_FIELDS = ("table", "query_file", "files")
_DATABASE_ONLY = {"referential", "custom_sql"}


def quality_config_dir() -> Path:
    """Where the suites are; ``PREP_SUPPORT_QUALITY_DIR`` points elsewhere (benchmarks, tests)."""
    return Path(os.environ.get("PREP_SUPPORT_QUALITY_DIR", paths.CONFIG_DIR / "quality"))


class SuiteError(ConfigError):
    """A suite file that cannot be used; the message says where (file, line, check, field) and why."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = Path(path)
        self.message = message

    @property
    def suite_id(self) -> str:
        """The file's stem: what the suite would be called (its own ``id`` may be what is broken)."""
        return self.path.stem


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class FileSource(_Strict):
    """Files in an inbound folder (the interfaces that feed applications) instead of a table.

    ``directory`` may use ``$VARIABLES`` (expanded when validating) and is relative to the project
    root unless absolute. With ``select_by_mtime`` (the default) a run reads the files modified
    within its data interval; without it every matching file, for whole-set checks.
    """

    directory: str = Field(min_length=1)
    pattern: str = Field(default="*", min_length=1)
    format: Literal["csv", "parquet"]
    select_by_mtime: bool = True
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"

    @field_validator("pattern")
    @classmethod
    def _stays_in_folder(cls, value: str) -> str:
        if "/" in value or "\\" in value or ".." in value:
            raise ValueError("pattern matches file names in the folder only (no '/', '\\' or '..')")
        return value

    def resolved_directory(self) -> Path:
        folder = Path(os.path.expandvars(os.path.expanduser(self.directory)))
        return folder if folder.is_absolute() else paths.PROJECT_ROOT / folder


class Suite(_Strict):
    """The checks of one dataset, and where its rows for a data interval are."""

    id: Annotated[str, Field(pattern=ID_PATTERN, max_length=100)]
    description: str = ""
    conn_id: str | None = None
    table: TableName | None = None
    query_file: Annotated[str, AfterValidator(check_query_file)] | None = None
    files: FileSource | None = None
    partition_column: SqlIdentifier | None = None
    service: Annotated[str, Field(pattern=ID_PATTERN, max_length=100)]
    owner: Email | None = None
    sensitive_columns: list[SqlIdentifier] = []
    schedule_on_asset: str | None = None
    timeout_s: float = Field(default=600, gt=0, le=86400)
    checks: list[AnyCheck] = Field(min_length=1)

    @field_validator("schedule_on_asset")
    @classmethod
    def _asset_uri(cls, value: str | None) -> str | None:
        if value is not None and not _ASSET_URI.match(value):
            raise ValueError(f"{value[:100]!r} is not an asset URI such as "
                             "'postgres://db-host:5432/warehouse/public/orders'")
        if value is not None and "@" in value.split("://", 1)[1].split("/", 1)[0]:
            # An asset URI is shown in the UI and stored with every asset event: never a password.
            raise ValueError("holds credentials (user:password@): an asset URI names the data, not how to log in")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Suite:
        given = [name for name in SOURCE_FIELDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(SOURCE_FIELDS)} (got {', '.join(given) or 'none'})")
        if self.files is None and not self.conn_id:
            raise LocatedError(("conn_id",), f"a {given[0]} source needs the conn_id of its database")
        duplicate = first_duplicate_id(self.checks)
        for index, check in enumerate(self.checks):
            if index == duplicate:
                raise LocatedError(("checks", index, "id"),
                                   f"duplicate check id {check.id!r}; give the checks distinct 'id's")
            self._fits_source(index, check)
        return self

    def _fits_source(self, index: int, check: CheckSpec) -> None:
        where = ("checks", index, "expectation")
        if self.files is not None and check.expectation in _DATABASE_ONLY:
            raise LocatedError(where, f"{check.expectation} needs a database source (table or query_file)")
        if self.query_file is not None and check.expectation == "schema":
            raise LocatedError(where, "a schema check needs a table or files source, not a query_file")
        if self.files is None and check.expectation == "freshness" and check.kwargs.column is None:
            raise LocatedError(("checks", index, "kwargs", "column"),
                               "freshness of a table or query needs the timestamp column")

    @property
    def source_kind(self) -> Literal["table", "query", "files"]:
        return "files" if self.files else ("query" if self.query_file else "table")

    @property
    def schema_name(self) -> str | None:
        return split_table_name(self.table)[0] if self.table else None

    @property
    def table_name(self) -> str | None:
        return split_table_name(self.table)[1] if self.table else None

    @property
    def query(self) -> str | None:
        return read_query(self.query_file) if self.query_file else None

    @property
    def dataset(self) -> str:
        """What the data is, for messages: ``estate_db:orders``, ``estate_db:query q.sql``, ``files /in/*.csv``."""
        if self.files is not None:  # as configured: an expanded $AIRFLOW_CONN_... would show its password
            return f"files {self.files.directory.rstrip('/')}/{self.files.pattern}"
        return f"{self.conn_id}:{self.table}" if self.table else f"{self.conn_id}:query {self.query_file}"

    def check(self, check_id: str) -> CheckSpec:
        return next(check for check in self.checks if check.id == check_id)


def load_suite(path: Path, known_connections: Iterable[str] | None = None, catalog: Catalog | None = None) -> Suite:
    """Read and validate one suite file; raise SuiteError naming file, line, check and field.

    ``known_connections`` defaults to those documented or set as AIRFLOW_CONN_*; with a
    ``catalog`` the suite's service must exist in it, and its owner defaults to the service's.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SuiteError(path, f"{path}: cannot read the suite: {error.strerror}") from error
    try:
        data = parse_config(path, raw)
    except ConfigError as error:
        raise SuiteError(path, str(error)) from None
    if not isinstance(data, dict):
        raise SuiteError(path, f"{path}: a suite must be a mapping with 'checks' (and conn_id, table, ...)")
    data = {"id": path.stem, **data} if data.get("id") is None else data
    try:
        suite = Suite.model_validate(data)
    except ValidationError as error:
        location, message = _first_error(error)
        # from None: pydantic's own text repeats the input, which may be a secret.
        raise SuiteError(path, describe(path, raw, data, location, message)) from None
    known = set(known_connection_ids() if known_connections is None else known_connections)
    if suite.conn_id is not None and suite.conn_id not in known:
        raise SuiteError(path, describe(path, raw, data, ("conn_id",), (
            f"unknown Connection {suite.conn_id!r}; define AIRFLOW_CONN_{suite.conn_id.upper()} "
            f"or document it in {paths.connections_doc_path()}")))
    if catalog is not None:
        services = {service.id: service for service in catalog.services}
        if suite.service not in services:
            raise SuiteError(path, describe(path, raw, data, ("service",), (
                f"unknown service {suite.service!r}; the catalog has {', '.join(sorted(services))}")))
        if suite.owner is None:
            suite = suite.model_copy(update={"owner": services[suite.service].owner})
    return suite


def load_suites(
    directory: Path | None = None, known_connections: Iterable[str] | None = None, catalog: Catalog | None = None
) -> tuple[list[Suite], list[SuiteError]]:
    """Every suite in ``directory`` that validates, and a SuiteError for each file that does not."""
    directory = Path(directory or quality_config_dir())
    known = set(known_connection_ids() if known_connections is None else known_connections)
    files = sorted({file for pattern in SUITE_FILE_PATTERNS for file in directory.glob(pattern) if file.is_file()})
    suites: list[Suite] = []
    errors: list[SuiteError] = []
    owners: dict[str, Path] = {}
    for path in files:
        try:
            suite = load_suite(path, known, catalog)
        except SuiteError as error:
            errors.append(error)
            continue
        if suite.id in owners:
            raw = path.read_bytes()
            data = parse_config(path, raw)
            where = ("id",) if isinstance(data, dict) and "id" in data else ()
            errors.append(SuiteError(path, describe(path, raw, data, where,
                                                    f"suite id {suite.id!r} is already used by {owners[suite.id]}")))
            continue
        owners[suite.id] = path
        suites.append(suite)
    return suites, errors


def _first_error(error: ValidationError) -> tuple[tuple, str]:
    first = error.errors()[0]
    location, message = tuple(first["loc"]), first["msg"].removeprefix("Value error, ")
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, LocatedError):
        location += cause.location
        message = str(cause)
    if first["type"] == "missing":
        message = "required but missing"
    elif first["type"] == "extra_forbidden":
        message = "unknown field (a typo?)"
    elif first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        location += ("expectation",)
        tag = (first.get("input") or {}).get("expectation") if isinstance(first.get("input"), dict) else None
        known = ", ".join(EXPECTATIONS)
        message = (f"unknown expectation {tag!r}; supported: {known}" if tag is not None
                   else f"give 'expectation': one of {known}")
    return location, message


def describe(path: Path, raw: bytes, data: Any, location: tuple, message: str) -> str:
    """``file (line N): checks[1] (id 'x') > kwargs > field 'min_value': message``."""
    labels, steps = location_labels(data, location, discriminator="expectation",
                                    ident_of=lambda check: check.get("id") or derive_check_id(check))
    line = line_of(raw, steps)
    where = f" (line {line})" if line else ""
    return f"{path}{where}: {labels or 'suite'}: {message}"
