"""Form values read through one set of helpers: a bad one names its field and quotes at most a prefix."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from prep_support.form_input import BadInput, check_sizes, form_date, form_datetime, quoted


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("2030-02-28T10:00Z", datetime(2030, 2, 28, 10, tzinfo=UTC), id="utc"),
    pytest.param("2030-02-28 12:00+02:00", datetime(2030, 2, 28, 10, tzinfo=UTC), id="offset"),
])
def test_form_datetime_reads_real_times(value: str, expected: datetime) -> None:
    assert form_datetime(value, "deadline") == expected


@pytest.mark.parametrize(("value", "said"), [
    pytest.param("2030-02-30T10:00Z", "deadline: '2030-02-30T10:00Z' is not a real date and time", id="feb-30"),
    pytest.param("2030-02-28T25:00Z", "deadline: '2030-02-28T25:00Z' is not a real date and time", id="hour-25"),
    pytest.param("tomorrow", "deadline: 'tomorrow' is not a date-time such as", id="words"),
    pytest.param("2030-02-28T10:00", "deadline: '2030-02-28T10:00' needs a time zone", id="no-zone"),
])
def test_form_datetime_names_the_field(value: str, said: str) -> None:
    with pytest.raises(BadInput, match="^" + said.replace("(", r"\(")):
        form_datetime(value, "deadline")


def test_form_date_and_the_workflows_errors_are_bad_input() -> None:
    from prep_support.lifecycle import LifecycleError
    from prep_support.outages import OutageRequestError
    from prep_support.uat import PlanError

    assert form_date("2030-02-28", "effective_date") == date(2030, 2, 28)
    with pytest.raises(BadInput, match=r"^effective_date: '2030-02-30' is not a real date"):
        form_date("2030-02-30", "effective_date")
    assert all(issubclass(error, BadInput) for error in (LifecycleError, OutageRequestError, PlanError))


def test_oversized_values_are_refused_by_length() -> None:
    check_sizes({"impact": "x" * 10_000, "channels": ["slack"]})
    with pytest.raises(BadInput) as refused:
        check_sizes({"impact": "y" * 3_000_000})
    assert str(refused.value).startswith("impact: 3,000,000 characters, more than the 10,000")
    assert len(str(refused.value)) < 200
    assert quoted("z" * 100, 10) == "'zzzzzzzzzz'… (100 characters)"
