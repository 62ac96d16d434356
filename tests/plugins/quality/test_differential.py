"""Our engines against Great Expectations' own validation of the same data, expectation by expectation.

For every built-in expectation we support, the seeded table (tests/plugins/quality/seeded.py) is
validated by our SQL engine and by GX Core's SQL datasource on the same table, on SQLite and on
PostgreSQL; and by our file engine and GX's pandas datasource on the same CSV file. Success,
unexpected count, element count, unexpected percent and observed value must agree. GX is
imported once, by a module-scoped fixture (it takes several seconds).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from prep_support.quality.config import Suite
from prep_support.quality.file_engine import validate_files
from prep_support.quality.sql_engine import validate_sql
from tests.plugins.quality.seeded import TABLE, create_table, write_csv

START = datetime(2000, 1, 1, tzinfo=UTC)
END = datetime(2100, 1, 1, tzinfo=UTC)

CASES = [
    pytest.param("expect_column_values_to_not_be_null", {"column": "id"}, id="not_null-id"),
    pytest.param("expect_column_values_to_not_be_null", {"column": "currency", "mostly": 0.9}, id="not_null-mostly"),
    pytest.param("expect_column_values_to_not_be_null", {"column": "blank"}, id="not_null-all-null"),
    pytest.param("expect_column_values_to_not_be_null", {"column": "k1", "mostly": 0.9}, id="not_null-mostly-fails"),
    pytest.param("expect_column_values_to_be_unique", {"column": "id"}, id="unique-id"),
    pytest.param("expect_column_values_to_be_unique", {"column": "currency"}, id="unique-currency"),
    pytest.param("expect_column_values_to_be_unique", {"column": "k1", "mostly": 0.2}, id="unique-mostly"),
    pytest.param("expect_column_values_to_be_unique", {"column": "blank"}, id="unique-all-null"),
    pytest.param("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "max_value": 500},
                 id="between"),
    pytest.param("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "strict_min": True},
                 id="between-strict-min"),
    pytest.param("expect_column_values_to_be_between", {"column": "amount", "max_value": 250, "strict_max": True},
                 id="between-strict-max"),
    pytest.param("expect_column_values_to_be_between", {"column": "a", "min_value": -1, "max_value": 5,
                                                        "mostly": 0.7}, id="between-mostly"),
    pytest.param("expect_column_values_to_be_between", {"column": "blank", "min_value": 0}, id="between-all-null"),
    pytest.param("expect_column_values_to_be_in_set", {"column": "currency", "value_set": ["EUR", "USD", "GBP"]},
                 id="in_set"),
    pytest.param("expect_column_values_to_be_in_set", {"column": "currency", "value_set": ["EUR", None]},
                 id="in_set-with-none"),
    pytest.param("expect_column_values_to_be_in_set", {"column": "currency", "value_set": []}, id="in_set-empty"),
    pytest.param("expect_column_values_to_be_in_set", {"column": "a", "value_set": [1, 2, 3, 4, 5], "mostly": 0.5},
                 id="in_set-numbers-mostly"),
    pytest.param("expect_column_values_to_match_regex", {"column": "code", "regex": r"^AB-\d+$"}, id="regex"),
    pytest.param("expect_column_values_to_match_regex", {"column": "code", "regex": "B-[0-9]"}, id="regex-search"),
    pytest.param("expect_column_values_to_match_regex", {"column": "currency", "regex": "^[A-Z]{3}$",
                                                         "mostly": 0.8}, id="regex-mostly"),
    pytest.param("expect_table_row_count_to_be_between", {"min_value": 5, "max_value": 20}, id="row_count"),
    pytest.param("expect_table_row_count_to_be_between", {"max_value": 5}, id="row_count-too-many"),
    pytest.param("expect_table_row_count_to_be_between", {"min_value": 12, "strict_min": True}, id="row_count-strict"),
    pytest.param("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "b"}, id="pair"),
    pytest.param("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "b",
                                                                      "or_equal": True}, id="pair-or-equal"),
    pytest.param("expect_column_pair_values_a_to_be_greater_than_b",
                 {"column_A": "a", "column_B": "b", "ignore_row_if": "either_value_is_missing"}, id="pair-either"),
    pytest.param("expect_column_pair_values_a_to_be_greater_than_b",
                 {"column_A": "a", "column_B": "b", "ignore_row_if": "neither", "or_equal": True,
                  "mostly": 0.6}, id="pair-neither-mostly"),
    pytest.param("expect_compound_columns_to_be_unique", {"column_list": ["k1", "k2"]}, id="compound"),
    pytest.param("expect_compound_columns_to_be_unique",
                 {"column_list": ["k1", "k2"], "ignore_row_if": "any_value_is_missing"}, id="compound-any"),
    pytest.param("expect_compound_columns_to_be_unique", {"column_list": ["k1", "k2"], "ignore_row_if": "never"},
                 id="compound-never"),
    pytest.param("expect_compound_columns_to_be_unique", {"column_list": ["id", "k1"], "mostly": 0.9},
                 id="compound-mostly"),
    pytest.param("expect_column_min_to_be_between", {"column": "amount", "min_value": -5, "max_value": 0},
                 id="min"),
    pytest.param("expect_column_min_to_be_between", {"column": "amount", "min_value": 0}, id="min-fails"),
    pytest.param("expect_column_min_to_be_between", {"column": "blank", "min_value": 0}, id="min-all-null"),
    pytest.param("expect_column_max_to_be_between", {"column": "amount", "max_value": 500}, id="max-fails"),
    pytest.param("expect_column_max_to_be_between", {"column": "a", "min_value": 8, "max_value": 8,
                                                     "strict_max": True}, id="max-strict"),
    pytest.param("expect_column_mean_to_be_between", {"column": "amount", "min_value": 0, "max_value": 200},
                 id="mean"),
    pytest.param("expect_column_mean_to_be_between", {"column": "a", "max_value": 3.0}, id="mean-fails"),
    pytest.param("expect_column_mean_to_be_between", {"column": "blank", "min_value": 0}, id="mean-all-null"),
]


@pytest.fixture(scope="module")
def gx():
    """Great Expectations, imported once for the module, with an ephemeral context."""
    import great_expectations
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = great_expectations.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return great_expectations, context


@pytest.fixture(scope="module")
def sqlite_table(tmp_path_factory: pytest.TempPathFactory, gx) -> tuple[sa.Engine, Any, str]:
    path = tmp_path_factory.mktemp("differential") / "seeded.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    create_table(engine)
    _module, context = gx
    source = context.data_sources.add_sqlite(name="sqlite", connection_string=f"sqlite:///{path}")
    return engine, _whole_table_batch(source), TABLE


@pytest.fixture(scope="module")
def postgres_table(postgres_url: str, gx) -> Iterator[tuple[sa.Engine, Any, str]]:
    table = f"seeded_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres_url)
    create_table(engine, table)
    _module, context = gx
    source = context.data_sources.add_postgres(name="postgres", connection_string=postgres_url)
    yield engine, _whole_table_batch(source, table), table
    engine.dispose()


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory: pytest.TempPathFactory, gx) -> tuple[Path, Any]:
    import pandas as pd

    folder = tmp_path_factory.mktemp("inbound")
    path = write_csv(folder / "seeded.csv")
    _module, context = gx
    asset = context.data_sources.add_pandas(name="pandas").add_dataframe_asset(name="seeded")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": pd.read_csv(path)})
    return folder, batch


def _whole_table_batch(source: Any, table: str = TABLE) -> Any:
    return source.add_table_asset(name=table, table_name=table).add_batch_definition_whole_table("all").get_batch()


def _suite(expectation: str, kwargs: dict[str, Any], **source: Any) -> Suite:
    return Suite.model_validate({"id": "differential", "service": "orders-api",
                                 "checks": [{"expectation": expectation, "kwargs": kwargs}], **source})


def _gx_result(gx, batch: Any, expectation: str, kwargs: dict[str, Any]) -> Any:
    module, _context = gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    result = batch.validate(ExpectationConfiguration(type=expectation, kwargs=kwargs).to_domain_obj())
    assert not result.exception_info.get("raised_exception"), result.exception_info
    return result


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal | int | float) and not isinstance(value, bool) else value


def _assert_same(ours, theirs) -> None:
    expected = theirs.result
    assert ours.success == theirs.success
    assert ours.unexpected_count == expected.get("unexpected_count")
    if "element_count" in expected:
        assert ours.element_count == expected["element_count"]
    percent = expected.get("unexpected_percent")
    assert (ours.unexpected_percent is None) == (percent is None)
    if percent is not None:
        assert math.isclose(ours.unexpected_percent, percent)
    if "observed_value" in expected:
        observed, gx_observed = _number(ours.observed_value), _number(expected["observed_value"])
        if isinstance(gx_observed, float) and observed is not None:
            assert math.isclose(observed, gx_observed)
        else:
            assert observed == gx_observed


@pytest.mark.parametrize(("expectation", "kwargs"), CASES)
def test_sqlite_matches_gx(sqlite_table, gx, expectation: str, kwargs: dict[str, Any]) -> None:
    engine, batch, table = sqlite_table
    [ours] = validate_sql(engine, _suite(expectation, kwargs, conn_id="db", table=table), START, END)
    _assert_same(ours, _gx_result(gx, batch, expectation, kwargs))


@pytest.mark.integration
@pytest.mark.parametrize(("expectation", "kwargs"), CASES)
def test_postgres_matches_gx(postgres_table, gx, expectation: str, kwargs: dict[str, Any]) -> None:
    engine, batch, table = postgres_table
    [ours] = validate_sql(engine, _suite(expectation, kwargs, conn_id="db", table=table), START, END)
    _assert_same(ours, _gx_result(gx, batch, expectation, kwargs))


@pytest.mark.parametrize(("expectation", "kwargs"), CASES)
def test_file_engine_matches_gx_pandas(csv_files, gx, expectation: str, kwargs: dict[str, Any]) -> None:
    folder, batch = csv_files
    suite = _suite(expectation, kwargs, files={"directory": str(folder), "pattern": "*.csv", "format": "csv",
                                                "select_by_mtime": False})
    [ours] = validate_files(suite, START, END)
    _assert_same(ours, _gx_result(gx, batch, expectation, kwargs))
