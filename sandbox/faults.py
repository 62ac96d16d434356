"""Fault injection for every stand-in system: errors, rate limits, slow answers, dropped connections.

Each system registers the path prefix it serves. ``PUT /sandbox/faults/{system}`` sets a
plan for it, e.g. ``{"status": 500, "every": 3}`` (the third, sixth, ... call answers 500) or
``{"status": 429, "every": 2, "retry_after_s": 1}`` (every other call is rate limited, with a
``Retry-After`` header as Slack, Jira and ServiceNow send it). ``delay_ms`` slows matching calls,
``drop`` closes their connection unanswered (the stand-in never sees the request), ``lost_answer``
lets the stand-in carry the request out and then closes the connection before a byte of its
answer is sent (a create that happened but whose answer was lost on the way back: the case a
retry must not duplicate), ``times`` caps how many calls are hit. ``method`` and ``path`` (a regular
expression searched in the path) narrow a plan to the calls that match, e.g.
``{"lost_answer": true, "method": "POST", "path": "/issue$", "times": 1}`` loses the answer of the
next issue create and of nothing else; other calls are neither counted nor hit.
``DELETE /sandbox/faults`` clears every plan. ``GET /sandbox/requests/{system}`` lists the calls
a system received (method, path, query, status), so tests can see what went out and came back;
a lost answer shows as status ``"lost (200)"``. Every exchange is also given to the
:class:`sandbox.exchanges.Recorder` with its headers and bodies.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sandbox.exchanges import Recorder, body_record, clean_headers
from sandbox.protocol import drop_connection

JOURNAL_SIZE = 2000


class FaultPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: int | None = Field(default=None, ge=400, le=599)
    every: int = Field(default=1, ge=1)
    retry_after_s: float | None = Field(default=None, ge=0)
    delay_ms: int = Field(default=0, ge=0, le=600_000)
    drop: bool = False
    lost_answer: bool = False
    times: int | None = Field(default=None, ge=1)
    method: str | None = None
    path: str | None = None

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"not a regular expression: {error}") from None
        return value

    def applies_to(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path is None or re.search(self.path, path) is not None)


ErrorBody = Callable[[int], Any]


def default_error_body(status: int) -> Any:
    return {"error": f"injected fault: HTTP {status}"}


@dataclass
class SystemFaults:
    prefix: str
    error_body: ErrorBody = default_error_body
    plan: FaultPlan | None = None
    calls: int = 0
    injected: int = 0
    journal: deque = field(default_factory=lambda: deque(maxlen=JOURNAL_SIZE))

    def next_call_is_hit(self, method: str, path: str) -> bool:
        plan = self.plan
        if plan is None or not plan.applies_to(method, path):
            return False
        self.calls += 1
        if self.calls % plan.every:
            return False
        if plan.times is not None and self.injected >= plan.times:
            return False
        self.injected += 1
        return True


class Faults:
    """The registry of systems and their fault plans, and the ASGI middleware applying them."""

    def __init__(self, recorder: Recorder | None = None) -> None:
        self.systems: dict[str, SystemFaults] = {}
        self.recorder = recorder

    def register(self, system: str, prefix: str, error_body: ErrorBody = default_error_body) -> None:
        self.systems[system] = SystemFaults(prefix=prefix, error_body=error_body)

    def clear(self) -> None:
        for system in self.systems.values():
            system.plan, system.calls, system.injected = None, 0, 0

    def middleware(self, app: Any) -> Any:
        async def apply_faults(scope: dict[str, Any], receive: Any, send: Any) -> None:
            name = self.system_name_for(scope["path"]) if scope["type"] == "http" else None
            if name is None:
                await app(scope, receive, send)
                return
            system = self.systems[name]
            entry = {"method": scope["method"], "path": scope["path"],
                     "query": scope.get("query_string", b"").decode("latin-1"), "status": None}
            system.journal.append(entry)
            exchange = Exchange(name, scope, entry)
            try:
                receive = await exchange.read_request(receive)
                await self._serve(system, app, scope, receive, exchange.sending(send), send)
            finally:
                if self.recorder is not None:
                    self.recorder.record(exchange.record())

        return apply_faults

    def system_name_for(self, path: str) -> str | None:
        return next((name for name, system in self.systems.items() if path.startswith(system.prefix)), None)

    async def _serve(self, system: SystemFaults, app: Any, scope: dict[str, Any], receive: Any,
                     recording_send: Any, send: Any) -> None:
        entry = recording_send.entry
        plan = system.plan
        if system.next_call_is_hit(scope["method"], scope["path"]):
            if plan.delay_ms:
                await asyncio.sleep(plan.delay_ms / 1000)
            if plan.drop:
                entry["status"] = "dropped"
                await drop_connection(scope, receive)
                return
            if plan.lost_answer:
                await app(scope, receive, recording_send.swallowing())
                entry["status"] = f"lost ({entry['status']})"
                await drop_connection(scope, receive)
                return
            if plan.status:
                await _send_error(recording_send, plan, system.error_body(plan.status))
                return
        await app(scope, receive, recording_send)


class Exchange:
    """One call to a stand-in as it happens: the request's body as read, the answer as sent."""

    def __init__(self, system: str, scope: dict[str, Any], entry: dict[str, Any]) -> None:
        self.system, self.scope, self.entry = system, scope, entry
        self.request_body = bytearray()
        self.response_body = bytearray()
        self.response_headers: list[tuple[bytes, bytes]] = []

    async def read_request(self, receive: Any) -> Any:
        """Read the whole request body first (so it is recorded even when a fault answers, or the stand-in
        refuses before reading it), and give the app a ``receive`` that replays it."""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                pending: list[dict[str, Any]] = [message]
                break
            self.request_body += message.get("body", b"")
            if not message.get("more_body"):
                pending = [{"type": "http.request", "body": bytes(self.request_body), "more_body": False}]
                break

        async def replaying_receive() -> dict[str, Any]:
            return pending.pop(0) if pending else await receive()

        return replaying_receive

    def sending(self, send: Any) -> RecordingSend:
        return RecordingSend(self, send)

    def record(self) -> dict[str, Any]:
        request_headers = clean_headers(self.scope.get("headers", []))
        response_headers = clean_headers(self.response_headers)
        return {**self.entry, "system": self.system,
                "request": {"headers": request_headers,
                            "body": body_record(bytes(self.request_body), request_headers.get("content-type", ""))},
                "response": {"headers": response_headers,
                             "body": body_record(bytes(self.response_body),
                                                 response_headers.get("content-type", ""))}}


class RecordingSend:
    """The ASGI ``send`` that notes the status, headers and body of the answer on their way out."""

    def __init__(self, exchange: Exchange, send: Any, deliver: bool = True) -> None:
        self.exchange, self.send, self.deliver = exchange, send, deliver
        self.entry = exchange.entry

    def swallowing(self) -> RecordingSend:
        """The same recording, but nothing reaches the client (the answer gets lost)."""
        return RecordingSend(self.exchange, self.send, deliver=False)

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.entry["status"] = message["status"]
            self.exchange.response_headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.exchange.response_body += message.get("body", b"")
        if self.deliver:
            await self.send(message)


async def _send_error(send: Any, plan: FaultPlan, body: Any) -> None:
    encoded = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(encoded)).encode())]
    if plan.retry_after_s is not None:
        headers.append((b"retry-after", str(math.ceil(plan.retry_after_s)).encode()))
    await send({"type": "http.response.start", "status": plan.status, "headers": headers})
    await send({"type": "http.response.body", "body": encoded})


router = APIRouter(prefix="/sandbox", tags=["sandbox"])


def _faults(request: Request) -> Faults:
    return request.app.state.faults


def _system(request: Request, system: str) -> SystemFaults:
    found = _faults(request).systems.get(system)
    if found is None:
        raise HTTPException(404, f"unknown system {system!r}; known: {', '.join(_faults(request).systems)}")
    return found


@router.put("/faults/{system}")
async def set_fault(system: str, plan: FaultPlan, request: Request) -> dict[str, Any]:
    """Inject faults into a system's calls from now on (its call counter starts again)."""
    target = _system(request, system)
    target.plan, target.calls, target.injected = plan, 0, 0
    return {"system": system, "plan": plan.model_dump()}


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    return {name: {"prefix": s.prefix, "plan": s.plan.model_dump() if s.plan else None, "calls": s.calls,
                   "injected": s.injected} for name, s in _faults(request).systems.items()}


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    _faults(request).clear()
    return {"cleared": True}


@router.get("/requests/{system}")
async def list_requests(system: str, request: Request) -> dict[str, Any]:
    return {"system": system, "requests": list(_system(request, system).journal)}


@router.get("/exchanges")
async def list_exchanges(request: Request, system: str | None = None) -> dict[str, Any]:
    """Every exchange recorded since the sandbox started (of one system if ``system`` is given)."""
    if system is not None:
        _system(request, system)
    return {"file": str(_faults(request).recorder.path), "exchanges": _faults(request).recorder.read(system)}
