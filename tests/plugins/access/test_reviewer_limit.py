"""A campaign with more reviewers than Airflow can map fails at once, naming the setting to raise."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from operators.access_review import check_mappable


def test_more_reviewers_than_max_map_length_names_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")
    check_mappable("2026-Q4", ["alice", "bob"])
    with pytest.raises(AirflowFailException) as refused:
        check_mappable("2026-Q4", ["alice", "bob", "carol"])
    message = str(refused.value)
    assert "3 reviewers" in message and "max_map_length = 2" in message
    assert "AIRFLOW__CORE__MAX_MAP_LENGTH to at least 3" in message
