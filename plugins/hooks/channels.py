"""Delivering outbox rows (``prep_support.outbox.Sender``) to Slack, Teams and e-mail.

- Slack, through the provider's SlackHook: an incident's first message is posted to the
  channel; updates are replies in its thread; a resolution edits the first message and
  replies in the thread. ``thread_id`` keeps ``<channel id>:<ts>`` of the first message.
  Files (report charts) are shared with ``SlackHook.send_file_v2``, i.e. slack_sdk's
  ``files_upload_v2``: files.getUploadURLExternal, a POST of the bytes, files.completeUploadExternal.
  A personal notice goes to the person as a direct message (``SlackSender.post_direct``): the
  Slack member is found by e-mail (users.lookupByEmail) when we know it, else by username
  (users.list, paged), the IM opened with conversations.open; someone Slack does not know gets
  the notice on a channel with an @-mention instead, and a warning in the log.
  Slack has no idempotency key, so a message posted under a ledger key carries it in its
  ``metadata`` (event type ``prep_support_message``, payload ``{"ledger_key": ...}``,
  https://api.slack.com/metadata/using). When a post may have happened without our hearing it (its
  connection broke, Slack answered 5xx, or an earlier try of the outbox row failed), the channel's
  ``conversations.history`` (a thread's ``conversations.replies``) with ``include_all_metadata`` is
  searched for the key first, and the message found is adopted instead of posted again.
- Teams, through our TeamsWebhookHook: an Adaptive Card per event.
- E-mail, through the SMTP provider's SmtpHook: HTML, with a Message-ID made from the outbox
  key and In-Reply-To the incident's first message, so mail clients thread them.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from prep_support.outbox import Sent

log = logging.getLogger(__name__)

CARD_STYLE = {"opened": "attention", "updated": "warning", "resolved": "good", "flapping": "warning"}
THREAD_GONE = {"message_not_found", "thread_not_found"}  # the first message was deleted
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")  # Slack's conversation IDs; anything else is a name
# conversations.open refuses a member deactivated, or gone, since we looked them up.
NO_DIRECT_MESSAGE = {"user_not_found", "user_disabled", "user_not_visible"}
EVENT_TYPE = "prep_support_message"  # our messages' metadata event type; its payload has the ledger key
POST_ATTEMPTS = 3
LOOKBACK_S = 300  # how far before the first try a lookup reads the channel (clocks differ)
LOOKUP_PAGES = 5  # at most 5 x 200 recent messages are read for a key


class SlackSender:
    """Slack for one task: the hook per Connection, and who is who in Slack, looked up once per Connection."""

    users_page_size = 200  # users.list's recommended page (https://api.slack.com/apis/pagination)

    def __init__(self) -> None:
        self._hooks: dict[str, Any] = {}
        self._members: dict[str, dict[str, str]] = {}  # conn_id -> {name: user ID} of active members
        self._ims: dict[tuple[str, str], str | None] = {}  # (conn_id, username) -> IM ID; None: not in Slack

    def hook(self, conn_id: str) -> Any:
        if conn_id not in self._hooks:
            from airflow.providers.slack.hooks.slack import SlackHook

            from hooks.slack_retries import slack_retry_handlers

            self._hooks[conn_id] = SlackHook(slack_conn_id=conn_id, retry_handlers=slack_retry_handlers())
        return self._hooks[conn_id]

    def client(self, conn_id: str) -> Any:
        return self.hook(conn_id).client

    def post_direct(self, conn_id: str, username: str, text: str, *, fallback_channel: str,
                    email: str | None = None, key: str | None = None) -> Sent:
        """Send ``text`` to ``username`` as a direct message; if Slack does not know them, post it on
        ``fallback_channel`` as ``@username: text`` so the notice is not lost. ``key``: as for :meth:`post`."""
        channel = self.direct_channel(conn_id, username, email)
        if channel is None:
            from prep_support.messages import slack_text

            log.warning("Slack (%s) has no active member %r%s: posting their message on %s with a mention",
                        conn_id, username, f" or {email}" if email else "", fallback_channel)
            channel, text = fallback_channel, f"@{slack_text(username)}: {text}"
        return self.post(conn_id, channel, text, key=key)

    def post(self, conn_id: str, channel: str, text: str, *, key: str | None = None, thread_ts: str | None = None,
             uncertain_since: float | None = None) -> Sent:
        """A new message on a channel (by ID, ``#name`` or name), or a reply in ``thread_ts``; its thread
        is ``<channel ID>:<ts of the thread's first message>``.

        With a ledger ``key`` the message carries it in its metadata, and is posted at most once: after a
        try that may have posted it (here, or an earlier one since epoch ``uncertain_since``), the channel
        is searched for the key before posting again.
        """
        from slack_sdk.errors import SlackApiError

        client = self.client(conn_id)
        since = time.time() if uncertain_since is None else uncertain_since
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"ledger_key": key}} if key else None
        for attempt in range(1, POST_ATTEMPTS + 1):
            if key and (attempt > 1 or uncertain_since is not None):
                found = self.find_posted(conn_id, channel, key, thread_ts=thread_ts, since=since)
                if found is not None:
                    log.info("Slack message %s was posted by an earlier try (ts %s): not posting it again",
                             key, found.message_id)
                    return found
            try:
                answer = client.chat_postMessage(channel=channel, text=text, unfurl_links=False, thread_ts=thread_ts,
                                                 metadata=metadata)
            except (OSError, SlackApiError) as error:
                status = getattr(getattr(error, "response", None), "status_code", 500)
                if not key or attempt == POST_ATTEMPTS or (isinstance(error, SlackApiError) and status < 500):
                    raise
                log.warning("Slack post of %s may or may not have happened (%s): looking for it before trying again",
                            key, error)
                continue
            return Sent(message_id=answer["ts"], thread_id=f"{answer['channel']}:{thread_ts or answer['ts']}")
        raise AssertionError("unreachable")

    def find_posted(self, conn_id: str, channel: str, key: str, *, thread_ts: str | None = None,
                    since: float) -> Sent | None:
        """Our message carrying ledger ``key`` on ``channel`` (in thread ``thread_ts``), posted after ``since``."""
        hook = self.hook(conn_id)
        channel_id = channel if CHANNEL_ID.match(channel) else hook.get_channel_id(channel.removeprefix("#"))
        oldest = f"{max(since - LOOKBACK_S, 0):.6f}"
        if thread_ts:
            pages = hook.client.conversations_replies(channel=channel_id, ts=thread_ts, oldest=oldest, limit=200,
                                                      include_all_metadata=True)
        else:
            pages = hook.client.conversations_history(channel=channel_id, oldest=oldest, limit=200,
                                                      include_all_metadata=True)
        # Iterating a SlackResponse asks for the next page while response_metadata.next_cursor is set.
        for number, page in enumerate(pages, start=1):
            for message in page["messages"]:
                metadata = message.get("metadata") or {}
                if (metadata.get("event_type") == EVENT_TYPE
                        and (metadata.get("event_payload") or {}).get("ledger_key") == key):
                    return Sent(message_id=message["ts"], thread_id=f"{channel_id}:{thread_ts or message['ts']}")
            if number == LOOKUP_PAGES:
                break
        return None

    def direct_channel(self, conn_id: str, username: str, email: str | None = None) -> str | None:
        """The IM channel ID (``D...``) with the person, opened with conversations.open; None if not in Slack."""
        key = (conn_id, username)
        if key not in self._ims:
            from slack_sdk.errors import SlackApiError

            user_id = self.user_id(conn_id, username, email)
            try:
                self._ims[key] = None if user_id is None else (
                    self.client(conn_id).conversations_open(users=user_id)["channel"]["id"])
            except SlackApiError as error:
                if error.response.get("error") not in NO_DIRECT_MESSAGE:
                    raise
                self._ims[key] = None
        return self._ims[key]

    def user_id(self, conn_id: str, username: str, email: str | None = None) -> str | None:
        """The active member for a person: by ``email`` when given and Slack has it, else by member name."""
        if email:
            from slack_sdk.errors import SlackApiError

            try:
                user = self.client(conn_id).users_lookupByEmail(email=email)["user"]
            except SlackApiError as error:
                if error.response.get("error") != "users_not_found":
                    raise
            else:
                if not user.get("deleted"):
                    return user["id"]
        return self._active_members(conn_id).get(username)

    def _active_members(self, conn_id: str) -> dict[str, str]:
        if conn_id not in self._members:
            members: dict[str, str] = {}
            # Iterating a SlackResponse asks for the next page while response_metadata.next_cursor is set.
            for page in self.client(conn_id).users_list(limit=self.users_page_size):
                members.update({user["name"]: user["id"] for user in page["members"]
                                if not user.get("deleted") and not user.get("is_bot")})
            self._members[conn_id] = members
        return self._members[conn_id]

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
        # An earlier try of this outbox row failed: it may have posted all the same (its answer lost).
        # (A message its task sends itself, as outage_comms does, has no such history: None.)
        queued = getattr(message, "created_at", None)
        since = queued.timestamp() if getattr(message, "attempts", 0) and queued else None
        if root is None or not root.thread_id:
            return self.post(message.conn_id, message.target, message.body, key=message.key, uncertain_since=since)
        from slack_sdk.errors import SlackApiError

        client = self.client(message.conn_id)
        channel, thread_ts = root.thread_id.split(":", 1)
        try:
            if message.event == "resolved":
                first_line = root.body.splitlines()[0] if root.body else ""
                client.chat_update(channel=channel, ts=thread_ts,
                                   text=f"{message.body.splitlines()[0]}\n~{first_line}~")
            return self.post(message.conn_id, channel, message.body, key=message.key, thread_ts=thread_ts,
                             uncertain_since=since)
        except SlackApiError as error:
            if error.response.get("error") not in THREAD_GONE:
                raise
            # Someone deleted the first message: say it on the channel rather than never.
            log.warning("Slack thread %s is gone (%s): posting %s on the channel", root.thread_id,
                        error.response.get("error"), message.key)
            return self.post(message.conn_id, channel, message.body, key=message.key)


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
