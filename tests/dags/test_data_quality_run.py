"""data_quality as the scheduler runs it (dag.test()), against the sandbox's estate database and its planted issues."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from prep_support.schema import IncidentRow, QualityResultRow
from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
NOT_NULL = "dq/orders/expect_column_values_to_not_be_null.customer_id/data"


@pytest.fixture(scope="module")
def data_quality_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "data_quality.py"))
    assert bag.import_errors == {}
    return bag.dags["data_quality"]


def interval_end_after(created_at: str) -> datetime:
    """The 02:00 UTC that closes the nightly interval holding this row."""
    moment = datetime.fromisoformat(created_at).replace(tzinfo=UTC)
    end = moment.replace(hour=2, minute=0, second=0, microsecond=0)
    return end if end > moment else end + timedelta(days=1)


def state(engine, base_url: str) -> dict:
    with engine.connect() as connection:
        results = connection.execute(select(func.count()).select_from(QualityResultRow)).scalar_one()
        incidents = connection.execute(
            select(IncidentRow.__table__).where(IncidentRow.kind == "data").order_by(IncidentRow.id)).all()
    jira = [i for i in call(base_url, "GET", "/jira/_sandbox/issues")["issues"]
            if any(label.startswith("prep-support:dq/") for label in i["fields"]["labels"])]
    return {"results": results, "incidents": incidents, "jira": jira,
            "slack": call(base_url, "GET", "/slack/_sandbox/messages")["messages"]}


def test_a_day_with_planted_issues_opens_incidents_once_and_a_fix_resolves_them(
    airflow_db, support_engine, sandbox, data_quality_dag
) -> None:
    base = sandbox.base_url
    for path in ("/jira/_sandbox/issues", "/slack/_sandbox/messages", "/servicenow/_sandbox/incidents"):
        call(base, "DELETE", path)
    estate = sqlite3.connect(sandbox.estate_db)
    null_rows = estate.execute(
        "SELECT id, created_at FROM orders WHERE customer_id IS NULL ORDER BY created_at").fetchall()
    end = interval_end_after(null_rows[0][1])
    in_interval = [i for i, created in null_rows if interval_end_after(created) == end]

    first = data_quality_dag.test(logical_date=end)
    assert first.state == "failed", "a failing fail check makes the run red, so a backfill of failed runs re-checks it"
    tis = first.get_task_instances()
    failed = [ti for ti in tis if ti.task_id == "validate_suite" and ti.state == "failed"]
    assert failed and all(ti.try_number == 1 for ti in failed), "failing data is not retried"
    states = {ti.task_id: ti.state for ti in tis if ti.task_id != "validate_suite"}
    assert states["reconcile_quality"] == "success" and states["send_notifications"] == "success"
    after_first = state(support_engine, base)
    [incident] = [i for i in after_first["incidents"] if i.dedup_key == NOT_NULL]
    assert incident.status == "open" and incident.ticket_key.startswith("ORD-")
    assert f"{len(in_interval)} unexpected of" in incident.evidence
    [ticket] = [i for i in after_first["jira"] if i["key"] == incident.ticket_key]
    [attachment] = ticket["attachments"]
    assert attachment["filename"].startswith("failing-rows-orders-expect_column_values_to_not_be_null")
    assert any(incident.ticket_key in m["text"] for m in after_first["slack"])
    assert not [m for m in after_first["slack"] if m["channel_name"] == "prep-support"], \
        "the data failure is told by its incident, not again by the failure callback"

    again = data_quality_dag.test(logical_date=end)  # on-call re-runs the day
    assert again.state == "failed"
    after_again = state(support_engine, base)
    assert after_again["results"] == after_first["results"], "results of the day are replaced, not added"
    assert len(after_again["jira"]) == len(after_first["jira"]), "no second ticket"
    assert len(after_again["slack"]) == len(after_first["slack"]), "no second message"
    assert len(call(base, "GET", "/jira/_sandbox/issues")["issues"][0]["attachments"]) >= 1

    estate.execute("UPDATE orders SET customer_id = 1 WHERE customer_id IS NULL")
    estate.commit()
    try:
        data_quality_dag.test(logical_date=end)
    finally:
        estate.executemany("UPDATE orders SET customer_id = NULL WHERE id = ?", [(i,) for i, _ in null_rows])
        estate.commit()
        estate.close()
    # Other days' planted issues in the estate may still fail other checks of this interval; this one passed.
    after_fix = state(support_engine, base)
    [resolved] = [i for i in after_fix["incidents"] if i.dedup_key == NOT_NULL]
    assert resolved.status == "resolved"
    [ticket] = [i for i in after_fix["jira"] if i["key"] == resolved.ticket_key]
    assert ticket["status"] == "Done"
