"""UAT core (plans, keys, reminders, report rendering) and the Jira sandbox parts the cycle needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from prep_support import uat
from prep_support.messages import render, slack_text
from tests.sandbox_client import call

DEADLINE = datetime(2026, 5, 1, 17, tzinfo=UTC)


def write_plan(directory: Path, name: str, data: object) -> None:
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(data))


def test_the_shipped_plan_validates_and_assigns_every_case() -> None:
    plan = uat.load_plan("checkout-release")
    pairs = [(a.case.id, a.tester) for a in uat.assignments(plan)]
    assert pairs == [("pay-by-card", "alice"), ("pay-by-card", "bob"), ("refund-order", "carol"),
                     ("order-history", "alice"), ("order-history", "bob")]
    # The form's testers replace the assignment: each tests every case.
    assert {a.tester for a in uat.assignments(plan, ["erin"])} == {"erin"}
    assert "checkout-release" in uat.plan_names()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"name": "x", "testers": ["a"], "cases": [{"id": "c1", "title": "t", "steps": [],
                                                                "expected": "e"}]},
                     "cases[0] (id 'c1') > field 'steps': List should have at least 1 item", id="no-steps"),
        pytest.param({"name": "x", "cases": [{"id": "c1", "title": "t", "steps": ["s"], "expected": "e"}]},
                     "case(s) c1 name no testers", id="no-testers"),
        pytest.param({"name": "x", "testers": ["a"], "cases": [
            {"id": "c1", "title": "t", "steps": ["s"], "expected": "e"},
            {"id": "c1", "title": "u", "steps": ["s"], "expected": "e"}]}, "duplicate case id 'c1'", id="dup"),
        pytest.param({"name": "x", "testers": ["a"], "cases": [{"id": "c1", "title": "t", "steps": ["s"],
                                                                "expected": "e", "tester": "a"}]},
                     "cases[0] (id 'c1') > field 'tester': unknown field (a typo?)", id="typo"),
    ],
)
def test_a_bad_plan_names_the_file_the_case_and_the_field(tmp_path: Path, data: object, message: str) -> None:
    write_plan(tmp_path, "bad", data)
    with pytest.raises(uat.PlanError) as raised:
        uat.load_plan("bad", tmp_path)
    assert str(raised.value).startswith(str(tmp_path / "bad.yaml"))
    assert message in str(raised.value)


def test_an_unknown_plan_lists_the_known_ones(tmp_path: Path) -> None:
    write_plan(tmp_path, "known", {"name": "k"})
    with pytest.raises(uat.PlanError, match="no such test plan .* known plans: known"):
        uat.load_plan("missing", tmp_path)


def test_test_plan_choice_and_jql_plans() -> None:
    assert uat.parse_test_plan("checkout-release") == uat.PlanChoice(plan="checkout-release")
    assert uat.parse_test_plan("JQL: project = UAT").jql == "project = UAT"
    with pytest.raises(uat.PlanError, match="needs a query"):
        uat.parse_test_plan("jql:  ")
    issues = [{"key": "UAT-7", "fields": {"summary": "Login", "description": "# Open the portal\n# Log in"}}]
    plan = uat.plan_from_issues(issues, ["alice"], "project = UAT")
    assert [(c.id, c.title, c.steps) for c in plan.cases] == [("uat-7", "Login", ["Open the portal", "Log in"])]
    with pytest.raises(uat.PlanError, match="testers: a JQL test plan names no testers"):
        uat.plan_from_issues(issues, [], "project = UAT")
    with pytest.raises(uat.PlanError, match="finds no issues"):
        uat.plan_from_issues([], ["alice"], "project = NONE")


@pytest.mark.parametrize(
    ("before_deadline", "due"),
    [
        pytest.param(timedelta(hours=30), [], id="none-yet"),
        pytest.param(timedelta(hours=20), [24], id="first"),
        pytest.param(timedelta(hours=1), [2], id="only-the-latest"),
        pytest.param(timedelta(hours=-1), [], id="deadline-passed"),
    ],
)
def test_due_reminders(before_deadline: timedelta, due: list[int]) -> None:
    assert uat.due_reminders(DEADLINE - before_deadline, DEADLINE, [24, 2]) == due


@pytest.mark.parametrize(
    ("before_deadline", "wake_before_deadline"),
    [
        pytest.param(timedelta(hours=30), timedelta(hours=24), id="first-reminder"),
        pytest.param(timedelta(hours=20), timedelta(hours=2), id="second-reminder"),
        pytest.param(timedelta(hours=1), timedelta(0), id="deadline"),
        pytest.param(timedelta(seconds=30), timedelta(0), id="deadline-in-seconds"),
    ],
)
def test_the_wait_wakes_for_the_next_reminder_or_the_deadline(before_deadline, wake_before_deadline) -> None:
    assert uat.next_wake(DEADLINE - before_deadline, DEADLINE, [24, 2]) == DEADLINE - wake_before_deadline


@pytest.mark.parametrize(
    ("status", "category", "resolution", "late", "expected"),
    [
        ("Passed", "done", "Done", False, uat.PASSED),
        ("Failed", "done", "Done", False, uat.FAILED),
        ("Done", "done", "Won't Do", False, uat.FAILED),
        ("In Progress", "indeterminate", None, False, uat.OPEN),
        ("To Do", "new", None, True, uat.NOT_DONE),
    ],
)
def test_outcome_of_a_subtask(status: str, category: str, resolution: str | None, late: bool, expected: str) -> None:
    assert uat.outcome(status, category, resolution, late) == expected


def sample_report(title: str = "Pay <script>alert(1)</script>") -> uat.UatReport:
    case = uat.UatCase(id="pay", title=title, steps=["s"], expected="e")
    results = [uat.Result("pay", "alice", "UAT-2", "http://jira/browse/UAT-2", "Failed", uat.FAILED),
               uat.Result("pay", "bob", "UAT-3", "http://jira/browse/UAT-3", "To Do", uat.NOT_DONE)]
    defect = uat.Defect("UAT-9", "Card *declined* <b>", "To Do", "http://jira/browse/UAT-9", False, ("UAT-2",))
    return uat.UatReport("r1", "Plan", DEADLINE, True, [case], ["alice", "bob"], results, [defect])


def test_report_html_renders_config_values_as_text() -> None:
    report = sample_report()
    html = render("uat/report.html.j2", report=report, release_key="UAT-1", release_url="http://jira/browse/UAT-1",
                  titles={"pay": report.cases[0].title})
    assert "<script>" not in html and "Pay &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<a href="http://jira/browse/UAT-2">UAT-2</a> failed' in html
    assert "UAT-3</a> Pay &lt;script&gt;alert(1)&lt;/script&gt; (bob): not done" in html
    assert "Card *declined* &lt;b&gt;" in html


def test_signoff_body_and_blockers() -> None:
    report = sample_report("Pay | *now*")
    body = uat.signoff_body(report, "http://wiki/page")
    assert "| Pay \\| \\*now\\* | failed (UAT-2) | not done (UAT-3) |" in body
    assert "- UAT-9 Card \\*declined\\* \\<b\\> (To Do)" in body
    assert report.blockers() == ["UAT-2 Pay | *now* (alice): failed", "UAT-3 Pay | *now* (bob): not done",
                                 "UAT-9 Card *declined* <b>: open defect (To Do)"]
    assert not report.all_passed
    assert slack_text("<!channel> & co") == "&lt;!channel&gt; &amp; co"


# --- the Jira sandbox: UAT workflow, sub-tasks and issue links --------------------------------------

@pytest.fixture
def jira(sandbox):
    from airflow.providers.atlassian.jira.hooks.jira import JiraHook

    call(sandbox.base_url, "DELETE", "/jira/_sandbox/issues")
    return JiraHook(jira_conn_id="jira_default").get_conn()


def test_uat_workflow_subtasks_and_links(jira) -> None:
    release = jira.issue_create(fields={"project": {"key": "UAT"}, "issuetype": {"name": "Task"},
                                        "summary": "Release 1", "labels": ["prep-support:uat:r1"]})["key"]
    sub = jira.issue_create(fields={"project": {"key": "UAT"}, "issuetype": {"name": "Sub-task"}, "summary": "Case",
                                    "parent": {"key": release}, "labels": ["prep-support:uat:r1:c1:alice"]})["key"]
    bug = jira.issue_create(fields={"project": {"key": "UAT"}, "issuetype": {"name": "Bug"},
                                    "summary": "Broken"})["key"]
    # Each issue type of the UAT project has its own workflow.
    assert [t["to"] for t in jira.get_issue_transitions(sub)] == ["In Progress", "Passed", "Failed"]
    assert [t["to"] for t in jira.get_issue_transitions(release)] == ["In Progress", "Done", "Rejected"]
    assert [t["to"] for t in jira.get_issue_transitions(bug)] == ["In Progress", "Done"]

    link = {"type": {"name": "Relates"}, "inwardIssue": {"key": sub}, "outwardIssue": {"key": release}}
    jira.create_issue_link(link)
    jira.create_issue_link(link)  # the same link again: still one
    jira.create_issue_link({"type": {"name": "Blocks"}, "inwardIssue": {"key": bug}, "outwardIssue": {"key": sub}})
    links = jira.get_issue(sub, fields="issuelinks")["fields"]["issuelinks"]
    assert [(x["type"]["name"], next(k for k in ("inwardIssue", "outwardIssue") if k in x)) for x in links] == [
        ("Relates", "outwardIssue"), ("Blocks", "inwardIssue")]
    assert links[1]["inwardIssue"]["key"] == bug and links[1]["inwardIssue"]["fields"]["issuetype"]["name"] == "Bug"
    assert [x["name"] for x in jira.get_issue_link_types()] == ["Blocks", "Cloners", "Duplicate", "Relates"]

    jira.set_issue_status(sub, "Failed")
    assert [i["key"] for i in jira.jql(f"parent = {release} AND statusCategory = Done")["issues"]] == [sub]
    assert [i["key"] for i in jira.jql('labels = "prep-support:uat:r1:c1:alice"')["issues"]] == [sub]
    jira.set_issue_status(release, "Rejected")
    fields = jira.get_issue(release, fields="status,resolution")["fields"]
    assert (fields["status"]["name"], fields["resolution"]["name"]) == ("Rejected", "Won't Do")


def test_an_unknown_link_type_is_refused(jira) -> None:
    from requests import HTTPError

    key = jira.issue_create(fields={"project": {"key": "UAT"}, "issuetype": {"name": "Task"}, "summary": "x"})["key"]
    with pytest.raises(HTTPError, match="No issue link type with name 'Tests' found"):
        jira.create_issue_link({"type": {"name": "Tests"}, "inwardIssue": {"key": key}, "outwardIssue": {"key": key}})


def test_jql_test_plan_is_read_from_jira(jira) -> None:
    from operators.uat_cycle import PlanUatCycleOperator

    for summary in ("Log in", "Log out"):
        jira.issue_create(fields={"project": {"key": "UAT"}, "issuetype": {"name": "Task"}, "summary": summary,
                                  "labels": ["regression"], "description": f"# Open the portal\n# {summary}"})
    operator = PlanUatCycleOperator(task_id="plan_cycle")
    cycle = operator.plan_cycle({"release": "r9", "test_plan": "jql: project = UAT AND labels = regression",
                                 "testers": ["alice"], "business_owner": "dana",
                                 "deadline": "2026-05-01T17:00:00Z"})
    assert [c["title"] for c in cycle["plan"]["cases"]] == ["Log out", "Log in"]  # newest first, as Jira sorts
    assert cycle["assignments"] == [{"case_id": "uat-2", "tester": "alice"}, {"case_id": "uat-1", "tester": "alice"}]
    with pytest.raises(uat.PlanError, match="business_owner: 'alice' is also a tester"):
        operator.plan_cycle({"release": "r9", "test_plan": "checkout-release", "testers": [],
                             "business_owner": "alice", "deadline": "2026-05-01T17:00:00Z"})
