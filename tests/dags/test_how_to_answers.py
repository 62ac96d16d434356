"""how_to_answers with dag.test() against the sandbox's Jira and Confluence, through the real client library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import select

from prep_support import how_to_store as store
from prep_support.how_to import MARKER
from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
KB = yaml.safe_load((ROOT / "tests" / "data" / "how_to_kb.yaml").read_text())
DONE = "31"  # the sandbox workflow's transition into Done (sandbox/jira_site.py)


def parse(name: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{name}.py"))
    assert bag.import_errors == {}
    return bag.dags[name]


def comments_by_key(base: str) -> dict[str, list[str]]:
    return {i["key"]: [c["body"] for c in i["comments"]] for i in call(base, "GET", "/jira/_sandbox/issues")["issues"]}


def test_new_requests_get_one_comment_and_a_requester_resolution_is_a_deflection(
        airflow_db, support_engine, sandbox) -> None:
    from hooks.confluence import ConfluenceHook
    from hooks.trackers import JiraIssues

    base = sandbox.base_url
    call(base, "DELETE", "/jira/_sandbox/issues")
    call(base, "DELETE", "/confluence/_sandbox/pages")
    jira = JiraIssues("jira_default").client
    for doc in [d for d in KB["documents"] if d["source"] == "ticket"][:15]:  # the resolved how-to tickets
        key = jira.issue_create(fields={"project": {"key": "OPS"}, "issuetype": {"name": "Task"},
                                        "summary": doc["title"], "labels": ["how-to"]})["key"]
        jira.issue_add_comment(key, doc["body"])
        jira.set_issue_status_by_transition_id(key, DONE)
    page = ConfluenceHook().publish_page("Runbook: Payments API", "<p>Restart the pods one at a time.</p>")
    asked = {}
    for name, question in [("password", "my client forgot her passwrd for the portal, how can she restore it?"),
                           ("vpn", "cannot get on the vpn when working from home"),
                           ("restart", "payments api needs a restart, how?"),
                           ("offtopic", "what is on the cafeteria menu today?"),
                           ("french", "Comment réinitialiser le mot de passe du portail client ?")]:
        asked[name] = jira.issue_create(fields={"project": {"key": "OPS"}, "issuetype": {"name": "Task"},
                                                "summary": question, "labels": ["how-to"]})["key"]
    dag = parse("how_to_answers")
    when = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    assert dag.test(logical_date=when).state == "success"

    comments = comments_by_key(base)
    for name in ("password", "vpn", "restart"):
        assert len(comments[asked[name]]) == 1, name
        assert comments[asked[name]][0].startswith(f"{MARKER}\nThese may answer your question:")
    assert "[How do I reset a customer's portal password\\?|" in comments[asked["password"]][0]  # escaped for Jira
    assert "[How do I connect to the VPN from home\\?|" in comments[asked["vpn"]][0]
    assert f"[Runbook: Payments API|{page.url}]" in comments[asked["restart"]][0]
    assert comments[asked["offtopic"]] == [] and comments[asked["french"]] == []
    links = [line.split("|", 1)[1].rstrip("]") for line in comments[asked["password"]][0].splitlines()
             if line.startswith("# [")]
    assert 1 <= len(links) <= 3 and all(link.startswith(f"{base}/jira/browse/OPS-") for link in links)
    for link in links:  # each link is a resolved ticket of the knowledge base
        assert jira.get_issue(link.rsplit("/", 1)[1], fields="labels")["fields"]["labels"] == ["how-to"]

    jira.set_issue_status_by_transition_id(asked["password"], DONE)  # the requester resolves it
    assert dag.test(logical_date=when + timedelta(hours=1)).state == "success"

    assert comments_by_key(base) == comments  # re-run: no second comment anywhere
    with support_engine.connect() as connection:
        rows = {r.request_key: r for r in connection.execute(select(store.requests))}
    assert {rows[asked[n]].status for n in ("password", "vpn", "restart")} == {"suggested"}
    assert rows[asked["offtopic"]].status == "no_match" and rows[asked["french"]].status == "other_language"
    assert rows[asked["password"]].deflected and rows[asked["password"]].resolved_at is not None
    assert not rows[asked["vpn"]].deflected and rows[asked["vpn"]].resolved_at is None
    week = store.deflection(support_engine, when - timedelta(days=1), when + timedelta(days=1))
    assert (week.suggested, week.deflected) == (3, 1)
