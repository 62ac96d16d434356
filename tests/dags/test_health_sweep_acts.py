"""health_sweep as the scheduler runs it (dag.test()): a broken application becomes an incident and a thread,
on every channel its route names, and no secret of any Connection shows up in logs or messages."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("xoxb-sandbox-token", "sandbox-jira-token", "sandbox-snow-password", "/teams/webhook/")


@pytest.fixture(scope="module")
def health_sweep_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "health_sweep.py"))
    assert bag.import_errors == {}
    return bag.dags["health_sweep"]


def test_broken_apps_open_incidents_and_threads_without_leaking_secrets(
    airflow_db, support_engine, sandbox, health_sweep_dag, capfd, caplog
) -> None:
    caplog.set_level(logging.INFO)
    base = sandbox.base_url
    for path in ("/jira/_sandbox/issues", "/slack/_sandbox/messages", "/servicenow/_sandbox/incidents",
                 "/teams/_sandbox/messages", "/smtp/_sandbox/messages"):
        call(base, "DELETE", path)
    for app in ("orders-api", "payments-api"):
        call(base, "PUT", f"/estate/apps/{app}", {"status_code": 503, "body": {"status": "down"}})
    try:
        runs = [health_sweep_dag.test() for _ in range(3)]
    finally:
        call(base, "POST", "/estate/reset")
    assert [run.state for run in runs] == ["success"] * 3

    jira = call(base, "GET", "/jira/_sandbox/issues")["issues"]
    assert [(i["project"], i["fields"]["labels"][0]) for i in jira] == [
        ("ORD", "prep-support:orders-api/health/availability")
    ]
    snow = call(base, "GET", "/servicenow/_sandbox/incidents")["incidents"]
    assert [i["correlation_id"] for i in snow] == ["payments-api/health/availability"]
    slack = call(base, "GET", "/slack/_sandbox/messages")["messages"]
    # Both routes' channels (a resolution of an earlier test's incident may join commerce-support).
    assert {m["channel_name"] for m in slack} == {"commerce-support", "payments-support"}
    teams = call(base, "GET", "/teams/_sandbox/messages")["messages"]
    assert len(teams) == 1 and "Payments API" in json.dumps(teams[0])
    mail = call(base, "GET", "/smtp/_sandbox/messages")["messages"]
    assert len(mail) == 1 and mail[0]["subject"].startswith("[Payments API] down: payments-api/health")
    assert "<td>down: HTTP 503 (expected 200)</td>" in mail[0]["html"]

    captured = capfd.readouterr()
    logs = "".join(p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log"))
    output = captured.out + captured.err + caplog.text
    assert "orders-api/health: fail (HTTP 503 (expected 200))" in output, "the task logs were captured"
    assert "Plan: Open(dedup_key='orders-api/health/availability'" in output
    rendered = json.dumps([jira, snow, slack, teams, mail])
    for secret in SECRETS:
        assert secret not in captured.out + captured.err, f"{secret} in task output"
        assert secret not in logs, f"{secret} in log files"
        assert secret not in rendered, f"{secret} in a rendered ticket or message"
