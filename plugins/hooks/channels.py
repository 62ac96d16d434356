"""Delivering outbox rows (``prep_support.outbox.Sender``) to Slack, Teams and e-mail.

- Slack, through the provider's SlackHook: an incident's first message is posted to the
  channel; updates are replies in its thread; a resolution edits the first message and
  replies in the thread. ``thread_id`` keeps ``<channel id>:<ts>`` of the first message.
  Files (report charts) are shared with ``SlackHook.send_file_v2``, i.e. slack_sdk's
  ``files_upload_v2``: files.getUploadURLExternal, a POST of the bytes, files.completeUploadExternal.
- Teams, through our TeamsWebhookHook: an Adaptive Card per event.
- E-mail, through the SMTP provider's SmtpHook: HTML, with a Message-ID made from the outbox
  key and In-Reply-To the incident's first message, so mail clients thread them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from prep_support.outbox import Sent

log = logging.getLogger(__name__)

CARD_STYLE = {"opened": "attention", "updated": "warning", "resolved": "good", "flapping": "warning"}
THREAD_GONE = {"message_not_found", "thread_not_found"}  # the first message was deleted
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")  # Slack's conversation IDs; anything else is a name


class SlackSender:
    def __init__(self) -> None:
        self._hooks: dict[str, Any] = {}

    def hook(self, conn_id: str) -> Any:
        if conn_id not in self._hooks:
            from airflow.providers.slack.hooks.slack import SlackHook

            from hooks.slack_retries import slack_retry_handlers

            self._hooks[conn_id] = SlackHook(slack_conn_id=conn_id, retry_handlers=slack_retry_handlers())
        return self._hooks[conn_id]

    def client(self, conn_id: str) -> Any:
        return self.hook(conn_id).client

    def share_file(self, conn_id: str, channel: str, *, content: bytes, filename: str, title: str,
                   comment: str) -> Sent:
        """Upload a file to a channel (by ID, ``#name`` or name) with ``comment`` as its message."""
        hook = self.hook(conn_id)
        # files.completeUploadExternal takes only IDs; conversations.list (paged by the hook) resolves a name.
        channel_id = channel if CHANNEL_ID.match(channel) else hook.get_channel_id(channel.removeprefix("#"))
        answer = hook.send_file_v2(channel_id=channel_id, initial_comment=comment,
                                   file_uploads={"content": content, "filename": filename, "title": title})
        shared = answer["files"][0]
        # The message's ts, when Slack has already recorded the share (it may do so asynchronously).
        shares = shared.get("shares", {})
        ts = next((s[0]["ts"] for kind in ("public", "private") for s in shares.get(kind, {}).values() if s), None)
        return Sent(message_id=shared["id"], thread_id=f"{channel_id}:{ts}" if ts else None)

    def send(self, message: Any, root: Any | None) -> Sent:
        client = self.client(message.conn_id)
        if root is None or not root.thread_id:
            answer = client.chat_postMessage(channel=message.target, text=message.body, unfurl_links=False)
            return Sent(message_id=answer["ts"], thread_id=f"{answer['channel']}:{answer['ts']}")
        from slack_sdk.errors import SlackApiError

        channel, thread_ts = root.thread_id.split(":", 1)
        try:
            if message.event == "resolved":
                first_line = root.body.splitlines()[0] if root.body else ""
                client.chat_update(channel=channel, ts=thread_ts,
                                   text=f"{message.body.splitlines()[0]}\n~{first_line}~")
            answer = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=message.body,
                                             unfurl_links=False)
        except SlackApiError as error:
            if error.response.get("error") not in THREAD_GONE:
                raise
            # Someone deleted the first message: say it on the channel rather than never.
            log.warning("Slack thread %s is gone (%s): posting %s on the channel", root.thread_id,
                        error.response.get("error"), message.key)
            answer = client.chat_postMessage(channel=channel, text=message.body, unfurl_links=False)
            return Sent(message_id=answer["ts"], thread_id=f"{answer['channel']}:{answer['ts']}")
        return Sent(message_id=answer["ts"], thread_id=root.thread_id)


class TeamsSender:
    def send(self, message: Any, root: Any | None) -> Sent:
        from hooks.teams import TeamsWebhookHook, adaptive_card

        lines = message.body.splitlines()
        card = adaptive_card(title=f"{message.target}: {lines[0]}", facts=_facts(lines[1:]), text=lines[0],
                             style=CARD_STYLE.get(message.event, "default"))
        TeamsWebhookHook(teams_conn_id=message.conn_id).post_card(card)
        return Sent(message_id=message.key)


class EmailSender:
    def send(self, message: Any, root: Any | None) -> Sent:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        message_id = _message_id(message.key)
        headers = {"Message-ID": message_id}
        if root is not None and root.message_id:
            headers.update({"In-Reply-To": root.message_id, "References": root.message_id})
        with SmtpHook(smtp_conn_id=message.conn_id) as hook:
            hook.send_email_smtp(to=message.target.split(","), subject=message.subject, html_content=message.body,
                                 from_email=self.from_email(hook), custom_headers=headers)
        return Sent(message_id=message_id, thread_id=root.message_id if root is not None else message_id)

    @staticmethod
    def from_email(hook: Any) -> str:
        return hook.from_email or "prep-support@example.com"


def _message_id(key: str) -> str:
    return f"<{key.replace(':', '.')}@prep-support>"


def _facts(lines: list[str]) -> list[tuple[str, str]]:
    facts = []
    for line in lines:
        name, _, value = line.partition(": ")
        if value:
            facts.append((name.strip(), value.strip()))
    return facts


def senders() -> dict[str, SlackSender | TeamsSender | EmailSender]:
    """The outbox's senders by channel name, for one task."""
    return {"slack": SlackSender(), "teams": TeamsSender(), "email": EmailSender()}
