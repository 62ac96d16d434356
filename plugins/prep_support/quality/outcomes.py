"""What validating a suite produces: one :class:`CheckOutcome` per check, or a :class:`QualityError`.

Outcomes are plain, JSON-able values (the DAG records them and puts a summary in XCom). A suite
that cannot be validated at all (database unreachable, table or column missing, query timed out,
unreadable file) raises QualityError instead, so no partial list is ever recorded as passed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prep_support.quality.lineage import hidden_columns
from prep_support.redaction import redact

if TYPE_CHECKING:
    from prep_support.quality.checks import CheckSpec
    from prep_support.quality.config import Suite

SAMPLE_SIZE = 20
MASK = "***"


class QualityError(RuntimeError):
    """A suite could not be validated; the message names the suite, its dataset and the cause."""

    def __init__(self, suite: Suite, cause: str) -> None:
        cause = redact(cause)  # a driver's error or an expanded $AIRFLOW_CONN_... path can carry a password
        super().__init__(f"suite {suite.id!r} ({suite.dataset}): {cause}")
        self.suite_id = suite.id
        self.dataset = suite.dataset
        self.cause = cause


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check for one data interval.

    For row-level checks ``unexpected_count`` follows Great Expectations: rows whose value breaks
    the expectation, NULLs ignored except by the not-null check; ``unexpected_percent`` is relative
    to the rows considered (non-null ones), and ``observed_value`` is that percent. For aggregate
    checks ``observed_value`` is the measured value (row count, min, newest timestamp, ...).
    """

    check_id: str
    expectation: str
    severity: str
    success: bool
    observed_value: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_percent: float | None = None
    sample_columns: list[str] = field(default_factory=list)
    sample_rows: list[list[Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, check: CheckSpec, success: bool, **values: Any) -> CheckOutcome:
        """The outcome of ``check``, named and graded as the suite declares it."""
        return cls(check_id=check.id, expectation=check.expectation, severity=check.severity,
                   success=bool(success), **values)

    @property
    def status(self) -> str:
        """``ok``, or the check's severity (``warn`` or ``fail``) when it did not pass."""
        return "ok" if self.success else self.severity

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def jsonable(value: Any) -> Any:
    """A database or pandas value as something ``json.dumps`` takes (and a CSV shows faithfully).

    Lists, tuples and dicts keep their shape, their items converted: a sample's rows are stored as
    JSON arrays, never as the ``str()`` of a Python list (which a ticket would show character by
    character).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.is_finite() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return jsonable(item())
    isoformat = getattr(value, "isoformat", None)  # pandas Timestamp
    if callable(isoformat):
        return isoformat()
    if value != value:  # NaN, NaT
        return None
    return str(value)


def masked_sample(columns: Sequence[str], rows: Iterable[Sequence[Any]], sensitive: Iterable[str],
                  query: str | None = None) -> tuple[list[str], list[list[Any]]]:
    """Up to SAMPLE_SIZE rows as JSON-able lists, with sensitive columns' values replaced by ``***``.

    When the rows come from a custom ``query``, a result column is masked by its lineage (an alias
    or expression of a sensitive column), not only by its name. A NULL in a sensitive column stays
    NULL: that it is missing is what a not-null check reports, and says nothing about the value.
    """
    masks = hidden_columns(columns, sensitive, query)
    sample = []
    for row in rows:
        values = [jsonable(value) for value in row]
        sample.append([MASK if hide and value is not None else value
                       for hide, value in zip(masks, values, strict=True)])
        if len(sample) == SAMPLE_SIZE:
            break
    return list(columns), sample


# Checks whose observed value is a value of the data (the smallest e-mail, the newest timestamp),
# not a count or a percent: on a sensitive column it is masked like a sample's cell.
_OBSERVES_A_VALUE = {"expect_column_min_to_be_between", "expect_column_max_to_be_between",
                     "expect_column_mean_to_be_between", "freshness"}


def masked_outcome(check: CheckSpec, outcome: CheckOutcome, sensitive: Iterable[str]) -> CheckOutcome:
    """``outcome`` with its observed value masked when it is a value of a sensitive column.

    The judgement was made on the real value; only what is stored, logged and shown is masked.
    """
    hidden = {name.lower() for name in sensitive}
    reads_hidden = any(column.lower() in hidden for column in check.columns)
    if not reads_hidden or check.expectation not in _OBSERVES_A_VALUE or outcome.observed_value is None:
        return outcome
    return replace(outcome, observed_value=MASK)
