"""The HITL responder answers through Airflow's REST route, so ``assigned_users`` is enforced."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.hitl import Answer, HitlResponder

FIXTURE_DAGS = Path(__file__).resolve().parents[1] / "fixture_dags"


@pytest.fixture(scope="module")
def probe_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(FIXTURE_DAGS / "hitl_probe.py"))
    assert bag.import_errors == {}
    return bag.get_dag("hitl_probe")


def test_only_the_assigned_user_can_answer(probe_dag) -> None:
    with HitlResponder(lambda request: [Answer("mallory", ["approve"]), Answer("alice", ["reject"])]) as responder:
        run = probe_dag.test(logical_date=datetime(2026, 11, 1, tzinfo=UTC))

    assert run.state == "success"
    [refusal] = responder.refusals
    assert (refusal.answer.user, refusal.status) == ("mallory", 403)
    assert "not a respondent" in refusal.detail
    [(request, answer)] = responder.answered
    assert (request.task_id, request.subject, request.assignees, answer.user) == (
        "decide", "Ship release 1.2?", ["alice"], "alice")
    record = next(ti for ti in run.get_task_instances() if ti.task_id == "record")
    assert record.xcom_pull(task_ids="record") == "reject by alice"
