"""Our own check kinds (freshness, volume, schema, referential, custom SQL) and the judging rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from prep_support.quality.checks import VolumeKwargs
from prep_support.quality.config import Suite
from prep_support.quality.judge import is_between, map_result, not_null_result, schema_diff, types_match, volume_band
from prep_support.quality.outcomes import MASK, jsonable, masked_sample
from prep_support.quality.sql_engine import validate_sql
from sandbox.estate_db import ORDER_COUNT
from tests.plugins.quality.conftest import ESTATE_NOW


def orders_suite(*checks: dict, **fields) -> Suite:
    data = {"id": "orders", "conn_id": "estate_db", "table": "orders", "partition_column": "created_at",
            "service": "orders-api", "checks": list(checks)}
    return Suite.model_validate({**data, **fields})


def day_before(end: datetime) -> tuple[datetime, datetime]:
    return end - timedelta(days=1), end


FRESHNESS = {"expectation": "freshness", "kwargs": {"column": "created_at", "max_age": "1h"}}


def test_freshness_is_judged_at_the_end_of_the_interval(estate_engine: sa.Engine) -> None:
    [fresh] = validate_sql(estate_engine, orders_suite(FRESHNESS), *day_before(ESTATE_NOW))
    assert fresh.success and fresh.observed_value == "2026-03-10 11:50:01"
    assert fresh.details["age_s"] == 599 and fresh.details["max_age_s"] == 3600
    # A backfilled day ignores rows written after its end, so it is judged as it was then.
    past_end = ESTATE_NOW - timedelta(days=4, hours=3)
    [past] = validate_sql(estate_engine, orders_suite(FRESHNESS), *day_before(past_end))
    assert past.observed_value < past_end.strftime("%Y-%m-%d %H:%M:%S")
    assert past.details["age_s"] < 3600 and past.success


def test_stale_and_empty_freshness_fail(estate_engine: sa.Engine) -> None:
    strict = {"expectation": "freshness", "kwargs": {"column": "created_at", "max_age": "1s"}}
    [stale] = validate_sql(estate_engine, orders_suite(strict), *day_before(ESTATE_NOW))
    assert not stale.success and stale.details["age_s"] == 599
    long_ago = datetime(2020, 1, 2, tzinfo=UTC)
    [empty] = validate_sql(estate_engine, orders_suite(FRESHNESS), *day_before(long_ago))
    assert (empty.success, empty.observed_value) == (False, None)
    assert "no rows" in empty.details["reason"]


@pytest.mark.parametrize(("history", "kwargs", "success", "reason"), [
    pytest.param([], {}, True, "only 0 recorded interval(s), 5 needed", id="no-history"),
    pytest.param([20, 21, 19, 20], {}, True, "only 4 recorded", id="too-little-history"),
    pytest.param([20, 21, 19, 20, 22, 18], {}, False, None, id="far-above-the-band"),
    pytest.param([200, 190, 210, 205, 195], {}, True, None, id="within-the-band"),
    pytest.param([100] * 5 + [20] * 14, {"window": 14}, False, None, id="only-the-window-counts"),
    pytest.param([120, 150], {"method": "factor", "min_history": 2, "max_factor": 1.5}, True, None, id="factor"),
    pytest.param([300, 310], {"method": "factor", "min_history": 2, "min_factor": 0.7}, False, None,
                 id="factor-below"),
])
def test_volume_band_from_history(estate_engine: sa.Engine, history: list[int], kwargs: dict, success: bool,
                                  reason: str | None) -> None:
    suite = orders_suite({"expectation": "volume", "kwargs": kwargs})
    start, end = ESTATE_NOW - timedelta(days=30), ESTATE_NOW + timedelta(seconds=1)
    [volume] = validate_sql(estate_engine, suite, start, end, {"volume": history})
    assert volume.observed_value == ORDER_COUNT and volume.success is success
    if reason:
        assert reason in volume.details["reason"] and "band" not in volume.details
    else:
        assert "reason" not in volume.details and len(volume.details["band"]) == 2


def test_volume_band_rules() -> None:
    mad = VolumeKwargs(min_history=3)
    assert volume_band([100, 100, 100], mad) == (90.0, 110.0)  # MAD 0: the 10 % floor keeps a band
    assert volume_band([100, 110, 90, 100, 300], mad) == (70.0, 130.0)  # median 100, MAD 10, k 3
    assert volume_band([100, 100], mad) is None
    assert volume_band([10, 20, 30], VolumeKwargs(method="factor", min_history=3)) == (5.0, 60.0)


def test_schema_reports_the_diff(estate_engine: sa.Engine) -> None:
    check = {"expectation": "schema", "kwargs": {"columns": {
        "id": "int", "customer_id": "integer", "amount": "integer", "currency": "text", "shipped_at": None}}}
    [schema] = validate_sql(estate_engine, orders_suite(check), *day_before(ESTATE_NOW))
    assert not schema.success
    assert schema.details == {
        "missing": ["shipped_at"], "unexpected": ["status", "created_at"],
        "type_changed": [{"column": "amount", "expected": "integer", "actual": "NUMERIC"}]}
    assert schema.observed_value["amount"] == "NUMERIC"
    allow = {"expectation": "schema", "kwargs": {"allow_extra": True, "columns": {"id": None, "amount": "numeric"}}}
    [relaxed] = validate_sql(estate_engine, orders_suite(allow), *day_before(ESTATE_NOW))
    assert relaxed.success and relaxed.details["unexpected"] == ["customer_id", "currency", "status", "created_at"]


def test_custom_sql_counts_and_samples_the_bad_rows(estate_engine: sa.Engine, sql_dir: Path) -> None:
    (sql_dir / "refunds.sql").write_text(
        "-- refunds of the interval: :data_interval_start/:data_interval_end are bound\n"
        "SELECT id, customer_id, amount FROM orders WHERE status = 'refunded'\n"
        "  AND created_at >= :data_interval_start AND created_at < :data_interval_end\n")
    check = {"expectation": "custom_sql", "id": "refunds", "severity": "warn",
             "kwargs": {"query_file": "refunds.sql", "max_unexpected": 3}}
    start, end = ESTATE_NOW - timedelta(days=30), ESTATE_NOW + timedelta(seconds=1)
    [refunds] = validate_sql(estate_engine, orders_suite(check), start, end)
    with estate_engine.connect() as connection:
        expected = connection.exec_driver_sql("SELECT count(*) FROM orders WHERE status = 'refunded'").scalar()
    assert (refunds.success, refunds.status, refunds.unexpected_count) == (False, "warn", expected)
    assert refunds.sample_columns == ["id", "customer_id", "amount"]
    assert len(refunds.sample_rows) == min(20, expected)
    [none] = validate_sql(estate_engine, orders_suite(check), *day_before(datetime(2020, 1, 1, tzinfo=UTC)))
    assert (none.success, none.unexpected_count, none.sample_rows) == (True, 0, [])


def test_referential_ignores_nulls_and_honours_mostly(estate_engine: sa.Engine) -> None:
    check = {"expectation": "referential", "kwargs": {"column": "customer_id", "to": "customers.id", "mostly": 0.9}}
    start, end = ESTATE_NOW - timedelta(days=30), ESTATE_NOW + timedelta(seconds=1)
    [orphans] = validate_sql(estate_engine, orders_suite(check), start, end)
    assert (orphans.success, orphans.unexpected_count, orphans.sample_rows) == (True, 3, [])
    assert orphans.unexpected_percent == pytest.approx(3 / (ORDER_COUNT - 4) * 100)


def test_map_rules_follow_gx() -> None:
    assert map_result(0, 0, 1.0) == (True, None)  # no non-null value: vacuously true, no percent
    assert map_result(10, 1, 0.9) == (True, 10.0)
    assert map_result(10, 2, 0.9) == (False, 20.0)
    assert not_null_result(0, 0, 1.0) == (True, None)
    assert not_null_result(4, 4, 0.0) == (True, 100.0)


@pytest.mark.parametrize(("value", "low", "high", "expected"), [
    pytest.param(5, 0, 10, True, id="inside"),
    pytest.param(None, 0, 10, False, id="no-value"),
    pytest.param(float("nan"), None, 10, False, id="nan"),
    pytest.param(Decimal("10.00"), 0, 10, True, id="decimal"),
    pytest.param(datetime(2026, 3, 1, 12), "2026-03-01", "2026-03-02", True, id="datetime-string-bounds"),
    pytest.param("2026-03-01 12:00:00", datetime(2026, 3, 1, tzinfo=UTC), None, True, id="text-vs-aware"),
    pytest.param("2026-02-28", date(2026, 3, 1), None, False, id="text-vs-date"),
    pytest.param("b", "a", "c", True, id="strings"),
])
def test_between_rule(value, low, high, expected: bool) -> None:
    assert is_between(value, low, high, False, False) is expected


def test_strict_bounds() -> None:
    assert not is_between(10, 0, 10, False, True)
    assert not is_between(0, 0, 10, True, False)


@pytest.mark.parametrize(("expected", "actual", "match"), [
    ("varchar", "VARCHAR(20)", True), ("varchar(20)", "VARCHAR(30)", False), ("int4", "INTEGER", True),
    ("timestamp", "TIMESTAMP WITHOUT TIME ZONE", True), ("timestamptz", "TIMESTAMP WITH TIME ZONE", True),
    ("numeric", "NUMERIC(10, 2)", True), ("text", "INTEGER", False), (None, "ANYTHING", True),
    ("int64", "int64", True), ("object", "float64", False),
])
def test_type_names(expected, actual: str, match: bool) -> None:
    assert types_match(expected, actual) is match


def test_schema_diff_is_case_insensitive() -> None:
    ok, diff = schema_diff({"ID": "integer"}, {"id": "INTEGER"}, allow_extra=False)
    assert ok and diff == {"missing": [], "unexpected": [], "type_changed": []}


def test_samples_are_json_and_masked() -> None:
    columns, rows = masked_sample(
        ["id", "Email", "paid", "at"],
        [(1, "a@example.com", Decimal("1.50"), datetime(2026, 3, 1, tzinfo=UTC)), (2, None, Decimal("2"), None)],
        ["email"])
    assert columns == ["id", "Email", "paid", "at"]
    assert rows == [[1, MASK, 1.5, "2026-03-01T00:00:00+00:00"], [2, None, 2, None]]
    assert jsonable(float("inf")) is None and jsonable(b"\x01") == "01"
    assert len(masked_sample(["x"], [(n,) for n in range(100)], [])[1]) == 20
