"""user_lifecycle end to end with dag.test(): the sandbox's Okta and Jira, a real slapd, the seeded HR roster.

Joiner, mover and leaver change exactly what their role templates say; running a request again
changes nothing and opens no second ticket; a privileged grant waits for an approval that neither
the subject nor the requester (who triggered the run) can give (403 through Airflow's own route)
and another approver can (``tests.hitl.triggered_by`` makes a run the given user's, as the REST API
does for the token's user; tests/integration/test_distributed.py checks that with FAB users).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from sqlalchemy import select

from hooks.directory import DirectoryHook
from prep_support.schema import LifecycleChangeRow
from tests.hitl import Answer, HitlResponder, triggered_by
from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
_runs = count()


@pytest.fixture(scope="module")
def lifecycle_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "user_lifecycle.py"))
    assert bag.import_errors == {}
    return bag.dags["user_lifecycle"]


@pytest.fixture
def estate_of_identities(sandbox, slapd, support_engine):
    """Okta and the directory as seeded, before and after each test."""
    call(sandbox.base_url, "POST", "/okta/_sandbox/reset")
    yield sandbox
    call(sandbox.base_url, "POST", "/okta/_sandbox/reset")
    slapd.reset()


def run(dag, **conf):
    conf = {"role_template": None, "effective_date": "2026-12-01", **conf}
    when = datetime(2026, 11, 28, tzinfo=UTC) + timedelta(minutes=next(_runs))
    dagrun = dag.test(logical_date=when, run_conf=conf)
    return dagrun, {ti.task_id: ti for ti in dagrun.get_task_instances()}


def okta_user(sandbox, login: str) -> dict:
    users = call(sandbox.base_url, "GET", "/okta/_sandbox/state")["users"]
    return next(u for u in users if u["login"] == login)


def tickets(sandbox, key: str) -> list[dict]:
    issues = call(sandbox.base_url, "GET", "/jira/_sandbox/issues")["issues"]
    return [i for i in issues if f"prep-support:access:lifecycle:{key}" in i["fields"].get("labels", [])]


def test_joiner_gets_the_role_once_and_a_rerun_changes_nothing(lifecycle_dag, estate_of_identities, support_engine):
    sandbox = estate_of_identities
    dagrun, tis = run(lifecycle_dag, action="joiner", employee_id="E1050", role_template="engineer")

    assert dagrun.state == "success"
    assert tis["approve_privileged"].state == "skipped"  # nothing privileged
    nina = okta_user(sandbox, "nina@example.com")
    assert (nina["status"], nina["groups"], nina["employeeNumber"]) == ("PROVISIONED", ["engineers", "jira-users"],
                                                                        "E1050")
    directory = DirectoryHook()
    assert directory.find_account("nina")["enabled"] is True
    assert directory.find_account("nina")["manager"] == "dave"
    assert directory.groups_of("nina") == {"Engineers"}
    [ticket] = tickets(sandbox, "joiner:E1050:2026-12-01")
    assert "Applied and verified: 6 change(s)" in ticket["comments"][0]["body"]

    again, tis = run(lifecycle_dag, action="joiner", employee_id="E1050", role_template="engineer")

    assert again.state == "success"
    result = tis["apply_changes"].xcom_pull(task_ids="apply_changes")
    assert result["changed"] == 0 and {c["action"] for c in result["changes"]} == {"enable"}
    assert len(tickets(sandbox, "joiner:E1050:2026-12-01")) == 1
    with support_engine.connect() as connection:
        rows = connection.execute(select(LifecycleChangeRow).where(
            LifecycleChangeRow.request_key == "joiner:E1050:2026-12-01")).all()
    assert sorted((r.system, r.action, r.target, r.changed) for r in rows) == [
        ("ad", "create", "nina", True), ("ad", "enable", "nina", True), ("ad", "grant", "Engineers", True),
        ("okta", "create", "nina@example.com", True), ("okta", "enable", "nina@example.com", False),
        ("okta", "grant", "engineers", True), ("okta", "grant", "jira-users", True),
    ]


def test_mover_loses_the_old_roles_groups(lifecycle_dag, estate_of_identities):
    sandbox = estate_of_identities
    dagrun, _tis = run(lifecycle_dag, action="mover", employee_id="E1051", role_template="engineer")

    assert dagrun.state == "success"
    assert okta_user(sandbox, "omar@example.com")["groups"] == ["engineers", "jira-users"]
    assert DirectoryHook().groups_of("omar") == {"Engineers"}
    assert len(tickets(sandbox, "mover:E1051:2026-12-01")) == 1


def test_leaver_is_disabled_everywhere_and_loses_every_group(lifecycle_dag, estate_of_identities):
    sandbox = estate_of_identities
    dagrun, _tis = run(lifecycle_dag, action="leaver", employee_id="E1052")

    assert dagrun.state == "success"
    liam = okta_user(sandbox, "liam@example.com")
    assert (liam["status"], liam["groups"]) == ("DEPROVISIONED", [])
    directory = DirectoryHook()
    assert directory.find_account("liam")["enabled"] is False and directory.groups_of("liam") == set()


def test_a_leaver_still_employed_without_a_termination_date_is_refused(lifecycle_dag, estate_of_identities):
    sandbox = estate_of_identities
    dagrun, tis = run(lifecycle_dag, action="leaver", employee_id="E1011")

    assert dagrun.state == "failed" and tis["validate_request"].state == "failed"
    assert okta_user(sandbox, "grace@example.com")["status"] == "ACTIVE"
    assert DirectoryHook().find_account("grace")["enabled"] is True


def test_privileged_access_needs_an_approver_other_than_the_subject(lifecycle_dag, estate_of_identities):
    sandbox = estate_of_identities

    def answer(request):
        # The subject tries first (refused), then the last approver offered (the policy's, after the manager).
        return [Answer("priya", ["Approve"]), Answer(request.assignees[-1], ["Approve"])]

    with HitlResponder(answer) as responder:
        dagrun, tis = run(lifecycle_dag, action="joiner", employee_id="E1053", role_template="admin")

    assert dagrun.state == "success"
    [refusal] = responder.refusals
    assert (refusal.answer.user, refusal.status) == ("priya", 403)
    [(request, approved)] = responder.answered
    assert "priya" not in request.assignees and request.assignees[0] == "dave"  # the manager first
    assert okta_user(sandbox, "priya@example.com")["groups"] == ["app-admins"]
    assert DirectoryHook().groups_of("priya") == {"Domain Admins"}
    assert tis["apply_changes"].xcom_pull(task_ids="apply_changes")["approved_by"] == approved.user
    [ticket] = tickets(sandbox, "joiner:E1053:2026-12-01")
    assert f"approved by {approved.user}" in ticket["comments"][0]["body"]


def test_a_rejected_privileged_grant_changes_nothing(lifecycle_dag, estate_of_identities):
    sandbox = estate_of_identities
    with HitlResponder(lambda request: Answer(request.assignees[0], ["Reject"])) as responder:
        dagrun, tis = run(lifecycle_dag, action="joiner", employee_id="E1053", role_template="admin",
                          effective_date="2026-12-02")
    [(_request, rejected)] = responder.answered

    assert tis["apply_changes"].xcom_pull(task_ids="apply_changes")["rejected_by"] == rejected.user
    assert not [u for u in call(sandbox.base_url, "GET", "/okta/_sandbox/state")["users"]
                if u["login"] == "priya@example.com"]
    [ticket] = tickets(sandbox, "joiner:E1053:2026-12-02")
    assert f"rejected by {rejected.user}" in ticket["comments"][0]["body"]
    assert dagrun.state == "success"


@pytest.mark.parametrize("conf, field", [
    pytest.param({"action": "fire", "employee_id": "E1050"}, "action", id="unknown-action"),
    pytest.param({"action": "joiner", "employee_id": "E 1050; rm"}, "employee_id", id="bad-employee-id"),
    pytest.param({"action": "joiner", "employee_id": "E1050", "role_template": "astronaut"}, "role_template",
                 id="unknown-role"),
    pytest.param({"action": "joiner", "employee_id": "E1050", "effective_date": "01/12/2026"}, "effective_date",
                 id="bad-date"),
])
def test_invalid_form_input_is_refused_before_the_run(lifecycle_dag, conf, field):
    from airflow.exceptions import ParamValidationError

    params = copy.deepcopy(lifecycle_dag.params)
    with pytest.raises(ParamValidationError, match=field):
        params.update({"role_template": None, "effective_date": "2026-12-01", **conf})
        params.validate()
    # dag.test() validates the conf the same way before it creates the run.
    with pytest.raises(ParamValidationError):
        lifecycle_dag.test(run_conf={"role_template": None, "effective_date": "2026-12-01", **conf})


def changes_of(support_engine, key: str) -> list:
    with support_engine.connect() as connection:
        return connection.execute(select(LifecycleChangeRow).where(LifecycleChangeRow.request_key == key)).all()


def test_the_requester_cannot_approve_their_own_request(lifecycle_dag, estate_of_identities, support_engine):
    """alice asks for admin rights for omar, her report: she is his manager, yet bob approves, not her."""
    sandbox = estate_of_identities

    def answer(request):
        return [Answer("alice", ["Approve"]), Answer("bob", ["Approve"])]

    with triggered_by("alice"), HitlResponder(answer) as responder:
        # What the form says about who asked changes nothing.
        dagrun, tis = run(lifecycle_dag, action="joiner", employee_id="E1051", role_template="admin",
                          effective_date="2026-12-03", on_behalf_of="dave", requested_by="bob")

    assert dagrun.state == "success"
    [refusal] = responder.refusals
    assert (refusal.answer.user, refusal.status) == ("alice", 403)
    [(request, _approved)] = responder.answered
    assert request.assignees == ["bob", "carol"]  # the manager alice is the requester: left out
    assert "requested by alice on behalf of dave" in request.body
    rows = changes_of(support_engine, "joiner:E1051:2026-12-03")
    assert {(r.requested_by, r.approved_by) for r in rows} == {("alice", "bob")}
    assert {(r.system, r.target) for r in rows if r.action == "grant"} == {("okta", "app-admins"),
                                                                         ("ad", "Domain Admins")}
    [ticket] = tickets(sandbox, "joiner:E1051:2026-12-03")
    assert "requested by alice on behalf of dave." in ticket["fields"]["description"]
    assert "Privileged access approved by bob." in ticket["comments"][0]["body"]


def test_no_approver_but_the_requester_stops_the_run_naming_the_setting(
        lifecycle_dag, estate_of_identities, tmp_path, monkeypatch):
    policy = Path(ROOT / "include/config/access/policy.yaml").read_text()
    policy = policy.replace("privileged_approvers: [bob, carol]", "privileged_approvers: [alice]")
    (tmp_path / "policy.yaml").write_text(policy)
    monkeypatch.setenv("PREP_SUPPORT_ACCESS_POLICY", str(tmp_path / "policy.yaml"))

    with triggered_by("alice"):
        dagrun, tis = run(lifecycle_dag, action="joiner", employee_id="E1051", role_template="admin",
                          effective_date="2026-12-04")

    assert dagrun.state == "failed" and tis["plan_changes"].state == "failed"
    assert tis["approve_privileged"].state == "upstream_failed"
    assert "app-admins" not in okta_user(estate_of_identities, "omar@example.com")["groups"]
    assert not tickets(estate_of_identities, "joiner:E1051:2026-12-04")


def test_the_requester_of_a_dag_test_run_is_recorded(lifecycle_dag, estate_of_identities, support_engine):
    dagrun, _tis = run(lifecycle_dag, action="mover", employee_id="E1051", role_template="engineer",
                       effective_date="2026-12-05", requested_by="carol")

    assert dagrun.state == "success"
    assert {r.requested_by for r in changes_of(support_engine, "mover:E1051:2026-12-05")} == {"dag_test"}
