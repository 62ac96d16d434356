"""uat_cycle end to end with dag.test() against the sandbox: testers record results in Jira while the
sensor waits, the business owner answers the sign-off through Airflow's REST route (tests/hitl.py)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import ParamValidationError
from sqlalchemy import select

from prep_support.schema import UatCycleRow
from tests.hitl import Answer, HitlResponder, triggered_by
from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
OWNER = "dana"
# include/config/uat/checkout-release.yaml: pay-by-card and order-history by alice and bob, refund-order by carol.
TICKETS = {("pay-by-card", "alice"), ("pay-by-card", "bob"), ("refund-order", "carol"), ("order-history", "alice"),
           ("order-history", "bob")}


@pytest.fixture(scope="module")
def uat_dag(airflow_db, support_engine, sandbox):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "uat_cycle.py"))
    assert bag.import_errors == {}
    dag = bag.dags["uat_cycle"]
    dag.get_task("wait_for_results").poke_interval = 1  # seconds, instead of 15 minutes
    return dag


@pytest.fixture(autouse=True)
def _clean(sandbox) -> None:
    for path in ("/jira/_sandbox/issues", "/slack/_sandbox/messages", "/confluence/_sandbox/pages"):
        call(sandbox.base_url, "DELETE", path)


def jira():
    from airflow.providers.atlassian.jira.hooks.jira import JiraHook

    return JiraHook(jira_conn_id="jira_default").get_conn()


def issues(base: str) -> list[dict[str, Any]]:
    return call(base, "GET", "/jira/_sandbox/issues")["issues"]


def subtasks(base: str, release: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Sub-tasks of the release by (case, tester), read from their labels."""
    prefix = f"prep-support:uat:{release}:"
    found = {}
    for issue in issues(base):
        for label in issue["fields"]["labels"]:
            if label.startswith(prefix):
                case, tester = label[len(prefix):].split(":")
                found[(case, tester)] = issue
    return found


def messages(base: str) -> list[dict[str, Any]]:
    return call(base, "GET", "/slack/_sandbox/messages")["messages"]


def direct_messages(base: str, start: str) -> dict[str, list[str]]:
    """Texts starting with ``start`` sent as direct messages, by the person they went to."""
    found: dict[str, list[str]] = {}
    for message in messages(base):
        if message["is_im"] and message["text"].startswith(start):
            found.setdefault(message["im_user_name"], []).append(message["text"])
    return found


def pages(base: str) -> list[dict[str, Any]]:
    return call(base, "GET", "/confluence/_sandbox/pages")["pages"]


class PlayingTesters:
    """Plays the testers while the DAG waits: once all sub-tasks exist, records ``act`` for each."""

    def __init__(self, base: str, release: str, act: Callable[[Any, tuple[str, str], str], None],
                 tickets: set[tuple[str, str]] = TICKETS) -> None:
        self.base, self.release, self.act, self.tickets = base, release, act, tickets
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        try:
            client = jira()
            while not self.done.is_set():
                found = subtasks(self.base, self.release)
                if set(found) == self.tickets:
                    for ident, issue in sorted(found.items()):
                        if issue["status"] == "To Do":
                            self.act(client, ident, issue["key"])
                    return
                self.done.wait(0.3)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error

    def __enter__(self) -> PlayingTesters:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(10)
        assert self.error is None, self.error


def conf(release: str, deadline: datetime, **extra: Any) -> dict[str, Any]:
    return {"release": release, "test_plan": "checkout-release", "testers": [], "business_owner": OWNER,
            "deadline": deadline.isoformat(), **extra}


def signoff_of(requests: list, release: str) -> Any:
    return next(r for r, _ in requests if r.task_id == "business_signoff" and release in r.subject)


def owner_answers(option: str, **params: Any) -> Callable[[Any], list[Answer] | None]:
    """A tester tries first (refused: not assigned), then the business owner answers."""
    def decide(request: Any) -> list[Answer] | None:
        if request.task_id != "business_signoff":
            return None
        return [Answer("alice", ["approve"]), Answer(OWNER, [option], params_input=params)]
    return decide


def cycle_row(engine, release: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(UatCycleRow).where(UatCycleRow.release == release)).one()


def run(dag, release: str, deadline: datetime, testers: PlayingTesters | None, decide: Callable, when: datetime,
        form: dict[str, Any] | None = None):
    run_conf = conf(release, deadline, **(form or {}))
    with HitlResponder(decide) as responder:
        if testers is None:
            dagrun = dag.test(logical_date=when, run_conf=run_conf)
        else:
            with testers:
                dagrun = dag.test(logical_date=when, run_conf=run_conf)
    return dagrun, responder


def pass_all(client: Any, ident: tuple[str, str], key: str) -> None:
    client.set_issue_status(key, "Passed")


def test_full_cycle_to_approval_and_a_rerun_duplicates_nothing(uat_dag, support_engine, sandbox, jira_cloud) -> None:
    """On Jira Cloud (the other tests here run on Server/DC): retired search, token paging, a lagging index."""
    base, release = sandbox.base_url, "2026.03-approve"
    deadline = datetime.now(UTC) + timedelta(days=3)  # no reminder is due yet

    testers = PlayingTesters(base, release, pass_all)
    when = datetime(2026, 3, 1, tzinfo=UTC)
    with triggered_by("dave"):  # an analyst logged in as dave starts it; dana signs it off
        dagrun, responder = run(uat_dag, release, deadline, testers, owner_answers("approve"), when)

    assert dagrun.state == "success"
    # Only the business owner may answer: the tester's attempt was refused by the REST route.
    assert [(r.answer.user, r.status) for r in responder.refusals] == [("alice", 403)]
    request = signoff_of(responder.answered, release)
    assert request.assignees == [OWNER]
    assert "| Pay for an order by card |" in request.body and "passed" in request.body
    assert "**Open items**: none" in request.body

    found = subtasks(base, release)
    assert set(found) == TICKETS
    [release_ticket] = [i for i in issues(base) if i["issuetype"] == "Task"]
    assert release_ticket["status"] == "Done"
    assert release_ticket["fields"]["description"].endswith("Started by dave.")
    for issue in found.values():
        assert issue["parent"] == release_ticket["key"] and issue["issuetype"] == "Sub-task"
        assert [link["inward"] for link in issue["links"]] == [issue["key"]]
        assert release_ticket["key"] in [link["outward"] for link in issue["links"]]
        assert "h3. Expected result" in issue["fields"]["description"]

    # Each tester is told their own cases, and only theirs, in a direct message; nothing on the channel.
    posted = messages(base)
    notes = direct_messages(base, "You are testing release")
    assert sorted(notes) == ["alice", "bob", "carol"] and all(len(texts) == 1 for texts in notes.values())
    for tester, [text] in notes.items():
        assert text.count("/browse/UAT-") == len([t for t in TICKETS if t[1] == tester])
        assert ("Refund a paid order" in text) == (tester == "carol")
        assert ("Pay for an order by card" in text) == (tester != "carol")
        for ident, issue in subtasks(base, release).items():
            assert (f"|{issue['key']}>" in text) == (ident[1] == tester)
    assert not [m for m in posted if "testing release" in m["text"] and not m["is_im"]]
    [result] = [m for m in posted if "signed off by" in m["text"]]
    assert f"Release *{release}* signed off by {OWNER}" in result["text"]
    assert (result["is_im"], result["channel_name"]) == (False, "uat-testing")  # the result stays on the channel

    [page] = pages(base)
    assert page["title"] == f"UAT report: {release}" and page["version"] == 1
    assert page["body"].count(" passed</td>") == 5
    assert [a["filename"] for a in page["attachments"]] == [f"uat-report-{release}.html"]
    row = cycle_row(support_engine, release)
    assert (row.status, row.decided_by, row.release_key, row.started_by) == (
        "approved", OWNER, release_ticket["key"], "dave")

    # The same release again (a re-run from the form): found, not created; nothing posted twice.
    before = (len(issues(base)), len(posted))
    dagrun, _ = run(uat_dag, release, deadline, None, owner_answers("approve"), datetime(2026, 3, 2, tzinfo=UTC))
    assert dagrun.state == "success"
    assert (len(issues(base)), len(messages(base))) == before
    [page] = pages(base)
    assert page["version"] == 1  # the same report: no new version


def test_rejection_lists_the_blockers_on_the_ticket_and_in_the_announcement(uat_dag, support_engine, sandbox) -> None:
    base, release = sandbox.base_url, "2026.03-reject"
    deadline = datetime.now(UTC) + timedelta(days=3)
    bug: dict[str, str] = {}

    def refund_fails(client: Any, ident: tuple[str, str], key: str) -> None:
        if ident != ("refund-order", "carol"):
            client.set_issue_status(key, "Passed")
            return
        created = client.issue_create(fields={"project": {"key": "UAT"}, "issuetype": {"name": "Bug"},
                                              "summary": "Refund credit note <missing>"})
        client.create_issue_link({"type": {"name": "Blocks"}, "inwardIssue": {"key": created["key"]},
                                  "outwardIssue": {"key": key}})
        bug.update(key=created["key"], failed=key)
        client.set_issue_status(key, "Failed")

    dagrun, responder = run(uat_dag, release, deadline, PlayingTesters(base, release, refund_fails),
                            owner_answers("reject", comment="Refunds are broken"), datetime(2026, 3, 3, tzinfo=UTC))

    assert dagrun.state == "success"
    request = signoff_of(responder.answered, release)
    assert f"failed ({bug['failed']})" in request.body and "Refund credit note \\<missing\\>" in request.body
    [release_ticket] = [i for i in issues(base) if i["issuetype"] == "Task"]
    assert release_ticket["status"] == "Rejected"
    [comment] = [c["body"] for c in release_ticket["comments"] if "UAT rejected" in c["body"]]
    assert f"UAT rejected by {OWNER}. Reason: Refunds are broken" in comment
    assert f"{bug['failed']} Refund a paid order (carol): failed" in comment
    assert f"{bug['key']} Refund credit note <missing>: open defect (To Do)" in comment
    [announcement] = [m for m in messages(base) if "rejected by" in m["text"]]
    assert f"{bug['key']} Refund credit note &lt;missing&gt;: open defect" in announcement["text"]
    [page] = pages(base)
    assert f">{bug['key']}</a> Refund credit note &lt;missing&gt; (To Do)" in page["body"]
    assert cycle_row(support_engine, release).status == "rejected"


def test_a_passed_deadline_reports_open_cases_as_not_done_and_reminds_once(uat_dag, support_engine, sandbox) -> None:
    base, release = sandbox.base_url, "2026.03-late"
    deadline = datetime.now(UTC) + timedelta(seconds=25)  # within the plan's 2 h reminder: reminders are due

    def only_alice(client: Any, ident: tuple[str, str], key: str) -> None:
        if ident[1] == "alice":
            client.set_issue_status(key, "Passed")

    dagrun, responder = run(uat_dag, release, deadline, PlayingTesters(base, release, only_alice),
                            owner_answers("approve"), datetime(2026, 3, 4, tzinfo=UTC))

    assert dagrun.state == "success"
    request = signoff_of(responder.answered, release)
    assert "(passed)" in request.body  # the deadline
    assert "not done 3" in request.body
    for ident, issue in subtasks(base, release).items():
        expected = "passed" if ident[1] == "alice" else "not done"
        assert f"{expected} ({issue['key']})" in request.body
    reminders = direct_messages(base, "Reminder: 2 h to the UAT deadline")
    # bob and carol had open cases when the 2 h reminder came, and are reminded in a direct message;
    # alice may have been reminded before her results came in, but nobody twice though the sensor
    # poked many times.
    assert {"bob", "carol"} <= set(reminders)
    assert all(len(texts) == 1 for texts in reminders.values()), reminders
    assert "Refund a paid order" in reminders["carol"][0] and "Refund a paid order" not in reminders["bob"][0]
    assert not [m for m in messages(base) if "Reminder" in m["text"] and not m["is_im"]]
    [page] = pages(base)
    assert page["body"].count(" not done</td>") == 3


def test_a_tester_slack_does_not_know_is_told_on_the_channel_with_a_mention(uat_dag, support_engine,
                                                                          sandbox) -> None:
    base, release = sandbox.base_url, "2026.03-stranger"
    deadline = datetime.now(UTC) + timedelta(days=3)
    tickets = {(case, tester) for case, _ in TICKETS for tester in ("carol", "zed")}  # zed is not in Slack
    dagrun, _ = run(uat_dag, release, deadline, PlayingTesters(base, release, pass_all, tickets),
                    owner_answers("approve"), datetime(2026, 3, 5, tzinfo=UTC), {"testers": ["carol", "zed"]})

    assert dagrun.state == "success"
    assert list(direct_messages(base, "You are testing release")) == ["carol"]
    [mention] = [m for m in messages(base) if m["text"].startswith("@zed: You are testing release")]
    assert (mention["is_im"], mention["channel_name"]) == (False, "uat-testing")
    assert mention["text"].count("/browse/UAT-") == 3


def test_a_bad_form_is_refused_before_the_run(uat_dag) -> None:
    """The form's schema refuses these before a run is created (the UI and the REST API validate it)."""

    def validate(**changes: Any) -> None:
        params = copy.deepcopy(uat_dag.params)
        for name, value in {**conf("r1", datetime(2026, 5, 1, tzinfo=UTC)), **changes}.items():
            params[name] = value  # validated on assignment
        params.validate()

    validate()
    validate(test_plan="jql: project = UAT AND labels = regression", testers=["alice"], deadline="2026-05-01T17:00Z")
    for field, bad in (("test_plan", "no-such-plan"), ("test_plan", "jql:"), ("release", "R 1; drop"),
                       ("testers", ["alice", "<b>"]), ("business_owner", ""), ("deadline", "tomorrow"),
                       ("deadline", "2026-05-01T17:00:00")):
        with pytest.raises(ParamValidationError, match=f"Invalid input for param {field}"):
            validate(**{field: bad})


def test_the_business_owner_cannot_sign_off_a_cycle_they_started(uat_dag, sandbox) -> None:
    """Four eyes: who starts the cycle is not who signs it off; it stops before any ticket or message."""
    release = "2026.03-own-signoff"
    before = len(issues(sandbox.base_url))
    with triggered_by(OWNER):
        dagrun, responder = run(uat_dag, release, datetime.now(UTC) + timedelta(days=3), None, owner_answers("approve"),
                                datetime(2026, 3, 5, tzinfo=UTC))

    assert dagrun.state == "failed"
    states = {ti.task_id: ti.state for ti in dagrun.get_task_instances()}
    assert (states["plan_cycle"], states["create_tickets"]) == ("success", "failed")
    assert len(issues(sandbox.base_url)) == before and responder.answered == []
    assert not [m for m in messages(sandbox.base_url) if release in m["text"]]
