"""The sample estate: applications with health endpoints, a TCP port and a database.

Each application answers ``GET /estate/apps/{id}/health`` after ``latency_ms`` with
``status_code`` and ``body``, or drops the connection unanswered when ``drop_connection`` is
set. Settings are changed with ``PUT /estate/apps/{id}``; ``POST /estate/reset`` restores the
six seeded applications. The TCP port answers ``READY`` and can be made to refuse
connections with ``PUT /estate/tcp``. The SQLite database is described in
:mod:`sandbox.estate_db`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sandbox.estate_db import DB_FILENAME, ensure_estate_db
from sandbox.protocol import drop_connection
from sandbox.tcp import TcpListener

PREFIX = "/estate"
SEEDED_APPS = ("payments-api", "orders-api", "customer-portal", "reporting", "inventory-api", "auth-gateway")
DEFAULT_LATENCY_MS = 5
DEFAULT_STATUS_CODE = 200
MAX_LATENCY_MS = 600_000
APP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"

Response = tuple[int, list[tuple[bytes, bytes]], bytes]


def default_body(app_id: str) -> dict[str, Any]:
    """The body a healthy application answers with."""
    return {"status": "ok", "app": app_id, "version": "1.0.0"}


def _json_response(status_code: int, content: Any) -> Response:
    """Status, headers and encoded body, ready to send."""
    body = b"" if status_code in (204, 304) else json.dumps(content, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json")]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    return status_code, headers, body


class EstateApp:
    """One monitored application: its settings, hit counter and pre-encoded health answer."""

    __slots__ = ("id", "latency_ms", "status_code", "body", "drop_connection", "hits", "response", "last_headers")

    def __init__(self, app_id: str, latency_ms: int = DEFAULT_LATENCY_MS) -> None:
        self.id = app_id
        self.latency_ms = latency_ms
        self.status_code = DEFAULT_STATUS_CODE
        self.body = default_body(app_id)
        self.drop_connection = False
        self.hits = 0
        self.last_headers: list[tuple[bytes, bytes]] = []
        self.response = _json_response(self.status_code, self.body)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply settings; a setting given as None goes back to its default."""
        defaults = {
            "latency_ms": DEFAULT_LATENCY_MS,
            "status_code": DEFAULT_STATUS_CODE,
            "body": default_body(self.id),
            "drop_connection": False,
        }
        for name, value in changes.items():
            setattr(self, name, defaults[name] if value is None else value)
        self.response = _json_response(self.status_code, self.body)

    def as_dict(self) -> dict[str, Any]:
        """The application as the API shows it."""
        return {
            "id": self.id,
            "latency_ms": self.latency_ms,
            "status_code": self.status_code,
            "body": self.body,
            "drop_connection": self.drop_connection,
            "hits": self.hits,
            # What the last probe sent, so tests can see a Connection's headers arrive.
            "last_headers": {name.decode("latin-1"): value.decode("latin-1") for name, value in self.last_headers},
        }


class Estate:
    """State of the sample estate for one sandbox app."""

    def __init__(self, state_dir: Path, tcp_host: str = "127.0.0.1", tcp_port: int = 0) -> None:
        self.db_path = state_dir / DB_FILENAME
        self.tcp = TcpListener(tcp_host, tcp_port)
        self.apps: dict[str, EstateApp] = {}
        self.reset_apps()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Estate]:
        """Create the database if needed and listen on the TCP port while the app runs."""
        ensure_estate_db(self.db_path.parent)
        await self.tcp.start()
        try:
            yield self
        finally:
            await self.tcp.stop()

    def reset_apps(self) -> None:
        """Back to the seeded applications with default settings and no hits."""
        self.apps = {app_id: EstateApp(app_id) for app_id in SEEDED_APPS}

    async def reset(self) -> None:
        """Seeded applications, and the TCP port accepting again."""
        self.reset_apps()
        await self.tcp.start()

    def upsert(self, app_id: str, changes: dict[str, Any]) -> EstateApp:
        """Create the application if needed, then apply the changed settings."""
        app = self.apps.get(app_id)
        if app is None:
            app = self.apps[app_id] = EstateApp(app_id)
        app.update(changes)
        return app

    def bulk_create(self, prefix: str, count: int, latency_ms: int) -> int:
        """Create (or replace) ``{prefix}-0000`` .. ``{prefix}-{count-1:04d}``."""
        for index in range(count):
            app_id = f"{prefix}-{index:04d}"
            self.apps[app_id] = EstateApp(app_id, latency_ms=latency_ms)
        return count

    def tcp_status(self) -> dict[str, Any]:
        """The TCP port and whether it accepts connections."""
        return {"port": self.tcp.port, "accepting": self.tcp.accepting}


LatencyMs = Annotated[int, Field(ge=0, le=MAX_LATENCY_MS)]
AppId = Annotated[str, PathParam(pattern=APP_ID_PATTERN)]


class AppSettings(BaseModel):
    """Settings to change on an application; omitted ones stay, null ones go back to default."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: LatencyMs | None = None
    status_code: Annotated[int, Field(ge=200, le=599)] | None = None
    body: dict[str, Any] | None = None
    drop_connection: bool | None = None


class BulkCreate(BaseModel):
    """Many applications with one latency, for load tests."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
    count: int = Field(ge=1, le=10_000)
    latency_ms: LatencyMs = DEFAULT_LATENCY_MS


class TcpSettings(BaseModel):
    """Whether the estate's TCP port accepts connections."""

    model_config = ConfigDict(extra="forbid")

    accepting: bool


router = APIRouter(prefix=PREFIX, tags=["estate"])


def get_estate(request: Request) -> Estate:
    """The estate of the app serving this request."""
    return request.app.state.estate


def _unknown_app(app_id: str) -> JSONResponse:
    return JSONResponse({"error": f"unknown app {app_id}"}, status_code=404)


@router.get("/apps")
async def list_apps(request: Request) -> dict[str, Any]:
    """All applications with their settings and hit counts."""
    return {"apps": [app.as_dict() for app in get_estate(request).apps.values()]}


@router.post("/apps/bulk")
async def bulk_create(request: Request, spec: BulkCreate) -> dict[str, int]:
    """Create ``count`` applications named ``{prefix}-NNNN``."""
    return {"created": get_estate(request).bulk_create(spec.prefix, spec.count, spec.latency_ms)}


@router.get("/apps/{app_id}", response_model=None)
async def get_app(request: Request, app_id: str) -> dict[str, Any] | JSONResponse:
    """One application with its settings and hit count."""
    app = get_estate(request).apps.get(app_id)
    return _unknown_app(app_id) if app is None else app.as_dict()


@router.put("/apps/{app_id}")
async def put_app(request: Request, app_id: AppId, settings: AppSettings) -> dict[str, Any]:
    """Create or update an application; only the fields sent change."""
    return get_estate(request).upsert(app_id, settings.model_dump(exclude_unset=True)).as_dict()


@router.post("/reset")
async def reset(request: Request) -> dict[str, Any]:
    """Back to the seeded applications with default settings, the TCP port accepting."""
    estate = get_estate(request)
    await estate.reset()
    return {"apps": len(estate.apps), "tcp": estate.tcp_status()}


@router.get("/tcp")
async def get_tcp(request: Request) -> dict[str, Any]:
    """The TCP port and whether it accepts connections."""
    return get_estate(request).tcp_status()


@router.put("/tcp", response_model=None)
async def put_tcp(request: Request, settings: TcpSettings) -> dict[str, Any] | JSONResponse:
    """Stop listening (connections refused) or listen again on the same port."""
    estate = get_estate(request)
    try:
        await (estate.tcp.start() if settings.accepting else estate.tcp.stop())
    except OSError as exc:
        return JSONResponse({"error": f"cannot listen on port {estate.tcp.port}: {exc}"}, status_code=409)
    return estate.tcp_status()


class HealthEndpoint:
    """``GET /estate/apps/{app_id}/health`` as a bare ASGI endpoint: it is the benchmark's hot path."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        app_id = scope["path_params"]["app_id"]
        app = scope["app"].state.estate.apps.get(app_id)
        if app is None:
            status, headers, body = _json_response(404, {"error": f"unknown app {app_id}"})
        else:
            app.hits += 1
            app.last_headers = scope["headers"]
            if app.latency_ms:
                await asyncio.sleep(app.latency_ms / 1000)
            if app.drop_connection:
                await drop_connection(scope, receive)
                return
            status, headers, body = app.response
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


router.add_route(f"{PREFIX}/apps/{{app_id}}/health", HealthEndpoint(), methods=["GET"], name="estate_health")
