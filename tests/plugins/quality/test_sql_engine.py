"""The SQL engine on the sandbox's estate database (SQLite) and on PostgreSQL.

The shipped suites must find exactly the issues sandbox/estate_db.py seeded; intervals partition
the rows; all row-level checks take one scan; failing checks carry masked samples; and a suite
that cannot be validated raises a QualityError naming the suite and the cause.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from prep_support.quality.config import Suite, load_suite, quality_config_dir
from prep_support.quality.outcomes import MASK, QualityError
from prep_support.quality.sql_engine import validate_sql
from sandbox.estate_db import CUSTOMER_COUNT, KNOWN_ISSUES, ORDER_COUNT, ORDER_DAYS
from tests.plugins.quality.conftest import ESTATE_NOW

WHOLE = (ESTATE_NOW - timedelta(days=ORDER_DAYS + 1), ESTATE_NOW + timedelta(seconds=1))
ROW_CHECKS = [
    {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer_id"}},
    {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0,
                                                                     "strict_min": True}},
    {"expectation": "expect_column_values_to_be_in_set", "kwargs": {"column": "currency",
                                                                    "value_set": ["EUR", "USD", "GBP"]}},
    {"expectation": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["customer_id", "created_at"]}},
    {"expectation": "referential", "kwargs": {"column": "customer_id", "to": "customers.id"}},
]
EXPECTED_ISSUES = {
    "expect_column_values_to_not_be_null.customer_id": KNOWN_ISSUES["null_customer_id"],
    "expect_column_values_to_be_between.amount": KNOWN_ISSUES["negative_amount"],
    "expect_column_values_to_be_in_set.currency": KNOWN_ISSUES["invalid_currency"],
    # GX counts every row of a duplicated group: each planted copy and the row it copies.
    "expect_compound_columns_to_be_unique.customer_id.created_at": 2 * KNOWN_ISSUES["duplicate_customer_created_at"],
    "referential.customer_id": KNOWN_ISSUES["missing_customer"],
}


def suite_of(checks: list[dict[str, Any]], **fields: Any) -> Suite:
    data = {"id": "orders", "conn_id": "estate_db", "table": "orders", "partition_column": "created_at",
            "service": "orders-api", "checks": checks}
    return Suite.model_validate({**data, **fields})


def by_id(outcomes: list) -> dict[str, Any]:
    return {outcome.check_id: outcome for outcome in outcomes}


def test_shipped_orders_suite_finds_the_seeded_issues(estate_engine: sa.Engine) -> None:
    suite = load_suite(quality_config_dir() / "orders.yaml", {"estate_db"})
    outcomes = by_id(validate_sql(estate_engine, suite, *WHOLE, {"volume": [ORDER_COUNT] * 7}))
    assert [o.check_id for o in outcomes.values()] == [check.id for check in suite.checks]
    for check_id, count in EXPECTED_ISSUES.items():
        outcome = outcomes[check_id]
        assert (outcome.success, outcome.unexpected_count) == (False, count), check_id
        assert outcome.element_count == ORDER_COUNT
        assert 0 < len(outcome.sample_rows) <= min(count, 20)
        assert outcome.sample_columns == ["id", "customer_id", "amount", "currency", "status", "created_at"]
    passing = {"expect_column_values_to_be_unique.id", "status-known", "largest-order", "freshness.created_at",
               "volume", "schema"}
    assert {check_id for check_id, o in outcomes.items() if o.success} >= passing
    assert outcomes["volume"].observed_value == ORDER_COUNT
    assert outcomes["schema"].details == {"missing": [], "unexpected": [], "type_changed": []}


def test_samples_show_the_failing_rows(estate_engine: sa.Engine) -> None:
    outcomes = by_id(validate_sql(estate_engine, suite_of(ROW_CHECKS), *WHOLE))
    nulls = outcomes["expect_column_values_to_not_be_null.customer_id"]
    assert all(row[1] is None for row in nulls.sample_rows)
    currencies = outcomes["expect_column_values_to_be_in_set.currency"]
    assert sorted(row[3] for row in currencies.sample_rows) == ["JPY", "XXX", "usd"]
    orphans = outcomes["referential.customer_id"]
    assert sorted(row[1] for row in orphans.sample_rows) == [901, 902, 903]
    duplicates = outcomes["expect_compound_columns_to_be_unique.customer_id.created_at"]
    pairs = [(row[1], row[5]) for row in duplicates.sample_rows]
    assert len(pairs) == 4 and len(set(pairs)) == 2


def test_days_partition_the_rows(estate_engine: sa.Engine) -> None:
    """Every row belongs to exactly one daily interval (start <= created_at < end)."""
    suite = suite_of(ROW_CHECKS)
    first = datetime.combine((ESTATE_NOW - timedelta(days=ORDER_DAYS)).date(), datetime.min.time(), UTC)
    totals: dict[str, int] = dict.fromkeys(EXPECTED_ISSUES, 0)
    rows = 0
    for day in range(ORDER_DAYS + 1):
        start = first + timedelta(days=day)
        outcomes = validate_sql(estate_engine, suite, start, start + timedelta(days=1))
        rows += outcomes[0].element_count
        for outcome in outcomes:
            if outcome.check_id != "expect_compound_columns_to_be_unique.customer_id.created_at":
                totals[outcome.check_id] += outcome.unexpected_count
    assert rows == ORDER_COUNT
    # Duplicated pairs share created_at, so they land on the same day and are counted there.
    del totals["expect_compound_columns_to_be_unique.customer_id.created_at"]
    assert totals == {key: EXPECTED_ISSUES[key] for key in totals}


def test_one_scan_for_all_row_level_checks(estate_engine: sa.Engine) -> None:
    """Row-level and aggregate checks cost one SELECT; uniqueness of the primary key costs nothing."""
    checks = [
        {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
        {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": -1000}},
        {"expectation": "expect_column_values_to_be_in_set", "kwargs": {"column": "status", "value_set": [
            "paid", "shipped", "pending", "refunded"]}},
        {"expectation": "expect_column_values_to_match_regex", "kwargs": {"column": "created_at",
                                                                          "regex": r"^\d{4}-\d\d-\d\d "}},
        {"expectation": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        {"expectation": "expect_column_min_to_be_between", "kwargs": {"column": "amount", "min_value": -1000}},
        {"expectation": "expect_column_max_to_be_between", "kwargs": {"column": "amount", "max_value": 1000}},
        {"expectation": "expect_column_mean_to_be_between", "kwargs": {"column": "amount", "min_value": 0}},
        {"expectation": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    ]
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(estate_engine, "before_cursor_execute", record)
    try:
        outcomes = validate_sql(estate_engine, suite_of(checks), *WHOLE)
    finally:
        sa.event.remove(estate_engine, "before_cursor_execute", record)
    assert all(outcome.success for outcome in outcomes), [o for o in outcomes if not o.success]
    scans = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM orders" in s]
    assert len(scans) == 1, scans
    assert "sum(case when" in scans[0].lower() and "REGEXP" in scans[0]
    assert outcomes[-1].details == {"unique_key": ["id"]}  # orders.id is the INTEGER PRIMARY KEY


def test_uniqueness_trusts_only_whole_table_unique_keys(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT, a INTEGER, b INTEGER, "
                                   "UNIQUE (a, b))")
        connection.exec_driver_sql("CREATE UNIQUE INDEX t_code_late ON t (code) WHERE code > 'm'")
        connection.exec_driver_sql("INSERT INTO t VALUES (1, 'a', 1, 1), (2, 'a', 1, 2), (3, 'z', 2, 1)")
    checks = [{"expectation": "expect_column_values_to_be_unique", "kwargs": {"column": column}}
              for column in ("id", "code")]
    checks.append({"expectation": "expect_compound_columns_to_be_unique",
                   "kwargs": {"column_list": ["a", "b", "code"]}})
    suite = Suite.model_validate({"id": "keys", "conn_id": "db", "table": "t", "service": "svc", "checks": checks})
    ids, codes, compound = validate_sql(engine, suite, *WHOLE)
    assert (ids.success, ids.details) == (True, {"unique_key": ["id"]})
    assert (codes.success, codes.unexpected_count, codes.details) == (False, 2, {})  # the partial index proves nothing
    assert (compound.success, compound.details) == (True, {"unique_key": ["a", "b"]})


def test_sensitive_columns_are_masked_in_samples(estate_engine: sa.Engine, tmp_path: Path) -> None:
    engine = _copy(estate_engine, tmp_path)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE customers SET email = 'not-an-email' WHERE id IN (3, 4)")
        connection.exec_driver_sql("UPDATE customers SET email = NULL WHERE id = 5")
    suite = load_suite(quality_config_dir() / "customers.yaml", {"estate_db"})
    outcomes = by_id(validate_sql(engine, suite, *WHOLE))
    regex = outcomes["expect_column_values_to_match_regex.email"]
    assert (regex.success, regex.unexpected_count) == (False, 2)
    assert regex.sample_columns == ["id", "email", "country"]
    assert [row[:2] for row in regex.sample_rows] == [[3, MASK], [4, MASK]]
    assert "not-an-email" not in repr(regex.to_dict())
    nulls = outcomes["expect_column_values_to_not_be_null.email"]
    assert [row[:2] for row in nulls.sample_rows] == [[5, None]]
    assert outcomes["expect_table_row_count_to_be_between"].observed_value == CUSTOMER_COUNT


def test_values_are_bound_and_identifiers_quoted(tmp_path: Path) -> None:
    """Reserved words as names work (quoted); a value carrying SQL is only a value."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'odd.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql('CREATE TABLE "group" ("order" TEXT, "select" INTEGER)')
        connection.exec_driver_sql("""INSERT INTO "group" VALUES ('a', 1), ('x''); DROP TABLE "group"; --', 2)""")
    checks = [{"expectation": "expect_column_values_to_be_in_set",
               "kwargs": {"column": "order", "value_set": ["a", "'); DROP TABLE \"group\"; --"]}},
              {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "select"}}]
    suite = Suite.model_validate({"id": "odd", "conn_id": "db", "table": "group", "service": "svc", "checks": checks})
    in_set, not_null = validate_sql(engine, suite, *WHOLE)
    assert (in_set.success, in_set.unexpected_count, not_null.success) == (False, 1, True)
    assert in_set.sample_rows == [["x'); DROP TABLE \"group\"; --", 2]]
    with engine.connect() as connection:
        assert connection.exec_driver_sql('SELECT count(*) FROM "group"').scalar() == 2


def test_query_file_source(estate_engine: sa.Engine, sql_dir: Path) -> None:
    (sql_dir / "paid.sql").write_text("-- paid orders only\nSELECT id, amount, created_at FROM orders "
                                      "WHERE status = 'paid' AND created_at < :data_interval_end;\n")
    suite = Suite.model_validate({
        "id": "paid", "conn_id": "estate_db", "query_file": "paid.sql", "partition_column": "created_at",
        "service": "orders-api", "checks": [
            {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "max_value": 100}},
            {"expectation": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}]})
    between, rows = validate_sql(estate_engine, suite, *WHOLE)
    assert rows.success and 0 < rows.observed_value < ORDER_COUNT
    assert between.sample_columns == ["id", "amount", "created_at"]
    assert not between.success and len(between.sample_rows) == min(20, between.unexpected_count)
    assert all(row[1] > 100 for row in between.sample_rows)


def test_missing_table_names_suite_and_cause(estate_engine: sa.Engine) -> None:
    with pytest.raises(QualityError) as raised:
        validate_sql(estate_engine, suite_of(ROW_CHECKS, table="orderz"), *WHOLE)
    assert str(raised.value) == "suite 'orders' (estate_db:orderz): table 'orderz' does not exist"


def test_missing_column_names_the_checks_that_need_it(estate_engine: sa.Engine) -> None:
    checks = [*ROW_CHECKS, {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "shipped_at"}}]
    with pytest.raises(QualityError, match=r"suite 'orders' \(estate_db:orders\): column\(s\) missing from the "
                                           r"dataset: 'shipped_at' \(used by check "
                                           r"'expect_column_values_to_not_be_null.shipped_at'\)"):
        validate_sql(estate_engine, suite_of(checks), *WHOLE)
    referential = [{"expectation": "referential", "kwargs": {"column": "customer_id", "to": "clients.id"}}]
    with pytest.raises(QualityError, match=r"table 'clients' does not exist"):
        validate_sql(estate_engine, suite_of(referential), *WHOLE)


def test_bounds_of_the_wrong_type_name_the_check(estate_engine: sa.Engine) -> None:
    checks = [{"expectation": "expect_column_max_to_be_between", "id": "largest",
               "kwargs": {"column": "amount", "max_value": "a lot"}}]
    with pytest.raises(QualityError, match=r"suite 'orders' \(estate_db:orders\): check 'largest': TypeError: "):
        validate_sql(estate_engine, suite_of(checks), *WHOLE)


def test_sqlite_timeout(estate_engine: sa.Engine, sql_dir: Path) -> None:
    (sql_dir / "slow.sql").write_text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "SELECT i AS created_at FROM n")
    suite = Suite.model_validate({"id": "slow", "conn_id": "estate_db", "query_file": "slow.sql",
                                  "service": "orders-api", "timeout_s": 0.3,
                                  "checks": [{"expectation": "expect_table_row_count_to_be_between"}]})
    with pytest.raises(QualityError, match=r"suite 'slow' .*: query timed out \(the suite's timeout_s is 0.3 s\)"):
        validate_sql(estate_engine, suite, *WHOLE)
    with estate_engine.begin() as connection:  # the guards are gone: the connection can write again
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS scratch (x INTEGER)")
        connection.exec_driver_sql("DROP TABLE scratch")


def test_naive_interval_is_refused(estate_engine: sa.Engine) -> None:
    with pytest.raises(QualityError, match="timezone-aware"):
        validate_sql(estate_engine, suite_of(ROW_CHECKS), datetime(2026, 3, 1), datetime(2026, 3, 2))


def _copy(engine: sa.Engine, tmp_path: Path) -> sa.Engine:
    import sqlite3

    target = tmp_path / "estate-copy.db"
    with sqlite3.connect(engine.url.database) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    return sa.create_engine(f"sqlite:///{target}")


# PostgreSQL: the same estate, created_at a real timestamp.


@pytest.fixture(scope="module")
def postgres_estate(postgres_url: str, estate_engine: sa.Engine) -> sa.Engine:
    engine = sa.create_engine(postgres_url)
    with estate_engine.connect() as sqlite, engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS orders, customers")
        connection.exec_driver_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, country TEXT)")
        connection.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, "
                                   "amount NUMERIC(10, 2), currency TEXT, status TEXT, created_at TIMESTAMP)")
        for table in ("customers", "orders"):
            rows = [dict(row._mapping) for row in sqlite.exec_driver_sql(f"SELECT * FROM {table}")]
            columns = list(rows[0])
            connection.execute(sa.text(f"INSERT INTO {table} VALUES ({', '.join(':' + c for c in columns)})"), rows)
    yield engine
    engine.dispose()


@pytest.mark.integration
def test_postgres_finds_the_seeded_issues(postgres_estate: sa.Engine) -> None:
    checks = [*ROW_CHECKS, {"expectation": "freshness", "kwargs": {"column": "created_at", "max_age": "1h"}},
              {"expectation": "schema", "kwargs": {"columns": {"id": "integer", "created_at": "timestamp",
                                                               "amount": "numeric", "currency": "varchar"}}}]
    outcomes = by_id(validate_sql(postgres_estate, suite_of(checks), *WHOLE))
    for check_id, count in EXPECTED_ISSUES.items():
        assert (outcomes[check_id].success, outcomes[check_id].unexpected_count) == (False, count), check_id
        assert outcomes[check_id].element_count == ORDER_COUNT
    assert outcomes["freshness.created_at"].success
    schema = outcomes["schema"]
    assert not schema.success
    assert schema.details["type_changed"] == [{"column": "currency", "expected": "varchar", "actual": "TEXT"}]
    assert schema.details["unexpected"] == ["customer_id", "status"]


@pytest.mark.integration
def test_postgres_unique_keys(postgres_estate: sa.Engine) -> None:
    with postgres_estate.begin() as connection:
        connection.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS orders_paid_customer ON orders (customer_id) "
                                   "WHERE status = 'never'")
        connection.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS orders_lower_currency ON orders "
                                   "(lower(currency), id)")
    checks = [{"expectation": "expect_column_values_to_be_unique", "kwargs": {"column": name}}
              for name in ("id", "customer_id")]
    ids, customers = validate_sql(postgres_estate, suite_of(checks), *WHOLE)
    assert (ids.success, ids.details) == (True, {"unique_key": ["id"]})
    assert not customers.success and customers.unexpected_count > 0 and customers.details == {}


@pytest.mark.integration
def test_postgres_days_partition_the_rows(postgres_estate: sa.Engine) -> None:
    first = datetime.combine((ESTATE_NOW - timedelta(days=ORDER_DAYS)).date(), datetime.min.time(), UTC)
    suite = suite_of(ROW_CHECKS[:1])
    counts = [validate_sql(postgres_estate, suite, first + timedelta(days=day), first + timedelta(days=day + 1))[0]
              for day in range(ORDER_DAYS + 1)]
    assert sum(outcome.element_count for outcome in counts) == ORDER_COUNT
    assert sum(outcome.unexpected_count for outcome in counts) == KNOWN_ISSUES["null_customer_id"]


@pytest.mark.integration
def test_postgres_timeout_and_missing_table(postgres_estate: sa.Engine, sql_dir: Path) -> None:
    (sql_dir / "sleepy.sql").write_text("SELECT pg_sleep(5) AS slept")
    suite = Suite.model_validate({"id": "sleepy", "conn_id": "db", "query_file": "sleepy.sql", "service": "svc",
                                  "timeout_s": 0.5,
                                  "checks": [{"expectation": "expect_table_row_count_to_be_between"}]})
    with pytest.raises(QualityError, match=r"suite 'sleepy' \(db:query sleepy.sql\): query timed out"):
        validate_sql(postgres_estate, suite, *WHOLE)
    with pytest.raises(QualityError, match=r"table 'public.orderz' does not exist"):
        validate_sql(postgres_estate, suite_of(ROW_CHECKS, table="public.orderz"), *WHOLE)


@pytest.mark.integration
def test_postgres_runs_read_only(postgres_estate: sa.Engine, sql_dir: Path) -> None:
    """A query file with a side effect (here nextval) is refused by the read-only transaction."""
    sequence = f"dq_{uuid.uuid4().hex[:8]}"
    with postgres_estate.begin() as connection:
        connection.exec_driver_sql(f"CREATE SEQUENCE {sequence}")
    (sql_dir / "bump.sql").write_text(f"SELECT nextval('{sequence}') AS bumped")
    suite = Suite.model_validate({"id": "bump", "conn_id": "db", "table": "orders", "service": "svc",
                                  "checks": [{"expectation": "custom_sql", "kwargs": {"query_file": "bump.sql"}}]})
    with pytest.raises(QualityError, match="read-only transaction"):
        validate_sql(postgres_estate, suite, *WHOLE)
    with postgres_estate.connect() as connection:
        assert connection.exec_driver_sql(f"SELECT last_value, is_called FROM {sequence}").one() == (1, False)


@pytest.mark.integration
def test_unreachable_database_names_suite_and_cause() -> None:
    engine = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    with pytest.raises(QualityError, match=r"suite 'orders' \(estate_db:orders\): cannot reach the database: "):
        validate_sql(engine, suite_of(ROW_CHECKS), *WHOLE)
