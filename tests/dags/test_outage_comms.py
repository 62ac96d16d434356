"""outage_comms as the scheduler runs it (dag.test()) against the sandbox: a planned outage on every channel
through its whole life, an unplanned one from a critical-incident asset event with an update and a resolution
in the same threads, one resolved by itself when monitoring resolved its incident, a Teams failure after Slack
retried without a second Slack message, injection shown as text everywhere, and a bad form refused."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy import select

from prep_support import outage_store
from prep_support.messages import statuspage_text
from prep_support.schema import MaintenanceWindowRow, NotificationRow
from tests.hitl import triggered_by
from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
INJECTION = "<script>alert(1)</script> <!channel> <https://evil.example|click> & **bold** [x](https://evil.example)"


class FreshDag:
    """dag.test() on a freshly parsed DAG each time: tasks run in this process and leave the run's form
    values in the DAG object's params, which the next run would inherit (a worker parses anew each time)."""

    def test(self, **kwargs):
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags" / "outage_comms.py"))
        assert bag.import_errors == {}
        dag = bag.dags["outage_comms"]
        for task in dag.tasks:  # a retry in these tests comes at once
            task.retry_delay = timedelta(seconds=0)
        return dag.test(**kwargs)


@pytest.fixture(scope="module")
def outage_dag(airflow_db, support_engine, sandbox) -> FreshDag:
    return FreshDag()


def at_minute(delta_s: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=delta_s)


def slack_messages(base: str, outage_id: str) -> list[dict]:
    """The outage's messages, oldest first, the announcement with them even after its text was edited."""
    messages = call(base, "GET", "/slack/_sandbox/messages")["messages"]
    ours = [m for m in messages if f"Outage id: {outage_id}" in m["text"]]
    threads = {m["thread_ts"] for m in ours if m["thread_ts"]}
    return [m for m in messages if m in ours or m["ts"] in threads]


def teams_cards(base: str, outage_id: str) -> list[dict]:
    posted = call(base, "GET", "/teams/_sandbox/messages")["messages"]
    cards = [m["payload"]["attachments"][0]["content"] for m in posted]
    return [c for c in cards if any(f"Outage id: {outage_id}" in run for run in text_runs(c))]


def text_runs(card: dict) -> list[str]:
    runs = []
    for element in card["body"]:
        for block in element.get("items", [element]):
            runs += [inline["text"] for inline in block.get("inlines", [])]
    return runs


def text_blocks(card: dict) -> list[str]:
    return [block.get("text", "") for element in card["body"] for block in element.get("items", [element])
            if block["type"] == "TextBlock"]


def emails(base: str, outage_id: str) -> list[dict]:
    return [m for m in call(base, "GET", "/smtp/_sandbox/messages")["messages"] if outage_id in (m["html"] or "")]


def statuspage_incident(base: str, outage_id: str) -> tuple[dict, dict[str, str]]:
    state = call(base, "GET", "/statuspage/_sandbox/state")
    (incident,) = [i for i in state["incidents"] if i["metadata"].get("prep_support", {}).get("key") == outage_id]
    return incident, {c["name"]: c["status"] for c in state["components"]}


def jira_issue(base: str, outage_id: str) -> dict:
    (issue,) = [i for i in call(base, "GET", "/jira/_sandbox/issues")["issues"]
                if f"prep-support:outage:{outage_id}" in i["fields"].get("labels", [])]
    return issue


def known_issues(base: str) -> dict:
    (page,) = [p for p in call(base, "GET", "/confluence/_sandbox/pages")["pages"] if p["title"] == "Known issues"]
    return page


def status_page_html() -> str:
    return (Path(os.environ["AIRFLOW_HOME"]) / "status_page" / "index.html").read_text()


def ledger(engine, outage_id: str) -> dict[str, tuple[str, int]]:
    table = NotificationRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.key, table.c.status, table.c.attempts)
                                  .where(table.c.key.like(f"outage:{outage_id}:%"))).all()
    return {row.key: (row.status, row.attempts) for row in rows}


def task_states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_a_planned_outage_is_announced_everywhere_reminded_started_and_completed_once(
        outage_dag, support_engine, sandbox) -> None:
    base = sandbox.base_url
    start, end = at_minute(4), at_minute(9)
    conf = {"service": "orders-api", "kind": "planned", "severity": "major", "start": start.isoformat(),
            "expected_end": end.isoformat(), "impact": INJECTION, "workaround": "Phone orders: call 555-0100",
            "channels": ["slack", "teams", "email", "statuspage", "status_page"]}
    outage_id = f"orders-api-{start:%Y%m%d-%H%M}"

    run = outage_dag.test(run_conf=conf)

    assert run.state == "success", task_states(run)
    row = outage_store.get(support_engine, outage_id)
    assert (row.status, row.kind, row.affected) == ("completed", "planned", ["orders-api", "customer-portal"])
    events = ["announced", "reminder", "in_progress", "completed"]
    assert ledger(support_engine, outage_id) == {
        f"outage:{outage_id}:{event}:{channel}": ("sent", 1)
        for event in events for channel in ("slack", "teams", "email", "statuspage")}

    # Slack: the announcement in the team channel, the rest in its thread, and struck through at the end.
    messages = slack_messages(base, outage_id)
    root = messages[0]
    # (Slack gives a message with replies its own ts as thread_ts.)
    assert root["channel_name"] == "commerce-support" and root["thread_ts"] in (None, root["ts"])
    assert [m["thread_ts"] for m in messages[1:]] == [root["ts"]] * 3
    assert messages[1]["text"].startswith(":alarm_clock: Reminder: maintenance of *Orders API* starts")
    assert messages[2]["text"].startswith(":construction: Maintenance of *Orders API* has started")
    assert messages[3]["text"].startswith(":white_check_mark: Maintenance of *Orders API* completed after")
    assert "Affected services: Orders API, Customer Portal" in messages[3]["text"]
    assert root["edits"], "the announcement is struck through when the maintenance completes"
    # Teams and e-mail: one per event.
    assert len(teams_cards(base, outage_id)) == 4
    mails = emails(base, outage_id)
    assert len(mails) == 4 and all(m["to"] == ["commerce-team@example.com"] for m in mails)
    assert mails[0]["subject"].startswith("[planned outage] Planned maintenance of Orders API")
    # Statuspage: one scheduled maintenance, moved through in progress to completed; components back to normal.
    incident, components = statuspage_incident(base, outage_id)
    assert [u["status"] for u in incident["incident_updates"]] == ["scheduled", "in_progress", "completed"]
    assert incident["scheduled_for"] and incident["status"] == "completed"
    assert components["orders-api"] == components["customer-portal"] == "operational"
    # The ticket: opened under the outage's key, told each step, resolved at the end.
    issue = jira_issue(base, outage_id)
    assert issue["project"] == "ORD" and issue["status"] == "Done"
    assert [c["body"].splitlines()[0] for c in issue["comments"]] == [
        f"[prep-support outage:{outage_id} {event}]" for event in events[1:]]
    # Monitoring stays quiet for the service and its dependant during the window.
    with support_engine.connect() as connection:
        window = connection.execute(select(MaintenanceWindowRow.__table__)
                                    .where(MaintenanceWindowRow.__table__.c.key == outage_id)).one()
    assert window.service_ids == ["customer-portal", "orders-api"]
    assert (window.starts_at, window.ends_at) == (row.starts_at, row.expected_end)
    # Both pages are rebuilt: the finished maintenance is no longer on them.
    assert outage_id not in status_page_html() and outage_id not in known_issues(base)["body"]
    assert 'data-component="orders-api"' in status_page_html()

    # Injection shows as text: escaped for Slack mrkdwn and HTML, a TextRun (never Markdown) in Teams.
    announced = root["edits"][0]["previous_text"]
    assert announced.startswith(":construction: Planned maintenance of *Orders API*: ")
    assert "Impact: &lt;script&gt;alert(1)&lt;/script&gt; &lt;!channel&gt; &lt;https://evil.example|click&gt; &amp;" \
        in announced
    assert "<!channel>" not in announced and "<https://evil" not in announced
    card = teams_cards(base, outage_id)[0]
    assert f"Impact: {INJECTION}" in text_runs(card) and not any(INJECTION in t for t in text_blocks(card))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mails[0]["html"] and "<script>" not in mails[0]["html"]
    # Statuspage renders Markdown and some HTML: the text arrives escaped for it (prep_support.messages).
    assert f"Impact: {statuspage_text(INJECTION)}" in incident["incident_updates"][0]["body"]

    # Run again (and every task with it): nothing is sent twice.
    before = (len(call(base, "GET", "/slack/_sandbox/messages")["messages"]),
              len(call(base, "GET", "/teams/_sandbox/messages")["messages"]),
              len(call(base, "GET", "/smtp/_sandbox/messages")["messages"]))
    again = outage_dag.test(run_conf=conf)
    assert again.state == "success", task_states(again)
    assert before == (len(call(base, "GET", "/slack/_sandbox/messages")["messages"]),
                      len(call(base, "GET", "/teams/_sandbox/messages")["messages"]),
                      len(call(base, "GET", "/smtp/_sandbox/messages")["messages"]))
    assert len(statuspage_incident(base, outage_id)[0]["incident_updates"]) == 3
    assert set(ledger(support_engine, outage_id).values()) == {("sent", 1)}


@contextmanager
def triggered_by_incidents(incidents: list[dict], resolved: list[dict] = ()):
    """dag.test() creates a manual run; attach a CRITICAL_INCIDENTS event to it as the scheduler does
    (``dag_run.consumed_asset_events``), so the tasks see it in ``triggering_asset_events``."""
    from airflow.models import dagrun
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.settings import Session
    from support_assets import CRITICAL_INCIDENTS

    original = dagrun.get_or_create_dagrun

    def with_event(**kwargs):
        run = original(**kwargs)
        session = kwargs["session"]
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == CRITICAL_INCIDENTS.uri))
        event = AssetEvent(asset_id=asset.id, extra={"incidents": incidents, "resolved": list(resolved)},
                           source_dag_id="health_sweep",
                           source_task_id="reconcile_incidents", source_run_id="scheduled__test", source_map_index=-1)
        session.add(event)
        run.consumed_asset_events.append(event)
        session.commit()
        return run

    with mock.patch.object(dagrun, "get_or_create_dagrun", with_event):
        yield
    Session.remove()


def test_a_critical_incident_is_announced_then_updated_and_resolved_in_the_same_threads(
        outage_dag, support_engine, sandbox) -> None:
    from hooks.trackers import JiraTracker
    from prep_support.catalog import load_catalog
    from prep_support.routing import load_routing

    base = sandbox.base_url
    catalog = load_catalog()
    service = next(s for s in catalog.services if s.id == "auth-gateway")
    route = load_routing(catalog).route(service)
    ticket = JiraTracker().create(dedup_key="auth-gateway/health/availability", summary="Auth Gateway down",
                                  description="health check failing", route=route)
    opened = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=7)
    incident = {"incident_id": 1, "dedup_key": "auth-gateway/health/availability", "service_id": "auth-gateway",
                "check_id": "auth-gateway/health", "kind": "availability", "state": "down", "evidence": "HTTP 503",
                "tracker": "jira", "ticket_key": ticket.key, "ticket_id": ticket.id, "ticket_url": ticket.url,
                "opened_at": opened.isoformat()}
    outage_id = f"auth-gateway-health-availability-{opened:%Y%m%d-%H%M}"

    # The asset event's run has no triggering user: the system announces it.
    with triggered_by(None), triggered_by_incidents([incident]):
        run = outage_dag.test(logical_date=opened + timedelta(seconds=1))
    assert run.state == "success", task_states(run)
    assert task_states(run)["wait_for_start"] == "skipped"

    row = outage_store.get(support_engine, outage_id)
    assert (row.status, row.severity, row.source, row.ticket_key) == ("active", "critical", "incident", ticket.key)
    assert row.impact == ("Auth Gateway is unavailable or degraded. Services that depend on it may be affected: "
                          "Payments API, Orders API, Customer Portal.")
    (root,) = slack_messages(base, outage_id)
    assert root["channel_name"] == "identity-support"
    assert root["text"].startswith(":rotating_light: *Auth Gateway* outage (critical): investigating")
    incident_page, components = statuspage_incident(base, outage_id)
    assert (incident_page["status"], incident_page["impact"]) == ("investigating", "critical")
    assert components["auth-gateway"] == "major_outage"
    assert components["payments-api"] == components["customer-portal"] == "degraded_performance"
    assert outage_id in status_page_html() and "Major outage" in status_page_html()
    assert "Auth Gateway" in known_issues(base)["body"]
    assert [m["to"] for m in emails(base, outage_id)] == [["identity-team@example.com", "oncall@example.com"]]

    # An update from the form, with injection in its text and workaround: same thread, same incident, the ticket.
    with triggered_by("carol"):
        update = outage_dag.test(run_conf={"action": "update", "service": "auth-gateway", "update": INJECTION,
                                           "workaround": "<b>Use the backup login</b>", "progress": "identified"})
    assert update.state == "success", task_states(update)
    # And a resolution, by the analyst logged in as alice.
    with triggered_by("alice"):
        resolve = outage_dag.test(run_conf={"action": "resolve", "service": "auth-gateway", "outage_id": outage_id})
    assert resolve.state == "success", task_states(resolve)

    messages = slack_messages(base, outage_id)
    assert messages[0]["ts"] == root["ts"] and messages[0]["thread_ts"] in (None, root["ts"])
    assert [m["thread_ts"] for m in messages[1:]] == [root["ts"]] * 2
    assert messages[1]["text"].startswith(":arrows_counterclockwise: Update on *Auth Gateway* (identified): "
                                          "&lt;script&gt;alert(1)&lt;/script&gt; &lt;!channel&gt;")
    resolution = messages[2]["text"]
    assert resolution.startswith(":white_check_mark: *Auth Gateway* outage resolved after ")
    assert re.search(r"Duration: (7|8) min \(", resolution), resolution
    assert "Affected services: Auth Gateway, Payments API, Orders API, Customer Portal" in resolution
    incident_page, components = statuspage_incident(base, outage_id)
    assert [u["status"] for u in incident_page["incident_updates"]] == ["investigating", "identified", "resolved"]
    assert (f"Update on Auth Gateway \\(identified\\): {statuspage_text(INJECTION)}"
            in incident_page["incident_updates"][1]["body"])
    assert set(components.values()) == {"operational"}
    issue = next(i for i in call(base, "GET", "/jira/_sandbox/issues")["issues"] if i["key"] == ticket.key)
    comments = [c["body"] for c in issue["comments"]]
    assert len(comments) == 2 and "resolved after" in comments[1]
    assert comments[0].endswith("Posted by carol.") and comments[1].endswith("Resolved by alice.")
    assert issue["status"] != "Done", "monitoring resolves its own incident's ticket when the service recovers"
    row = outage_store.get(support_engine, outage_id)
    assert (row.status, row.announced_by, row.resolved_by) == ("resolved", "system", "alice")
    with support_engine.connect() as connection:
        asked = dict(connection.execute(select(NotificationRow.key, NotificationRow.requested_by).where(
            NotificationRow.key.like(f"outage:{outage_id}:%:slack"))).all())
    assert sorted(asked.values()) == ["alice", "carol", "system"], asked
    # Who asked stays off the public status page.
    assert not any("by alice" in u["body"] or "by carol" in u["body"]
                   for u in statuspage_incident(base, outage_id)[0]["incident_updates"])

    # The pages showed the update as text while the outage was current, and drop it once resolved.
    page = known_issues(base)
    update_version = next(v["body"] for v in reversed(page["versions"]) if "backup login" in v["body"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in update_version and "<script>" not in update_version
    assert "&lt;b&gt;Use the backup login&lt;/b&gt;" in update_version
    assert outage_id not in status_page_html() and "Auth Gateway" not in page["body"]

    # The same event again (a cleared health_sweep run emits it again), now also saying monitoring resolved the
    # incident: the analyst's resolution stands, nothing new anywhere.
    ended = outage_store.get(support_engine, outage_id).ended_at
    resolved = {"outage_id": outage_id, "dedup_key": incident["dedup_key"], "check_id": incident["check_id"],
                "resolved_at": datetime.now(UTC).isoformat()}
    with triggered_by_incidents([incident], resolved=[resolved]):
        again = outage_dag.test(logical_date=opened + timedelta(seconds=2))
    assert again.state == "success"
    assert len(slack_messages(base, outage_id)) == 3 and len(emails(base, outage_id)) == 3
    assert (outage_store.get(support_engine, outage_id).status, outage_store.get(support_engine, outage_id).ended_at
            ) == ("resolved", ended)
    assert len(statuspage_incident(base, outage_id)[0]["incident_updates"]) == 3


def test_an_incidents_outage_resolves_itself_when_monitoring_resolves_the_incident(
        outage_dag, support_engine, sandbox) -> None:
    from sqlalchemy import insert

    from operators.outage_comms import when
    from prep_support.catalog import load_catalog
    from prep_support.results import sync_catalog
    from prep_support.schema import IncidentRow

    base = sandbox.base_url
    sync_catalog(support_engine, load_catalog())  # the incident's service must be in the shared database
    opened = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    recovered = opened + timedelta(minutes=23)
    incident = {"incident_id": None, "dedup_key": "auth-gateway/health/availability", "service_id": "auth-gateway",
                "check_id": "auth-gateway/health", "kind": "availability", "state": "down", "evidence": "HTTP 503",
                "tracker": "jira", "ticket_key": None, "opened_at": opened.isoformat()}
    outage_id = f"auth-gateway-health-availability-{opened:%Y%m%d-%H%M}"
    with triggered_by_incidents([incident]):
        announced = outage_dag.test(logical_date=opened + timedelta(seconds=1))
    assert announced.state == "success", task_states(announced)
    assert outage_store.get(support_engine, outage_id).status == "active"

    # Monitoring resolves the incident (after 23 minutes); health_sweep's next run lists the outage to resolve.
    with support_engine.begin() as connection:
        connection.execute(insert(IncidentRow).values(
            dedup_key=incident["dedup_key"], service_id="auth-gateway", check_id="auth-gateway/health",
            kind="availability", status="resolved", state="ok", priority="Highest", tracker="jira", evidence="",
            updates=0, opened_run_id="scheduled__sweep", opened_at=opened, updated_at=recovered,
            resolved_at=recovered))
    (resolved,) = [r for r in outage_store.incident_outages_to_resolve(support_engine) if r["outage_id"] == outage_id]
    with triggered_by_incidents([], resolved=[resolved]):
        run = outage_dag.test(logical_date=recovered + timedelta(minutes=5))
    assert run.state == "success", task_states(run)

    row = outage_store.get(support_engine, outage_id)
    assert (row.status, row.ended_at) == ("resolved", recovered)
    root, resolution = slack_messages(base, outage_id)
    assert resolution["thread_ts"] == root["ts"] and root["edits"], "resolved in the thread, the root struck through"
    assert resolution["text"].startswith(":white_check_mark: *Auth Gateway* outage resolved after 23 min")
    assert f"Duration: 23 min ({when(opened)} to {when(recovered)})" in resolution["text"]
    incident_page, components = statuspage_incident(base, outage_id)
    assert [u["status"] for u in incident_page["incident_updates"]] == ["investigating", "resolved"]
    assert {components[s] for s in row.affected} == {"operational"}
    assert len(teams_cards(base, outage_id)) == 2 and len(emails(base, outage_id)) == 2
    issue = jira_issue(base, outage_id)
    assert [c["body"].splitlines()[0] for c in issue["comments"]] == [f"[prep-support outage:{outage_id} resolved]"]
    assert outage_id not in status_page_html() and outage_id not in known_issues(base)["body"]
    assert outage_id not in [r["outage_id"] for r in outage_store.incident_outages_to_resolve(support_engine)]

    # The sweeps that asked meanwhile start runs too: nothing more is sent.
    with triggered_by_incidents([], resolved=[resolved, resolved]):
        again = outage_dag.test(logical_date=recovered + timedelta(minutes=10))
    assert again.state == "success", task_states(again)
    assert len(slack_messages(base, outage_id)) == 2 and len(emails(base, outage_id)) == 2
    assert len(teams_cards(base, outage_id)) == 2
    assert len(statuspage_incident(base, outage_id)[0]["incident_updates"]) == 2
    assert set(ledger(support_engine, outage_id).values()) == {("sent", 1)}
    assert outage_store.get(support_engine, outage_id).ended_at == recovered


def test_teams_failing_after_slack_is_retried_without_a_second_slack_message(
        outage_dag, support_engine, sandbox) -> None:
    base = sandbox.base_url
    start = datetime.now(UTC).replace(microsecond=0)
    conf = {"service": "reporting", "kind": "unplanned", "severity": "minor", "start": start.isoformat(),
            "impact": "Reports are late", "channels": ["slack", "teams"]}
    outage_id = f"reporting-{start:%Y%m%d-%H%M}"
    call(base, "PUT", "/sandbox/faults/teams", {"status": 500, "times": 1})
    try:
        run = outage_dag.test(run_conf=conf)
    finally:
        call(base, "DELETE", "/sandbox/faults")

    assert run.state == "success", task_states(run)
    (communicate,) = [ti for ti in run.get_task_instances() if ti.task_id == "communicate"]
    assert communicate.try_number == 2, "the first try failed on Teams"
    assert len(slack_messages(base, outage_id)) == 1
    assert len(teams_cards(base, outage_id)) == 1
    assert ledger(support_engine, outage_id) == {f"outage:{outage_id}:announced:slack": ("sent", 1),
                                                 f"outage:{outage_id}:announced:teams": ("sent", 2)}
    posts = [e["status"] for e in call(base, "GET", "/sandbox/requests/teams")["requests"] if e["method"] == "POST"]
    assert posts[-2:] == [500, 202]


@pytest.mark.parametrize(("conf", "field"), [
    pytest.param({"service": "no-such-service"}, "service", id="service-not-in-catalog"),
    pytest.param({"service": "reporting", "start": "tomorrow"}, "start", id="start-not-a-date-time"),
    pytest.param({"service": "reporting", "channels": ["pager"]}, "channels", id="unknown-channel"),
    pytest.param({"service": "reporting", "severity": "apocalyptic"}, "severity", id="unknown-severity"),
    pytest.param({"service": "reporting", "outage_id": "Bad Id!"}, "outage_id", id="bad-outage-id"),
])
def test_a_form_breaking_its_schema_is_refused_before_the_run(outage_dag, conf, field) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError, match=rf"Invalid input for param {field}:"):
        outage_dag.test(run_conf=conf)


def test_a_planned_outage_ending_before_it_starts_fails_the_first_task_and_sends_nothing(
        outage_dag, support_engine, sandbox) -> None:
    start = datetime.now(UTC) + timedelta(days=3)
    conf = {"service": "inventory-api", "kind": "planned", "start": start.isoformat(),
            "expected_end": (start - timedelta(hours=1)).isoformat()}
    def announcements() -> int:  # the support channel hears of the failed task; nobody else hears anything
        messages = call(sandbox.base_url, "GET", "/slack/_sandbox/messages")["messages"]
        return len([m for m in messages if m["channel_name"] != "prep-support"])

    before = announcements()

    run = outage_dag.test(run_conf=conf)

    states = task_states(run)
    assert run.state == "failed" and states["plan_outages"] == "failed", states
    assert states["communicate"] == "upstream_failed"
    assert announcements() == before
    assert outage_store.get(support_engine, f"inventory-api-{start:%Y%m%d-%H%M}") is None
