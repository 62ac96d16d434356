"""Suites as config: the shipped suites load, and each kind of bad input is named precisely."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from prep_support.catalog import load_catalog
from prep_support.quality.checks import parse_duration, strip_sql
from prep_support.quality.config import Suite, SuiteError, load_suite, load_suites, quality_config_dir

KNOWN = {"estate_db", "warehouse"}
GOOD = """\
conn_id: estate_db
table: orders
partition_column: created_at
service: orders-api
checks:
  - expectation: expect_column_values_to_not_be_null
    kwargs: {column: customer_id}
  - expectation: freshness
    kwargs: {column: created_at, max_age: 26h}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(known_connections={"estate_http", "estate_tcp", "estate_db", "prometheus_default",
                                           "nagios_default", "newrelic_default", "splunk_default"})


def test_shipped_suites_load_against_the_catalog(catalog) -> None:
    suites, errors = load_suites(quality_config_dir(), {"estate_db"}, catalog)
    assert errors == []
    assert {suite.id for suite in suites} >= {"orders", "customers", "batch_runs"}
    orders = next(suite for suite in suites if suite.id == "orders")
    assert orders.owner == "commerce-team@example.com"  # from the catalog's service
    assert orders.table_name == "orders" and orders.partition_column == "created_at"
    customers = next(suite for suite in suites if suite.id == "customers")
    assert customers.sensitive_columns == ["email"]


def test_ids_default_to_the_file_stem_and_expectation_plus_columns(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, "orders_daily.yaml", GOOD), KNOWN)
    assert suite.id == "orders_daily"
    assert [check.id for check in suite.checks] == [
        "expect_column_values_to_not_be_null.customer_id", "freshness.created_at"]
    assert suite.checks[1].kwargs.max_age == timedelta(hours=26)
    assert suite.checks[0].severity == "fail"


def test_schema_qualified_table_and_explicit_id(tmp_path: Path) -> None:
    text = GOOD.replace("table: orders", "table: sales.orders\nid: sales-orders")
    suite = load_suite(write(tmp_path, "x.yaml", text), KNOWN)
    assert (suite.id, suite.schema_name, suite.table_name) == ("sales-orders", "sales", "orders")


BAD = [
    pytest.param(GOOD.replace("expect_column_values_to_not_be_null", "expect_column_values_to_be_purple"),
                 r"line 6\b.*checks\[0\] \(id 'expect_column_values_to_be_purple.customer_id'\) > "
                 r"field 'expectation': unknown expectation 'expect_column_values_to_be_purple'; supported: ",
                 id="unknown-expectation"),
    pytest.param(GOOD + "  - expectation: expect_column_values_to_match_regex\n    kwargs: {column: status}\n",
                 r"line 11\b.*checks\[2\] \(id 'expect_column_values_to_match_regex.status'\) > kwargs > "
                 r"field 'regex': required but missing", id="missing-kwarg"),
    pytest.param(GOOD + "  - expectation: expect_table_row_count_to_be_between\n    id: rows\n"
                        "    kwargs:\n      min_value: lots\n",
                 r"line 13\b.*checks\[2\] \(id 'rows'\) > kwargs > field 'min_value': .*valid integer",
                 id="wrong-type"),
    pytest.param(GOOD + "  - expectation: expect_column_values_to_be_between\n    kwargs: {column: amount}\n",
                 r"checks\[2\] .* > field 'kwargs': min_value and max_value cannot both be None",
                 id="between-without-bounds"),
    pytest.param(GOOD.replace("table: orders", "table: 'orders; DROP TABLE x'"),
                 r"line 2\b.*field 'table': 'orders; DROP TABLE x' is not an accepted SQL identifier",
                 id="table-carrying-sql"),
    pytest.param(GOOD.replace("{column: customer_id}", "{column: 'customer_id) OR (1=1'}"),
                 r"line 7\b.*checks\[0\] .*> kwargs > field 'column': 'customer_id\) OR \(1=1' is not an accepted",
                 id="column-carrying-sql"),
    pytest.param(GOOD.replace("partition_column: created_at", "partition_column: created-at"),
                 r"line 3\b.*field 'partition_column': 'created-at' is not an accepted SQL identifier",
                 id="bad-partition-column"),
    pytest.param(GOOD.replace("conn_id: estate_db", "conn_id: estate_dbb"),
                 r"line 1\b.*field 'conn_id': unknown Connection 'estate_dbb'; define AIRFLOW_CONN_ESTATE_DBB",
                 id="unknown-connection"),
    pytest.param(GOOD.replace("    kwargs: {column: customer_id}", "    kwargs: {column: customer_id\n"),
                 r"\(line \d+, column \d+\): YAML syntax error", id="broken-yaml"),
    pytest.param(GOOD.replace("table: orders\n", ""),
                 r"suite: give exactly one of table, query_file, files \(got none\)", id="no-source"),
    pytest.param(GOOD.replace("max_age: 26h", "max_age: soon"),
                 r"checks\[1\] \(id 'freshness.created_at'\) > kwargs > field 'max_age': 'soon' is not a duration",
                 id="bad-duration"),
    pytest.param(GOOD.replace("  - expectation: freshness", "  - expectation: freshness\n    severty: warn"),
                 r"checks\[1\] .* > field 'severty': unknown field \(a typo\?\)", id="typo"),
    pytest.param(GOOD.replace("kwargs: {column: created_at, max_age: 26h}",
                              "kwargs: {column: created_at, max_age: 26h}\n    severity: page"),
                 r"checks\[1\] .* > field 'severity': Input should be 'warn' or 'fail'", id="bad-severity"),
    pytest.param(GOOD + "  - expectation: freshness\n    kwargs: {column: created_at, max_age: 2h}\n",
                 r"line 10\b.*checks\[2\] .*field 'id': duplicate check id 'freshness.created_at'",
                 id="duplicate-check-id"),
    pytest.param(GOOD.replace("service: orders-api", "service: orders-api\nschedule_on_asset: orders table"),
                 r"field 'schedule_on_asset': 'orders table' is not an asset URI", id="bad-asset"),
    pytest.param(GOOD.replace("table: orders", "query_file: ../../../etc/passwd"),
                 r"field 'query_file': query_file must stay under", id="query-file-escapes"),
    pytest.param(GOOD + "  - expectation: referential\n    kwargs: {column: customer_id, to: customers}\n",
                 r"checks\[2\] .* > field 'to': 'customers' is not a reference", id="bad-reference"),
    pytest.param(GOOD + "  - expectation: expect_column_values_to_match_regex\n"
                        "    kwargs: {column: code, regex: '([a-z'}\n",
                 r"field 'regex': regex '\(\[a-z' does not compile", id="bad-regex"),
    pytest.param(GOOD + "  - expectation: volume\n    kwargs: {window: 3, min_history: 5}\n",
                 r"checks\[2\] \(id 'volume'\) > field 'kwargs': min_history cannot exceed window", id="bad-volume"),
    pytest.param("- just\n- a list\n", r"a suite must be a mapping", id="not-a-mapping"),
]


@pytest.mark.parametrize(("text", "pattern"), BAD)
def test_bad_suites_are_named_precisely(tmp_path: Path, text: str, pattern: str) -> None:
    path = write(tmp_path, "orders.yaml", text)
    with pytest.raises(SuiteError) as raised:
        load_suite(path, KNOWN)
    message = str(raised.value)
    assert message.startswith(str(path)), message
    assert re.search(pattern, message), message
    assert raised.value.suite_id == "orders"


def test_unknown_service_is_refused_when_a_catalog_is_given(tmp_path: Path, catalog) -> None:
    path = write(tmp_path, "orders.yaml", GOOD.replace("service: orders-api", "service: order-api"))
    assert load_suite(path, KNOWN).service == "order-api"
    with pytest.raises(SuiteError, match=r"line 4\b.*field 'service': unknown service 'order-api'"):
        load_suite(path, KNOWN, catalog)


def test_a_broken_suite_leaves_the_others_loaded(tmp_path: Path) -> None:
    write(tmp_path, "a_orders.yaml", GOOD)
    write(tmp_path, "b_broken.yml", GOOD.replace("table: orders", "table: 'x; DROP TABLE y'"))
    write(tmp_path, "c_orders_again.yaml", GOOD + "id: a_orders\n")
    write(tmp_path, "README.md", "# not a suite")
    suites, errors = load_suites(tmp_path, KNOWN)
    assert [suite.id for suite in suites] == ["a_orders"]
    assert [error.suite_id for error in errors] == ["b_broken", "c_orders_again"]
    assert "already used by" in str(errors[1])


def test_source_specific_checks_are_refused_where_they_cannot_run(tmp_path: Path) -> None:
    files = GOOD.replace("conn_id: estate_db\ntable: orders\n",
                         "files: {directory: /tmp/in, pattern: '*.csv', format: csv}\n")
    files += "  - expectation: referential\n    kwargs: {column: customer_id, to: customers.id}\n"
    with pytest.raises(SuiteError, match=r"checks\[2\] .* field 'expectation': referential needs a database source"):
        load_suite(write(tmp_path, "f.yaml", files), KNOWN)
    no_column = GOOD.replace("{column: created_at, max_age: 26h}", "{max_age: 26h}")
    with pytest.raises(SuiteError, match=r"field 'column': freshness of a table or query needs the timestamp column"):
        load_suite(write(tmp_path, "g.yaml", no_column), KNOWN)
    no_conn = GOOD.replace("conn_id: estate_db\n", "")
    with pytest.raises(SuiteError, match=r"field 'conn_id': a table source needs the conn_id"):
        load_suite(write(tmp_path, "h.yaml", no_conn), KNOWN)


def test_custom_sql_query_files_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prep_support import paths

    sql_dir = tmp_path / "sql"
    (sql_dir / "quality").mkdir(parents=True)
    (sql_dir / "quality" / "two.sql").write_text("SELECT 1; SELECT 2")
    (sql_dir / "quality" / "binds.sql").write_text("SELECT * FROM orders WHERE id = :order_id")
    monkeypatch.setattr(paths, "SQL_DIR", sql_dir)
    base = GOOD + "  - expectation: custom_sql\n    kwargs: {query_file: %s}\n"
    with pytest.raises(SuiteError, match=r"field 'query_file': .*two.sql must hold a single statement"):
        load_suite(write(tmp_path, "a.yaml", base % "two.sql"), KNOWN)
    with pytest.raises(SuiteError, match=r"binds.sql uses unknown bind\(s\) :order_id"):
        load_suite(write(tmp_path, "b.yaml", base % "binds.sql"), KNOWN)
    with pytest.raises(SuiteError, match=r"no such query file"):
        load_suite(write(tmp_path, "c.yaml", base % "missing.sql"), KNOWN)


@pytest.mark.parametrize(("text", "seconds"), [
    pytest.param("26h", 93600, id="hours"), pytest.param("1d12h", 129600, id="days-hours"),
    pytest.param("90m", 5400, id="minutes"), pytest.param("1.5h", 5400, id="fraction"),
    pytest.param(45, 45, id="number"),
])
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "h", "26", "26x", "1d junk", -5, True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_sql_comments_and_trailing_semicolon_are_stripped() -> None:
    text = "-- a comment: with :colon\nSELECT '--not a comment' AS x /* block ; */ FROM t; \n"
    assert strip_sql(text) == "SELECT '--not a comment' AS x   FROM t"


def test_suite_can_be_built_in_code() -> None:
    suite = Suite.model_validate({"id": "inline", "conn_id": "db", "table": "t", "service": "svc",
                                  "checks": [{"expectation": "volume"}]})
    assert suite.checks[0].id == "volume" and suite.checks[0].kwargs.window == 14
    assert suite.dataset == "db:t"
