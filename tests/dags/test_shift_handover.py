"""shift_handover with dag.test(): a seeded shift against the sandbox's Slack, Confluence and SMTP, and
Airflow's own REST API served over HTTP (waiting approval, failed run) as the operator reads it in production."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from sqlalchemy import create_engine, insert

from prep_support.migrate import upgrade
from prep_support.schema import IncidentRow, OutageRow, QualityResultRow, ServiceRow, ShiftHandoverRow
from prep_support.shifts import shift_at
from tests.hitl import Answer, pending_requests, respond
from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
TEAM = "commerce-team@example.com"  # owns orders-api; the handover's platform team in this test


def parse(name: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{name}.py"))
    assert bag.import_errors == {}
    return bag.dags[name]


@pytest.fixture
def airflow_api(airflow_db, monkeypatch):
    """Airflow's core REST API on a free port (uvicorn), and the ``airflow_api`` Connection to it."""
    import uvicorn
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    app = create_app(apps="core")
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps({"conn_type": "http", "host": base,
                                                                "extra": {"token": token}}))
    yield base, token
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def fresh_support_db(tmp_path, monkeypatch):
    """A support database of this test's own: the shift must hold exactly what the test seeds."""
    path = tmp_path / "support.db"
    monkeypatch.setenv("AIRFLOW_CONN_SUPPORT_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def routing_copy(tmp_path, monkeypatch) -> Path:
    data = yaml.safe_load((ROOT / "include" / "config" / "routing.yaml").read_text())
    data["shifts"]["platform_team"] = TEAM
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("PREP_SUPPORT_ROUTING", str(path))
    return path


def waiting_approval() -> subprocess.Popen:
    """hitl_probe's approval, parked in awaiting_input by a dag.test() in another process."""
    path = str(ROOT / "tests" / "fixture_dags" / "hitl_probe.py")
    script = f"from airflow.dag_processing.dagbag import DagBag\nDagBag({path!r}).dags['hitl_probe'].test()\n"
    process = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300  # a fresh interpreter importing Airflow: slow on a busy machine
    while not [r for r in pending_requests() if r.dag_id == "hitl_probe"]:
        assert process.poll() is None and time.monotonic() < deadline, "hitl_probe never waited for input"
        time.sleep(0.5)
    return process


def seed(engine, shift) -> None:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(insert(ServiceRow.__table__).values(
            id="orders-api", name="Orders API", owner=TEAM, team_channel="#commerce-support", tracker_project="ORD",
            criticality="high", depends_on=[], active=True, updated_at=now))
        for kind, hours, ticket in (("availability", 5, "ORD-7"), ("performance", 2, "ORD-8")):
            connection.execute(insert(IncidentRow.__table__).values(
                dedup_key=f"orders-api/health/{kind}", service_id="orders-api", check_id="orders-api/health", kind=kind,
                status="open", state="down", priority="High", tracker="jira", ticket_key=ticket,
                ticket_url=f"https://jira.example/browse/{ticket}", evidence="503", updates=1, opened_run_id="r",
                opened_at=now - timedelta(hours=hours), updated_at=now - timedelta(minutes=30)))
        connection.execute(insert(OutageRow.__table__).values(
            id="out-1", service_id="orders-api", kind="planned", severity="minor", status="scheduled", impact="",
            workaround="", channels=[], affected=["orders-api"], starts_at=shift.start + timedelta(hours=2),
            expected_end=shift.start + timedelta(hours=3), last_update="", source="form", created_run_id="r",
            created_at=now, updated_at=now))
        connection.execute(insert(QualityResultRow.__table__).values(
            suite_id="orders", check_id="orders/amount_positive", interval_start=datetime(2026, 12, 1, tzinfo=UTC),
            interval_end=datetime(2026, 12, 2, tzinfo=UTC), expectation="expect_column_values_to_be_between",
            severity="fail", success=False, details={}, sample={}, run_id="r", evaluated_at=now))


def handover_messages(base: str, channel: str) -> list[str]:
    return [m["text"] for m in call(base, "GET", "/slack/_sandbox/messages")["messages"]
            if m.get("channel_name", m.get("channel")) in (channel, channel.lstrip("#")) and "Handover to" in m["text"]]


def test_a_seeded_shift_is_handed_over_once_and_an_empty_one_in_one_line(
        sandbox, airflow_api, fresh_support_db, routing_copy) -> None:
    api_base, token = airflow_api
    base = sandbox.base_url
    for path in ("/slack/_sandbox/messages", "/smtp/_sandbox/messages", "/confluence/_sandbox/pages"):
        call(base, "DELETE", path)
    shift = shift_at(datetime.now(UTC), yaml_shifts(routing_copy))
    next_change = shift.end  # the handover at the next change: what failed until then is in it
    # The last handover was just now: DAG runs that earlier tests of the session left failed are not this shift's.
    with fresh_support_db.begin() as connection:
        connection.execute(insert(ShiftHandoverRow.__table__).values(
            team=TEAM, shift_start=datetime.now(UTC), shift_end=next_change, since=shift.start, items=0, summary={},
            created_at=datetime.now(UTC)))
    seed(fresh_support_db, shift_at(next_change, yaml_shifts(routing_copy)))
    failed = parse_fixture("failing_probe").test()
    assert failed.state == "failed"
    approval = waiting_approval()
    try:
        dag = parse("shift_handover")
        assert dag.test(logical_date=next_change).state == "success"
        # The same shift again (a retry, a clear, a manual trigger): the task's work, without a second dag.test.
        again = dag.get_task("hand_over").execute(context={"logical_date": next_change + timedelta(minutes=5)})
        assert all(not team["recorded_now"] for team in again["teams"]) and again["sent"] == 0
    finally:
        request = next(r for r in pending_requests() if r.dag_id == "hitl_probe")
        respond(request, Answer("alice", ["approve"]))
        approval.wait(timeout=120)

    posts = handover_messages(base, "#commerce-support")
    assert len(posts) == 1
    post = posts[0]
    bullets = [line for line in post.splitlines() if line.startswith("• ")]
    assert len(bullets) == 6, post
    assert "ORD-7" in post and "ORD-8" in post and "Planned outages this shift" in post
    assert "Ship release 1.2?" in post and "failing_probe" in post and "2026-12-01" in post
    for other in ("#payments-support", "#web-support", "#data-support"):  # empty shifts: one line each
        lines = handover_messages(base, other)
        assert len(lines) == 1 and "\n" not in lines[0] and "nothing open" in lines[0]

    mails = [m for m in call(base, "GET", "/smtp/_sandbox/messages")["messages"] if TEAM in json.dumps(m)]
    assert len(mails) == 1
    pages = [p for p in call(base, "GET", "/confluence/_sandbox/pages")["pages"]
             if p["title"].startswith("Shift handover ")]
    assert len(pages) == 1
    body = pages[0]["body"]
    assert body.count("handover-commerce-team") == 1 and body.count('ac:name="anchor"') == 6  # a section per team
    section = body.split("handover-commerce-team", 1)[1].split('ac:name="anchor"', 1)[0]
    assert section.count("<tr><td>Orders API</td>") == 2 and "Ship release 1.2?" in section

    import requests

    links = [part.split(">")[0] for part in post.split("<")[1:] if part.startswith(api_base)]
    assert len(links) == 2  # the waiting approval and the failed run, into Airflow's UI
    for link in links:  # each names a run (and task) that Airflow's API knows
        steps = urlparse(link).path.strip("/").split("/")
        api = f"{api_base}/api/v2/dags/{steps[1]}/dagRuns/{steps[3]}"
        if "tasks" in steps:
            api += f"/taskInstances/{steps[5]}"
        assert requests.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200, link


def yaml_shifts(path: Path):
    from prep_support.shifts import Shifts

    return Shifts.model_validate(yaml.safe_load(path.read_text())["shifts"])


def parse_fixture(name: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "tests" / "fixture_dags" / f"{name}.py"))
    return bag.dags[name]


