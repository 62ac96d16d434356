"""The rows a suite checks on a database: its table or query, narrowed to the data interval.

Names from the config were checked against a strict pattern when the suite loaded; here they go
into SQLAlchemy Core constructs (``table()``, ``column()``), whose compiler quotes them with the
dialect's identifier preparer, while every value (interval bounds, thresholds, value sets) is a
bound parameter. Columns are looked up in the database first, so a missing table or column is
reported by name instead of as a driver error halfway through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError

from prep_support.probes import interval_params
from prep_support.quality.checks import INTERVAL_BINDS
from prep_support.quality.config import Suite
from prep_support.quality.outcomes import QualityError


def interval_binds(dialect: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Bind values for the interval: UTC text 'YYYY-MM-DD HH:MM:SS' on SQLite, timestamps elsewhere."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("the data interval must be timezone-aware (Airflow's data_interval_start/end are)")
    return interval_params(dialect, start.astimezone(UTC), end.astimezone(UTC))


def bound_text(query: str, binds: dict[str, Any]) -> sa.TextClause:
    """A query file's text with the interval binds it uses (and only those) attached."""
    statement = sa.text(query)
    used = {name: binds[name] for name in INTERVAL_BINDS if name in statement.compile().params}
    return statement.bindparams(**used) if used else statement


@dataclass
class Source:
    """The checked rows: ``selectable`` filtered by ``interval`` (None for whole-table suites)."""

    suite: Suite
    selectable: sa.FromClause
    types: dict[str, str]  # column -> type as the database declares it ("" when unknown, e.g. a query)
    binds: dict[str, Any]
    start: datetime
    end: datetime
    # Column sets the database keeps unique (primary key, unique constraints, plain unique indexes).
    unique_keys: list[frozenset[str]] = field(default_factory=list)

    @property
    def column_names(self) -> list[str]:
        return list(self.types)

    def column(self, name: str) -> sa.ColumnElement[Any]:
        """The source's column called ``name`` (case-insensitively, as SQL matches unquoted names)."""
        return self.selectable.c[self.actual_name(name)]

    def actual_name(self, name: str) -> str:
        if name in self.types:
            return name
        for actual in self.types:
            if actual.lower() == name.lower():
                return actual
        raise KeyError(name)

    @property
    def interval(self) -> sa.ColumnElement[bool] | None:
        if self.suite.partition_column is None:
            return None
        column = self.column(self.suite.partition_column)
        return sa.and_(column >= sa.literal(self.binds["data_interval_start"]),
                       column < sa.literal(self.binds["data_interval_end"]))

    def before_end(self, name: str) -> sa.ColumnElement[bool]:
        return self.column(name) < sa.literal(self.binds["data_interval_end"])

    def rows(self, *where: sa.ColumnElement[bool] | None) -> list[sa.ColumnElement[bool]]:
        """The interval filter plus ``where``, ready for ``Select.where(*...)``."""
        return [condition for condition in (self.interval, *where) if condition is not None]


def open_source(connection: Connection, suite: Suite, start: datetime, end: datetime) -> Source:
    """Look up the suite's table (or run its query for no rows) and check every column it names exists."""
    binds = interval_binds(connection.dialect.name, start, end)
    if suite.table is not None:
        types = table_columns(connection, suite, suite.schema_name, suite.table_name)
        selectable: sa.FromClause = sa.table(suite.table_name, *(sa.column(name) for name in types),
                                             schema=suite.schema_name)
    else:
        query = bound_text(suite.query or "", binds)
        probe = sa.select(sa.text("*")).select_from(query.columns().subquery("src")).limit(0)
        names = list(connection.execute(probe).keys())
        types = dict.fromkeys(names, "")
        selectable = query.columns(*(sa.column(name) for name in names)).subquery("src")
    source = Source(suite, selectable, types, binds, start.astimezone(UTC), end.astimezone(UTC))
    _require_columns(source)
    if suite.table is not None and any(check.expectation in _UNIQUENESS for check in suite.checks):
        source.unique_keys = unique_keys(connection, suite.schema_name, suite.table_name or "")
    return source


_UNIQUENESS = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")


# On PostgreSQL every primary key and unique constraint is a unique index: one catalog query finds
# them all, where the inspector's primary key, unique constraint and index lookups take five.
# INCLUDE columns (past indnkeyatts) are carried, not kept unique; an invalid index (a failed
# CREATE INDEX CONCURRENTLY) enforces nothing.
_POSTGRES_UNIQUE_KEYS = sa.text("""
SELECT array_agg(CAST(a.attname AS text) ORDER BY k.position) AS columns
FROM pg_catalog.pg_index AS i
CROSS JOIN LATERAL unnest(CAST(i.indkey AS int2[])) WITH ORDINALITY AS k(attnum, position)
JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass(concat_ws('.', quote_ident(:schema), quote_ident(:table)))
  AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL AND k.position <= i.indnkeyatts
GROUP BY i.indexrelid
""")


def unique_keys(connection: Connection, schema: str | None, table: str) -> list[frozenset[str]]:
    """Column sets the database guarantees unique, so a uniqueness check on them needs no GROUP BY.

    Partial and expression indexes guarantee nothing about the whole table and are left out.
    """
    if connection.dialect.name == "postgresql":
        found = connection.execute(_POSTGRES_UNIQUE_KEYS, {"schema": schema, "table": table}).scalars()
        return [frozenset(name.lower() for name in key) for key in found]
    inspector = sa.inspect(connection)
    keys = [inspector.get_pk_constraint(table, schema=schema).get("constrained_columns") or []]
    keys += [constraint["column_names"] for constraint in inspector.get_unique_constraints(table, schema=schema)]
    for index in inspector.get_indexes(table, schema=schema):
        partial = any(key.endswith("_where") and value is not None
                      for key, value in (index.get("dialect_options") or {}).items())
        if index.get("unique") and not partial and not index.get("expressions"):
            keys.append(index["column_names"])
    return [frozenset(name.lower() for name in key) for key in keys if key and None not in key]


def table_columns(connection: Connection, suite: Suite, schema: str | None, table: str) -> dict[str, str]:
    """Column -> declared type of a table; QualityError when the table does not exist."""
    try:
        columns = sa.inspect(connection).get_columns(table, schema=schema)
    except NoSuchTableError:
        columns = []
    if not columns:
        name = f"{schema}.{table}" if schema else table
        raise QualityError(suite, f"table {name!r} does not exist")
    return {column["name"]: _type_name(column["type"], connection.dialect) for column in columns}


def _type_name(kind: Any, dialect: sa.Dialect) -> str:
    try:
        return kind.compile(dialect=dialect)
    except Exception:  # a type the dialect cannot render (SQLite's NullType): its Python name will do
        return str(kind) if not isinstance(kind, sa.types.NullType) else ""


def _require_columns(source: Source) -> None:
    suite = source.suite
    needed: dict[str, list[str]] = {}
    if suite.partition_column:
        needed.setdefault(suite.partition_column, []).append("partition_column")
    for check in suite.checks:
        for name in check.columns:
            needed.setdefault(name, []).append(f"check {check.id!r}")
    missing = []
    for name, users in needed.items():
        try:
            source.actual_name(name)
        except KeyError:
            missing.append(f"{name!r} (used by {', '.join(users)})")
    if missing:
        raise QualityError(suite, f"column(s) missing from the dataset: {'; '.join(missing)}; "
                                  f"it has {', '.join(source.column_names)}")
