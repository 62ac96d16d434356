"""access_review as the scheduler runs it (dag.test()) against the Okta/Confluence/Slack sandbox and a real slapd.

Reviewers answer through Airflow's HITL REST route (tests/hitl.py), as themselves: a reviewer answering
another's packet is refused (403). Rejected access is revoked in Okta and the directory, leavers are
disabled only after the approval, the evidence page is published once with its files, the summary posted
once; reviewers still deciding are reminded by direct message, once each; a second run of the same
campaign asks nothing and revokes nothing again.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from prep_support.access.snapshot import manifest_of
from prep_support.schema import AccessRemediationRow, NotificationRow
from tests.hitl import Answer, HitlResponder, triggered_by
from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
LOGICAL_DATE = datetime(2026, 10, 1, 6, tzinfo=UTC)
CAMPAIGN = "2026-Q4"
# (reviewer, username, system, group) that the reviewers revoke; everything else is kept.
REVOKE = {("dave", "quinn", "okta", "app-admins"), ("bob", "chuck", "okta", "payments-approve")}


@pytest.fixture(scope="module")
def review_dag(tmp_path_factory: pytest.TempPathFactory):
    import os

    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path_factory.mktemp("access")
    policy = yaml.safe_load((ROOT / "include/config/access/policy.yaml").read_text())
    policy["review"]["reminder_check_minutes"] = 0.02  # the reminder task looks every 1.2 s, not 15 min
    # One reminder, due 3.6 s into the review (the timeout stays 336 h, so nothing times out).
    policy["review"]["reminder_hours_before"] = [policy["review"]["response_timeout_hours"] - 0.001]
    policy["evidence"]["directory"] = str(folder / "evidence")
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    os.environ["PREP_SUPPORT_ACCESS_POLICY"] = str(path)
    try:
        bag = DagBag(dag_folder=str(ROOT / "dags" / "access_review.py"))
    finally:
        os.environ.pop("PREP_SUPPORT_ACCESS_POLICY")
    assert bag.import_errors == {}
    return bag.dags["access_review"], folder / "evidence" / CAMPAIGN


def reminders(base: str) -> list[dict]:
    return [m for m in call(base, "GET", "/slack/_sandbox/messages")["messages"]
            if m["text"].startswith("Reminder, access review")]


def decide(support_engine, asked: list, campaign: str = CAMPAIGN, *, base: str | None = None,
           after_reminder: str | None = None):
    """Answer as each reviewer would; ``after_reminder`` answers only once reminded (``base``: the sandbox)."""
    from prep_support.access.review import load_items

    def answer(request):
        if request.task_id == "approve_leavers":
            asked.append((request.task_id, request.assignees))
            assert "ken" not in request.assignees
            return Answer(user=request.assignees[0], chosen_options=["Approve"])
        reviewer = request.assignees[0]
        if reviewer == after_reminder and not any(m["im_user_name"] == reviewer for m in reminders(base)):
            return None  # asked again on the next poll
        asked.append((request.task_id, request.assignees))
        items = {i["item_id"]: i for i in load_items(support_engine, campaign, reviewer=reviewer)}
        params = {key: ("revoke" if key in items and (reviewer, items[key]["username"], items[key]["system"],
                                                       items[key]["group_name"]) in REVOKE else "keep")
                  for key in request.params if key != "comment"}
        params["comment"] = f"reviewed by {reviewer}"
        right = Answer(user=reviewer, chosen_options=["Submit decisions"], params_input=params)
        if reviewer == "alice":  # someone else tries first: refused by the route
            return [Answer(user="bob", chosen_options=["Submit decisions"], params_input=params), right]
        return right

    return answer


def okta_user(base: str, login_prefix: str) -> dict:
    users = call(base, "GET", "/okta/_sandbox/state")["users"]
    return next(u for u in users if u["login"].split("@")[0] == login_prefix)


def test_a_campaign_is_reviewed_remediated_and_published_once(airflow_db, support_engine, sandbox, slapd,
                                                              review_dag) -> None:
    from hooks.directory import DirectoryHook

    dag, evidence = review_dag
    base = sandbox.base_url
    call(base, "POST", "/okta/_sandbox/reset")
    call(base, "DELETE", "/confluence/_sandbox/pages")
    call(base, "DELETE", "/slack/_sandbox/messages")
    asked: list = []
    try:
        # Started by the quarterly schedule: no triggering user, the system is the requester.
        with triggered_by(None), HitlResponder(decide(support_engine, asked, base=base,
                                                      after_reminder="dave")) as responder:
            assert dag.test(logical_date=LOGICAL_DATE).state == "success"

        # Reminders are direct messages, one per reviewer still deciding: dave waited for his.
        reminded = reminders(base)
        assert reminded and all(m["is_im"] for m in reminded)
        assert len(reminded) == len({m["im_user_name"] for m in reminded}) and {"dave"} <= {
            m["im_user_name"] for m in reminded}
        [dave] = [m["text"] for m in reminded if m["im_user_name"] == "dave"]
        assert f"Reminder, access review {CAMPAIGN}: you have " in dave and "item(s) to decide" in dave

        # A reviewer cannot answer another reviewer's task.
        assert [(r.answer.user, r.request.assignees, r.status) for r in responder.refusals] == [
            ("bob", ["alice"], 403)]
        reviewers = sorted(a[0] for task, a in asked if task == "review_access")
        assert reviewers == ["alice", "bob", "carol", "dave"]  # Finance holds only Payments Hub groups: bob

        # Revoked and verified; kept access stays; leavers disabled after the approval.
        assert "app-admins" not in okta_user(base, "quinn")["groups"]
        assert "payments-approve" not in okta_user(base, "chuck")["groups"]
        assert "payments-initiate" in okta_user(base, "chuck")["groups"]
        assert okta_user(base, "ken")["status"] == "DEPROVISIONED"
        assert okta_user(base, "beth")["status"] == "DEPROVISIONED"
        directory = DirectoryHook()
        assert directory.find_account("ken")["enabled"] is False
        assert directory.find_account("trent")["enabled"] is False
        with support_engine.connect() as connection:
            rows = connection.execute(select(AccessRemediationRow).where(
                AccessRemediationRow.campaign_id == CAMPAIGN)).all()
        assert rows and all(row.verified for row in rows)
        assert {row.status for row in rows} <= {"revoked", "already_revoked"}

        # Evidence: files with a manifest, one page with the files attached, the summary posted once.
        assert (evidence / "manifest.json").exists() and (evidence / "packets" / "alice.html").exists()
        assert json.loads((evidence / "manifest.json").read_text())["started_by"] == "system"
        assert [assignees for task, assignees in asked if task == "approve_leavers"] == [["carol", "alice"]]
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Mallory" in (evidence / "packets" / "alice.html").read_text()
        pages = [p for p in call(base, "GET", "/confluence/_sandbox/pages")["pages"]
                 if p["title"] == f"Access review {CAMPAIGN}"]
        assert len(pages) == 1
        assert {"manifest.json", "decisions.csv", "population_okta.memberships.csv"} <= {
            a["filename"] for a in pages[0]["attachments"]}
        assert "<script>" not in pages[0]["body"] and ", started by system.</p>" in pages[0]["body"]
        summaries = [m for m in call(base, "GET", "/slack/_sandbox/messages")["messages"]
                     if f"Access review {CAMPAIGN} complete" in m["text"]]
        assert len(summaries) == 1
        assert (summaries[0]["is_im"], summaries[0]["channel_name"]) == (False, "prep-support")

        # The run cleared and run again (dag.test clears the logical date): nothing asked, nothing revoked twice.
        asked.clear()
        before = {row.item_id: row.finished_at for row in rows}
        population = manifest_of(support_engine, CAMPAIGN)
        with HitlResponder(decide(support_engine, asked)):
            assert dag.test(logical_date=LOGICAL_DATE).state == "success"
        assert asked == []
        with support_engine.connect() as connection:
            again = connection.execute(select(AccessRemediationRow).where(
                AccessRemediationRow.campaign_id == CAMPAIGN)).all()
            ledger = connection.execute(select(NotificationRow).where(
                NotificationRow.key == f"access:{CAMPAIGN}:summary:slack")).all()
        assert {row.item_id: row.finished_at for row in again} == before
        assert manifest_of(support_engine, CAMPAIGN) == population  # the population reviewed is kept
        assert len(ledger) == 1
        assert len([p for p in call(base, "GET", "/confluence/_sandbox/pages")["pages"]
                    if p["title"] == f"Access review {CAMPAIGN}"]) == 1
        assert len([m for m in call(base, "GET", "/slack/_sandbox/messages")["messages"]
                    if f"Access review {CAMPAIGN} complete" in m["text"]]) == 1
        assert reminders(base) == reminded  # nobody is reminded again
    finally:
        call(base, "POST", "/okta/_sandbox/reset")
        slapd.reset()


def test_a_campaign_killed_mid_review_and_cleared_asks_only_what_was_not_answered(
        airflow_db, support_engine, sandbox, slapd, review_dag) -> None:
    """The run is killed while bob has not answered (his review and the reminder task die with their
    workers); the other reviewers and the leaver approvers had answered. Run again (cleared): only bob
    is asked, and each revocation happens once."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    dag, _evidence = review_dag
    logical_date, campaign = datetime(2027, 1, 1, 6, tzinfo=UTC), "2027-Q1"
    base = sandbox.base_url
    call(base, "POST", "/okta/_sandbox/reset")
    answered: list[tuple[str, tuple[str, ...]]] = []
    plain = decide(support_engine, [], campaign)
    bob_waiting_since: list[float] = []

    def kill_bob_after_the_others(request):
        if request.assignees != ["bob"] or request.task_id != "review_access":
            answered.append((request.task_id, tuple(request.assignees)))
            decided = plain(request)
            return decided[-1] if isinstance(decided, list) else decided
        bob_waiting_since[:1] = bob_waiting_since[:1] or [time.monotonic()]
        # The others first (alice, carol, dave and the leaver approval), or whoever answered within 20 s.
        if len(answered) < 4 and time.monotonic() - bob_waiting_since[0] < 20:
            return None
        with create_session() as session:  # what a kill leaves: the unfinished tasks failed
            for ti in session.scalars(select(TaskInstance).where(
                    TaskInstance.dag_id == request.dag_id, TaskInstance.run_id == request.run_id,
                    TaskInstance.state.in_([TaskInstanceState.AWAITING_INPUT, TaskInstanceState.UP_FOR_RESCHEDULE,
                                            TaskInstanceState.RUNNING]))):
                ti.state = TaskInstanceState.FAILED
        return None

    try:
        with HitlResponder(kill_bob_after_the_others):
            assert dag.test(logical_date=logical_date).state == "failed"
        with support_engine.connect() as connection:
            assert connection.execute(select(AccessRemediationRow).where(
                AccessRemediationRow.campaign_id == campaign)).all() == []  # nothing revoked while under review
        first = sorted(answered)

        answered.clear()
        asked_again: list = []
        with HitlResponder(decide(support_engine, asked_again, campaign)):
            assert dag.test(logical_date=logical_date).state == "success"
        assert [(task, assignees) for task, assignees in asked_again] == [("review_access", ["bob"])]
        assert ("review_access", ("alice",)) in first and "approve_leavers" in {task for task, _ in first}
        with support_engine.connect() as connection:
            rows = connection.execute(select(AccessRemediationRow).where(
                AccessRemediationRow.campaign_id == campaign)).all()
        assert "payments-approve" not in okta_user(base, "chuck")["groups"], rows  # bob's, after the clear
        assert rows and all(row.verified for row in rows)
        assert len({row.item_id for row in rows}) == len(rows)  # each revocation once
    finally:
        call(base, "POST", "/okta/_sandbox/reset")
        slapd.reset()


def test_an_okta_service_app_without_an_api_token_runs_the_review(airflow_db, support_engine, sandbox, slapd,
                                                                  review_dag, monkeypatch) -> None:
    """The Okta Connection holds a service app's client id and private key, no API token: the snapshot
    reads and the revocations change Okta with access tokens the hook got by private_key_jwt."""
    from tests import okta_service_app

    dag, _evidence = review_dag
    logical_date, campaign = datetime(2027, 4, 1, 6, tzinfo=UTC), "2027-Q2"
    base = sandbox.base_url
    call(base, "POST", "/okta/_sandbox/reset")
    pem = okta_service_app.private_key_pem()
    okta_service_app.register(base, pem)
    monkeypatch.setenv("AIRFLOW_CONN_OKTA_DEFAULT", okta_service_app.connection(sandbox, pem))
    assert "password" not in json.loads(okta_service_app.connection(sandbox, pem))
    asked: list = []
    try:
        with triggered_by(None), HitlResponder(decide(support_engine, asked, campaign)):
            assert dag.test(logical_date=logical_date).state == "success"
        assert "app-admins" not in okta_user(base, "quinn")["groups"]
        assert "payments-approve" not in okta_user(base, "chuck")["groups"]
        assert okta_user(base, "ken")["status"] == "DEPROVISIONED"
        with support_engine.connect() as connection:
            rows = connection.execute(select(AccessRemediationRow).where(
                AccessRemediationRow.campaign_id == campaign)).all()
        assert rows and all(row.verified for row in rows)
        assert call(base, "GET", "/okta/_sandbox/state")["service_app_tokens"][okta_service_app.CLIENT_ID] >= 1
    finally:
        call(base, "POST", "/okta/_sandbox/reset")
        slapd.reset()
