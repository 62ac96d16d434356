"""Slack Web API stand-in: the methods Prep Support calls, as ``slack_sdk.WebClient`` calls them.

``POST`` (or ``GET``) ``/slack/api/{method}`` with arguments in the query string, a JSON body,
a form-urlencoded or a multipart body (slack_sdk sends all of these). The token comes as
``Authorization: Bearer xoxb-...`` (or a ``token`` form field); like Slack, every answer is
HTTP 200 and failures are ``{"ok": false, "error": "invalid_auth"}`` and friends. Methods:
``auth.test``, ``chat.postMessage``, ``chat.update``, ``conversations.list`` (cursor
pagination), ``conversations.history`` (a channel's messages, newest first, ``oldest``/``latest``/
``inclusive``, cursor pagination) and ``conversations.replies``. Channels are addressed by ID or by
name, with or without ``#``; messages are stored under the channel ID.

Message metadata (https://api.slack.com/metadata/using): ``chat.postMessage`` takes ``metadata``
``{"event_type", "event_payload"}`` (a JSON object, or a JSON string in a form body;
``invalid_metadata_format`` / ``invalid_metadata_schema`` otherwise), and ``conversations.history``
and ``conversations.replies`` show a message's ``metadata`` only when asked with
``include_all_metadata`` (https://api.slack.com/methods/conversations.history#arg_include_all_metadata).

Direct messages: ``users.list`` (cursor pagination; every member, deactivated ones with
``deleted: true``), ``users.lookupByEmail`` (``users_not_found``) and ``conversations.open``
with ``users`` (one user ID: the 1:1 IM, a ``D...`` ID, the same one each time, with
``already_open`` and ``no_op`` once it exists; ``return_im`` answers the whole IM object;
``user_not_found``, ``user_disabled``, ``users_list_not_supplied``). The workspace's members are
the people of :mod:`sandbox.directory_seed` who have joined (same username and e-mail as Okta,
the directory and HR; leavers deactivated), the quick start's ``analyst`` and ``admin`` logins,
and the bot. https://api.slack.com/methods/users.list, https://api.slack.com/methods/users.lookupByEmail,
https://api.slack.com/methods/conversations.open, https://api.slack.com/types/user,
https://api.slack.com/types/im.

File uploads take the three steps ``WebClient.files_upload_v2`` (and the provider's
``SlackHook.send_file_v2``) make: ``files.getUploadURLExternal`` (``filename``, ``length``;
answers ``upload_url`` and ``file_id``), a ``POST`` of the bytes (raw, or multipart) to that
URL, which answers HTTP 200 ``OK - <size>``, and ``files.completeUploadExternal`` (``files`` as
a JSON array of ``{"id", "title"}``, ``channel_id`` or ``channels``, ``initial_comment``,
``thread_ts``), which shares the files: each channel gets one message carrying them, with the
initial comment as its text, and the answer lists the file objects
(https://api.slack.com/types/file). A ticket is completed once; an unknown or unfinished one is
``file_not_found``. https://api.slack.com/methods/files.getUploadURLExternal,
https://api.slack.com/methods/files.completeUploadExternal,
https://api.slack.com/messaging/files#uploading_files.

Shapes fit the published OpenAPI description (``slack_web_openapi_v2.json`` from
slackapi/slack-api-specs), including its ``conversations.replies`` message objects, which
carry no ``blocks``; and the method pages:
https://api.slack.com/methods/auth.test, https://api.slack.com/methods/chat.postMessage,
https://api.slack.com/methods/chat.update, https://api.slack.com/methods/conversations.list,
https://api.slack.com/methods/conversations.replies, https://api.slack.com/apis/pagination.

Rate limiting (HTTP 429 with ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``,
https://api.slack.com/apis/rate-limits) comes from :mod:`sandbox.faults` with :func:`error_body`.
``GET /slack/_sandbox/messages`` lists what was posted (with each message's edits and files; a
direct message has ``is_im`` and the person in ``im_user`` / ``im_user_name``),
``GET /slack/_sandbox/files`` the shared files (name, size, title, channels, initial comment) and
``GET /slack/_sandbox/files/{id}/content`` one file's bytes; ``DELETE /slack/_sandbox/messages``
forgets messages and files.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse

from sandbox import directory_seed

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
MAX_ALT_TXT = 1000  # https://api.slack.com/methods/files.getUploadURLExternal (alt_txt_too_large)
MAX_SHARE_CHANNELS = 100  # https://api.slack.com/methods/files.completeUploadExternal (channels_limit_exceeded)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# mimetype, filetype, pretty_type by extension (the values Slack gives in file objects)
FILE_TYPES = {
    "png": ("image/png", "png", "PNG"), "jpg": ("image/jpeg", "jpg", "JPEG"), "gif": ("image/gif", "gif", "GIF"),
    "txt": ("text/plain", "text", "Plain Text"), "csv": ("text/csv", "csv", "CSV"),
    "pdf": ("application/pdf", "pdf", "PDF"), "json": ("application/json", "json", "JSON"),
}
BINARY = ("application/octet-stream", "binary", "Binary")

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


ANALYST_USER_ID = "U0ANALYST1"
MAX_IM_USERS = 8  # conversations.open: too_many_users past this (an mpim takes 2 to 8 others)


@dataclass(frozen=True)
class User:
    """A workspace member (https://api.slack.com/types/user)."""

    id: str
    name: str
    real_name: str
    email: str | None
    deleted: bool = False
    is_admin: bool = False
    is_bot: bool = False

    def as_dict(self, include_locale: bool = False) -> dict[str, Any]:
        first, _, last = self.real_name.partition(" ")
        profile = {
            "real_name": self.real_name, "real_name_normalized": self.real_name, "display_name": self.name,
            "display_name_normalized": self.name, "avatar_hash": f"g{self.id[-10:].lower()}", "title": "",
            "phone": "", "skype": "", "status_text": "", "status_emoji": "", "fields": {}, "team": TEAM_ID,
            "first_name": first, "last_name": last,
        }  # fmt: skip
        if self.email:
            profile["email"] = self.email
        if self.is_bot:
            profile |= {"bot_id": BOT_ID, "always_active": True}
        found = {
            "id": self.id, "team_id": TEAM_ID, "name": self.name, "deleted": self.deleted, "color": "9f69e7",
            "real_name": self.real_name, "tz": "Europe/London", "tz_label": "Greenwich Mean Time", "tz_offset": 0,
            "profile": profile, "is_admin": self.is_admin, "is_owner": self.is_admin, "is_primary_owner": False,
            "is_restricted": False, "is_ultra_restricted": False, "is_bot": self.is_bot, "is_app_user": False,
            "updated": CREATED,
        }  # fmt: skip
        if include_locale:
            found["locale"] = "en-GB"
        return found


def seeded_users() -> list[User]:
    """The members: the directory's people who have joined (leavers deactivated), the logins, the bot."""
    people = [User(f"U0EMP{person.employee_id}", person.username, person.name, person.email,
                   deleted=person.status == "terminated")
              for person in directory_seed.PEOPLE if person.employee_id not in directory_seed.NOT_JOINED]
    logins = [User(ANALYST_USER_ID, "analyst", "Support Analyst", f"analyst@{directory_seed.DOMAIN}"),
              User(ADMIN_USER_ID, "admin", "Workspace Admin", f"admin@{directory_seed.DOMAIN}", is_admin=True)]
    return [*people, *logins, User(BOT_USER_ID, BOT_USER_NAME, "Prep Support", None, is_bot=True)]


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
    user: str | None = None  # an IM's other member; IMs have no name

    @property
    def is_im(self) -> bool:
        return self.user is not None

    def as_dict(self) -> dict[str, Any]:
        """The conversation object (https://api.slack.com/types/conversation; an IM: https://api.slack.com/types/im)."""
        if self.is_im:
            return {"id": self.id, "created": CREATED, "is_im": True, "is_org_shared": False, "user": self.user,
                    "is_user_deleted": False, "priority": 0, "is_open": True, "last_read": "0000000000.000000",
                    "unread_count": 0, "unread_count_display": 0}
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
    files: list[SharedFile] = field(default_factory=list)
    metadata: dict[str, Any] | None = None

    def with_metadata(self, shown: dict[str, Any], include: bool) -> dict[str, Any]:
        return shown | {"metadata": self.metadata} if include and self.metadata else shown

    def as_posted(self) -> dict[str, Any]:
        """The message object in chat.postMessage / chat.update answers."""
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": self.text, "ts": self.ts,
                   "team": TEAM_ID}
        if self.blocks:
            message["blocks"] = self.blocks
        if self.files:
            message |= {"files": [{"id": f.id, "name": f.name, "title": f.title} for f in self.files], "upload": True}
        if self.thread_ts:
            message |= {"thread_ts": self.thread_ts, "parent_user_id": BOT_USER_ID}
        return message

    def as_state(self, channel_name: str | None, im_user: User | None = None) -> dict[str, Any]:
        """Everything the sandbox knows about the message, for tests (a DM: ``is_im`` and the person)."""
        return {"channel": self.channel, "channel_name": channel_name, "is_im": im_user is not None,
                "im_user": im_user.id if im_user else None, "im_user_name": im_user.name if im_user else None,
                "ts": self.ts, "thread_ts": self.thread_ts,
                "reply_broadcast": self.reply_broadcast, "user": BOT_USER_ID, "text": self.text,
                "blocks": self.blocks, "edits": self.edits, "metadata": self.metadata,
                "files": [{"id": f.id, "name": f.name, "title": f.title, "size": f.size} for f in self.files]}


@dataclass
class SharedFile:
    """An upload: announced by files.getUploadURLExternal, filled by the POST, shared on completion."""

    id: str
    name: str
    length: int
    alt_txt: str
    created: int
    data: bytes | None = None
    title: str = ""
    completed: bool = False
    initial_comment: str = ""
    thread_ts: str | None = None
    shares: list[tuple[str, str]] = field(default_factory=list)  # (channel ID, message ts)

    @property
    def size(self) -> int:
        return len(self.data or b"")

    @property
    def types(self) -> tuple[str, str, str]:
        return FILE_TYPES.get(self.name.rpartition(".")[2].lower(), BINARY) if "." in self.name else BINARY

    def image_size(self) -> tuple[int, int] | None:
        """Width and height from a PNG's IHDR chunk (Slack reports original_w / original_h for images)."""
        data = self.data or b""
        if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR":
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return None

    def as_object(self, base_url: str, channels: dict[str, Channel]) -> dict[str, Any]:
        """The file object (https://api.slack.com/types/file)."""
        mimetype, filetype, pretty_type = self.types
        shared = {"public": {}, "private": {}}
        for channel_id, ts in self.shares:
            channel = channels[channel_id]
            shared["private" if channel.is_private else "public"].setdefault(channel_id, []).append(
                {"reply_users": [], "reply_users_count": 0, "reply_count": 0, "ts": ts, "channel_name": channel.name,
                 "team_id": TEAM_ID, "share_user_id": BOT_USER_ID, "source": "UNKNOWN"})
        private_url = f"{base_url}slack/files-pri/{TEAM_ID}-{self.id}/{self.name}"
        found = {
            "id": self.id, "created": self.created, "timestamp": self.created, "name": self.name,
            "title": self.title, "mimetype": mimetype, "filetype": filetype, "pretty_type": pretty_type,
            "user": BOT_USER_ID, "user_team": TEAM_ID, "editable": False, "size": self.size, "mode": "hosted",
            "is_external": False, "external_type": "", "is_public": bool(shared["public"]),
            "public_url_shared": False, "display_as_bot": False, "username": "",
            "url_private": private_url, "url_private_download": f"{private_url}/download",
            "permalink": f"{base_url}slack/files/{BOT_USER_ID}/{self.id}/{self.name}",
            "channels": sorted(shared["public"]), "groups": sorted(shared["private"]), "ims": [],
            "comments_count": 0, "has_rich_preview": False,
            "shares": {kind: ids for kind, ids in shared.items() if ids},
        }  # fmt: skip
        dimensions = self.image_size()
        if dimensions:
            found |= {"original_w": dimensions[0], "original_h": dimensions[1]}
        return found

    def as_state(self, channels: dict[str, Channel]) -> dict[str, Any]:
        """Everything the sandbox knows about a shared file, for tests."""
        mimetype, filetype, _ = self.types
        dimensions = self.image_size()
        return {"id": self.id, "name": self.name, "title": self.title, "size": self.size, "mimetype": mimetype,
                "filetype": filetype, "alt_txt": self.alt_txt, "initial_comment": self.initial_comment,
                "thread_ts": self.thread_ts, "channels": [channel_id for channel_id, _ in self.shares],
                "channel_names": [channels[channel_id].name for channel_id, _ in self.shares],
                "message_ts": [ts for _, ts in self.shares],
                "original_w": dimensions[0] if dimensions else None,
                "original_h": dimensions[1] if dimensions else None}


class SlackWorkspace:
    """The workspace's members, channels (and the IMs opened with members) and the messages posted to them."""

    def __init__(self) -> None:
        self.channels = {channel_id: Channel(channel_id, name, private, purpose)
                         for channel_id, name, private, purpose in CHANNELS}
        self.users = {user.id: user for user in seeded_users()}
        self.messages: dict[tuple[str, str], Message] = {}
        self.files: dict[str, SharedFile] = {}
        self.upload_tickets: dict[str, str] = {}  # upload URL token -> file ID
        self._file_numbers = itertools.count(1)
        self._last_micros = 0

    def clear(self) -> None:
        self.messages.clear()
        self.files.clear()
        self.upload_tickets.clear()

    def channel(self, ref: Any) -> Channel:
        """A channel by ID, ``#name`` or ``name``."""
        ref = str(ref or "").strip()
        found = self.channels.get(ref) or next(
            (channel for channel in self.channels.values() if ref and channel.name == ref.removeprefix("#")), None
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
                          reply_broadcast=bool(thread_ts) and _flag(args.get("reply_broadcast")),
                          metadata=_metadata(args.get("metadata")))
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

    def upload_url(self, args: dict[str, Any], base_url: str) -> dict[str, Any]:
        """files.getUploadURLExternal: a file ID and a single-use URL to POST the bytes to."""
        name = str(args.get("filename") or "").strip()
        try:
            length = int(args.get("length") or 0)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None
        if not name or length <= 0:
            raise SlackError("missing_argument")  # documented for a length of 0
        alt_txt = str(args.get("alt_txt") or "")
        if len(alt_txt) > MAX_ALT_TXT:
            raise SlackError("alt_txt_too_large")
        upload = SharedFile(f"F0FILE{next(self._file_numbers):06d}", name, length, alt_txt, int(time.time()))
        self.files[upload.id] = upload
        ticket = secrets.token_urlsafe(24)
        self.upload_tickets[ticket] = upload.id
        return {"upload_url": f"{base_url}slack/upload/v1/{ticket}", "file_id": upload.id}

    def receive(self, ticket: str, data: bytes) -> int:
        """The POST to an upload URL; raises KeyError for a URL never issued or already completed."""
        upload = self.files[self.upload_tickets[ticket]]
        upload.data = data
        return upload.size

    def complete(self, args: dict[str, Any], base_url: str) -> dict[str, Any]:
        """files.completeUploadExternal: share the uploaded files, one message per channel."""
        wanted = args.get("files")
        if isinstance(wanted, str):
            try:
                wanted = json.loads(wanted)
            except ValueError:
                raise SlackError("invalid_arguments") from None
        if not (isinstance(wanted, list) and wanted and all(isinstance(f, dict) and f.get("id") for f in wanted)):
            raise SlackError("invalid_arguments")
        uploads = []
        for entry in wanted:
            upload = self.files.get(str(entry["id"]))
            if upload is None or upload.completed or upload.data is None:
                raise SlackError("file_not_found")  # "Could not find the file from the upload ticket."
            uploads.append((upload, str(entry.get("title") or upload.name)))
        refs = [ref for ref in str(args.get("channels") or "").split(",") if ref.strip()]
        if args.get("channel_id"):
            refs.insert(0, str(args["channel_id"]))
        if len(refs) > MAX_SHARE_CHANNELS:
            raise SlackError("channels_limit_exceeded")
        targets = [self.channel(ref) for ref in refs]
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None and (len(targets) != 1 or not _is_ts(thread_ts)
                                      or (targets[0].id, str(thread_ts)) not in self.messages):
            raise SlackError("invalid_arguments")  # a thread needs exactly one channel and a message in it
        comment = str(args.get("initial_comment") or "")
        if len(comment) > MAX_TEXT:
            raise SlackError("msg_too_long")
        _, blocks = _text_and_blocks({"blocks": args.get("blocks")})
        for upload, title in uploads:
            upload.title, upload.completed, upload.initial_comment, upload.thread_ts = title, True, comment, thread_ts
        self.upload_tickets = {t: f for t, f in self.upload_tickets.items() if not self.files[f].completed}
        for channel in targets:
            # Slack ignores blocks when an initial_comment is given.
            message = Message(channel.id, self.next_ts(), comment, [] if comment else (blocks or []),
                              thread_ts=self._thread_of(channel, thread_ts), files=[upload for upload, _ in uploads])
            self.messages[(channel.id, message.ts)] = message
            for upload, _ in uploads:
                upload.shares.append((channel.id, message.ts))
        return {"files": [upload.as_object(base_url, self.channels) for upload, _ in uploads]}

    def _thread_of(self, channel: Channel, thread_ts: str | None) -> str | None:
        if thread_ts is None:
            return None
        parent = self.messages[(channel.id, str(thread_ts))]
        return parent.thread_ts or parent.ts

    def shared_files(self) -> list[dict[str, Any]]:
        shared = sorted((f for f in self.files.values() if f.completed), key=lambda f: f.id)
        return [upload.as_state(self.channels) for upload in shared]

    def list_channels(self, args: dict[str, Any]) -> dict[str, Any]:
        types = {kind.strip() for kind in str(args.get("types") or "public_channel").split(",")}
        unknown = types - {"public_channel", "private_channel", "mpim", "im"}
        if unknown:
            raise SlackError("invalid_types")
        wanted = [channel for channel in self.channels.values() if _kind(channel) in types]
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
        include = _flag(args.get("include_all_metadata"))
        replies = [reply.with_metadata({"type": "message", "user": BOT_USER_ID, "text": reply.text, "ts": reply.ts,
                                        "thread_ts": parent.ts, "parent_user_id": BOT_USER_ID, "team": TEAM_ID},
                                       include) for reply in thread]
        return {"messages": [parent.with_metadata(head, include), *replies], "has_more": False}

    def history(self, args: dict[str, Any]) -> dict[str, Any]:
        """A channel's messages (thread replies only if broadcast), newest first, between oldest and latest."""
        channel = self.channel(args.get("channel"))
        inclusive = _flag(args.get("inclusive"))
        oldest, latest = _history_bound(args.get("oldest"), "0"), _history_bound(args.get("latest"), None)
        shown = [m for m in self.messages.values() if m.channel == channel.id
                 and (m.thread_ts in (None, m.ts) or m.reply_broadcast)
                 and (float(m.ts) > float(oldest) or (inclusive and m.ts == oldest))
                 and (latest is None or float(m.ts) < float(latest) or (inclusive and m.ts == latest))]
        shown.sort(key=lambda m: float(m.ts), reverse=True)
        limit = _limit(args.get("limit"))
        start = _decode_cursor(args.get("cursor"))
        page = shown[start:start + limit]
        include = _flag(args.get("include_all_metadata"))
        answer: dict[str, Any] = {
            "messages": [m.with_metadata(m.as_posted(), include) for m in page], "has_more": start + limit < len(shown),
            "pin_count": 0, "channel_actions_ts": None, "channel_actions_count": 0}
        if answer["has_more"]:
            answer["response_metadata"] = {"next_cursor": _encode_cursor(start + limit)}
        return answer

    def list_users(self, args: dict[str, Any]) -> dict[str, Any]:
        """users.list: every member, deactivated ones too; no ``limit`` answers them all."""
        members = list(self.users.values())
        start = _decode_cursor(args.get("cursor"))
        limit = _limit(args.get("limit")) if args.get("limit") not in (None, "") else len(members)
        following = start + limit
        locale = _flag(args.get("include_locale"))
        return {"members": [user.as_dict(locale) for user in members[start:following]], "cache_ts": int(time.time()),
                "response_metadata": {"next_cursor": _encode_cursor(following) if following < len(members) else ""}}

    def lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").strip().lower()
        if not email:
            raise SlackError("invalid_arguments")  # the required argument is missing
        found = next((user for user in self.users.values() if (user.email or "").lower() == email), None)
        if found is None:
            raise SlackError("users_not_found")
        return {"user": found.as_dict()}

    def open_conversation(self, args: dict[str, Any]) -> dict[str, Any]:
        """conversations.open: the 1:1 IM with one user (made once, the same ID after), or resume one by ID."""
        if args.get("channel") and not args.get("users"):
            channel = self.channel(args["channel"])
            if not channel.is_im:
                raise SlackError("method_not_supported_for_channel_type")
            return {"no_op": True, "already_open": True, "channel": self._im_answer(channel, args)}
        ids = [ref.strip() for ref in str(args.get("users") or "").split(",") if ref.strip()]
        if not ids:
            raise SlackError("users_list_not_supplied")
        if len(ids) > MAX_IM_USERS:
            raise SlackError("too_many_users")
        if len(ids) > 1:
            raise SlackError("invalid_user_combination")  # multi-person DMs are not stood in for
        user = self.users.get(ids[0])
        if user is None:
            raise SlackError("user_not_found")
        if user.deleted:
            raise SlackError("user_disabled")
        im_id = "D" + user.id[1:]  # ^[D][A-Z0-9]{8,}$, one IM per member
        existing = self.channels.get(im_id)
        if existing is None:
            self.channels[im_id] = Channel(im_id, "", True, "", user=user.id)
        answer = {"channel": self._im_answer(self.channels[im_id], args)}
        return answer | ({"no_op": True, "already_open": True} if existing else {})

    @staticmethod
    def _im_answer(channel: Channel, args: dict[str, Any]) -> dict[str, Any]:
        return channel.as_dict() if _flag(args.get("return_im")) else {"id": channel.id}

    def state(self) -> list[dict[str, Any]]:
        ordered = sorted(self.messages.values(), key=lambda m: m.ts)
        shown = []
        for message in ordered:
            channel = self.channels[message.channel]
            shown.append(message.as_state(None, self.users[channel.user]) if channel.is_im
                         else message.as_state(channel.name))
        return shown


def _kind(channel: Channel) -> str:
    """The conversation type conversations.list filters on."""
    if channel.is_im:
        return "im"
    return "private_channel" if channel.is_private else "public_channel"


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


def _metadata(value: Any) -> dict[str, Any] | None:
    """``metadata`` of chat.postMessage: ``{"event_type": str, "event_payload": object}``."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError("invalid_metadata_format") from None
    if not (isinstance(value, dict) and isinstance(value.get("event_type"), str) and value["event_type"]
            and isinstance(value.get("event_payload"), dict)):
        raise SlackError("invalid_metadata_schema")
    return {"event_type": value["event_type"], "event_payload": value["event_payload"]}


def _history_bound(value: Any, default: str | None) -> str | None:
    if value in (None, ""):
        return default
    try:
        float(value)
    except (TypeError, ValueError):
        raise SlackError("invalid_ts_oldest") from None
    return str(value)


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
    "conversations.history": lambda workspace, args, _base: workspace.history(args),
    "conversations.list": lambda workspace, args, _base: workspace.list_channels(args),
    "conversations.open": lambda workspace, args, _base: workspace.open_conversation(args),
    "conversations.replies": lambda workspace, args, _base: workspace.replies(args),
    "files.getUploadURLExternal": lambda workspace, args, base: workspace.upload_url(args, base),
    "files.completeUploadExternal": lambda workspace, args, base: workspace.complete(args, base),
    "users.list": lambda workspace, args, _base: workspace.list_users(args),
    "users.lookupByEmail": lambda workspace, args, _base: workspace.lookup_by_email(args),
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


@router.post("/upload/v1/{ticket}")
async def upload(ticket: str, request: Request) -> PlainTextResponse:
    """An upload URL from files.getUploadURLExternal: the file's bytes, raw or as a multipart form's file part
    (slack_sdk sends them raw). No token: the URL itself is the credential, and it works until completed."""
    data = await request.body()
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        parts = [value for value in form.values() if not isinstance(value, str)]
        if not parts:
            return PlainTextResponse("no file in the form", status_code=400)
        data = await parts[0].read()
    try:
        size = get_workspace(request).receive(ticket, data)
    except KeyError:
        return PlainTextResponse("upload URL unknown or already used", status_code=404)
    return PlainTextResponse(f"OK - {size}")


@router.get("/_sandbox/messages")
async def list_messages(request: Request) -> dict[str, Any]:
    """Every message posted, oldest first, with its channel, thread and edits."""
    return {"messages": get_workspace(request).state()}


@router.delete("/_sandbox/messages")
async def clear_messages(request: Request) -> dict[str, Any]:
    """Forget every message and file."""
    get_workspace(request).clear()
    return {"cleared": True}


@router.get("/_sandbox/files")
async def list_files(request: Request) -> dict[str, Any]:
    """Every shared file, in upload order: name, size, title, channels, initial comment."""
    return {"files": get_workspace(request).shared_files()}


@router.get("/_sandbox/files/{file_id}/content")
async def file_content(file_id: str, request: Request) -> Response:
    """A shared file's bytes."""
    upload = get_workspace(request).files.get(file_id)
    if upload is None or not upload.completed:
        raise HTTPException(status_code=404, detail=f"no shared file {file_id}")
    return Response(upload.data or b"", media_type=upload.types[0])
