"""SlackSender's direct messages against the sandbox's Slack over real HTTP: who is who is looked up once
per Connection, the IM opened with them, and someone Slack does not know is told on the channel instead."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from hooks.channels import SlackSender
from tests.sandbox_client import call

CONN = "slack_api_default"


@pytest.fixture(autouse=True)
def _clean(sandbox) -> None:
    call(sandbox.base_url, "DELETE", "/slack/_sandbox/messages")


def messages(sandbox) -> list[dict[str, Any]]:
    return call(sandbox.base_url, "GET", "/slack/_sandbox/messages")["messages"]


def methods_called(sandbox, since: int) -> list[str]:
    journal = call(sandbox.base_url, "GET", "/sandbox/requests/slack")["requests"][since:]
    return [entry["path"].removeprefix("/slack/api/") for entry in journal]


def journal_length(sandbox) -> int:
    return len(call(sandbox.base_url, "GET", "/sandbox/requests/slack")["requests"])


def test_people_get_direct_messages_and_slack_is_asked_who_they_are_once(sandbox) -> None:
    slack = SlackSender()
    slack.users_page_size = 10  # the sandbox has about forty members: four pages
    mark = journal_length(sandbox)
    slack.post_direct(CONN, "alice", "your cases", fallback_channel="#uat-testing")
    slack.post_direct(CONN, "bob", "your cases", fallback_channel="#uat-testing")
    slack.post_direct(CONN, "alice", "a reminder", fallback_channel="#uat-testing")

    sent = messages(sandbox)
    assert [(m["is_im"], m["im_user_name"], m["text"]) for m in sent] == [
        (True, "alice", "your cases"), (True, "bob", "your cases"), (True, "alice", "a reminder")]
    assert sent[0]["channel"] == sent[2]["channel"] != sent[1]["channel"]
    called = methods_called(sandbox, mark)
    assert called.count("users.list") == 4  # paged once through, for both people
    assert called.count("conversations.open") == 2 and called.count("chat.postMessage") == 3


def test_a_person_is_found_by_email_when_we_know_it(sandbox) -> None:
    mark = journal_length(sandbox)
    SlackSender().post_direct(CONN, "dave.ito", "your review", fallback_channel="#prep-support",
                              email="dave@example.com")
    [message] = messages(sandbox)
    assert (message["is_im"], message["im_user_name"]) == (True, "dave")
    assert "users.list" not in methods_called(sandbox, mark)


@pytest.mark.parametrize("username", ["ghost", "lena"], ids=["not-in-slack", "deactivated"])
def test_someone_slack_cannot_reach_is_mentioned_on_the_channel(sandbox, caplog, username: str) -> None:
    with caplog.at_level(logging.WARNING, logger="hooks.channels"):
        SlackSender().post_direct(CONN, username, "You are testing <release>", fallback_channel="#uat-testing",
                                  email=f"{username}@example.com")
    [message] = messages(sandbox)
    assert (message["is_im"], message["channel_name"]) == (False, "uat-testing")
    assert message["text"] == f"@{username}: You are testing <release>"
    assert any(username in record.getMessage() and "#uat-testing" in record.getMessage() for record in caplog.records)
