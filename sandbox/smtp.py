"""SMTP stand-in: an aiosmtpd server in the sandbox process, and its mailbox over HTTP.

The server speaks plain SMTP (RFC 5321, no TLS, no AUTH) through aiosmtpd's protocol
(https://aiosmtpd.aio-libs.org/en/latest/smtp.html), on the sandbox's own event loop rather than
in a :class:`aiosmtpd.controller.Controller` thread, so the mailbox needs no lock. Each accepted
message is parsed (RFC 5322 headers, MIME text and HTML parts, attachments) and kept.

``GET /smtp/_sandbox/messages`` lists them, ``DELETE`` clears them.
``PUT /smtp/_sandbox/faults`` with ``{"reject_next": N, "code": 451, "at": "rcpt"}`` answers
the next N ``RCPT`` (or, with ``"at": "data"``, ``DATA``) commands with that reply code, a
temporary failure by default (RFC 5321 section 4.2.1); ``DELETE /smtp/_sandbox/faults`` stops.
"""

from __future__ import annotations

import asyncio
import email.policy
import weakref
from datetime import UTC, datetime
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

PREFIX = "/smtp"
HOSTNAME = "sandbox.localhost"
DATA_SIZE_LIMIT = 10 * 1024 * 1024


class RejectPlan(BaseModel):
    """Refuse the next ``reject_next`` RCPT or DATA commands with ``code``."""

    model_config = ConfigDict(extra="forbid")

    reject_next: int = Field(ge=0, le=10_000)
    code: int = Field(default=451, ge=400, le=599)
    at: Literal["rcpt", "data"] = "rcpt"

    def reply(self) -> str:
        enhanced = "4.3.0" if self.code < 500 else "5.3.0"
        return f"{self.code} {enhanced} Sandbox fault: requested action not taken, try again later"


def _lines(text: str) -> str:
    """SMTP carries CRLF line ends; tests compare with ``\\n``."""
    return text.replace("\r\n", "\n")


def parse_message(envelope: Envelope) -> dict[str, Any]:
    """What a test wants to see of a received message: envelope, headers, text and HTML bodies."""
    raw = envelope.original_content or b""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    attachments = [
        {"filename": part.get_filename(), "content_type": part.get_content_type(),
         "size": len(part.get_payload(decode=True) or b"")}
        for part in message.iter_attachments()
    ]
    return {
        "mail_from": envelope.mail_from,
        "rcpt_tos": list(envelope.rcpt_tos),
        "from": str(message.get("From", "")),
        "to": [address for _name, address in getaddresses(message.get_all("To", []))],
        "cc": [address for _name, address in getaddresses(message.get_all("Cc", []))],
        "subject": str(message.get("Subject", "")),
        "message_id": str(message.get("Message-ID", "")),
        "date": str(message.get("Date", "")),
        "headers": {name: str(value) for name, value in message.items()},
        "text": _lines(text_part.get_content()) if text_part is not None else None,
        "html": _lines(html_part.get_content()) if html_part is not None else None,
        "attachments": attachments,
        "size": len(raw),
        "received_at": datetime.now(UTC).isoformat(),
    }


class Mailbox:
    """Messages received, and the reject plan: the aiosmtpd handler and the HTTP API share it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.plan: RejectPlan | None = None

    def _rejects(self, stage: str) -> str | None:
        plan = self.plan
        if plan is None or plan.at != stage or plan.reject_next <= 0:
            return None
        plan.reject_next -= 1
        return plan.reply()

    # aiosmtpd handler hooks (https://aiosmtpd.aio-libs.org/en/latest/handlers.html)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if reply := self._rejects("rcpt"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if reply := self._rejects("data"):
            return reply
        self.messages.append(parse_message(envelope))
        return "250 Message accepted for delivery"


class SmtpServer:
    """Listens on ``host:port`` (0 = a free port) while started, handing messages to a mailbox."""

    def __init__(self, mailbox: Mailbox, host: str, port: int = 0) -> None:
        self.mailbox = mailbox
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    async def start(self) -> None:
        """Listen; the port is known once this returns."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()

        def session() -> SMTP:
            protocol = SMTP(self.mailbox, hostname=HOSTNAME, data_size_limit=DATA_SIZE_LIMIT, loop=loop)
            self._sessions.add(protocol)
            return protocol

        self._server = await loop.create_server(session, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut off sessions in progress (an idle client would otherwise hold shutdown)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for protocol in list(self._sessions):
            if protocol.transport is not None:
                protocol.transport.abort()
        await server.wait_closed()


router = APIRouter(prefix=PREFIX, tags=["smtp"])


def get_mailbox(request: Request) -> Mailbox:
    return request.app.state.smtp


@router.get("/_sandbox/messages")
async def list_messages(request: Request) -> dict[str, Any]:
    """Messages received, oldest first."""
    return {"messages": get_mailbox(request).messages}


@router.delete("/_sandbox/messages")
async def clear_messages(request: Request) -> dict[str, Any]:
    """Forget every message."""
    get_mailbox(request).messages.clear()
    return {"cleared": True}


@router.get("/_sandbox/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    """The reject plan, with how many rejections are left."""
    plan = get_mailbox(request).plan
    return {"plan": plan.model_dump() if plan else None}


@router.put("/_sandbox/faults")
async def set_faults(request: Request, plan: RejectPlan) -> dict[str, Any]:
    """Refuse the next ``reject_next`` RCPT (or DATA) commands with ``code``."""
    get_mailbox(request).plan = plan
    return {"plan": plan.model_dump()}


@router.delete("/_sandbox/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    """Accept everything again."""
    get_mailbox(request).plan = None
    return {"cleared": True}
