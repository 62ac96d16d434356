"""Each check as SQL: what it adds to the suite's single pass, and how its outcome is finished.

:class:`MainPass` collects one aggregate per row-level check (``count(*) FILTER (WHERE ...)`` on
PostgreSQL, ``SUM(CASE WHEN ... THEN 1 ELSE 0 END)`` on SQLite), the non-null counts, min, max
and avg, all computed in ONE scan of the interval's rows. Checks that need a different shape
(uniqueness: a GROUP BY; referential: an anti-join; freshness; custom SQL) run one query each in
``finish``. The unexpected conditions copy Great Expectations' SQL: a row is unexpected when
``NOT (expected)`` is true, so a NULL comparison counts as expected, and column map checks only
look at non-null values.

Failing rows are sampled without a second look at the interval when the pass can locate them: on
PostgreSQL, for a table slice the planner expects to hold at most ``LOCATE_UP_TO`` rows (a day's
interval), each map check is counted as the array of its failing rows' ``ctid`` (one aggregate
gives the count and the first 20 locations, so the condition is evaluated once per row), and its
sample is then read by TID. Otherwise each failing check's sample is a LIMITed query of its own,
which on a day's slice scanned the whole day again per check (a regex then costs as much as the
pass). Bigger slices keep the plain counts: the arrays grow with the failing rows, and PostgreSQL
15's ``array_agg`` cannot be computed by parallel workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from prep_support.quality import checks as spec
from prep_support.quality.judge import (
    freshness_result,
    is_between,
    map_result,
    not_null_result,
    schema_diff,
    volume_result,
)
from prep_support.quality.outcomes import SAMPLE_SIZE, CheckOutcome, QualityError, jsonable
from prep_support.quality.sql_source import Source, bound_text

Run = Callable[[sa.Executable], sa.CursorResult[Any]]


LOCATE_UP_TO = 100_000  # rows (planner's estimate) up to which the pass locates failing rows
_CTID = sa.literal_column("ctid")
_NAMED_BINDS = postgresql.psycopg2.dialect(paramstyle="named")  # :name binds for text(), and no bind casts


class MainPass:
    """The aggregates of the suite's one pass over its interval's rows, deduplicated by key."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.expressions: dict[str, sa.Label[Any]] = {}
        self.locatable: dict[str, sa.ColumnElement[bool]] = {}  # count label -> condition whose rows can be located
        self.locating = False  # whether the statement locates them: decided by statement()

    def add(self, key: str, expression: sa.ColumnElement[Any]) -> str:
        if key not in self.expressions:
            self.expressions[key] = expression.label(f"a{len(self.expressions)}")
        return self.expressions[key].name

    def count_where(self, key: str, condition: sa.ColumnElement[bool], locatable: bool = False) -> str:
        """The label of the number of rows where ``condition`` holds; ``locatable``: their sample may be located."""
        if self.dialect == "postgresql":
            label = self.add(key, sa.func.count().filter(condition))
            if locatable:
                self.locatable[label] = condition
            return label
        one, zero = sa.literal_column("1"), sa.literal_column("0")
        return self.add(key, sa.func.coalesce(sa.func.sum(sa.case((condition, one), else_=zero)), zero))

    def can_locate(self, source: Source) -> bool:
        """Whether located samples are possible: a PostgreSQL table (rows have a ctid) and a condition to locate."""
        return bool(self.locatable) and self.dialect == "postgresql" and source.suite.table is not None

    def estimate(self, source: Source) -> sa.TextClause:
        """EXPLAIN of the checked slice (nothing is read): its row estimate is for :meth:`few_rows`."""
        probe = sa.select(sa.literal_column("1")).select_from(source.selectable).where(*source.rows())
        compiled = probe.compile(dialect=_NAMED_BINDS)
        return sa.text(f"EXPLAIN (FORMAT JSON) {compiled}").bindparams(**compiled.params)

    @staticmethod
    def few_rows(plan: Any) -> bool:
        """Whether :meth:`estimate`'s plan expects at most LOCATE_UP_TO rows, so locating them is cheap."""
        return float(plan[0]["Plan"]["Plan Rows"]) <= LOCATE_UP_TO

    def located(self, label: str, values: Mapping[str, Any]) -> list[str] | None:
        """The ctids of the first SAMPLE_SIZE rows counted under ``label``, when the pass located them."""
        return (values[f"{label}_at"] or []) if self.locating and label in self.locatable else None

    def rows(self) -> str:
        return self.add("rows", sa.func.count())

    def non_null(self, column: sa.ColumnElement[Any]) -> str:
        return self.add(f"non_null:{column.name}", sa.func.count(column))

    def statement(self, source: Source, locate: bool = False) -> sa.Select[Any]:
        """The pass; with ``locate`` (see :meth:`can_locate`) it also gives each locatable count's first ctids."""
        self.locating = locate and self.can_locate(source)
        columns = list(self.expressions.values())
        if self.locating:
            columns = [self._located_count(label) if label.name in self.locatable else label for label in columns]
            columns += [self._first_rows(label) for label in self.locatable]
        return sa.select(*columns).select_from(source.selectable).where(*source.rows())

    def _rows_where(self, label: str) -> sa.ColumnElement[Any]:
        # Written alike in the count and the sample, PostgreSQL computes the aggregate once for both.
        return sa.type_coerce(sa.func.array_agg(sa.cast(_CTID, sa.Text)).filter(self.locatable[label]),
                              postgresql.ARRAY(sa.Text))

    def _located_count(self, label: sa.Label[Any]) -> sa.Label[Any]:
        return sa.func.coalesce(sa.func.cardinality(self._rows_where(label.name)), 0).label(label.name)

    def _first_rows(self, label: str) -> sa.Label[Any]:
        return self._rows_where(label)[1:SAMPLE_SIZE].label(f"{label}_at")


@dataclass
class Plan:
    """A check's part of the pass, how to turn the pass's row into an outcome, and its failing rows."""

    check: spec.CheckSpec
    finish: Callable[[Mapping[str, Any], Run], CheckOutcome]
    unexpected_rows: Callable[[], sa.Select[Any] | None] = lambda: None
    # After finish: the ctids of the sample's rows when the pass (or the check's own query) found
    # them, so that every located sample is read in one statement; None: query unexpected_rows().
    located: Callable[[], list[str] | None] = lambda: None


@dataclass
class Context:
    source: Source
    main: MainPass
    volume_history: Mapping[str, list[int]]
    # (schema, table) -> {column: type} of another table (referential checks); raises when it is missing
    lookup_table: Callable[[str | None, str], dict[str, str]]

    def sample_of(self, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
        return sa.select(*self._columns()).where(*self.source.rows(*where)).limit(SAMPLE_SIZE)

    def rows_at(self, located: list[str]) -> sa.Select[Any]:
        """The rows at the ``located`` ctids (a TID scan), each after its ctid as text."""
        at = sa.text("ctid = ANY(CAST(:located AS tid[]))").bindparams(located=located)
        return sa.select(sa.cast(_CTID, sa.Text), *self._columns()).where(at)

    def _columns(self) -> list[sa.ColumnElement[Any]]:
        return [self.source.selectable.c[name] for name in self.source.column_names]


def plan_check(check: spec.CheckSpec, context: Context) -> Plan:
    return _PLANNERS[type(check)](check, context)


def _map_plan(check: spec.CheckSpec, context: Context, considered: str, unexpected: sa.ColumnElement[bool],
              not_null: bool = False) -> Plan:
    """A map check counted in the main pass: unexpected rows among ``considered`` ones."""
    main = context.main
    label = main.count_where(f"unexpected:{check.id}", unexpected, locatable=True)
    rows = main.rows()
    located: list[list[str] | None] = [None]  # filled by finish, read by unexpected_rows

    def finish(values: Mapping[str, Any], _run: Run) -> CheckOutcome:
        located[0] = main.located(label, values)
        count, elements = int(values[label]), int(values[rows])
        if not_null:
            success, percent = not_null_result(elements, count, check.kwargs.mostly)
        else:
            success, percent = map_result(int(values[considered]), count, check.kwargs.mostly)
        return CheckOutcome.of(check, success, observed_value=percent, unexpected_count=count,
                               element_count=elements, unexpected_percent=percent)

    return Plan(check, finish, lambda: context.sample_of(unexpected), lambda: located[0])


def _not_null(check: spec.NotNull, context: Context) -> Plan:
    column = context.source.column(check.kwargs.column)
    return _map_plan(check, context, context.main.rows(), column.is_(None), not_null=True)


def _column_values(check: spec.CheckSpec, context: Context, expected: sa.ColumnElement[bool]) -> Plan:
    column = context.source.column(check.kwargs.column)
    considered = context.main.non_null(column)
    return _map_plan(check, context, considered, sa.and_(column.is_not(None), sa.not_(expected)))


def _between(check: spec.Between, context: Context) -> Plan:
    kwargs = check.kwargs
    column = context.source.column(kwargs.column)
    bounds = []
    if kwargs.min_value is not None:
        bound = sa.literal(kwargs.min_value)
        bounds.append(column > bound if kwargs.strict_min else column >= bound)
    if kwargs.max_value is not None:
        bound = sa.literal(kwargs.max_value)
        bounds.append(column < bound if kwargs.strict_max else column <= bound)
    return _column_values(check, context, sa.and_(*bounds))


def _in_set(check: spec.InSet, context: Context) -> Plan:
    column = context.source.column(check.kwargs.column)
    # GX drops None from the set (NULL rows are not considered anyway); an empty set expects nothing.
    values = [value for value in check.kwargs.value_set if value is not None]
    return _column_values(check, context, column.in_(values) if values else sa.false())


def _regex(check: spec.MatchRegex, context: Context) -> Plan:
    column = context.source.column(check.kwargs.column)
    # As text, like GX's pandas engine (astype(str)); PostgreSQL's `~` would refuse a number.
    return _column_values(check, context, sa.cast(column, sa.Text).regexp_match(check.kwargs.regex))


def _pair(check: spec.PairGreater, context: Context) -> Plan:
    kwargs = check.kwargs
    a, b = context.source.column(kwargs.column_A), context.source.column(kwargs.column_B)
    kept = {
        "both_values_are_missing": sa.not_(sa.and_(a.is_(None), b.is_(None))),
        "either_value_is_missing": sa.and_(a.is_not(None), b.is_not(None)),
        "neither": None,
    }[kwargs.ignore_row_if]
    expected = sa.or_(a >= b, sa.and_(a.is_(None), b.is_(None))) if kwargs.or_equal else a > b
    main = context.main
    considered = main.rows() if kept is None else main.count_where(f"considered:{check.id}", kept)
    unexpected = sa.not_(expected) if kept is None else sa.and_(kept, sa.not_(expected))
    return _map_plan(check, context, considered, unexpected)


def _aggregate(check: spec.CheckSpec, context: Context) -> Plan:
    kwargs = check.kwargs
    column = context.source.column(kwargs.column)
    name = {"expect_column_min_to_be_between": "min", "expect_column_max_to_be_between": "max",
            "expect_column_mean_to_be_between": "avg"}[check.expectation]
    label = context.main.add(f"{name}:{column.name}", getattr(sa.func, name)(column))
    rows = context.main.rows()

    def finish(values: Mapping[str, Any], _run: Run) -> CheckOutcome:
        value = values[label]
        if check.expectation == "expect_column_mean_to_be_between" and value is not None:
            value = float(value)
        success = is_between(value, kwargs.min_value, kwargs.max_value, kwargs.strict_min, kwargs.strict_max)
        return CheckOutcome.of(check, success, observed_value=jsonable(value), element_count=int(values[rows]))

    return Plan(check, finish)


def _row_count(check: spec.RowCount, context: Context) -> Plan:
    kwargs = check.kwargs
    rows = context.main.rows()

    def finish(values: Mapping[str, Any], _run: Run) -> CheckOutcome:
        count = int(values[rows])
        success = is_between(count, kwargs.min_value, kwargs.max_value, kwargs.strict_min, kwargs.strict_max)
        return CheckOutcome.of(check, success, observed_value=count, element_count=count)

    return Plan(check, finish)


def _volume(check: spec.Volume, context: Context) -> Plan:
    rows = context.main.rows()

    def finish(values: Mapping[str, Any], _run: Run) -> CheckOutcome:
        count = int(values[rows])
        success, details = volume_result(count, context.volume_history.get(check.id), check.kwargs)
        return CheckOutcome.of(check, success, observed_value=count, element_count=count, details=details)

    return Plan(check, finish)


def _duplicates(check: spec.CheckSpec, context: Context, names: list[str],
                kept: sa.ColumnElement[bool] | None) -> Plan:
    """Rows whose (non-null) key occurs more than once, counted like GX: every row of such a group.

    One GROUP BY gives the total (a window sum over the duplicated groups) and up to 20 of the
    duplicated keys, from which the sample rows are then picked (min/max(ctid) per group would
    locate them, but cost the GROUP BY more than the scan for the keys). When the database keeps a subset
    of the columns unique (primary key, unique constraint or index) the answer is 0 without a scan;
    a compound key with a NULL part never counts, so a unique subset suffices.
    """
    columns = [context.source.column(name) for name in names]
    main = context.main
    considered = main.non_null(columns[0]) if kept is None else main.count_where(f"considered:{check.id}", kept)
    rows = main.rows()
    duplicated_keys: list[tuple[Any, ...]] = []  # filled by finish, read by unexpected_rows
    guaranteed = next((key for key in context.source.unique_keys if key <= {name.lower() for name in names}), None)

    def finish(values: Mapping[str, Any], run: Run) -> CheckOutcome:
        if guaranteed is not None:  # a unique key within the columns: no duplicate can exist
            success, percent = map_result(int(values[considered]), 0, check.kwargs.mostly)
            return CheckOutcome.of(check, success, observed_value=percent, unexpected_count=0,
                                   element_count=int(values[rows]), unexpected_percent=percent,
                                   details={"unique_key": sorted(guaranteed)})
        keys = [column.label(f"k{index}") for index, column in enumerate(columns)]
        groups = (sa.select(*keys, sa.func.count().label("n"))
                  .where(*context.source.rows(*(column.is_not(None) for column in columns)))
                  .group_by(*columns).having(sa.func.count() > 1).subquery("duplicated"))
        found = run(sa.select(*(groups.c[key.name] for key in keys), sa.func.sum(groups.c.n).over().label("total"))
                    .limit(SAMPLE_SIZE)).all()
        count = int(found[0].total) if found else 0
        duplicated_keys[:] = [tuple(row[:-1]) for row in found]
        success, percent = map_result(int(values[considered]), count, check.kwargs.mostly)
        return CheckOutcome.of(check, success, observed_value=percent, unexpected_count=count,
                               element_count=int(values[rows]), unexpected_percent=percent)

    def unexpected_rows() -> sa.Select[Any] | None:
        if not duplicated_keys:
            return None
        if len(columns) == 1:  # IN (...) is a hashed lookup on PostgreSQL, OR-ed equalities are not
            return context.sample_of(columns[0].in_([key[0] for key in duplicated_keys]))
        matches = [sa.and_(*(column == value for column, value in zip(columns, key, strict=True)))
                   for key in duplicated_keys]
        return context.sample_of(sa.or_(*matches))

    return Plan(check, finish, unexpected_rows)


def _unique(check: spec.Unique, context: Context) -> Plan:
    return _duplicates(check, context, [check.kwargs.column], None)


def _compound(check: spec.CompoundUnique, context: Context) -> Plan:
    kwargs = check.kwargs
    columns = [context.source.column(name) for name in kwargs.column_list]
    kept = {
        "all_values_are_missing": sa.not_(sa.and_(*(column.is_(None) for column in columns))),
        "any_value_is_missing": sa.and_(*(column.is_not(None) for column in columns)),
        "never": sa.true(),
    }[kwargs.ignore_row_if]
    # GX's SQL joins the group counts back on equality, so a row with any NULL key never matches.
    return _duplicates(check, context, list(kwargs.column_list), kept)


def _freshness(check: spec.Freshness, context: Context) -> Plan:
    source = context.source
    column = source.column(check.kwargs.column)

    def finish(_values: Mapping[str, Any], run: Run) -> CheckOutcome:
        # Rows up to the interval's end, not only inside it: a backfilled day is judged as it was then.
        newest = run(sa.select(sa.func.max(column)).where(source.before_end(check.kwargs.column))).scalar()
        success, details = freshness_result(newest, source.end, check.kwargs.max_age)
        return CheckOutcome.of(check, success, observed_value=jsonable(newest), details=details)

    return Plan(check, finish)


def _schema(check: spec.Schema, context: Context) -> Plan:
    def finish(_values: Mapping[str, Any], _run: Run) -> CheckOutcome:
        actual = context.source.types
        success, diff = schema_diff(check.kwargs.columns_expected, actual, check.kwargs.allow_extra)
        return CheckOutcome.of(check, success, observed_value=dict(actual), details=diff)

    return Plan(check, finish)


def _referential(check: spec.Referential, context: Context) -> Plan:
    kwargs = check.kwargs
    schema, table, key = kwargs.target
    columns = context.lookup_table(schema, table)
    actual = next((name for name in columns if name.lower() == key.lower()), None)
    if actual is None:
        raise QualityError(context.source.suite,
                           f"column {key!r} missing from the referenced table {table!r} (check {check.id!r})")
    target = sa.table(table, sa.column(actual), schema=schema)
    column = context.source.column(kwargs.column)
    considered = context.main.non_null(column)
    rows = context.main.rows()
    orphan = sa.and_(column.is_not(None), ~sa.exists().where(target.c[actual] == column))

    def finish(values: Mapping[str, Any], run: Run) -> CheckOutcome:
        count = int(run(sa.select(sa.func.count()).select_from(context.source.selectable)
                        .where(*context.source.rows(orphan))).scalar() or 0)
        success, percent = map_result(int(values[considered]), count, kwargs.mostly)
        return CheckOutcome.of(check, success, observed_value=percent, unexpected_count=count,
                               element_count=int(values[rows]), unexpected_percent=percent,
                               details={"references": kwargs.to})

    return Plan(check, finish, lambda: context.sample_of(orphan))


def _custom_sql(check: spec.CustomSql, context: Context) -> Plan:
    bad = bound_text(check.kwargs.query, context.source.binds).columns().subquery("bad_rows")

    def finish(_values: Mapping[str, Any], run: Run) -> CheckOutcome:
        count = int(run(sa.select(sa.func.count()).select_from(bad)).scalar() or 0)
        return CheckOutcome.of(check, count <= check.kwargs.max_unexpected, observed_value=count,
                               unexpected_count=count, details={"max_unexpected": check.kwargs.max_unexpected})

    return Plan(check, finish, lambda: sa.select(sa.text("*")).select_from(bad).limit(SAMPLE_SIZE))


_PLANNERS: dict[type, Callable[[Any, Context], Plan]] = {
    spec.NotNull: _not_null,
    spec.Unique: _unique,
    spec.Between: _between,
    spec.InSet: _in_set,
    spec.MatchRegex: _regex,
    spec.RowCount: _row_count,
    spec.PairGreater: _pair,
    spec.CompoundUnique: _compound,
    spec.ColumnMin: _aggregate,
    spec.ColumnMax: _aggregate,
    spec.ColumnMean: _aggregate,
    spec.Freshness: _freshness,
    spec.Volume: _volume,
    spec.Schema: _schema,
    spec.Referential: _referential,
    spec.CustomSql: _custom_sql,
}
