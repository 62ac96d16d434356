"""The rules that turn measured numbers into success, shared by the SQL and the file engine.

The row-level rules copy Great Expectations Core 1.x exactly (``ColumnMapExpectation._validate``,
``_format_map_output``, ``_mostly_success`` and ``_validate_metric_value_between`` in
great_expectations/expectations/expectation.py), including where they surprise: a slice with no
rows, or only NULLs, passes vacuously; ``unexpected_percent`` is relative to the non-null rows
(to all rows for the not-null check); a min/max/mean of no values fails.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from prep_support.quality.checks import VolumeKwargs


def map_result(considered: int, unexpected: int, mostly: float) -> tuple[bool, float | None]:
    """(success, unexpected_percent) of a map expectation over ``considered`` rows (non-null or filtered)."""
    if considered == 0:
        return True, None  # vacuously true, and GX reports no percent
    success = (float(considered) - float(unexpected)) / float(considered) >= mostly
    return success, unexpected / considered * 100


def not_null_result(element_count: int, unexpected: int, mostly: float) -> tuple[bool, float | None]:
    """expect_column_values_to_not_be_null: every row counts, NULLs are the unexpected ones."""
    if element_count == 0:
        return True, None
    return (element_count - unexpected) / element_count >= mostly, unexpected / element_count * 100


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.fromisoformat(str(value))


def _aligned(left: datetime, right: datetime) -> tuple[datetime, datetime]:
    """Naive timestamps are UTC (SQLite text, PostgreSQL ``timestamp``), so both sides compare."""
    if (left.tzinfo is None) != (right.tzinfo is None):
        left, right = (moment if moment.tzinfo else moment.replace(tzinfo=UTC) for moment in (left, right))
    return left, right


def _comparable(value: Any, bound: Any) -> tuple[Any, Any]:
    """GX parses a string bound against a datetime value, and a string value against a date bound."""
    if isinstance(value, datetime) or isinstance(bound, datetime):
        return _aligned(_as_datetime(value), _as_datetime(bound))
    if isinstance(bound, date) and not isinstance(value, date):
        return _as_datetime(value).date(), bound
    if isinstance(value, date) and isinstance(bound, str):
        return value, _as_datetime(bound).date()
    return value, bound


def is_between(value: Any, min_value: Any, max_value: Any, strict_min: bool, strict_max: bool) -> bool:
    """An aggregate (row count, min, max, mean) against its bounds; no value (None, NaN) fails."""
    if value is None or (isinstance(value, float) and value != value):
        return False
    if min_value is not None:
        low, bound = _comparable(value, min_value)
        if not (low > bound if strict_min else low >= bound):
            return False
    if max_value is not None:
        high, bound = _comparable(value, max_value)
        if not (high < bound if strict_max else high <= bound):
            return False
    return True


def freshness_result(newest: Any, interval_end: datetime, max_age: timedelta) -> tuple[bool, dict[str, Any]]:
    """Whether the newest value (or file time) is no older than ``max_age`` at the end of the interval."""
    details: dict[str, Any] = {"max_age_s": max_age.total_seconds(), "as_of": interval_end.isoformat()}
    if newest is None:
        details["reason"] = "no rows (or files) before the end of the interval"
        return False, details
    newest_at, end = _aligned(_as_datetime(newest), interval_end)
    age = end - newest_at
    details["age_s"] = age.total_seconds()
    return age <= max_age, details


def volume_band(history: Sequence[int], kwargs: VolumeKwargs) -> tuple[float, float] | None:
    """The accepted row-count band from the last ``window`` recorded counts, or None with too few."""
    recent = [int(count) for count in history if count is not None][-kwargs.window:]
    if len(recent) < kwargs.min_history:
        return None
    if kwargs.method == "factor":
        return min(recent) * kwargs.min_factor, max(recent) * kwargs.max_factor
    median = statistics.median(recent)
    mad = statistics.median(abs(count - median) for count in recent)
    spread = max(kwargs.k * mad, kwargs.min_spread * median)
    return max(0.0, median - spread), median + spread


def volume_result(row_count: int, history: Sequence[int] | None, kwargs: VolumeKwargs) -> tuple[bool, dict[str, Any]]:
    history = list(history or [])
    band = volume_band(history, kwargs)
    details: dict[str, Any] = {"method": kwargs.method, "history_used": min(len(history), kwargs.window)}
    if band is None:
        details["reason"] = (f"only {len(history)} recorded interval(s), {kwargs.min_history} needed: "
                             "passes while the history builds up")
        return True, details
    details["band"] = [round(band[0], 3), round(band[1], 3)]
    return band[0] <= row_count <= band[1], details


_TYPE_ALIASES = {
    "INT": "INTEGER", "INT4": "INTEGER", "INT8": "BIGINT", "INT2": "SMALLINT", "BOOL": "BOOLEAN",
    "DECIMAL": "NUMERIC", "FLOAT8": "DOUBLE PRECISION", "FLOAT4": "REAL", "CHARACTER VARYING": "VARCHAR",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP", "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE",
    "TIME WITHOUT TIME ZONE": "TIME", "STRING": "TEXT",
}


def _normal_type(name: str, keep_arguments: bool) -> str:
    text = re.sub(r"\s+", " ", name.strip().upper())
    if not keep_arguments:
        text = re.sub(r"\s*\(.*?\)", "", text)
    return _TYPE_ALIASES.get(text, text)


def types_match(expected: str | None, actual: str) -> bool:
    """``varchar`` matches VARCHAR(20); ``varchar(20)`` only VARCHAR(20); aliases (int4, bool, ...) match."""
    if expected is None:
        return True
    keep = "(" in expected
    return _normal_type(expected, keep) == _normal_type(actual, keep)


def schema_diff(expected: Mapping[str, str | None], actual: Mapping[str, str],
                allow_extra: bool) -> tuple[bool, dict[str, Any]]:
    """The difference between expected columns (and types) and the actual ones, and whether it is acceptable."""
    lower = {name.lower(): name for name in actual}
    missing = [name for name in expected if name.lower() not in lower]
    unexpected = [name for name in actual if name.lower() not in {e.lower() for e in expected}]
    changed = [
        {"column": name, "expected": kind, "actual": actual[lower[name.lower()]]}
        for name, kind in expected.items()
        if name.lower() in lower and not types_match(kind, actual[lower[name.lower()]])
    ]
    diff = {"missing": missing, "unexpected": unexpected, "type_changed": changed}
    return not missing and not changed and (allow_extra or not unexpected), diff
