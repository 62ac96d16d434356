"""The sandbox's Jira REST API v2, driven through the Atlassian Jira provider's own JiraHook over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow.providers.atlassian.jira.hooks.jira import JiraHook
from atlassian import Jira

TIMEOUT = 10
CSV = b"order_id,amount\n1001,-5.00\n1002,-12.50\n"


@pytest.fixture(autouse=True)
def _clean_jira(sandbox) -> None:
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()
    requests.delete(f"{sandbox.base_url}/jira/_sandbox/issues", timeout=TIMEOUT).raise_for_status()
    yield
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()


def jira_client(conn_id: str = "jira_default") -> Jira:
    return JiraHook(jira_conn_id=conn_id).get_conn()


def journal(sandbox) -> list[dict[str, Any]]:
    """Every call the sandbox's Jira received this session (the journal is never cleared)."""
    return requests.get(f"{sandbox.base_url}/sandbox/requests/jira", timeout=TIMEOUT).json()["requests"]


def issues_state(sandbox) -> dict[str, dict[str, Any]]:
    issues = requests.get(f"{sandbox.base_url}/jira/_sandbox/issues", timeout=TIMEOUT).json()["issues"]
    return {issue["key"]: issue for issue in issues}


def create(jira: Jira, project: str, issuetype: str, summary: str, **fields: Any) -> str:
    payload = {"project": {"key": project}, "issuetype": {"name": issuetype}, "summary": summary, **fields}
    return jira.issue_create(fields=payload)["key"]


def test_identity_and_server_info() -> None:
    jira = jira_client()
    assert jira.myself()["name"] == "prep-support"
    assert jira.get_server_info()["deploymentType"] == "Server"


def test_incident_lifecycle(sandbox, tmp_path: Path) -> None:
    jira = jira_client()
    key = create(jira, "PAY", "Incident", "payments-api health check failing",
                 labels=["prep-support", "payments-api.health.down"], description="HTTP 503 for 3 sweeps")
    assert key == "PAY-1"
    open_query = 'labels = "payments-api.health.down" AND statusCategory != done ORDER BY created DESC'
    assert [issue["key"] for issue in jira.jql(open_query)["issues"]] == [key]

    jira.issue_add_comment(key, "Still failing at 10:05 UTC")
    assert [t["to"] for t in jira.get_issue_transitions(key)] == ["In Progress", "Done"]
    jira.set_issue_status(key, "Done")
    report = tmp_path / "failing_rows.csv"
    report.write_bytes(CSV)
    [attachment] = jira.add_attachment(key, str(report))
    assert (attachment["filename"], attachment["size"], attachment["mimeType"]) == ("failing_rows.csv", len(CSV),
                                                                                    "text/csv")

    fields = jira.issue(key)["fields"]
    assert (fields["status"]["name"], fields["status"]["statusCategory"]["key"]) == ("Done", "done")
    assert fields["resolution"]["name"] == "Done" and fields["resolutiondate"]
    assert fields["labels"] == ["prep-support", "payments-api.health.down"]
    assert [c["body"] for c in fields["comment"]["comments"]] == ["Still failing at 10:05 UTC"]
    assert [a["filename"] for a in fields["attachment"]] == ["failing_rows.csv"]
    content = jira.session.get(fields["attachment"][0]["content"], timeout=TIMEOUT)
    assert content.content == CSV
    assert jira.jql(open_query)["total"] == 0

    state = issues_state(sandbox)[key]
    assert [(t["from"], t["to"]) for t in state["transitions"]] == [("To Do", "Done")]
    assert state["attachments"] == [{"filename": "failing_rows.csv", "size": len(CSV), "mimeType": "text/csv"}]
    assert state["fields"]["description"] == "HTTP 503 for 3 sweeps"
    upload = next(call for call in journal(sandbox) if call["path"] == f"/jira/rest/api/2/issue/{key}/attachments")
    assert (upload["method"], upload["status"]) == ("POST", 200)


def test_reopening_clears_the_resolution_and_edits_labels() -> None:
    jira = jira_client()
    key = create(jira, "ORD", "Task", "Reconcile orders", labels=["uat"])
    jira.set_issue_status(key, "Done")
    jira.set_issue_status(key, "In Progress")
    jira.update_issue_field(key, {"labels": ["uat", "reopened"]})
    fields = jira.issue(key, fields="status,resolution,labels")["fields"]
    assert fields == {"status": fields["status"], "resolution": None, "labels": ["uat", "reopened"]}
    assert fields["status"]["name"] == "In Progress"
    assert jira.get_issue_status_changelog(key)[-1] | {"date": None} == {"from": "Done", "to": "In Progress",
                                                                          "date": None}


@pytest.fixture
def seeded() -> Jira:
    """PAY-1 (incident, payments), PAY-2 (its sub-task), ORD-1 (task, in progress), OPS-1 (bug, no labels)."""
    jira = jira_client()
    create(jira, "PAY", "Incident", "Payments down", labels=["incident", "payments"])
    create(jira, "PAY", "Sub-task", "Restart pods", parent={"key": "PAY-1"})
    create(jira, "ORD", "Task", "Orders slow", labels=["incident"])
    create(jira, "OPS", "Bug", "Sweep flaky")
    jira.set_issue_status("ORD-1", "In Progress")
    return jira


@pytest.mark.parametrize(
    ("jql", "keys"),
    [
        pytest.param("", ["OPS-1", "ORD-1", "PAY-2", "PAY-1"], id="everything-newest-first"),
        pytest.param("project = PAY", ["PAY-2", "PAY-1"], id="project"),
        pytest.param("labels = incident ORDER BY created ASC", ["PAY-1", "ORD-1"], id="label-oldest-first"),
        pytest.param("labels != payments", ["ORD-1"], id="not-equal-skips-empty-fields"),
        pytest.param('project in (PAY, "ORD") and issuetype not in (Sub-task)', ["ORD-1", "PAY-1"], id="in"),
        pytest.param("parent = PAY-1", ["PAY-2"], id="parent"),
        pytest.param("statusCategory = indeterminate", ["ORD-1"], id="status-category-key"),
        pytest.param("status = 'In Progress'", ["ORD-1"], id="status-quoted"),
        pytest.param('issuetype = Bug AND statusCategory = "To Do"', ["OPS-1"], id="type-and-category-name"),
        pytest.param("key in (PAY-1, OPS-1) order by key asc", ["OPS-1", "PAY-1"], id="keys-by-key"),
    ],
)
def test_jql_subset(seeded: Jira, jql: str, keys: list[str]) -> None:
    assert [issue["key"] for issue in seeded.jql(jql)["issues"]] == keys


def test_search_pages_with_start_at(seeded: Jira) -> None:
    first, second = seeded.jql("", limit=3), seeded.jql("", start=3, limit=3)
    assert (first["total"], first["maxResults"], len(first["issues"]), len(second["issues"])) == (4, 3, 3, 1)


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        pytest.param("project = PAY OR project = ORD", "'OR' is not supported", id="or"),
        pytest.param("summary ~ outage", "not supported", id="contains"),
        pytest.param("assignee = currentUser()", "Field 'assignee' does not exist or is not supported", id="field"),
        pytest.param("project = NOPE", "The value 'NOPE' does not exist for the field 'project'.", id="project"),
        pytest.param("key = PAY-99", "An issue with key 'PAY-99' does not exist for field 'key'.", id="key"),
        pytest.param("project = PAY ORDER BY priority", "orders only by", id="order"),
    ],
)
def test_unsupported_jql_is_a_400_in_jiras_shape(jql: str, message: str) -> None:
    with pytest.raises(requests.HTTPError) as raised:
        jira_client().jql(jql)
    body = raised.value.response.json()
    assert raised.value.response.status_code == 400
    assert body["errors"] == {} and message in body["errorMessages"][0]
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"project": {"key": "PAY"}, "issuetype": {"name": "Task"}}, "summary", id="no-summary"),
        pytest.param({"project": {"key": "NOPE"}, "issuetype": {"name": "Task"}, "summary": "x"}, "project",
                     id="unknown-project"),
        pytest.param({"issuetype": {"name": "Task"}, "summary": "x"}, "project", id="no-project"),
        pytest.param({"project": {"key": "PAY"}, "summary": "x"}, "issuetype", id="no-issuetype"),
        pytest.param({"project": {"key": "PAY"}, "issuetype": {"name": "Sub-task"}, "summary": "x"}, "parent",
                     id="sub-task-without-parent"),
        pytest.param({"project": {"key": "PAY"}, "issuetype": {"name": "Task"}, "summary": "x",
                      "labels": ["two words"]}, "labels", id="label-with-space"),
    ],
)
def test_bad_create_names_the_field(sandbox, fields: dict[str, Any], field: str) -> None:
    # create_issue, not issue_create: the latter reads fields["summary"] before sending anything.
    with pytest.raises(requests.HTTPError) as raised:
        jira_client().create_issue(fields=fields)
    body = raised.value.response.json()
    assert (raised.value.response.status_code, body["errorMessages"], list(body["errors"])) == (400, [], [field])
    assert issues_state(sandbox) == {}


def test_wrong_credentials_are_refused(sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_JIRA_DEFAULT"]) | {"password": "wrong-token"}
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_WRONG", json.dumps(conn))
    with pytest.raises(requests.HTTPError) as raised:
        jira_client("jira_wrong").myself()
    assert raised.value.response.status_code == 401
    assert raised.value.response.headers["WWW-Authenticate"].startswith("Basic")


def test_attachments_need_the_xsrf_header(sandbox) -> None:
    key = create(jira_client(), "DATA", "Task", "Null rate check")
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_JIRA_DEFAULT"])
    response = requests.post(f"{conn['host']}/rest/api/2/issue/{key}/attachments", files={"file": ("a.csv", CSV)},
                             auth=(conn["login"], conn["password"]), timeout=TIMEOUT)
    assert (response.status_code, response.json()["errorMessages"]) == (403, ["XSRF check failed"])
    assert issues_state(sandbox)[key]["attachments"] == []


def test_server_error_on_a_get_is_surfaced(sandbox) -> None:
    jira = jira_client()
    key = create(jira, "IAM", "Incident", "Okta sync stalled")
    requests.put(f"{sandbox.base_url}/sandbox/faults/jira", json={"status": 500, "times": 1},
                 timeout=TIMEOUT).raise_for_status()
    mark = len(journal(sandbox))
    with pytest.raises(requests.HTTPError) as raised:
        jira.issue(key)
    assert raised.value.response.status_code == 500
    assert raised.value.response.json() == {"errorMessages": ["Internal server error"], "errors": {}}
    assert jira.issue(key)["key"] == key  # the fault was for one call only
    assert [(c["method"], c["status"]) for c in journal(sandbox)[mark:]] == [("GET", 500), ("GET", 200)]


def test_a_deleted_ticket_is_skipped_not_retried_for_ever(sandbox, caplog) -> None:
    """Someone deleted the incident's ticket: comments and resolution are skipped, monitoring goes on."""
    from hooks.trackers import JiraTracker
    from prep_support.reconcile import Ticket

    tracker = JiraTracker()
    ghost = Ticket(key="ORD-99999", id="99999", url=None)
    with caplog.at_level("WARNING", logger="hooks.trackers"):
        tracker.comment(ghost, "[prep-support:ghost]", "still down")
        tracker.resolve(ghost, "[prep-support:ghost:resolved]", "recovered")
    skipped = [r.getMessage() for r in caplog.records if "no longer exists" in r.getMessage()]
    # comment; then resolve: its comment and its transition
    assert len(skipped) == 3 and all("ORD-99999" in message for message in skipped)
