"""Microsoft Teams channel messages through a Workflows (Power Automate) incoming webhook.

The webhook takes a message whose attachment is an Adaptive Card:
https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
(card elements: https://adaptivecards.io/explorer/). The whole webhook URL is the credential
(its ``sig`` grants posting), so the Connection keeps it in the password field, which Airflow
masks in logs, and errors show it redacted.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import requests
from airflow.sdk import BaseHook

from hooks.http_client import HttpError, send

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# Version 1.4 renders on every Teams client (desktop, web, mobile).
CARD_VERSION = "1.4"
# Container styles of the Adaptive Card schema (https://adaptivecards.io/explorer/Container.html).
STYLES = ("default", "emphasis", "good", "attention", "warning", "accent")


def text_runs(*runs: str | dict[str, Any]) -> dict[str, Any]:
    """A ``RichTextBlock`` of ``TextRun``s, which Teams never reads as Markdown
    (https://learn.microsoft.com/en-us/adaptive-cards/schema-explorer/text-run): ``[x](url)`` or ``**x**``
    coming from a monitored system or a form shows as typed. A run is its text, or a TextRun's fields."""
    return {"type": "RichTextBlock",
            "inlines": [{"type": "TextRun", "text": run} if isinstance(run, str) else {"type": "TextRun", **run}
                        for run in runs]}


def adaptive_card(title: str, facts: list[tuple[str, str]], text: str, url: str | None = None,
                  style: str = "attention") -> dict[str, Any]:
    """An Adaptive Card: a coloured title band, a paragraph, a line per fact and an optional link button.

    Every text is in :func:`text_runs` (a ``TextBlock`` or a ``FactSet`` would render Markdown).

    :param style: the title band's container style, one of :data:`STYLES` (``attention`` is red,
        ``good`` green, ``warning`` amber).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": style, "bleed": True,
         "items": [text_runs({"text": title, "weight": "Bolder", "size": "Medium"})]},
        text_runs(text),
    ]
    body += [text_runs({"text": f"{name}: ", "weight": "Bolder"}, str(value)) for name, value in facts]
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": url}]
    return card


def message_envelope(card: dict[str, Any]) -> dict[str, Any]:
    """The webhook payload carrying one Adaptive Card."""
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def redact_url(url: str) -> str:
    """Scheme and host only: the path and query of a webhook URL are its secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/***"


class TeamsWebhookHook(BaseHook):
    """Post Adaptive Cards to the Teams channel behind a Workflows webhook."""

    conn_name_attr = "teams_conn_id"
    default_conn_name = "teams_default"
    conn_type = "http"
    hook_name = "Microsoft Teams webhook"

    def __init__(self, *, teams_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.teams_conn_id = teams_conn_id

    @cached_property
    def webhook_url(self) -> str:
        """The webhook URL from the Connection's password field, read on first use."""
        url = self.get_connection(self.teams_conn_id).password
        if not url or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ValueError(
                f"Connection {self.teams_conn_id!r} needs the Teams webhook URL (http or https) in its password field"
            )
        return url

    @cached_property
    def session(self) -> requests.Session:
        return requests.Session()

    def post_card(self, card: dict[str, Any]) -> None:
        """Post one Adaptive Card; HttpError (with the URL redacted) when the webhook refuses it.

        A failed POST is not retried (it may have been posted); 429 with Retry-After is waited out.
        """
        if card.get("type") != "AdaptiveCard":
            raise ValueError(f"card must be an Adaptive Card (type 'AdaptiveCard'), got type {card.get('type')!r}")
        url = self.webhook_url
        try:
            send(self.session, "POST", url, json=message_envelope(card))
            return
        except HttpError as error:
            failure = _redacted(error, url)
        # Raised outside the except block so the original error, which names the URL, is not chained.
        raise failure

    def test_connection(self) -> tuple[bool, str]:
        """Checks the URL only: any call to a webhook posts a message to the channel."""
        try:
            url = self.webhook_url
        except Exception as error:
            return False, str(error)
        return True, f"Webhook URL set ({redact_url(url)}); not called, since any call posts to the channel"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["host", "schema", "login", "port", "extra"],
            "relabeling": {"password": "Webhook URL"},
            "placeholders": {
                "password": "https://prod-00.westeurope.logic.azure.com:443/workflows/.../triggers/manual/paths/invoke?..."
            },
        }


def _redacted(error: HttpError, url: str) -> HttpError:
    """The same failure, with the secret URL replaced by its redacted form."""
    shown = redact_url(url)
    parts = urlsplit(url)
    detail = str(error).split(" failed: ", 1)[-1].replace(url, shown)
    path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(path_and_query) > 1:
        detail = detail.replace(path_and_query, "/***")
    redacted = HttpError("POST", shown, None, detail)
    redacted.status = error.status
    return redacted
