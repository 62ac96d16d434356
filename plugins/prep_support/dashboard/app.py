"""The dashboard's FastAPI app: two pages (``/``, the overview, and ``/services/<id>``) and their JSON
variants (``/api/overview``, ``/api/services/<id>``).

Mounted by Airflow's API server under ``/support-dashboard`` (see ``plugins/support_dashboard.py``);
links between pages are relative, so it works under any prefix. The engine is asked for on the first
request that reads data; a page's statements run in two groups at once (``database.read_together``).
Handlers are plain functions: FastAPI runs them in its thread pool, so a slow query never blocks the
API server's event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import Engine

from prep_support.dashboard import payloads
from prep_support.dashboard.pages import WEEK, load_overview, load_service_page
from prep_support.dashboard.render import render_page

# No script runs on these pages, and only the Airflow UI (same origin) may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
REFRESH_SECONDS = 60


def utc_now() -> datetime:
    return datetime.now(UTC)


class EngineOnDemand:
    """The engine from ``factory``, created on first use and shared by every request after."""

    def __init__(self, factory: Callable[[], Engine]) -> None:
        self._factory = factory
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._factory()
        return self._engine


def create_app(engine_factory: Callable[[], Engine], *, clock: Callable[[], datetime] = utc_now,
               dependencies: Sequence[Any] = ()) -> FastAPI:
    """The dashboard on the engine ``engine_factory`` returns when first needed; ``dependencies`` run before
    every page (the plugin passes Airflow's access check)."""
    engine = EngineOnDemand(engine_factory)
    app = FastAPI(title="Prep Support dashboard", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  dependencies=list(dependencies))

    def html(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        body = render_page(template, refresh_seconds=REFRESH_SECONDS, **context)
        return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)

    def json(content: Any, status_code: int = 200) -> JSONResponse:
        return JSONResponse(content, status_code=status_code, headers=SECURITY_HEADERS)

    @app.get("/", response_class=HTMLResponse)
    def overview_page() -> HTMLResponse:
        overview = load_overview(engine(), clock())
        return html("overview.html.j2", base="", page=overview, now=overview.now)

    @app.get("/services/{service_id}", response_class=HTMLResponse)
    def service_page(service_id: str) -> HTMLResponse:
        now = clock()
        page = load_service_page(engine(), service_id, now)
        if page is None:
            return html("not_found.html.j2", 404, base="../", now=now, what=f"service {service_id}")
        return html("service.html.j2", base="../", page=page, now=now)

    @app.get("/quality/{suite_id}/{day}", response_class=HTMLResponse)
    def quality_day_page(suite_id: str, day: str) -> HTMLResponse:
        """One suite's results for one day: what failed, by how much, and the failing rows' sample."""
        from prep_support.dashboard.database import read
        from prep_support.dashboard.quality import day_results

        now = clock()
        try:
            when = date.fromisoformat(day)
        except ValueError:
            return html("not_found.html.j2", 404, base="../../", now=now, what=f"day {day!r} (expected YYYY-MM-DD)")
        rows = read(engine(), lambda connection: day_results(connection, suite_id, when))
        if not rows:
            return html("not_found.html.j2", 404, base="../../", now=now,
                        what=f"data-quality result of suite {suite_id} on {when}")
        return html("quality_day.html.j2", base="../../", suite_id=suite_id, day=when, rows=rows, now=now)

    @app.get("/api/overview")
    def overview_json() -> JSONResponse:
        overview = load_overview(engine(), clock())
        return json({
            "generated_at": payloads.iso(overview.now),
            "services": [payloads.summary_payload(s) for s in overview.services],
            "checks_needing_attention": [payloads.check_payload(c) for c in overview.attention],
            "incidents": [payloads.incident_payload(i) for i in overview.incidents],
            "maintenance_windows": [payloads.window_payload(w) for w in overview.windows],
        })

    @app.get("/api/services/{service_id}")
    def service_json(service_id: str) -> JSONResponse:
        now = clock()
        page = load_service_page(engine(), service_id, now)
        if page is None:
            return json({"detail": f"no service {service_id!r}"}, 404)
        return json({
            "generated_at": payloads.iso(now),
            "service": payloads.service_payload(page.service),
            "incidents": [payloads.incident_payload(i) for i in page.incidents],
            "maintenance_windows": [payloads.window_payload(w) for w in page.windows],
            "history": {"start": payloads.iso(page.end - WEEK), "end": payloads.iso(page.end),
                        "availability_24h_pct": page.availability_24h_pct,
                        "availability_7d_pct": page.availability_7d_pct,
                        "hours": payloads.history_payload(page.history)},
        })

    return app
