"""Validating a suite whose data is files (CSV, Parquet) in an inbound folder, through pandas.

The interfaces that feed applications drop files; a run checks the files modified within its
data interval (``files.select_by_mtime``, the default) or every matching file. The checks follow
Great Expectations' *pandas* engine, which differs from its SQL engine where NULLs meet
comparisons: a pair check counts a row with one missing value as unexpected (NaN > x is False),
and compound uniqueness treats missing values as equal (``DataFrame.duplicated``). pandas is
imported inside the functions, so loading suites stays cheap; Parquet needs pyarrow (or
fastparquet), and says so when it is not installed. The suite's ``timeout_s`` bounds the regex
checks, the one place where a single value can take unbounded time (catastrophic backtracking).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep_support.quality import checks as spec
from prep_support.quality.config import Suite
from prep_support.quality.judge import (
    freshness_result,
    is_between,
    map_result,
    not_null_result,
    schema_diff,
    volume_result,
)
from prep_support.quality.outcomes import (
    SAMPLE_SIZE,
    CheckOutcome,
    QualityError,
    jsonable,
    masked_outcome,
    masked_sample,
)
from prep_support.quality.patterns import RegexTimedOut, search_before, timed_out

if TYPE_CHECKING:
    import pandas as pd


def validate_files(suite: Suite, interval_start: datetime, interval_end: datetime,
                   volume_history: Mapping[str, list[int]] | None = None) -> list[CheckOutcome]:
    """Every check of a files suite on the interval's files (and rows), in the suite's order."""
    if suite.files is None:
        raise ValueError(f"suite {suite.id!r} reads a database: validate it with sql_engine.validate_sql")
    if interval_start.tzinfo is None or interval_end.tzinfo is None:
        raise ValueError("the data interval must be timezone-aware (Airflow's data_interval_start/end are)")
    deadline = time.monotonic() + suite.timeout_s
    files = matching_files(suite)
    selected = select_files(files, interval_start, interval_end) if suite.files.select_by_mtime else files
    frame = read_frame(suite, selected)
    frame = _in_interval(suite, frame, interval_start, interval_end)
    newest_file = max((mtime for _path, mtime in files if mtime < interval_end.timestamp()), default=None)
    context = _Context(suite, frame, interval_end, dict(volume_history or {}), newest_file, bool(selected), deadline)
    return [context.evaluate(check) for check in suite.checks]


def matching_files(suite: Suite) -> list[tuple[Path, float]]:
    """(path, mtime) of every file of the suite's folder matching its pattern, oldest first."""
    assert suite.files is not None
    folder = suite.files.resolved_directory()
    if not folder.is_dir():
        raise QualityError(suite, f"folder {folder} does not exist")
    found = [(path, path.stat().st_mtime) for path in folder.glob(suite.files.pattern) if path.is_file()]
    return sorted(found, key=lambda item: (item[1], item[0].name))


def select_files(files: list[tuple[Path, float]], start: datetime, end: datetime) -> list[tuple[Path, float]]:
    """The files modified within [start, end)."""
    low, high = start.timestamp(), end.timestamp()
    return [(path, mtime) for path, mtime in files if low <= mtime < high]


def read_frame(suite: Suite, files: list[tuple[Path, float]]) -> pd.DataFrame:
    """The rows of all ``files`` in one DataFrame; QualityError naming the file that cannot be read."""
    import pandas as pd

    source = suite.files
    assert source is not None
    if source.format == "parquet" and files and not (
        importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet")
    ):
        raise QualityError(suite, f"cannot read Parquet file {files[0][0]}: pandas needs pyarrow (or fastparquet), "
                                  "which is not installed")
    frames = []
    for path, _mtime in files:
        try:
            if source.format == "csv":
                frames.append(pd.read_csv(path, sep=source.delimiter, encoding=source.encoding))
            else:
                frames.append(pd.read_parquet(path))
        except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
            raise QualityError(suite, f"cannot read {path}: {type(error).__name__}: {error}") from error
    if not frames:
        needed = dict.fromkeys([suite.partition_column or "", *(c for check in suite.checks for c in check.columns)])
        return pd.DataFrame(columns=[name for name in needed if name])
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _in_interval(suite: Suite, frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    import pandas as pd

    _require_columns(suite, frame)
    if suite.partition_column is None:
        return frame
    moments = pd.to_datetime(frame[suite.partition_column], utc=True, errors="coerce")
    return frame[(moments >= pd.Timestamp(start)) & (moments < pd.Timestamp(end))].reset_index(drop=True)


def _require_columns(suite: Suite, frame: pd.DataFrame) -> None:
    needed = {suite.partition_column} if suite.partition_column else set()
    needed |= {name for check in suite.checks for name in check.columns}
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise QualityError(suite, f"column(s) missing from the files: {', '.join(missing)}; "
                                  f"they have {', '.join(map(str, frame.columns))}")


class _Context:
    def __init__(self, suite: Suite, frame: pd.DataFrame, end: datetime, history: dict[str, list[int]],
                 newest_file: float | None, has_files: bool, deadline: float) -> None:
        self.suite, self.frame, self.end, self.history = suite, frame, end, history
        self.newest_file, self.has_files, self.deadline = newest_file, has_files, deadline

    def evaluate(self, check: spec.CheckSpec) -> CheckOutcome:
        try:
            return masked_outcome(check, _EVALUATORS[type(check)](self, check), self.suite.sensitive_columns)
        except RegexTimedOut as error:
            raise QualityError(self.suite, f"check {check.id!r}: {timed_out(self.suite.timeout_s)}") from error
        except (TypeError, ValueError) as error:  # e.g. text against numeric bounds, the mean of text
            raise QualityError(self.suite, f"check {check.id!r}: {type(error).__name__}: {error}") from error

    def map_outcome(self, check: spec.CheckSpec, unexpected: pd.Series, considered: int,
                    not_null: bool = False) -> CheckOutcome:
        """A row-level outcome from the mask of unexpected rows, with a masked sample when it fails."""
        count, elements = int(unexpected.sum()), len(self.frame)
        if not_null:
            success, percent = not_null_result(elements, count, check.kwargs.mostly)
        else:
            success, percent = map_result(considered, count, check.kwargs.mostly)
        columns: list[str] = []
        rows: list[list[Any]] = []
        if not success and count:
            bad = self.frame[unexpected].head(SAMPLE_SIZE)
            columns, rows = masked_sample([str(c) for c in bad.columns], bad.itertuples(index=False),
                                          self.suite.sensitive_columns)
        return CheckOutcome.of(check, success, observed_value=percent, unexpected_count=count,
                               element_count=elements, unexpected_percent=percent, sample_columns=columns,
                               sample_rows=rows)

    def column_values(self, check: spec.CheckSpec, expected_of_non_null: Any) -> CheckOutcome:
        """GX's column map: only non-null values are judged; ``expected_of_non_null`` maps them to bools."""
        column = self.frame[check.kwargs.column]
        present = column.notna()
        expected = expected_of_non_null(column[present]).astype(bool)
        unexpected = present.copy()
        unexpected[present] = ~expected
        return self.map_outcome(check, unexpected, int(present.sum()))


def _not_null(context: _Context, check: spec.NotNull) -> CheckOutcome:
    return context.map_outcome(check, context.frame[check.kwargs.column].isna(), len(context.frame), not_null=True)


def _unique(context: _Context, check: spec.Unique) -> CheckOutcome:
    return context.column_values(check, lambda values: ~values.duplicated(keep=False))


def _between(context: _Context, check: spec.Between) -> CheckOutcome:
    kwargs = check.kwargs

    def expected(values: pd.Series) -> pd.Series:
        import pandas as pd

        low, high = kwargs.min_value, kwargs.max_value
        if pd.api.types.is_datetime64_any_dtype(values):
            low, high = (pd.Timestamp(b) if b is not None else None for b in (low, high))
        elif not pd.api.types.is_numeric_dtype(values):
            return values.map(lambda value: _scalar_between(value, low, high, kwargs.strict_min, kwargs.strict_max))
        result = pd.Series(True, index=values.index)
        if low is not None:
            result &= values > low if kwargs.strict_min else values >= low
        if high is not None:
            result &= values < high if kwargs.strict_max else values <= high
        return result

    return context.column_values(check, expected)


def _scalar_between(value: Any, low: Any, high: Any, strict_min: bool, strict_max: bool) -> bool:
    """GX's element-wise rule for non-numeric columns: a value and its bounds must both be text, or neither."""
    for bound in (low, high):
        if bound is not None and isinstance(value, str) != isinstance(bound, str):
            raise TypeError("column values, min_value and max_value must either be None or of the same type")
    above = low is None or (value > low if strict_min else value >= low)
    below = high is None or (value < high if strict_max else value <= high)
    return bool(above and below)


def _in_set(context: _Context, check: spec.InSet) -> CheckOutcome:
    return context.column_values(check, lambda values: values.isin(check.kwargs.value_set))


def _regex(context: _Context, check: spec.MatchRegex) -> CheckOutcome:
    pattern = check.kwargs.regex
    return context.column_values(check, lambda values: values.astype(str).map(
        lambda text: search_before(pattern, text, context.deadline)))


def _pair(context: _Context, check: spec.PairGreater) -> CheckOutcome:
    import pandas as pd

    kwargs = check.kwargs
    a, b = context.frame[kwargs.column_A], context.frame[kwargs.column_B]
    kept = {"both_values_are_missing": ~(a.isna() & b.isna()), "either_value_is_missing": a.notna() & b.notna(),
            "neither": pd.Series(True, index=a.index)}[kwargs.ignore_row_if]
    expected = (a >= b) if kwargs.or_equal else (a > b)
    return context.map_outcome(check, kept & ~expected, int(kept.sum()))


def _compound(context: _Context, check: spec.CompoundUnique) -> CheckOutcome:
    import pandas as pd

    kwargs = check.kwargs
    values = context.frame[list(kwargs.column_list)]
    missing = values.isna()
    kept = {"all_values_are_missing": ~missing.all(axis=1), "any_value_is_missing": ~missing.any(axis=1),
            "never": pd.Series(True, index=values.index)}[kwargs.ignore_row_if]
    unexpected = kept.copy()
    unexpected[kept] = values[kept].duplicated(keep=False)
    return context.map_outcome(check, unexpected, int(kept.sum()))


def _row_count(context: _Context, check: spec.RowCount) -> CheckOutcome:
    kwargs, count = check.kwargs, len(context.frame)
    success = is_between(count, kwargs.min_value, kwargs.max_value, kwargs.strict_min, kwargs.strict_max)
    return CheckOutcome.of(check, success, observed_value=count, element_count=count)


def _aggregate(context: _Context, check: spec.CheckSpec) -> CheckOutcome:
    kwargs = check.kwargs
    column = context.frame[kwargs.column]
    name = {"expect_column_min_to_be_between": "min", "expect_column_max_to_be_between": "max",
            "expect_column_mean_to_be_between": "mean"}[check.expectation]
    value = _python(getattr(column, name)()) if column.notna().any() else None
    success = is_between(value, kwargs.min_value, kwargs.max_value, kwargs.strict_min, kwargs.strict_max)
    return CheckOutcome.of(check, success, observed_value=jsonable(value), element_count=len(context.frame))


def _python(value: Any) -> Any:
    """A pandas/numpy scalar as the Python value the judging rules compare (Timestamp -> datetime)."""
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def _freshness(context: _Context, check: spec.Freshness) -> CheckOutcome:
    import pandas as pd

    if check.kwargs.column is None:
        newest: Any = (datetime.fromtimestamp(context.newest_file, UTC) if context.newest_file is not None else None)
    else:
        moments = pd.to_datetime(context.frame[check.kwargs.column], utc=True, errors="coerce")
        moments = moments[moments < pd.Timestamp(context.end)]
        newest = moments.max().to_pydatetime() if moments.notna().any() else None
    success, details = freshness_result(newest, context.end, check.kwargs.max_age)
    return CheckOutcome.of(check, success, observed_value=jsonable(newest), details=details)


def _volume(context: _Context, check: spec.Volume) -> CheckOutcome:
    count = len(context.frame)
    success, details = volume_result(count, context.history.get(check.id), check.kwargs)
    return CheckOutcome.of(check, success, observed_value=count, element_count=count, details=details)


def _schema(context: _Context, check: spec.Schema) -> CheckOutcome:
    if not context.has_files:
        return CheckOutcome.of(check, True, details={"reason": "no file in the interval: nothing to compare"})
    actual = {str(name): str(dtype) for name, dtype in context.frame.dtypes.items()}
    success, diff = schema_diff(check.kwargs.columns_expected, actual, check.kwargs.allow_extra)
    return CheckOutcome.of(check, success, observed_value=actual, details=diff)


_EVALUATORS: dict[type, Any] = {
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
}
