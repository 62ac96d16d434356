"""Validating a suite on its database, pushed down to SQL (PostgreSQL and SQLite).

The table is never loaded into Python. All row-level checks of a suite are computed in ONE pass
over the interval's rows (see :mod:`prep_support.quality.sql_checks`); uniqueness takes a GROUP
BY each; samples of failing rows (at most 20, sensitive columns masked) are fetched for failing
checks only: rows the pass located (a small PostgreSQL slice) in one TID read, the others with a
LIMITed query each. Everything runs in one read-only transaction
(REPEATABLE READ on PostgreSQL, so all queries see the same snapshot, and a ctid found by one
statement is the same row for the next) under a deadline of the suite's ``timeout_s``:
PostgreSQL's ``statement_timeout`` is set to the time left before each statement, in the same round
trip as the statement, SQLite is interrupted by a progress handler and its REGEXP (Python) gets what is left of
the deadline (:mod:`prep_support.quality.patterns`). Any failure raises
:class:`~prep_support.quality.outcomes.QualityError` and no outcome is returned.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from prep_support.quality import checks as spec
from prep_support.quality.config import Suite
from prep_support.quality.lineage import hidden_columns
from prep_support.quality.outcomes import CheckOutcome, QualityError, masked_outcome, masked_sample
from prep_support.quality.patterns import search_before, timed_out
from prep_support.quality.sql_checks import Context, MainPass, Plan, plan_check
from prep_support.quality.sql_source import Source, open_source, table_columns

_QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout
_UNREACHABLE = re.compile(r"could not connect|connection refused|could not translate host|unable to open database"
                          r"|server closed the connection|timeout expired|no route to host|password authentication",
                          re.IGNORECASE)


def validate_sql(engine: Engine, suite: Suite, interval_start: datetime, interval_end: datetime,
                 volume_history: Mapping[str, list[int]] | None = None) -> list[CheckOutcome]:
    """Every check of ``suite`` on the rows of [interval_start, interval_end), in the suite's order.

    ``volume_history`` gives, per volume check id, the row counts recorded for the previous
    intervals (oldest first). Raises QualityError naming the suite, its dataset and the cause
    (unreachable database, missing table or column, timeout, a query the database refused).
    """
    if suite.source_kind == "files":
        raise ValueError(f"suite {suite.id!r} reads files: validate it with file_engine.validate_files")
    try:
        with _read_only(engine, suite) as session:
            source = open_source(session.connection, suite, interval_start, interval_end)
            return _validate(session, source, volume_history or {})
    except QualityError:
        raise
    except (SQLAlchemyError, ValueError) as error:
        raise QualityError(suite, _cause(error, suite)) from error


class _Session:
    """A connection that runs each statement under what is left of the suite's deadline."""

    def __init__(self, connection: Connection, deadline: float, settings: str = "") -> None:
        self.connection = connection
        self.deadline = deadline
        self.postgres = connection.dialect.name == "postgresql"
        # SET statements for the next statement to carry: each is sent with it, in the same round trip.
        self._settings = settings
        if self.postgres:
            sa.event.listen(connection, "before_cursor_execute", self._with_settings, retval=True)

    def run(self, statement: sa.Executable) -> sa.CursorResult[Any]:
        if self.postgres:
            remaining_ms = max(1, int((self.deadline - time.monotonic()) * 1000))
            self._settings += f"SET LOCAL statement_timeout = {remaining_ms}; "
        return self.connection.execute(statement)

    def _with_settings(self, _connection: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any,
                       ) -> tuple[str, Any]:
        """The statement being sent, preceded by the pending SETs (the first SET LOCAL of the transaction too)."""
        statement, self._settings = self._settings + statement, ""
        return statement, parameters


@contextmanager
def _read_only(engine: Engine, suite: Suite) -> Iterator[_Session]:
    deadline = time.monotonic() + suite.timeout_s
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with connection.begin():
                # Naive timestamps and the interval's bounds then compare in UTC, whatever the server's zone.
                yield _Session(connection, deadline, f"SET LOCAL TIME ZONE 'UTC'; "
                                                     f"SET LOCAL statement_timeout = {int(suite.timeout_s * 1000)}; ")
            return
        raw = connection.connection.driver_connection
        _sqlite_guards(raw, deadline)
        try:
            with connection.begin():
                yield _Session(connection, deadline)
        except DBAPIError as error:
            # The progress handler's "interrupted", or REGEXP's timeout ("user-defined function raised
            # exception"): either way the suite ran out of time, and says so.
            if time.monotonic() >= deadline:
                raise QualityError(suite, timed_out(suite.timeout_s)) from error
            raise
        finally:
            with suppress(sqlite3.Error):  # a broken connection is discarded by the pool anyway
                raw.set_progress_handler(None, 0)
                raw.execute("PRAGMA query_only = 0")


def _sqlite_guards(raw: Any, deadline: float) -> None:
    """REGEXP as a search that stops at the deadline, no writes, and an interrupt once the deadline has passed."""

    def regexp(pattern: str, value: Any) -> bool | None:
        return None if value is None else search_before(pattern, str(value), deadline)

    raw.create_function("regexp", 2, regexp, deterministic=True)
    raw.execute("PRAGMA query_only = 1")
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)


def _validate(session: _Session, source: Source, volume_history: Mapping[str, list[int]]) -> list[CheckOutcome]:
    suite = source.suite
    main = MainPass(session.connection.dialect.name)
    context = Context(source, main, volume_history,
                      lambda schema, table: table_columns(session.connection, suite, schema, table))
    plans = [plan_check(check, context) for check in suite.checks]
    values: Mapping[str, Any] = {}
    if main.expressions:
        locate = main.can_locate(source) and main.few_rows(session.run(main.estimate(source)).scalar())
        values = session.run(main.statement(source, locate)).one()._mapping
    outcomes = []
    for plan in plans:
        try:
            outcomes.append(plan.finish(values, session.run))
        except (TypeError, ValueError) as error:  # e.g. text bounds against a numeric min, a bad timestamp
            raise QualityError(suite, f"check {plan.check.id!r}: {type(error).__name__}: {error}") from error
    sensitive = _sensitive(source)
    located = _located_rows(session, context, [plan for plan, outcome in zip(plans, outcomes, strict=True)
                                               if _sampled(plan, outcome)])
    return [_with_sample(session, sensitive, plan, masked_outcome(plan.check, outcome, sensitive), located)
            for plan, outcome in zip(plans, outcomes, strict=True)]


def _sampled(plan: Plan, outcome: CheckOutcome) -> bool:
    """Whether the outcome gets a sample: a row-level check that found unexpected rows."""
    return not outcome.success and plan.check.row_level and bool(outcome.unexpected_count)


def _located_rows(session: _Session, context: Context, plans: list[Plan]) -> tuple[list[str], dict[str, Any]]:
    """The columns, and the row at each ctid the failing checks located, read in one statement (a TID scan)."""
    wanted = sorted({at for plan in plans for at in plan.located() or ()})
    if not wanted:
        return [], {}
    result = session.run(context.rows_at(wanted))
    return list(result.keys())[1:], {row[0]: row[1:] for row in result}


def _sensitive(source: Source) -> list[str]:
    """The suite's sensitive columns, plus the columns of its query that carry one under another name."""
    listed = list(source.suite.sensitive_columns)
    if source.suite.query is None or not listed:
        return listed
    names = source.column_names
    return listed + [name for name, hide in zip(names, hidden_columns(names, listed, source.suite.query),
                                                 strict=True) if hide]


def _with_sample(session: _Session, sensitive: list[str], plan: Plan, outcome: CheckOutcome,
                 located: tuple[list[str], dict[str, Any]]) -> CheckOutcome:
    """The outcome of a failing row-level check with up to 20 of its rows, sensitive columns masked."""
    if not _sampled(plan, outcome):
        return outcome
    places = plan.located()
    if places is not None:
        names, found = located[0], [located[1][at] for at in places]
    else:
        query = plan.unexpected_rows()
        if query is None:
            return outcome
        result = session.run(query)
        names, found = list(result.keys()), result.fetchall()
    # A custom query's result columns are masked by what they are made of (an alias of a sensitive column).
    lineage = plan.check.kwargs.query if isinstance(plan.check, spec.CustomSql) else None
    columns, rows = masked_sample(names, found, sensitive, lineage)
    return dataclasses.replace(outcome, sample_columns=columns, sample_rows=rows)


def _cause(error: Exception, suite: Suite) -> str:
    """What went wrong, in one line an on-call engineer can act on."""
    original = getattr(error, "orig", None) or error
    text = (str(original).strip().splitlines() or [type(original).__name__])[0]
    if getattr(original, "pgcode", None) == _QUERY_CANCELED or text == "interrupted":
        return timed_out(suite.timeout_s)
    if (isinstance(error, DBAPIError) and error.connection_invalidated) or _UNREACHABLE.search(text):
        return f"cannot reach the database: {text}"
    return f"{type(original).__name__}: {text}"
