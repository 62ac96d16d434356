"""Monitoring that acts, end to end over real HTTP: sandbox estate -> probes -> health -> Jira/ServiceNow -> Slack.

Each test drives sweeps in-process through the code the DAG's tasks run (tests/plugins/cycle.py)
against the session's sandbox and a fresh SQLite support database.
"""

from __future__ import annotations

import multiprocessing
import os
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from operators.sweep_cycle import Cycle
from prep_support.migrate import upgrade
from prep_support.schema import IncidentRow, NotificationRow
from tests.sandbox_client import call

APPS = ["payments-api", "orders-api", "customer-portal", "reporting", "inventory-api", "auth-gateway"]
BROKEN = APPS[:5]


def catalog_text(depends: dict[str, list[str]] | None = None) -> str:
    lines = ["services:"]
    projects = {"payments-api": "PAY", "orders-api": "ORD", "customer-portal": "WEB", "reporting": "DATA",
                "inventory-api": "INV", "auth-gateway": "IAM"}
    for app in APPS:
        lines += [f"  - id: {app}", f"    name: {app.replace('-', ' ').title()}", "    owner: team@example.com",
                  f"    team_channel: '#{'payments' if app == 'payments-api' else 'commerce'}-support'",
                  f"    tracker_project: {projects[app]}", "    criticality: high",
                  f"    depends_on: {(depends or {}).get(app, [])}", "    checks:", "      - id: health",
                  "        kind: http", "        conn_id: estate_http", f"        url: /estate/apps/{app}/health",
                  "        timeout_s: 2",
                  # Outages are what these tests are about: a machine busy with the rest of the suite answers
                  # slowly now and then, and three answers over the default 500 ms made a check 'degraded'.
                  "        latency_warning_ms: 1900", "        latency_critical_ms: 2000"]
    return "\n".join(lines) + "\n"


ROUTING = textwrap.dedent("""\
    support_channel: "#prep-support"
    defaults:
      tracker: {system: jira}
      channels: {slack: {}}
    services:
      payments-api:
        tracker: {system: servicenow}
        channels: {slack: {}}
    """)


@pytest.fixture
def cycle(sandbox, tmp_path, request):
    """A fresh support database and config; the sandbox's tickets, messages and faults cleared."""
    base = sandbox.base_url
    call(base, "DELETE", "/sandbox/faults")
    call(base, "POST", "/estate/reset")
    for path in ("/jira/_sandbox/issues", "/slack/_sandbox/messages", "/servicenow/_sandbox/incidents"):
        call(base, "DELETE", path)
    depends = getattr(request, "param", None)
    (tmp_path / "services.yaml").write_text(catalog_text(depends))
    (tmp_path / "routing.yaml").write_text(ROUTING)
    engine = create_engine(f"sqlite:///{tmp_path / 'support.db'}")
    upgrade(engine)
    yield Cycle(engine, tmp_path / "services.yaml", tmp_path / "routing.yaml")
    call(base, "DELETE", "/sandbox/faults")
    call(base, "POST", "/estate/reset")


def break_apps(base_url: str, apps: list[str]) -> None:
    for app in apps:
        call(base_url, "PUT", f"/estate/apps/{app}", {"status_code": 503, "body": {"status": "down"}})


def fix_apps(base_url: str, apps: list[str]) -> None:
    for app in apps:
        call(base_url, "PUT", f"/estate/apps/{app}", {"status_code": None, "body": None})


def tickets(base_url: str) -> list[dict]:
    jira = call(base_url, "GET", "/jira/_sandbox/issues")["issues"]
    snow = call(base_url, "GET", "/servicenow/_sandbox/incidents")["incidents"]
    return [{"key": i["key"], "open": i["status"] != "Done", "labels": i["fields"].get("labels", []),
             "comments": len(i["comments"])} for i in jira] + [
        {"key": i["number"], "open": i["active"] == "true", "labels": [i["correlation_id"]],
         "comments": sum(1 for j in i["journal"] if j["element"] == "work_notes")} for i in snow]


def slack_messages(base_url: str) -> list[dict]:
    return call(base_url, "GET", "/slack/_sandbox/messages")["messages"]


def incidents(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(IncidentRow.__table__).order_by(IncidentRow.id)).all()


def run_outage(cycle: Cycle, base_url: str, down_sweeps: int = 10) -> None:
    cycle.sweep()
    break_apps(base_url, BROKEN)
    for _ in range(down_sweeps):
        cycle.sweep()
    fix_apps(base_url, BROKEN)
    for _ in range(3):
        cycle.sweep()


def assert_one_incident_and_thread_each(cycle: Cycle, base_url: str) -> None:
    rows = incidents(cycle.engine)
    assert sorted(r.service_id for r in rows) == sorted(BROKEN)
    assert all(r.status == "resolved" and r.ticket_key for r in rows)
    opened = tickets(base_url)
    assert len(opened) == 5, opened
    assert not any(t["open"] for t in opened), "every ticket is resolved"
    assert {t["key"] for t in opened} == {r.ticket_key for r in rows}
    messages = slack_messages(base_url)
    roots = [m for m in messages if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
    assert len(roots) == 5, [m["text"][:60] for m in roots]
    root_ts = {m["ts"] for m in roots}
    replies = [m for m in messages if m not in roots]
    assert all(m["thread_ts"] in root_ts for m in replies), "every other message is a reply in an incident thread"
    assert len(replies) == 5, [m["text"][:80] for m in replies]
    assert all(m["edits"] for m in roots), "each first message is edited to show the resolution"
    with cycle.engine.connect() as connection:
        ledger = connection.execute(select(NotificationRow.__table__)).all()
    assert len(ledger) == 10 and all(row.status == "sent" for row in ledger)


def test_five_services_down_for_ten_sweeps_then_recovered(sandbox, cycle) -> None:
    run_outage(cycle, sandbox.base_url)
    assert_one_incident_and_thread_each(cycle, sandbox.base_url)
    payments = next(r for r in incidents(cycle.engine) if r.service_id == "payments-api")
    assert payments.tracker == "servicenow" and payments.ticket_key.startswith("INC")
    orders = next(r for r in incidents(cycle.engine) if r.service_id == "orders-api")
    assert (orders.tracker, orders.dedup_key) == ("jira", "orders-api/health/availability")
    root = next(m for m in slack_messages(sandbox.base_url)
                if m["edits"] and orders.ticket_key in m["edits"][0]["previous_text"])
    opened_text = root["edits"][0]["previous_text"]
    assert opened_text.startswith(":rotating_light: *Orders Api* is *down* (availability): orders-api/health")
    assert "Evidence: down: HTTP 503 (expected 200)" in opened_text
    assert root["text"].startswith(":white_check_mark: *Orders Api* recovered: orders-api/health (recovered, after")


def test_same_outcome_while_trackers_fail_and_slack_rate_limits(sandbox, jira_deployment, cycle) -> None:
    """Jira as Server/Data Center and as Cloud (retired search, token paging, lagging index): 5 tickets."""
    base = sandbox.base_url
    call(base, "PUT", "/sandbox/faults/jira", {"status": 500, "every": 3})
    call(base, "PUT", "/sandbox/faults/servicenow", {"status": 500, "every": 3})
    call(base, "PUT", "/sandbox/faults/slack", {"status": 429, "every": 2, "retry_after_s": 1})
    run_outage(cycle, base)
    faults = call(base, "GET", "/sandbox/faults")
    assert faults["jira"]["injected"] > 0 and faults["slack"]["injected"] > 0, "the faults really happened"
    call(base, "DELETE", "/sandbox/faults")
    assert_one_incident_and_thread_each(cycle, base)


def _create_then_die(catalog_path: str, routing_path: str, db_url: str, env: dict[str, str]) -> None:
    """Reconcile in a child that is killed right after the tracker created the ticket."""
    os.environ.update(env)
    from hooks import trackers
    from prep_support.catalog import load_catalog
    from prep_support.reconcile import reconcile_now
    from prep_support.routing import load_routing

    create = trackers.JiraTracker.create

    def create_and_die(self, **kwargs):
        create(self, **kwargs)
        os._exit(137)  # killed before our database recorded the ticket

    trackers.JiraTracker.create = create_and_die
    catalog = load_catalog(Path(catalog_path))
    engine = create_engine(db_url)
    from datetime import UTC, datetime

    reconcile_now(engine, catalog, load_routing(catalog, Path(routing_path)), trackers.Trackers(), "killed",
                  datetime.now(UTC))


def test_a_task_killed_after_the_ticket_was_created_still_makes_one_ticket(sandbox, cycle) -> None:
    base = sandbox.base_url
    break_apps(base, ["orders-api"])
    for _ in range(3):
        cycle.sweep(act=False)  # orders-api is now down; the reconcile task comes next
    env = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW")}
    child = multiprocessing.get_context("spawn").Process(target=_create_then_die, args=(
        str(cycle.catalog_path), str(cycle.routing_path), str(cycle.engine.url), env))
    child.start()
    child.join(60)
    assert child.exitcode == 137
    assert len(tickets(base)) == 1
    [row] = incidents(cycle.engine)
    assert row.ticket_key is None, "the killed try never recorded its ticket"
    cycle.sweep()  # the retry
    [row] = incidents(cycle.engine)
    [ticket] = tickets(base)
    assert row.ticket_key == ticket["key"], "the ticket created by the killed try is adopted"
    assert len([m for m in slack_messages(base)]) == 1


def test_maintenance_window_silences_then_one_incident_if_still_down(sandbox, cycle) -> None:
    from datetime import timedelta

    from prep_support.maintenance import add_window

    base = sandbox.base_url
    first = cycle.start + timedelta(minutes=5)
    add_window(cycle.engine, key="change-42", service_ids=["orders-api"], starts_at=first,
               ends_at=first + timedelta(minutes=30), reason="database upgrade")
    cycle.sweep()
    break_apps(base, ["orders-api"])
    for _ in range(5):
        cycle.sweep()
    assert incidents(cycle.engine) == [] and tickets(base) == [] and slack_messages(base) == []
    for _ in range(3):
        cycle.sweep()  # the window is over and orders-api is still down
    [row] = incidents(cycle.engine)
    assert (row.service_id, row.status) == ("orders-api", "open")
    assert len(tickets(base)) == 1 and len(slack_messages(base)) == 1


@pytest.mark.parametrize("cycle", [{"orders-api": ["auth-gateway"], "customer-portal": ["orders-api"]}],
                         indirect=True)
def test_dependants_of_a_down_service_link_to_its_incident(sandbox, cycle) -> None:
    base = sandbox.base_url
    break_apps(base, ["auth-gateway", "orders-api", "customer-portal"])
    for _ in range(3):
        cycle.sweep()
    rows = {r.service_id: r for r in incidents(cycle.engine)}
    assert rows["auth-gateway"].ticket_key and rows["auth-gateway"].upstream_incident_id is None
    assert rows["orders-api"].upstream_incident_id == rows["auth-gateway"].id
    assert rows["customer-portal"].upstream_incident_id == rows["auth-gateway"].id
    assert len(tickets(base)) == 1 and len(slack_messages(base)) == 1, "no alert storm"
    assert "also failing because of it: customer-portal/health, orders-api/health" in rows["auth-gateway"].evidence



def test_what_a_monitored_service_answers_cannot_ping_or_link_on_slack(sandbox, cycle) -> None:
    """The evidence quotes the service's own answer; on Slack it shows as typed."""
    base = sandbox.base_url
    checked = cycle.catalog_path.with_name("services-json.yaml")
    checked.write_text(cycle.catalog_path.read_text().replace(
        "        timeout_s: 2", '        timeout_s: 2\n        json_path_equals: {"$.status": "ok"}'))
    json_cycle = Cycle(cycle.engine, checked, cycle.routing_path)
    hostile = "<!channel> <https://evil.example/login|log in again> & more"
    call(base, "PUT", "/estate/apps/orders-api", {"status_code": 200, "body": {"status": hostile}})
    for _ in range(3):
        json_cycle.sweep()
    (row,) = incidents(cycle.engine)
    assert hostile in row.evidence  # stored and ticketed as answered
    (message,) = slack_messages(base)
    assert "&lt;!channel&gt; &lt;https://evil.example/login|log in again&gt; &amp; more" in message["text"]
    assert "<!channel>" not in message["text"] and "<https://evil" not in message["text"]


def test_a_sweep_leaves_data_incidents_to_their_results(sandbox, cycle) -> None:
    """A fresh `make run` showed every data incident resolved by the next health sweep while its days still
    failed: health planned over every open incident, and a data check is never among its checks."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with cycle.engine.begin() as connection:
        connection.execute(IncidentRow.__table__.insert().values(
            dedup_key="dq/orders/not_null.customer_id/data", service_id="orders-api",
            check_id="dq/orders/not_null.customer_id", kind="data", status="open", state="failing", priority="High",
            tracker="jira", ticket_key="ORD-99", evidence="estate_db:orders failing on 1 day: 2026-12-01",
            updates=0, opened_run_id="scheduled__2026-12-02", opened_at=now, updated_at=now))
    for _ in range(3):
        cycle.sweep()
    rows = incidents(cycle.engine)
    assert [(r.dedup_key, r.status) for r in rows] == [("dq/orders/not_null.customer_id/data", "open")]
    assert slack_messages(sandbox.base_url) == []
