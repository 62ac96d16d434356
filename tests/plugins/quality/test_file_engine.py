"""The file engine: inbound CSV files chosen by modification time, checked through pandas."""

from __future__ import annotations

import importlib.util
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prep_support.quality.config import Suite
from prep_support.quality.file_engine import validate_files
from prep_support.quality.outcomes import MASK, QualityError

DAY = datetime(2026, 3, 9, tzinfo=UTC)
NEXT_DAY = DAY + timedelta(days=1)
HEADER = "id,email,amount,created_at\n"


def drop(folder: Path, name: str, body: str, at: datetime) -> Path:
    """A file as an interface would leave it, modified at ``at``."""
    path = folder / name
    path.write_text(HEADER + body)
    os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def files_suite(folder: Path, *checks: dict, **source) -> Suite:
    files = {"directory": str(folder), "pattern": "orders_*.csv", "format": "csv", **source}
    return Suite.model_validate({"id": "inbound_orders", "files": files, "service": "orders-api",
                                 "sensitive_columns": ["email"], "checks": list(checks)})


@pytest.fixture
def inbound(tmp_path: Path) -> Path:
    folder = tmp_path / "inbound"
    folder.mkdir()
    drop(folder, "orders_0308.csv", "1,a@example.com,10,2026-03-08 10:00:00\n", DAY - timedelta(hours=14))
    drop(folder, "orders_0309.csv", "2,b@example.com,-5,2026-03-09 09:00:00\n3,,7.5,2026-03-09 10:00:00\n"
                                    "3,c@example.com,8,2026-03-09 11:00:00\n", DAY + timedelta(hours=11))
    drop(folder, "other.csv", "9,z@example.com,1,2026-03-09 10:00:00\n", DAY + timedelta(hours=1))
    return folder


ROWS = {"expectation": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}
UNIQUE = {"expectation": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}}
NOT_NULL = {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "email"}}
POSITIVE = {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0}}


def test_the_interval_reads_the_files_modified_within_it(inbound: Path) -> None:
    rows, unique, not_null, positive = validate_files(files_suite(inbound, ROWS, UNIQUE, NOT_NULL, POSITIVE),
                                                      DAY, NEXT_DAY)
    assert rows.observed_value == 3
    assert (unique.success, unique.unexpected_count) == (False, 2)
    assert (not_null.success, not_null.unexpected_count) == (False, 1)
    assert (positive.success, positive.unexpected_count, positive.element_count) == (False, 1, 3)
    assert positive.sample_columns == ["id", "email", "amount", "created_at"]
    assert positive.sample_rows == [[2, MASK, -5.0, "2026-03-09 09:00:00"]]
    assert not_null.sample_rows == [[3, None, 7.5, "2026-03-09 10:00:00"]]


def test_whole_set_and_partition_column(inbound: Path) -> None:
    [everything] = validate_files(files_suite(inbound, ROWS, select_by_mtime=False), DAY, NEXT_DAY)
    assert everything.observed_value == 4
    by_rows = Suite.model_validate({**files_suite(inbound, ROWS, select_by_mtime=False).model_dump(by_alias=True),
                                    "partition_column": "created_at"})
    [day_rows] = validate_files(by_rows, DAY + timedelta(hours=9, minutes=30), NEXT_DAY)
    assert day_rows.observed_value == 2


def test_no_file_in_the_interval(inbound: Path) -> None:
    freshness = {"expectation": "freshness", "kwargs": {"max_age": "26h"}}
    schema = {"expectation": "schema", "kwargs": {"columns": {"id": "int64"}}}
    late = NEXT_DAY + timedelta(days=1)
    rows, not_null, fresh, shape = validate_files(files_suite(inbound, ROWS, NOT_NULL, freshness, schema),
                                                  late, late + timedelta(days=1))
    assert (rows.success, rows.observed_value) == (False, 0)
    assert not_null.success and not_null.unexpected_percent is None  # vacuously true, as in GX
    assert not fresh.success and fresh.details["age_s"] == 61 * 3600  # the 03-09 11:00 file
    assert shape.success and "no file" in shape.details["reason"]


def test_freshness_of_files_is_the_newest_mtime_before_the_end(inbound: Path) -> None:
    freshness = {"expectation": "freshness", "kwargs": {"max_age": "26h"}}
    [fresh] = validate_files(files_suite(inbound, freshness), DAY, NEXT_DAY)
    assert fresh.success and fresh.observed_value == "2026-03-09T11:00:00+00:00"
    # Judged as of an earlier end, the 03-09 file did not exist yet and the 03-08 one was 24 h old.
    strict = {"expectation": "freshness", "kwargs": {"max_age": "20h"}}
    [then] = validate_files(files_suite(inbound, strict), DAY - timedelta(days=1) + timedelta(hours=10),
                            DAY + timedelta(hours=10))
    assert not then.success and then.details["age_s"] == 24 * 3600


def test_schema_of_files(inbound: Path) -> None:
    schema = {"expectation": "schema", "kwargs": {"columns": {"id": "int64", "amount": "int64", "note": None},
                                                  "allow_extra": True}}
    [shape] = validate_files(files_suite(inbound, schema), DAY, NEXT_DAY)
    assert not shape.success
    assert shape.details["missing"] == ["note"]
    assert shape.details["type_changed"] == [{"column": "amount", "expected": "int64", "actual": "float64"}]


def test_errors_name_the_suite_and_cause(inbound: Path, tmp_path: Path) -> None:
    missing = {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "shipped_at"}}
    with pytest.raises(QualityError, match=r"suite 'inbound_orders' \(files .*orders_\*\.csv\): column\(s\) "
                                           r"missing from the files: shipped_at"):
        validate_files(files_suite(inbound, missing), DAY, NEXT_DAY)
    with pytest.raises(QualityError, match=r"folder .*nowhere does not exist"):
        validate_files(files_suite(tmp_path / "nowhere", ROWS), DAY, NEXT_DAY)
    broken = inbound / "orders_0309.csv"
    broken.write_bytes(HEADER.encode() + b'1,"unterminated,\xff\xfe\n')
    os.utime(broken, ((DAY + timedelta(hours=1)).timestamp(),) * 2)
    with pytest.raises(QualityError, match=r"cannot read .*orders_0309.csv"):
        validate_files(files_suite(inbound, ROWS), DAY, NEXT_DAY)
    mean = {"expectation": "expect_column_mean_to_be_between", "kwargs": {"column": "email", "min_value": 0}}
    drop(inbound, "orders_0309.csv", "1,a@example.com,1,2026-03-09 01:00:00\n", DAY + timedelta(hours=1))
    with pytest.raises(QualityError, match=r"check 'expect_column_mean_to_be_between.email'"):
        validate_files(files_suite(inbound, mean), DAY, NEXT_DAY)


@pytest.mark.skipif(bool(importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet")),
                    reason="a Parquet engine is installed")
def test_parquet_without_pyarrow_says_so(tmp_path: Path) -> None:
    (tmp_path / "orders.parquet").write_bytes(b"PAR1")
    suite = files_suite(tmp_path, ROWS, pattern="*.parquet", format="parquet", select_by_mtime=False)
    with pytest.raises(QualityError, match=r"cannot read Parquet file .*orders.parquet: pandas needs pyarrow"):
        validate_files(suite, DAY, NEXT_DAY)


def test_database_suites_are_not_for_this_engine() -> None:
    suite = Suite.model_validate({"id": "t", "conn_id": "db", "table": "t", "service": "s", "checks": [ROWS]})
    with pytest.raises(ValueError, match="validate_sql"):
        validate_files(suite, DAY, NEXT_DAY)
