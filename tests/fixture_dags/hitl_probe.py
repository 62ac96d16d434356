"""A test-only DAG (the ``test-dags`` bundle of tests/conftest.py): one approval assigned to alice."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False, tags=["test"])
def hitl_probe():
    decide = HITLOperator(task_id="decide", subject="Ship release 1.2?", options=["approve", "reject"],
                            assigned_users=[{"id": "alice", "name": "alice"}])

    @task
    def record(outcome: dict) -> str:
        return f"{outcome['chosen_options'][0]} by {outcome['responded_by_user']['name']}"

    record(decide.output)


hitl_probe()
