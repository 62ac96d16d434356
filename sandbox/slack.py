"""Slack Web API stand-in: the methods Prep Support calls, as ``slack_sdk.WebClient`` calls them.

``POST`` (or ``GET``) ``/slack/api/{method}`` with arguments in the query string, a JSON body,
a form-urlencoded or a multipart body (slack_sdk sends all of these). The token comes as
``Authorization: Bearer xoxb-...`` (or a ``token`` form field); like Slack, every answer is
HTTP 200 and failures are ``{"ok": false, "error": "invalid_auth"}`` and friends. Methods:
``auth.test``, ``chat.postMessage``, ``chat.update``, ``conversations.list`` (cursor
pagination) and ``conversations.replies``. Channels are addressed by ID or by name, with or
without ``#``; messages are stored under the channel ID.

Shapes fit the published OpenAPI description (``slack_web_openapi_v2.json`` from
slackapi/slack-api-specs), including its ``conversations.replies`` message objects, which
carry no ``blocks``; and the method pages:
https://api.slack.com/methods/auth.test, https://api.slack.com/methods/chat.postMessage,
https://api.slack.com/methods/chat.update, https://api.slack.com/methods/conversations.list,
https://api.slack.com/methods/conversations.replies, https://api.slack.com/apis/pagination.

Rate limiting (HTTP 429 with ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``,
https://api.slack.com/apis/rate-limits) comes from :mod:`sandbox.faults` with :func:`error_body`.
``GET /slack/_sandbox/messages`` lists what was posted (with each message's edits) and
``DELETE`` clears it.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request

PREFIX = "/slack"
API_PREFIX = "/slack/api/"
SANDBOX_TOKEN = "xoxb-sandbox-token"  # the bot token the sandbox Connection carries
TOKENS = frozenset({SANDBOX_TOKEN})
TEAM_ID = "T0PREPSUPP"
TEAM_NAME = "Prep Support"
BOT_USER_ID = "U0PREPBOT1"
BOT_USER_NAME = "prep-support-bot"
BOT_ID = "B0PREPBOT1"
ADMIN_USER_ID = "U0PREPADMN"
CREATED = 1_704_067_200  # 2024-01-01T00:00:00Z, when the sandbox workspace's channels "were made"
MAX_TEXT = 40_000  # https://api.slack.com/methods/chat.postMessage#truncating
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000  # https://api.slack.com/methods/conversations.list#arg_limit

# ID, name, private, purpose. IDs follow the spec's channel pattern ^[CGD][A-Z0-9]{8,}$.
CHANNELS = (
    ("C0GENERAL1", "general", False, "Company-wide announcements"),
    ("C0PAYSUPRT", "payments-support", False, "Payments API and settlement interfaces"),
    ("C0COMSUPRT", "commerce-support", False, "Orders and checkout"),
    ("C0WEBSUPRT", "web-support", False, "Customer portal"),
    ("C0DATSUPRT", "data-support", False, "Reporting and data quality"),
    ("C0SUPSUPRT", "supply-support", False, "Inventory and supply chain"),
    ("C0IAMSUPRT", "identity-support", False, "Auth gateway, Okta and access reviews"),
    ("C0PREPSUPT", "prep-support", False, "Production support team"),
    ("C0INCIDENT", "incidents", False, "Open incidents, one thread each"),
    ("C0UATTESTS", "uat-testing", False, "User acceptance testing cycles"),
    ("C0ONCALLPV", "prep-support-oncall", True, "On-call hand-over (private)"),
)


class SlackError(Exception):
    """A Web API failure: answered as ``{"ok": false, "error": code}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def error_body(status: int) -> dict[str, Any]:
    """The body of an injected HTTP error, as Slack sends it."""
    codes = {429: "ratelimited", 503: "service_unavailable"}
    return {"ok": False, "error": codes.get(status, "fatal_error")}


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    is_private: bool
    purpose: str

    def as_dict(self) -> dict[str, Any]:
        """The conversation object (https://api.slack.com/types/conversation)."""
        about = {"creator": ADMIN_USER_ID, "last_set": CREATED}
        return {
            "id": self.id, "name": self.name, "name_normalized": self.name, "created": CREATED,
            "creator": ADMIN_USER_ID, "is_channel": True, "is_group": False, "is_im": False, "is_mpim": False,
            "is_private": self.is_private, "is_archived": False, "is_general": self.name == "general",
            "is_shared": False, "is_ext_shared": False, "is_org_shared": False, "is_pending_ext_shared": False,
            "is_member": True, "unlinked": 0, "shared_team_ids": [TEAM_ID], "pending_shared": [],
            "pending_connected_team_ids": [], "previous_names": [], "num_members": 12,
            "topic": {"value": "", **about}, "purpose": {"value": self.purpose, **about},
        }  # fmt: skip


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    reply_broadcast: bool = False
    edits: list[dict[str, Any]] = field(default_factory=list)

    def as_posted(self) -> dict[str, Any]:
        """The message object in chat.postMessage / chat.update answers."""
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": self.text, "ts": self.ts,
                   "team": TEAM_ID}
        if self.blocks:
            message["blocks"] = self.blocks
        if self.thread_ts:
            message |= {"thread_ts": self.thread_ts, "parent_user_id": BOT_USER_ID}
        return message

    def as_state(self, channel_name: str) -> dict[str, Any]:
        """Everything the sandbox knows about the message, for tests."""
        return {"channel": self.channel, "channel_name": channel_name, "ts": self.ts, "thread_ts": self.thread_ts,
                "reply_broadcast": self.reply_broadcast, "user": BOT_USER_ID, "text": self.text,
                "blocks": self.blocks, "edits": self.edits}


class SlackWorkspace:
    """The workspace's channels and the messages posted to them."""

    def __init__(self) -> None:
        self.channels = {channel_id: Channel(channel_id, name, private, purpose)
                         for channel_id, name, private, purpose in CHANNELS}
        self.messages: dict[tuple[str, str], Message] = {}
        self._last_micros = 0

    def clear(self) -> None:
        self.messages.clear()

    def channel(self, ref: Any) -> Channel:
        """A channel by ID, ``#name`` or ``name``."""
        ref = str(ref or "").strip()
        found = self.channels.get(ref) or next(
            (channel for channel in self.channels.values() if channel.name == ref.removeprefix("#")), None
        )
        if found is None:
            raise SlackError("channel_not_found")
        return found

    def next_ts(self) -> str:
        """A message timestamp, unique and increasing, shaped ``1234567890.123456``."""
        self._last_micros = max(time.time_ns() // 1000, self._last_micros + 1)
        return f"{self._last_micros // 1_000_000}.{self._last_micros % 1_000_000:06d}"

    def message(self, channel: Channel, ts: Any, missing: str) -> Message:
        found = self.messages.get((channel.id, str(ts or "")))
        if found is None:
            raise SlackError(missing)
        return found

    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channel(args.get("channel"))
        text, blocks = _text_and_blocks(args)
        if not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None:
            if not _is_ts(thread_ts):
                raise SlackError("invalid_thread_ts")
            parent = self.message(channel, thread_ts, "thread_not_found")
            thread_ts = parent.thread_ts or parent.ts  # a reply to a reply joins the same thread
        message = Message(channel.id, self.next_ts(), text or "", blocks or [], thread_ts,
                          reply_broadcast=bool(thread_ts) and _flag(args.get("reply_broadcast")))
        self.messages[(channel.id, message.ts)] = message
        return {"channel": channel.id, "ts": message.ts, "message": message.as_posted()}

    def update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channel(args.get("channel"))
        message = self.message(channel, args.get("ts"), "message_not_found")
        text, blocks = _text_and_blocks(args)
        if text is None and blocks is None:
            raise SlackError("no_text")
        edit_ts = self.next_ts()
        message.edits.append({"ts": edit_ts, "previous_text": message.text, "previous_blocks": message.blocks})
        message.text = message.text if text is None else text
        message.blocks = message.blocks if blocks is None else blocks
        shown = message.as_posted() | {"edited": {"user": BOT_USER_ID, "ts": edit_ts}}
        return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": shown}

    def list_channels(self, args: dict[str, Any]) -> dict[str, Any]:
        types = {kind.strip() for kind in str(args.get("types") or "public_channel").split(",")}
        unknown = types - {"public_channel", "private_channel", "mpim", "im"}
        if unknown:
            raise SlackError("invalid_types")
        wanted = [channel for channel in self.channels.values()
                  if ("private_channel" if channel.is_private else "public_channel") in types]
        limit = _limit(args.get("limit"))
        start = _decode_cursor(args.get("cursor"))
        page = wanted[start:start + limit]
        following = start + limit
        next_cursor = _encode_cursor(following) if following < len(wanted) else ""
        return {"channels": [channel.as_dict() for channel in page], "response_metadata": {"next_cursor": next_cursor}}

    def replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channel(args.get("channel"))
        parent = self.message(channel, args.get("ts"), "thread_not_found")
        parent = self.messages.get((channel.id, parent.thread_ts or parent.ts), parent)
        thread = sorted((m for m in self.messages.values() if m.channel == channel.id and m.thread_ts == parent.ts),
                        key=lambda m: m.ts)
        head = {"type": "message", "user": BOT_USER_ID, "text": parent.text, "ts": parent.ts,
                "thread_ts": parent.ts, "reply_count": len(thread), "subscribed": False, "team": TEAM_ID}
        if thread:
            head |= {"reply_users": [BOT_USER_ID], "reply_users_count": 1, "latest_reply": thread[-1].ts}
        replies = [{"type": "message", "user": BOT_USER_ID, "text": reply.text, "ts": reply.ts,
                    "thread_ts": parent.ts, "parent_user_id": BOT_USER_ID, "team": TEAM_ID} for reply in thread]
        return {"messages": [head, *replies], "has_more": False}

    def state(self) -> list[dict[str, Any]]:
        ordered = sorted(self.messages.values(), key=lambda m: m.ts)
        return [message.as_state(self.channels[message.channel].name) for message in ordered]


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in {"1", "true"}


def _is_ts(value: Any) -> bool:
    seconds, _, micros = str(value).partition(".")
    return seconds.isdigit() and micros.isdigit()


def _text_and_blocks(args: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]] | None]:
    """``text`` and ``blocks`` as given (None when absent); form bodies carry blocks as a JSON string."""
    text = args.get("text")
    if text is not None and len(str(text)) > MAX_TEXT:
        raise SlackError("msg_too_long")
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks) if blocks.strip() else None
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
    if blocks is not None and not (
        isinstance(blocks, list) and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)
    ):
        raise SlackError("invalid_blocks")
    return (None if text is None else str(text)), blocks


def _limit(value: Any) -> int:
    try:
        limit = int(value) if value not in (None, "") else DEFAULT_LIMIT
    except (TypeError, ValueError):
        raise SlackError("invalid_limit") from None
    return min(max(limit, 1), MAX_LIMIT)


def _encode_cursor(offset: int) -> str:
    # Slack's cursors are opaque base64 strings (https://api.slack.com/apis/pagination).
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        kind, _, offset = base64.b64decode(str(cursor), validate=True).decode().partition(":")
        if kind == "offset" and offset.isdigit():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise SlackError("invalid_cursor")


async def _arguments(request: Request) -> dict[str, Any]:
    """Query string merged with a JSON, form-urlencoded or multipart body."""
    args: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackError("json_not_object")
        args.update(body)
    elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        args.update({name: value for name, value in form.items() if isinstance(value, str)})
    return args


def _token(request: Request, args: dict[str, Any]) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if request.headers.get("content-type", "").startswith("application/json"):
        return None  # Slack reads a JSON body's token only from the Authorization header
    return args.get("token") or None


def _auth_test(workspace: SlackWorkspace, args: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {"url": f"{base_url}slack/", "team": TEAM_NAME, "user": BOT_USER_NAME, "team_id": TEAM_ID,
            "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}


METHODS = {
    "auth.test": _auth_test,
    "chat.postMessage": lambda workspace, args, _base: workspace.post(args),
    "chat.update": lambda workspace, args, _base: workspace.update(args),
    "conversations.list": lambda workspace, args, _base: workspace.list_channels(args),
    "conversations.replies": lambda workspace, args, _base: workspace.replies(args),
}

router = APIRouter(prefix=PREFIX, tags=["slack"])


def get_workspace(request: Request) -> SlackWorkspace:
    """The Slack workspace of the app serving this request."""
    return request.app.state.slack


@router.api_route("/api/{method}", methods=["GET", "POST"])
async def web_api(method: str, request: Request) -> dict[str, Any]:
    """One Web API method; failures are HTTP 200 with ``ok: false``, as Slack answers them."""
    try:
        args = await _arguments(request)
        token = _token(request, args)
        if token is None:
            raise SlackError("not_authed")
        if token not in TOKENS:
            raise SlackError("invalid_auth")
        handler = METHODS.get(method)
        if handler is None:
            raise SlackError("unknown_method")
        return {"ok": True, **handler(get_workspace(request), args, str(request.base_url))}
    except SlackError as error:
        return {"ok": False, "error": error.code}


@router.get("/_sandbox/messages")
async def list_messages(request: Request) -> dict[str, Any]:
    """Every message posted, oldest first, with its channel, thread and edits."""
    return {"messages": get_workspace(request).state()}


@router.delete("/_sandbox/messages")
async def clear_messages(request: Request) -> dict[str, Any]:
    """Forget every message."""
    get_workspace(request).clear()
    return {"cleared": True}
