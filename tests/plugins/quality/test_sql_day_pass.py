"""A day's validation on PostgreSQL: one pass over the day, which also locates the failing rows.

A daily run checks one interval of a big table. Its samples of failing rows used to cost one more
scan of the day per failing check (a regex evaluated again on every row of the day); now the pass
keeps the first 20 ctids of each failing map check and the samples are read by TID. Pinned here:
the same outcomes and samples as the per-check queries, the statements one suite issues, and the
per-check queries kept for slices too big to locate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from prep_support.quality import sql_checks
from prep_support.quality.config import Suite
from prep_support.quality.sql_engine import validate_sql
from tests.plugins.quality.seeded import create_table

pytestmark = pytest.mark.integration

DAY = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
CHECKS: list[dict[str, Any]] = [
    {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "currency"}},
    {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0,
                                                                     "max_value": 100}},
    {"expectation": "expect_column_values_to_be_in_set", "kwargs": {"column": "currency",
                                                                    "value_set": ["EUR", "USD", "GBP"]}},
    {"expectation": "expect_column_values_to_match_regex", "kwargs": {"column": "code", "regex": r"^AB-\d+$"}},
    {"expectation": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "a",
                                                                                   "column_B": "b"}},
    {"expectation": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"expectation": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    {"expectation": "expect_column_mean_to_be_between", "kwargs": {"column": "amount", "min_value": 0}},
]
# Statements of one validation of the day: the table's columns, its unique keys, the planner's
# estimate, the pass, the uniqueness GROUP BY, one TID read of every failing map check's sample and
# the duplicated ids' rows. The transaction's SETs and each statement_timeout ride with a statement.
# (22 before samples were located.)
STATEMENTS_PER_DAY = 7


@pytest.fixture(scope="module")
def day_table(postgres_url: str) -> Iterator[tuple[sa.Engine, Suite]]:
    table = f"day_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres_url)
    create_table(engine, table)
    suite = Suite.model_validate({"id": "day", "conn_id": "db", "table": table, "partition_column": "created_at",
                                  "service": "orders-api", "checks": CHECKS})
    yield engine, suite
    engine.dispose()


def _statements(engine: sa.Engine, suite: Suite) -> tuple[list, list[str]]:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        outcomes = validate_sql(engine, suite, *DAY)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return outcomes, statements


def test_samples_are_located_by_the_pass(day_table, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, suite = day_table
    outcomes, statements = _statements(engine, suite)
    failing = {o.check_id: o for o in outcomes if not o.success}
    assert {check_id: o.unexpected_count for check_id, o in failing.items()} == {
        "expect_column_values_to_not_be_null.currency": 1,
        "expect_column_values_to_be_between.amount": 3,
        "expect_column_values_to_be_in_set.currency": 2,
        "expect_column_values_to_match_regex.code": 3,
        "expect_column_pair_values_a_to_be_greater_than_b.a.b": 4,
        "expect_column_values_to_be_unique.id": 2,
    }
    assert [row[3] for row in failing["expect_column_values_to_match_regex.code"].sample_rows] == ["ab-3", "ZZ", ""]
    assert [row[2] for row in failing["expect_column_values_to_be_in_set.currency"].sample_rows] == ["usd", "JPY"]
    assert all(len(o.sample_rows) == o.unexpected_count for o in failing.values())

    table = suite.table
    scans = [s for s in statements if f"FROM {table} WHERE" in s and "ctid = ANY" not in s and "EXPLAIN" not in s]
    # The pass counts and locates, the GROUP BY finds the duplicated ids, one query picks their rows:
    # no check's condition is evaluated over the day a second time.
    assert len(scans) == 3, scans
    assert "array_agg(CAST(ctid AS TEXT))" in scans[0] and "~" in scans[0]
    assert "GROUP BY" in scans[1] and " IN (" in scans[2]
    assert sum("ctid = ANY" in s for s in statements) == 1
    assert len(statements) == STATEMENTS_PER_DAY, statements
    assert statements[0].startswith("SET LOCAL TIME ZONE 'UTC'; SET LOCAL statement_timeout = ")
    assert all(s.startswith("SET LOCAL statement_timeout = ") for s in statements[3:])
    assert not [s for s in statements if s.startswith("SET") and not s.rstrip(";").split("; ")[-1].startswith(
        ("SELECT", "EXPLAIN"))]

    # Located or queried, the samples are the same rows in the same order.
    monkeypatch.setattr(sql_checks, "LOCATE_UP_TO", -1)
    assert validate_sql(engine, suite, *DAY) == outcomes


def test_slices_too_big_to_locate_query_each_sample(day_table, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, suite = day_table
    located, _ = _statements(engine, suite)
    monkeypatch.setattr(sql_checks, "LOCATE_UP_TO", 0)  # every slice is then too big
    queried, statements = _statements(engine, suite)
    assert queried == located
    assert not [s for s in statements if "ctid" in s]
    samples = [s for s in statements if f"SELECT {suite.table}.id, {suite.table}.amount" in s]
    assert len(samples) == 6 and all(" LIMIT " in s for s in samples)  # one query per failing row-level check
