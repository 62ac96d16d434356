"""Adaptive Cards built without mocks, and TeamsWebhookHook against the sandbox's webhook."""

from __future__ import annotations

import json
import socket
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hooks.http_client import HttpError
from hooks.teams import STYLES, TeamsWebhookHook, adaptive_card, message_envelope, redact_url

TIMEOUT = 10
WEBHOOK_PATH = "/teams/webhook/prep-support-alerts"


@pytest.fixture(autouse=True)
def _clean_teams(sandbox) -> Iterator[None]:
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()
    requests.delete(f"{sandbox.base_url}/teams/_sandbox/messages", timeout=TIMEOUT).raise_for_status()
    yield
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()


def messages(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/teams/_sandbox/messages", timeout=TIMEOUT).json()["messages"]


def journal(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/sandbox/requests/teams", timeout=TIMEOUT).json()["requests"]


def inject(sandbox, **plan: Any) -> None:
    requests.put(f"{sandbox.base_url}/sandbox/faults/teams", json=plan, timeout=TIMEOUT).raise_for_status()


def outage_card(**overrides: Any) -> dict[str, Any]:
    arguments = {"title": "payments-api is down", "facts": [("Service", "payments-api"), ("Since", "10:00 UTC")],
                 "text": "Health checks fail with HTTP 503.", "url": "https://status.example.com/incidents/42"}
    return adaptive_card(**{**arguments, **overrides})


def test_adaptive_card_shape() -> None:
    assert outage_card() == {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "Container",
                "style": "attention",
                "bleed": True,
                "items": [{"type": "RichTextBlock", "inlines": [
                    {"type": "TextRun", "text": "payments-api is down", "weight": "Bolder", "size": "Medium"}]}],
            },
            {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": "Health checks fail with HTTP 503."}]},
            {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": "Service: ", "weight": "Bolder"},
                                                  {"type": "TextRun", "text": "payments-api"}]},
            {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": "Since: ", "weight": "Bolder"},
                                                  {"type": "TextRun", "text": "10:00 UTC"}]},
        ],
        "msteams": {"width": "Full"},
        "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://status.example.com/incidents/42"}],
    }


def test_adaptive_card_without_url_or_facts_has_no_button_or_fact_table() -> None:
    card = outage_card(url=None, facts=[])
    assert "actions" not in card
    assert [element["type"] for element in card["body"]] == ["Container", "RichTextBlock"]


def test_adaptive_card_never_lets_teams_read_markdown() -> None:
    """Evidence quotes monitored systems: a Markdown link or emphasis in it must show as typed."""
    hostile = "[log in again](https://evil.example) **now**"
    card = outage_card(title=hostile, text=hostile, facts=[("Evidence", hostile)])

    def elements(node):
        if isinstance(node, dict):
            yield node
            for value in node.values():
                yield from elements(value)
        elif isinstance(node, list):
            for value in node:
                yield from elements(value)

    types = {element.get("type") for element in elements(card["body"])}
    assert types == {"Container", "RichTextBlock", "TextRun"}  # no TextBlock, no FactSet: no Markdown anywhere
    runs = [element["text"] for element in elements(card["body"]) if element.get("type") == "TextRun"]
    assert runs.count(hostile) == 3


def test_adaptive_card_style_colours_the_title_band() -> None:
    assert outage_card(style="good")["body"][0]["style"] == "good"


def test_adaptive_card_refuses_an_unknown_style() -> None:
    with pytest.raises(ValueError, match="style must be one of " + ", ".join(STYLES)):
        outage_card(style="red")


def test_redact_url_keeps_only_scheme_and_host() -> None:
    url = "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=SECRET"
    assert redact_url(url) == "https://prod-12.westeurope.logic.azure.com:443/***"


def test_connection_keeps_the_webhook_url_in_the_password(sandbox) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_TEAMS_DEFAULT"])
    assert conn == {"conn_type": "http", "password": f"{sandbox.base_url}{WEBHOOK_PATH}"}
    ok, message = TeamsWebhookHook().test_connection()
    assert ok and message.startswith(f"Webhook URL set ({sandbox.base_url}/***)")
    assert WEBHOOK_PATH not in message


def test_post_card_is_stored_with_the_message_envelope(sandbox) -> None:
    card = outage_card()
    TeamsWebhookHook().post_card(card)

    sent = journal(sandbox)[-1]
    assert (sent["method"], sent["path"], sent["status"]) == ("POST", WEBHOOK_PATH, 202)
    [stored] = messages(sandbox)
    assert stored["webhook_id"] == "prep-support-alerts"
    assert stored["payload"] == message_envelope(card)
    assert stored["payload"]["type"] == "message"
    assert stored["payload"]["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        pytest.param({"@type": "MessageCard", "text": "hi"}, "type must be 'message'", id="legacy-message-card"),
        pytest.param({"type": "message", "attachments": []}, "attachments must be a non-empty list", id="no-cards"),
        pytest.param(message_envelope({"type": "AdaptiveCard", "version": "2.0", "body": []}),
                     "attachments[0].content.version must be one of", id="unknown-version"),
        pytest.param(message_envelope({"type": "AdaptiveCard", "version": "1.4", "body": [{"text": "x"}]}),
                     "attachments[0].content.body[0] must be an element object with a 'type'", id="untyped-element"),
        pytest.param({"type": "message", "attachments": [{"contentType": "text/html", "content": "<b>x</b>"}]},
                     "attachments[0].contentType must be 'application/vnd.microsoft.card.adaptive'", id="not-a-card"),
    ],
)
def test_webhook_refuses_a_payload_of_the_wrong_shape(sandbox, payload: dict[str, Any], problem: str) -> None:
    response = requests.post(f"{sandbox.base_url}{WEBHOOK_PATH}", json=payload, timeout=TIMEOUT)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "TriggerInputSchemaMismatch"
    assert problem in error["message"]
    assert messages(sandbox) == []


def test_invalid_card_is_refused_through_the_hook_without_the_url(sandbox) -> None:
    card = {**outage_card(), "version": "2.0"}
    with pytest.raises(HttpError) as raised:
        TeamsWebhookHook().post_card(card)

    assert raised.value.status == 400
    assert "content.version must be one of" in str(raised.value)
    assert WEBHOOK_PATH not in str(raised.value)
    assert messages(sandbox) == []


def test_something_else_than_a_card_is_refused_before_posting(sandbox) -> None:
    start = len(journal(sandbox))
    with pytest.raises(ValueError, match="card must be an Adaptive Card"):
        TeamsWebhookHook().post_card({"type": "MessageCard", "text": "hi"})
    assert journal(sandbox)[start:] == []


def test_failed_post_is_not_retried_and_hides_the_webhook_url(sandbox) -> None:
    inject(sandbox, status=500, times=1)
    start = len(journal(sandbox))

    with pytest.raises(HttpError) as raised:
        TeamsWebhookHook().post_card(outage_card())

    message = str(raised.value)
    assert message.startswith(f"POST {sandbox.base_url}/*** failed: HTTP 500")
    assert raised.value.status == 500
    shown = "".join(traceback.format_exception(raised.value))
    assert WEBHOOK_PATH not in message and WEBHOOK_PATH not in shown
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert [call["status"] for call in journal(sandbox)[start:]] == [500]


def test_unreachable_webhook_error_hides_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/workflows/abc/triggers/manual/paths/invoke?sig=TOPSECRET"
    monkeypatch.setenv("AIRFLOW_CONN_TEAMS_DOWN", json.dumps({"conn_type": "http", "password": url}))

    with pytest.raises(HttpError) as raised:
        TeamsWebhookHook(teams_conn_id="teams_down").post_card(outage_card())

    shown = "".join(traceback.format_exception(raised.value))
    assert str(raised.value) == f"POST http://127.0.0.1:{port}/*** failed: ConnectionError"
    assert "TOPSECRET" not in shown and "/workflows/" not in shown


def test_rate_limited_post_is_waited_out(sandbox) -> None:
    inject(sandbox, status=429, retry_after_s=0, times=1)
    start = len(journal(sandbox))

    TeamsWebhookHook().post_card(outage_card(style="good"))

    assert [call["status"] for call in journal(sandbox)[start:]] == [429, 202]
    assert len(messages(sandbox)) == 1


def test_missing_webhook_url_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TEAMS_EMPTY", json.dumps({"conn_type": "http", "host": "example.com"}))
    with pytest.raises(ValueError, match="'teams_empty' needs the Teams webhook URL .* in its password field"):
        TeamsWebhookHook(teams_conn_id="teams_empty").post_card(outage_card())
