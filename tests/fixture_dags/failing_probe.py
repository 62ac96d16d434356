"""A test-only DAG (the ``test-dags`` bundle of tests/conftest.py) whose one task fails: a failed run to hand over."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False, tags=["test"],
     default_args={"retries": 0})
def failing_probe():
    @task
    def settle() -> None:
        raise RuntimeError("the bank file is missing")

    settle()


failing_probe()
