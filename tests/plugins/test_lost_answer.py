"""Under the sandbox's "lost answer" fault (the create happens, its answer never arrives), a retried
create leaves exactly one object: a Jira ticket (Server/DC and Cloud) and a Slack post."""

from __future__ import annotations

import pytest

from prep_support.routing import ResolvedRoute, Tracker
from tests.sandbox_client import call

ROUTE = ResolvedRoute.model_validate({"tracker": Tracker(system="jira"), "project": "ORD", "priority": "High",
                                      "slack_channel": "#commerce-support", "channels": {}})


@pytest.fixture(autouse=True)
def _clean(sandbox):
    for path in ("/sandbox/faults", "/jira/_sandbox/issues", "/slack/_sandbox/messages"):
        call(sandbox.base_url, "DELETE", path)
    yield
    call(sandbox.base_url, "DELETE", "/sandbox/faults")


def lose_next_answer(sandbox, system: str, method: str, path: str) -> None:
    """The next ``method`` call to ``path`` (a regex) of ``system`` is carried out and its answer lost."""
    call(sandbox.base_url, "PUT", f"/sandbox/faults/{system}",
         {"lost_answer": True, "times": 1, "method": method, "path": path})


def test_a_jira_ticket_whose_create_answer_was_lost_is_made_once(sandbox, jira_deployment) -> None:
    from hooks.trackers import JiraTracker

    tracker = JiraTracker()
    lose_next_answer(sandbox, "jira", "POST", "/rest/api/2/issue$")

    ticket = tracker.create(dedup_key="orders-api/health/availability", summary="Orders down", description="503",
                            route=ROUTE)

    [issue] = call(sandbox.base_url, "GET", "/jira/_sandbox/issues")["issues"]
    assert ticket.key == issue["key"]
    journal = call(sandbox.base_url, "GET", "/sandbox/requests/jira")["requests"]
    assert [c["status"] for c in journal if c["method"] == "POST" and c["path"].endswith("/issue")][-1:] == [
        "lost (201)"], "the one create was carried out and its answer lost"


def slack_messages(sandbox) -> list[dict]:
    return call(sandbox.base_url, "GET", "/slack/_sandbox/messages")["messages"]


def test_a_slack_post_whose_answer_was_lost_is_posted_once(sandbox) -> None:
    from hooks.channels import SlackSender

    lose_next_answer(sandbox, "slack", "POST", "/chat\\.postMessage$")

    sent = SlackSender().post("slack_api_default", "#commerce-support", "Orders API is down", key="incident:7:opened")

    [message] = slack_messages(sandbox)
    assert (sent.message_id, sent.thread_id) == (message["ts"], f"{message['channel']}:{message['ts']}")
    assert message["metadata"] == {"event_type": "prep_support_message",
                                   "event_payload": {"ledger_key": "incident:7:opened"}}
    [lookup] = [e for e in call(sandbox.base_url, "GET", "/sandbox/exchanges?system=slack")["exchanges"]
                if e["path"].endswith("conversations.history")][-1:]
    assert ["include_all_metadata", "1"] in lookup["request"]["body"]["form"]


def test_a_reply_an_earlier_try_posted_is_adopted_not_repeated(sandbox) -> None:
    """The outbox row failed once (answer lost, task died): the next try finds the reply by its key."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from hooks.channels import SlackSender

    root = SlackSender().post("slack_api_default", "#commerce-support", "Orders API is down", key="incident:8:opened")
    queued = datetime.now(UTC)
    channel, thread_ts = root.thread_id.split(":")
    # What the earlier try did before it failed: the reply is in the thread, the ledger row still pending.
    earlier = SlackSender().post("slack_api_default", channel, "Still down", key="incident:8:updated",
                                 thread_ts=thread_ts)
    row = SimpleNamespace(key="incident:8:updated", conn_id="slack_api_default", target="#commerce-support",
                          event="updated", body="Still down", created_at=queued, attempts=1)

    retried = SlackSender().send(row, SimpleNamespace(thread_id=root.thread_id, body="Orders API is down"))

    replies = [m for m in slack_messages(sandbox) if m["thread_ts"] and m["ts"] != m["thread_ts"]]
    assert [m["text"] for m in replies] == ["Still down"]
    assert retried == earlier
