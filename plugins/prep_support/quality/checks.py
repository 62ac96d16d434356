"""The checks a data-quality suite may hold: Great Expectations expectations and our own kinds.

A check names its ``expectation`` and gives ``kwargs``. For the Great Expectations (GX Core 1.x)
expectations the kwargs carry exactly GX's argument names and defaults, so a suite reads like
GX's documentation; each is validated by a model that refuses unknown arguments, so a typo fails
when the DAG parses instead of being ignored. Our own kinds (``freshness``, ``volume``,
``schema``, ``referential``, ``custom_sql``) use the same shape. Column and table names are SQL
identifiers checked against a strict pattern here, because the engines put them into SQL.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from prep_support import paths

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
CHECK_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$"
QUALITY_SQL_DIR = "quality"  # query files live under include/sql/quality/
INTERVAL_BINDS = frozenset({"data_interval_start", "data_interval_end"})
_BIND = re.compile(r"(?<![:\w\\]):(\w+)")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
# Statements a check must never run; a data-modifying WITH (PostgreSQL) is one of them.
_WRITE_WORD = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|UPSERT|DROP|ALTER|CREATE|TRUNCATE|GRANT|REVOKE|COPY"
                         r"|CALL|EXEC|EXECUTE|ATTACH|DETACH|PRAGMA|VACUUM|REINDEX|LOCK|INTO)\b", re.IGNORECASE)


def check_identifier(value: str) -> str:
    """A column, table or schema name fit to go into SQL: letters, digits, underscore, at most 63."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an accepted SQL identifier: use letters, digits and underscores, "
            "starting with a letter or underscore, at most 63 characters"
        )
    return value


def split_table_name(value: str) -> tuple[str | None, str]:
    """``schema.table`` or ``table`` as (schema, table), each part a checked identifier."""
    parts = value.split(".") if isinstance(value, str) else [value]
    if len(parts) > 2:
        raise ValueError(f"{value!r} is not a table name: give 'table' or 'schema.table'")
    for part in parts:
        check_identifier(part)
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _table_name(value: str) -> str:
    split_table_name(value)
    return value


SqlIdentifier = Annotated[str, AfterValidator(check_identifier)]
TableName = Annotated[str, AfterValidator(_table_name)]
CheckId = Annotated[str, Field(pattern=CHECK_ID_PATTERN, max_length=200)]
Comparable = int | float | datetime | date | str
Scalar = bool | int | float | str | None

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)")
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: Any) -> timedelta:
    """``"26h"``, ``"1d12h"``, ``"90m"``, ``"45s"`` or a number of seconds, as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower()
        position, seconds = 0, 0.0
        for match in _DURATION.finditer(text):
            if text[position:match.start()].strip():
                break
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            position = match.end()
        else:
            if position and not text[position:].strip() and seconds > 0:
                return timedelta(seconds=seconds)
    raise ValueError(f"{value!r} is not a duration: write e.g. '26h', '1d12h', '90m' or a number of seconds")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def query_file_path(value: str) -> Path:
    """The query file ``value`` under include/sql/quality/, refused if it escapes that folder."""
    root = (paths.SQL_DIR / QUALITY_SQL_DIR).resolve()
    path = (root / value).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"query_file must stay under {root}")
    return path


def check_query_file(value: str) -> str:
    """A readable, single-statement SELECT whose only binds are the data interval's."""
    path = query_file_path(value)
    if not path.is_file():
        raise ValueError(f"no such query file: {path}")
    query = strip_sql(path.read_text())
    if not query:
        raise ValueError(f"{path} is empty")
    if ";" in query:
        raise ValueError(f"{path} must hold a single statement (found ';')")
    words = _QUOTED.sub(" ", query)
    first = re.match(r"\s*\(*\s*(\w+)", words)
    if first is None or first[1].upper() not in ("SELECT", "WITH"):
        raise ValueError(f"{path} must be a single SELECT (or WITH ... SELECT) statement")
    writes = sorted({word.upper() for word in _WRITE_WORD.findall(words)})
    if writes:
        raise ValueError(f"{path} must only read: it uses {', '.join(writes)}")
    unknown = sorted(set(_BIND.findall(query)) - INTERVAL_BINDS)
    if unknown:
        raise ValueError(f"{path} uses unknown bind(s) {', '.join(':' + name for name in unknown)}; "
                         "only :data_interval_start and :data_interval_end are given")
    return value


def strip_sql(text: str) -> str:
    """The statement without comments, surrounding blanks and a trailing semicolon.

    Comments go because the statement is wrapped in a subquery (a trailing ``--`` comment would
    swallow the closing parenthesis) and because SQLAlchemy would read ``:word`` in them as a bind.
    """
    kept: list[str] = []
    position, quote = 0, None
    while position < len(text):
        char = text[position]
        if quote:
            kept.append(char)
            quote = None if char == quote else quote
        elif char in "'\"":
            kept.append(char)
            quote = char
        elif text.startswith("--", position):
            end = text.find("\n", position)
            position = len(text) if end < 0 else end
            continue
        elif text.startswith("/*", position):
            end = text.find("*/", position + 2)
            position = len(text) if end < 0 else end + 2
            kept.append(" ")
            continue
        else:
            kept.append(char)
        position += 1
    return "".join(kept).strip().rstrip(";").strip()


def read_query(value: str) -> str:
    return strip_sql(query_file_path(value).read_text())


class _Kwargs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns of the checked dataset this check reads."""
        column = getattr(self, "column", None)
        return (column,) if column else ()


Mostly = Annotated[float, Field(ge=0, le=1)]


class ColumnKwargs(_Kwargs):
    column: SqlIdentifier
    mostly: Mostly = 1.0


def _ordered(min_value: Any, max_value: Any) -> None:
    try:
        wrong = min_value is not None and max_value is not None and min_value > max_value
    except TypeError as error:
        raise ValueError("min_value and max_value must be of comparable types") from error
    if wrong:
        raise ValueError("min_value cannot be greater than max_value")


class BetweenKwargs(ColumnKwargs):
    min_value: Comparable | None = None
    max_value: Comparable | None = None
    strict_min: bool = False
    strict_max: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> BetweenKwargs:
        if self.min_value is None and self.max_value is None:
            raise ValueError("min_value and max_value cannot both be None")
        _ordered(self.min_value, self.max_value)
        return self


class InSetKwargs(ColumnKwargs):
    value_set: list[Scalar]


class RegexKwargs(ColumnKwargs):
    regex: str = Field(min_length=1)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"regex {value!r} does not compile: {error}") from error
        return value


class RowCountKwargs(_Kwargs):
    min_value: Annotated[int, Field(ge=0)] | None = None
    max_value: Annotated[int, Field(ge=0)] | None = None
    strict_min: bool = False
    strict_max: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> RowCountKwargs:
        _ordered(self.min_value, self.max_value)
        return self


class AggregateKwargs(_Kwargs):
    """min, max or mean of a column between bounds (either may be left out)."""

    column: SqlIdentifier
    min_value: Comparable | None = None
    max_value: Comparable | None = None
    strict_min: bool = False
    strict_max: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> AggregateKwargs:
        _ordered(self.min_value, self.max_value)
        return self


class PairKwargs(_Kwargs):
    column_A: SqlIdentifier  # noqa: N815 - GX's argument name
    column_B: SqlIdentifier  # noqa: N815 - GX's argument name
    or_equal: bool | None = None
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = (
        "both_values_are_missing"
    )
    mostly: Mostly = 1.0

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column_A, self.column_B)


class CompoundKwargs(_Kwargs):
    column_list: list[SqlIdentifier] = Field(min_length=1)
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "all_values_are_missing"
    mostly: Mostly = 1.0

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.column_list)


class FreshnessKwargs(_Kwargs):
    """The newest value of ``column`` (or, for files without a column, the newest file's mtime)."""

    column: SqlIdentifier | None = None
    max_age: Duration


class VolumeKwargs(_Kwargs):
    """Row count within a band learned from the last ``window`` intervals' recorded counts.

    ``mad``: median ± max(k·MAD, min_spread·median), MAD the median absolute deviation.
    ``factor``: [min_factor·min(history), max_factor·max(history)].
    With fewer than ``min_history`` counts the check passes and says so.
    """

    window: int = Field(default=14, ge=1, le=1000)
    min_history: int = Field(default=5, ge=1)
    method: Literal["mad", "factor"] = "mad"
    k: float = Field(default=3.0, gt=0)
    min_spread: float = Field(default=0.1, ge=0)
    min_factor: float = Field(default=0.5, ge=0, le=1)
    max_factor: float = Field(default=2.0, ge=1)

    @model_validator(mode="after")
    def _enough_window(self) -> VolumeKwargs:
        if self.min_history > self.window:
            raise ValueError("min_history cannot exceed window")
        return self


class SchemaKwargs(_Kwargs):
    """Expected columns and their types (``null`` for any type); ``allow_extra`` tolerates more columns."""

    columns_expected: dict[SqlIdentifier, str | None] = Field(alias="columns", min_length=1)
    allow_extra: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return ()  # a schema check reports missing columns itself


class ReferentialKwargs(_Kwargs):
    """Every non-null ``column`` value exists in ``to`` (``table.column`` or ``schema.table.column``)."""

    column: SqlIdentifier
    to: str
    mostly: Mostly = 1.0

    @field_validator("to")
    @classmethod
    def _target(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) not in (2, 3):
            raise ValueError(f"{value!r} is not a reference: give 'table.column' or 'schema.table.column'")
        for part in parts:
            check_identifier(part)
        return value

    @property
    def target(self) -> tuple[str | None, str, str]:
        """(schema, table, column) of the referenced key."""
        parts = self.to.split(".")
        return (None, *parts) if len(parts) == 2 else tuple(parts)  # type: ignore[return-value]


class CustomSqlKwargs(_Kwargs):
    """A query file (under include/sql/quality/) returning the bad rows; at most ``max_unexpected`` pass."""

    query_file: Annotated[str, AfterValidator(check_query_file)]
    max_unexpected: int = Field(default=0, ge=0)

    @property
    def query(self) -> str:
        return read_query(self.query_file)


def derive_check_id(data: dict[str, Any]) -> str:
    """``expectation`` plus the columns (or query file) it looks at, e.g. ``freshness.created_at``."""
    expectation = str(data.get("expectation") or "check")
    kwargs = data.get("kwargs") if isinstance(data.get("kwargs"), dict) else {}
    parts: list[Any] = [kwargs.get(key) for key in ("column", "column_A", "column_B")]
    if isinstance(kwargs.get("column_list"), list):
        parts += kwargs["column_list"]
    if isinstance(kwargs.get("query_file"), str):
        parts.append(Path(kwargs["query_file"]).stem)
    names = [part for part in parts if isinstance(part, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", part)]
    return ".".join([expectation, *names])


class CheckSpec(BaseModel):
    """One check of a suite. Subclasses fix ``expectation`` and the model of ``kwargs``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: CheckId
    expectation: str
    description: str = ""
    severity: Literal["warn", "fail"] = "fail"
    kwargs: Any

    # Row-level checks count unexpected rows and can show a sample of them.
    row_level: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("id") is None:
            data = {**data, "id": derive_check_id(data)}
        return data

    @property
    def columns(self) -> tuple[str, ...]:
        return self.kwargs.columns


class NotNull(CheckSpec):
    expectation: Literal["expect_column_values_to_not_be_null"]
    kwargs: ColumnKwargs
    row_level: ClassVar[bool] = True


class Unique(CheckSpec):
    expectation: Literal["expect_column_values_to_be_unique"]
    kwargs: ColumnKwargs
    row_level: ClassVar[bool] = True


class Between(CheckSpec):
    expectation: Literal["expect_column_values_to_be_between"]
    kwargs: BetweenKwargs
    row_level: ClassVar[bool] = True


class InSet(CheckSpec):
    expectation: Literal["expect_column_values_to_be_in_set"]
    kwargs: InSetKwargs
    row_level: ClassVar[bool] = True


class MatchRegex(CheckSpec):
    expectation: Literal["expect_column_values_to_match_regex"]
    kwargs: RegexKwargs
    row_level: ClassVar[bool] = True


class RowCount(CheckSpec):
    expectation: Literal["expect_table_row_count_to_be_between"]
    kwargs: RowCountKwargs = RowCountKwargs()


class PairGreater(CheckSpec):
    expectation: Literal["expect_column_pair_values_a_to_be_greater_than_b"]
    kwargs: PairKwargs
    row_level: ClassVar[bool] = True


class CompoundUnique(CheckSpec):
    expectation: Literal["expect_compound_columns_to_be_unique"]
    kwargs: CompoundKwargs
    row_level: ClassVar[bool] = True


class ColumnMin(CheckSpec):
    expectation: Literal["expect_column_min_to_be_between"]
    kwargs: AggregateKwargs


class ColumnMax(CheckSpec):
    expectation: Literal["expect_column_max_to_be_between"]
    kwargs: AggregateKwargs


class ColumnMean(CheckSpec):
    expectation: Literal["expect_column_mean_to_be_between"]
    kwargs: AggregateKwargs


class Freshness(CheckSpec):
    expectation: Literal["freshness"]
    kwargs: FreshnessKwargs


class Volume(CheckSpec):
    expectation: Literal["volume"]
    kwargs: VolumeKwargs = VolumeKwargs()


class Schema(CheckSpec):
    expectation: Literal["schema"]
    kwargs: SchemaKwargs


class Referential(CheckSpec):
    expectation: Literal["referential"]
    kwargs: ReferentialKwargs
    row_level: ClassVar[bool] = True


class CustomSql(CheckSpec):
    expectation: Literal["custom_sql"]
    kwargs: CustomSqlKwargs
    row_level: ClassVar[bool] = True


GX_EXPECTATIONS: dict[str, type[CheckSpec]] = {
    "expect_column_values_to_not_be_null": NotNull,
    "expect_column_values_to_be_unique": Unique,
    "expect_column_values_to_be_between": Between,
    "expect_column_values_to_be_in_set": InSet,
    "expect_column_values_to_match_regex": MatchRegex,
    "expect_table_row_count_to_be_between": RowCount,
    "expect_column_pair_values_a_to_be_greater_than_b": PairGreater,
    "expect_compound_columns_to_be_unique": CompoundUnique,
    "expect_column_min_to_be_between": ColumnMin,
    "expect_column_max_to_be_between": ColumnMax,
    "expect_column_mean_to_be_between": ColumnMean,
}
OUR_KINDS: dict[str, type[CheckSpec]] = {
    "freshness": Freshness,
    "volume": Volume,
    "schema": Schema,
    "referential": Referential,
    "custom_sql": CustomSql,
}
EXPECTATIONS = (*GX_EXPECTATIONS, *OUR_KINDS)

AnyCheck = Annotated[
    NotNull | Unique | Between | InSet | MatchRegex | RowCount | PairGreater | CompoundUnique | ColumnMin
    | ColumnMax | ColumnMean | Freshness | Volume | Schema | Referential | CustomSql,
    Field(discriminator="expectation"),
]
